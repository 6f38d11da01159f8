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

use std::collections::{BTreeMap, HashSet};

use common::{Case, F16, F32, Tolerance, adapter_name, adapters, assert_close, f16_adapters, gl_guard, random_mask};
use gqa::core::plan::select::{FEW_ROWS, SPLIT_MAX_QUERIES};
use gqa::core::{AttentionRoute, CacheContents, CausalAlignment, GqaConfig, HostTensor, Kernel, LayerDims, Mask};
use gqa::core::{
    BlockRows, MaskedRows, MatmulKernel, MatmulPrecision, Operands, Params, Plan, Precision, Tuning, Weights,
};
use gqa::gpu::{GpuContext, GqaLayer};

/// The attention path a case is meant to take under the GPU tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// The fused kernel over all keys in one pass.
    Fused,
    /// Flash-decoding: a split pass over key ranges (the decode kernel or the fused kernel's
    /// partials, as the tuning says), then the reduce.
    Split,
    /// Logits, softmax and weighted values as separate passes.
    Unfused,
}

/// `ctx`'s tuning as a GPU's: [`Tuning::GPU`] storing in `precision`, with the device's subgroups
/// (as `GpuContext::from_device` sets them on a GPU) and the adapter's loop cap, so that plans stay
/// within llvmpipe's.
fn gpu_tuning(ctx: &GpuContext, precision: Precision) -> Tuning {
    let own = ctx.tuning();
    Tuning {
        loop_iteration_cap: own.loop_iteration_cap,
        subgroups: own.subgroups,
        subgroup_sizes: own.subgroup_sizes,
        precision,
        ..Tuning::GPU
    }
}

/// The contexts a case meant for `path` runs on, named: `ctx` under the GPU tuning; for the split
/// path also with the fused kernel's partials as the split pass, where the GPU tuning names the
/// decode kernel.
fn contexts(ctx: &GpuContext, precision: Precision, path: Path) -> Vec<(String, GpuContext)> {
    let gpu = gpu_tuning(ctx, precision);
    let mut out = vec![(format!("{} GPU tuning", adapter_name(ctx)), ctx.clone().with_tuning(gpu))];
    // The decode kernel is f32 only: f16 plans split with the fused kernel either way.
    if path == Path::Split && gpu.decode_kernel && precision == Precision::F32 {
        let partials = Tuning { decode_kernel: false, ..gpu };
        out.push((format!("{} GPU tuning, fused split pass", adapter_name(ctx)), ctx.clone().with_tuning(partials)));
    }
    out
}

/// The matmul `Tuning::GPU` (with loop cap `cap`) runs for projection `label` of `m` x `k` by
/// `k` x `n`: in f16 the register-blocked f16 matmuls (f32 out of the output projection); in f32
/// the rows-of-4 kernel for at most [`FEW_ROWS`] rows with `k` and `n` multiples of 4, the
/// workgroup-memory tiles beyond, and where their loops over `k` would pass the cap the
/// storage-buffer register-blocked kernel (`k` and `n` multiples of 4) or the 8x8 one.
fn gpu_matmul(precision: Precision, cap: Option<u64>, label: &str, m: u32, k: u32, n: u32) -> Kernel {
    let vec4 = k.is_multiple_of(4) && n.is_multiple_of(4);
    let params = Params { m, k, n, ..Params::default() };
    let tiled_fits = cap.is_none_or(|cap| Kernel::Matmul(MatmulKernel::Tiled).loop_iterations(&params, [0, 0]) <= cap);
    Kernel::Matmul(match precision {
        Precision::F16 if label == "project_output" => MatmulKernel::Blocked8x8(MatmulPrecision::F16ToF32),
        Precision::F16 => MatmulKernel::Blocked8x8(MatmulPrecision::F16),
        Precision::F32 if m as u64 <= FEW_ROWS && vec4 => MatmulKernel::Rows4(Operands::Storage),
        Precision::F32 if tiled_fits => MatmulKernel::Tiled,
        Precision::F32 if vec4 => MatmulKernel::blocked(BlockRows::Sixteen, Operands::Storage, false),
        Precision::F32 => MatmulKernel::Blocked8x8(MatmulPrecision::F32),
    })
}

/// Asserts that `plan` (made under a GPU tuning) takes `path`, that every pass runs a kernel of its
/// route or the GPU tuning's matmul, and that it reads no texture; returns the kernels it runs.
fn check_plan(what: &str, plan: &Plan, path: Path) -> Vec<Kernel> {
    let route = plan.route.attention;
    let (taken, attention) = match route {
        AttentionRoute::Fused { kernel } => (Path::Fused, vec![kernel]),
        AttentionRoute::Split { kernel, reduce, .. } => (Path::Split, vec![kernel, reduce]),
        AttentionRoute::Decode { kernel, reduce, kv_textures: None, .. } if plan.tuning.decode_kernel => {
            (Path::Split, vec![kernel, reduce])
        }
        AttentionRoute::Unfused { logits, softmax, attend_values } => {
            (Path::Unfused, vec![logits, softmax, attend_values])
        }
        other => panic!("{what}: route {other:?} is not one the GPU tuning takes"),
    };
    assert_eq!(taken, path, "{what}: route {route:?}");
    if path == Path::Split && !plan.tuning.decode_kernel {
        assert!(matches!(route, AttentionRoute::Split { .. }), "{what}: the fused kernel's partials, got {route:?}");
    }
    let mut kernels = Vec::new();
    for p in plan.passes() {
        let (m, k, n) = (p.params.m, p.params.k, p.params.n);
        if p.kernel.is_matmul() {
            let want = gpu_matmul(plan.tuning.precision, plan.tuning.loop_iteration_cap, p.label, m, k, n);
            assert_eq!(p.kernel, want, "{what}: {} of {m} x {k} x {n}", p.label);
        } else {
            assert!(
                attention.contains(&p.kernel),
                "{what}: {} runs {}, not a kernel of {route:?}",
                p.label,
                p.kernel.name()
            );
        }
        kernels.push(p.kernel);
    }
    assert!(plan.buffers.iter().all(|b| b.texture.is_none()), "{what}: no texture under the GPU tuning");
    kernels
}

/// What a matrix test ran: the kernels, the calls, and the seconds of the GPU calls per adapter.
#[derive(Default)]
struct Ran {
    kernels: HashSet<Kernel>,
    calls: usize,
    seconds: BTreeMap<String, f64>,
}

impl Ran {
    /// Asserts that `kernel` ran in some case.
    fn assert_has(&self, kernel: Kernel) {
        assert!(self.kernels.contains(&kernel), "no case ran {} ({kernel:?})", kernel.name());
    }
}

/// Runs `case` on every adapter (f16: every adapter with `SHADER_F16`) under the GPU tuning in
/// `precision` (for the split path also with the fused kernel's partials), each plan asserted to take
/// `path`, each output (and the scores) compared with the oracle's, computed once.
fn run(case: &Case, path: Path, precision: Precision, ran: &mut Ran) {
    let (tol, found): (Tolerance, Vec<&GpuContext>) = match precision {
        Precision::F32 => (F32, adapters().iter().collect()),
        Precision::F16 => (F16, f16_adapters()),
    };
    let inputs = case.inputs(31);
    let want = case.oracle(&inputs);
    if !case.value_overrides.is_empty() {
        let out = want.output.data();
        let per_batch = out.len() / case.batch;
        assert!(out[..per_batch].iter().all(|x| x.is_nan()), "{}: the oracle's batch 0 is NaN", case.name);
        assert!(out[2 * per_batch..].iter().all(|x| x.is_finite()), "{}: the oracle's batch 2 is finite", case.name);
    }
    for ctx in found {
        for (name, tuned) in contexts(ctx, precision, path) {
            let what = format!("{} on {name}", case.name);
            let plan = case.plan(&tuned);
            ran.kernels.extend(check_plan(&what, &plan, path));
            let started = std::time::Instant::now();
            let (diff, ran_in) = case.check_against(&tuned, &inputs, &want, None, tol);
            *ran.seconds.entry(adapter_name(ctx)).or_default() += started.elapsed().as_secs_f64();
            assert_eq!(ran_in, precision, "{what}");
            ran.calls += 1;
            eprintln!("[{name}] {} ({path:?}, {precision:?}): ok, max |diff| {diff:.2e}", case.name);
        }
    }
}

/// A case of `config` with B, T, S, Dq, Dv given.
fn case(name: &str, config: GqaConfig, [b, t, s, dq, dv]: [usize; 5]) -> Case {
    let mut c = Case::new(name, config);
    (c.batch, c.t, c.s, c.dq, c.dv) = (b, t, s, dq, dv);
    c
}

fn causal(mut c: Case, align: CausalAlignment) -> Case {
    c.options.use_causal_mask = true;
    c.options.causal_alignment = align;
    c
}

fn with_scores(mut c: Case) -> Case {
    c.options.return_attention_scores = true;
    c
}

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
    ran.assert_has(Kernel::FusedAttention { precision: Precision::F32, output: gqa::core::FusedOutput::Partials });
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
    ran.assert_has(Kernel::FusedAttention { precision: Precision::F32, output: gqa::core::FusedOutput::Partials });
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

/// A tuning forced with `with_tuning` keeps the driver's loop cap (Mesa's on CPU adapters, none on
/// GPUs): `Tuning::GPU`, which has none, plans within it, so the fused kernel gives way where its
/// loops would pass the cap (T = 20 over S = 2,100 with H = 64), and the call gives the oracle's
/// result; a tighter cap is kept, a looser one is not; `with_loop_iteration_cap` declares the
/// driver's cap, lifting it too.
#[test]
fn forcing_gpu_tuning_keeps_the_drivers_loop_cap() {
    let c = case("fused kernel past the cap: H=64 T=20 S=2100", GqaConfig::new(64, 4, 2), [1, 20, 2100, 8, 8]);
    let inputs = c.inputs(3);
    let want = c.oracle(&inputs);
    for ctx in adapters() {
        let name = adapter_name(ctx);
        let driver = match ctx.adapter_info().device_type {
            wgpu::DeviceType::Cpu => Some(gqa::core::LLVMPIPE_LOOP_CAP),
            _ => None,
        };
        assert_eq!((ctx.loop_iteration_cap(), ctx.tuning().loop_iteration_cap), (driver, driver), "{name}");
        let forced = ctx.clone().with_tuning(Tuning::GPU);
        assert_eq!(forced.tuning(), Tuning { loop_iteration_cap: driver, ..Tuning::GPU }, "{name}");
        let tighter = ctx.clone().with_tuning(Tuning { loop_iteration_cap: Some(1000), ..Tuning::GPU });
        assert_eq!(tighter.tuning().loop_iteration_cap, Some(1000), "{name}");
        let looser = ctx.clone().with_tuning(Tuning { loop_iteration_cap: Some(1 << 40), ..Tuning::GPU });
        assert_eq!(looser.tuning().loop_iteration_cap, Some(driver.unwrap_or(1 << 40)), "{name}");
        let lifted = forced.clone().with_loop_iteration_cap(None);
        assert_eq!((lifted.loop_iteration_cap(), lifted.tuning().loop_iteration_cap), (None, None), "{name}");
        assert_eq!(lifted.clone().with_tuning(Tuning::GPU).tuning(), Tuning::GPU, "{name}");
        let declared = lifted.with_loop_iteration_cap(Some(5000)).with_tuning(Tuning::GPU);
        assert_eq!((declared.loop_iteration_cap(), declared.tuning().loop_iteration_cap), (Some(5000), Some(5000)));

        // Without a cap the fused kernel runs whole; under one it gives way to the separate passes.
        assert!(matches!(
            c.plan(&forced.clone().with_loop_iteration_cap(None)).route.attention,
            AttentionRoute::Fused { .. }
        ));
        let path = if driver.is_some() { Path::Unfused } else { Path::Fused };
        check_plan(&format!("{} on {name}", c.name), &c.plan(&forced), path);
        let (diff, _) = c.check_against(&forced, &inputs, &want, None, F32);
        eprintln!("[{name}] {} under Tuning::GPU: {path:?}, ok, max |diff| {diff:.2e}", c.name);
    }
}

/// Projections contracting over many features (T = 17 rows: not the rows-of-4 kernel) under the
/// GPU tuning. 60,000 features: on Mesa's Vulkan lavapipe the tiled matmul's loops run 18
/// iterations per 16 features (its inner loop over the staged slice is kept), past the cap from
/// about 58,250 features, where its results came back wrong (max |diff| 0.43 at 59,000): the plan
/// gives way to the register-blocked kernel. Then the most features any plan allows under the cap,
/// found from the plans so that it follows the kernels' `loop_iterations`: with sizes multiples of
/// 4 (the register-blocked kernel, in f32), odd (its 8x8 form), and in f16 (the f16 matmuls). Query
/// and query kernel are quantized (entries in {-1, 0, 1}, and multiples of 1/1024 up to 16/1024)
/// so that every partial sum of the long contraction is exact in f32 and the project's tolerance
/// holds.
#[test]
fn long_contractions_stay_within_the_loop_cap_under_gpu_tuning() {
    let mut ran = Ran::default();
    let wide = |k: usize| {
        let mut c = case(&format!("Dq={k}, T=17"), GqaConfig::new(4, 4, 1), [1, 17, 5, 8, 8]);
        c.dq = k;
        c
    };
    for ctx in adapters() {
        for precision in [Precision::F32, Precision::F16] {
            if precision == Precision::F16 && !ctx.supports_f16() {
                continue;
            }
            let (name, tuned) = contexts(ctx, precision, Path::Fused).remove(0);
            let plans = |k: usize| {
                let p = gqa::core::Problem::new(&wide(k).config, &[1, 17, k], &[1, 5, 8], None, &Default::default());
                Plan::tuned(&p.unwrap(), &tuned.limits(), tuned.tuning()).is_ok()
            };
            // The most features a plan allows, over the multiples of `step` plus `offset`.
            let edge = |step: usize, offset: usize| {
                let (mut lo, mut hi) = (1, 1 << 20);
                while hi - lo > 1 {
                    let mid = (lo + hi) / 2;
                    if plans(mid * step + offset) { lo = mid } else { hi = mid }
                }
                lo * step + offset
            };
            let mut sizes = vec![edge(2, 1)];
            if precision == Precision::F32 {
                sizes.extend([60_000, edge(4, 0)]);
            }
            if tuned.tuning().loop_iteration_cap.is_none() {
                sizes = vec![60_000];
            }
            for k in sizes {
                let c = wide(k);
                let mut inputs = c.inputs(3);
                for x in inputs.query.data_mut() {
                    *x = (*x * 1.5).round();
                }
                for w in inputs.weights.query.kernel.data_mut() {
                    *w = (*w * 1024.0).round().clamp(-16.0, 16.0) / 1024.0;
                }
                let want = c.oracle(&inputs);
                let what = format!("{} {precision:?} on {name}", c.name);
                let plan = c.plan(&tuned);
                ran.kernels.extend(check_plan(&what, &plan, Path::Fused));
                let tol = if precision == Precision::F16 { F16 } else { F32 };
                let (diff, _) = c.check_against(&tuned, &inputs, &want, None, tol);
                let query = plan.passes().find(|p| p.label == "project_query").unwrap().kernel.name();
                eprintln!("[{name}] {} {precision:?}: {query}, ok, max |diff| {diff:.2e}", c.name);
            }
        }
    }
    if adapters().iter().any(|c| c.tuning().loop_iteration_cap.is_some()) {
        ran.assert_has(Kernel::Matmul(MatmulKernel::blocked(BlockRows::Sixteen, Operands::Storage, false)));
        ran.assert_has(Kernel::Matmul(MatmulKernel::Blocked8x8(MatmulPrecision::F32)));
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

/// The fused kernel at the longest source its loop count lets it take under the adapter's loop
/// cap (found from the plans, so that it follows the kernel's `loop_iterations`), one key longer
/// the separate passes: the count must not undercount what the driver runs (a kernel whose loops
/// were stopped early would give wrong rows here). H = 64 under both masked-row policies, H = 256.
#[test]
#[ignore = "FusedAttention::loop_iterations (kernels/fused.rs) leaves out the per-tile staging and \
            rescale loops: at the last S it allows (H = 64: S = 1811) every row is wrong on lavapipe \
            and llvmpipe; the kernels are correct up to S = 1753 there"]
fn fused_kernel_at_the_edge_of_the_loop_cap_matches_the_oracle() {
    let mut ran = Ran::default();
    for ctx in adapters() {
        let tuning = gpu_tuning(ctx, Precision::F32);
        if tuning.loop_iteration_cap.is_none() {
            continue;
        }
        for (h, policy) in [(64, MaskedRows::Zeros), (64, MaskedRows::KerasDefault), (256, MaskedRows::Zeros)] {
            let mut c = case("", GqaConfig::new(h, 2, 1), [1, 17, 16, 8, 8]);
            c.options.masked_rows = policy;
            c.options.use_causal_mask = true;
            c.options.causal_alignment = CausalAlignment::BottomRight;
            let route = |s: usize| {
                let p = gqa::core::Problem::new(&c.config, &[1, 17, 8], &[1, s, 8], None, &c.options).unwrap();
                Plan::tuned(&p, &ctx.limits(), tuning).unwrap().route.attention
            };
            let fused = |s| matches!(route(s), AttentionRoute::Fused { .. });
            assert!(fused(16), "H={h}: the fused kernel at S = 16");
            let (mut lo, mut hi) = (16, 65_536);
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                if fused(mid) { lo = mid } else { hi = mid }
            }
            assert!(lo < 65_535, "H={h}: the fused kernel's loops grow with S");
            for (s, path) in [(lo, Path::Fused), (lo + 1, Path::Unfused)] {
                let mut c = c.clone();
                c.s = s;
                c.name = format!("H={h} {policy:?} T=17 S={s} (the fused kernel's last S: {lo})");
                let inputs = c.inputs(21);
                let want = c.oracle(&inputs);
                let (name, tuned) = contexts(ctx, Precision::F32, path).remove(0);
                ran.kernels.extend(check_plan(&format!("{} on {name}", c.name), &c.plan(&tuned), path));
                let (diff, _) = c.check_against(&tuned, &inputs, &want, None, F32);
                eprintln!("[{name}] {}: {path:?}, ok, max |diff| {diff:.2e}", c.name);
            }
        }
    }
}

/// The split path's reduce at the most splits its loop count lets it take under the adapter's loop
/// cap (the longest source whose plan still splits), under the GPU tuning with the fused kernel's
/// partials (256 keys per split): both masked-row policies, batch 1 fully masked (under Keras'
/// default-call policy its rows then average V over the splits, a second loop over them per head
/// element).
#[test]
#[ignore = "ReduceSplits::loop_iterations (kernels/fused.rs) leaves out the loop over the splits that \
            averages V for fully masked rows under MaskedRows::KerasDefault: with H = 128 the reduce \
            runs correctly up to 252 splits where the plans allow 502 (the adapters' own tuning too: \
            T=1 Nq=32 Nkv=1 H=128 S=80000 gives 8 of 16 outputs wrong); under MaskedRows::Zeros it is \
            correct up to 501 splits, one fewer than allowed"]
fn reduce_at_the_edge_of_the_loop_cap_matches_the_oracle() {
    for ctx in adapters() {
        let tuning = Tuning { decode_kernel: false, ..gpu_tuning(ctx, Precision::F32) };
        if tuning.loop_iteration_cap.is_none() {
            continue;
        }
        for policy in [MaskedRows::Zeros, MaskedRows::KerasDefault] {
            let c = case("", GqaConfig::new(128, 32, 1), [2, 1, 512, 8, 8]);
            let masked = |mut c: Case, s: usize| {
                c.s = s;
                c.options.masked_rows = policy;
                let mut vm = vec![true; 2 * s];
                vm[s..].fill(false);
                c.options.value_mask = Some(Mask::new(vec![2, s], vm).unwrap());
                c
            };
            let splits = |s: usize| {
                let c = masked(c.clone(), s);
                let p = gqa::core::Problem::new(&c.config, &[2, 1, 8], &[2, s, 8], None, &c.options).unwrap();
                Plan::tuned(&p, &ctx.limits(), tuning).ok().and_then(|p| p.route.attention.splits())
            };
            let (mut lo, mut hi) = (512, 1 << 20);
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                if splits(mid).is_some() { lo = mid } else { hi = mid }
            }
            let mut c = masked(c.clone(), lo);
            c.name = format!("T=1 Nq=32 Nkv=1 H=128 S={lo} ({:?} splits) {policy:?}, batch 1 fully masked", splits(lo));
            let inputs = c.inputs(5);
            let want = c.oracle(&inputs);
            let tuned = ctx.clone().with_tuning(tuning);
            check_plan(&format!("{} on {}", c.name, adapter_name(ctx)), &c.plan(&tuned), Path::Split);
            let (diff, _) = c.check_against(&tuned, &inputs, &want, None, F32);
            eprintln!("[{}] {}: ok, max |diff| {diff:.2e}", adapter_name(ctx), c.name);
        }
    }
}

/// The separate passes (scores requested) at the largest head size and the longest source the
/// plans allow under the adapter's loop cap (found from the plans, so that they follow the kernels'
/// `loop_iterations`): the logits' loop over H, the weighted values' loop over S.
#[test]
fn separate_passes_at_the_edge_of_the_loop_cap_match_the_oracle() {
    let mut ran = Ran::default();
    for ctx in adapters() {
        let (name, tuned) = contexts(ctx, Precision::F32, Path::Unfused).remove(0);
        if tuned.tuning().loop_iteration_cap.is_none() {
            continue;
        }
        let sized =
            |h: usize, s: usize| with_scores(case(&format!("H={h} S={s}"), GqaConfig::new(h, 1, 1), [1, 17, s, 8, 8]));
        let plans = |c: &Case| {
            let p = gqa::core::Problem::new(&c.config, &[1, 17, 8], &[1, c.s, 8], None, &c.options).unwrap();
            Plan::tuned(&p, &tuned.limits(), tuned.tuning()).is_ok()
        };
        // The largest x for which `at(x)` plans.
        let edge = |at: &dyn Fn(usize) -> Case| {
            let (mut lo, mut hi) = (1, 1 << 20);
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                if plans(&at(mid)) { lo = mid } else { hi = mid }
            }
            at(lo)
        };
        for c in [edge(&|h| sized(h, 20)), edge(&|s| sized(8, s))] {
            let inputs = c.inputs(3);
            let want = c.oracle(&inputs);
            let what = format!("{} on {name}", c.name);
            ran.kernels.extend(check_plan(&what, &c.plan(&tuned), Path::Unfused));
            let (diff, _) = c.check_against(&tuned, &inputs, &want, None, F32);
            eprintln!("[{name}] {}: ok, max |diff| {diff:.2e}", c.name);
        }
    }
}
