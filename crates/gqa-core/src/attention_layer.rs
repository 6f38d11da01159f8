//! `AttentionLayer`: the one call shape of every implementation of the layer (the GPU layer of
//! `gqa-wgpu`, the f64 oracle of `gqa-ref`), so that an application can be written once and run on
//! any of them.

use crate::config::GqaConfig;
use crate::error::GqaError;
use crate::kv_cache::CacheContents;
use crate::options::CallOptions;
use crate::output::ForwardOutput;
use crate::tensor::HostTensor;
use crate::weights::LayerDims;

/// A configured `GroupQueryAttention` layer with its weights, called on host tensors: a forward
/// call, and autoregressive decoding through a KV cache (new, prefill, step).
///
/// Every implementation takes the same inputs and returns the same results (up to its numerics):
/// `gqa_wgpu::GqaLayer` on a GPU, `gqa_ref::ReferenceLayer` in f64 on the CPU. Generic code swaps
/// them by the type parameter:
///
/// ```
/// use gqa_core::{AttentionLayer, CallOptions, HostTensor};
///
/// /// Prefills a prompt, then decodes one token at a time (here the inputs are given).
/// fn decode<L: AttentionLayer>(layer: &L, tokens: &HostTensor, prompt: usize) -> Result<Vec<HostTensor>, L::Error> {
///     let (batch, len) = (tokens.shape()[0], tokens.shape()[1]);
///     let mut cache = layer.new_cache(batch, len)?;
///     let first = tokens.time_slice(..prompt)?;
///     let mut outputs = vec![layer.prefill(&mut cache, &first, &first, None, None)?];
///     for t in prompt..len {
///         let token = tokens.time_slice(t..t + 1)?;
///         outputs.push(layer.step(&mut cache, &token, &token, None)?);
///     }
///     Ok(outputs)
/// }
/// ```
///
/// Implementations keep their own inherent methods of the same names; these trait methods
/// delegate to them, so the two never disagree.
pub trait AttentionLayer {
    /// The implementation's KV cache.
    type Cache: AttentionCache;
    /// The implementation's error; invalid inputs are [`GqaError`]s in it.
    type Error: std::error::Error + From<GqaError> + Send + Sync + 'static;

    /// The layer's config.
    fn config(&self) -> &GqaConfig;

    /// The input feature sizes (Dq, Dk, Dv) the weights were built for.
    fn dims(&self) -> LayerDims;

    /// One call: `query` (B, T, Dq), `value` (B, S, Dv), `key` (B, S, Dk) or `None` (then
    /// `key = value`), the masks and switches of `options`. Returns the output (B, T, Dq) and, when
    /// `options.return_attention_scores`, the scores (B, Nq, T, S).
    fn forward(
        &self,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        options: &CallOptions,
    ) -> Result<ForwardOutput, Self::Error>;

    /// An empty KV cache of `batch` sequences of up to `capacity` tokens.
    fn new_cache(&self, batch: usize, capacity: usize) -> Result<Self::Cache, Self::Error>;

    /// Runs the layer causally over a prompt (query (B, P, Dq), value (B, P, Dv), key or `None`) and
    /// appends its keys and values to `cache`: all P tokens, or the first `lengths[b]` of sequence
    /// `b` of right-padded prompts. On a cache holding tokens this appends a chunk. Returns the
    /// output (B, P, Dq).
    fn prefill(
        &self,
        cache: &mut Self::Cache,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        lengths: Option<&[usize]>,
    ) -> Result<HostTensor, Self::Error>;

    /// One decoding step of T >= 1 new tokens per sequence (query (B, T, Dq), value, key or
    /// `None`), attending over each sequence's cached prefix and the new tokens (bottom-right
    /// causal). Every sequence must hold a prefix. Returns the output (B, T, Dq): the rows
    /// `lengths[b]..lengths[b] + T` of one causal [`AttentionLayer::forward`] over the whole
    /// sequence.
    fn step(
        &self,
        cache: &mut Self::Cache,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
    ) -> Result<HostTensor, Self::Error>;

    /// The tokens `cache` holds, on the host (keys and values (B, L, Nkv, H) f32): to save a cache,
    /// or move it to another implementation with [`AttentionLayer::load_cache`].
    fn read_cache(&self, cache: &Self::Cache) -> Result<CacheContents, Self::Error>;

    /// Replaces the contents of `cache` with `contents` (as [`AttentionLayer::read_cache`] gives
    /// them, from any implementation).
    fn load_cache(&self, cache: &mut Self::Cache, contents: &CacheContents) -> Result<(), Self::Error>;
}

/// The KV cache of an [`AttentionLayer`]: each sequence's length, and rolling it back.
pub trait AttentionCache {
    /// Tokens each sequence holds.
    fn lengths(&self) -> &[usize];

    /// Keeps at most `len` tokens of every sequence (e.g. to reject drafted tokens). A ring cache
    /// refuses ([`GqaError::CacheWindow`]) to roll back to tokens it has dropped; nothing changes
    /// then.
    fn truncate(&mut self, len: usize) -> Result<(), GqaError>;
}
