//! f16 and int8 KV caches against the oracle's cache of the same storage, on every adapter and
//! every attention path that reads them (decode, block, fused, fused split), linear and ring.
//!
//! The inputs and weights are random dyadic rationals (inputs k/16, weights k/64, |k| <= 16 and 64):
//! every projection is then exact in f32 and in f64, in any summation order, so the GPU's append
//! pass and the oracle quantize the very same values, and any difference in what they store is a
//! bug (the stored words are compared exactly). The attention over the stored values is compared at
//! the f32 tolerance (1e-5, 1e-4).

mod common;

use common::cache_schedules::{Schedule, schedules};
use common::{F32, adapter_name, adapters, assert_close, gl_guard, random_weights, rng};
use gqa::core::{CacheShape, CacheStorage, GqaConfig, GqaError, HostTensor, Kernel, LayerDims, Step, Tuning, Weights};
use gqa::gpu::{GpuContext, GpuError, GqaLayer, KvCache};
use rand::Rng;

/// Random multiples of 1/16 in [-1, 1].
fn dyadic_tensor(shape: &[usize], seed: u64) -> HostTensor {
    let mut r = rng(seed);
    let n = shape.iter().product();
    HostTensor::new(shape.to_vec(), (0..n).map(|_| r.random_range(-16i32..=16) as f32 / 16.0).collect()).unwrap()
}

/// Random non-zero weights rounded to multiples of 1/64 (|w| <= 1).
fn dyadic_weights(config: &GqaConfig, dims: LayerDims, seed: u64) -> Weights {
    let mut w = random_weights(config, dims, seed);
    let round = |t: &mut HostTensor| {
        for x in t.data_mut() {
            *x = ((*x * 64.0).round() / 64.0).clamp(-1.0, 1.0);
        }
    };
    for d in [&mut w.query, &mut w.key, &mut w.value, &mut w.output].into_iter().chain(w.gate.as_mut()) {
        round(&mut d.kernel);
        if let Some(b) = d.bias.as_mut() {
            round(b);
        }
    }
    w
}

/// The tunings to run: the adapter's own (decode kernel and block attention on CPU adapters), the
/// GPU one (fused kernel, fused split), and the block attention for every call.
fn contexts(ctx: &GpuContext) -> Vec<GpuContext> {
    let mut out = vec![ctx.clone()];
    for tuning in [Tuning::GPU, Tuning { block_attention: true, split_decode: false, ..ctx.tuning() }] {
        if !out.iter().any(|c| c.tuning() == tuning) {
            out.push(ctx.clone().with_tuning(tuning));
        }
    }
    out
}

/// The attention kernels a plan of `layer` over `cache` dispatches for a call of `t` tokens.
fn attention_kernels(layer: &GqaLayer, cache: &KvCache, t: usize) -> Vec<&'static str> {
    let plan = layer.plan_cached(cache, &[cache.batch(), t, layer.dims().query_dim], false, &vec![t; cache.batch()]);
    plan.unwrap()
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Dispatch(p) if matches!(p.kernel, Kernel::CacheAttention(_)) => Some(p.kernel.name()),
            _ => None,
        })
        .collect()
}

impl Schedule {
    /// Runs the schedule on the GPU and on the oracle's cache in lockstep: every output, and at the
    /// end the stored contents (exactly).
    fn run(&self, ctx: &GpuContext, storage: CacheStorage, seed: u64) -> Vec<&'static str> {
        let name = format!("{} {storage} on {} ({:?})", self.name, adapter_name(ctx), ctx.tuning().matmul);
        let weights = dyadic_weights(&self.config, self.dims, seed);
        let mut layer = GqaLayer::new(ctx, &self.config, &weights).unwrap();
        layer.set_poison_outputs(true);
        let shape = self.shape(storage);
        let mut cache = KvCache::from_shape(&layer, shape).unwrap();
        let mut oracle = gqa::reference::KvCache::from_shape(&self.config, shape).unwrap();
        let total = self.total();
        let query = dyadic_tensor(&[self.batch, total, self.dims.query_dim], seed + 1);
        let value = dyadic_tensor(&[self.batch, total, self.dims.value_dim], seed + 2);
        let mut kernels = Vec::new();
        let mut at = 0;
        for (i, &n) in self.calls.iter().enumerate() {
            let (q, v) = (query.time_slice(at..at + n).unwrap(), value.time_slice(at..at + n).unwrap());
            kernels.extend(attention_kernels(&layer, &cache, n));
            let (got, want) = if i == 0 {
                let got = layer.prefill(&mut cache, &q, &v, None, None);
                (got, oracle.prefill(&self.config, &weights, &q, &v, None, None))
            } else {
                (layer.step(&mut cache, &q, &v, None), oracle.step(&self.config, &weights, &q, &v, None))
            };
            let (got, want) = (got.unwrap_or_else(|e| panic!("{name}: call {i}: {e}")), want.unwrap());
            assert_close(&format!("{name}: call {i} ({n} tokens at {at})"), got.data(), want.data(), F32);
            at += n;
        }
        let (got, want) = (cache.read().unwrap(), oracle.read().unwrap());
        assert_eq!(got.lengths, want.lengths, "{name}");
        for (what, g, w) in [("keys", &got.keys, &want.keys), ("values", &got.values, &want.values)] {
            let same = g.data().iter().zip(w.data()).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{name}: the stored {what} differ from the oracle's quantization");
        }
        assert_eq!(cache.bytes_per_token(), shape.bytes_per_token(), "{name}");
        kernels
    }
}

#[test]
fn quantized_caches_match_the_oracles_quantized_cache_on_every_path() {
    for base in adapters() {
        let _gl = gl_guard(base);
        let mut seen = Vec::new();
        for ctx in contexts(base) {
            for (i, case) in schedules().iter().enumerate() {
                for storage in [CacheStorage::F16, CacheStorage::Int8] {
                    seen.extend(case.run(&ctx, storage, 100 + i as u64));
                }
            }
        }
        // Every quantized path ran on this adapter.
        for path in ["decode", "block", "fused", "split"] {
            for storage in ["f16", "int8"] {
                let name = format!("attention_{path}_cache_{storage}");
                assert!(seen.contains(&name.as_str()), "{}: {name} never ran ({seen:?})", adapter_name(base));
            }
        }
    }
}

/// The append pass against the host quantizer on values that stress it: f16 ties (to even), values
/// that overflow f16, int8 ties, heads of one large and many tiny values, values below f32's
/// smallest normal, a head of zeros, and a NaN (its head reads back as NaN in int8); f16
/// subnormals alone in the first token. The key and value projections are the identity, so the
/// stored keys and values are the inputs themselves; the attention over them against the oracle's.
#[test]
fn the_append_pass_quantizes_exactly_as_the_host() {
    let (nkv, h) = (2, 8);
    let config = GqaConfig { use_bias: false, ..GqaConfig::new(h, 2, nkv) };
    let d = nkv * h;
    let dims = LayerDims { query_dim: d, key_dim: d, value_dim: d };
    let mut weights = random_weights(&config, dims, 5);
    let identity: Vec<f32> = (0..d * d).map(|i| if i / d == i % d { 1.0 } else { 0.0 }).collect();
    weights.key.kernel = HostTensor::new(weights.key.kernel.shape().to_vec(), identity.clone()).unwrap();
    weights.value.kernel = HostTensor::new(weights.value.kernel.shape().to_vec(), identity).unwrap();
    let one = 1.0f32;
    let ulp16 = 2f32.powi(-10);
    // The first token alone: f16 subnormals only (the first output row reads nothing else).
    let subnormals: [f32; 16] = std::array::from_fn(|i| (i as f32 - 7.5) * 7.0e-6);
    let tokens: Vec<[f32; 16]> = vec![
        subnormals,
        // f16 ties: 1 + half an f16 ulp (to 1), 1 + 1.5 ulps (to 1 + 2 ulps), and overflow.
        [
            one + ulp16 / 2.0,
            one + 1.5 * ulp16,
            65519.0,
            65520.0,
            -70000.0,
            3.0e-8,
            6.0e-5,
            -0.333,
            2.5,
            -3.5,
            1.5,
            127.0,
            0.5,
            -0.5,
            0.25,
            100.0,
        ],
        // int8: amax exactly 127 * 2^-3 and ties at half steps; a head of one large value.
        [15.875, 0.0625, -0.1875, 0.3125, 7.9375, -15.875, 1e-3, 0.0, 1000.0, 1e-6, -1e-6, 3.0, 0.0, 0.0, 0.0, 0.0],
        // Below f32's smallest normal, a head of zeros.
        [1e-39, -1e-40, 0.5, 1e-39, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        // A NaN in the second head.
        [0.5, 0.25, 1.0, -1.0, 2.0, 3.0, 4.0, 5.0, 1.0, f32::NAN, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    ];
    let n = tokens.len();
    let value = HostTensor::new([1, n, d], tokens.iter().flatten().copied().collect()).unwrap();
    // The tokens every storage holds finite (no f16 overflow, no NaN): every key's value reaches
    // every row (masked ones times 0), so one infinity or NaN would make every output NaN.
    let finite: Vec<f32> = [0, 2, 3].iter().flat_map(|&i| tokens[i]).collect();
    let finite = HostTensor::new([1, 3, d], finite).unwrap();
    for ctx in adapters() {
        let _gl = gl_guard(ctx);
        let layer = GqaLayer::new(ctx, &config, &weights).unwrap();
        for storage in [CacheStorage::F16, CacheStorage::Int8] {
            // The attention reads what was stored (the kernels' own dequantization, f16
            // subnormals included) as the oracle does.
            let shape = CacheShape::new(&config, 1, n).unwrap().with_storage(storage).unwrap();
            let mut cache = KvCache::from_shape(&layer, shape).unwrap();
            let out = layer.prefill(&mut cache, &finite, &finite, None, None).unwrap();
            let mut oracle = gqa::reference::KvCache::from_shape(&config, shape).unwrap();
            let want = oracle.prefill(&config, &weights, &finite, &finite, None, None).unwrap();
            assert_close(&format!("{} {storage}: output", adapter_name(ctx)), out.data(), want.data(), F32);
            let shape = CacheShape::new(&config, 1, n).unwrap().with_storage(storage).unwrap();
            let mut cache = KvCache::from_shape(&layer, shape).unwrap();
            layer.prefill(&mut cache, &value, &value, None, None).unwrap();
            let got = cache.read().unwrap();
            // The projection spreads a NaN over its whole row (NaN * 0 is NaN).
            let projected = tokens.iter().map(|t| if t.iter().any(|x| x.is_nan()) { [f32::NAN; 16] } else { *t });
            let want: Vec<f32> =
                projected.flat_map(|t| t.chunks(h).flat_map(|x| storage.round_trip(x)).collect::<Vec<_>>()).collect();
            for (what, t) in [("keys", &got.keys), ("values", &got.values)] {
                for (i, (g, w)) in t.data().iter().zip(&want).enumerate() {
                    let same = g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()) || (*g == 0.0 && *w == 0.0);
                    assert!(same, "{} {storage} {what}[{i}]: stored {g:e}, host {w:e}", adapter_name(ctx));
                }
            }
        }
    }
}

#[test]
fn quantized_caches_report_their_bytes_and_refuse_what_they_cannot_hold() {
    let ctx = &adapters()[0];
    let config = GqaConfig::new(64, 8, 2);
    let dims = LayerDims { query_dim: 32, key_dim: 32, value_dim: 32 };
    let layer = GqaLayer::new(ctx, &config, &random_weights(&config, dims, 1)).unwrap();
    let bytes: Vec<u64> = CacheStorage::ALL
        .into_iter()
        .map(|s| {
            let shape = CacheShape::new(&config, 1, 10).unwrap().with_storage(s).unwrap();
            KvCache::from_shape(&layer, shape).unwrap().bytes_per_token()
        })
        .collect();
    // K and V of 2 heads of 64: f32 1,024 bytes, f16 512, int8 2 x 2 x (64 + 4) = 272.
    assert_eq!(bytes, [1024, 512, 272]);
    let odd = GqaConfig::new(6, 4, 2);
    let refused = CacheShape::new(&odd, 1, 4).unwrap().with_storage(CacheStorage::Int8);
    assert!(matches!(refused, Err(GqaError::IncompatibleOptions(_))), "{refused:?}");
    // The separate passes have no quantized form: H above 256 is refused at the call.
    let wide = GqaConfig::new(260, 2, 1);
    let dims = LayerDims { query_dim: 8, key_dim: 8, value_dim: 8 };
    let layer = GqaLayer::new(ctx, &wide, &random_weights(&wide, dims, 2)).unwrap();
    let shape = CacheShape::new(&wide, 1, 4).unwrap().with_storage(CacheStorage::F16).unwrap();
    let mut cache = KvCache::from_shape(&layer, shape).unwrap();
    let x = dyadic_tensor(&[1, 2, 8], 3);
    let err = layer.prefill(&mut cache, &x, &x, None, None);
    assert!(matches!(err, Err(GpuError::Invalid(GqaError::IncompatibleOptions(_)))), "{err:?}");
}

/// The headline layer's decoding over f16 and int8 caches of 8,191 loaded tokens (Nq=32, Nkv=8,
/// H=128, Dq=4096): a step of 1 token, then one of 16, on every adapter under its own tuning (the
/// decode kernel, the block attention) and under `Tuning::GPU` (the fused kernel's split mode),
/// against the oracle's cache of the same storage loaded with the same tokens.
#[test]
fn headline_decoding_over_quantized_caches_matches_the_oracle() {
    let config = GqaConfig::new(128, 32, 8);
    let dims = LayerDims { query_dim: 4096, key_dim: 4096, value_dim: 4096 };
    let weights = dyadic_weights(&config, dims, 61);
    let past = 8191;
    let mut r = rng(62);
    let contents = gqa::core::CacheContents {
        keys: common::random_tensor(&[1, past, 8, 128], &mut r),
        values: common::random_tensor(&[1, past, 8, 128], &mut r),
        lengths: vec![past],
    };
    let steps: Vec<HostTensor> = [1, 16].iter().map(|&t| dyadic_tensor(&[1, t, 4096], 63 + t as u64)).collect();
    for storage in [CacheStorage::F16, CacheStorage::Int8] {
        let shape = CacheShape::new(&config, 1, past + 17).unwrap().with_storage(storage).unwrap();
        let mut oracle = gqa::reference::KvCache::from_shape(&config, shape).unwrap();
        oracle.load(&contents).unwrap();
        let wants: Vec<HostTensor> =
            steps.iter().map(|x| oracle.step(&config, &weights, x, x, None).unwrap()).collect();
        for base in adapters() {
            let _gl = gl_guard(base);
            for ctx in [base.clone(), base.clone().with_tuning(Tuning::GPU)] {
                let name = format!("{storage} cache of {past} on {} ({:?})", adapter_name(&ctx), ctx.tuning().matmul);
                let mut layer = GqaLayer::new(&ctx, &config, &weights).unwrap();
                layer.set_poison_outputs(true);
                let mut cache = KvCache::from_shape(&layer, shape).unwrap();
                cache.load(&contents).unwrap();
                for (x, want) in steps.iter().zip(&wants) {
                    let kernels = attention_kernels(&layer, &cache, x.shape()[1]);
                    let got = layer.step(&mut cache, x, x, None).unwrap_or_else(|e| panic!("{name}: {e}"));
                    let what = format!("{name}: step of {} ({kernels:?})", x.shape()[1]);
                    assert!(!kernels.is_empty(), "{what}: no quantized attention kernel");
                    assert_close(&what, got.data(), want.data(), F32);
                }
            }
        }
    }
}
