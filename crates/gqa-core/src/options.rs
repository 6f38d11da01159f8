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
