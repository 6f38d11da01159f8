//! `StepTimer` and `GqaLayer::profile`: GPU timestamps where the device has them, the wall clock
//! elsewhere; any range of steps, whole plan or one step; bad ranges are errors.

mod common;

use common::{Case, adapter_name, adapters, random_tensor, random_weights, rng};
use gqa::core::{GqaConfig, Step};
use gqa::gpu::{GqaLayer, Timing};

#[test]
fn step_timer_times_ranges_and_profile_covers_every_step() {
    for ctx in adapters() {
        let _gl = common::gl_guard(ctx);
        let c = Case::new("timer", GqaConfig::new(8, 4, 2));
        let layer = GqaLayer::new(ctx, &c.config, &random_weights(&c.config, c.dims(), 1)).unwrap();
        let mut r = rng(1);
        let q = random_tensor(&[c.batch, c.t, c.dq], &mut r);
        let v = random_tensor(&[c.batch, c.s, c.dv], &mut r);
        let timer = layer.step_timer(&q, &v, None, &c.options).unwrap();
        let has_timestamps = ctx.device().features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let expected = if has_timestamps { Timing::GpuTimestamps } else { Timing::WallClock };
        assert_eq!(timer.timing(), expected, "{}", adapter_name(ctx));
        let n = timer.plan().steps.len();
        let whole = timer.time(0..n).unwrap();
        assert!(whole > std::time::Duration::ZERO, "{}: {whole:?}", adapter_name(ctx));
        timer.time(1..2).unwrap();
        timer.time(0..0).unwrap();
        assert!(timer.time(0..n + 1).is_err(), "a range past the plan is an error");
        let steps = layer.profile(&q, &v, None, &c.options, 2).unwrap();
        assert_eq!(steps.len(), n);
        assert!(steps.iter().all(|s| s.timing == expected));
        eprintln!("[{}] {expected:?}: whole plan {whole:?}", adapter_name(ctx));
    }
}

#[test]
fn profile_against_roofline_gives_each_matmul_its_share_of_the_fma_probe() {
    for ctx in adapters() {
        let _gl = common::gl_guard(ctx);
        let name = adapter_name(ctx);
        let c = Case::new("roofline profile", GqaConfig::new(8, 4, 2));
        let layer = GqaLayer::new(ctx, &c.config, &random_weights(&c.config, c.dims(), 2)).unwrap();
        let mut r = rng(2);
        let q = random_tensor(&[c.batch, c.t, c.dq], &mut r);
        let v = random_tensor(&[c.batch, c.s, c.dv], &mut r);
        let plan = layer.step_timer(&q, &v, None, &c.options).unwrap().plan().clone();
        let plain = layer.profile(&q, &v, None, &c.options, 1).unwrap();
        let probes = gqa::gpu::roofline::Probes::new(ctx).unwrap();
        let paired = layer.profile_against_roofline(&q, &v, None, &c.options, 2, &probes).unwrap();
        assert_eq!(paired.len(), plan.steps.len());
        let mut matmuls = 0;
        for ((step, plain), paired) in plan.steps.iter().zip(&plain).zip(&paired) {
            let want = match step {
                Step::Dispatch(pass) if pass.kernel.is_matmul() => {
                    Some(2 * pass.params.m as u64 * pass.params.n as u64 * pass.params.k as u64)
                }
                _ => None,
            };
            assert_eq!(paired.flops, want, "{name}: {}", paired.label);
            assert_eq!(plain.flops, want, "{name}: {}", plain.label);
            assert_eq!(plain.fma_share, None, "{name}: the plain profile runs no probe");
            match (want, paired.fma_share) {
                (Some(_), Some(share)) => {
                    matmuls += 1;
                    // A real ratio of two timings: positive and finite (a tiny matmul is far below
                    // the probe; none is 100 times above it).
                    assert!(
                        share.is_finite() && share > 0.0 && share < 100.0,
                        "{name}: {} share {share}",
                        paired.label
                    );
                }
                (None, None) => {}
                other => panic!("{name}: {}: flops and share disagree: {other:?}", paired.label),
            }
        }
        assert_eq!(matmuls, 4, "{name}: the four projections have shares");
    }
}

#[test]
fn roofline_probes_measure_again_and_again() {
    for ctx in adapters() {
        let _gl = common::gl_guard(ctx);
        let name = adapter_name(ctx);
        let probes = gqa::gpu::roofline::Probes::new(ctx).unwrap();
        // Each FMA sample zeroes its queue first: a second and a third sample do the same work
        // (one that found the queue already empty would read many times faster).
        let readings: Vec<f64> = (0..3).map(|_| probes.fma_gflops(1).unwrap()).collect();
        assert!(readings.iter().all(|g| g.is_finite() && *g > 0.0), "{name}: {readings:?}");
        let (lo, hi) = readings.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &g| (lo.min(g), hi.max(g)));
        assert!(hi < 5.0 * lo, "{name}: the samples did different work: {readings:?}");
        if ctx.adapter_info().device_type == wgpu::DeviceType::Cpu {
            // A physical bound: per core at most 2 FMA units x 16 f32 lanes x 2 FLOPs at 4 GHz. A
            // sample whose queue was already empty reads far above it (2-core lavapipe: 660-1020).
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
            assert!(hi < 256.0 * cores, "{name}: {readings:?} GFLOP/s is beyond {cores} cores: work was skipped");
        }
        let roof = probes.measure(2).unwrap();
        assert!(roof.gbps.is_finite() && roof.gbps > 0.0, "{name}: {roof:?}");
        assert!(roof.attainable(1e-3) <= roof.gflops && roof.attainable(1e9) == roof.gflops);
    }
}
