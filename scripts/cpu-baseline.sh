#!/usr/bin/env bash
# The CPU layer (gqa-cpu) against PyTorch's CPU layer, on this machine, in one run: the headline
# layer (B=1, T=S=512, Nq=32, Nkv=8, H=128, D=4096: projections + SDPA with enable_gqa), one decode
# step of that layer over 4,095 cached tokens, and the decode attention alone (T=1, S=4,096).
# Both read the same weights and inputs from one file and check every output against the f64
# oracle's (written into that file); the rounds alternate between the two (ROUNDS, default 3), and
# the medians and the ratios gqa-cpu / PyTorch are printed at the end.
#
# Needs Python 3 with pip; PyTorch and safetensors are installed into target/torch-venv (the
# CPU-only wheel from download.pytorch.org where it is reachable, else PyPI's).
#
# Usage: scripts/cpu-baseline.sh [RUNS per round, default 5]
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

runs=${1:-5}
rounds=${ROUNDS:-3}
venv=target/torch-venv
case_file=target/torch/case.safetensors

if ! "$venv/bin/python" -c "import torch, safetensors" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --index-url https://download.pytorch.org/whl/cpu torch 2>/dev/null \
        || "$venv/bin/pip" install -q torch
    "$venv/bin/pip" install -q safetensors numpy
fi
cargo build --release -q -p gqa-cpu --example torch_case
mkdir -p "$(dirname "$case_file")"
[[ -f "$case_file" ]] || target/release/examples/torch_case write "$case_file"

results=$(mktemp)
for round in $(seq "$rounds"); do
    echo "round $round of $rounds" >&2
    target/release/examples/torch_case time "$case_file" "$runs" | tee -a "$results"
    "$venv/bin/python" tools/torch_baseline.py "$case_file" "$runs" | tee -a "$results"
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
ours = [r for r in rows if r["impl"] == "gqa-cpu"]
theirs = [r for r in rows if r["impl"] != "gqa-cpu"]
print(f"\n{'':8} {'gqa-cpu ms':>11} {theirs[0]['impl']:>22} {'ratio':>7}  checked")
failed = False
for key, what in [("layer", "layer"), ("step", "step"), ("attn", "attn")]:
    a = statistics.median(r[f"{key}_ms"] for r in ours)
    b = statistics.median(r[f"{key}_ms"] for r in theirs)
    ok = all(r[f"{key}_checked"] for r in rows)
    failed |= not ok
    print(f"{what:8} {a:11.2f} {b:22.2f} {a / b:7.2f}  {'pass' if ok else 'FAIL'}")
print(f"threads: gqa-cpu {ours[0]['threads']}, torch {theirs[0]['threads']}; medians of {len(ours)} rounds")
sys.exit(1 if failed else 0)
PY
