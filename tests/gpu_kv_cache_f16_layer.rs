//! Decoding with a layer that computes in f16 (Keras' `mixed_float16`): its KV cache stores the
//! f16 keys and values its projections produce, copied in as they are, and its f16 attention
//! kernels read them. Against the oracle over an f16 cache at the f16 tolerance (atol = rtol =
//! 5e-3), on every adapter with `SHADER_F16`, under the adapter's tuning (the separate f16 passes
//! on CPU adapters), with the fused f16 kernel, and under the GPU tuning (fused, and flash-decoding
//! split over long caches); linear caches, ragged prompts and a ring with attention sinks.
//! Where the device lacks `SHADER_F16` the layer runs in f32 and so does its cache.

mod common;

use common::cache_schedules::{Schedule, schedules};
use common::{F16, adapter_name, adapters, assert_close, f16_adapters, random_tensor, random_weights, rng};
use gqa::core::{BufferId, CacheShape, CacheStorage, GqaConfig, GqaError, Kernel, LayerDims, Precision, Step, Tuning};
use gqa::gpu::{GpuContext, GpuError, GqaLayer, KvCache, WarmCall};

/// The contexts of an f16 adapter: its own tuning, the fused f16 kernel forced on, and the GPU
/// tuning (fused kernel, split decode).
fn contexts(ctx: &GpuContext) -> Vec<GpuContext> {
    let mut out = vec![ctx.clone()];
    for tuning in [Tuning { fused_attention: true, ..ctx.tuning() }, Tuning::GPU] {
        if !out.iter().any(|c| c.tuning() == tuning) {
            out.push(ctx.clone().with_tuning(tuning));
        }
    }
    out
}

/// The names of the kernels a cached call of `t` tokens dispatches, and whether it copies its keys
/// and values into the cache.
fn plan_of(layer: &GqaLayer, cache: &KvCache, t: usize) -> (Vec<&'static str>, bool) {
    let plan = layer.plan_cached(cache, &[cache.batch(), t, layer.dims().query_dim], false, &vec![t; cache.batch()]);
    let plan = plan.unwrap();
    let kernels = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Dispatch(p) => Some(p.kernel.name()),
            _ => None,
        })
        .collect();
    let copies = plan.steps.iter().any(|s| matches!(s, Step::Copy(c) if c.dst == BufferId::KeyCache));
    assert!(plan.passes().all(|p| !matches!(p.kernel, Kernel::AppendToCache(_) | Kernel::CacheAttention(_))));
    (kernels, copies)
}

/// The prefill's tokens per sequence: ragged in a linear cache of two sequences (the second's
/// prompt 3 tokens shorter), else all of them.
fn prompt_lengths(s: &Schedule) -> Option<Vec<usize>> {
    (s.batch == 2 && s.ring.is_none()).then(|| vec![s.calls[0], s.calls[0] - 3])
}

impl Schedule {
    /// Runs the schedule on the GPU and on the oracle's f16 cache in lockstep: every output, and at
    /// the end the stored keys and values, at the f16 tolerance. Returns the kernels the calls ran.
    fn run(&self, ctx: &GpuContext, seed: u64) -> Vec<&'static str> {
        let name = format!("{} on {} ({:?})", self.name, adapter_name(ctx), ctx.tuning().matmul);
        let weights = random_weights(&self.config, self.dims, seed);
        let mut layer = GqaLayer::with_precision(ctx, &self.config, &weights, Precision::F16).unwrap();
        assert_eq!(layer.precision(), Precision::F16, "{name}");
        layer.set_poison_outputs(true);
        let shape = self.shape(CacheStorage::F16);
        let mut cache = match self.ring {
            Some((chunk, keep)) => KvCache::new_ring(&layer, self.batch, chunk, keep).unwrap(),
            None => KvCache::new(&layer, self.batch, shape.capacity).unwrap(),
        };
        assert_eq!(cache.shape(), shape, "{name}: the layer's default cache");
        let mut oracle = gqa::reference::KvCache::from_shape(&self.config, shape).unwrap();
        let total = self.total();
        let ragged = prompt_lengths(self);
        let mut r = rng(seed + 1);
        let query = random_tensor(&[self.batch, total, self.dims.query_dim], &mut r);
        let value = random_tensor(&[self.batch, total, self.dims.value_dim], &mut r);
        let mut kernels = Vec::new();
        let mut at = 0;
        for (i, &n) in self.calls.iter().enumerate() {
            let (q, v) = (query.time_slice(at..at + n).unwrap(), value.time_slice(at..at + n).unwrap());
            let (planned, copies) = plan_of(&layer, &cache, n);
            assert!(copies, "{name}: call {i} copies its keys and values into the cache");
            kernels.extend(planned);
            let (got, want) = if i == 0 {
                let lengths = ragged.as_deref();
                let got = layer.prefill(&mut cache, &q, &v, None, lengths);
                (got, oracle.prefill(&self.config, &weights, &q, &v, None, lengths))
            } else {
                (layer.step(&mut cache, &q, &v, None), oracle.step(&self.config, &weights, &q, &v, None))
            };
            let (got, want) = (got.unwrap_or_else(|e| panic!("{name}: call {i}: {e}")), want.unwrap());
            // Rows of a ragged prompt's padding are meaningless: compare each sequence's own rows.
            let rows = |b: usize| if i == 0 { ragged.as_ref().map_or(n, |l| l[b]) } else { n };
            let dq = self.dims.query_dim;
            for b in 0..self.batch {
                let span = b * n * dq..(b * n + rows(b)) * dq;
                let what = format!("{name}: call {i} ({n} tokens at {at}), sequence {b}");
                assert_close(&what, &got.data()[span.clone()], &want.data()[span], F16);
            }
            at += n;
        }
        let (got, want) = (cache.read().unwrap(), oracle.read().unwrap());
        assert_eq!(got.lengths, want.lengths, "{name}");
        assert_close(&format!("{name}: stored keys"), got.keys.data(), want.keys.data(), F16);
        assert_close(&format!("{name}: stored values"), got.values.data(), want.values.data(), F16);
        assert_eq!(cache.bytes_per_token(), shape.bytes_per_token(), "{name}");
        kernels
    }
}

#[test]
fn f16_layers_decode_over_their_f16_cache_on_every_path() {
    for base in f16_adapters() {
        let mut seen = Vec::new();
        for ctx in contexts(base) {
            for (i, case) in schedules().iter().enumerate() {
                seen.extend(case.run(&ctx, 300 + i as u64));
            }
        }
        // The f16 separate passes, the fused f16 kernel and its split form with the reduce ran.
        for kernel in ["qk_grouped_f16", "attention_fused_f16", "attention_split_f16", "attention_reduce_f16"] {
            assert!(seen.contains(&kernel), "{}: {kernel} never ran ({seen:?})", adapter_name(base));
        }
        assert!(seen.iter().all(|k| !k.contains("cache")), "{}: {seen:?}", adapter_name(base));
    }
}

/// An f16 layer's cache holds f16: an f32 or int8 one is a typed error naming both (the
/// quantizing append and the kernels over a quantized cache run in f32), and so is a cached plan
/// of an f16 layer over such a shape.
#[test]
fn an_f16_layer_refuses_caches_of_other_storages() {
    let config = GqaConfig::new(8, 4, 2);
    let dims = LayerDims { query_dim: 8, key_dim: 8, value_dim: 8 };
    let weights = random_weights(&config, dims, 7);
    for ctx in f16_adapters() {
        let layer = GqaLayer::with_precision(ctx, &config, &weights, Precision::F16).unwrap();
        let cache = layer.new_cache(1, 16).unwrap();
        assert_eq!(cache.storage(), CacheStorage::F16, "{}", adapter_name(ctx));
        // A warm-up of its decoding names the storage too.
        let decode = |storage| WarmCall::Decode {
            batch: 1,
            capacity: 16,
            prompt_len: 4,
            step_len: 1,
            key_given: false,
            storage,
        };
        let kernels = layer.warm_up(&[decode(CacheStorage::F16)]).unwrap();
        assert!(kernels.iter().all(|k| !matches!(k, Kernel::AppendToCache(_) | Kernel::CacheAttention(_))));
        assert!(kernels.iter().any(|k| k.needs_shader_f16()), "{kernels:?}");
        assert!(layer.warm_up(&[decode(CacheStorage::Int8)]).is_err());
        for storage in [CacheStorage::F32, CacheStorage::Int8] {
            let shape = CacheShape::new(&config, 1, 16).unwrap().with_storage(storage).unwrap();
            match KvCache::from_shape(&layer, shape) {
                Err(GpuError::Invalid(GqaError::IncompatibleOptions(m))) => {
                    assert!(m.contains(&format!("an {storage} cache needs an f32 layer")), "{m}");
                    assert!(m.contains("in an f16 KV cache"), "{m}");
                }
                other => panic!("{storage}: {other:?}"),
            }
        }
    }
}

/// Where the device lacks `SHADER_F16` (GL llvmpipe) an f16 layer runs in f32, and its default
/// cache is f32 too, as `storage` and `bytes_per_token` report.
#[test]
fn without_shader_f16_the_layer_and_its_cache_fall_back_to_f32() {
    let config = GqaConfig::new(8, 4, 2);
    let dims = LayerDims { query_dim: 8, key_dim: 8, value_dim: 8 };
    let weights = random_weights(&config, dims, 8);
    for ctx in adapters() {
        let _gl = common::gl_guard(ctx);
        let layer = GqaLayer::with_precision(ctx, &config, &weights, Precision::F16).unwrap();
        let cache = layer.new_cache(1, 16).unwrap();
        let want = if ctx.supports_f16() { CacheStorage::F16 } else { CacheStorage::F32 };
        assert_eq!(layer.precision() == Precision::F16, ctx.supports_f16(), "{}", adapter_name(ctx));
        assert_eq!(cache.storage(), want, "{}", adapter_name(ctx));
        let value_bytes = if want == CacheStorage::F16 { 2 } else { 4 };
        assert_eq!(cache.bytes_per_token(), 2 * 2 * 8 * value_bytes, "{}", adapter_name(ctx));
    }
}
