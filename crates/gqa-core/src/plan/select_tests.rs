//! [`select::selectable`] against what plans pick: a grid of problems planned under each tuning.

use std::collections::BTreeSet;

use super::select::{gpu_selectable, gpu_tunings, selectable};
use super::*;
use crate::kernels::Operands;
use crate::options::MaskedRows;
use crate::{CacheShape, CacheStorage, CallOptions, GqaConfig, Mask};

/// The kernels of a plan's passes.
fn picked(plan: &Plan) -> Vec<Kernel> {
    plan.passes().map(|p| p.kernel).collect()
}

/// Every kernel the plans of the grid pick under `tuning` (each planned on the default limits and
/// on WebGPU's): T and S small and large, T != S, batch 1 and 3, scores, dropout, masks, causal
/// and windowed, Keras' masked-row policy, H from 4 to 256 (and 6, 260, which no fused kernel
/// takes), groups of 1 to 8 query heads per kv head, and cached calls (f32).
fn grid_picks(tuning: Tuning) -> Vec<Kernel> {
    let mut picks = Vec::new();
    let heads = [(4, 4, 4), (8, 8, 2), (64, 8, 1), (128, 4, 4), (256, 8, 2), (6, 4, 2), (260, 2, 1)];
    let lengths = [(1, 1), (1, 700), (4, 1024), (16, 2048), (2, 40), (20, 50), (64, 64), (200, 130)];
    for (h, nq, nkv) in heads {
        for windowed in [None, Some(8)] {
            for dropout in [0.0, 0.1] {
                let cfg = GqaConfig { sliding_window: windowed, dropout, ..GqaConfig::new(h, nq, nkv) };
                for (t, s) in lengths {
                    for b in [1, 3] {
                        let mask = Mask::new(vec![b, t, s], vec![true; b * t * s]).unwrap();
                        let options = [
                            CallOptions::default(),
                            CallOptions::default().with_attention_scores(true),
                            CallOptions::default().with_training(true),
                            CallOptions::default().with_causal_mask(true),
                            CallOptions::default().with_causal_mask(true).with_masked_rows(MaskedRows::KerasDefault),
                            CallOptions::default().with_attention_mask(mask),
                        ];
                        for opts in options {
                            let p = Problem::new(&cfg, &[b, t, 16], &[b, s, 12], None, &opts).unwrap();
                            for limits in [Limits::default(), Limits::webgpu_default()] {
                                if let Ok(plan) = Plan::tuned(&p, &limits, tuning) {
                                    picks.extend(picked(&plan));
                                    picks.extend(picked(&plan.packing_by_passes_from(BufferId::Query)));
                                }
                            }
                        }
                    }
                }
            }
            picks.extend(cached_picks(h, nq, nkv, windowed, tuning));
        }
        picks.extend(extension_picks(h, nq, nkv, tuning));
    }
    picks
}

/// The kernels of calls with attention extensions: QK-norm and RoPE (where H is even), with and
/// without the soft cap and sinks.
fn extension_picks(h: usize, nq: usize, nkv: usize, tuning: Tuning) -> Vec<Kernel> {
    use crate::extensions::{AttentionExtensions, KeyWindow, NormScale, QkNorm, Rope, RopeFrequencies, RopeLayout};
    let mut picks = Vec::new();
    let rope = Rope::new(h, RopeFrequencies::Plain { wavelength: 10_000.0 }, RopeLayout::RotateHalf).ok();
    let positional = AttentionExtensions {
        rope,
        qk_norm: Some(QkNorm { epsilon: 1e-6, form: NormScale::Scale }),
        window: Some(KeyWindow::Lookback(8)),
        ..Default::default()
    };
    let capped = AttentionExtensions { soft_cap: Some(30.0), sinks: true, ..positional.clone() };
    let cfg = GqaConfig::new(h, nq, nkv);
    for ext in [positional, capped] {
        for n in [1, 64] {
            let p = Problem::new(&cfg, &[1, n, 16], &[1, n, 16], None, &CallOptions::default().with_causal_mask(true))
                .and_then(|p| p.with_extensions(&ext))
                .unwrap();
            if let Ok(plan) = Plan::tuned(&p, &Limits::default(), tuning) {
                picks.extend(picked(&plan));
            }
        }
    }
    picks
}

/// The kernels of cached calls (a prefill and decoding steps) over caches of every storage, with
/// texture mirrors where the tuning keeps them.
fn cached_picks(h: usize, nq: usize, nkv: usize, window: Option<usize>, tuning: Tuning) -> Vec<Kernel> {
    let cfg = GqaConfig { sliding_window: window, ..GqaConfig::new(h, nq, nkv) };
    let limits = Limits::default();
    let mut picks = Vec::new();
    let calls = [(0, 20, 64), (30, 1, 64), (700, 1, 1024), (600, 16, 1024), (30, 20, 64)];
    for ((past, new, cap), storage) in calls.into_iter().flat_map(|c| CacheStorage::ALL.map(|s| (c, s))) {
        let Ok(shape) = CacheShape::new(&cfg, 2, cap).unwrap().with_storage(storage) else {
            continue;
        };
        let mirror = tuning.keeps_cache_texture(&shape, &limits);
        let update = CacheUpdate::new(shape, &[past; 2], &[new; 2], new, window).unwrap().with_texture_mirror(mirror);
        let (problem, _) = update.problem(&cfg, 16, 12, None).unwrap();
        if let Ok(plan) = Plan::cached(&problem, &update, &limits, tuning) {
            picks.extend(picked(&plan));
        }
    }
    picks
}

fn names(kernels: impl IntoIterator<Item = Kernel>) -> BTreeSet<&'static str> {
    kernels.into_iter().map(Kernel::name).collect()
}

/// Under every GPU tuning the grid picks exactly the kernels `selectable` lists: none outside the
/// list, and each listed one by some problem.
#[test]
fn gpu_tunings_pick_exactly_the_selectable_kernels() {
    for tuning in gpu_tunings() {
        let listed = names(selectable(&tuning));
        let picked = names(grid_picks(tuning));
        let unlisted: Vec<_> = picked.difference(&listed).collect();
        let unpicked: Vec<_> = listed.difference(&picked).collect();
        assert!(unlisted.is_empty(), "{tuning:?}: plans pick {unlisted:?}, which selectable does not list");
        assert!(unpicked.is_empty(), "{tuning:?}: selectable lists {unpicked:?}, which no plan of the grid picks");
    }
}

/// Under the CPU tunings (f32; subgroups off and on) every kernel the grid picks is listed.
#[test]
fn cpu_tunings_pick_only_selectable_kernels() {
    for subgroups in [false, true] {
        let tuning = Tuning { subgroups, subgroup_sizes: [8, 64], ..Tuning::CPU };
        let listed = names(selectable(&tuning));
        let picked = names(grid_picks(tuning));
        let unlisted: Vec<_> = picked.difference(&listed).collect();
        assert!(unlisted.is_empty(), "{tuning:?}: plans pick {unlisted:?}, which selectable does not list");
    }
}

/// The GPU list is the union of the GPU tunings' lists, and the kernels only CPU adapters run are
/// not in it.
#[test]
fn the_gpu_list_is_the_union_of_the_gpu_tunings() {
    let union: BTreeSet<_> = gpu_tunings().iter().flat_map(selectable).map(Kernel::name).collect();
    assert_eq!(names(gpu_selectable()), union);
    for k in [Kernel::PackTexture, Kernel::CheckValues, Kernel::DecodeAttention(Operands::Texture)] {
        assert!(!gpu_selectable().contains(&k), "{k:?}");
    }
    assert!(gpu_tunings().iter().all(|t| t.matmul == Tuning::GPU.matmul && !t.reads_textures()));
}
