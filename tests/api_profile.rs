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
        let paired = layer.profile_against_roofline(&q, &v, None, &c.options, 2).unwrap();
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
