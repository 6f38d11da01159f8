use super::*;
use gqa_core::{CausalAlignment, Dense, Initializer, Mask, MaskedRows, dropout};

use crate::init::initialize_weights;

fn tensor(shape: &[usize], data: &[f32]) -> HostTensor {
    HostTensor::new(shape.to_vec(), data.to_vec()).unwrap()
}

fn dense_w(kernel: HostTensor, bias: Option<&[f32]>, bias_shape: &[usize]) -> DenseWeights {
    DenseWeights { kernel, bias: bias.map(|b| tensor(bias_shape, b)) }
}

/// H = 1, Nq = 2, Nkv = 1, Dq = 2, Dv = Dk = 1, identity-like weights: Q[t, u] = query[t, u],
/// K[s] = key[s], V[s] = value[s], y[t, u] = O[t, u] + output bias.
fn tiny(output_bias: Option<[f32; 2]>) -> (GqaConfig, Weights) {
    let mut cfg = GqaConfig::new(1, 2, 1);
    cfg.use_bias = output_bias.is_some();
    let zero = |n: usize| cfg.use_bias.then(|| vec![0.0; n]);
    let w = Weights {
        query: dense_w(tensor(&[2, 2, 1], &[1.0, 0.0, 0.0, 1.0]), zero(2).as_deref(), &[2, 1]),
        key: dense_w(tensor(&[1, 1, 1], &[1.0]), zero(1).as_deref(), &[1, 1]),
        gate: None,
        value: dense_w(tensor(&[1, 1, 1], &[1.0]), zero(1).as_deref(), &[1, 1]),
        output: dense_w(tensor(&[2, 1, 2], &[1.0, 0.0, 0.0, 1.0]), output_bias.as_ref().map(|b| &b[..]), &[2]),
    };
    (cfg, w)
}

fn scores_opts() -> CallOptions {
    CallOptions { return_attention_scores: true, ..Default::default() }
}

fn assert_close(got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((f64::from(*g) - w).abs() < 1e-6, "{got:?} vs {want:?}");
    }
}

#[test]
fn hand_computed_two_heads_one_kv_head() {
    let (cfg, w) = tiny(None);
    let query = tensor(&[1, 1, 2], &[0.0, 3.0f32.ln()]);
    let value = tensor(&[1, 2, 1], &[0.0, 1.0]);
    let out = forward(&cfg, &w, &query, &value, None, &scores_opts()).unwrap();
    // Head 0: logits (0, 0) -> (1/2, 1/2); head 1: logits (0, ln 3) -> (1/4, 3/4).
    assert_close(out.output.data(), &[0.5, 0.75]);
    assert_eq!(out.scores.as_ref().unwrap().shape(), [1, 2, 1, 2]);
    assert_close(out.scores.unwrap().data(), &[0.5, 0.5, 0.25, 0.75]);

    // A separate key: K = (0, 2), so head 1's logits are (0, 2 ln 3) -> (1/10, 9/10).
    let key = tensor(&[1, 2, 1], &[0.0, 2.0]);
    let (cfg, w) = tiny(Some([10.0, 20.0]));
    let out = forward(&cfg, &w, &query, &value, Some(&key), &CallOptions::default()).unwrap();
    assert_close(out.output.data(), &[10.5, 20.9]);
    assert!(out.scores.is_none());
}

#[test]
fn scale_multiplies_the_query() {
    // H = 4, one head: Q = query, K[s] = key[s] * (1,1,1,1), V[s] = (value[s], 0, 0, 0).
    let mut cfg = GqaConfig::new(4, 1, 1);
    cfg.use_bias = false;
    let eye4: Vec<f32> = (0..16).map(|i| if i % 5 == 0 { 1.0 } else { 0.0 }).collect();
    let w = Weights {
        query: dense_w(tensor(&[4, 1, 4], &eye4), None, &[]),
        key: dense_w(tensor(&[1, 1, 4], &[1.0; 4]), None, &[]),
        gate: None,
        value: dense_w(tensor(&[1, 1, 4], &[1.0, 0.0, 0.0, 0.0]), None, &[]),
        output: dense_w(tensor(&[1, 4, 4], &eye4), None, &[]),
    };
    // Logits: sum_h (a / 2) * v = 2 a v; a = ln 3 / 2 gives (0, ln 3) for v = (0, 1).
    let a = 3.0f32.ln() / 2.0;
    let out = forward(
        &cfg,
        &w,
        &tensor(&[1, 1, 4], &[a; 4]),
        &tensor(&[1, 2, 1], &[0.0, 1.0]),
        None,
        &CallOptions::default(),
    )
    .unwrap();
    assert_close(out.output.data(), &[0.75, 0.0, 0.0, 0.0]);
}

#[test]
fn gate_is_a_sigmoid_of_the_raw_query() {
    let (mut cfg, mut w) = tiny(Some([1.0, 2.0]));
    cfg.use_gate = true;
    w.gate = Some(dense_w(tensor(&[2, 2, 1], &[0.0; 4]), Some(&[0.0, 3.0f32.ln()]), &[2, 1]));
    let query = tensor(&[1, 1, 2], &[0.0, 3.0f32.ln()]);
    let value = tensor(&[1, 2, 1], &[0.0, 1.0]);
    let out = forward(&cfg, &w, &query, &value, None, &CallOptions::default()).unwrap();
    // Gates sigmoid(0) = 1/2 and sigmoid(ln 3) = 3/4.
    assert_close(out.output.data(), &[1.0 + 0.5 * 0.5, 2.0 + 0.75 * 0.75]);
}

#[test]
fn fully_masked_rows_zeros_or_keras_default() {
    let (cfg, w) = tiny(Some([10.0, 20.0]));
    let query = tensor(&[1, 2, 2], &[0.0, 3.0f32.ln(), 1.0, 2.0]);
    let value = tensor(&[1, 2, 1], &[0.0, 1.0]);
    let mut o = CallOptions {
        attention_mask: Some(Mask::new([2, 2], vec![true, true, false, false]).unwrap()),
        ..scores_opts()
    };
    let out = forward(&cfg, &w, &query, &value, None, &o).unwrap();
    assert_close(out.output.data(), &[10.5, 20.75, 10.0, 20.0]);
    assert_eq!(&out.output.data()[2..], &[10.0, 20.0]);
    let scores = out.scores.unwrap();
    assert_eq!(&scores.data()[2..4], &[0.0, 0.0]);
    assert_eq!(&scores.data()[6..8], &[0.0, 0.0]);

    o.masked_rows = MaskedRows::KerasDefault;
    let out = forward(&cfg, &w, &query, &value, None, &o).unwrap();
    // The masked row averages V uniformly: (0 + 1) / 2.
    assert_close(out.output.data(), &[10.5, 20.75, 10.5, 20.5]);
    assert_close(&out.scores.unwrap().data()[2..4], &[0.5, 0.5]);
}

#[test]
fn causal_alignments_in_the_scores() {
    let (cfg, w) = tiny(None);
    let query = tensor(&[1, 1, 2], &[0.3, -0.2]);
    let value = tensor(&[1, 3, 1], &[4.0, 5.0, 6.0]);
    let mut o = CallOptions { use_causal_mask: true, ..scores_opts() };
    // Keras: top-left, so with T = 1 the query sees key 0 only.
    let out = forward(&cfg, &w, &query, &value, None, &o).unwrap();
    assert_eq!(out.scores.unwrap().data(), &[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    assert_close(out.output.data(), &[4.0, 4.0]);
    // Bottom-right: the last query sees every key.
    o.causal_alignment = CausalAlignment::BottomRight;
    let out = forward(&cfg, &w, &query, &value, None, &o).unwrap();
    let unmasked = forward(&cfg, &w, &query, &value, None, &scores_opts()).unwrap();
    assert_eq!(out, unmasked);
    assert!(out.scores.unwrap().data().iter().all(|&p| p > 0.0));
}

fn random(shape: &[usize], seed: u64) -> HostTensor {
    let n: usize = shape.iter().product();
    let data = (0..n).map(|i| ((i as f64 * 0.731 + seed as f64 * 1.37).sin() * 1.5) as f32).collect();
    HostTensor::new(shape.to_vec(), data).unwrap()
}

fn random_weights(cfg: &GqaConfig, dims: LayerDims, seed: u64) -> Weights {
    let mut cfg = cfg.clone();
    cfg.kernel_initializer = Initializer::RandomNormal { mean: 0.0, stddev: 0.5, seed: None };
    cfg.bias_initializer = Initializer::RandomNormal { mean: 0.0, stddev: 0.5, seed: None };
    initialize_weights(&cfg, dims, seed).unwrap()
}

/// Copies a kv kernel (D, Nkv, H) or bias (Nkv, H) to Nq heads, head u taking kv head `pick(u)`.
fn spread(t: &HostTensor, nq: usize, pick: impl Fn(usize) -> usize) -> HostTensor {
    let (lead, nkv, h) = match *t.shape() {
        [d, n, h] => (d, n, h),
        [n, h] => (1, n, h),
        _ => unreachable!(),
    };
    let mut data = Vec::new();
    for d in 0..lead {
        for u in 0..nq {
            data.extend_from_slice(&t.data()[(d * nkv + pick(u)) * h..][..h]);
        }
    }
    let mut shape = t.shape().to_vec();
    let heads_axis = shape.len() - 2;
    shape[heads_axis] = nq;
    HostTensor::new(shape, data).unwrap()
}

#[test]
fn grouping_is_keras_repeat_order() {
    let cfg = GqaConfig::new(3, 4, 2);
    let dims = LayerDims { query_dim: 5, key_dim: 4, value_dim: 6 };
    let w = random_weights(&cfg, dims, 3);
    let (query, value, key) = (random(&[2, 3, 5], 1), random(&[2, 4, 6], 2), random(&[2, 4, 4], 3));
    let o = CallOptions { use_causal_mask: true, ..scores_opts() };
    let gqa = forward(&cfg, &w, &query, &value, Some(&key), &o).unwrap();

    // Multi-head attention with K/V weights repeated per query head.
    let mha = |pick: fn(usize) -> usize| {
        let mut w4 = w.clone();
        for d in [&mut w4.key, &mut w4.value] {
            d.kernel = spread(&d.kernel, 4, pick);
            d.bias = d.bias.as_ref().map(|b| spread(b, 4, pick));
        }
        forward(&GqaConfig::new(3, 4, 4), &w4, &query, &value, Some(&key), &o).unwrap()
    };
    let repeat = mha(|u| u / 2);
    for (a, b) in gqa.output.data().iter().zip(repeat.output.data()) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    assert_eq!(gqa.scores, repeat.scores);
    // Tile order (u % 2) is a different function.
    let tile = mha(|u| u % 2);
    let diff = gqa.output.data().iter().zip(tile.output.data()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(diff > 1e-2, "{diff}");
}

#[test]
fn scores_rows_sum_to_one_or_zero() {
    let cfg = GqaConfig::new(4, 4, 2);
    let dims = LayerDims { query_dim: 6, key_dim: 6, value_dim: 6 };
    let w = random_weights(&cfg, dims, 5);
    let (t, s) = (5, 3);
    let o = CallOptions {
        use_causal_mask: true,
        causal_alignment: CausalAlignment::BottomRight, // T > S: the first two rows are fully masked
        ..scores_opts()
    };
    let out = forward(&cfg, &w, &random(&[2, t, 6], 1), &random(&[2, s, 6], 2), None, &o).unwrap();
    let scores = out.scores.unwrap();
    for (i, row) in scores.data().chunks(s).enumerate() {
        let sum: f32 = row.iter().sum();
        let expected = if i % t < 2 { 0.0 } else { 1.0 };
        assert!((sum - expected).abs() < 1e-6, "row {i}: {row:?}");
    }
    let bias = w.output.bias.as_ref().unwrap().data();
    for b in 0..2 {
        for masked_t in 0..2 {
            assert_eq!(&out.output.data()[(b * t + masked_t) * 6..][..6], bias);
        }
    }
    assert!(out.output.data().iter().all(|v| v.is_finite()));
}

/// One head, S = Dv = H = Dq = 8: V is the identity and so are the value and output kernels, the
/// query and key kernels are 0 (uniform probabilities 1/8), so `y[t, s]` is the dropped-out
/// probability of element (0, 0, t, s).
#[test]
fn dropout_end_to_end() {
    let mut cfg = GqaConfig::new(8, 1, 1);
    cfg.use_bias = false;
    cfg.dropout = 0.25;
    cfg.seed = Some(9);
    let eye: Vec<f32> = (0..64).map(|i| if i % 9 == 0 { 1.0 } else { 0.0 }).collect();
    let w = Weights {
        query: dense_w(tensor(&[8, 1, 8], &[0.0; 64]), None, &[]),
        key: dense_w(tensor(&[8, 1, 8], &[0.0; 64]), None, &[]),
        gate: None,
        value: dense_w(tensor(&[8, 1, 8], &eye), None, &[]),
        output: dense_w(tensor(&[1, 8, 8], &eye), None, &[]),
    };
    let t = 32;
    let query = random(&[1, t, 8], 4);
    let value = tensor(&[1, 8, 8], &eye);
    let mut o = CallOptions { training: true, ..scores_opts() };
    let out = forward(&cfg, &w, &query, &value, None, &o).unwrap();
    let scale = 1.0 / (1.0 - f64::from(0.25f32));
    let mut kept = 0;
    for (i, &y) in out.output.data().iter().enumerate() {
        let (tt, s) = (i / 8, i % 8);
        let k = dropout::keep(9, 0.25, 0, 0, tt as u32, s as u32);
        assert_eq!(y, if k { (0.125 * scale) as f32 } else { 0.0 }, "t {tt} s {s}");
        kept += usize::from(k);
    }
    // 256 Bernoulli(0.75) draws: sd ~ 6.9.
    assert!((kept as f64 - 192.0).abs() < 35.0, "{kept}");
    // Scores are before dropout.
    assert!(out.scores.as_ref().unwrap().data().iter().all(|&p| p == 0.125));
    // Same seed, same output; the call's seed overrides the config's; no dropout unless training.
    assert_eq!(forward(&cfg, &w, &query, &value, None, &o).unwrap(), out);
    o.dropout_seed = Some(10);
    let other = forward(&cfg, &w, &query, &value, None, &o).unwrap();
    assert_ne!(other.output, out.output);
    assert_eq!(other.scores, out.scores);
    o.training = false;
    let eval = forward(&cfg, &w, &query, &value, None, &o).unwrap();
    assert!(eval.output.data().iter().all(|&y| y == 0.125));
}

#[test]
fn bad_weights_and_inputs_are_errors() {
    let (cfg, w) = tiny(Some([0.0, 0.0]));
    let query = tensor(&[1, 1, 2], &[0.0, 1.0]);
    let value = tensor(&[1, 2, 1], &[0.0, 1.0]);
    let err_of = |w: &Weights| forward(&cfg, w, &query, &value, None, &CallOptions::default()).unwrap_err();

    let mut bad = w.clone();
    bad.query.kernel = tensor(&[2, 1, 2], &[1.0; 4]);
    assert!(matches!(err_of(&bad), GqaError::Weight { ref path, .. } if path == "query/kernel"));
    let mut bad = w.clone();
    bad.output.bias = None;
    assert!(matches!(err_of(&bad), GqaError::Weight { ref path, .. } if path == "attention_output/bias"));
    let mut bad = w.clone();
    bad.gate = Some(w.query.clone());
    assert!(matches!(err_of(&bad), GqaError::Weight { .. }));
    // Weights built for another key dim.
    let key = tensor(&[1, 2, 3], &[0.0; 6]);
    let err = forward(&cfg, &w, &query, &value, Some(&key), &CallOptions::default()).unwrap_err();
    assert!(matches!(err, GqaError::Weight { ref path, .. } if path == "key/kernel"), "{err}");
    // Inputs.
    let err = forward(&cfg, &w, &tensor(&[2, 2], &[0.0; 4]), &value, None, &CallOptions::default());
    assert!(matches!(err, Err(GqaError::Rank { .. })));
    let o = CallOptions { value_mask: Some(Mask::filled([1, 3], true)), ..Default::default() };
    let err = forward(&cfg, &w, &query, &value, None, &o);
    assert!(matches!(err, Err(GqaError::MaskBroadcast { .. })));
}

#[test]
fn nan_propagates_through_masked_keys() {
    let (cfg, w) = tiny(None);
    let query = tensor(&[1, 1, 2], &[0.0, 1.0]);
    let value = tensor(&[1, 2, 1], &[1.0, f32::NAN]);
    let o = CallOptions { use_causal_mask: true, ..scores_opts() };
    let out = forward(&cfg, &w, &query, &value, None, &o).unwrap();
    // Key 1 is masked: its probability is 0, but 0 * NaN is NaN, as in Keras' einsum.
    assert_eq!(out.scores.unwrap().data(), &[1.0, 0.0, 1.0, 0.0]);
    assert!(out.output.data().iter().all(|v| v.is_nan()));
}

#[test]
fn a_mid_sized_problem_runs() {
    // The size the GPU tests use most; also checks the layout with every option on.
    let mut cfg = GqaConfig::new(32, 8, 2);
    cfg.use_gate = true;
    cfg.sliding_window = Some(16);
    let dims = LayerDims { query_dim: 64, key_dim: 64, value_dim: 64 };
    let w = random_weights(&cfg, dims, 8);
    let o = CallOptions { use_causal_mask: true, ..scores_opts() };
    let out = forward(&cfg, &w, &random(&[2, 64, 64], 1), &random(&[2, 64, 64], 2), None, &o).unwrap();
    assert_eq!(out.output.shape(), [2, 64, 64]);
    assert!(out.output.data().iter().all(|v| v.is_finite()));
    let gate_slot = Dense::Gate.kernel_shape(&cfg, dims);
    assert_eq!(w.gate.unwrap().kernel.shape(), gate_slot);
}
