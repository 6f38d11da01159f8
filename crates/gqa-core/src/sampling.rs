//! Seeded weight initialisation with Keras' initializers and fans: [`Weights::random`] and the
//! per-tensor [`sample`] it draws with.
//!
//! The numbers cannot equal Keras' own (its generators differ); the distributions, limits and fans
//! do. Each weight draws from its own `StdRng` seeded from the layer seed, the weight's fixed slot
//! and the initializer's own seed when it has one, so results are reproducible (for a given `rand`
//! version) and adding the gate does not change the other weights.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use crate::config::GqaConfig;
use crate::error::GqaError;
use crate::initializer::{Distribution, FanMode, Initializer};
use crate::tensor::HostTensor;
use crate::weights::{Dense, DenseWeights, LayerDims, Weights};

/// Keras' correction of the standard deviation of a normal truncated at two standard deviations:
/// the standard deviation of a standard normal truncated to (-2, 2).
pub const TRUNCATED_STDDEV_CORRECTION: f64 = 0.879_625_661_034_239_8; // Keras: 0.87962566103423978

/// [`Weights::random`]: every weight of the layer drawn from the config's initializers.
pub(crate) fn random_weights(config: &GqaConfig, dims: LayerDims, seed: u64) -> Result<Weights, GqaError> {
    config.validate()?;
    for (what, v) in [("query_dim", dims.query_dim), ("key_dim", dims.key_dim), ("value_dim", dims.value_dim)] {
        if v == 0 {
            return Err(GqaError::ZeroSize { what: what.into() });
        }
    }
    let make = |which: Dense| -> Result<DenseWeights, GqaError> {
        let slot = 2 * which as u64;
        let shape = which.kernel_shape(config, dims);
        let init = &config.kernel_initializer;
        let mut rng = weight_rng(seed, slot, init);
        let kernel = HostTensor::new(shape.clone(), sample(init, &shape, which.kernel_fans(config, dims), &mut rng))?;
        let bias = if config.use_bias {
            let shape = which.bias_shape(config, dims);
            let init = &config.bias_initializer;
            let mut rng = weight_rng(seed, slot + 1, init);
            Some(HostTensor::new(shape.clone(), sample(init, &shape, keras_fans(&shape), &mut rng))?)
        } else {
            None
        };
        Ok(DenseWeights { kernel, bias })
    };
    // Each dense draws from its own generator (its slot), so the five can be drawn on threads of
    // their own with the same result: a model's width of weights (42M at Dq = Dv = 4096, Nq = 32,
    // Nkv = 8, H = 128) is then drawn in about half the time on two cores.
    let (query, key, gate, value, output) = std::thread::scope(|scope| {
        let make = &make;
        let query = scope.spawn(move || make(Dense::Query));
        let key = scope.spawn(move || make(Dense::Key));
        let gate = config.use_gate.then(|| scope.spawn(move || make(Dense::Gate)));
        let value = scope.spawn(move || make(Dense::Value));
        let output = make(Dense::Output);
        let join = |h: std::thread::ScopedJoinHandle<'_, Result<DenseWeights, GqaError>>| {
            h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        };
        (join(query), join(key), gate.map(join), join(value), output)
    });
    Ok(Weights { query: query?, key: key?, gate: gate.transpose()?, value: value?, output: output? })
}

/// Keras' `compute_fans` of a weight shape: rank 0 `(1, 1)`, rank 1 `(n, n)`, rank 2
/// `(shape[0], shape[1])`, higher ranks `(shape[-2] * rf, shape[-1] * rf)` with `rf` the product of
/// the leading dims.
pub fn keras_fans(shape: &[usize]) -> (usize, usize) {
    match *shape {
        [] => (1, 1),
        [n] => (n, n),
        [a, b] => (a, b),
        [ref lead @ .., a, b] => {
            let rf: usize = lead.iter().product();
            (a * rf, b * rf)
        }
    }
}

/// Draws `shape.iter().product()` values from `init`, with `fans = (fan_in, fan_out)` for the
/// variance-scaling initializers.
///
/// Keras' formulas: variance scaling divides `scale` by `n` = fan_in, fan_out or their mean (at least
/// 1); `uniform` draws U(-l, l) with `l = sqrt(3 * scale / n)`; `truncated_normal` a normal of
/// standard deviation `sqrt(scale / n) / 0.8796...` redrawn outside two standard deviations;
/// `untruncated_normal` a normal of standard deviation `sqrt(scale / n)`. `RandomUniform` is
/// U[minval, maxval), `RandomNormal` N(mean, stddev), `TruncatedNormal` N(mean, stddev) redrawn
/// outside `mean ± 2·stddev`. The parameters are expected valid (`Initializer::validate`); invalid
/// ones give meaningless numbers, never a panic. Sampling is in f64, rounded to f32.
pub fn sample(init: &Initializer, shape: &[usize], fans: (usize, usize), rng: &mut impl Rng) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let law = Law::of(init, fans);
    (0..n).map(|_| law.draw(rng) as f32).collect()
}

/// The distribution an initializer draws from, its parameters resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Law {
    /// Always this value.
    Constant(f64),
    /// U[low, high).
    Uniform { low: f64, high: f64 },
    /// N(mean, stddev).
    Normal { mean: f64, stddev: f64 },
    /// N(mean, stddev) redrawn outside `mean ± 2·stddev`.
    Truncated { mean: f64, stddev: f64 },
}

impl Law {
    fn of(init: &Initializer, (fan_in, fan_out): (usize, usize)) -> Self {
        if let Some((scale, mode, distribution)) = init.variance_scaling() {
            let n = match mode {
                FanMode::FanIn => fan_in as f64,
                FanMode::FanOut => fan_out as f64,
                FanMode::FanAvg => (fan_in + fan_out) as f64 / 2.0,
            };
            let scale = scale / n.max(1.0);
            return match distribution {
                Distribution::Uniform => {
                    let limit = (3.0 * scale).sqrt();
                    Law::Uniform { low: -limit, high: limit }
                }
                Distribution::TruncatedNormal => {
                    Law::Truncated { mean: 0.0, stddev: scale.sqrt() / TRUNCATED_STDDEV_CORRECTION }
                }
                Distribution::UntruncatedNormal => Law::Normal { mean: 0.0, stddev: scale.sqrt() },
            };
        }
        match *init {
            Initializer::RandomUniform { minval, maxval, .. } => Law::Uniform { low: minval, high: maxval },
            Initializer::RandomNormal { mean, stddev, .. } => Law::Normal { mean, stddev },
            Initializer::TruncatedNormal { mean, stddev, .. } => Law::Truncated { mean, stddev },
            Initializer::Ones => Law::Constant(1.0),
            Initializer::Constant { value } => Law::Constant(value),
            // Zeros, and the variance-scaling variants already handled above.
            _ => Law::Constant(0.0),
        }
    }

    fn draw(self, rng: &mut impl Rng) -> f64 {
        match self {
            Law::Constant(v) => v,
            Law::Uniform { low, high } => low + (high - low) * rng.random::<f64>(),
            Law::Normal { mean, stddev } => mean + stddev * rng.sample::<f64, _>(StandardNormal),
            Law::Truncated { mean, stddev } => loop {
                let z: f64 = rng.sample(StandardNormal);
                if z.abs() < 2.0 {
                    break mean + stddev * z;
                }
            },
        }
    }
}

/// The generator of one weight: the layer seed, the weight's slot (2 × its `Dense` index, + 1 for
/// the bias) and the initializer's own seed, mixed with SplitMix64.
fn weight_rng(seed: u64, slot: u64, init: &Initializer) -> StdRng {
    let mut h = splitmix64(seed ^ 0x6a09_e667_f3bc_c908);
    h = splitmix64(h ^ slot);
    if let Some(own) = init.seed() {
        h = splitmix64(h ^ splitmix64(own ^ 0xbb67_ae85_84ca_a73b));
    }
    StdRng::seed_from_u64(h)
}

/// SplitMix64's finaliser: a bijective 64-bit mixer.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
