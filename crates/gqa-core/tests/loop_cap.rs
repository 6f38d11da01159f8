//! Mesa's llvmpipe (lavapipe, GL llvmpipe) silently ends an invocation's loops after 65,535
//! iterations in all (`tests/gpu_loop_cap.rs` measures it). Every plan under a tuning with that cap
//! must keep every invocation of every pass under it ([`gqa_core::Kernel::loop_iterations`]), for any shape
//! within the documented limits, and plans must never fail for the cap inside them. Each kernel
//! runs one tile of its dispatch's grid per workgroup (its workgroup id), so an invocation's loops
//! are one tile's.

use gqa_core::{
    CacheShape, CacheUpdate, CallOptions, CausalAlignment, GqaConfig, GqaError, Limits, MaskedRows, Plan, Problem,
    Tuning,
};
use proptest::prelude::*;

const CAP: u64 = 65_535;

/// The tunings plans are built under: the CPU adapters' (with subgroups of lavapipe's 8 lanes, of
/// sizes from 4 to 64, unknown, or none; without the block attention) and the GPU's.
fn tunings() -> Vec<Tuning> {
    let cpu = Tuning::CPU;
    let mut all = vec![cpu, Tuning { block_attention: false, ..cpu }, Tuning { fused_attention: true, ..cpu }];
    for sizes in [[8, 8], [4, 64], [16, 16], [32, 32], [0, 0]] {
        all.push(Tuning { subgroups: true, subgroup_sizes: sizes, ..cpu });
    }
    all.push(Tuning::GPU);
    all.push(Tuning { loop_iteration_cap: Some(CAP), ..Tuning::GPU });
    all
}

/// The WebGPU defaults, and limits like a desktop driver's (lavapipe's are larger still).
fn limit_sets() -> [Limits; 2] {
    let big = Limits {
        max_storage_buffer_binding_size: (1 << 31) - 4,
        max_buffer_size: 1 << 34,
        max_texture_dimension_2d: 16_384,
        max_compute_workgroup_storage_size: 32_768,
        ..Limits::webgpu_default()
    };
    [Limits::webgpu_default(), big]
}

/// Checks every pass of `plan`: under a cap, each invocation stays within it.
fn check_plan(plan: &Plan, tuning: &Tuning, what: &str) {
    let Some(cap) = tuning.loop_iteration_cap else { return };
    for pass in plan.passes() {
        let loops = pass.kernel.loop_iterations(&pass.params, tuning.subgroup_sizes);
        assert!(
            loops <= cap,
            "{what}: pass {} ({}) may loop {loops} times per invocation, over the cap {cap} (workgroups {:?})",
            pass.label,
            pass.kernel.name(),
            pass.workgroups,
        );
    }
}

/// Whether the error is the loop cap's.
fn is_loop_cap(err: &GqaError) -> bool {
    err.to_string().contains("loop_iteration_cap")
}

/// The headline shape (B=1, T=S=512, Nq=32, Nkv=8, H=128, Dq=Dk=Dv=4096) under the CPU tunings.
#[test]
fn the_headline_shape_stays_within_the_cap() {
    let config = GqaConfig::new(128, 32, 8);
    let problem =
        Problem::new(&config, &[1, 512, 4096], &[1, 512, 4096], Some(&[1, 512, 4096]), &CallOptions::default())
            .unwrap();
    for tuning in tunings() {
        for limits in limit_sets() {
            check_plan(&Plan::tuned(&problem, &limits, tuning).unwrap(), &tuning, "headline");
        }
    }
}

/// Large grids: T = S = 2048 with a batch of 2, B = 4, T = S = 8192, a 16,384-wide model.
#[test]
fn large_grids_stay_within_the_cap() {
    let config = GqaConfig::new(128, 32, 8);
    for (b, t, s, d) in [(2, 2048, 2048, 4096), (4, 512, 512, 4096), (1, 8192, 8192, 1024), (1, 2048, 2048, 16_384)] {
        let problem = Problem::new(&config, &[b, t, d], &[b, s, d], None, &CallOptions::default()).unwrap();
        for tuning in tunings() {
            for limits in limit_sets() {
                match Plan::tuned(&problem, &limits, tuning) {
                    Ok(plan) => check_plan(&plan, &tuning, &format!("B={b} T={t} S={s} D={d} {tuning:?}")),
                    Err(e) => assert!(!is_loop_cap(&e), "B={b} T={t} S={s} D={d}: {e}"),
                }
            }
        }
    }
}

fn options(causal: bool, bottom_right: bool, keras_rows: bool) -> CallOptions {
    CallOptions {
        use_causal_mask: causal,
        causal_alignment: if bottom_right { CausalAlignment::BottomRight } else { CausalAlignment::TopLeft },
        masked_rows: if keras_rows { MaskedRows::KerasDefault } else { MaskedRows::Zeros },
        ..CallOptions::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Any shape within the documented limits (S up to 65,519 keys; T up to 8,192 queries; H up to
    /// 256; model dims up to 16,384), any options, every tuning, two sets of limits: the plan keeps
    /// every invocation within the cap, or fails for a reason other than the cap.
    #[test]
    fn every_plan_keeps_every_invocation_within_the_cap(
        b in 1usize..=3,
        t in prop_oneof![1usize..=32, 1usize..=8192],
        s in prop_oneof![1usize..=600, 1usize..=65_519],
        nkv in 1usize..=8,
        r in 1usize..=8,
        h in prop_oneof![(1usize..=64).prop_map(|x| 4 * x), 1usize..=256],
        dq in prop_oneof![(1usize..=4096).prop_map(|x| 4 * x), 1usize..=4096],
        dv in prop_oneof![(1usize..=4096).prop_map(|x| 4 * x), 1usize..=4096],
        causal in any::<bool>(),
        bottom_right in any::<bool>(),
        window in prop::option::of(1usize..=4096),
        keras_rows in any::<bool>(),
        gate in any::<bool>(),
    ) {
        let mut config = GqaConfig::new(h, nkv * r, nkv);
        config.use_gate = gate;
        config.sliding_window = window;
        let opts = options(causal, bottom_right, keras_rows);
        let problem = Problem::new(&config, &[b, t, dq], &[b, s, dv], None, &opts).unwrap();
        for tuning in tunings() {
            for limits in limit_sets() {
                match Plan::tuned(&problem, &limits, tuning) {
                    Ok(plan) => {
                        check_plan(&plan, &tuning, &format!("B={b} T={t} S={s} Nkv={nkv} R={r} H={h} Dq={dq} Dv={dv}"));
                    }
                    Err(e) => prop_assert!(!is_loop_cap(&e), "B={} T={} S={} H={}: {}", b, t, s, h, e),
                }
            }
        }
    }

    /// Cached calls (prefill and decoding steps over a KV cache), with and without texture mirrors.
    #[test]
    fn every_cached_plan_keeps_every_invocation_within_the_cap(
        b in 1usize..=2,
        past in 0usize..=8192,
        new in prop_oneof![1usize..=4, 1usize..=2048],
        nkv in 1usize..=8,
        r in 1usize..=4,
        h in (1usize..=32).prop_map(|x| 4 * x),
        d in (1usize..=1024).prop_map(|x| 4 * x),
        mirror in any::<bool>(),
    ) {
        let config = GqaConfig::new(h, nkv * r, nkv);
        let capacity = past + new;
        let shape = CacheShape::new(&config, b, capacity).unwrap();
        let update = CacheUpdate::new(shape, &vec![past; b], &vec![new; b], new, None).unwrap().with_texture_mirror(mirror);
        let (problem, _) = update.problem(&config, d, d, None).unwrap();
        for tuning in tunings() {
            for limits in limit_sets() {
                match Plan::cached(&problem, &update, &limits, tuning) {
                    Ok(plan) => {
                        check_plan(&plan, &tuning, &format!("cached B={b} past={past} new={new} H={h} D={d}"));
                    }
                    Err(e) => prop_assert!(!is_loop_cap(&e), "cached past={} new={}: {}", past, new, e),
                }
            }
        }
    }
}

/// The documented boundary: more than 16 queries over more than 65,519 keys is the loop cap's error
/// on a CPU adapter (the weighted sum's loop over the keys), 65,519 keys plan; up to 16 queries take
/// the split decode path at any length.
#[test]
fn the_documented_boundary_of_the_cap() {
    let config = GqaConfig::new(64, 8, 2);
    let plan = |t: usize, s: usize| {
        let problem = Problem::new(&config, &[1, t, 64], &[1, s, 64], None, &CallOptions::default()).unwrap();
        Plan::tuned(&problem, &limit_sets()[1], Tuning::CPU)
    };
    check_plan(&plan(17, 65_519).unwrap(), &Tuning::CPU, "S=65,519");
    assert!(is_loop_cap(&plan(17, 65_520).unwrap_err()));
    check_plan(&plan(16, 200_000).unwrap(), &Tuning::CPU, "T=16 S=200,000");
}
