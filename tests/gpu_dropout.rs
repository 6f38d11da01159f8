//! Dropout on the GPU: the same keep/drop decisions as the oracle for a seed, the kept fraction
//! within statistical bounds, kept values scaled by 1/(1-rate), scores returned before dropout.
//!
//! The layer is wired so its output *is* the dropped-out probability matrix: one head, value input
//! and value kernel the identity (so V = I), output kernel the identity, no bias. Then
//! `y[b, t, s] = Pd[b, 0, t, s]`, which can be compared with the scores `P` element by element.
//! Query (B, T, S) and key (B, S, 8) are random, so the probabilities are too.

mod common;

use common::{F32, adapter_name, adapters, assert_close, random_tensor, rng};
use gqa::core::{CallOptions, DenseWeights, GqaConfig, HostTensor, Weights};

const S: usize = 48;
const T: usize = 40;
const B: usize = 2;

fn identity(shape: &[usize], n: usize) -> HostTensor {
    let mut d = vec![0.0; n * n];
    for i in 0..n {
        d[i * n + i] = 1.0;
    }
    HostTensor::new(shape.to_vec(), d).unwrap()
}

fn probe_layer(rate: f64, seed: u64) -> (GqaConfig, Weights) {
    let mut cfg = GqaConfig::new(S, 1, 1);
    cfg.use_bias = false;
    cfg.dropout = rate;
    cfg.seed = Some(seed);
    let mut r = rng(5);
    let dense = |kernel| DenseWeights { kernel, bias: None };
    let w = Weights {
        query: dense(random_tensor(&[S, 1, S], &mut r)),
        key: dense(random_tensor(&[8, 1, S], &mut r)),
        gate: None,
        value: dense(identity(&[S, 1, S], S)),
        output: dense(identity(&[1, S, S], S)),
    };
    (cfg, w)
}

fn inputs() -> (HostTensor, HostTensor, HostTensor) {
    let mut r = rng(6);
    let query = random_tensor(&[B, T, S], &mut r);
    let key = random_tensor(&[B, S, 8], &mut r);
    let mut v = vec![0.0; B * S * S];
    for b in 0..B {
        for s in 0..S {
            v[(b * S + s) * S + s] = 1.0;
        }
    }
    (query, HostTensor::new([B, S, S], v).unwrap(), key)
}

#[test]
fn gpu_dropout_matches_oracle_and_statistics() {
    let rate = 0.3;
    let (cfg, w) = probe_layer(rate, 42);
    let (query, value, key) = inputs();
    let opts = CallOptions { training: true, return_attention_scores: true, ..Default::default() };
    let want = gqa::reference::forward(&cfg, &w, &query, &value, Some(&key), &opts).unwrap();
    for ctx in adapters() {
        let _gl = common::gl_guard(ctx);
        let name = adapter_name(ctx);
        let mut layer = gqa::gpu::GqaLayer::new(ctx, &cfg, &w).unwrap();
        layer.set_poison_outputs(true);
        let got = layer.forward(&query, &value, Some(&key), &opts).unwrap();
        let scores = got.scores.as_ref().unwrap();
        assert_close(&format!("{name}: dropout output vs oracle"), got.output.data(), want.output.data(), F32);
        assert_close(&format!("{name}: scores vs oracle"), scores.data(), want.scores.as_ref().unwrap().data(), F32);

        // Output = dropped probabilities: each is 0 or P / (1 - rate).
        let scale = 1.0 / (1.0 - rate as f32);
        let (mut kept, mut total) = (0usize, 0usize);
        for (&y, &p) in got.output.data().iter().zip(scores.data()) {
            assert!(p > 0.0, "{name}: every probability is positive in this probe");
            total += 1;
            if y != 0.0 {
                kept += 1;
                assert!((y - p * scale).abs() <= 1e-6 + 1e-5 * (p * scale), "{name}: kept {y} != {p} * {scale}");
            }
        }
        let frac = kept as f64 / total as f64;
        let sd = (rate * (1.0 - rate) / total as f64).sqrt();
        assert!(
            (frac - (1.0 - rate)).abs() < 5.0 * sd,
            "{name}: kept fraction {frac}, expected {} ± {}",
            1.0 - rate,
            5.0 * sd
        );
        eprintln!("[{name}] dropout rate {rate}: kept {kept}/{total} = {frac:.4}");
    }
}

#[test]
fn seeds_change_the_mask_and_inference_has_no_dropout() {
    let (cfg, w) = probe_layer(0.5, 1);
    let (query, value, key) = inputs();
    for ctx in adapters() {
        let _gl = common::gl_guard(ctx);
        let name = adapter_name(ctx);
        let layer = gqa::gpu::GqaLayer::new(ctx, &cfg, &w).unwrap();
        let run = |training: bool, seed: Option<u64>| {
            let opts =
                CallOptions { training, dropout_seed: seed, return_attention_scores: true, ..Default::default() };
            layer.forward(&query, &value, Some(&key), &opts).unwrap()
        };
        let a = run(true, Some(10));
        let b = run(true, Some(10));
        let c = run(true, Some(11));
        assert_eq!(a.output.data(), b.output.data(), "{name}: same seed, same output");
        let zeros = |t: &HostTensor| t.data().iter().map(|v| *v == 0.0).collect::<Vec<_>>();
        assert_ne!(zeros(&a.output), zeros(&c.output), "{name}: another seed drops other elements");
        let inference = run(false, Some(10));
        assert_close(
            &format!("{name}: no dropout in inference"),
            inference.output.data(),
            inference.scores.unwrap().data(),
            F32,
        );
    }
}
