//! `Problem`: a config, the call's input shapes and options, validated once. Every size used later
//! (by the plan, the oracle, the GPU) comes from here.

use crate::config::GqaConfig;
use crate::error::GqaError;
use crate::extensions::{AttentionExtensions, KeyBand, KeyWindow};
use crate::options::{CallOptions, CausalAlignment, MaskedRows};
use crate::tensor::Mask;

/// How the attention mask maps onto (B, Nq, T, S): element strides (0 on broadcast axes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BroadcastStrides {
    /// Stride along the batch axis.
    pub b: usize,
    /// Stride along the query-head axis.
    pub h: usize,
    /// Stride along the target axis.
    pub t: usize,
    /// Stride along the source axis.
    pub s: usize,
}

/// Which mask parts a call combines (AND), and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MaskSpec {
    /// The attention mask's strides into its own data, when one is given.
    pub attention: Option<BroadcastStrides>,
    /// Elements of the attention mask's own data (0 when none).
    pub attention_elems: usize,
    /// A query mask (B, T) is given.
    pub query: bool,
    /// A value mask (B, S) is given.
    pub value: bool,
    /// A key mask (B, S) is given.
    pub key: bool,
    /// Causal masking with this alignment.
    pub causal: Option<CausalAlignment>,
    /// Sliding window width.
    pub window: Option<usize>,
    /// The extensions' window, as a band around each query's position (see
    /// [`Problem::with_extensions`]).
    pub band: Option<KeyBand>,
    /// Shift of the query position: 0 top-left, S - T bottom-right (query `i` sits at `i + shift`).
    pub query_shift: i64,
}

impl MaskSpec {
    /// Whether any mask part is present.
    pub fn any(&self) -> bool {
        self.attention.is_some()
            || self.query
            || self.value
            || self.key
            || self.causal.is_some()
            || self.window.is_some()
            || self.band.is_some()
    }

    /// The keys the window parts leave visible around each query's position: Keras' sliding
    /// window and the extensions' window together.
    pub fn key_band(&self) -> Option<KeyBand> {
        match (self.window.map(KeyBand::keras), self.band) {
            (Some(a), Some(b)) => Some(a.intersect(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Dropout in effect for a call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DropoutSpec {
    /// The rate, in (0, 1).
    pub rate: f32,
    /// The seed of the counter-based generator.
    pub seed: u64,
}

/// The values of a call's masks (each `None` when not given), kept by the [`Problem`] so that its
/// plan can pack them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MaskValues {
    /// The attention mask.
    pub attention: Option<Mask>,
    /// The query mask (B, T).
    pub query: Option<Mask>,
    /// The value mask (B, S).
    pub value: Option<Mask>,
    /// The key mask (B, S).
    pub key: Option<Mask>,
}

/// A validated forward call: sizes, masks and flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// B.
    pub batch: usize,
    /// T, the query length.
    pub target_len: usize,
    /// S, the key/value length.
    pub source_len: usize,
    /// Dq, the query's feature size and the output's.
    pub query_dim: usize,
    /// Dk, the key's feature size (Dv when no key is given).
    pub key_dim: usize,
    /// Dv, the value's feature size.
    pub value_dim: usize,
    /// Whether a separate key tensor is given.
    pub key_given: bool,
    /// Nq.
    pub num_query_heads: usize,
    /// Nkv.
    pub num_kv_heads: usize,
    /// H.
    pub head_dim: usize,
    /// Biases present.
    pub use_bias: bool,
    /// Gate present.
    pub use_gate: bool,
    /// The mask parts.
    pub mask: MaskSpec,
    /// The masks' values, as the options gave them (the plan packs them into its mask words).
    pub mask_values: MaskValues,
    /// Fully masked rows policy.
    pub masked_rows: MaskedRows,
    /// Scores requested.
    pub return_scores: bool,
    /// Dropout, when training with a positive rate.
    pub dropout: Option<DropoutSpec>,
    /// RoPE, QK-norm, score scale, soft cap, sinks and window of the layer (none for Keras'
    /// `GroupQueryAttention`; see [`Problem::with_extensions`]).
    pub extensions: AttentionExtensions,
}

fn rank3(op: &'static str, tensor: &str, shape: &[usize]) -> Result<(usize, usize, usize), GqaError> {
    match *shape {
        [a, b, c] => {
            for (axis, v) in [("batch", a), ("length", b), ("feature", c)] {
                if v == 0 {
                    return Err(GqaError::ZeroSize { what: format!("{axis} dim of {tensor} {shape:?}") });
                }
            }
            Ok((a, b, c))
        }
        _ => Err(GqaError::Rank { op, tensor: tensor.into(), expected: 3, got: shape.to_vec() }),
    }
}

impl Problem {
    /// Validates the config, the shapes of query (B, T, Dq), value (B, S, Dv), key (B, S, Dk) and the
    /// options' masks, and gathers everything later stages need.
    pub fn new(
        config: &GqaConfig,
        query_shape: &[usize],
        value_shape: &[usize],
        key_shape: Option<&[usize]>,
        options: &CallOptions,
    ) -> Result<Self, GqaError> {
        const OP: &str = "GroupQueryAttention.call";
        config.validate()?;
        let (batch, target_len, query_dim) = rank3(OP, "query", query_shape)?;
        let (vb, source_len, value_dim) = rank3(OP, "value", value_shape)?;
        if vb != batch {
            return Err(GqaError::ShapeMismatch {
                op: OP,
                detail: format!("query {query_shape:?} and value {value_shape:?} differ in batch"),
            });
        }
        let key_dim = match key_shape {
            None => value_dim,
            Some(ks) => {
                let (kb, ks_len, kd) = rank3(OP, "key", ks)?;
                if kb != batch || ks_len != source_len {
                    return Err(GqaError::ShapeMismatch {
                        op: OP,
                        detail: format!("key {ks:?} must match value {value_shape:?} in batch and length"),
                    });
                }
                kd
            }
        };
        let dims4 = format!("(B={batch}, Nq={}, T={target_len}, S={source_len})", config.num_query_heads);
        let attention = options
            .attention_mask
            .as_ref()
            .map(|m| attention_strides(m, batch, config.num_query_heads, target_len, source_len, &dims4))
            .transpose()?;
        check_exact(options.query_mask.as_ref(), "query_mask", &[batch, target_len])?;
        check_exact(options.value_mask.as_ref(), "value_mask", &[batch, source_len])?;
        check_exact(options.key_mask.as_ref(), "key_mask", &[batch, source_len])?;
        let query_shift = match options.causal_alignment {
            CausalAlignment::TopLeft => 0,
            CausalAlignment::BottomRight => source_len as i64 - target_len as i64,
        };
        let dropout = (options.training && config.dropout > 0.0).then(|| DropoutSpec {
            rate: config.dropout as f32,
            seed: options.dropout_seed.or(config.seed).unwrap_or(0),
        });
        Ok(Self {
            batch,
            target_len,
            source_len,
            query_dim,
            key_dim,
            value_dim,
            key_given: key_shape.is_some(),
            num_query_heads: config.num_query_heads,
            num_kv_heads: config.num_key_value_heads,
            head_dim: config.head_dim,
            use_bias: config.use_bias,
            use_gate: config.use_gate,
            mask: MaskSpec {
                attention,
                attention_elems: options.attention_mask.as_ref().map_or(0, |m| m.data().len()),
                query: options.query_mask.is_some(),
                value: options.value_mask.is_some(),
                key: options.key_mask.is_some(),
                causal: options.use_causal_mask.then_some(options.causal_alignment),
                window: config.sliding_window,
                band: None,
                query_shift,
            },
            mask_values: MaskValues {
                attention: options.attention_mask.clone(),
                query: options.query_mask.clone(),
                value: options.value_mask.clone(),
                key: options.key_mask.clone(),
            },
            masked_rows: options.masked_rows,
            return_scores: options.return_attention_scores,
            dropout,
            extensions: AttentionExtensions::default(),
        })
    }

    /// This problem with query row `t` at position `start + t` (for the causal mask, the windows
    /// and RoPE): KerasHub's cached calls, whose queries sit at their cache index.
    pub fn with_query_positions(mut self, start: usize) -> Self {
        self.mask.query_shift = start as i64;
        self
    }

    /// This problem for a layer with `extensions`. Query row `t` sits at position
    /// `t + mask.query_shift` and key row `s` at `s` (RoPE and the window use them); the
    /// bidirectional window (by row) needs the shift to be 0, and dropout is refused (the
    /// extensions' layers run inference only). With sinks a fully masked row gives zeros whatever
    /// the masked-row policy: its sink takes all the weight.
    pub fn with_extensions(mut self, extensions: &AttentionExtensions) -> Result<Self, GqaError> {
        extensions.validate(self.head_dim)?;
        if matches!(extensions.window, Some(KeyWindow::Centered(_))) && self.mask.query_shift != 0 {
            return Err(GqaError::IncompatibleOptions(format!(
                "the bidirectional window counts by query row: it needs query positions from 0 (T = {}, S = {})",
                self.target_len, self.source_len
            )));
        }
        if extensions.rope.is_some() && self.mask.query_shift < 0 {
            return Err(GqaError::IncompatibleOptions(format!(
                "RoPE needs query positions from 0: bottom-right alignment with T = {} > S = {} puts them before 0",
                self.target_len, self.source_len
            )));
        }
        if extensions.any() && self.dropout.is_some() {
            return Err(GqaError::IncompatibleOptions("dropout with attention extensions".into()));
        }
        self.mask.band = extensions.window.map(|w| w.band());
        if extensions.sinks {
            // A row that sees no key gives all its weight to its sink: zeros, whatever the policy.
            self.masked_rows = MaskedRows::Zeros;
        }
        self.extensions = extensions.clone();
        Ok(self)
    }

    /// R = Nq / Nkv.
    pub fn group_size(&self) -> usize {
        self.num_query_heads / self.num_kv_heads
    }

    /// The score scale: `1 / sqrt(H)`, or what the extensions say.
    pub fn scale(&self) -> f64 {
        self.extensions.scale.value(self.head_dim)
    }

    /// Elements of the output (B, T, Dq).
    pub fn output_shape(&self) -> [usize; 3] {
        [self.batch, self.target_len, self.query_dim]
    }

    /// Shape of the scores (B, Nq, T, S).
    pub fn scores_shape(&self) -> [usize; 4] {
        [self.batch, self.num_query_heads, self.target_len, self.source_len]
    }
}

fn check_exact(mask: Option<&Mask>, name: &'static str, expected: &[usize]) -> Result<(), GqaError> {
    match mask {
        Some(m) if m.shape() != expected => {
            Err(GqaError::MaskBroadcast { mask: name, shape: m.shape().to_vec(), target: format!("{expected:?}") })
        }
        _ => Ok(()),
    }
}

/// Strides that broadcast an attention mask of Keras' accepted shapes onto (B, Nq, T, S):
/// rank 2 is (T, S); rank 3 is (B, T, S); rank 4 is (B, Nq, T, S); each axis either full or 1.
fn attention_strides(
    mask: &Mask,
    batch: usize,
    heads: usize,
    t: usize,
    s: usize,
    target: &str,
) -> Result<BroadcastStrides, GqaError> {
    let shape = mask.shape();
    let full = [batch, heads, t, s];
    // Place the mask's axes onto (B, Nq, T, S).
    let placed: [usize; 4] = match *shape {
        [mt, ms] => [1, 1, mt, ms],
        [mb, mt, ms] => [mb, 1, mt, ms],
        [mb, mh, mt, ms] => [mb, mh, mt, ms],
        _ => {
            return Err(GqaError::MaskBroadcast {
                mask: "attention_mask",
                shape: shape.to_vec(),
                target: target.into(),
            });
        }
    };
    if placed.iter().zip(full).any(|(&m, f)| m != 1 && m != f) {
        return Err(GqaError::MaskBroadcast { mask: "attention_mask", shape: shape.to_vec(), target: target.into() });
    }
    let mut strides = [0usize; 4];
    let mut acc = 1;
    for axis in (0..4).rev() {
        strides[axis] = if placed[axis] == 1 { 0 } else { acc };
        acc *= placed[axis];
    }
    Ok(BroadcastStrides { b: strides[0], h: strides[1], t: strides[2], s: strides[3] })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts_with_mask(shape: &[usize]) -> CallOptions {
        CallOptions { attention_mask: Some(Mask::filled(shape.to_vec(), true)), ..Default::default() }
    }

    #[test]
    fn attention_mask_shapes_broadcast() {
        let cfg = GqaConfig::new(4, 4, 2);
        let p = |shape: &[usize]| Problem::new(&cfg, &[2, 3, 8], &[2, 5, 6], None, &opts_with_mask(shape));
        let s = p(&[2, 3, 5]).unwrap().mask.attention.unwrap();
        assert_eq!(s, BroadcastStrides { b: 15, h: 0, t: 5, s: 1 });
        let s = p(&[3, 5]).unwrap().mask.attention.unwrap();
        assert_eq!(s, BroadcastStrides { b: 0, h: 0, t: 5, s: 1 });
        let s = p(&[1, 3, 5]).unwrap().mask.attention.unwrap();
        assert_eq!(s, BroadcastStrides { b: 0, h: 0, t: 5, s: 1 });
        let s = p(&[2, 4, 3, 5]).unwrap().mask.attention.unwrap();
        assert_eq!(s, BroadcastStrides { b: 60, h: 15, t: 5, s: 1 });
        let s = p(&[2, 1, 1, 5]).unwrap().mask.attention.unwrap();
        assert_eq!(s, BroadcastStrides { b: 5, h: 0, t: 0, s: 1 });
        for bad in [&[3, 3, 5][..], &[2, 3, 4], &[5], &[2, 3, 3, 5], &[1, 1, 1, 1, 5]] {
            let err = p(bad).unwrap_err();
            assert!(matches!(err, GqaError::MaskBroadcast { .. }), "{bad:?}: {err}");
            assert!(err.to_string().contains("(B=2, Nq=4, T=3, S=5)"), "{err}");
        }
    }

    #[test]
    fn shapes_are_checked() {
        let cfg = GqaConfig::new(4, 4, 2);
        let o = CallOptions::default();
        assert!(matches!(Problem::new(&cfg, &[2, 3], &[2, 5, 6], None, &o), Err(GqaError::Rank { .. })));
        assert!(matches!(Problem::new(&cfg, &[2, 3, 8], &[1, 5, 6], None, &o), Err(GqaError::ShapeMismatch { .. })));
        assert!(matches!(
            Problem::new(&cfg, &[2, 3, 8], &[2, 5, 6], Some(&[2, 4, 6]), &o),
            Err(GqaError::ShapeMismatch { .. })
        ));
        assert!(matches!(Problem::new(&cfg, &[2, 0, 8], &[2, 5, 6], None, &o), Err(GqaError::ZeroSize { .. })));
        let qm = CallOptions { query_mask: Some(Mask::filled(vec![2, 5], true)), ..Default::default() };
        assert!(matches!(Problem::new(&cfg, &[2, 3, 8], &[2, 5, 6], None, &qm), Err(GqaError::MaskBroadcast { .. })));
        let p = Problem::new(&cfg, &[2, 3, 8], &[2, 5, 6], Some(&[2, 5, 7]), &o).unwrap();
        assert_eq!((p.query_dim, p.key_dim, p.value_dim), (8, 7, 6));
    }

    #[test]
    fn bottom_right_shift() {
        let cfg = GqaConfig::new(4, 4, 2);
        let o =
            CallOptions { use_causal_mask: true, causal_alignment: CausalAlignment::BottomRight, ..Default::default() };
        let p = Problem::new(&cfg, &[1, 3, 8], &[1, 7, 8], None, &o).unwrap();
        assert_eq!(p.mask.query_shift, 4);
        let p = Problem::new(&cfg, &[1, 7, 8], &[1, 3, 8], None, &o).unwrap();
        assert_eq!(p.mask.query_shift, -4);
    }
}
