//! What a plan's steps read and write: the buffers and textures, by name, size and role.

use std::fmt;

use crate::kernels::texture::TextureShape;
use crate::weights::Dense;

/// Names every buffer a forward call touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BufferId {
    /// Input query (B, T, Dq).
    Query,
    /// Input key (B, S, Dk), only when given.
    Key,
    /// Input value (B, S, Dv).
    Value,
    /// Every mask part packed as bits in u32 words (see [`crate::MaskOffsets`]); at least one word.
    Masks,
    /// A dense sub-layer's weight matrix (Keras' `kernel`), flattened to `[in, out]`.
    Weight(Dense),
    /// A dense sub-layer's bias.
    Bias(Dense),
    /// One batch chunk of the query (chunked plans only: copied from [`BufferId::Query`]).
    QueryChunk,
    /// One batch chunk of the key.
    KeyChunk,
    /// One batch chunk of the value.
    ValueChunk,
    /// Projected queries (B, T, Nq, H) of the batch chunk.
    QueryProj,
    /// Projected keys (B, S, Nkv, H) of the batch chunk.
    KeyProj,
    /// Projected values (B, S, Nkv, H) of the batch chunk.
    ValueProj,
    /// Sigmoid gate (B, T, Nq, H) of the batch chunk.
    GateProj,
    /// Logits, then probabilities in place, of one attention chunk: (rows, t_count, S).
    Probs,
    /// Attention output before the output projection (B, T, Nq, H) of the batch chunk.
    AttnOut,
    /// One batch chunk of the output (chunked plans only: copied into [`BufferId::Output`]).
    OutputChunk,
    /// The split partial states of flash-decoding: (B, Nkv, splits, T * R, 2H + 2).
    Partials,
    /// The layer output (B, T, Dq).
    Output,
    /// All the scores (B, Nq, T, S) when requested and the attention is chunked (unchunked plans
    /// return [`BufferId::Probs`] itself).
    Scores,
    /// The KV cache's projected keys (B, capacity, Nkv, H) (cached calls only).
    KeyCache,
    /// The KV cache's projected values (B, capacity, Nkv, H) (cached calls only).
    ValueCache,
    /// A dense sub-layer's weight as an rgba32float texture of `out / 4` x `in` texels, for the
    /// textured matmuls (the layer keeps it beside [`BufferId::Weight`]).
    WeightTexture(Dense),
    /// The query projection's input (the query, or its batch chunk) packed as a texture of
    /// `Dq / 4` x `rows` texels; the gate projection reads it too.
    QueryTexture,
    /// The key projection's input packed as a texture (only when a key is given).
    KeyTexture,
    /// The value projection's input packed as a texture; the key projection reads it too when no
    /// key is given.
    ValueTexture,
    /// The attention output packed as a texture, the output projection's input.
    AttnOutTexture,
    /// The projected queries packed as a texture of `Nq·H / 4` x `B·T` texels (per batch chunk),
    /// for the block attention over textures.
    QueryProjTexture,
    /// The projected keys packed as a texture of `Nkv·H / 4` x `B·S` texels, for
    /// the block attention over textures.
    KeyProjTexture,
    /// The projected values packed like [`BufferId::KeyProjTexture`].
    ValueProjTexture,
    /// The KV cache's keys as a texture of `Nkv·H / 4` x `B·capacity` texels (cached calls on a
    /// cache with texture mirrors, [`crate::CacheUpdate::texture_mirror`]), appended to beside
    /// [`BufferId::KeyCache`].
    KeyCacheTexture,
    /// The KV cache's values as a texture, like [`BufferId::KeyCacheTexture`].
    ValueCacheTexture,
    /// [`crate::kernels::check_values::FLAG_WORDS`] words from [`crate::Kernel::CheckValues`] (0:
    /// that share of the projected values is finite), read by the block attention (block-attention
    /// plans only).
    VFlags,
    /// The rotary table of the positional passes ([`crate::Plan::rope_table`]; plans with QK-norm
    /// or RoPE).
    RopeTable,
    /// A learned weight of the attention extensions.
    ExtensionWeight(ExtensionWeight),
}

/// The learned weights of the attention extensions, as the plans bind them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExtensionWeight {
    /// The query norm's scale (H,).
    QueryNorm,
    /// The key norm's scale (H,).
    KeyNorm,
    /// The sink logits (Nq,).
    Sinks,
}

impl fmt::Display for BufferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BufferId::Weight(d) => write!(f, "{}/kernel", d.keras_name()),
            BufferId::Bias(d) => write!(f, "{}/bias", d.keras_name()),
            BufferId::WeightTexture(d) => write!(f, "{}/kernel (texture)", d.keras_name()),
            BufferId::ExtensionWeight(ExtensionWeight::QueryNorm) => f.write_str("query_norm/scale"),
            BufferId::ExtensionWeight(ExtensionWeight::KeyNorm) => f.write_str("key_norm/scale"),
            BufferId::ExtensionWeight(ExtensionWeight::Sinks) => f.write_str("sinks"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// What a buffer holds, which decides its usages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferRole {
    /// Written from the host (or the caller's GPU data) before the passes.
    Input,
    /// Layer weights, uploaded once.
    Weight,
    /// Produced and consumed by the passes.
    Scratch,
    /// Read back after the passes (the output, and the scores when requested).
    Output,
    /// State that outlives the call, owned by the caller: the KV cache, read and appended to.
    Cache,
}

impl BufferId {
    /// Whether the buffer is stored in the plan's [`crate::Precision`] (the weights and the intermediates
    /// between the projections and the output projection); every other buffer (inputs, masks,
    /// probabilities and scores, partial states, outputs) is always 4-byte f32 or u32.
    pub fn follows_precision(self) -> bool {
        matches!(
            self,
            BufferId::Weight(_)
                | BufferId::Bias(_)
                | BufferId::QueryProj
                | BufferId::KeyProj
                | BufferId::ValueProj
                | BufferId::GateProj
                | BufferId::AttnOut
        )
    }
}

/// One buffer: its name, element count and size, and role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferSpec {
    /// Which buffer.
    pub id: BufferId,
    /// Number of elements (f32 or u32; f16 for the buffers that [`BufferId::follows_precision`] in
    /// an f16 plan).
    pub elems: u64,
    /// Bytes per element: 4, or 2 for f16.
    pub element_bytes: u64,
    /// Size in bytes: `elems * element_bytes` rounded up to a multiple of 4 (WebGPU's copy and
    /// binding alignment).
    pub bytes: u64,
    /// Its role.
    pub role: BufferRole,
    /// `Some` when the resource is a texture (its size in texels; `bytes` is then `width * height *
    /// 16`), `None` for a buffer.
    pub texture: Option<TextureShape>,
}
