//! Weight initialisation with Keras' initializers and fans.
//!
//! The sampling lives in [`gqa_core::sampling`] (so that [`Weights::random`] needs no oracle); this
//! module keeps the oracle's names for it. The numbers cannot equal Keras' own (its generators
//! differ); the distributions, limits and fans do, and a given seed always gives the same weights
//! (for a given `rand` version).

use gqa_core::{GqaConfig, GqaError, LayerDims, Weights};

pub use gqa_core::sampling::{TRUNCATED_STDDEV_CORRECTION, keras_fans, sample};

/// Creates every weight of the layer in Keras' layout and order: kernels from
/// `config.kernel_initializer`, biases (only with `use_bias`) from `config.bias_initializer`, the gate
/// only with `use_gate`. The same as [`Weights::random`].
///
/// Kernel fans are [`gqa_core::Dense::kernel_fans`] (query/key/value/gate: fan_in = D, fan_out =
/// N*H; output: fan_in = Nq*H, fan_out = Dq); bias fans are [`keras_fans`] of the bias shape. Errors
/// on an invalid config or a zero dim.
pub fn initialize_weights(config: &GqaConfig, dims: LayerDims, seed: u64) -> Result<Weights, GqaError> {
    Weights::random(config, dims, seed)
}

#[cfg(test)]
mod tests;
