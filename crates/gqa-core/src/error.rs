//! The one error type of gqa-core: invalid configs, shapes, masks and plans.

use thiserror::Error;

/// Everything that can be wrong with a layer config, a call's inputs or a plan.
///
/// Every message names the argument or op and the shapes involved, so a caller can tell what to fix.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum GqaError {
    /// A size that must be positive is zero.
    #[error("{what} must be > 0, got 0")]
    ZeroSize {
        /// The size that was zero (e.g. `head_dim`, `batch of query`).
        what: String,
    },
    /// `num_query_heads` is not a multiple of `num_key_value_heads`.
    #[error("num_query_heads ({num_query_heads}) must be divisible by num_key_value_heads ({num_key_value_heads})")]
    HeadsDoNotDivide {
        /// Nq.
        num_query_heads: usize,
        /// Nkv.
        num_key_value_heads: usize,
    },
    /// The dropout rate is outside [0, 1) or not finite.
    #[error("dropout must be in [0, 1), got {0}")]
    DropoutOutOfRange(f64),
    /// A numeric config value is NaN, infinite or otherwise out of its domain.
    #[error("invalid config value {what}: {reason}")]
    InvalidConfigValue {
        /// The key (e.g. `kernel_regularizer.l2`).
        what: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A tensor has the wrong rank.
    #[error("{op}: {tensor} must have rank {expected}, got shape {got:?}")]
    Rank {
        /// The operation checking it.
        op: &'static str,
        /// The tensor's name.
        tensor: String,
        /// The rank expected.
        expected: usize,
        /// The shape received.
        got: Vec<usize>,
    },
    /// Two tensors disagree on a dimension they must share.
    #[error("{op}: {detail}")]
    ShapeMismatch {
        /// The operation checking it.
        op: &'static str,
        /// What disagrees, with the shapes.
        detail: String,
    },
    /// A tensor's data length does not match the product of its shape.
    #[error("{tensor}: shape {shape:?} needs {expected} elements, data has {got}")]
    DataLength {
        /// The tensor's name.
        tensor: String,
        /// Its declared shape.
        shape: Vec<usize>,
        /// Elements the shape needs.
        expected: usize,
        /// Elements given.
        got: usize,
    },
    /// A mask cannot be broadcast to its target shape.
    #[error("{mask} of shape {shape:?} does not broadcast to {target}")]
    MaskBroadcast {
        /// The mask's name (`attention_mask`, `query_mask` ...).
        mask: &'static str,
        /// Its shape.
        shape: Vec<usize>,
        /// The shape it must broadcast to, written out (e.g. `(B=2, Nq=4, T=3, S=5)`).
        target: String,
    },
    /// A weight is missing or has the wrong shape.
    #[error("weight {path}: expected shape {expected:?}, {problem}")]
    Weight {
        /// The Keras path of the weight (`query/kernel` ...).
        path: String,
        /// The shape the config requires.
        expected: Vec<usize>,
        /// What is wrong (`missing`, `got shape [..]`, `unexpected: use_bias is false`).
        problem: String,
    },
    /// A Keras object (initializer, regularizer, constraint, dtype) that this crate does not know.
    #[error("unknown {kind} {name:?}: {hint}")]
    UnknownKerasObject {
        /// `initializer`, `regularizer` or `constraint`.
        kind: &'static str,
        /// The class name or string given.
        name: String,
        /// What is supported.
        hint: String,
    },
    /// The config JSON could not be parsed.
    #[error("config JSON: {0}")]
    Json(String),
    /// Options that contradict each other (e.g. flash attention with dropout).
    #[error("incompatible options: {0}")]
    IncompatibleOptions(String),
    /// A plan needs more than the device allows.
    #[error("{kernel}: {limit} is {allowed} on this device, the problem needs {needed} ({detail})")]
    LimitExceeded {
        /// The kernel or buffer that needs it.
        kernel: String,
        /// The name of the limit (as in `wgpu::Limits`, e.g. `max_storage_buffer_binding_size`).
        limit: &'static str,
        /// The device's value.
        allowed: u64,
        /// What the problem needs.
        needed: u64,
        /// Which dimension or buffer asked for it.
        detail: String,
    },
    /// Appending to a KV cache would go past its capacity.
    #[error(
        "KV cache full: sequence {sequence} holds {length} tokens, appending {appending} needs {} but the capacity is \
         {capacity} (create the cache larger, grow it, or truncate it)", length + appending
    )]
    CacheFull {
        /// The sequence (batch index).
        sequence: usize,
        /// Tokens it holds.
        length: usize,
        /// Tokens the call appends.
        appending: usize,
        /// The cache's capacity in tokens.
        capacity: usize,
    },
    /// A call or a cache does not match the cache it is used with.
    #[error("{op}: the KV cache has {what} {cache}, the call has {call}")]
    CacheMismatch {
        /// The operation.
        op: &'static str,
        /// What differs (`batch`, `num_key_value_heads`, `head_dim`, ...).
        what: &'static str,
        /// The cache's value.
        cache: usize,
        /// The call's value.
        call: usize,
    },
    /// A step needs a prefix the cache does not hold.
    #[error(
        "{op}: sequence {sequence} of the KV cache is empty; a step attends over a cached prefix, run prefill first"
    )]
    CacheEmpty {
        /// The operation.
        op: &'static str,
        /// The empty sequence.
        sequence: usize,
    },
    /// A window cache (a ring, [`crate::CacheLayout::Ring`]) asked for what its window does not
    /// allow: a layer without a sliding window, a call appending more tokens than the ring was
    /// made for, a roll-back to tokens it has dropped.
    #[error("{op}: {detail}")]
    CacheWindow {
        /// The operation.
        op: &'static str,
        /// What was asked and what the ring allows.
        detail: String,
    },
    /// A length that a cache sequence cannot take (e.g. truncating past its end).
    #[error("{op}: sequence {sequence} of the KV cache holds {length} tokens, {requested} were asked for")]
    CacheLength {
        /// The operation.
        op: &'static str,
        /// The sequence.
        sequence: usize,
        /// Tokens it holds.
        length: usize,
        /// The length asked for.
        requested: usize,
    },
    /// A slice of a tensor or mask outside its shape (an axis past its rank, or a range past the
    /// axis' length or reversed).
    #[error("{op}: cannot take {start}..{end} of axis {axis} of shape {shape:?}")]
    Slice {
        /// The operation (`HostTensor::rows`, `Mask::slice_axis`, ...).
        op: &'static str,
        /// The shape sliced.
        shape: Vec<usize>,
        /// The axis.
        axis: usize,
        /// The range's first index.
        start: usize,
        /// The range's end (exclusive).
        end: usize,
    },
}

/// Result with [`GqaError`].
pub type Result<T, E = GqaError> = std::result::Result<T, E>;
