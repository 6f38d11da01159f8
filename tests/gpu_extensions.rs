//! The attention extensions on every attention path, against the oracle of KerasHub's layers: a
//! Gemma 3 layer (QK-norm, RoPE, soft cap, window) and a GPT-OSS layer (YaRN on part of an odd
//! head, biases, sinks, a lookback window), uncached (T = S = 40, left padding: fully masked rows;
//! and T = S = 1,100) and cached in KerasHub's form (one token and a chunk of 5 at index 520 of a 600-slot cache), on
//! every adapter under its own tuning (block and decode kernels over textures) and under the GPU
//! tuning (the fused kernel, flash-decoding with the decode kernel or the fused kernel's partials),
//! outputs poisoned first; the plans' routes are asserted, so that the soft cap and the sinks are
//! seen on the fused, split and block paths (and, through a call asking for scores, on the
//! separate passes).

mod common;

use common::gpu_tuning::{Path, check_plan, gpu_tuning};
use common::{F32, adapter_name, adapters, assert_close, gl_guard, random_tensor};
use gqa::core::kerashub::{KerasHubCache, KerasHubCall, KerasHubClass, KerasHubConfig};
use gqa::core::{CacheContents, ExtensionWeights, HostTensor, LayerDims, Mask, Precision, Tuning};
use gqa::gpu::GpuContext;
use rand::{SeedableRng, rngs::StdRng};

/// A layer of `class` from its config JSON, with random weights (and norm scales, sinks).
struct Layer {
    spec: KerasHubConfig,
    weights: gqa::core::Weights,
    extra: ExtensionWeights,
}

fn layer(class: KerasHubClass, json: serde_json::Value, d: usize, seed: u64) -> Layer {
    let spec = KerasHubConfig::from_value(class, &json, d).unwrap();
    let dims = LayerDims { query_dim: d, key_dim: d, value_dim: d };
    let weights = common::random_weights(&spec.config, dims, seed);
    let mut rng = StdRng::seed_from_u64(seed + 1);
    let (h, nq) = (spec.config.head_dim, spec.config.num_query_heads);
    let norm = spec.extensions.qk_norm.is_some();
    let extra = ExtensionWeights {
        query_norm: norm.then(|| random_tensor(&[h], &mut rng)),
        key_norm: norm.then(|| random_tensor(&[h], &mut rng)),
        sinks: spec.extensions.sinks.then(|| random_tensor(&[nq], &mut rng)),
    };
    Layer { spec, weights, extra }
}

/// KerasHub's decoder mask of `t` rows written at `index` over `s` slots (slot j visible iff
/// j <= index + row), with sequence 1's first `pad` slots masked (left padding).
fn causal(b: usize, t: usize, s: usize, index: usize, pad: usize) -> Mask {
    let data = (0..b * t * s)
        .map(|k| {
            let (bi, row, j) = (k / (t * s), k / s % t, k % s);
            j <= index + row && !(bi == 1 && j < pad)
        })
        .collect();
    Mask::new([b, t, s], data).unwrap()
}

/// One call of the test: its name, input, mask, and cache with the index written at.
type Call = (String, HostTensor, Mask, Option<(KerasHubCache, usize)>);

/// The calls of the test.
fn calls(l: &Layer, rng: &mut StdRng) -> Vec<Call> {
    let (b, d, nkv, h) = (2, l.spec.hidden_dim, l.spec.config.num_key_value_heads, l.spec.config.head_dim);
    let mut out = Vec::new();
    // Uncached: sequence 1 left-padded by 3 (its first 3 rows see no key); and a long sequence.
    out.push(("uncached T=S=40".into(), random_tensor(&[b, 40, d], rng), causal(b, 40, 40, 0, 3), None));
    out.push(("uncached T=S=1100".into(), random_tensor(&[b, 1100, d], rng), causal(b, 1100, 1100, 0, 0), None));
    // Cached: 520 slots written, 600 in all.
    let (cap, index) = (600, 520);
    let mut keys = random_tensor(&[b, cap, nkv, h], rng);
    let mut values = random_tensor(&[b, cap, nkv, h], rng);
    // KerasHub's cache holds zeros past the written slots.
    for t in [&mut keys, &mut values] {
        let per = cap * nkv * h;
        for bi in 0..b {
            t.data_mut()[bi * per + index * nkv * h..(bi + 1) * per].fill(0.0);
        }
    }
    for t in [1, 5] {
        let cache = KerasHubCache { keys: keys.clone(), values: values.clone() };
        let mask = causal(b, t, cap, index, 0);
        out.push((
            format!("cached T={t} at {index} of {cap}"),
            random_tensor(&[b, t, d], rng),
            mask,
            Some((cache, index)),
        ));
    }
    out
}

/// Every call of `l` on `ctx` against the oracle; returns the routes the GPU layer's plans take
/// for the uncached call and for a decoding step over a cache holding 520 tokens.
fn check(name: &str, ctx: &GpuContext, l: &Layer) -> (gqa::core::Plan, gqa::core::Plan) {
    let oracle = gqa::reference::KerasHubLayer::new(l.spec.clone(), l.weights.clone(), l.extra.clone()).unwrap();
    let mut gpu = gqa::gpu::KerasHubLayer::new(ctx, l.spec.clone(), &l.weights, &l.extra).unwrap();
    gpu.set_poison_outputs(true);
    let mut rng = StdRng::seed_from_u64(99);
    for (what, x, mask, cache) in calls(l, &mut rng) {
        let call = match &cache {
            Some((c, index)) => KerasHubCall::new(&x).with_mask(&mask).with_cache(c, Some(*index)),
            None => KerasHubCall::new(&x).with_mask(&mask),
        };
        let want = oracle.call(&call).unwrap();
        let got = gpu.call(&call).unwrap_or_else(|e| panic!("{name}, {what}: {e}"));
        assert_close(&format!("{name}, {what}: output"), got.output.data(), want.output.data(), F32);
        if let (Some(g), Some(w)) = (&got.cache, &want.cache) {
            assert_close(&format!("{name}, {what}: keys"), g.keys.data(), w.keys.data(), F32);
            assert_close(&format!("{name}, {what}: values"), g.values.data(), w.values.data(), F32);
        }
    }
    let layer = gpu.layer();
    let d = l.spec.hidden_dim;
    let uncached = layer.plan(&[2, 40, d], &[2, 40, d], None, &Default::default()).unwrap();
    let mut kv = layer.new_cache(2, 600).unwrap();
    let (nkv, h) = (l.spec.config.num_key_value_heads, l.spec.config.head_dim);
    let held = HostTensor::zeros([2, 520, nkv, h]);
    kv.load(&CacheContents { keys: held.clone(), values: held, lengths: vec![520; 2] }).unwrap();
    let step = layer.plan_cached(&kv, &[2, 1, d], false, &[1, 1]).unwrap();
    (uncached, step)
}

/// The separate passes (a call asking for the scores) of `l`'s layer on `ctx`, against the oracle's
/// output on the same call: the layer's `GroupQueryAttention` call on `query = value = x` with
/// KerasHub's causal mask.
fn check_scores(name: &str, ctx: &GpuContext, l: &Layer) {
    let oracle = gqa::reference::KerasHubLayer::new(l.spec.clone(), l.weights.clone(), l.extra.clone()).unwrap();
    let gpu = gqa::gpu::KerasHubLayer::new(ctx, l.spec.clone(), &l.weights, &l.extra).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let x = random_tensor(&[2, 33, l.spec.hidden_dim], &mut rng);
    let mask = causal(2, 33, 33, 0, 2);
    let want = oracle.call(&KerasHubCall::new(&x).with_mask(&mask)).unwrap();
    let options = gqa::core::CallOptions::default().with_attention_mask(mask).with_attention_scores(true);
    let plan = gpu.layer().plan(x.shape(), x.shape(), None, &options).unwrap();
    assert!(plan.route.attention.uses_probs(), "{name}: scores take the separate passes");
    let got = gpu.layer().forward(&x, &x, None, &options).unwrap();
    assert_close(&format!("{name}, with scores"), got.output.data(), want.output.data(), F32);
}

fn gemma3() -> Layer {
    let json = serde_json::json!({
        "head_dim": 32, "num_query_heads": 4, "num_key_value_heads": 2, "logit_soft_cap": 3.0,
        "use_sliding_window_attention": true, "sliding_window_size": 9, "use_query_key_norm": true,
        "rope_wavelength": 10000.0, "rope_scaling_factor": 2.0,
    });
    layer(KerasHubClass::Gemma3, json, 48, 5)
}

fn gpt_oss() -> Layer {
    let json = serde_json::json!({
        "num_query_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "rope_scaling_factor": 4.0,
        "sliding_window": 6,
    });
    layer(KerasHubClass::GptOss, json, 48, 6)
}

#[test]
fn extensions_on_every_attention_path_match_kerashub() {
    for ctx in adapters() {
        let _gl = gl_guard(ctx);
        let name = adapter_name(ctx);
        let gpu = gpu_tuning(ctx, Precision::F32);
        let tunings = [
            ("own tuning", ctx.tuning()),
            ("GPU tuning", gpu),
            ("GPU tuning, fused split pass", Tuning { decode_kernel: false, ..gpu }),
        ];
        for (tuning_name, tuning) in tunings {
            let tuned = ctx.clone().with_tuning(tuning);
            let what = format!("{name}, {tuning_name}");
            let (uncached, step) = check(&format!("Gemma 3, {what}"), &tuned, &gemma3());
            if tuning_name.starts_with("GPU") {
                // The soft cap and the window ride on the fused and split kernels.
                check_plan(&format!("Gemma 3 uncached, {what}"), &uncached, Path::Fused);
                check_plan(&format!("Gemma 3 step, {what}"), &step, Path::Split);
            } else {
                assert!(!uncached.route.attention.uses_probs(), "{what}: {:?}", uncached.route.attention);
                assert!(!step.route.attention.uses_probs(), "{what}: {:?}", step.route.attention);
            }
            let (uncached, step) = check(&format!("GPT-OSS, {what}"), &tuned, &gpt_oss());
            // The sinks ride on every path too.
            if tuning_name.starts_with("GPU") {
                check_plan(&format!("GPT-OSS uncached, {what}"), &uncached, Path::Fused);
                check_plan(&format!("GPT-OSS step, {what}"), &step, Path::Split);
            } else {
                assert!(!uncached.route.attention.uses_probs(), "{what}: {:?}", uncached.route.attention);
                assert!(!step.route.attention.uses_probs(), "{what}: {:?}", step.route.attention);
            }
            // And in the separate passes, which scores take.
            check_scores(&format!("GPT-OSS, {what}"), &tuned, &gpt_oss());
        }
    }
}
