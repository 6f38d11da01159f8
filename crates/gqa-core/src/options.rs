//! Per-call options: masks, causal masking and its alignment, scores, training, masked-row policy.

use crate::tensor::Mask;

/// Where the causal diagonal sits when T != S.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CausalAlignment {
    /// Keras and PyTorch `is_causal`: query `i` sees keys `j <= i`.
    #[default]
    TopLeft,
    /// FlashAttention, ONNX Runtime, KV caches: query `i` sees keys `j <= i + S - T`.
    BottomRight,
}

/// What a fully masked query row produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaskedRows {
    /// All probabilities 0, so the output row is the output bias (Keras with scores or dropout).
    #[default]
    Zeros,
    /// Uniform probabilities over all S keys: what Keras' plain call (`ops.dot_product_attention`) does.
    KerasDefault,
}

/// The arguments of a call besides query, value and key.
///
/// Masks follow Keras: `query_mask` (B, T), `value_mask` and `key_mask` (B, S), `attention_mask`
/// (T, S), (B|1, T|1, S|1) or (B|1, Nq|1, T|1, S|1), nonzero = attend.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallOptions {
    /// Attention mask, broadcast to (B, Nq, T, S).
    pub attention_mask: Option<Mask>,
    /// Query padding mask (B, T).
    pub query_mask: Option<Mask>,
    /// Value padding mask (B, S).
    pub value_mask: Option<Mask>,
    /// Key padding mask (B, S).
    pub key_mask: Option<Mask>,
    /// Apply a causal mask.
    pub use_causal_mask: bool,
    /// Alignment of the causal mask and of the sliding window when T != S.
    pub causal_alignment: CausalAlignment,
    /// Also return the attention probabilities (B, Nq, T, S), before dropout.
    pub return_attention_scores: bool,
    /// Training mode: dropout applies when the config's rate is > 0.
    pub training: bool,
    /// Fully masked rows policy.
    pub masked_rows: MaskedRows,
    /// Dropout seed for this call; `None` uses the config's `seed` (or 0 when that is unset too).
    pub dropout_seed: Option<u64>,
}

/// Builders: each `with_*` sets one field and returns the options, so a call's options read as one
/// expression and new fields (which start at their defaults) break no caller.
///
/// ```
/// use gqa_core::{CallOptions, CausalAlignment, Mask};
/// let options = CallOptions::default()
///     .with_causal_mask(true)
///     .with_causal_alignment(CausalAlignment::BottomRight)
///     .with_query_mask(Mask::filled([2, 5], true))
///     .with_attention_scores(true);
/// assert!(options.use_causal_mask && options.return_attention_scores);
/// ```
impl CallOptions {
    /// Sets `attention_mask`: (T, S), (B|1, T|1, S|1) or (B|1, Nq|1, T|1, S|1).
    pub fn with_attention_mask(mut self, mask: Mask) -> Self {
        self.attention_mask = Some(mask);
        self
    }

    /// Sets `query_mask` (B, T).
    pub fn with_query_mask(mut self, mask: Mask) -> Self {
        self.query_mask = Some(mask);
        self
    }

    /// Sets `value_mask` (B, S).
    pub fn with_value_mask(mut self, mask: Mask) -> Self {
        self.value_mask = Some(mask);
        self
    }

    /// Sets `key_mask` (B, S).
    pub fn with_key_mask(mut self, mask: Mask) -> Self {
        self.key_mask = Some(mask);
        self
    }

    /// Sets `use_causal_mask`.
    pub fn with_causal_mask(mut self, on: bool) -> Self {
        self.use_causal_mask = on;
        self
    }

    /// Sets `causal_alignment`.
    pub fn with_causal_alignment(mut self, alignment: CausalAlignment) -> Self {
        self.causal_alignment = alignment;
        self
    }

    /// Sets `return_attention_scores`.
    pub fn with_attention_scores(mut self, on: bool) -> Self {
        self.return_attention_scores = on;
        self
    }

    /// Sets `training` (dropout applies when the config's rate is > 0).
    pub fn with_training(mut self, on: bool) -> Self {
        self.training = on;
        self
    }

    /// Sets `masked_rows`.
    pub fn with_masked_rows(mut self, policy: MaskedRows) -> Self {
        self.masked_rows = policy;
        self
    }

    /// Sets `dropout_seed`.
    pub fn with_dropout_seed(mut self, seed: u64) -> Self {
        self.dropout_seed = Some(seed);
        self
    }
}
