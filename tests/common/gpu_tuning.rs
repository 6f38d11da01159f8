//! Running a case under `Tuning::GPU` forced on an adapter: the tuning as a GPU's context would
//! have it (with the adapter's loop cap and subgroups), the contexts a path runs on, and the checks
//! that a plan takes the intended attention route with the GPU tuning's matmuls.

use std::collections::{BTreeMap, HashSet};

use super::{Case, F16, F32, Tolerance, adapter_name, adapters, f16_adapters};
use gqa::core::plan::select::FEW_ROWS;
use gqa::core::{AttentionRoute, CausalAlignment, GqaConfig, Kernel};
use gqa::core::{BlockRows, MatmulKernel, MatmulPrecision, Operands, Params, Plan, Precision, Tuning};
use gqa::gpu::GpuContext;

/// The attention path a case is meant to take under the GPU tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
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
pub fn gpu_tuning(ctx: &GpuContext, precision: Precision) -> Tuning {
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
pub fn contexts(ctx: &GpuContext, precision: Precision, path: Path) -> Vec<(String, GpuContext)> {
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
pub fn gpu_matmul(precision: Precision, cap: Option<u64>, label: &str, m: u32, k: u32, n: u32) -> Kernel {
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
pub fn check_plan(what: &str, plan: &Plan, path: Path) -> Vec<Kernel> {
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
        } else if let Kernel::Position(precision) = p.kernel {
            // The attention extensions' positional pass (QK-norm, RoPE) after the projections.
            assert_eq!(precision, plan.tuning.precision, "{what}: {}", p.label);
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
pub struct Ran {
    /// Every kernel of the plans run.
    pub kernels: HashSet<Kernel>,
    /// The calls checked.
    pub calls: usize,
    /// The seconds of the GPU calls, per adapter.
    pub seconds: BTreeMap<String, f64>,
}

impl Ran {
    /// Asserts that `kernel` ran in some case.
    pub fn assert_has(&self, kernel: Kernel) {
        assert!(self.kernels.contains(&kernel), "no case ran {} ({kernel:?})", kernel.name());
    }
}

/// Runs `case` on every adapter (f16: every adapter with `SHADER_F16`) under the GPU tuning in
/// `precision` (for the split path also with the fused kernel's partials), each plan asserted to take
/// `path`, each output (and the scores) compared with the oracle's, computed once.
pub fn run(case: &Case, path: Path, precision: Precision, ran: &mut Ran) {
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
pub fn case(name: &str, config: GqaConfig, [b, t, s, dq, dv]: [usize; 5]) -> Case {
    let mut c = Case::new(name, config);
    (c.batch, c.t, c.s, c.dq, c.dv) = (b, t, s, dq, dv);
    c
}

/// `c` with a causal mask of `align`.
pub fn causal(mut c: Case, align: CausalAlignment) -> Case {
    c.options.use_causal_mask = true;
    c.options.causal_alignment = align;
    c
}

/// `c` returning the attention scores.
pub fn with_scores(mut c: Case) -> Case {
    c.options.return_attention_scores = true;
    c
}
