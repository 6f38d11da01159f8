//! Shared by the CPU layer's tests: random layers and inputs, and the comparison with the oracle.
#![allow(dead_code)]

use gqa_core::{CallOptions, Dense, ForwardOutput, GqaConfig, HostTensor, LayerDims, Mask, Weights};
use gqa_cpu::CpuLayer;
use gqa_ref::check::{Tolerance, compare_outputs, compare_tensors};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// A layer with Keras' initializers and random non-zero biases (Keras starts them at zero, which
/// would hide a bias that is never added).
pub fn layer(config: GqaConfig, dims: LayerDims, seed: u64) -> CpuLayer {
    let mut weights = Weights::random(&config, dims, seed).unwrap();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    for which in Dense::ALL {
        if let Some(d) = weights.dense_mut(which)
            && let Some(bias) = d.bias.as_mut()
        {
            bias.data_mut().iter_mut().for_each(|b| *b = rng.random_range(-0.5..0.5));
        }
    }
    CpuLayer::new(config, weights).unwrap()
}

/// A random (B, L, D) tensor in [-1, 1).
pub fn tensor(shape: [usize; 3], rng: &mut StdRng) -> HostTensor {
    HostTensor::new(shape, (0..shape.iter().product()).map(|_| rng.random_range(-1.0..1.0)).collect()).unwrap()
}

/// A random mask, true with probability `p`.
pub fn mask(shape: &[usize], p: f64, rng: &mut StdRng) -> Mask {
    Mask::new(shape.to_vec(), (0..shape.iter().product()).map(|_| rng.random_bool(p)).collect()).unwrap()
}

/// The CPU layer's forward call against the oracle's at f32 tolerances (output and scores).
pub fn check_forward(
    layer: &CpuLayer,
    query: &HostTensor,
    value: &HostTensor,
    key: Option<&HostTensor>,
    options: &CallOptions,
    what: &str,
) -> ForwardOutput {
    let got = layer.forward(query, value, key, options).unwrap_or_else(|e| panic!("{what}: {e}"));
    let want = gqa_ref::forward(layer.config(), layer.weights(), query, value, key, options).unwrap();
    let check = compare_outputs(&got, &want, Tolerance::F32);
    assert!(check.passed(), "{what}: {check}");
    assert_eq!(got.scores.is_some(), options.return_attention_scores, "{what}");
    got
}

/// Two tensors at f32 tolerances.
pub fn check_tensor(got: &HostTensor, want: &HostTensor, what: &str) {
    let check = compare_tensors(got, want, Tolerance::F32);
    assert!(check.passed(), "{what}: {check}");
}
