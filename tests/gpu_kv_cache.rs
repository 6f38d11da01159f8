//! The GPU KV cache against the oracle: prefill(P) then steps gives, token by token, the rows of one
//! causal call over all P + N tokens (the oracle's, which has no cache): single- and multi-token
//! steps, ragged batches, a sliding window, truncate-then-continue, grow, on every adapter and both
//! attention paths (separate passes, fused / split decode). Plus the cache's errors.

mod common;

use common::{F32, adapter_name, adapters, assert_close, gl_guard, random_tensor, random_weights, rng};
use gqa::core::{BlockAttention, BlockLanes, Operands, Precision, kernels};
use gqa::core::{BufferId, CallOptions, GqaConfig, GqaError, HostTensor, Kernel, LayerDims, Step, Tuning, Weights};
use gqa::gpu::{GpuContext, GpuError, GqaLayer, KvCache};
use proptest::prelude::*;

/// Rows `[from, to)` along T of a (B, L, D) tensor, for the sequences `batch`.
fn rows(x: &HostTensor, batch: std::ops::Range<usize>, from: usize, to: usize) -> HostTensor {
    let (l, d) = (x.shape()[1], x.shape()[2]);
    let mut out = Vec::new();
    for b in batch.clone() {
        out.extend_from_slice(&x.data()[(b * l + from) * d..(b * l + to) * d]);
    }
    HostTensor::new([batch.len(), to - from, d], out).unwrap()
}

/// Whole sequences: query, value and (when given) key, (B, L, D) each.
struct Sequences {
    query: HostTensor,
    value: HostTensor,
    key: Option<HostTensor>,
}

impl Sequences {
    fn random(batch: usize, len: usize, dims: LayerDims, key_given: bool, seed: u64) -> Self {
        let mut r = rng(seed);
        let query = random_tensor(&[batch, len, dims.query_dim], &mut r);
        let value = random_tensor(&[batch, len, dims.value_dim], &mut r);
        let key = key_given.then(|| random_tensor(&[batch, len, dims.key_dim], &mut r));
        Self { query, value, key }
    }

    /// Tokens `[from, to)` of the sequences `batch`.
    fn slice(&self, batch: std::ops::Range<usize>, from: usize, to: usize) -> Self {
        Self {
            query: rows(&self.query, batch.clone(), from, to),
            value: rows(&self.value, batch.clone(), from, to),
            key: self.key.as_ref().map(|k| rows(k, batch, from, to)),
        }
    }

    /// The oracle: one causal call over these tokens (T = S, so top-left = bottom-right).
    fn oracle(&self, config: &GqaConfig, weights: &Weights) -> HostTensor {
        let options = CallOptions { use_causal_mask: true, ..Default::default() };
        gqa::reference::forward(config, weights, &self.query, &self.value, self.key.as_ref(), &options)
            .expect("oracle")
            .output
    }
}

/// One layer under test.
struct Setup {
    name: String,
    config: GqaConfig,
    dims: LayerDims,
    weights: Weights,
    layer: GqaLayer,
}

impl Setup {
    fn new(ctx: &GpuContext, name: &str, config: GqaConfig, dims: LayerDims, seed: u64) -> Self {
        let weights = random_weights(&config, dims, seed);
        let mut layer = GqaLayer::new(ctx, &config, &weights).unwrap();
        layer.set_poison_outputs(true);
        Self { name: format!("{name} on {}", adapter_name(ctx)), config, dims, weights, layer }
    }

    fn step(&self, cache: &mut KvCache, x: &Sequences) -> HostTensor {
        self.layer
            .step(cache, &x.query, &x.value, x.key.as_ref())
            .unwrap_or_else(|e| panic!("{}: step: {e}", self.name))
    }

    fn prefill(&self, cache: &mut KvCache, x: &Sequences, lengths: Option<&[usize]>) -> HostTensor {
        self.layer
            .prefill(cache, &x.query, &x.value, x.key.as_ref(), lengths)
            .unwrap_or_else(|e| panic!("{}: prefill: {e}", self.name))
    }

    /// Prefill `prompt` tokens, then steps of `steps[k]` tokens each: every output row equals the
    /// oracle's row of one causal call over the whole sequence.
    fn check_uniform(&self, batch: usize, prompt: usize, steps: &[usize], key_given: bool, seed: u64) {
        let total = prompt + steps.iter().sum::<usize>();
        let all = Sequences::random(batch, total, self.dims, key_given, seed);
        let want = all.oracle(&self.config, &self.weights);
        let mut cache = self.layer.new_cache(batch, total + 3).unwrap();
        let got = self.prefill(&mut cache, &all.slice(0..batch, 0, prompt), None);
        let label = format!("{}: prefill {prompt}", self.name);
        assert_close(&label, got.data(), rows(&want, 0..batch, 0, prompt).data(), F32);
        let mut at = prompt;
        for &n in steps {
            let got = self.step(&mut cache, &all.slice(0..batch, at, at + n));
            let label = format!("{}: step of {n} at {at}", self.name);
            assert_close(&label, got.data(), rows(&want, 0..batch, at, at + n).data(), F32);
            at += n;
            assert_eq!(cache.lengths(), vec![at; batch], "{label}");
        }
    }
}

fn dims(dq: usize, dv: usize, dk: Option<usize>) -> LayerDims {
    LayerDims { query_dim: dq, key_dim: dk.unwrap_or(dv), value_dim: dv }
}

/// The tunings to run on an adapter: its own, the GPU one (fused attention) when different, and the
/// block attention kernel for every step (split decode off, so single-token steps take it too).
fn contexts(ctx: &GpuContext) -> Vec<GpuContext> {
    let mut out = vec![ctx.clone()];
    if ctx.tuning() != Tuning::GPU {
        out.push(ctx.clone().with_tuning(Tuning::GPU));
    }
    let block = Tuning { block_attention: true, split_decode: false, ..ctx.tuning() };
    if ctx.tuning() != block {
        out.push(ctx.clone().with_tuning(block));
    }
    out
}

#[test]
fn prefill_then_single_token_steps_match_one_causal_call() {
    for base in adapters() {
        let _gl = gl_guard(base);
        for ctx in contexts(base) {
            for (name, config, d, batch, key) in [
                ("GQA R=2, bias", GqaConfig::new(8, 4, 2), dims(12, 10, None), 2, false),
                ("MQA, key given", GqaConfig::new(8, 4, 1), dims(16, 8, Some(6)), 1, true),
                (
                    "MHA, no bias, gate",
                    GqaConfig { use_bias: false, use_gate: true, ..GqaConfig::new(4, 3, 3) },
                    dims(9, 9, None),
                    3,
                    false,
                ),
            ] {
                let s = Setup::new(&ctx, &format!("{name} {:?}", ctx.tuning().matmul), config, d, 7);
                s.check_uniform(batch, 5, &[1, 1, 1, 1, 1, 1], key, 11);
            }
        }
    }
}

#[test]
fn multi_token_steps_and_a_long_prefix() {
    for base in adapters() {
        let _gl = gl_guard(base);
        for ctx in contexts(base) {
            let s = Setup::new(&ctx, "multi-token steps", GqaConfig::new(8, 8, 2), dims(16, 12, None), 3);
            s.check_uniform(2, 7, &[3, 1, 4, 2], false, 5);
            // A prefix of 600 keys: short steps take the split (flash-decoding) path where it applies.
            let s = Setup::new(&ctx, "long prefix", GqaConfig::new(8, 4, 1), dims(8, 8, None), 4);
            s.check_uniform(1, 600, &[1, 2], false, 6);
        }
    }
}

#[test]
fn sliding_window_matches_the_windowed_causal_call() {
    for base in adapters() {
        let _gl = gl_guard(base);
        for ctx in contexts(base) {
            let config = GqaConfig { sliding_window: Some(4), ..GqaConfig::new(8, 4, 2) };
            let s = Setup::new(&ctx, "window 4", config, dims(12, 12, None), 9);
            s.check_uniform(2, 6, &[1, 2, 1, 1], false, 10);
        }
    }
}

/// Ring caches (window 5; with and without kept first tokens, chunks of 1 and 3) over sequences
/// several times their capacity, on every adapter and attention path: every call equals the
/// oracle's ring, and all of them one causal call over the whole sequence under the window (and
/// the sinks, through a mask); the memory never grows.
#[test]
fn ring_caches_match_one_windowed_call_over_the_whole_sequence() {
    let window = 5;
    for base in adapters() {
        let _gl = gl_guard(base);
        for ctx in contexts(base) {
            for (keep_first, chunk) in [(0, 1), (2, 3)] {
                let config = GqaConfig { sliding_window: Some(window), ..GqaConfig::new(8, 4, 2) };
                let s =
                    Setup::new(&ctx, &format!("ring keep {keep_first} chunk {chunk}"), config, dims(12, 12, None), 21);
                let total = 40;
                let all = Sequences::random(2, total, s.dims, false, 22);
                let mut cache = KvCache::new_ring(&s.layer, 2, chunk, keep_first).unwrap();
                let mut oracle = gqa::reference::KvCache::new_ring(&s.config, 2, chunk, keep_first).unwrap();
                let bytes = cache.device_bytes();
                let mut outputs = Vec::new();
                let mut at = 0;
                for i in 0.. {
                    let n = if i % 2 == 0 { chunk } else { 1 }.min(total - at);
                    if n == 0 {
                        break;
                    }
                    let part = all.slice(0..2, at, at + n);
                    let (got, want) = if i == 0 {
                        let want = oracle.prefill(&s.config, &s.weights, &part.query, &part.value, None, None);
                        (s.prefill(&mut cache, &part, None), want.unwrap())
                    } else {
                        let want = oracle.step(&s.config, &s.weights, &part.query, &part.value, None);
                        (s.step(&mut cache, &part), want.unwrap())
                    };
                    assert_close(&format!("{}: call {i} at {at}", s.name), got.data(), want.data(), F32);
                    outputs.push(got);
                    at += n;
                }
                assert_eq!((cache.lengths(), cache.device_bytes()), (&[total, total][..], bytes), "{}", s.name);
                let plain = GqaConfig { sliding_window: None, ..s.config.clone() };
                let visible =
                    (0..total).flat_map(|q| (0..total).map(move |p| p <= q && (q - p < window || p < keep_first)));
                let options = CallOptions::default()
                    .with_attention_mask(gqa::core::Mask::new([total, total], visible.collect()).unwrap());
                let whole =
                    gqa::reference::forward(&plain, &s.weights, &all.query, &all.value, None, &options).unwrap();
                let joined = HostTensor::concat(&outputs, 1).unwrap();
                assert_close(&format!("{}: against one whole call", s.name), joined.data(), whole.output.data(), F32);
                // What the ring still holds reads back as the oracle's does.
                let (got, want) = (cache.read().unwrap(), oracle.read().unwrap());
                assert_eq!(got.lengths, want.lengths, "{}", s.name);
                assert_close(&format!("{}: keys read", s.name), got.keys.data(), want.keys.data(), F32);
                let too_far = cache.truncate(total - chunk - 1);
                assert!(
                    matches!(too_far, Err(GpuError::Invalid(GqaError::CacheWindow { .. }))),
                    "{}: {too_far:?}",
                    s.name
                );
            }
        }
    }
}

/// Sequences of different lengths in one batch: ragged prompts (right-padded, with lengths), then
/// single-token steps; each sequence against its own oracle call.
#[test]
fn ragged_batch_matches_each_sequence_alone() {
    for base in adapters() {
        let _gl = gl_guard(base);
        for ctx in contexts(base) {
            for window in [None, Some(3)] {
                let config = GqaConfig { sliding_window: window, ..GqaConfig::new(8, 4, 2) };
                let s = Setup::new(&ctx, &format!("ragged, window {window:?}"), config, dims(12, 10, None), 21);
                let lengths = [5usize, 2, 7];
                let (batch, p_max, steps) = (3, 7, 3);
                let all = Sequences::random(batch, p_max + steps, s.dims, false, 22);
                let mut cache = s.layer.new_cache(batch, 16).unwrap();
                let got = s.prefill(&mut cache, &all.slice(0..batch, 0, p_max), Some(&lengths));
                assert_eq!(cache.lengths(), lengths);
                // Sequence b's tokens: its prompt, then the tokens of its steps (taken from p_max on).
                let seq = |b: usize, n: usize| {
                    let own = all.slice(b..b + 1, 0, lengths[b]);
                    let more = all.slice(b..b + 1, p_max, p_max + n);
                    let cat = |a: &HostTensor, m: &HostTensor| {
                        let d = a.shape()[2];
                        let data = [a.data(), m.data()].concat();
                        HostTensor::new([1, data.len() / d, d], data).unwrap()
                    };
                    Sequences { query: cat(&own.query, &more.query), value: cat(&own.value, &more.value), key: None }
                };
                for (b, &len) in lengths.iter().enumerate() {
                    let want = seq(b, 0).oracle(&s.config, &s.weights);
                    let label = format!("{}: prefill, sequence {b}", s.name);
                    assert_close(&label, rows(&got, b..b + 1, 0, len).data(), want.data(), F32);
                }
                for k in 0..steps {
                    let got = s.step(&mut cache, &all.slice(0..batch, p_max + k, p_max + k + 1));
                    for (b, &len) in lengths.iter().enumerate() {
                        let want = seq(b, k + 1).oracle(&s.config, &s.weights);
                        let label = format!("{}: step {k}, sequence {b}", s.name);
                        assert_close(
                            &label,
                            rows(&got, b..b + 1, 0, 1).data(),
                            rows(&want, 0..1, len + k, len + k + 1).data(),
                            F32,
                        );
                    }
                }
                assert_eq!(cache.lengths(), [8, 5, 10]);
            }
        }
    }
}

/// Speculative decoding: steps that are rejected are truncated away and decoding continues with
/// other tokens, as if the rejected ones had never been seen; then the cache grows and goes on.
#[test]
fn truncate_then_continue_and_grow() {
    for ctx in adapters() {
        let _gl = gl_guard(ctx);
        let s = Setup::new(ctx, "truncate", GqaConfig::new(8, 4, 2), dims(12, 12, None), 31);
        let (batch, prompt) = (2, 4);
        let accepted = Sequences::random(batch, prompt + 4, s.dims, false, 32);
        let rejected = Sequences::random(batch, 3, s.dims, false, 33);
        let mut cache = s.layer.new_cache(batch, prompt + 4).unwrap();
        s.prefill(&mut cache, &accepted.slice(0..batch, 0, prompt + 1), None);
        s.step(&mut cache, &rejected);
        assert_eq!(cache.lengths(), [prompt + 4; 2]);
        cache.truncate(prompt + 1).unwrap();
        let got = s.step(&mut cache, &accepted.slice(0..batch, prompt + 1, prompt + 3));
        let want = accepted.slice(0..batch, 0, prompt + 3).oracle(&s.config, &s.weights);
        assert_close(
            &format!("{}: after truncate", s.name),
            got.data(),
            rows(&want, 0..batch, prompt + 1, prompt + 3).data(),
            F32,
        );
        // The cache is full after one more token: grow it (a copy) and continue.
        s.step(&mut cache, &accepted.slice(0..batch, prompt + 3, prompt + 4));
        let one = rejected.slice(0..batch, 0, 1);
        let err = s.layer.step(&mut cache, &one.query, &one.value, None);
        assert!(matches!(err, Err(GpuError::Invalid(GqaError::CacheFull { .. }))), "{err:?}");
        cache.grow(prompt + 8).unwrap();
        let cont = Sequences::random(batch, 2, s.dims, false, 34);
        let got = s.step(&mut cache, &cont);
        let whole = Sequences {
            query: concat_t(&accepted.query, &cont.query),
            value: concat_t(&accepted.value, &cont.value),
            key: None,
        };
        let want = whole.oracle(&s.config, &s.weights);
        assert_close(
            &format!("{}: after grow", s.name),
            got.data(),
            rows(&want, 0..batch, prompt + 4, prompt + 6).data(),
            F32,
        );
        // Reading back: the keys the cache holds are the projections of the accepted tokens.
        let contents = cache.read().unwrap();
        assert_eq!(contents.lengths, [prompt + 6; 2]);
        let wk = s.weights.dense(gqa::core::Dense::Key).unwrap();
        let (dv, kvh) = (s.dims.value_dim, 2 * 8);
        for (b, t) in [(0, 0), (1, prompt + 2), (1, prompt + 5)] {
            let x = &whole.value.data()[(b * (prompt + 6) + t) * dv..][..dv];
            let want: Vec<f32> = (0..kvh)
                .map(|o| {
                    let bias = wk.bias.as_ref().map_or(0.0, |bias| bias.data()[o] as f64);
                    (0..dv).map(|i| x[i] as f64 * wk.kernel.data()[i * kvh + o] as f64).sum::<f64>() as f32
                        + bias as f32
                })
                .collect();
            let got = &contents.keys.data()[(b * (prompt + 6) + t) * kvh..][..kvh];
            assert_close(&format!("{}: cached key ({b}, {t})", s.name), got, &want, F32);
        }
        cache.reset();
        assert!(cache.is_empty());
    }
}

/// The attention kernel of a plan (the block, split-decode or fused pass).
fn attention_kernel(plan: &gqa::core::Plan) -> Kernel {
    plan.passes()
        .map(|p| p.kernel)
        .find(|k| {
            k.is_block_attention()
                || matches!(
                    k,
                    Kernel::DecodeAttention(Operands::Storage)
                        | Kernel::DecodeAttention(Operands::Texture)
                        | Kernel::FusedAttention { precision: Precision::F32, .. }
                )
        })
        .expect("an attention pass")
}

/// The rows a plan copies into the KV cache's key mirror.
fn mirror_appends(plan: &gqa::core::Plan) -> u64 {
    plan.steps
        .iter()
        .filter_map(|s| match s {
            Step::Copy(c) if c.dst == BufferId::KeyCacheTexture => Some(c.bytes),
            _ => None,
        })
        .sum()
}

/// On CPU adapters the cache keeps texture mirrors of its keys and values, and cached calls read
/// them: the prefill's block attention and the steps' split decode take their texture kernels,
/// and every append reaches the mirrors. Rows of 256 bytes (one copy per append) and of 64 bytes
/// (a copy per row), against the oracle; and no mirrors under the GPU tuning or for H not a
/// multiple of 4.
#[test]
fn cached_calls_read_the_texture_mirrors_on_cpu_adapters() {
    for ctx in adapters() {
        let _gl = gl_guard(ctx);
        assert!(
            ctx.tuning().keeps_cache_texture(
                &gqa::core::CacheShape {
                    batch: 2,
                    capacity: 64,
                    num_kv_heads: 2,
                    head_dim: 8,
                    layout: Default::default(),
                    storage: Default::default(),
                },
                &ctx.limits()
            ),
            "{}: software adapters keep cache textures",
            adapter_name(ctx)
        );
        for (name, config) in
            [("rows of 256 bytes", GqaConfig::new(32, 4, 2)), ("rows of 64 bytes", GqaConfig::new(8, 8, 2))]
        {
            let s = Setup::new(ctx, name, config, dims(16, 12, None), 61);
            let (batch, prompt) = (2, 20);
            let all = Sequences::random(batch, prompt + 4, s.dims, false, 62);
            let want = all.oracle(&s.config, &s.weights);
            let mut cache = s.layer.new_cache(batch, 40).unwrap();
            assert!(cache.has_texture_mirrors(), "{}", s.name);
            let token_bytes = (s.config.num_key_value_heads * s.config.head_dim * 4) as u64;

            let plan = s.layer.plan_cached(&cache, &[batch, prompt, 16], false, &[prompt; 2]).unwrap();
            let tuning = ctx.tuning();
            let block = if !tuning.subgroups {
                Kernel::BlockAttention(BlockAttention { operands: Operands::Texture, lanes: BlockLanes::Workgroup })
            } else if kernels::block::subgroup_fits(s.config.head_dim, tuning.subgroup_sizes) {
                Kernel::BlockAttention(BlockAttention { operands: Operands::Texture, lanes: BlockLanes::Subgroup })
            } else {
                Kernel::BlockAttention(BlockAttention { operands: Operands::Texture, lanes: BlockLanes::SharedLoads })
            };
            assert_eq!(attention_kernel(&plan), block, "{}: prefill", s.name);
            assert_eq!(mirror_appends(&plan), batch as u64 * prompt as u64 * token_bytes, "{}", s.name);
            let got = s.prefill(&mut cache, &all.slice(0..batch, 0, prompt), None);
            assert_close(&format!("{}: prefill", s.name), got.data(), rows(&want, 0..batch, 0, prompt).data(), F32);

            let mut at = prompt;
            for n in [1, 3] {
                let plan = s.layer.plan_cached(&cache, &[batch, n, 16], false, &[n; 2]).unwrap();
                assert_eq!(
                    attention_kernel(&plan),
                    Kernel::DecodeAttention(Operands::Texture),
                    "{}: step of {n}",
                    s.name
                );
                assert_eq!(mirror_appends(&plan), (batch * n) as u64 * token_bytes, "{}", s.name);
                let got = s.step(&mut cache, &all.slice(0..batch, at, at + n));
                let label = format!("{}: step of {n} at {at}", s.name);
                assert_close(&label, got.data(), rows(&want, 0..batch, at, at + n).data(), F32);
                at += n;
            }
        }
        // Under the GPU tuning, and with H not a multiple of 4, the cache has no mirrors.
        let gpu = ctx.clone().with_tuning(Tuning::GPU);
        let s = Setup::new(&gpu, "GPU tuning", GqaConfig::new(8, 4, 2), dims(16, 12, None), 63);
        assert!(!s.layer.new_cache(1, 8).unwrap().has_texture_mirrors());
        let s = Setup::new(ctx, "H = 6", GqaConfig::new(6, 4, 2), dims(16, 12, None), 64);
        let cache = s.layer.new_cache(1, 8).unwrap();
        assert!(!cache.has_texture_mirrors());
        let plan = s.layer.plan_cached(&cache, &[1, 1, 16], false, &[1]).unwrap();
        assert!(plan.buffer(BufferId::KeyCacheTexture).is_none() && mirror_appends(&plan) == 0);
    }
}

/// `load` and `grow` write the mirrors too: a cache loaded from another's contents, and one grown
/// past its capacity, step exactly like the original (a stale mirror would give other outputs).
#[test]
fn load_and_grow_keep_the_texture_mirrors() {
    for ctx in adapters() {
        let _gl = gl_guard(ctx);
        let s = Setup::new(ctx, "load and grow", GqaConfig::new(8, 4, 2), dims(12, 12, None), 71);
        let (batch, prompt) = (2, 6);
        let all = Sequences::random(batch, prompt + 3, s.dims, false, 72);
        let want = all.oracle(&s.config, &s.weights);
        let mut cache = s.layer.new_cache(batch, prompt + 1).unwrap();
        assert!(cache.has_texture_mirrors());
        s.prefill(&mut cache, &all.slice(0..batch, 0, prompt), None);

        let mut loaded = s.layer.new_cache(batch, prompt + 1).unwrap();
        loaded.load(&cache.read().unwrap()).unwrap();
        let got = s.step(&mut loaded, &all.slice(0..batch, prompt, prompt + 1));
        let label = format!("{}: step after load", s.name);
        assert_close(&label, got.data(), rows(&want, 0..batch, prompt, prompt + 1).data(), F32);

        cache.grow(prompt + 8).unwrap();
        assert!(cache.has_texture_mirrors());
        let got = s.step(&mut cache, &all.slice(0..batch, prompt, prompt + 3));
        let label = format!("{}: step after grow", s.name);
        assert_close(&label, got.data(), rows(&want, 0..batch, prompt, prompt + 3).data(), F32);
    }
}

fn concat_t(a: &HostTensor, b: &HostTensor) -> HostTensor {
    let (batch, d) = (a.shape()[0], a.shape()[2]);
    let (la, lb) = (a.shape()[1], b.shape()[1]);
    let mut out = Vec::new();
    for i in 0..batch {
        out.extend_from_slice(&a.data()[i * la * d..(i + 1) * la * d]);
        out.extend_from_slice(&b.data()[i * lb * d..(i + 1) * lb * d]);
    }
    HostTensor::new([batch, la + lb, d], out).unwrap()
}

#[test]
fn cache_errors_are_values() {
    let ctx = &adapters()[0];
    let _gl = gl_guard(ctx);
    let s = Setup::new(ctx, "errors", GqaConfig::new(8, 4, 2), dims(12, 12, None), 41);
    let x = Sequences::random(2, 5, s.dims, false, 42);
    let mut cache = s.layer.new_cache(2, 6).unwrap();
    // A step needs a prefix.
    let err = s.layer.step(&mut cache, &x.slice(0..2, 0, 1).query, &x.slice(0..2, 0, 1).value, None);
    assert!(matches!(err, Err(GpuError::Invalid(GqaError::CacheEmpty { sequence: 0, .. }))), "{err:?}");
    // Past the capacity: nothing is appended.
    s.prefill(&mut cache, &x.slice(0..2, 0, 4), None);
    let three = x.slice(0..2, 0, 3);
    let err = s.layer.step(&mut cache, &three.query, &three.value, None);
    assert!(matches!(err, Err(GpuError::Invalid(GqaError::CacheFull { capacity: 6, appending: 3, .. }))), "{err:?}");
    assert_eq!(cache.lengths(), [4, 4]);
    // A batch mismatch.
    let one = x.slice(0..1, 0, 1);
    let err = s.layer.step(&mut cache, &one.query, &one.value, None);
    assert!(
        matches!(err, Err(GpuError::Invalid(GqaError::CacheMismatch { what: "batch", cache: 2, call: 1, .. }))),
        "{err:?}"
    );
    // A cache made for a layer with other heads.
    let other = Setup::new(ctx, "other heads", GqaConfig::new(8, 4, 4), dims(12, 12, None), 43);
    let mut foreign = other.layer.new_cache(2, 6).unwrap();
    let err = s.layer.prefill(&mut foreign, &three.query, &three.value, None, None);
    assert!(
        matches!(err, Err(GpuError::Invalid(GqaError::CacheMismatch { what: "num_key_value_heads", .. }))),
        "{err:?}"
    );
    // Truncating past a sequence's end, ragged lengths longer than the prompt, a zero-size cache.
    assert!(matches!(cache.truncate_each(&[5, 1]), Err(GpuError::Invalid(GqaError::CacheLength { .. }))));
    assert!(cache.truncate_each(&[2, 1]).is_ok());
    let err = s.layer.prefill(&mut cache, &three.query, &three.value, None, Some(&[4, 1]));
    assert!(matches!(err, Err(GpuError::Invalid(GqaError::CacheLength { .. }))), "{err:?}");
    assert!(s.layer.new_cache(0, 4).is_err());
    // Wrong feature size.
    let bad = HostTensor::new([2, 1, 5], vec![0.5; 10]).unwrap();
    assert!(matches!(
        s.layer.step(&mut cache, &bad, &bad, None),
        Err(GpuError::Invalid(GqaError::ShapeMismatch { .. }))
    ));
    // A cache larger than one binding is refused at creation.
    let huge = s.layer.new_cache(1 << 12, 1 << 20);
    assert!(matches!(huge, Err(GpuError::Invalid(GqaError::LimitExceeded { .. }))), "{huge:?}");
}

/// A step's plan projects only the new tokens and never allocates a buffer of the prefix's size
/// besides the cache itself.
#[test]
fn step_plan_projects_only_new_tokens() {
    let ctx = &adapters()[0];
    let _gl = gl_guard(ctx);
    let s = Setup::new(ctx, "plan", GqaConfig::new(16, 8, 2), dims(32, 32, None), 51);
    let mut cache = s.layer.new_cache(1, 4096).unwrap();
    let x = Sequences::random(1, 3000, s.dims, false, 52);
    s.prefill(&mut cache, &x, None);
    let plan = s.layer.plan_cached(&cache, &[1, 1, 32], false, &[1]).unwrap();
    let proj = |label: &str| plan.passes().find(|p| p.label == label).unwrap().params.m;
    assert_eq!((proj("project_key"), proj("project_value")), (1, 1));
    assert_eq!(plan.problem.source_len, 3001);
    let kv = plan.buffer(gqa::core::BufferId::KeyProj).unwrap();
    assert_eq!(kv.elems, 2 * 16);
    assert!(plan.passes().all(|p| p.params.kv_stride == 4096));
    // The cache's buffers (and texture mirrors, their rows of 8 texels padded to 12, where it keeps
    // them) are the plan's only (B, capacity)-sized ones.
    let cache_bytes = 4096 * 2 * 16 * 4;
    assert_eq!(gqa::core::row_texels(8), 12);
    let mirror_bytes = 4096 * 12 * 16;
    let held = 2 * cache_bytes + if cache.has_texture_mirrors() { 2 * mirror_bytes } else { 0 };
    assert_eq!(plan.bytes_of(gqa::core::BufferRole::Cache), held);
    assert_eq!(cache.device_bytes(), held);
    assert!(plan.buffers.iter().filter(|b| b.role != gqa::core::BufferRole::Cache).all(|b| b.bytes < cache_bytes / 8));
}

/// A random cached decode: config, dims, batch, prompt length and the tokens of each step.
#[derive(Debug, Clone)]
struct Decode {
    config: GqaConfig,
    dims: LayerDims,
    key: bool,
    batch: usize,
    prompt: usize,
    steps: Vec<usize>,
}

prop_compose! {
    fn decode()(h in 1usize..10, nkv in 1usize..4, r in 1usize..5, bias in any::<bool>(), gate in any::<bool>(),
                window in proptest::option::weighted(0.3, 1usize..6), dq in 1usize..5, dv in 1usize..5,
                dk in proptest::option::of(1usize..5), batch in 1usize..4, prompt in 1usize..9,
                steps in proptest::collection::vec(1usize..4, 1..4)) -> Decode {
        let config = GqaConfig { use_bias: bias, use_gate: gate, sliding_window: window, ..GqaConfig::new(h, nkv * r, nkv) };
        // Feature sizes 4, 8, 12, 16 take the vec4 kernels, the odd ones (4k - 1) the scalar ones.
        let dim = |d: usize| if d.is_multiple_of(2) { 4 * d } else { 4 * d - 1 };
        let dims = LayerDims { query_dim: dim(dq), key_dim: dim(dk.unwrap_or(dv)), value_dim: dim(dv) };
        Decode { config, dims, key: dk.is_some(), batch, prompt, steps }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random configs: prefill then steps equal one causal call, on every adapter.
    #[test]
    fn random_configs_decode_like_one_causal_call(d in decode()) {
        for ctx in adapters() {
            let _gl = gl_guard(ctx);
            let name = format!("{d:?}");
            let s = Setup::new(ctx, &name, d.config.clone(), d.dims, 61);
            s.check_uniform(d.batch, d.prompt, &d.steps, d.key, 62);
        }
    }
}

/// Steps recorded into the caller's encoder over GPU tensors (two in one encoder) give the host
/// steps' outputs, and leave the cache where the host steps do.
#[test]
fn encode_step_over_gpu_tensors_matches_host_steps() {
    for ctx in adapters() {
        let _gl = gl_guard(ctx);
        let s = Setup::new(ctx, "encode_step", GqaConfig::new(8, 4, 2), dims(16, 16, None), 71);
        let all = Sequences::random(2, 7, s.dims, false, 72);
        let (mut host, mut gpu) = (s.layer.new_cache(2, 8).unwrap(), s.layer.new_cache(2, 8).unwrap());
        s.prefill(&mut host, &all.slice(0..2, 0, 5), None);
        s.prefill(&mut gpu, &all.slice(0..2, 0, 5), None);
        let want = [s.step(&mut host, &all.slice(0..2, 5, 6)), s.step(&mut host, &all.slice(0..2, 6, 7))];
        let tensor = |t: &HostTensor| gqa::gpu::GpuTensor::from_host(ctx, t).unwrap();
        let inputs: Vec<_> = (5..7)
            .map(|i| {
                let x = all.slice(0..2, i, i + 1);
                (tensor(&x.query), tensor(&x.value))
            })
            .collect();
        let outputs: Vec<_> = (0..2).map(|_| gqa::gpu::GpuTensor::zeros(ctx, [2, 1, 16]).unwrap()).collect();
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        for ((q, v), out) in inputs.iter().zip(&outputs) {
            let args = gqa::gpu::TensorArgs::new(q, v).output(out);
            let e = s.layer.encode_step(&mut encoder, &mut gpu, &args).unwrap();
            assert_eq!(e.output.shape(), [2, 1, 16]);
        }
        ctx.queue().submit([encoder.finish()]);
        for (got, want) in outputs.iter().zip(&want) {
            assert_close(&format!("{}: encode_step", s.name), got.to_host().unwrap().data(), want.data(), F32);
        }
        assert_eq!(gpu.lengths(), host.lengths());
        // Wrong shapes are errors before anything is recorded, and the cache does not move.
        let bad = gqa::gpu::GpuTensor::zeros(ctx, [2, 1, 15]).unwrap();
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        assert!(s.layer.encode_step(&mut encoder, &mut gpu, &gqa::gpu::TensorArgs::new(&bad, &bad)).is_err());
        assert_eq!(gpu.lengths(), [7, 7]);
    }
}
