//! What a forward call returns, on any backend.

use crate::tensor::HostTensor;

/// The layer's output and, when requested, the attention scores.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardOutput {
    /// The output (B, T, Dq).
    pub output: HostTensor,
    /// The attention probabilities (B, Nq, T, S), after masking and before dropout, when
    /// `return_attention_scores` was set.
    pub scores: Option<HostTensor>,
}
