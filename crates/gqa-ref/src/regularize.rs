//! Keras regularization penalties: on the weights and on the layer's output (activity).

use gqa_core::{GqaConfig, HostTensor, Regularizer, Weights};

use gqa_core::ForwardOutput;

/// The penalty of one tensor's values, summed in f64: `L1 = l1·Σ|w|`, `L2 = l2·Σw²`,
/// `L1L2` = both. As in Keras, `L1L2` skips a factor that is 0 (so it adds nothing even for infinite
/// values), while `L1` and `L2` always multiply.
pub fn penalty(reg: &Regularizer, values: &[f32]) -> f64 {
    let l1_sum = || values.iter().map(|&w| f64::from(w).abs()).sum::<f64>();
    let l2_sum = || values.iter().map(|&w| f64::from(w).powi(2)).sum::<f64>();
    match *reg {
        Regularizer::L1 { l1 } => l1 * l1_sum(),
        Regularizer::L2 { l2 } => l2 * l2_sum(),
        Regularizer::L1L2 { l1, l2 } => {
            let mut total = 0.0;
            if l1 != 0.0 {
                total += l1 * l1_sum();
            }
            if l2 != 0.0 {
                total += l2 * l2_sum();
            }
            total
        }
    }
}

/// The weight penalty Keras adds to the loss: `kernel_regularizer` over every kernel plus
/// `bias_regularizer` over every bias present (0 when neither is set).
pub fn weights_penalty(config: &GqaConfig, weights: &Weights) -> f64 {
    let mut total = 0.0;
    for (path, tensor) in weights.named() {
        let reg = if path.ends_with("/kernel") { &config.kernel_regularizer } else { &config.bias_regularizer };
        if let Some(reg) = reg {
            total += penalty(reg, tensor.data());
        }
    }
    total
}

/// `activity_regularizer` of one output tensor: the plain penalty of its values (0 when unset).
///
/// Keras 3's `Layer.__call__` adds `activity_regularizer(output)` to the layer's losses as is, with
/// **no** division by the batch size (tf.keras 2 divided by it; Keras 3 does not).
pub fn activity_penalty(config: &GqaConfig, output: &HostTensor) -> f64 {
    config.activity_regularizer.as_ref().map_or(0.0, |reg| penalty(reg, output.data()))
}

/// The activity penalty of a whole call, as Keras 3 adds it: `activity_regularizer` applied to every
/// tensor the call returns, so to the output **and** to the attention scores when they were requested
/// (Keras flattens the returned `(output, scores)` tuple).
pub fn call_activity_penalty(config: &GqaConfig, out: &ForwardOutput) -> f64 {
    activity_penalty(config, &out.output) + out.scores.as_ref().map_or(0.0, |s| activity_penalty(config, s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gqa_core::{DenseWeights, LayerDims};

    #[test]
    fn penalties_by_hand() {
        let w = [1.0f32, -2.0, 0.5];
        assert_eq!(penalty(&Regularizer::L1 { l1: 0.1 }, &w), 0.1 * 3.5);
        assert_eq!(penalty(&Regularizer::L2 { l2: 0.01 }, &w), 0.01 * 5.25);
        assert_eq!(penalty(&Regularizer::L1L2 { l1: 0.1, l2: 0.01 }, &w), 0.1 * 3.5 + 0.01 * 5.25);
        assert_eq!(penalty(&Regularizer::L1L2 { l1: 0.0, l2: 0.0 }, &[f32::INFINITY]), 0.0);
        assert_eq!(penalty(&Regularizer::L2 { l2: 1.0 }, &[]), 0.0);
    }

    fn tensor(shape: &[usize], value: f32) -> HostTensor {
        HostTensor::new(shape.to_vec(), vec![value; shape.iter().product()]).unwrap()
    }

    #[test]
    fn kernels_and_biases_separately() {
        let mut cfg = GqaConfig::new(2, 2, 1);
        let dims = LayerDims { query_dim: 3, key_dim: 3, value_dim: 3 };
        let dense = |k: &[usize], b: &[usize]| DenseWeights { kernel: tensor(k, 1.0), bias: Some(tensor(b, -2.0)) };
        let w = Weights {
            query: dense(&[3, 2, 2], &[2, 2]),
            key: dense(&[3, 1, 2], &[1, 2]),
            gate: None,
            value: dense(&[3, 1, 2], &[1, 2]),
            output: dense(&[2, 2, 3], &[3]),
        };
        w.validate(&cfg, dims).unwrap();
        assert_eq!(weights_penalty(&cfg, &w), 0.0);
        // Kernels: 12 + 6 + 6 + 12 = 36 ones; biases: 4 + 2 + 2 + 3 = 11 values of -2.
        cfg.kernel_regularizer = Some(Regularizer::L1 { l1: 0.5 });
        assert_eq!(weights_penalty(&cfg, &w), 18.0);
        cfg.bias_regularizer = Some(Regularizer::L2 { l2: 0.25 });
        assert_eq!(weights_penalty(&cfg, &w), 18.0 + 11.0);
    }

    #[test]
    fn activity_of_output_and_scores() {
        let mut cfg = GqaConfig::new(2, 2, 1);
        let out = ForwardOutput { output: tensor(&[2, 1, 3], 2.0), scores: Some(tensor(&[2, 2, 1, 4], 0.25)) };
        assert_eq!(call_activity_penalty(&cfg, &out), 0.0);
        cfg.activity_regularizer = Some(Regularizer::L2 { l2: 0.5 });
        assert_eq!(activity_penalty(&cfg, &out.output), 0.5 * 6.0 * 4.0);
        assert_eq!(call_activity_penalty(&cfg, &out), 12.0 + 0.5 * 16.0 * 0.0625);
    }
}
