//! What the attention of modern GQA decoders adds to Keras' `GroupQueryAttention`, as data:
//! rotary position embedding ([`Rope`]), RMS normalization of query and key heads ([`QkNorm`]), the
//! score scale, a logit soft cap, learned per-head sinks and a window over key positions
//! ([`KeyWindow`]). [`AttentionExtensions`] holds one layer's choice of them;
//! [`crate::kerashub`] maps each KerasHub attention class onto it.
//!
//! Positions: the query row `t` of a call that writes its keys at cache slot `index` sits at
//! position `p = index + t` (0-based; uncached calls start at 0). RoPE rotates queries and new
//! keys at `p`; cached keys are stored rotated.
//!
//! The order of the steps (KerasHub's): project (with biases), QK-norm, RoPE, scores
//! `scale · q·k`, soft cap `cap · tanh(s / cap)`, then masking, where the window ANDs with the
//! call's mask; the softmax runs over the visible keys plus, with sinks, one extra logit per
//! query head that only enlarges the denominator.

mod rope;

pub use rope::{Rope, RopeFrequencies, RopeLayout};

use crate::config::GqaConfig;
use crate::error::GqaError;
use crate::tensor::HostTensor;

/// RMS normalization of each query and key head over its H features (not of values):
/// `x / sqrt(mean(x²) + eps) · w`, with `w` the learned `scale` or `1 + scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QkNorm {
    /// Added to the mean square.
    pub epsilon: f64,
    /// How the learned scale applies.
    pub form: NormScale,
}

/// How a learned normalization scale multiplies the normalized values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormScale {
    /// `· scale` (Qwen3).
    Scale,
    /// `· (1 + scale)` (Gemma 3).
    OnePlusScale,
}

impl QkNorm {
    /// Normalizes one head in place with the learned `scale` (H values), in f64.
    pub fn apply(&self, head: &mut [f64], scale: &[f32]) {
        let mean_square = head.iter().map(|x| x * x).sum::<f64>() / head.len() as f64;
        let inv = 1.0 / (mean_square + self.epsilon).sqrt();
        for (x, &w) in head.iter_mut().zip(scale) {
            let w = match self.form {
                NormScale::Scale => f64::from(w),
                NormScale::OnePlusScale => 1.0 + f64::from(w),
            };
            *x = *x * inv * w;
        }
    }
}

/// Which keys a query at position `p` may see, by key slot `j` (a band around the query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyWindow {
    /// `|p - j| <= size - 1` (Gemma 1/2/3, Qwen3: `size` keys back including the query's own).
    Symmetric(usize),
    /// `j >= p - size` (GPT-OSS: `size + 1` keys back including the query's own, nothing ahead).
    Lookback(usize),
    /// `-⌊size/2⌋ <= t - j <= size - ⌊size/2⌋ - 1`, by query row `t` (Gemma 3's bidirectional
    /// window; uncached calls only).
    Centered(usize),
}

impl KeyWindow {
    /// Whether query row `t` at position `p` sees key slot `j`.
    pub fn sees(&self, t: usize, p: usize, j: usize) -> bool {
        let (p, t, j) = (p as i64, t as i64, j as i64);
        match *self {
            KeyWindow::Symmetric(w) => (p - j).abs() < w as i64,
            KeyWindow::Lookback(w) => j >= p - w as i64,
            KeyWindow::Centered(w) => {
                let right = (w / 2) as i64;
                let left = w as i64 - right - 1;
                (-right..=left).contains(&(t - j))
            }
        }
    }

    /// The window as a band around the query's position (Centered: around its row, the same at
    /// position offset 0).
    pub fn band(&self) -> KeyBand {
        match *self {
            KeyWindow::Symmetric(w) => KeyBand { behind: w.saturating_sub(1), ahead: w.saturating_sub(1) },
            KeyWindow::Lookback(w) => KeyBand { behind: w, ahead: usize::MAX },
            KeyWindow::Centered(w) => KeyBand { behind: w - w / 2 - 1, ahead: w / 2 },
        }
    }

    /// The keys a causal decoder's token sees through the window, its own included (what a ring
    /// cache must keep): `size` for a symmetric window, `size + 1` for a lookback one; `None` for
    /// the bidirectional window (by row: no cached form).
    pub fn lookback(&self) -> Option<usize> {
        match *self {
            KeyWindow::Symmetric(w) => Some(w),
            KeyWindow::Lookback(w) => Some(w + 1),
            KeyWindow::Centered(_) => None,
        }
    }

    /// The window's size.
    pub fn size(&self) -> usize {
        match *self {
            KeyWindow::Symmetric(w) | KeyWindow::Lookback(w) | KeyWindow::Centered(w) => w,
        }
    }
}

/// Key slots `j` visible from a query at position `p`: `p - j <= behind` and `j - p <= ahead`
/// (`usize::MAX`: unbounded). Keras' `sliding_window` W is the band (W - 1, W - 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyBand {
    /// Keys at most this far before the query.
    pub behind: usize,
    /// Keys at most this far after the query.
    pub ahead: usize,
}

impl KeyBand {
    /// Keras' `sliding_window` of `size`: `|p - j| < size`.
    pub fn keras(size: usize) -> Self {
        Self { behind: size.saturating_sub(1), ahead: size.saturating_sub(1) }
    }

    /// The keys both bands let through.
    pub fn intersect(self, other: Self) -> Self {
        Self { behind: self.behind.min(other.behind), ahead: self.ahead.min(other.ahead) }
    }

    /// Whether a query at `position` sees key `j`.
    pub fn sees(&self, position: i64, j: i64) -> bool {
        let d = position - j;
        (d >= 0 && d.unsigned_abs() <= self.behind as u64) || (d < 0 && d.unsigned_abs() <= self.ahead as u64)
    }
}

/// The scale of the scores `scale · q·k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScoreScale {
    /// `1 / sqrt(H)` (Keras, and every KerasHub class by default).
    #[default]
    HeadDim,
    /// `1 / sqrt(n)` for a given n (Gemma's `query_head_dim_normalize=False`: n = hidden // Nq).
    InverseSqrtOf(usize),
}

impl ScoreScale {
    /// The scale's value for heads of `head_dim` features.
    pub fn value(&self, head_dim: usize) -> f64 {
        let n = match *self {
            ScoreScale::HeadDim => head_dim,
            ScoreScale::InverseSqrtOf(n) => n,
        };
        1.0 / (n as f64).sqrt()
    }
}

/// One layer's choice of the extensions (the default is none: Keras' `GroupQueryAttention`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttentionExtensions {
    /// Rotary embedding of queries and keys.
    pub rope: Option<Rope>,
    /// RMS normalization of query and key heads (before RoPE); the layer's weights hold the scales.
    pub qk_norm: Option<QkNorm>,
    /// The score scale.
    pub scale: ScoreScale,
    /// `cap · tanh(s / cap)` on the scaled scores.
    pub soft_cap: Option<f64>,
    /// One learned logit per query head in the softmax's denominator; the weights hold them.
    pub sinks: bool,
    /// The window over key positions, ANDed with the call's mask.
    pub window: Option<KeyWindow>,
}

impl AttentionExtensions {
    /// Whether any extension is on.
    pub fn any(&self) -> bool {
        *self != Self::default()
    }

    /// Checks the values against heads of `head_dim` features.
    pub fn validate(&self, head_dim: usize) -> Result<(), GqaError> {
        let bad = |what: &str, reason: String| GqaError::InvalidConfigValue { what: what.into(), reason };
        if let Some(rope) = &self.rope
            && rope.head_dim != head_dim
        {
            return Err(bad("rotary embedding", format!("built for head_dim {}, layer has {head_dim}", rope.head_dim)));
        }
        if let Some(norm) = &self.qk_norm
            && !(norm.epsilon.is_finite() && norm.epsilon >= 0.0)
        {
            return Err(bad("layer_norm_epsilon", format!("must be finite and >= 0, got {}", norm.epsilon)));
        }
        if let Some(cap) = self.soft_cap
            && !(cap.is_finite() && cap > 0.0)
        {
            return Err(bad("logit_soft_cap", format!("must be finite and > 0, got {cap}")));
        }
        if self.scale == ScoreScale::InverseSqrtOf(0) {
            return Err(bad("score scale", "1 / sqrt(0)".into()));
        }
        if self.window.is_some_and(|w| w.size() == 0) {
            return Err(GqaError::ZeroSize { what: "sliding window".into() });
        }
        Ok(())
    }

    /// Each extension that is on, as (name, value) in words: `rope`, `qk_norm`, `scale`,
    /// `soft_cap`, `sinks`, `window` (for summaries, e.g. `gqa info --layer`).
    pub fn describe(&self, head_dim: usize) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(r) = &self.rope {
            let schedule = match r.frequencies {
                RopeFrequencies::Plain { wavelength } => format!("plain, wavelength {wavelength}"),
                RopeFrequencies::Linear { wavelength, factor } => {
                    format!("linear, wavelength {wavelength}, scaling factor {factor}")
                }
                RopeFrequencies::Llama3 {
                    wavelength,
                    factor,
                    low_freq_factor,
                    high_freq_factor,
                    pretraining_length,
                } => format!(
                    "Llama 3, wavelength {wavelength}, factor {factor}, low {low_freq_factor}, high {high_freq_factor}, \
                     pretraining length {pretraining_length}"
                ),
                RopeFrequencies::Yarn { wavelength, factor, beta_fast, beta_slow, original_length, truncate } => {
                    format!(
                        "YaRN, base {wavelength}, factor {factor}, beta {beta_fast}/{beta_slow}, original length \
                         {original_length}{}",
                        if truncate { ", truncated" } else { "" }
                    )
                }
            };
            let layout = match r.layout {
                RopeLayout::RotateHalf => "rotate-half",
                RopeLayout::Interleaved => "rotate-half, halves interleaved",
            };
            out.push(("rope", format!("{layout}, {} of {} features, {schedule}", r.rotary_dim, r.head_dim)));
        }
        if let Some(n) = &self.qk_norm {
            let form = match n.form {
                NormScale::Scale => "x / rms * scale",
                NormScale::OnePlusScale => "x / rms * (1 + scale)",
            };
            out.push(("qk_norm", format!("{form}, epsilon {}", n.epsilon)));
        }
        let scale = match self.scale {
            ScoreScale::HeadDim => format!("1/sqrt({head_dim})"),
            ScoreScale::InverseSqrtOf(n) => format!("1/sqrt({n})"),
        };
        out.push(("scale", scale));
        if let Some(cap) = self.soft_cap {
            out.push(("soft_cap", format!("{cap} * tanh(s / {cap})")));
        }
        if self.sinks {
            out.push(("sinks", "one learned logit per query head".into()));
        }
        if let Some(w) = self.window {
            let text = match w {
                KeyWindow::Symmetric(n) => format!("|p - j| <= {}", n.saturating_sub(1)),
                KeyWindow::Lookback(n) => format!("j >= p - {n}"),
                KeyWindow::Centered(n) => format!("-{} <= t - j <= {}", n / 2, n - n / 2 - 1),
            };
            out.push(("window", text));
        }
        out
    }

    /// Applies the soft cap (if any) to a scaled score.
    pub fn cap(&self, score: f64) -> f64 {
        match self.soft_cap {
            Some(cap) => cap * (score / cap).tanh(),
            None => score,
        }
    }
}

/// The learned weights the extensions add to the layer's dense ones.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExtensionWeights {
    /// The query norm's scale (H,), with [`AttentionExtensions::qk_norm`].
    pub query_norm: Option<HostTensor>,
    /// The key norm's scale (H,), with [`AttentionExtensions::qk_norm`].
    pub key_norm: Option<HostTensor>,
    /// The sink logits (Nq,), with [`AttentionExtensions::sinks`].
    pub sinks: Option<HostTensor>,
}

impl ExtensionWeights {
    /// Checks that exactly the weights `extensions` needs are present, with their shapes.
    pub fn validate(&self, extensions: &AttentionExtensions, config: &GqaConfig) -> Result<(), GqaError> {
        let norm = extensions.qk_norm.is_some();
        let entries = [
            ("query_norm/scale", &self.query_norm, norm, config.head_dim),
            ("key_norm/scale", &self.key_norm, norm, config.head_dim),
            ("sinks", &self.sinks, extensions.sinks, config.num_query_heads),
        ];
        for (path, tensor, needed, len) in entries {
            let problem = match (tensor, needed) {
                (None, true) => Some("missing".to_string()),
                (Some(_), false) => Some("unexpected: the layer has no such weight".to_string()),
                (Some(t), true) if t.shape() != [len] => Some(format!("got shape {:?}", t.shape())),
                _ => None,
            };
            if let Some(problem) = problem {
                return Err(GqaError::Weight { path: path.into(), expected: vec![len], problem });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        // Symmetric 3: |p - j| <= 2.
        let w = KeyWindow::Symmetric(3);
        assert!(w.sees(0, 5, 3) && w.sees(0, 5, 7) && !w.sees(0, 5, 2) && !w.sees(0, 5, 8));
        // Lookback 3: j >= p - 3, any j ahead.
        let w = KeyWindow::Lookback(3);
        assert!(w.sees(0, 5, 2) && !w.sees(0, 5, 1) && w.sees(0, 5, 9));
        // Centered 4: right = 2, left = 1: -2 <= t - j <= 1, by row.
        let w = KeyWindow::Centered(4);
        let seen: Vec<usize> = (0..8).filter(|&j| w.sees(3, 99, j)).collect();
        assert_eq!(seen, [2, 3, 4, 5]);
        // Each window agrees with its band (Centered at position = row).
        for w in [KeyWindow::Symmetric(3), KeyWindow::Lookback(3), KeyWindow::Centered(4), KeyWindow::Centered(5)] {
            let band = w.band();
            for p in 0..12usize {
                for j in 0..12usize {
                    assert_eq!(w.sees(p, p, j), band.sees(p as i64, j as i64), "{w:?} p {p} j {j}");
                }
            }
        }
        assert_eq!(KeyBand::keras(4).intersect(KeyWindow::Lookback(2).band()), KeyBand { behind: 2, ahead: 3 });
    }

    #[test]
    fn norm_forms() {
        let mut a = [3.0, 4.0];
        QkNorm { epsilon: 0.0, form: NormScale::Scale }.apply(&mut a, &[1.0, 2.0]);
        let rms = 12.5f64.sqrt();
        assert_eq!(a, [3.0 / rms, 8.0 / rms]);
        let mut b = [3.0, 4.0];
        QkNorm { epsilon: 0.0, form: NormScale::OnePlusScale }.apply(&mut b, &[0.0, 1.0]);
        assert_eq!(b, [3.0 / rms, 8.0 / rms]);
    }

    #[test]
    fn validation() {
        let ok = AttentionExtensions { soft_cap: Some(50.0), ..Default::default() };
        assert!(ok.validate(4).is_ok() && ok.any());
        assert!(!AttentionExtensions::default().any());
        let bad = AttentionExtensions { soft_cap: Some(0.0), ..Default::default() };
        assert!(bad.validate(4).is_err());
        let bad = AttentionExtensions { window: Some(KeyWindow::Lookback(0)), ..Default::default() };
        assert!(bad.validate(4).is_err());
        assert_eq!(ok.cap(1e9), 50.0);
    }
}
