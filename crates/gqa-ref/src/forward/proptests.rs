//! Invariants of the forward pass over small random configs.

use super::*;
use gqa_core::{CausalAlignment, Initializer, Mask, MaskedRows};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::init::initialize_weights;
use crate::mask::visibility;

#[derive(Debug, Clone)]
struct Case {
    b: usize,
    t: usize,
    s: usize,
    nkv: usize,
    r: usize,
    h: usize,
    dq: usize,
    dv: usize,
    dk: Option<usize>,
    use_bias: bool,
    use_gate: bool,
    window: Option<usize>,
    causal: bool,
    bottom_right: bool,
    keras_default: bool,
    masks: bool,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (1..3usize, 1..6usize, 1..6usize, 1..3usize, 1..4usize, 1..5usize),
        (1..6usize, 1..6usize, proptest::option::of(1..6usize)),
        (any::<bool>(), any::<bool>(), proptest::option::of(1..4usize)),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<u64>()),
    )
        .prop_map(
            |(
                (b, t, s, nkv, r, h),
                (dq, dv, dk),
                (use_bias, use_gate, window),
                (causal, bottom_right, keras_default, masks, seed),
            )| Case {
                b,
                t,
                s,
                nkv,
                r,
                h,
                dq,
                dv,
                dk,
                use_bias,
                use_gate,
                window,
                causal,
                bottom_right,
                keras_default,
                masks,
                seed,
            },
        )
}

fn random_tensor(rng: &mut StdRng, shape: &[usize]) -> HostTensor {
    let n = shape.iter().product();
    HostTensor::new(shape.to_vec(), (0..n).map(|_| rng.random_range(-2.0..2.0)).collect()).unwrap()
}

fn random_mask(rng: &mut StdRng, shape: &[usize]) -> Mask {
    let n = shape.iter().product();
    Mask::new(shape.to_vec(), (0..n).map(|_| rng.random_bool(0.7)).collect()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn rows_are_distributions_and_outputs_finite(c in case()) {
        let mut cfg = GqaConfig::new(c.h, c.nkv * c.r, c.nkv);
        cfg.use_bias = c.use_bias;
        cfg.use_gate = c.use_gate;
        cfg.sliding_window = c.window;
        cfg.bias_initializer = Initializer::RandomNormal { mean: 0.0, stddev: 1.0, seed: None };
        let dims = LayerDims { query_dim: c.dq, key_dim: c.dk.unwrap_or(c.dv), value_dim: c.dv };
        let w = initialize_weights(&cfg, dims, c.seed).unwrap();
        let mut rng = StdRng::seed_from_u64(c.seed);
        let query = random_tensor(&mut rng, &[c.b, c.t, c.dq]);
        let value = random_tensor(&mut rng, &[c.b, c.s, c.dv]);
        let key = c.dk.map(|dk| random_tensor(&mut rng, &[c.b, c.s, dk]));
        let nq = c.nkv * c.r;
        let o = CallOptions {
            attention_mask: c.masks.then(|| random_mask(&mut rng, &[c.b, nq, c.t, c.s])),
            query_mask: c.masks.then(|| random_mask(&mut rng, &[c.b, c.t])),
            value_mask: c.masks.then(|| random_mask(&mut rng, &[c.b, c.s])),
            key_mask: None,
            use_causal_mask: c.causal,
            causal_alignment: if c.bottom_right { CausalAlignment::BottomRight } else { CausalAlignment::TopLeft },
            return_attention_scores: true,
            training: false,
            masked_rows: if c.keras_default { MaskedRows::KerasDefault } else { MaskedRows::Zeros },
            dropout_seed: None,
        };
        let out = forward(&cfg, &w, &query, &value, key.as_ref(), &o).unwrap();
        prop_assert_eq!(out.output.shape(), &[c.b, c.t, c.dq][..]);
        prop_assert!(out.output.data().iter().all(|v| v.is_finite()));

        let p = Problem::new(&cfg, query.shape(), value.shape(), key.as_ref().map(HostTensor::shape), &o).unwrap();
        let visible = visibility(&p, &o).unwrap();
        let scores = out.scores.unwrap();
        for (row_i, row) in scores.data().chunks(c.s).enumerate() {
            let vis = &visible[row_i * c.s..][..c.s];
            let fully_masked = vis.iter().all(|v| !v);
            let sum: f64 = row.iter().map(|&x| f64::from(x)).sum();
            if fully_masked && !c.keras_default {
                prop_assert!(row.iter().all(|&x| x == 0.0));
            } else {
                prop_assert!((sum - 1.0).abs() < 1e-5, "row {} sums to {}", row_i, sum);
            }
            if !fully_masked {
                for (&x, &v) in row.iter().zip(vis) {
                    prop_assert!(v || x == 0.0);
                    prop_assert!(x >= 0.0);
                }
            }
        }
        // A query row masked for every head gives the output bias (Zeros policy).
        if !c.keras_default {
            for b in 0..c.b {
                for t in 0..c.t {
                    let all_masked = (0..nq).all(|u| {
                        visible[((b * nq + u) * c.t + t) * c.s..][..c.s].iter().all(|v| !v)
                    });
                    if all_masked {
                        let row = &out.output.data()[(b * c.t + t) * c.dq..][..c.dq];
                        match &w.output.bias {
                            Some(bias) => prop_assert_eq!(row, bias.data()),
                            None => prop_assert!(row.iter().all(|&y| y == 0.0)),
                        }
                    }
                }
            }
        }
        // Deterministic.
        prop_assert_eq!(forward(&cfg, &w, &query, &value, key.as_ref(), &o).unwrap().output, out.output);
    }
}
