//! The loop cap under `Tuning::GPU` forced on Mesa's software adapters (lavapipe and llvmpipe stop
//! an invocation's loops silently after 65,535 iterations): `GpuContext::with_tuning` keeps the
//! driver's cap, and each kernel the GPU tuning selects is run at the largest size its
//! `loop_iterations` lets a plan take under the cap, against the oracle, so that a loop count that
//! undercounts what the driver runs shows as wrong rows.

mod common;

use common::gpu_tuning::{Path, Ran, case, check_plan, contexts, gpu_tuning, with_scores};
use common::{Case, F16, F32, adapter_name, adapters};
use gqa::core::{AttentionRoute, CausalAlignment, GqaConfig, Kernel, Mask, MaskedRows};
use gqa::core::{BlockRows, MatmulKernel, MatmulPrecision, Operands, Plan, Precision, Tuning};

/// A tuning forced with `with_tuning` keeps the driver's loop cap (Mesa's on CPU adapters, none on
/// GPUs): `Tuning::GPU`, which has none, plans within it, so the fused kernel gives way where its
/// loops would pass the cap (T = 20 with H = 64 over the shortest of S = 2,100, 4,200, ... where
/// its `loop_iterations` pass it), and the call gives the oracle's result; a tighter cap is kept, a
/// looser one is not; `with_loop_iteration_cap` declares the driver's cap, lifting it too.
#[test]
fn forcing_gpu_tuning_keeps_the_drivers_loop_cap() {
    let sized = |s: usize| case(&format!("H=64 T=20 S={s}"), GqaConfig::new(64, 4, 2), [1, 20, s, 8, 8]);
    // The fused kernel's loops over S at this shape, as its plan counts them.
    let fused_loops = |c: &Case| {
        let p = gqa::core::Problem::new(&c.config, &[1, 20, 8], &[1, c.s, 8], None, &c.options).unwrap();
        let plan = Plan::tuned(&p, &gqa::core::Limits::default(), Tuning::GPU).unwrap();
        let pass = plan.passes().find(|p| matches!(p.kernel, Kernel::FusedAttention { .. })).expect("the fused kernel");
        pass.kernel.loop_iterations(&pass.params, [0, 0])
    };
    let c = [2100, 4200, 8400, 16_800, 33_600]
        .into_iter()
        .map(sized)
        .find(|c| fused_loops(c) > gqa::core::LLVMPIPE_LOOP_CAP)
        .expect("a source past the cap for the fused kernel");
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

/// The fused kernel at the longest source its loop count lets it take under the adapter's loop
/// cap (found from the plans, so that it follows the kernel's `loop_iterations`), one key longer
/// the separate passes: the count must not undercount what the driver runs (a kernel whose loops
/// were stopped early would give wrong rows here). H = 64 under both masked-row policies, H = 256.
#[test]
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
