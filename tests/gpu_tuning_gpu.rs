//! Everything `Tuning::GPU` selects, run on the software adapters with that tuning forced, against
//! the oracle: the workgroup-memory tiled matmul and the rows-of-4 matmul for few rows, the fused
//! attention kernel, flash-decoding (the split pass as the GPU tuning names it, and the fused
//! kernel's partials with the decode kernel off) with its reduce, the separate logits, softmax and
//! weighted-values passes for scores and dropout, the f16 register-blocked matmuls and f16
//! attention kernels, the KV cache, and the largest shapes the project claims.
//!
//! The adapters are CPU ones, so their own tuning never picks these kernels. The forced tuning keeps
//! the adapter's loop cap (Mesa's llvmpipe stops loops silently past it) and its subgroups (as a GPU's
//! context has them), and every case asserts the attention route its plan takes, so that a case
//! meant for one path never passes on another.

mod common;

use common::gpu_tuning::{Path, Ran, case, causal, check_plan, contexts, run, with_scores};
use common::{Case, F32, adapter_name, adapters, assert_close, gl_guard, random_mask};
use gqa::core::plan::select::SPLIT_MAX_QUERIES;
use gqa::core::{CacheContents, CausalAlignment, FusedOutput, GqaConfig, HostTensor, Kernel, LayerDims, Mask};
use gqa::core::{MaskedRows, MatmulKernel, MatmulPrecision, Operands, Precision, Weights};
use gqa::gpu::{GpuContext, GqaLayer};

/// Fully masked rows, by an attention mask (B, T, S): batch 0's query 1 and batch 1's last query
/// see no key; and by the query mask: batch 0's last query.
fn fully_masked(mut c: Case, policy: MaskedRows) -> Case {
    let (b, t, s) = (c.batch, c.t, c.s);
    let mut am = vec![true; b * t * s];
    am[s..2 * s].fill(false);
    am[(2 * t - 1) * s..2 * t * s].fill(false);
    c.options.attention_mask = Some(Mask::new(vec![b, t, s], am).unwrap());
    let mut qm = vec![true; b * t];
    qm[t - 1] = false;
    c.options.query_mask = Some(Mask::new(vec![b, t], qm).unwrap());
    c.options.masked_rows = policy;
    c.name = format!("{}, fully masked rows {policy:?}", c.name);
    c
}

/// NaN and infinities in the values of a case of B = 3: batch 0's last key holds a NaN (causally
/// masked for every query but the last under the top-left alignment), batch 1's key 3 an infinity
/// (hidden from every query by the value mask) and its key `S / 2` a negative infinity; batch 2's
/// values are finite, and so must its output be.
fn special_values(mut c: Case) -> Case {
    let (s, dv) = (c.s, c.dv);
    assert_eq!(c.batch, 3, "{}", c.name);
    c.value_overrides =
        vec![((s - 1) * dv + 1, f32::NAN), ((s + 3) * dv, f32::INFINITY), ((s + s / 2) * dv + 2, f32::NEG_INFINITY)];
    let mut vm = vec![true; 3 * s];
    vm[s + 3] = false;
    c.options.value_mask = Some(Mask::new(vec![3, s], vm).unwrap());
    c.name = format!("{}, NaN and infinities in the values", c.name);
    c
}

/// The fused path: T > 16, or a source shorter than two splits (S < 512); MQA to MHA, H off the
/// tiles (multiples of 4 up to 256), T != S both ways, causal in both alignments, window, gate,
/// every mask kind and broadcast, both masked-row policies, NaN and infinities, B = 3, projections
/// of few rows and of many crossing the 64-wide tiles.
fn fused_cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (nq, nkv, h, t, s) in [
        (4, 1, 4, 20, 9),
        (4, 4, 12, 9, 20),
        (8, 2, 36, 70, 5),
        (6, 3, 100, 5, 70),
        (8, 2, 128, 33, 33),
        (2, 1, 256, 17, 40),
    ] {
        let name = format!("Nq={nq} Nkv={nkv} H={h} T={t} S={s}");
        out.push(case(&name, GqaConfig::new(h, nq, nkv), [2, t, s, 12, 10]));
    }
    for align in [CausalAlignment::TopLeft, CausalAlignment::BottomRight] {
        for (t, s) in [(5, 70), (70, 5), (33, 33)] {
            let c = case(&format!("causal {align:?} T={t} S={s}"), GqaConfig::new(8, 4, 2), [2, t, s, 12, 10]);
            out.push(causal(c, align));
        }
    }
    let config = GqaConfig { sliding_window: Some(4), use_gate: true, ..GqaConfig::new(12, 4, 2) };
    let mut c = case("window + gate + every mask kind, key given", config, [2, 9, 80, 12, 10]);
    c.dk = Some(7);
    c.options.attention_mask = Some(random_mask(&[2, 4, 9, 80], 0.75, 1));
    c.options.query_mask = Some(random_mask(&[2, 9], 0.75, 2));
    c.options.value_mask = Some(random_mask(&[2, 80], 0.75, 3));
    c.options.key_mask = Some(random_mask(&[2, 80], 0.75, 4));
    out.push(c);
    let config = GqaConfig { sliding_window: Some(5), ..GqaConfig::new(8, 4, 2) };
    out.push(causal(case("window 5, causal", config, [2, 24, 30, 12, 10]), CausalAlignment::BottomRight));
    let (b, nq, t, s) = (2, 4, 20, 24);
    for shape in [vec![b, t, s], vec![t, s], vec![1, t, s], vec![b, nq, t, s], vec![b, 1, t, s], vec![1, nq, 1, s]] {
        let mut c = case(&format!("attention_mask {shape:?}"), GqaConfig::new(8, nq, 2), [b, t, s, 12, 10]);
        c.options.attention_mask = Some(random_mask(&shape, 0.7, shape.len() as u64));
        out.push(c);
    }
    for policy in [MaskedRows::Zeros, MaskedRows::KerasDefault] {
        out.push(fully_masked(case("GQA", GqaConfig::new(8, 4, 2), [2, 20, 24, 12, 10]), policy));
        let mut c = case("top-left causal", GqaConfig::new(8, 4, 2), [3, 20, 20, 12, 10]);
        c.options.masked_rows = policy;
        out.push(special_values(causal(c, CausalAlignment::TopLeft)));
        // T > S bottom-right: the first queries see no key.
        let c =
            case(&format!("bottom-right causal T=30 S=20 {policy:?}"), GqaConfig::new(8, 4, 2), [2, 30, 20, 12, 10]);
        let mut c = causal(c, CausalAlignment::BottomRight);
        c.options.masked_rows = policy;
        out.push(c);
    }
    let mut c = case("B=3, per-batch masks", GqaConfig::new(8, 4, 2), [3, 20, 24, 12, 10]);
    c.options.value_mask = Some(random_mask(&[3, 24], 0.6, 9));
    c.options.attention_mask = Some(random_mask(&[3, 20, 24], 0.8, 10));
    out.push(c);
    let config = GqaConfig { use_bias: false, use_gate: true, ..GqaConfig::new(8, 4, 2) };
    out.push(case("gate without bias", config, [2, 20, 24, 16, 16]));
    out.push(case("T=1 over S=300 (one pass)", GqaConfig::new(8, 8, 2), [2, 1, 300, 16, 8]));
    let mut c = case("projections off the tiles: Dq=65 Dv=66 Dk=13", GqaConfig::new(8, 6, 3), [2, 67, 70, 65, 66]);
    c.dk = Some(13);
    out.push(causal(c, CausalAlignment::TopLeft));
    out
}

#[test]
fn fused_path_under_gpu_tuning_matches_the_oracle() {
    let mut ran = Ran::default();
    for c in fused_cases() {
        run(&c, Path::Fused, Precision::F32, &mut ran);
    }
    ran.assert_has(Kernel::Matmul(MatmulKernel::Tiled));
    ran.assert_has(Kernel::Matmul(MatmulKernel::Rows4(Operands::Storage)));
    eprintln!("fused path: {} calls, kernels {:?}, seconds per adapter {:?}", ran.calls, ran.kernels, ran.seconds);
}

/// The split path: T <= 16 over S >= 512; MQA, MHA and groups of up to 8 (items per kv group from 1
/// to 64: the decode kernel where the GPU tuning names it and its items fit, the fused kernel's
/// partials beyond and with the decode kernel off), H off the tiles, S not a multiple of the
/// split, causal in both alignments (top-left leaves whole splits unseen), window, gate, every mask
/// kind, both masked-row policies with rows that see no key, NaN and infinities, B = 3.
fn split_cases() -> Vec<Case> {
    let mut out = Vec::new();
    // (T, Nq, Nkv, H, S)
    let shapes = [
        (1, 8, 2, 8, 512),
        (3, 4, 1, 12, 700),
        (16, 4, 4, 36, 1300),
        (2, 16, 2, 100, 777),
        (1, 32, 8, 128, 1030),
        (4, 8, 2, 256, 600),
        (8, 8, 1, 4, 520),
    ];
    for (i, &(t, nq, nkv, h, s)) in shapes.iter().enumerate() {
        let config = GqaConfig {
            use_gate: i % 3 == 0,
            sliding_window: (i % 4 == 1).then_some(200 + 37 * i),
            ..GqaConfig::new(h, nq, nkv)
        };
        let mut c = case(&format!("T={t} Nq={nq} Nkv={nkv} H={h} S={s}"), config, [2, t, s, 16, 12]);
        match i % 4 {
            0 => c.options.value_mask = Some(random_mask(&[2, s], 0.7, i as u64)),
            1 => c.options.attention_mask = Some(random_mask(&[2, t, s], 0.8, i as u64)),
            2 => {
                c.dk = Some(10);
                c.options.key_mask = Some(random_mask(&[2, s], 0.6, i as u64));
            }
            _ => c.options.query_mask = Some(random_mask(&[2, t], 0.7, i as u64)),
        }
        c.options.masked_rows = if i % 2 == 0 { MaskedRows::KerasDefault } else { MaskedRows::Zeros };
        let align = if i % 2 == 0 { CausalAlignment::BottomRight } else { CausalAlignment::TopLeft };
        out.push(if i % 3 == 2 { c } else { causal(c, align) });
    }
    for policy in [MaskedRows::Zeros, MaskedRows::KerasDefault] {
        // Batch 1 sees no key; batch 0 only keys in the last split, and its query 0 none.
        let mut c = case(&format!("fully masked rows {policy:?}"), GqaConfig::new(12, 8, 2), [2, 3, 1000, 12, 10]);
        let mut vm = vec![false; 2 * 1000];
        vm[990..1000].fill(true);
        c.options.value_mask = Some(Mask::new(vec![2, 1000], vm).unwrap());
        let mut am = vec![true; 2 * 3 * 1000];
        am[..1000].fill(false);
        c.options.attention_mask = Some(Mask::new(vec![2, 3, 1000], am).unwrap());
        c.options.masked_rows = policy;
        out.push(c);
        let mut c = case("T=2 top-left causal", GqaConfig::new(8, 4, 2), [3, 2, 600, 8, 8]);
        c.options.masked_rows = policy;
        out.push(special_values(causal(c, CausalAlignment::TopLeft)));
    }
    let mut c = case("B=3, per-batch masks", GqaConfig::new(8, 4, 2), [3, 5, 650, 12, 10]);
    c.options.value_mask = Some(random_mask(&[3, 650], 0.6, 9));
    c.options.attention_mask = Some(random_mask(&[3, 5, 650], 0.8, 10));
    out.push(c);
    out
}

#[test]
fn split_path_under_gpu_tuning_matches_the_oracle() {
    let mut ran = Ran::default();
    for c in split_cases() {
        assert!(c.t <= SPLIT_MAX_QUERIES && c.s >= 512, "{}", c.name);
        run(&c, Path::Split, Precision::F32, &mut ran);
    }
    ran.assert_has(Kernel::FusedAttention { precision: Precision::F32, output: FusedOutput::Partials });
    ran.assert_has(Kernel::ReduceSplits(Precision::F32));
    ran.assert_has(Kernel::Matmul(MatmulKernel::Tiled));
    ran.assert_has(Kernel::Matmul(MatmulKernel::Rows4(Operands::Storage)));
    eprintln!("split path: {} calls, kernels {:?}, seconds per adapter {:?}", ran.calls, ran.kernels, ran.seconds);
}

/// The separate passes: scores requested, dropout in training, H not a multiple of 4 or above 256;
/// with MQA, MHA, T != S both ways, causal in both alignments, window, gate, masks, both masked-row
/// policies, NaN and infinities, a short query over a long source (no split with scores).
fn unfused_cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (nq, nkv) in [(4, 1), (4, 4), (8, 2)] {
        let name = format!("scores Nq={nq} Nkv={nkv}");
        out.push(with_scores(case(&name, GqaConfig::new(8, nq, nkv), [2, 20, 24, 12, 10])));
    }
    for align in [CausalAlignment::TopLeft, CausalAlignment::BottomRight] {
        for (t, s) in [(9, 70), (70, 9)] {
            let c = case(&format!("scores, causal {align:?} T={t} S={s}"), GqaConfig::new(8, 4, 2), [2, t, s, 12, 10]);
            out.push(with_scores(causal(c, align)));
        }
    }
    let config = GqaConfig { sliding_window: Some(4), use_gate: true, ..GqaConfig::new(12, 4, 2) };
    let mut c = with_scores(case("scores, window + gate + masks, key given", config, [2, 9, 30, 12, 10]));
    c.dk = Some(7);
    c.options.attention_mask = Some(random_mask(&[2, 1, 9, 30], 0.75, 1));
    c.options.query_mask = Some(random_mask(&[2, 9], 0.75, 2));
    c.options.key_mask = Some(random_mask(&[2, 30], 0.75, 4));
    out.push(c);
    for policy in [MaskedRows::Zeros, MaskedRows::KerasDefault] {
        out.push(fully_masked(with_scores(case("scores", GqaConfig::new(8, 4, 2), [2, 20, 24, 12, 10])), policy));
        let mut c = with_scores(case("scores, top-left causal", GqaConfig::new(8, 4, 2), [3, 20, 20, 12, 10]));
        c.options.masked_rows = policy;
        out.push(special_values(causal(c, CausalAlignment::TopLeft)));
    }
    for scores in [false, true] {
        let config = GqaConfig { dropout: 0.2, seed: Some(9), ..GqaConfig::new(8, 4, 2) };
        let mut c = case(&format!("dropout 0.2 in training, scores {scores}"), config, [2, 20, 24, 12, 10]);
        c.options.training = true;
        c.options.return_attention_scores = scores;
        out.push(causal(c, CausalAlignment::BottomRight));
    }
    for (nq, nkv, h) in [(6, 3, 5), (2, 1, 67), (4, 2, 6), (2, 1, 300)] {
        let c = case(&format!("H={h} (no fused kernel)"), GqaConfig::new(h, nq, nkv), [2, 20, 24, 12, 10]);
        out.push(causal(c, CausalAlignment::TopLeft));
    }
    let mut c = case("H=5 off the tiles: T=67 S=70 Dq=65 Dv=66", GqaConfig::new(5, 6, 3), [1, 67, 70, 65, 66]);
    c.config.use_gate = true;
    out.push(causal(c, CausalAlignment::BottomRight));
    out.push(with_scores(case("scores, T=2 over S=600", GqaConfig::new(8, 4, 2), [2, 2, 600, 8, 8])));
    out
}

#[test]
fn unfused_path_under_gpu_tuning_matches_the_oracle() {
    let mut ran = Ran::default();
    for c in unfused_cases() {
        run(&c, Path::Unfused, Precision::F32, &mut ran);
    }
    ran.assert_has(Kernel::Logits(Precision::F32));
    ran.assert_has(Kernel::AttendValues(Precision::F32));
    ran.assert_has(Kernel::Matmul(MatmulKernel::Tiled));
    ran.assert_has(Kernel::Matmul(MatmulKernel::Rows4(Operands::Storage)));
    eprintln!("unfused path: {} calls, kernels {:?}, seconds per adapter {:?}", ran.calls, ran.kernels, ran.seconds);
}

/// f16 storage under the GPU tuning (its f16 register-blocked matmuls, the fused kernel whole and
/// split, the separate passes), at the f16 tolerance, on the adapters with `SHADER_F16`.
#[test]
fn f16_under_gpu_tuning_matches_the_oracle() {
    let mut ran = Ran::default();
    let f16 = |c: &Case, path: Path, ran: &mut Ran| run(c, path, Precision::F16, ran);
    let c = case("GQA R=4 causal", GqaConfig::new(8, 8, 2), [2, 20, 24, 12, 10]);
    f16(&causal(c, CausalAlignment::BottomRight), Path::Fused, &mut ran);
    let config = GqaConfig { use_gate: true, sliding_window: Some(6), ..GqaConfig::new(12, 4, 1) };
    let mut c = case("MQA, gate, window, masks, key given", config, [2, 9, 30, 12, 10]);
    c.dk = Some(7);
    c.options.attention_mask = Some(random_mask(&[2, 9, 30], 0.8, 1));
    c.options.key_mask = Some(random_mask(&[2, 30], 0.8, 2));
    f16(&c, Path::Fused, &mut ran);
    for policy in [MaskedRows::Zeros, MaskedRows::KerasDefault] {
        f16(&fully_masked(case("MHA", GqaConfig::new(8, 4, 4), [2, 20, 24, 12, 10]), policy), Path::Fused, &mut ran);
        let mut c = case("T=2 top-left causal", GqaConfig::new(8, 4, 2), [3, 2, 600, 8, 8]);
        c.options.masked_rows = policy;
        f16(&special_values(causal(c, CausalAlignment::TopLeft)), Path::Split, &mut ran);
    }
    let mut c = case("decode T=1 Nq=32 Nkv=8 H=128", GqaConfig::new(128, 32, 8), [1, 1, 1030, 16, 16]);
    c.options.value_mask = Some(random_mask(&[1, 1030], 0.9, 5));
    f16(&c, Path::Split, &mut ran);
    f16(&with_scores(case("scores", GqaConfig::new(8, 4, 2), [2, 20, 24, 12, 10])), Path::Unfused, &mut ran);
    let config = GqaConfig { dropout: 0.3, seed: Some(4), ..GqaConfig::new(8, 4, 2) };
    let mut c = case("dropout in training", config, [2, 20, 24, 12, 10]);
    c.options.training = true;
    f16(&c, Path::Unfused, &mut ran);
    f16(&case("H=6", GqaConfig::new(6, 4, 2), [3, 67, 70, 13, 11]), Path::Unfused, &mut ran);
    if ran.calls > 0 {
        ran.assert_has(Kernel::Matmul(MatmulKernel::Blocked8x8(MatmulPrecision::F16)));
        ran.assert_has(Kernel::Matmul(MatmulKernel::Blocked8x8(MatmulPrecision::F16ToF32)));
        ran.assert_has(Kernel::ReduceSplits(Precision::F16));
        ran.assert_has(Kernel::AttendValues(Precision::F16));
    }
    eprintln!("f16: {} calls, kernels {:?}, seconds per adapter {:?}", ran.calls, ran.kernels, ran.seconds);
}

/// A GPU layer and its cache beside the oracle's cache, called in lockstep.
struct Lockstep {
    name: String,
    config: GqaConfig,
    weights: Weights,
    layer: GqaLayer,
    cache: gqa::gpu::KvCache,
    oracle: gqa::reference::KvCache,
}

impl Lockstep {
    fn new(ctx: &GpuContext, name: &str, config: GqaConfig, dims: LayerDims, batch: usize, capacity: usize) -> Self {
        let weights = common::random_weights(&config, dims, 5);
        let mut layer = GqaLayer::new(ctx, &config, &weights).unwrap();
        layer.set_poison_outputs(true);
        let cache = layer.new_cache(batch, capacity).unwrap();
        assert!(!cache.has_texture_mirrors(), "{name}: no mirrors under the GPU tuning");
        let oracle = gqa::reference::KvCache::new(&config, batch, capacity).unwrap();
        Self { name: format!("{name} on {}", adapter_name(ctx)), config, weights, layer, cache, oracle }
    }

    /// A prefill (`lengths` for ragged prompts) or a step of `query` and `value`: the plan asserted
    /// to take `path`, each sequence's rows (its first `lengths[b]`) compared with the oracle's.
    fn call(
        &mut self,
        query: &HostTensor,
        value: &HostTensor,
        prefill: Option<Option<&[usize]>>,
        path: Path,
    ) -> Vec<Kernel> {
        let [b, t, _] = query.shape()[..] else { panic!("query rank") };
        let new = prefill.flatten().map_or_else(|| vec![t; b], <[usize]>::to_vec);
        let at = self.cache.lengths();
        let what = format!("{}: {} of {t} at {at:?}", self.name, if prefill.is_some() { "prefill" } else { "step" });
        let plan = self.layer.plan_cached(&self.cache, query.shape(), false, &new).unwrap();
        let kernels = check_plan(&what, &plan, path);
        let (got, want) = match prefill {
            Some(lengths) => (
                self.layer.prefill(&mut self.cache, query, value, None, lengths),
                self.oracle.prefill(&self.config, &self.weights, query, value, None, lengths).unwrap(),
            ),
            None => (
                self.layer.step(&mut self.cache, query, value, None),
                self.oracle.step(&self.config, &self.weights, query, value, None).unwrap(),
            ),
        };
        let got = got.unwrap_or_else(|e| panic!("{what}: {e}"));
        let dq = query.shape()[2];
        for (i, &n) in new.iter().enumerate() {
            let rows = |x: &HostTensor| x.data()[i * t * dq..][..n * dq].to_vec();
            assert_close(&format!("{what}, sequence {i}"), &rows(&got), &rows(&want), F32);
        }
        assert_eq!(self.cache.lengths(), self.oracle.lengths(), "{what}");
        kernels
    }
}

/// The KV cache under the GPU tuning: prefills take the fused kernel (T > 16, or a short prefix),
/// steps over short prefixes the fused kernel and over long ones the split path (with the fused
/// kernel's partials too); ragged prompts, a sliding window, multi-token steps.
#[test]
fn kv_cache_under_gpu_tuning_matches_the_oracles_cache() {
    let mut ran = Ran::default();
    for base in adapters() {
        for (name, ctx) in contexts(base, Precision::F32, Path::Split) {
            for window in [None, Some(300)] {
                let config = GqaConfig { sliding_window: window, ..GqaConfig::new(8, 8, 2) };
                let dims = LayerDims { query_dim: 16, key_dim: 12, value_dim: 12 };
                let _gl = gl_guard(&ctx);
                let mut s = Lockstep::new(&ctx, &format!("{name}, window {window:?}"), config, dims, 3, 700);
                let mut r = common::rng(7);
                let mut tokens = |b: usize, t: usize| {
                    (common::random_tensor(&[b, t, 16], &mut r), common::random_tensor(&[b, t, 12], &mut r))
                };
                // Ragged prompts of 20, 5 and 12 tokens; steps of 1 and 3 over short prefixes.
                let (q, v) = tokens(3, 20);
                ran.kernels.extend(s.call(&q, &v, Some(Some(&[20, 5, 12])), Path::Fused));
                for n in [1, 3] {
                    let (q, v) = tokens(3, n);
                    ran.kernels.extend(s.call(&q, &v, None, Path::Fused));
                }
                // A chunked prefill to more than 512 tokens, then steps over the long prefix.
                let (q, v) = tokens(3, 600);
                ran.kernels.extend(s.call(&q, &v, Some(None), Path::Fused));
                for n in [1, 4, 16] {
                    let (q, v) = tokens(3, n);
                    ran.kernels.extend(s.call(&q, &v, None, Path::Split));
                }
                ran.calls += 1;
            }
        }
    }
    ran.assert_has(Kernel::FusedAttention { precision: Precision::F32, output: FusedOutput::Partials });
    ran.assert_has(Kernel::Matmul(MatmulKernel::Tiled));
    ran.assert_has(Kernel::Matmul(MatmulKernel::Rows4(Operands::Storage)));
}

/// The largest shapes the project claims, under the GPU tuning: the headline layer (B=1, T=S=512,
/// Nq=32, Nkv=8, H=128, Dq=Dk=Dv=4096, no mask: the tiled matmul and the fused kernel), and
/// decoding steps of its layer over a cache of 8,191 tokens (one token: the split path; 16 tokens,
/// 64 items per kv group: the fused kernel's partials), each output poisoned first and compared in
/// full.
#[test]
fn largest_shapes_under_gpu_tuning_match_the_oracle() {
    let dims = LayerDims { query_dim: 4096, key_dim: 4096, value_dim: 4096 };
    let mut headline =
        case("headline B=1 T=S=512 Nq=32 Nkv=8 H=128 D=4096", GqaConfig::new(128, 32, 8), [1, 512, 512, 4096, 4096]);
    headline.dk = Some(4096);
    let started = std::time::Instant::now();
    let inputs = headline.inputs(42);
    let want = headline.oracle(&inputs);
    eprintln!("[{}] oracle: {:.1} s", headline.name, started.elapsed().as_secs_f64());
    for base in adapters() {
        let (name, ctx) = contexts(base, Precision::F32, Path::Fused).remove(0);
        check_plan(&format!("{} on {name}", headline.name), &headline.plan(&ctx), Path::Fused);
        let started = std::time::Instant::now();
        let (diff, _) = headline.check_against(&ctx, &inputs, &want, None, F32);
        eprintln!("[{name}] {}: ok in {:.1} s, max |diff| {diff:.2e}", headline.name, started.elapsed().as_secs_f64());
    }

    // Decoding: the caches loaded with the same 8,191 projected tokens.
    let config = GqaConfig::new(128, 32, 8);
    let (past, token) = (8191, 8 * 128);
    let mut r = common::rng(44);
    let contents = CacheContents {
        keys: common::random_tensor(&[1, past, 8, 128], &mut r),
        values: common::random_tensor(&[1, past, 8, 128], &mut r),
        lengths: vec![past],
    };
    assert_eq!(contents.keys.data().len(), past * token);
    let steps: Vec<(HostTensor, HostTensor)> = [1, 16]
        .iter()
        .map(|&t| (common::random_tensor(&[1, t, 4096], &mut r), common::random_tensor(&[1, t, 4096], &mut r)))
        .collect();
    for base in adapters() {
        for (name, ctx) in contexts(base, Precision::F32, Path::Split) {
            let _gl = gl_guard(&ctx);
            let mut s =
                Lockstep::new(&ctx, &format!("{name}, decode over 8191 keys"), config.clone(), dims, 1, past + 17);
            s.cache.load(&contents).unwrap();
            s.oracle.load(&contents).unwrap();
            for (q, v) in &steps {
                let started = std::time::Instant::now();
                s.call(q, v, None, Path::Split);
                eprintln!(
                    "[{name}] step of {} over {}: ok in {:.2} s",
                    q.shape()[1],
                    past,
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }
}

/// Plans split into chunks under the GPU tuning (small plan limits on small data): batch chunks,
/// and the separate passes' query chunks, on each path: the fused kernel, the split path, the
/// separate passes with scores and dropout; masks, window, gate, a key given.
#[test]
fn chunked_plans_under_gpu_tuning_match_the_oracle() {
    let mut ran = Ran::default();
    let config = GqaConfig { use_gate: true, sliding_window: Some(30), ..GqaConfig::new(8, 4, 2) };
    let masked = |name: &str, config: GqaConfig, t: usize, s: usize| {
        let mut c = case(name, config, [3, t, s, 12, 10]);
        c.dk = Some(9);
        c.options.value_mask = Some(Mask::new(vec![3, s], (0..3 * s).map(|i| i % 7 != 3).collect()).unwrap());
        c.options.attention_mask =
            Some(Mask::new(vec![3, t, s], (0..3 * t * s).map(|i| i % 11 != 0).collect()).unwrap());
        causal(c, CausalAlignment::BottomRight)
    };
    let mut unfused = with_scores(masked("scores and dropout", GqaConfig { dropout: 0.2, ..config.clone() }, 70, 90));
    unfused.options.training = true;
    // (binding bytes, workgroups per dimension): one batch element's projected queries (or, for the
    // split case, keys) fit a binding, two do not; or at most 3 workgroups per dimension (too few
    // for the fused kernel's grid over two batch elements of two kv heads).
    let small = [(9024, 65_535), (17_920, 65_535), (128 << 20, 3)];
    let cases = [
        (masked("fused", config.clone(), 70, 90), Path::Fused, &small[..2]),
        (masked("split", config.clone(), 2, 700), Path::Split, &[(50_000, 65_535)][..]),
        (unfused, Path::Unfused, &small[..]),
    ];
    for (c, path, settings) in &cases {
        for &(binding, workgroups) in settings.iter() {
            let limits = gqa::core::Limits {
                max_storage_buffer_binding_size: binding,
                max_compute_workgroups_per_dimension: workgroups,
                ..gqa::core::Limits::default()
            };
            let mut c = c.clone();
            c.name = format!("{}, binding {binding}, {workgroups} workgroups", c.name);
            let inputs = c.inputs(13);
            let want = c.oracle(&inputs);
            for ctx in adapters() {
                for (name, tuned) in contexts(ctx, Precision::F32, *path) {
                    let tuned = tuned.with_plan_limits(limits);
                    let what = format!("{} on {name}", c.name);
                    let plan = c.plan(&tuned);
                    let chunks = plan.chunking;
                    assert!(chunks.batch_per_chunk < c.batch || chunks.queries_per_chunk < c.t, "{what}: {chunks:?}");
                    ran.kernels.extend(check_plan(&what, &plan, *path));
                    let (diff, _) = c.check_against(&tuned, &inputs, &want, None, F32);
                    ran.calls += 1;
                    eprintln!("[{name}] {}: {chunks:?}, ok, max |diff| {diff:.2e}", c.name);
                }
            }
        }
    }
    ran.assert_has(Kernel::Matmul(MatmulKernel::Tiled));
}
