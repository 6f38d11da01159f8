//! Rotary position embedding (RoPE) as KerasHub's `RotaryEmbedding` computes it: rotate-half
//! pairs `(x[i], x[i + R/2])` of the first R features of each head by the angle
//! `position · inv[i]`, with the inverse frequencies of one of four schedules.
//!
//! The angle is what KerasHub's float32 tensors hold: each inverse frequency rounded to f32, and
//! the product `position · inv[i]` rounded to f32 (`RotaryEmbedding._compute_cos_sin_embedding`).
//! At long positions that rounding is most of the angle's error, so every implementation (the
//! oracle, the GPU's cos/sin tables) takes its angles from [`Rope::angle`] and only the cosine,
//! sine and rotation are computed in higher precision.
//!
//! ```
//! use gqa_core::extensions::{Rope, RopeFrequencies, RopeLayout};
//!
//! // Llama 2: H = 8, wavelength 10000.
//! let rope = Rope::new(8, RopeFrequencies::Plain { wavelength: 10_000.0 }, RopeLayout::RotateHalf)?;
//! assert_eq!(rope.inverse_frequencies(), [1.0, 0.1, 0.01, 0.001]);
//! let mut x = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
//! rope.rotate(&mut x, 1);
//! assert!((x[0] - 1f64.cos()).abs() < 1e-7 && (x[4] - 1f64.sin()).abs() < 1e-7);
//! # Ok::<(), gqa_core::GqaError>(())
//! ```

use crate::error::GqaError;

/// How the inverse frequencies `inv[i]`, `i < R/2`, are derived (R the rotated features).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeFrequencies {
    /// `wavelength^(-2i/R)` (Llama 2, Gemma 1/2).
    Plain {
        /// The maximum wavelength (KerasHub's `max_wavelength`).
        wavelength: f64,
    },
    /// `wavelength^(-2i/R) / factor`: linear position scaling (Mistral, Qwen3, Gemma 3).
    Linear {
        /// The maximum wavelength.
        wavelength: f64,
        /// The scaling factor (1 leaves the frequencies unchanged).
        factor: f64,
    },
    /// Llama 3.1's frequency adjustment of the plain schedule: with `wl = 2π / inv`, frequencies
    /// with `wl > L / low` are divided by `factor`, those with `L / high <= wl <= L / low` blend
    /// `(1 - s) · inv / factor + s · inv`, `s = (L / wl - low) / (high - low)`.
    Llama3 {
        /// The maximum wavelength.
        wavelength: f64,
        /// `rope_frequency_adjustment_factor`.
        factor: f64,
        /// `rope_low_freq_factor`.
        low_freq_factor: f64,
        /// `rope_high_freq_factor`.
        high_freq_factor: f64,
        /// `rope_pretraining_sequence_length`, L.
        pretraining_length: f64,
    },
    /// YaRN (GPT-OSS): a ramp between the extrapolated `base^(-2i/R)` and the interpolated
    /// `base^(-2i/R) / factor` frequencies over the correction range of `beta_fast`/`beta_slow`
    /// rotations in `original_length` positions; cos and sin are scaled by `0.1 · ln(factor) + 1`.
    Yarn {
        /// The base (maximum wavelength).
        wavelength: f64,
        /// The scaling factor s.
        factor: f64,
        /// Rotations of the fast end of the range (KerasHub's default 32).
        beta_fast: f64,
        /// Rotations of the slow end (default 1).
        beta_slow: f64,
        /// `original_max_position_embeddings` (default 4096).
        original_length: f64,
        /// Round the correction range to whole dimensions (GPT-OSS: false).
        truncate: bool,
    },
}

/// Where the two halves of each rotated pair sit in the stored head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeLayout {
    /// Pair `i` is `(x[i], x[i + R/2])` and stays there (NeoX / rotate-half).
    RotateHalf,
    /// Rotate-half, then the halves are interleaved: `out[2i] = y[i]`, `out[2i + 1] = y[i + H/2]`
    /// (Gemma 1/2). Scores are unchanged; the cached keys' layout differs.
    Interleaved,
}

/// A rotary embedding of heads of `head_dim` features: its schedule, its layout and how many
/// features it rotates.
#[derive(Debug, Clone, PartialEq)]
pub struct Rope {
    /// H, the features of a head.
    pub head_dim: usize,
    /// R, the leading features rotated (even; GPT-OSS rotates `2⌊H/2⌋`, the others all H).
    pub rotary_dim: usize,
    /// The frequency schedule.
    pub frequencies: RopeFrequencies,
    /// The stored layout.
    pub layout: RopeLayout,
    inverse: Vec<f32>,
}

impl Rope {
    /// A rope over all `head_dim` features (which must be even: KerasHub refuses odd ones).
    pub fn new(head_dim: usize, frequencies: RopeFrequencies, layout: RopeLayout) -> Result<Self, GqaError> {
        if !head_dim.is_multiple_of(2) {
            return Err(GqaError::InvalidConfigValue {
                what: "head_dim".into(),
                reason: format!("rotary embedding needs an even number of features, got {head_dim}"),
            });
        }
        Self::partial(head_dim, head_dim, frequencies, layout)
    }

    /// A rope over the first `rotary_dim` (even, <= H) of `head_dim` features; the rest pass
    /// through unchanged.
    pub fn partial(
        head_dim: usize,
        rotary_dim: usize,
        frequencies: RopeFrequencies,
        layout: RopeLayout,
    ) -> Result<Self, GqaError> {
        let bad = |reason: String| GqaError::InvalidConfigValue { what: "rotary embedding".into(), reason };
        if rotary_dim == 0 || !rotary_dim.is_multiple_of(2) || rotary_dim > head_dim {
            return Err(bad(format!("rotated features {rotary_dim} must be even, > 0 and <= head_dim {head_dim}")));
        }
        if layout == RopeLayout::Interleaved && rotary_dim != head_dim {
            return Err(bad("the interleaved layout rotates every feature".into()));
        }
        check_frequencies(&frequencies).map_err(bad)?;
        let inverse = inverse_frequencies(&frequencies, rotary_dim);
        Ok(Self { head_dim, rotary_dim, frequencies, layout, inverse })
    }

    /// The R/2 inverse frequencies, as the f32 values KerasHub's tensors hold.
    pub fn inverse_frequencies(&self) -> &[f32] {
        &self.inverse
    }

    /// The factor cos and sin are multiplied by: `0.1 · ln(s) + 1` for YaRN (computed in f32 as
    /// KerasHub does), else 1.
    pub fn magnitude(&self) -> f32 {
        match self.frequencies {
            RopeFrequencies::Yarn { factor, .. } => 0.1f32 * (factor as f32).ln() + 1.0,
            _ => 1.0,
        }
    }

    /// The angle of pair `i` at `position`: `f32(position) · inv[i]`, rounded to f32.
    pub fn angle(&self, position: usize, i: usize) -> f32 {
        position as f32 * self.inverse[i]
    }

    /// `(magnitude · cos, magnitude · sin)` of every pair's angle at `position`, in f64.
    pub fn cos_sin(&self, position: usize) -> Vec<(f64, f64)> {
        let m = f64::from(self.magnitude());
        (0..self.rotary_dim / 2)
            .map(|i| {
                let a = f64::from(self.angle(position, i));
                (m * a.cos(), m * a.sin())
            })
            .collect()
    }

    /// Rotates one head (`head_dim` values, as projected) for `position` in place, in f64, and
    /// stores it in the rope's layout.
    pub fn rotate(&self, head: &mut [f64], position: usize) {
        let half = self.rotary_dim / 2;
        let rotated: Vec<f64> = {
            let cs = self.cos_sin(position);
            let mut y = head[..self.rotary_dim].to_vec();
            for (i, &(c, s)) in cs.iter().enumerate() {
                let (x1, x2) = (head[i], head[i + half]);
                y[i] = x1 * c - x2 * s;
                y[i + half] = x2 * c + x1 * s;
            }
            y
        };
        match self.layout {
            RopeLayout::RotateHalf => head[..self.rotary_dim].copy_from_slice(&rotated),
            RopeLayout::Interleaved => {
                for i in 0..half {
                    head[2 * i] = rotated[i];
                    head[2 * i + 1] = rotated[i + half];
                }
            }
        }
    }
}

fn check_frequencies(f: &RopeFrequencies) -> Result<(), String> {
    let positive = |name: &str, v: f64| {
        if v.is_finite() && v > 0.0 { Ok(()) } else { Err(format!("{name} must be finite and > 0, got {v}")) }
    };
    match *f {
        RopeFrequencies::Plain { wavelength } => positive("wavelength", wavelength),
        RopeFrequencies::Linear { wavelength, factor } => {
            positive("wavelength", wavelength)?;
            positive("scaling factor", factor)
        }
        RopeFrequencies::Llama3 { wavelength, factor, low_freq_factor, high_freq_factor, pretraining_length } => {
            positive("wavelength", wavelength)?;
            positive("frequency adjustment factor", factor)?;
            positive("low frequency factor", low_freq_factor)?;
            positive("high frequency factor", high_freq_factor)?;
            positive("pretraining sequence length", pretraining_length)?;
            if high_freq_factor == low_freq_factor {
                return Err("high and low frequency factors must differ".into());
            }
            Ok(())
        }
        RopeFrequencies::Yarn { wavelength, factor, beta_fast, beta_slow, original_length, .. } => {
            positive("wavelength", wavelength)?;
            positive("scaling factor", factor)?;
            positive("beta_fast", beta_fast)?;
            positive("beta_slow", beta_slow)?;
            positive("original max positions", original_length)
        }
    }
}

/// The inverse frequencies of `rotary_dim` features, each step in f64 (KerasHub's in f32) and the
/// result rounded to f32.
fn inverse_frequencies(f: &RopeFrequencies, rotary_dim: usize) -> Vec<f32> {
    let r = rotary_dim as f64;
    let plain = |wavelength: f64, i: usize| wavelength.powf(-((2 * i) as f64) / r);
    (0..rotary_dim / 2)
        .map(|i| {
            let inv = match *f {
                RopeFrequencies::Plain { wavelength } => plain(wavelength, i),
                RopeFrequencies::Linear { wavelength, factor } => plain(wavelength, i) / factor,
                RopeFrequencies::Llama3 {
                    wavelength,
                    factor,
                    low_freq_factor,
                    high_freq_factor,
                    pretraining_length,
                } => {
                    let inv = plain(wavelength, i);
                    let wl = 2.0 * std::f64::consts::PI / inv;
                    let (low_wl, high_wl) =
                        (pretraining_length / low_freq_factor, pretraining_length / high_freq_factor);
                    if wl > low_wl {
                        inv / factor
                    } else if wl >= high_wl {
                        let s = (pretraining_length / wl - low_freq_factor) / (high_freq_factor - low_freq_factor);
                        (1.0 - s) * inv / factor + s * inv
                    } else {
                        inv
                    }
                }
                RopeFrequencies::Yarn { wavelength, factor, beta_fast, beta_slow, original_length, truncate } => {
                    let correction = |rotations: f64| {
                        r * (original_length / (rotations * 2.0 * std::f64::consts::PI)).ln() / (2.0 * wavelength.ln())
                    };
                    let (mut low, mut high) = (correction(beta_fast), correction(beta_slow));
                    if truncate {
                        (low, high) = (low.floor(), high.ceil());
                    }
                    let (low, high) = (low.max(0.0), high.min(r - 1.0));
                    let ramp = ((i as f64 - low) / (high - low).max(1e-3)).clamp(0.0, 1.0);
                    let extrapolated = plain(wavelength, i);
                    let interpolated = extrapolated / factor;
                    interpolated * ramp + extrapolated * (1.0 - ramp)
                }
            };
            inv as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_or_bad_sizes_are_errors() {
        let plain = RopeFrequencies::Plain { wavelength: 10_000.0 };
        assert!(Rope::new(5, plain, RopeLayout::RotateHalf).is_err());
        assert!(Rope::partial(5, 4, plain, RopeLayout::RotateHalf).is_ok());
        assert!(Rope::partial(5, 4, plain, RopeLayout::Interleaved).is_err());
        assert!(Rope::partial(4, 6, plain, RopeLayout::RotateHalf).is_err());
        let zero = RopeFrequencies::Linear { wavelength: 10_000.0, factor: 0.0 };
        assert!(Rope::new(4, zero, RopeLayout::RotateHalf).is_err());
    }

    #[test]
    fn llama3_regimes() {
        // wl = 2π/inv: 6.28, 62.8, 628, 6283 for H = 8, wavelength 10^4; L = 1000, low 1, high 4
        // give low_wl 1000, high_wl 250: pairs 0, 1 keep, 2 blends, 3 divides.
        let f = RopeFrequencies::Llama3 {
            wavelength: 10_000.0,
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            pretraining_length: 1000.0,
        };
        let inv = Rope::new(8, f, RopeLayout::RotateHalf).unwrap().inverse;
        assert_eq!(inv[0], 1.0);
        assert_eq!(inv[1], 0.1);
        let wl = 2.0 * std::f64::consts::PI / 0.01;
        let s = (1000.0 / wl - 1.0) / 3.0;
        assert_eq!(inv[2], ((1.0 - s) * 0.01 / 8.0 + s * 0.01) as f32);
        assert_eq!(inv[3], (0.001f64 / 8.0) as f32);
    }

    #[test]
    fn yarn_ramp_and_magnitude() {
        let f = RopeFrequencies::Yarn {
            wavelength: 150_000.0,
            factor: 32.0,
            beta_fast: 32.0,
            beta_slow: 1.0,
            original_length: 4096.0,
            truncate: false,
        };
        let rope = Rope::partial(65, 64, f, RopeLayout::RotateHalf).unwrap();
        // The first pair is extrapolated (ramp 0), the last interpolated (ramp 1).
        assert_eq!(rope.inverse[0], 1.0);
        let last = 150_000f64.powf(-62.0 / 64.0);
        assert_eq!(rope.inverse[31], (last / 32.0) as f32);
        assert_eq!(rope.magnitude(), 0.1f32 * 32f32.ln() + 1.0);
        // The unrotated last feature passes through.
        let mut x = vec![0.5; 65];
        rope.rotate(&mut x, 7);
        assert_eq!(x[64], 0.5);
    }

    #[test]
    fn interleaved_layout_moves_halves() {
        let plain = RopeFrequencies::Plain { wavelength: 10_000.0 };
        let half = Rope::new(4, plain, RopeLayout::RotateHalf).unwrap();
        let inter = Rope::new(4, plain, RopeLayout::Interleaved).unwrap();
        let (mut a, mut b) = ([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]);
        half.rotate(&mut a, 3);
        inter.rotate(&mut b, 3);
        assert_eq!(b, [a[0], a[2], a[1], a[3]]);
    }

    #[test]
    fn angles_are_rounded_like_f32_tensors() {
        let plain = RopeFrequencies::Plain { wavelength: 10_000.0 };
        let rope = Rope::new(128, plain, RopeLayout::RotateHalf).unwrap();
        let (p, i) = (1_000_003, 5);
        assert_eq!(rope.angle(p, i), 1_000_003f32 * rope.inverse[i]);
        assert_ne!(f64::from(rope.angle(p, i)), 1_000_003.0 * f64::from(rope.inverse[i]));
    }
}
