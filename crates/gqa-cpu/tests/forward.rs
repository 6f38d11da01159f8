//! The CPU layer against the oracle (atol 1e-5, rtol 1e-4, NaN must agree) over the matrix the GPU
//! layer is tested on: MQA, MHA, GQA R = 2/4/8, T < S, T = S, T > S, both causal alignments, every
//! attention-mask shape, query/value/key masks, rows that see no key under both policies,
//! Dq != Dk != Dv, no bias, gate, windows, sizes off the tiles, B > 1, scores, dropout, NaN and
//! infinities, and the largest shapes.

mod common;

use common::{check_forward, layer, mask, tensor};
use gqa_core::{CallOptions, CausalAlignment, GqaConfig, LayerDims, MaskedRows};
use rand::{SeedableRng, rngs::StdRng};

const ALIGNMENTS: [CausalAlignment; 2] = [CausalAlignment::TopLeft, CausalAlignment::BottomRight];
const POLICIES: [MaskedRows; 2] = [MaskedRows::Zeros, MaskedRows::KerasDefault];

fn dims(dq: usize, dk: usize, dv: usize) -> LayerDims {
    LayerDims { query_dim: dq, key_dim: dk, value_dim: dv }
}

#[test]
fn heads_lengths_and_causal_alignments() {
    let mut rng = StdRng::seed_from_u64(1);
    // (H, Nq, Nkv): MHA, GQA R = 2, 4, 8, MQA; head sizes off any vector width.
    for (h, nq, nkv) in [(8, 4, 4), (16, 4, 2), (5, 8, 2), (32, 8, 1), (12, 16, 2), (64, 3, 1)] {
        let config = GqaConfig::new(h, nq, nkv);
        let l = layer(config, dims(24, 20, 18), 7);
        // T < S, T = S, T > S, sizes off the tiles (64 queries, 256 keys) and across them.
        for (b, t, s) in [(1, 5, 9), (2, 7, 7), (1, 9, 4), (3, 70, 300), (1, 1, 513), (2, 130, 65)] {
            let q = tensor([b, t, 24], &mut rng);
            let v = tensor([b, s, 18], &mut rng);
            let k = tensor([b, s, 20], &mut rng);
            for causal in [false, true] {
                for alignment in ALIGNMENTS {
                    let options = CallOptions::default().with_causal_mask(causal).with_causal_alignment(alignment);
                    let what = format!("H={h} Nq={nq} Nkv={nkv} B={b} T={t} S={s} causal={causal} {alignment:?}");
                    check_forward(&l, &q, &v, Some(&k), &options, &what);
                }
            }
        }
    }
}

#[test]
fn key_defaults_to_value_and_no_bias_and_gate() {
    let mut rng = StdRng::seed_from_u64(2);
    for (use_bias, use_gate) in [(false, false), (true, true), (false, true)] {
        let config = GqaConfig { use_bias, use_gate, ..GqaConfig::new(16, 8, 2) };
        let l = layer(config, dims(40, 40, 40), 3);
        let x = tensor([2, 33, 40], &mut rng);
        let options = CallOptions::default().with_causal_mask(true);
        check_forward(&l, &x, &x, None, &options, &format!("bias={use_bias} gate={use_gate}"));
    }
}

#[test]
fn every_mask_kind_and_broadcast_under_both_policies() {
    let mut rng = StdRng::seed_from_u64(3);
    let config = GqaConfig::new(8, 4, 2);
    let l = layer(config, dims(16, 12, 10), 5);
    let (b, t, s, nq) = (2, 19, 300, 4);
    let q = tensor([b, t, 16], &mut rng);
    let v = tensor([b, s, 10], &mut rng);
    let k = tensor([b, s, 12], &mut rng);
    let shapes: [&[usize]; 8] =
        [&[t, s], &[b, t, s], &[1, t, s], &[b, 1, s], &[b, nq, t, s], &[1, nq, 1, s], &[b, 1, t, 1], &[1, 1, 1, s]];
    for policy in POLICIES {
        for shape in shapes {
            // Sparse enough that some rows see no key at all.
            let options =
                CallOptions::default().with_attention_mask(mask(shape, 0.02, &mut rng)).with_masked_rows(policy);
            check_forward(&l, &q, &v, Some(&k), &options, &format!("attention mask {shape:?} {policy:?}"));
        }
        let options = CallOptions::default()
            .with_query_mask(mask(&[b, t], 0.7, &mut rng))
            .with_value_mask(mask(&[b, s], 0.6, &mut rng))
            .with_key_mask(mask(&[b, s], 0.6, &mut rng))
            .with_causal_mask(true)
            .with_masked_rows(policy)
            .with_attention_scores(true);
        check_forward(&l, &q, &v, Some(&k), &options, &format!("padding masks, causal, scores {policy:?}"));
        // Every row masked.
        let options = CallOptions::default().with_value_mask(mask(&[b, s], 0.0, &mut rng)).with_masked_rows(policy);
        check_forward(&l, &q, &v, Some(&k), &options, &format!("all masked {policy:?}"));
    }
}

#[test]
fn sliding_windows_with_and_without_causal() {
    let mut rng = StdRng::seed_from_u64(4);
    for window in [1, 3, 64, 257] {
        let config = GqaConfig { sliding_window: Some(window), ..GqaConfig::new(16, 8, 4) };
        let l = layer(config, dims(32, 32, 32), 9);
        for (t, s) in [(40, 40), (20, 600), (600, 20)] {
            let q = tensor([2, t, 32], &mut rng);
            let v = tensor([2, s, 32], &mut rng);
            for causal in [false, true] {
                for alignment in ALIGNMENTS {
                    for policy in POLICIES {
                        let options = CallOptions::default()
                            .with_causal_mask(causal)
                            .with_causal_alignment(alignment)
                            .with_masked_rows(policy);
                        let what = format!("window {window} T={t} S={s} causal={causal} {alignment:?} {policy:?}");
                        check_forward(&l, &q, &v, None, &options, &what);
                    }
                }
            }
        }
    }
}

#[test]
fn scores_and_dropout() {
    let mut rng = StdRng::seed_from_u64(5);
    for policy in POLICIES {
        let config = GqaConfig { dropout: 0.3, seed: Some(12), ..GqaConfig::new(8, 6, 2) };
        let l = layer(config, dims(16, 16, 16), 4);
        let q = tensor([2, 21, 16], &mut rng);
        let v = tensor([2, 290, 16], &mut rng);
        let options = CallOptions::default()
            .with_attention_scores(true)
            .with_training(true)
            .with_causal_mask(true)
            .with_query_mask(mask(&[2, 21], 0.8, &mut rng))
            .with_masked_rows(policy);
        check_forward(&l, &q, &v, None, &options, &format!("scores, dropout, {policy:?}"));
        let options = options.with_dropout_seed(99).with_attention_scores(false);
        check_forward(&l, &q, &v, None, &options, &format!("dropout seed 99, {policy:?}"));
    }
}

#[test]
fn nan_and_infinities_propagate_as_in_keras() {
    let mut rng = StdRng::seed_from_u64(6);
    let config = GqaConfig::new(8, 4, 2);
    let l = layer(config, dims(16, 16, 16), 2);
    let (t, s) = (40, 600);
    let q = tensor([1, t, 16], &mut rng);
    let k = tensor([1, s, 16], &mut rng);
    for (token, bad) in [(590, f32::NAN), (590, f32::INFINITY), (3, f32::NAN), (300, f32::NEG_INFINITY)] {
        let mut v = tensor([1, s, 16], &mut rng);
        v.data_mut()[token * 16 + 5] = bad;
        for policy in POLICIES {
            for alignment in ALIGNMENTS {
                // Top-left causal: the key past every query's horizon is skipped by the tiles' walk
                // unless its V is checked.
                let options = CallOptions::default()
                    .with_causal_mask(true)
                    .with_causal_alignment(alignment)
                    .with_masked_rows(policy);
                let out = check_forward(
                    &l,
                    &q,
                    &v,
                    Some(&k),
                    &options,
                    &format!("V[{token}] = {bad} {policy:?} {alignment:?}"),
                );
                assert!(out.output.data().iter().any(|x| !x.is_finite()));
            }
        }
        let mut bad_key = k.clone();
        bad_key.data_mut()[token * 16] = bad;
        let options = CallOptions::default().with_causal_mask(true);
        check_forward(&l, &q, &tensor([1, s, 16], &mut rng), Some(&bad_key), &options, &format!("K[{token}] = {bad}"));
    }
}

/// The headline layer (B = 1, T = S = 512, Nq = 32, Nkv = 8, H = 128, D = 4096), causal and not.
#[test]
fn the_headline_layer() {
    let mut rng = StdRng::seed_from_u64(7);
    let l = layer(GqaConfig::new(128, 32, 8), dims(4096, 4096, 4096), 1);
    let x = tensor([1, 512, 4096], &mut rng);
    for causal in [false, true] {
        let options = CallOptions::default().with_causal_mask(causal);
        check_forward(&l, &x, &x, None, &options, &format!("headline causal={causal}"));
    }
}

/// A long source: one query block over 16,384 keys, and a batch of long sequences.
#[test]
fn long_sources() {
    let mut rng = StdRng::seed_from_u64(8);
    let l = layer(GqaConfig::new(64, 8, 2), dims(128, 128, 128), 1);
    for (b, t, s) in [(1, 16, 16384), (2, 1000, 3000)] {
        let q = tensor([b, t, 128], &mut rng);
        let v = tensor([b, s, 128], &mut rng);
        let options = CallOptions::default().with_causal_mask(true).with_causal_alignment(CausalAlignment::BottomRight);
        check_forward(&l, &q, &v, None, &options, &format!("B={b} T={t} S={s}"));
    }
}

/// Few tiles on many threads: each tile's keys are split over several tasks and merged. Run in a
/// pool of 8 threads, so that the split happens whatever the machine: decode-shaped calls with every
/// semantic that crosses the parts (masks, rows that see no key, dropout, scores, NaN in V).
#[test]
fn key_ranges_split_over_threads_and_merge() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(8).build().unwrap();
    let mut rng = StdRng::seed_from_u64(9);
    for policy in POLICIES {
        let config = GqaConfig { dropout: 0.2, ..GqaConfig::new(16, 4, 1) };
        let l = layer(config, dims(32, 32, 32), 3);
        let (t, s) = (2, 3000);
        let q = tensor([1, t, 32], &mut rng);
        let mut v = tensor([1, s, 32], &mut rng);
        let options = CallOptions::default()
            .with_causal_mask(true)
            .with_causal_alignment(CausalAlignment::BottomRight)
            .with_value_mask(mask(&[1, s], 0.3, &mut rng))
            .with_query_mask(gqa_core::Mask::new([1, t], vec![true, false]).unwrap())
            .with_masked_rows(policy);
        pool.install(|| {
            check_forward(&l, &q, &v, None, &options, &format!("split keys {policy:?}"));
            let scored = options.clone().with_attention_scores(true).with_training(true);
            check_forward(&l, &q, &v, None, &scored, &format!("split keys, scores, dropout {policy:?}"));
        });
        v.data_mut()[1234 * 32 + 7] = f32::NAN;
        pool.install(|| check_forward(&l, &q, &v, None, &options, &format!("split keys, NaN in V {policy:?}")));
    }
}
