#!/usr/bin/env python3
"""Conformance fixtures from the real `keras.layers.GroupQueryAttention`, and a checker.

Generate (deterministic, seeded; needs the packages of tools/requirements.txt):

    python tools/keras_fixtures.py --out tests/fixtures/keras

writes one `<case>.safetensors` per case: the inputs (`query`, `value`, optional `key`), the masks
(`attention_mask`, `query_mask`, `value_mask`, `key_mask`, in varied dtypes), every weight under its
Keras path (`<layer name>/query/kernel` ...), `output` (the call with `return_attention_scores=True`:
fully masked rows give zero probabilities), `output_default_call` (the plain call: Keras' uniform
average over all keys on fully masked rows) and `scores`. Metadata: `config` (the layer's
`get_config()` JSON), `call` (the call's options: `{"use_causal_mask": ...}`), `build_config`,
`description`, `keras_version`, `keras_backend`. Two cases also come as Keras files:
`keras_model.keras` (the layer nested in an inner model, beside another GroupQueryAttention layer)
and `keras_weights_h5.weights.h5` with the model's JSON `keras_weights_h5.model.json`; the latter's
layer also comes with dtype float16 and bfloat16 (`keras_weights_h5_<dtype>.weights.h5` and the
layer's `get_config()` in `keras_weights_h5_<dtype>.layer.json`).

Check (exit 0: match, 1: mismatch, 2: bad input):

    python tools/keras_fixtures.py --check LAYER.safetensors [--inputs FILE] [--expected FILE]

loads a layer from safetensors (config in the metadata key `config`, weights by Keras paths with any
layer-name prefix; what `gqa export` writes) into the real Keras layer, runs it on the inputs
(`--inputs`, default the same file) with the call options in the expected file's metadata `call`
(what `gqa run` writes), and compares with its `output` (and `output_default_call`, `scores` when
present) elementwise: |keras - file| <= 1e-5 + 1e-4 * |keras|.
"""

import argparse
import json
import os
import sys
import tempfile
import zipfile
import zlib

os.environ.setdefault("KERAS_BACKEND", "numpy")

import numpy as np  # noqa: E402

ATOL = 1e-5
RTOL = 1e-4
MASK_NAMES = ("attention_mask", "query_mask", "value_mask", "key_mask")
INPUT_NAMES = ("query", "value", "key") + MASK_NAMES
# A fixed date for the zip entries and metadata.json of the .keras files, so that they are reproducible.
FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def case(name, description, layer, b, t, s, dq, dv, dk=None, causal=False, masks=None):
    """One fixture: the layer's constructor arguments, the shapes, the call's masks and flags.

    `masks` maps a mask name to (shape, dtype, builder) where builder(rng, shape) returns 0/1 values.
    """
    return dict(name=name, description=description, layer=layer, b=b, t=t, s=s, dq=dq, dv=dv, dk=dk,
                causal=causal, masks=masks or {})


def rand_mask(p):
    """Bernoulli(p) mask builder."""
    return lambda rng, shape: rng.random(shape) < p


def rows_off(base_p, rows):
    """A (B, T, S) mask: random, with the listed (b, t) rows fully masked."""
    def build(rng, shape):
        m = rng.random(shape) < base_p
        for bi, ti in rows:
            m[bi, ti, :] = False
        return m
    return build


def some_false(positions):
    """A (B, L) padding mask: all True except the listed (b, l) positions; (b, None) masks all of b."""
    def build(rng, shape):
        m = np.ones(shape, dtype=bool)
        for bi, li in positions:
            if li is None:
                m[bi, :] = False
            else:
                m[bi, li] = False
        return m
    return build


def heads(nq, nkv, h, **kw):
    return dict(head_dim=h, num_query_heads=nq, num_key_value_heads=nkv, **kw)


CASES = [
    case("gqa_self", "GQA Nq=4 Nkv=2, no key (key = value), default layer name, no mask",
         dict(heads(4, 2, 4)), 1, 4, 4, 8, 8),
    case("mqa", "MQA Nq=4 Nkv=1, odd head_dim 3, B=2, T<S",
         dict(heads(4, 1, 3), name="mqa"), 2, 3, 5, 6, 6),
    case("mha", "MHA Nq=Nkv=3",
         dict(heads(3, 3, 4), name="mha"), 1, 4, 6, 5, 5),
    case("key_dims_differ", "key given, Dq=5 Dk=7 Dv=3 all different, B=2",
         dict(heads(4, 2, 2), name="kdd"), 2, 3, 4, 5, 3, dk=7),
    case("no_bias", "use_bias=False, key given, Nq=6 Nkv=2",
         dict(heads(6, 2, 2), use_bias=False, name="nobias"), 2, 3, 5, 4, 6, dk=3),
    case("causal_t_lt_s", "causal (top-left) with T=3 < S=6",
         dict(heads(4, 2, 4), name="causal_short"), 2, 3, 6, 6, 6, causal=True),
    case("causal_t_gt_s", "causal (top-left) with T=6 > S=3",
         dict(heads(4, 2, 4), name="causal_long"), 1, 6, 3, 6, 5, causal=True),
    case("attention_mask_bts", "attention_mask (B, T, S) as int32",
         dict(heads(4, 2, 4), name="am_bts"), 2, 4, 5, 6, 6,
         masks={"attention_mask": ("bts", "int32", rand_mask(0.7))}),
    case("attention_mask_ts", "attention_mask (T, S) as float32 0/1",
         dict(heads(4, 2, 4), name="am_ts"), 2, 4, 5, 6, 6,
         masks={"attention_mask": ("ts", "float32", rand_mask(0.7))}),
    case("attention_mask_per_head", "attention_mask per head (B, Nq, T, S) as bool",
         dict(heads(4, 2, 4), name="am_heads"), 2, 4, 5, 6, 6,
         masks={"attention_mask": ("bnts", "bool", rand_mask(0.7))}),
    case("query_value_key_masks", "query_mask (uint8), value_mask and key_mask (bool), key given; "
         "masked queries are fully masked rows",
         dict(heads(4, 2, 3), name="qvk"), 2, 4, 5, 6, 6, dk=4,
         masks={"query_mask": ("bt", "uint8", some_false([(0, 1), (1, 3)])),
                "value_mask": ("bs", "bool", some_false([(0, 4), (1, 0)])),
                "key_mask": ("bs", "bool", some_false([(0, 2)]))}),
    case("fully_masked_rows", "attention_mask with all-false rows and a value_mask all false for batch 1, causal",
         dict(heads(4, 2, 4), name="masked_rows"), 2, 5, 5, 6, 6, causal=True,
         masks={"attention_mask": ("bts", "bool", rows_off(0.8, [(0, 0), (0, 3)])),
                "value_mask": ("bs", "bool", some_false([(1, None)]))}),
    case("sliding_window", "sliding_window=2 without causal, T=5 S=7",
         dict(heads(4, 2, 4), sliding_window=2, name="window"), 2, 5, 7, 6, 6),
    case("sliding_window_causal", "sliding_window=3 with causal",
         dict(heads(4, 2, 4), sliding_window=3, name="window_causal"), 1, 6, 6, 6, 6, causal=True),
    case("gate", "use_gate=True with bias, B=2",
         dict(heads(4, 2, 4), use_gate=True, name="gated"), 2, 4, 5, 6, 6),
    case("gate_no_bias", "use_gate=True, use_bias=False, attention_mask (T, S)",
         dict(heads(4, 2, 4), use_gate=True, use_bias=False, name="gated_nobias"), 2, 4, 5, 6, 6,
         masks={"attention_mask": ("ts", "bool", rand_mask(0.7))}),
    case("batch3", "B=3, causal, value_mask",
         dict(heads(4, 2, 4), name="batch3"), 3, 4, 4, 6, 6, causal=True,
         masks={"value_mask": ("bs", "bool", some_false([(0, 3), (2, 1), (2, 2)]))}),
    case("head_dim_1", "head_dim=1",
         dict(heads(4, 2, 1), name="h1"), 2, 3, 4, 5, 5),
    case("odd_head_dims", "head_dim=5, Nq=3 Nkv=1, Dq=7 Dk=2 Dv=3, key given",
         dict(heads(3, 1, 5), name="odd"), 2, 3, 4, 7, 3, dk=2),
    case("query_len_1", "a length-1 query (T=1), causal: it sees key 0 only; key given",
         dict(heads(4, 2, 4), name="t1"), 2, 1, 5, 6, 6, dk=3, causal=True),
    case("everything", "Nq=8 Nkv=2, key given, gate, sliding_window=4, causal, query/value masks, "
         "attention_mask (B, T, S)",
         dict(heads(8, 2, 4), use_gate=True, sliding_window=4, name="everything"), 2, 5, 7, 6, 6, dk=5,
         causal=True,
         masks={"attention_mask": ("bts", "bool", rand_mask(0.85)),
                "query_mask": ("bt", "bool", some_false([(1, 2)])),
                "value_mask": ("bs", "bool", some_false([(0, 6)]))}),
    case("keras_model", "saved as keras_model.keras: nested in an inner model beside another "
         "GroupQueryAttention layer; key given, Dk=5",
         dict(heads(4, 2, 4), name="attn_in_model"), 2, 4, 5, 6, 6, dk=5),
    case("keras_weights_h5", "saved as keras_weights_h5.weights.h5 with the model's JSON; gate, window",
         dict(heads(2, 1, 8), use_gate=True, sliding_window=3, name="attn_h5"), 1, 5, 5, 4, 4, causal=True),
]


def seed_of(name):
    """A stable per-case seed (crc32 of the name)."""
    return zlib.crc32(name.encode())


def mask_shape(kind, c, nq):
    return {"bts": (c["b"], c["t"], c["s"]), "ts": (c["t"], c["s"]), "bnts": (c["b"], nq, c["t"], c["s"]),
            "bt": (c["b"], c["t"]), "bs": (c["b"], c["s"])}[kind]


def make_layer(c):
    import keras
    return keras.layers.GroupQueryAttention(**c["layer"])


def fill_weights(layer, rng):
    """Seeded weights: kernels N(0, 2 / fan_in) so that logits are O(1), biases U(-0.5, 0.5)."""
    for w in layer.weights:
        shape = tuple(w.shape)
        if w.path.endswith("kernel"):
            fan_in = shape[0] if not w.path.endswith("attention_output/kernel") else shape[0] * shape[1]
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        else:
            value = rng.uniform(-0.5, 0.5, shape)
        w.assign(value.astype(np.float32))


def run_layer(layer, inputs, causal, scores):
    """Calls the layer; inputs holds query, value and optionally key and the masks."""
    kwargs = {k: inputs[k] for k in ("key",) + MASK_NAMES if k in inputs}
    out = layer(inputs["query"], inputs["value"], use_causal_mask=causal, return_attention_scores=scores,
                **kwargs)
    if scores:
        return np.asarray(out[0]), np.asarray(out[1])
    return np.asarray(out), None


def build_case(c):
    """Builds the layer with seeded weights and inputs; returns (layer, inputs)."""
    rng = np.random.default_rng(seed_of(c["name"]))
    layer = make_layer(c)
    nq = c["layer"]["num_query_heads"]
    key_shape = None if c["dk"] is None else (c["b"], c["s"], c["dk"])
    layer.build((c["b"], c["t"], c["dq"]), (c["b"], c["s"], c["dv"]), key_shape)
    fill_weights(layer, rng)
    inputs = {
        "query": rng.normal(0.0, 1.0, (c["b"], c["t"], c["dq"])).astype(np.float32),
        "value": rng.normal(0.0, 1.0, (c["b"], c["s"], c["dv"])).astype(np.float32),
    }
    if key_shape is not None:
        inputs["key"] = rng.normal(0.0, 1.0, key_shape).astype(np.float32)
    for name, (kind, dtype, builder) in c["masks"].items():
        inputs[name] = builder(rng, mask_shape(kind, c, nq)).astype(dtype)
    return layer, inputs


def fixture_tensors(layer, inputs, causal):
    out, scores = run_layer(layer, inputs, causal, scores=True)
    out_default, _ = run_layer(layer, inputs, causal, scores=False)
    tensors = dict(inputs)
    for w in layer.weights:
        tensors[w.path] = np.asarray(w.numpy(), dtype=np.float32)
    tensors["output"] = out.astype(np.float32)
    tensors["output_default_call"] = out_default.astype(np.float32)
    tensors["scores"] = scores.astype(np.float32)
    return tensors


def metadata(layer, c):
    import keras
    return {
        "config": json.dumps(layer.get_config()),
        "build_config": json.dumps(layer.get_build_config()),
        "call": json.dumps({"use_causal_mask": c["causal"]}),
        "description": c["description"],
        "keras_version": keras.__version__,
        "keras_backend": keras.backend.backend(),
    }


ST_DTYPES = {"float32": "F32", "float16": "F16", "float64": "F64", "int32": "I32", "int64": "I64",
             "uint8": "U8", "int8": "I8", "bool": "BOOL"}


def save_safetensors(path, tensors, meta):
    """Writes a safetensors file with its header in sorted order (the `safetensors` package orders the
    metadata by hash, which would make the fixtures differ from run to run)."""
    header, blobs, offset = {"__metadata__": dict(sorted(meta.items()))}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        data = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": ST_DTYPES[a.dtype.name], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(blobs))


def renumber_shared_ids(value, ids):
    """Keras writes `shared_object_id` as Python's id() of the object; number them 1, 2, ... instead."""
    if isinstance(value, dict):
        return {k: (ids.setdefault(v, len(ids) + 1) if k == "shared_object_id" else renumber_shared_ids(v, ids))
                for k, v in value.items()}
    if isinstance(value, list):
        return [renumber_shared_ids(v, ids) for v in value]
    return value


def normalize_keras_zip(path, dst=None):
    """Rewrites a .keras zip (into `dst`, or in place) with fixed entry dates, a fixed `date_saved`
    and renumbered `shared_object_id`s, stored uncompressed, so that it is reproducible; the weights
    are untouched."""
    with zipfile.ZipFile(path) as z:
        entries = [(info.filename, z.read(info.filename)) for info in z.infolist()]
    with zipfile.ZipFile(dst or path, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries:
            if name == "metadata.json":
                meta = json.loads(data)
                meta["date_saved"] = "1980-01-01@00:00:00"
                data = json.dumps(meta).encode()
            elif name == "config.json":
                data = json.dumps(renumber_shared_ids(json.loads(data), {})).encode()
            z.writestr(zipfile.ZipInfo(name, date_time=FIXED_DATE), data)


def keras_model_file(c, layer, out_dir):
    """keras_model.keras: an outer model with another GroupQueryAttention first (so the group numbers
    differ from the order of names) and an inner model holding the fixture's layer."""
    import keras
    dq, dk = c["dq"], c["dk"]
    q, v, k = (keras.Input((None, dq), name="q"), keras.Input((None, dq), name="v"),
               keras.Input((None, dk), name="k"))
    inner = keras.Model([q, v, k], layer(q, v, k), name="inner")
    other = keras.layers.GroupQueryAttention(head_dim=2, num_query_heads=2, num_key_value_heads=1,
                                             use_bias=False, name="other_attention")
    q2, v2, k2 = (keras.Input((None, dq), name="q"), keras.Input((None, dq), name="v"),
                  keras.Input((None, dk), name="k"))
    model = keras.Model([q2, v2, k2], [other(q2, v2), inner([q2, v2, k2])], name="outer")
    fill_weights(other, np.random.default_rng(seed_of("other_attention")))
    path = os.path.join(out_dir, "keras_model.keras")
    model.save(path)
    normalize_keras_zip(path)
    return [path]


def keras_weights_h5_file(c, layer, out_dir):
    """keras_weights_h5.weights.h5 and keras_weights_h5.model.json: a model of the one layer."""
    import keras
    q, v = keras.Input((None, c["dq"]), name="q"), keras.Input((None, c["dv"]), name="v")
    model = keras.Model([q, v], layer(q, v, use_causal_mask=c["causal"]), name="single")
    h5 = os.path.join(out_dir, "keras_weights_h5.weights.h5")
    model.save_weights(h5)
    js = os.path.join(out_dir, "keras_weights_h5.model.json")
    with open(js, "w") as f:
        f.write(json.dumps(json.loads(model.to_json()), indent=1) + "\n")
    return [h5, js]


def keras_low_precision_files(c, layer, out_dir):
    """keras_weights_h5_{float16,bfloat16}.weights.h5 and .layer.json: the same layer with dtype float16
    and bfloat16, whose weights Keras stores as IEEE half and as its opaque 2-byte bfloat16 type."""
    import keras
    written = []
    for dtype in ("float16", "bfloat16"):
        cfg = dict(layer.get_config(), dtype=dtype)
        low = keras.layers.GroupQueryAttention.from_config(cfg)
        q, v = keras.Input((None, c["dq"]), name="q"), keras.Input((None, c["dv"]), name="v")
        model = keras.Model([q, v], low(q, v), name="single_" + dtype)
        for w, src in zip(low.weights, layer.weights):
            w.assign(np.asarray(src.numpy()).astype(dtype if dtype == "float16" else np.float32))
        stem = os.path.join(out_dir, f"keras_weights_h5_{dtype}")
        model.save_weights(stem + ".weights.h5")
        with open(stem + ".layer.json", "w") as f:
            f.write(json.dumps(low.get_config(), indent=1) + "\n")
        written += [stem + ".weights.h5", stem + ".layer.json"]
    return written


def keras_h5_files(c, layer, out_dir):
    return keras_weights_h5_file(c, layer, out_dir) + keras_low_precision_files(c, layer, out_dir)


KERAS_FILES = {"keras_model": keras_model_file, "keras_weights_h5": keras_h5_files}


def generate(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for c in CASES:
        layer, inputs = build_case(c)
        tensors = fixture_tensors(layer, inputs, c["causal"])
        path = os.path.join(out_dir, c["name"] + ".safetensors")
        save_safetensors(path, tensors, metadata(layer, c))
        written.append(path)
        if c["name"] in KERAS_FILES:
            written += KERAS_FILES[c["name"]](c, layer, out_dir)
            # The model's symbolic call must not have changed the weights.
            again = fixture_tensors(layer, inputs, c["causal"])
            assert all(np.array_equal(again[k], tensors[k]) for k in tensors), c["name"]
    for p in written:
        print(f"{os.path.getsize(p):8d}  {p}")
    print(f"{len(CASES)} cases, {sum(os.path.getsize(p) for p in written)} bytes")


# ---------------------------------------------------------------------------------------------- check


class BadInput(Exception):
    """A file that cannot be checked (exit status 2)."""


def load_st(path):
    from safetensors import safe_open
    try:
        with safe_open(path, framework="numpy") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, (f.metadata() or {})
    except Exception as e:  # noqa: BLE001
        raise BadInput(f"{path}: cannot read safetensors: {e}") from e


def layer_config(meta, path):
    if "config" not in meta:
        raise BadInput(f"{path}: no metadata key `config` (the layer's Keras get_config JSON)")
    cfg = json.loads(meta["config"])
    if "class_name" in cfg:
        if cfg["class_name"] != "GroupQueryAttention":
            raise BadInput(f"{path}: config is for class {cfg['class_name']}, expected GroupQueryAttention")
        cfg = cfg["config"]
    return cfg


def find_prefix(tensors, name, path):
    prefixes = sorted({k[: -len("query/kernel")] for k in tensors if k.endswith("query/kernel")})
    if not prefixes:
        raise BadInput(f"{path}: no tensor named `<layer>/query/kernel`")
    if len(prefixes) == 1:
        return prefixes[0]
    for p in prefixes:
        if p.rstrip("/").split("/")[-1] == name:
            return p
    raise BadInput(f"{path}: several layers ({prefixes}) and none named {name!r}")


def load_layer(path, key_given):
    """The real Keras layer, built and with the file's weights."""
    import keras
    tensors, meta = load_st(path)
    cfg = layer_config(meta, path)
    prefix = find_prefix(tensors, cfg.get("name", ""), path)
    dims = {d: tensors[prefix + d + "/kernel"].shape[0] for d in ("query", "key", "value")
            if prefix + d + "/kernel" in tensors}
    if len(dims) != 3:
        raise BadInput(f"{path}: missing kernels under {prefix!r}: have {sorted(dims)}")
    if not key_given and dims["key"] != dims["value"]:
        raise BadInput(f"{path}: no key given but Dk={dims['key']} != Dv={dims['value']}")
    layer = keras.layers.GroupQueryAttention.from_config(cfg)
    layer.build((None, None, dims["query"]), (None, None, dims["value"]),
                (None, None, dims["key"]) if key_given else None)
    names = set()
    for w in layer.weights:
        rel = w.path.split("/", 1)[1]
        names.add(prefix + rel)
        if prefix + rel not in tensors:
            raise BadInput(f"{path}: missing weight {prefix + rel} (expected shape {tuple(w.shape)})")
        value = tensors[prefix + rel]
        if tuple(value.shape) != tuple(w.shape):
            raise BadInput(f"{path}: weight {prefix + rel} has shape {value.shape}, expected {tuple(w.shape)}")
        w.assign(value.astype(np.float32))
    extra = sorted(k for k in tensors if k.startswith(prefix) and k not in names)
    if prefix and extra:
        raise BadInput(f"{path}: weights the config does not have: {extra}")
    return layer


def compare(what, got, want):
    got, want = np.asarray(got, dtype=np.float32), np.asarray(want, dtype=np.float32)
    if got.shape != want.shape:
        print(f"  {what}: shape {got.shape} (keras) vs {want.shape} (file)")
        return False
    diff = np.abs(got - want)
    bad = int(np.sum(~(diff <= ATOL + RTOL * np.abs(got))))
    print(f"  {what}: max |diff| {diff.max() if diff.size else 0.0:.3e}, {bad} of {diff.size} out of tolerance")
    return bad == 0


def check(layer_path, inputs_path, expected_path):
    inputs_all, _ = load_st(inputs_path)
    inputs = {k: v for k, v in inputs_all.items() if k in INPUT_NAMES}
    for need in ("query", "value"):
        if need not in inputs:
            raise BadInput(f"{inputs_path}: no tensor `{need}`")
    expected, meta = load_st(expected_path)
    call = json.loads(meta.get("call", "{}"))
    if call.get("causal_alignment", "top-left") != "top-left":
        raise BadInput(f"{expected_path}: Keras has only top-left causal alignment, the file used "
                       f"{call['causal_alignment']}")
    if call.get("training", False):
        raise BadInput(f"{expected_path}: a training call (dropout) cannot be compared with Keras")
    causal = bool(call.get("use_causal_mask", False))
    layer = load_layer(layer_path, "key" in inputs)
    print(f"check {layer_path}: layer {layer.name!r}, inputs {inputs_path}, expected {expected_path}, "
          f"causal={causal}, masked_rows={call.get('masked_rows', 'zeros')}")
    ok = True
    out, scores = run_layer(layer, inputs, causal, scores=True)
    out_default, _ = run_layer(layer, inputs, causal, scores=False)
    if "output" not in expected:
        raise BadInput(f"{expected_path}: no tensor `output`")
    want_default = call.get("masked_rows", "zeros") == "keras-default"
    ok &= compare("output", out_default if want_default else out, expected["output"])
    if "output_default_call" in expected:
        ok &= compare("output_default_call", out_default, expected["output_default_call"])
    if "scores" in expected and want_default:
        # Keras' plain call returns no scores (asking for them takes the zeros path).
        print("  scores: not compared (Keras has no scores for its plain call)")
    elif "scores" in expected:
        ok &= compare("scores", scores, expected["scores"])
    print("  MATCH" if ok else "  MISMATCH")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="write the fixtures into this folder")
    ap.add_argument("--check", metavar="LAYER", help="safetensors file with the layer (config + weights)")
    ap.add_argument("--inputs", help="safetensors with query, value, key and masks (default: the --check file)")
    ap.add_argument("--expected", help="safetensors with output (+ scores) and metadata `call` "
                    "(default: the --check file)")
    args = ap.parse_args()
    if bool(args.out) == bool(args.check):
        ap.error("give exactly one of --out and --check")
    if args.out:
        generate(args.out)
        return 0
    try:
        ok = check(args.check, args.inputs or args.check, args.expected or args.check)
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
