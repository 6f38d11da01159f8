"""PyTorch's side of the CPU comparison (scripts/cpu-baseline.sh).

Reads the case file `torch_case write` made (the headline layer's weights, its inputs and the f64
oracle's outputs), runs the same computations with PyTorch on the CPU, times each (the median of
RUNS calls after a warm-up), checks every output against the oracle's (|got - want| <= 1e-5 +
1e-4 |want|, NaN must agree), and prints one JSON line:

- layer: the whole layer at T = S = 512: the four projections (x @ W + b) and
  scaled_dot_product_attention with enable_gqa=True;
- step: one decode step of the layer: the token's projections, its K and V written into a
  preallocated (B, Nkv, capacity, H) cache holding 4,095 tokens, SDPA over the 4,096 held keys,
  the output projection;
- attn: the decode attention alone, SDPA of one query over 4,096 keys (K and V laid out
  (B, Nkv, S, H), contiguous, outside the timing).

usage: python tools/torch_baseline.py CASE.safetensors [RUNS]
"""

import json
import statistics
import sys
import time

import torch
from safetensors.torch import load_file

NQ, NKV, H, D = 32, 8, 128, 4096


def timed(runs, want, call):
    """The median seconds of `runs` calls after a warm-up, and whether every output passed."""
    ok = check(call(), want)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        got = call()
        times.append(time.perf_counter() - start)
        ok = ok and check(got, want)
    return statistics.median(times), ok


def check(got, want):
    got, want = got.reshape(-1), want.reshape(-1)
    nan = torch.isnan(want)
    if not torch.equal(torch.isnan(got), nan):
        return False
    g, w = got[~nan], want[~nan]
    return bool(torch.all((g - w).abs() <= 1e-5 + 1e-4 * w.abs()))


def main():
    path = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    t = load_file(path)
    # Keras kernels: query/key/value (D, N, H) -> (D, N*H); attention_output (Nq, H, D) -> (Nq*H, D).
    wq, bq = t["query.kernel"].reshape(D, NQ * H), t["query.bias"].reshape(-1)
    wk, bk = t["key.kernel"].reshape(D, NKV * H), t["key.bias"].reshape(-1)
    wv, bv = t["value.kernel"].reshape(D, NKV * H), t["value.bias"].reshape(-1)
    wo, bo = t["attention_output.kernel"].reshape(NQ * H, D), t["attention_output.bias"]
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def heads(x, n):  # (B, L, n*H) -> (B, n, L, H)
        return x.view(x.shape[0], x.shape[1], n, H).transpose(1, 2)

    def layer(x):
        q = heads(torch.addmm(bq, x[0], wq)[None], NQ)
        k = heads(torch.addmm(bk, x[0], wk)[None], NKV)
        v = heads(torch.addmm(bv, x[0], wv)[None], NKV)
        o = sdpa(q, k, v, enable_gqa=True)
        o = o.transpose(1, 2).reshape(x.shape[1], NQ * H)
        return torch.addmm(bo, o, wo)[None]

    held = t["cache.keys"].shape[1]
    k_cache = torch.zeros(1, NKV, held + 1, H)
    v_cache = torch.zeros(1, NKV, held + 1, H)
    k_cache[:, :, :held] = t["cache.keys"].transpose(1, 2)
    v_cache[:, :, :held] = t["cache.values"].transpose(1, 2)

    def step(x):
        q = torch.addmm(bq, x[0], wq).view(1, NQ, 1, H)
        k_cache[:, :, held] = torch.addmm(bk, x[0], wk).view(NKV, H)
        v_cache[:, :, held] = torch.addmm(bv, x[0], wv).view(NKV, H)
        o = sdpa(q, k_cache, v_cache, enable_gqa=True)
        return torch.addmm(bo, o.reshape(1, NQ * H), wo)[None]

    q_dec = t["attn.q"].view(1, 1, NQ, H).transpose(1, 2).contiguous()
    k_dec = t["attn.k"].transpose(1, 2).contiguous()
    v_dec = t["attn.v"].transpose(1, 2).contiguous()

    def attn():
        return sdpa(q_dec, k_dec, v_dec, enable_gqa=True).transpose(1, 2)

    with torch.inference_mode():
        layer_s, layer_ok = timed(runs, t["y"], lambda: layer(t["x"]))
        step_s, step_ok = timed(runs, t["y_step"], lambda: step(t["x_step"]))
        attn_s, attn_ok = timed(runs, t["attn.o"], attn)
    print(json.dumps({
        "impl": f"torch {torch.__version__}",
        "threads": torch.get_num_threads(),
        "layer_ms": round(layer_s * 1e3, 3), "layer_checked": layer_ok,
        "step_ms": round(step_s * 1e3, 3), "step_checked": step_ok,
        "attn_ms": round(attn_s * 1e3, 3), "attn_checked": attn_ok,
    }))


if __name__ == "__main__":
    main()
