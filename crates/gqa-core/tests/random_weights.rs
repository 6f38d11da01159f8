//! `Weights::random`: every weight drawn from the config's Keras initializers, reproducibly.

use gqa_core::{Dense, GqaConfig, GqaError, HostTensor, Initializer, LayerDims, Weights};

fn dims() -> LayerDims {
    LayerDims { query_dim: 48, key_dim: 20, value_dim: 36 }
}

/// (mean, variance) in f64.
fn moments(x: &[f32]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    (mean, x.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n)
}

fn max_abs(t: &HostTensor) -> f32 {
    t.data().iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

#[test]
fn deterministic_per_seed_and_valid() {
    let config = GqaConfig::new(8, 4, 2).with_gate(true);
    let a = Weights::random(&config, dims(), 3).unwrap();
    a.validate(&config, dims()).unwrap();
    assert_eq!(a.dims(), dims());
    assert_eq!(a, Weights::random(&config, dims(), 3).unwrap());
    let b = Weights::random(&config, dims(), 4).unwrap();
    for which in Dense::ALL {
        assert_ne!(a.dense(which).unwrap().kernel, b.dense(which).unwrap().kernel, "{which:?}");
    }
    // The gate's presence leaves the other weights as they are.
    let no_gate = Weights::random(&config.clone().with_gate(false), dims(), 3).unwrap();
    assert!(no_gate.gate.is_none());
    assert_eq!((no_gate.query, no_gate.output), (a.query, a.output));
}

#[test]
fn glorot_uniform_limits_and_zero_biases_by_default() {
    let config = GqaConfig::new(16, 8, 2);
    let w = Weights::random(&config, dims(), 1).unwrap();
    for which in [Dense::Query, Dense::Key, Dense::Value, Dense::Output] {
        let d = w.dense(which).unwrap();
        let (fan_in, fan_out) = which.kernel_fans(&config, dims());
        let limit = (6.0 / (fan_in + fan_out) as f32).sqrt();
        assert!(max_abs(&d.kernel) <= limit && max_abs(&d.kernel) > 0.9 * limit, "{which:?}");
        let (mean, var) = moments(d.kernel.data());
        let want = f64::from(limit).powi(2) / 3.0;
        assert!(mean.abs() < 0.1 * f64::from(limit) && (var / want - 1.0).abs() < 0.15, "{which:?} {mean} {var}");
        assert!(d.bias.as_ref().unwrap().data().iter().all(|&v| v == 0.0), "{which:?}");
    }
}

#[test]
fn every_weight_follows_its_initializer() {
    let config = GqaConfig::new(16, 8, 2)
        .with_kernel_initializer(Initializer::RandomNormal { mean: 2.0, stddev: 0.5, seed: None })
        .with_bias_initializer(Initializer::Constant { value: -0.25 });
    let w = Weights::random(&config, dims(), 9).unwrap();
    for which in [Dense::Query, Dense::Key, Dense::Value, Dense::Output] {
        let d = w.dense(which).unwrap();
        let (mean, var) = moments(d.kernel.data());
        assert!((mean - 2.0).abs() < 0.05 && (var / 0.25 - 1.0).abs() < 0.15, "{which:?} {mean} {var}");
        assert!(d.bias.as_ref().unwrap().data().iter().all(|&v| v == -0.25), "{which:?}");
    }
    // The initializer's own seed changes the draw; no bias without use_bias.
    let seeded =
        config.clone().with_kernel_initializer(Initializer::RandomNormal { mean: 2.0, stddev: 0.5, seed: Some(1) });
    assert_ne!(Weights::random(&seeded, dims(), 9).unwrap().query.kernel, w.query.kernel);
    let unbiased = Weights::random(&config.with_bias(false), dims(), 9).unwrap();
    assert!(unbiased.named().iter().all(|(path, _)| path.ends_with("kernel")));
}

#[test]
fn bad_config_or_dims_are_errors() {
    let err = Weights::random(&GqaConfig::new(8, 4, 3), dims(), 0).unwrap_err();
    assert!(matches!(err, GqaError::HeadsDoNotDivide { .. }), "{err}");
    let zero = LayerDims { value_dim: 0, ..dims() };
    let err = Weights::random(&GqaConfig::new(8, 4, 2), zero, 0).unwrap_err();
    assert_eq!(err, GqaError::ZeroSize { what: "value_dim".into() });
}
