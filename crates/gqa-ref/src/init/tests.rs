use super::*;
use gqa_core::{Distribution, FanMode, HostTensor, Initializer};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// (mean, variance) of the samples, in f64.
fn moments(x: &[f32]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = x.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
    (mean, var)
}

fn vs(scale: f64, mode: FanMode, distribution: Distribution) -> Initializer {
    Initializer::VarianceScaling { scale, mode, distribution, seed: None }
}

const N: usize = 60_000;

#[test]
fn variance_scaling_uniform_limits_and_variance() {
    // fan_in 30, fan_out 90: fan_avg 60.
    for (mode, n) in [(FanMode::FanIn, 30.0), (FanMode::FanOut, 90.0), (FanMode::FanAvg, 60.0)] {
        let x = sample(&vs(2.0, mode, Distribution::Uniform), &[N], (30, 90), &mut rng(1));
        let limit = (3.0f64 * 2.0 / n).sqrt();
        assert!(x.iter().all(|&v| f64::from(v).abs() <= limit), "{mode:?}");
        assert!(x.iter().any(|&v| f64::from(v).abs() > 0.99 * limit), "{mode:?}");
        let (mean, var) = moments(&x);
        assert!(mean.abs() < 0.02 * limit, "{mode:?} {mean}");
        assert!((var / (2.0 / n) - 1.0).abs() < 0.03, "{mode:?} {var}");
    }
}

#[test]
fn truncated_normal_variance_equals_scale_over_n() {
    let x = sample(&vs(1.0, FanMode::FanIn, Distribution::TruncatedNormal), &[N], (50, 7), &mut rng(2));
    let stddev = (1.0f64 / 50.0).sqrt() / TRUNCATED_STDDEV_CORRECTION;
    assert!(x.iter().all(|&v| f64::from(v).abs() <= 2.0 * stddev + 1e-7));
    let (mean, var) = moments(&x);
    assert!(mean.abs() < 0.02 * stddev, "{mean}");
    // The correction makes the truncated sample's variance scale / n.
    assert!((var / (1.0 / 50.0) - 1.0).abs() < 0.03, "{var}");
}

#[test]
fn untruncated_normal_variance() {
    let x = sample(&vs(3.0, FanMode::FanOut, Distribution::UntruncatedNormal), &[N], (1, 12), &mut rng(3));
    let (mean, var) = moments(&x);
    assert!(mean.abs() < 0.02, "{mean}");
    assert!((var / 0.25 - 1.0).abs() < 0.03, "{var}");
    assert!(x.iter().any(|&v| f64::from(v).abs() > 2.0 * 0.5), "not truncated");
}

#[test]
fn named_initializers_map_to_keras_parameters() {
    // fan_in 64, fan_out 128 (a query kernel (64, 8, 16)).
    let fans = (64, 128);
    let uniform_limit = |init: Initializer| {
        let x = sample(&init, &[N], fans, &mut rng(4));
        x.iter().map(|&v| f64::from(v).abs()).fold(0.0, f64::max)
    };
    let near = |got: f64, limit: f64| got <= limit && got > 0.999 * limit;
    assert!(near(uniform_limit(Initializer::GlorotUniform { seed: None }), (6.0f64 / 192.0).sqrt()));
    assert!(near(uniform_limit(Initializer::HeUniform { seed: None }), (6.0f64 / 64.0).sqrt()));
    assert!(near(uniform_limit(Initializer::LecunUniform { seed: None }), (3.0f64 / 64.0).sqrt()));
    for (init, variance) in [
        (Initializer::GlorotNormal { seed: None }, 1.0 / 96.0),
        (Initializer::HeNormal { seed: None }, 2.0 / 64.0),
        (Initializer::LecunNormal { seed: None }, 1.0 / 64.0),
    ] {
        let x = sample(&init, &[N], fans, &mut rng(5));
        let (_, var) = moments(&x);
        assert!((var / variance - 1.0).abs() < 0.03, "{init:?} {var}");
    }
}

#[test]
fn plain_random_initializers() {
    let x = sample(&Initializer::RandomUniform { minval: 1.0, maxval: 3.0, seed: None }, &[N], (1, 1), &mut rng(6));
    assert!(x.iter().all(|&v| (1.0..=3.0).contains(&v)));
    let (mean, var) = moments(&x);
    assert!((mean - 2.0).abs() < 0.015 && (var / (1.0 / 3.0) - 1.0).abs() < 0.03, "{mean} {var}");

    let x = sample(&Initializer::RandomNormal { mean: -1.0, stddev: 0.5, seed: None }, &[N], (1, 1), &mut rng(7));
    let (mean, var) = moments(&x);
    assert!((mean + 1.0).abs() < 0.01 && (var / 0.25 - 1.0).abs() < 0.03, "{mean} {var}");

    let x = sample(&Initializer::TruncatedNormal { mean: 1.0, stddev: 0.5, seed: None }, &[N], (1, 1), &mut rng(8));
    assert!(x.iter().all(|&v| (0.0..=2.0).contains(&v)));
    let (mean, var) = moments(&x);
    let truncated_var = 0.25 * TRUNCATED_STDDEV_CORRECTION.powi(2);
    assert!((mean - 1.0).abs() < 0.01 && (var / truncated_var - 1.0).abs() < 0.03, "{mean} {var}");

    let c = |init: Initializer| sample(&init, &[2, 3], (1, 1), &mut rng(9));
    assert_eq!(c(Initializer::Zeros), [0.0; 6]);
    assert_eq!(c(Initializer::Ones), [1.0; 6]);
    assert_eq!(c(Initializer::Constant { value: 0.25 }), [0.25; 6]);
    assert_eq!(c(Initializer::RandomUniform { minval: 0.5, maxval: 0.5, seed: None }), [0.5; 6]);
}

#[test]
fn keras_compute_fans() {
    assert_eq!(keras_fans(&[]), (1, 1));
    assert_eq!(keras_fans(&[7]), (7, 7));
    assert_eq!(keras_fans(&[3, 5]), (3, 5));
    assert_eq!(keras_fans(&[2, 3, 5]), (6, 10));
    assert_eq!(keras_fans(&[2, 2, 3, 5]), (12, 20));
}

fn dims() -> LayerDims {
    LayerDims { query_dim: 64, key_dim: 24, value_dim: 40 }
}

#[test]
fn layer_weights_follow_the_layout_and_glorot_fans() {
    let mut cfg = GqaConfig::new(16, 8, 2);
    cfg.use_gate = true;
    cfg.bias_initializer = Initializer::Ones;
    let w = initialize_weights(&cfg, dims(), 7).unwrap();
    w.validate(&cfg, dims()).unwrap();
    let max_abs = |t: &HostTensor| t.data().iter().map(|v| v.abs()).fold(0.0f32, f32::max);
    // Query and gate kernels (64, 8, 16): fan_in 64, fan_out 128.
    let l = (6.0f32 / (64.0 + 128.0)).sqrt();
    for k in [&w.query.kernel, &w.gate.as_ref().unwrap().kernel] {
        assert!(max_abs(k) <= l && max_abs(k) > 0.95 * l);
    }
    // Key (24, 2, 16): 24 + 32. Value (40, 2, 16): 40 + 32. Output (8, 16, 64): 128 + 64.
    let l = (6.0f32 / 56.0).sqrt();
    assert!(max_abs(&w.key.kernel) <= l && max_abs(&w.key.kernel) > 0.9 * l);
    let l = (6.0f32 / 72.0).sqrt();
    assert!(max_abs(&w.value.kernel) <= l && max_abs(&w.value.kernel) > 0.9 * l);
    let l = (6.0f32 / 192.0).sqrt();
    assert!(max_abs(&w.output.kernel) <= l && max_abs(&w.output.kernel) > 0.95 * l);
    assert!(w.named().iter().filter(|(p, _)| p.ends_with("bias")).all(|(_, b)| b.data().iter().all(|&v| v == 1.0)));
    assert_eq!(w.named().len(), 10);

    cfg.use_gate = false;
    cfg.use_bias = false;
    let w2 = initialize_weights(&cfg, dims(), 7).unwrap();
    w2.validate(&cfg, dims()).unwrap();
    assert_eq!(w2.named().len(), 4);
    // The gate's presence does not change the other weights.
    assert_eq!(w2.query.kernel, w.query.kernel);
    assert_eq!(w2.output.kernel, w.output.kernel);
}

#[test]
fn seeds_make_weights_reproducible() {
    let cfg = GqaConfig::new(8, 4, 2);
    let a = initialize_weights(&cfg, dims(), 1).unwrap();
    assert_eq!(a, initialize_weights(&cfg, dims(), 1).unwrap());
    let b = initialize_weights(&cfg, dims(), 2).unwrap();
    assert_ne!(a.query.kernel, b.query.kernel);
    // Each weight has its own stream.
    assert_ne!(a.query.kernel.data()[..64], a.key.kernel.data()[..64]);
    // The initializer's own seed is mixed in.
    let mut seeded = cfg.clone();
    seeded.kernel_initializer = Initializer::GlorotUniform { seed: Some(5) };
    let c = initialize_weights(&seeded, dims(), 1).unwrap();
    assert_ne!(a.query.kernel, c.query.kernel);
    assert_eq!(c, initialize_weights(&seeded, dims(), 1).unwrap());
}

#[test]
fn bad_config_or_dims_are_errors() {
    let cfg = GqaConfig::new(8, 4, 3);
    assert!(matches!(initialize_weights(&cfg, dims(), 0), Err(GqaError::HeadsDoNotDivide { .. })));
    let cfg = GqaConfig::new(8, 4, 2);
    let zero = LayerDims { key_dim: 0, ..dims() };
    assert!(matches!(initialize_weights(&cfg, zero, 0), Err(GqaError::ZeroSize { .. })));
}

#[test]
fn initialize_weights_is_weights_random() {
    let cfg = GqaConfig::new(8, 4, 2);
    for seed in [0, 1, 99] {
        assert_eq!(initialize_weights(&cfg, dims(), seed).unwrap(), Weights::random(&cfg, dims(), seed).unwrap());
    }
}
