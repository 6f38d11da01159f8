//! The plan: every buffer and every dispatch of a forward call, as plain data, checked against
//! device limits. gqa-wgpu executes it without re-deriving any size.

use std::fmt;

pub use crate::chunking::Chunking;
use crate::chunking::{AttentionMode, attention_mode, choose_chunking};
use crate::error::GqaError;
use crate::kernel::Kernel;
use crate::kv_cache::CacheUpdate;
use crate::limits::Limits;
use crate::options::MaskedRows;
use crate::params::{Params, mask_flags, matmul_flags};
use crate::problem::Problem;
use crate::tuning::{Precision, Tuning, cache_texture_fits, matrix_texture_fits};
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
    /// Every mask part packed as bits in u32 words (see [`MaskOffsets`]); at least one word.
    Masks,
    /// A dense sub-layer's kernel, flattened to `[in, out]`.
    Kernel(Dense),
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
    /// A dense sub-layer's kernel as an rgba32float texture of `out / 4` x `in` texels, for
    /// [`Kernel::MatmulBiasTex`] (the layer keeps it beside [`BufferId::Kernel`]).
    KernelTexture(Dense),
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
    /// for [`Kernel::AttentionBlockTex`].
    QueryProjTexture,
    /// The projected keys packed as a texture of `Nkv·H / 4` x `B·S` texels, for
    /// [`Kernel::AttentionBlockTex`].
    KeyProjTexture,
    /// The projected values packed like [`BufferId::KeyProjTexture`].
    ValueProjTexture,
    /// The KV cache's keys as a texture of `Nkv·H / 4` x `B·capacity` texels (cached calls on a
    /// cache with texture mirrors, [`crate::CacheUpdate::texture_mirror`]), appended to beside
    /// [`BufferId::KeyCache`].
    KeyCacheTexture,
    /// The KV cache's values as a texture, like [`BufferId::KeyCacheTexture`].
    ValueCacheTexture,
    /// [`Kernel::V_FLAG_WORDS`] words from [`Kernel::VFinite`] (0: that share of the projected
    /// values is finite), read by the block attention (block-attention plans only).
    VFlags,
}

/// The shape of a plan resource that is a 2D rgba32float texture (4 f32 per texel) rather than a
/// buffer: a matrix of `4 width` columns and `height` rows, each row allocated `row_texels` wide
/// ([`TextureShape::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextureShape {
    /// Texels per row that hold the matrix (its columns / 4): what the kernels read and the copies
    /// move.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Texels per row the texture allocates: `width` padded by [`row_texels`] (the texture's width as
    /// the device sees it; the texels past `width` are never read).
    pub row_texels: u32,
}

impl TextureShape {
    /// A matrix texture of `width` x `height` texels, its rows padded as [`row_texels`] says.
    pub fn new(width: u32, height: u32) -> Self {
        Self { width, height, row_texels: row_texels(width) }
    }

    /// Bytes of device memory the texture takes (16 per texel, padding included).
    pub fn bytes(&self) -> u64 {
        self.row_texels as u64 * self.height as u64 * 16
    }
}

/// Texels a matrix texture allocates per row to hold `width`: `width` rounded up to the next count
/// that is 4 more than a multiple of 8, so that a row spans an odd number of 64-byte cache lines
/// (at most 7 texels, 112 bytes, more per row).
///
/// Why: on CPU adapters (Mesa llvmpipe lays a texture out row-major, rows 64-byte aligned) a row of
/// a power-of-two width is a multiple of 4 KiB, and the rows a kernel gathers from at once (the 4
/// rows of B a step of the matmul reads, the keys of 8 lanes in the block attention) then all fall
/// into the same sets of the core's caches and evict each other. With an odd number of lines per
/// row, consecutive rows map to different sets. Measured on lavapipe at 512 x 4096 x 4096: the
/// textured matmul 0.93-0.97 of the unpadded time, the block attention at T = S = 512 0.89-0.91.
/// On GPUs the kernels that read textures are not chosen, and the padding costs nothing but memory.
pub fn row_texels(width: u32) -> u32 {
    width.saturating_add((12 - width % 8) % 8)
}

impl fmt::Display for BufferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BufferId::Kernel(d) => write!(f, "{}/kernel", d.keras_name()),
            BufferId::Bias(d) => write!(f, "{}/bias", d.keras_name()),
            BufferId::KernelTexture(d) => write!(f, "{}/kernel (texture)", d.keras_name()),
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
    /// Whether the buffer is stored in the plan's [`Precision`] (the weights and the intermediates
    /// between the projections and the output projection); every other buffer (inputs, masks,
    /// probabilities and scores, partial states, outputs) is always 4-byte f32 or u32.
    pub fn follows_precision(self) -> bool {
        matches!(
            self,
            BufferId::Kernel(_)
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

/// One dispatch.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    /// A label for debugging and logs (`project_query` ...).
    pub label: &'static str,
    /// The kernel.
    pub kernel: Kernel,
    /// Workgroup counts (x, y, z).
    pub workgroups: [u32; 3],
    /// The uniform parameters.
    pub params: Params,
    /// Storage bindings 1.. in order (binding 0 is the params uniform).
    pub bindings: Vec<BufferId>,
}

impl Pass {
    /// The pass's floating-point operations (multiply-add = 2) where they follow from its params
    /// alone: `2 m n k` for a matmul ([`Kernel::is_matmul`]); `None` for other kernels, whose work
    /// depends on the masks and the chunking (the plan's total is [`Plan::flops`]).
    pub fn flops(&self) -> Option<u64> {
        let p = &self.params;
        self.kernel.is_matmul().then(|| 2 * p.m as u64 * p.n as u64 * p.k as u64)
    }
}

/// A copy between passes (moving batch chunks in and out, gathering chunked scores, appending to a
/// KV cache). Its source is a buffer. Its destination is a buffer, or a texture resource (a KV cache's
/// texture mirror) addressed as the row-major f32 matrix it holds: `dst_offset` and `bytes` are then
/// whole rows of `width · 16` bytes, and `src_offset` a multiple of 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopySpec {
    /// What the copy is for (`copy`, or the texture it fills: `pack_query`, ...), as profiles show.
    pub label: &'static str,
    /// Source buffer.
    pub src: BufferId,
    /// Byte offset in the source (a multiple of 4).
    pub src_offset: u64,
    /// Destination buffer.
    pub dst: BufferId,
    /// Byte offset in the destination (a multiple of 4).
    pub dst_offset: u64,
    /// Bytes to copy (a multiple of 4).
    pub bytes: u64,
}

/// One step of a plan, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A compute dispatch.
    Dispatch(Pass),
    /// A copy.
    Copy(CopySpec),
}

impl Step {
    /// The dispatch's label (`project_query`, `attention_block`, ...), or the copy's (`copy`, or the
    /// texture a packing copy fills: `pack_query`, ...).
    pub fn label(&self) -> &'static str {
        match self {
            Step::Dispatch(p) => p.label,
            Step::Copy(c) => c.label,
        }
    }
}

/// Bit offsets of each mask part inside the packed mask buffer (bit `i` is bit `i % 32` of word
/// `i / 32`; 1 = attend).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MaskOffsets {
    /// Attention mask (its own shape, row-major).
    pub attention: usize,
    /// Query mask (B, T).
    pub query: usize,
    /// Value mask (B, S).
    pub value: usize,
    /// Key mask (B, S).
    pub key: usize,
    /// Total bits.
    pub bits: usize,
}

impl MaskOffsets {
    /// The layout for a problem: attention, query, value, key, each present part in turn.
    pub fn of(problem: &Problem) -> Self {
        let m = &problem.mask;
        let attention = 0;
        let query = attention + m.attention_elems;
        let value = query + if m.query { problem.batch * problem.target_len } else { 0 };
        let key = value + if m.value { problem.batch * problem.source_len } else { 0 };
        let bits = key + if m.key { problem.batch * problem.source_len } else { 0 };
        Self { attention, query, value, key, bits }
    }

    /// u32 words of the packed buffer (at least 1, so it can be bound).
    pub fn words(&self) -> usize {
        self.bits.div_ceil(32).max(1)
    }
}

/// Every buffer and step of one forward call.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The problem planned.
    pub problem: Problem,
    /// The buffers, each once.
    pub buffers: Vec<BufferSpec>,
    /// The steps (dispatches and copies), in order.
    pub steps: Vec<Step>,
    /// The packed mask layout.
    pub mask_offsets: MaskOffsets,
    /// How the problem is split.
    pub chunking: Chunking,
    /// The kernel variants used.
    pub tuning: Tuning,
    /// For a cached call, what it appends to the KV cache (see [`Plan::cached`]).
    pub cache: Option<CacheUpdate>,
}

impl Plan {
    /// Plans the unfused forward pass for `limits`: when a buffer would exceed one storage binding
    /// or a dispatch too many workgroups, the batch and then the attention rows are split into
    /// chunks run one after the other, with the same result as the unsplit computation.
    pub fn new(problem: &Problem, limits: &Limits) -> Result<Self, GqaError> {
        Self::tuned(problem, limits, Tuning::default())
    }

    /// [`Plan::new`] with the kernel variants of `tuning`.
    pub fn tuned(problem: &Problem, limits: &Limits, tuning: Tuning) -> Result<Self, GqaError> {
        Self::build(problem, limits, tuning, None)
    }

    /// This plan with each packing copy out of `src` (the copies that fill the packed textures) replaced by the
    /// [`Kernel::PackTexture`] pass that fills the same texture: for a caller's buffer that cannot be
    /// a copy source (a buffer made without `COPY_SRC`), which a pass can still bind. Copies that
    /// are not packings (batch chunks, KV cache appends) are left as they are.
    pub fn packing_by_passes_from(mut self, src: BufferId) -> Self {
        let buffers = &self.buffers;
        for step in &mut self.steps {
            let Step::Copy(c) = *step else { continue };
            if c.src != src || c.src_offset != 0 || c.dst_offset != 0 {
                continue;
            }
            let packed = buffers.iter().find(|b| b.id == c.dst && b.role == BufferRole::Scratch);
            let Some(shape) = packed.and_then(|b| b.texture) else { continue };
            let cols = shape.width as u64 * 4;
            let rows = c.bytes / (cols * 4);
            let kernel = Kernel::PackTexture;
            *step = Step::Dispatch(Pass {
                label: c.label,
                kernel,
                workgroups: tiled(kernel, cols, rows, 1),
                params: Params { m: rows as u32, k: cols as u32, ..Params::default() },
                bindings: vec![c.src, c.dst],
            });
        }
        self
    }

    /// A cached call (a KV-cache prefill or step; `problem` from [`CacheUpdate::problem`]): the
    /// projections run over the call's `T` new tokens only, their keys and values are copied into
    /// [`BufferId::KeyCache`] / [`BufferId::ValueCache`] at each sequence's length, and the
    /// attention reads the cache (`kv_stride` = capacity) over the longest sequence's keys.
    pub fn cached(problem: &Problem, update: &CacheUpdate, limits: &Limits, tuning: Tuning) -> Result<Self, GqaError> {
        if problem.target_len != update.target_len || problem.source_len != update.source_len() {
            return Err(GqaError::ShapeMismatch {
                op: "Plan::cached",
                detail: format!(
                    "the problem has T={}, S={}; the cache update T={}, S={}",
                    problem.target_len,
                    problem.source_len,
                    update.target_len,
                    update.source_len()
                ),
            });
        }
        update.shape.check_heads("Plan::cached", problem.num_kv_heads, problem.head_dim)?;
        if problem.batch != update.shape.batch {
            return Err(GqaError::CacheMismatch {
                op: "Plan::cached",
                what: "batch",
                cache: update.shape.batch,
                call: problem.batch,
            });
        }
        if tuning.precision != Precision::F32 {
            return Err(GqaError::IncompatibleOptions(
                "the KV cache holds f32 keys and values: cached calls run in f32 (an f16 layer has no cached form yet)"
                    .into(),
            ));
        }
        if problem.return_scores || problem.dropout.is_some() {
            return Err(GqaError::IncompatibleOptions(
                "a cached call returns no scores and runs no dropout (inference only)".into(),
            ));
        }
        Self::build(problem, limits, tuning, Some(update))
    }

    fn build(
        problem: &Problem,
        limits: &Limits,
        tuning: Tuning,
        cache: Option<&CacheUpdate>,
    ) -> Result<Self, GqaError> {
        let p = problem;
        let mm = tuning;
        let (t, s) = (p.target_len as u64, p.source_len as u64);
        // Rows of key and value the call projects: the new tokens of a cached call, else all S.
        let s_in = if cache.is_some() { t } else { s };
        let chunking = choose_chunking(p, limits, s_in as usize)?;
        let (nq, nkv, h) = (p.num_query_heads as u64, p.num_kv_heads as u64, p.head_dim as u64);
        let nb = chunking.batch_per_chunk as u64;
        let split_batch = chunking.splits_batch(p);
        let split_attention = chunking.splits_attention(p);
        if split_batch && cache.is_some() {
            return Err(GqaError::LimitExceeded {
                kernel: "cached call".into(),
                limit: "max_storage_buffer_binding_size",
                allowed: limits.max_storage_buffer_binding_size,
                needed: nb * s * nkv * h * 4,
                detail: format!("a cached call runs the whole batch at once; it would need chunks of {nb}"),
            });
        }
        let mask_offsets = MaskOffsets::of(p);

        let mut buffers = Vec::new();
        // The textures the textured matmuls read (weights and packed inputs), each listed once.
        let mut textures: Vec<BufferSpec> = Vec::new();
        let f16 = tuning.precision == Precision::F16;
        let mut add = |id: BufferId, elems: u64, role| {
            let element_bytes = if id.follows_precision() { tuning.precision.element_bytes() } else { 4 };
            let bytes = (elems * element_bytes).next_multiple_of(4);
            buffers.push(BufferSpec { id, elems, element_bytes, bytes, role, texture: None })
        };
        let b_all = p.batch as u64;
        add(BufferId::Query, b_all * t * p.query_dim as u64, BufferRole::Input);
        if p.key_given {
            add(BufferId::Key, b_all * s_in * p.key_dim as u64, BufferRole::Input);
        }
        add(BufferId::Value, b_all * s_in * p.value_dim as u64, BufferRole::Input);
        add(BufferId::Masks, mask_offsets.words() as u64, BufferRole::Input);
        for d in Dense::ALL {
            if d == Dense::Gate && !p.use_gate {
                continue;
            }
            let (rows, cols) = dense_matrix(p, d);
            add(BufferId::Kernel(d), rows * cols, BufferRole::Weight);
            if tuning.keeps_weight_texture(rows, cols, limits) {
                textures.push(texture_spec(BufferId::KernelTexture(d), cols, rows, BufferRole::Weight));
            }
            if p.use_bias {
                add(BufferId::Bias(d), cols, BufferRole::Weight);
            }
        }
        if split_batch {
            add(BufferId::QueryChunk, nb * t * p.query_dim as u64, BufferRole::Scratch);
            if p.key_given {
                add(BufferId::KeyChunk, nb * s * p.key_dim as u64, BufferRole::Scratch);
            }
            add(BufferId::ValueChunk, nb * s * p.value_dim as u64, BufferRole::Scratch);
        }
        add(BufferId::QueryProj, nb * t * nq * h, BufferRole::Scratch);
        add(BufferId::KeyProj, nb * s_in * nkv * h, BufferRole::Scratch);
        add(BufferId::ValueProj, nb * s_in * nkv * h, BufferRole::Scratch);
        if let Some(c) = cache {
            add(BufferId::KeyCache, c.shape.elems(), BufferRole::Cache);
            add(BufferId::ValueCache, c.shape.elems(), BufferRole::Cache);
            if c.texture_mirror {
                if !cache_texture_fits(&c.shape, limits) {
                    return Err(GqaError::LimitExceeded {
                        kernel: "KV cache texture".into(),
                        limit: "max_texture_dimension_2d",
                        allowed: limits.max_texture_dimension_2d as u64,
                        needed: ((c.shape.batch * c.shape.capacity) as u64).max(c.shape.token_elems() / 4),
                        detail: format!(
                            "the cache's texture mirror is {} x {} texels (Nkv·H / 4 x B·capacity; H a multiple of 4)",
                            c.shape.token_elems() / 4,
                            c.shape.batch * c.shape.capacity
                        ),
                    });
                }
                let (cols, rows) = (c.shape.token_elems(), (c.shape.batch * c.shape.capacity) as u64);
                for id in [BufferId::KeyCacheTexture, BufferId::ValueCacheTexture] {
                    textures.push(texture_spec(id, cols, rows, BufferRole::Cache));
                }
            }
        }
        if p.use_gate {
            add(BufferId::GateProj, nb * t * nq * h, BufferRole::Scratch);
        }
        let mode = attention_mode(p, limits, tuning, chunking.batch_per_chunk);
        let fused = mode != AttentionMode::Unfused;
        let probs_elems = (chunking.rows_per_chunk * chunking.queries_per_chunk) as u64 * s;
        let scores_in_probs = p.return_scores && !split_batch && !split_attention;
        if !fused {
            add(BufferId::Probs, probs_elems, if scores_in_probs { BufferRole::Output } else { BufferRole::Scratch });
        }
        if let AttentionMode::Split { splits, .. } = mode {
            let items = (p.target_len * p.group_size()) as u64;
            add(BufferId::Partials, nb * nkv * splits as u64 * items * (2 * h + 2), BufferRole::Scratch);
        }
        if p.return_scores && !scores_in_probs {
            add(BufferId::Scores, b_all * nq * t * s, BufferRole::Output);
        }
        add(BufferId::AttnOut, nb * t * nq * h, BufferRole::Scratch);
        if mode == AttentionMode::Block {
            add(BufferId::VFlags, Kernel::V_FLAG_WORDS as u64, BufferRole::Scratch);
        }
        if split_batch {
            add(BufferId::OutputChunk, nb * t * p.query_dim as u64, BufferRole::Scratch);
        }
        add(BufferId::Output, b_all * t * p.query_dim as u64, BufferRole::Output);

        let base = Params {
            kv_stride: cache.map_or(p.source_len, |c| c.shape.capacity) as u32,
            ..attention_params(p, &mask_offsets)
        };
        let (kcache, vcache) = match cache {
            Some(_) => (BufferId::KeyCache, BufferId::ValueCache),
            None => (BufferId::KeyProj, BufferId::ValueProj),
        };
        let mut steps = Vec::new();
        let (qin, kin, vin, out) = if split_batch {
            (BufferId::QueryChunk, BufferId::KeyChunk, BufferId::ValueChunk, BufferId::OutputChunk)
        } else {
            (BufferId::Query, BufferId::Key, BufferId::Value, BufferId::Output)
        };
        let kin = if p.key_given { kin } else { vin };
        let copy = |src, src_offset, dst, dst_offset, bytes| {
            Step::Copy(CopySpec { label: "copy", src, src_offset, dst, dst_offset, bytes })
        };
        for b0 in (0..p.batch).step_by(chunking.batch_per_chunk) {
            let nbc = chunking.batch_per_chunk.min(p.batch - b0);
            let chunk = Params { b_base: b0 as u32, ..base };
            if split_batch {
                let (b0, nbc) = (b0 as u64, nbc as u64);
                let inputs =
                    [(BufferId::Query, qin, t * p.query_dim as u64), (BufferId::Value, vin, s * p.value_dim as u64)];
                for (src, dst, per_b) in inputs {
                    steps.push(copy(src, b0 * per_b * 4, dst, 0, nbc * per_b * 4));
                }
                if p.key_given {
                    let per_b = s * p.key_dim as u64;
                    steps.push(copy(BufferId::Key, b0 * per_b * 4, kin, 0, nbc * per_b * 4));
                }
            }
            let rows_t = nbc * p.target_len;
            let rows_s = nbc * s_in as usize;
            let mut packed = Vec::new();
            let mut project = |steps: &mut Vec<Step>, label, d, io: [BufferId; 2], rows| {
                matmul(MatmulCall { tuning: mm, limits, p, label, d, io, rows, base: chunk }, steps, &mut packed);
            };
            project(&mut steps, "project_query", Dense::Query, [qin, BufferId::QueryProj], rows_t);
            project(&mut steps, "project_key", Dense::Key, [kin, BufferId::KeyProj], rows_s);
            project(&mut steps, "project_value", Dense::Value, [vin, BufferId::ValueProj], rows_s);
            if p.use_gate {
                project(&mut steps, "project_gate", Dense::Gate, [qin, BufferId::GateProj], rows_t);
            }
            if let Some(c) = cache {
                // Append each sequence's new tokens' keys and values at its length.
                let token = c.shape.token_elems() * 4;
                // A cache with texture mirrors gets the same rows in its textures.
                let mirrors: &[(BufferId, BufferId)] = if c.texture_mirror {
                    &[
                        (BufferId::KeyProj, BufferId::KeyCacheTexture),
                        (BufferId::ValueProj, BufferId::ValueCacheTexture),
                    ]
                } else {
                    &[]
                };
                for (b, (&past, &new)) in c.past.iter().zip(&c.new).enumerate().filter(|(_, (_, n))| **n > 0) {
                    for &(src, dst) in
                        [(BufferId::KeyProj, kcache), (BufferId::ValueProj, vcache)].iter().chain(mirrors)
                    {
                        let (from, to) = ((b as u64) * t * token, (b * c.shape.capacity + past) as u64 * token);
                        steps.push(copy(src, from, dst, to, new as u64 * token));
                    }
                }
            }
            let (fused_kernel, split_kernel, reduce_kernel, qk_kernel, pv_kernel) = if f16 {
                (
                    Kernel::AttentionFusedF16,
                    Kernel::AttentionSplitF16,
                    Kernel::AttentionReduceF16,
                    Kernel::QkGroupedF16,
                    Kernel::PvGroupedF16,
                )
            } else {
                (
                    Kernel::AttentionFused,
                    Kernel::AttentionFused,
                    Kernel::AttentionReduce,
                    Kernel::QkGrouped,
                    Kernel::PvGrouped,
                )
            };
            // Where the attention reads K and V from textures, with the projected queries packed:
            // a cached call's texture mirrors (decode and block kernels), or an uncached block
            // call's projections, packed after they are computed.
            let texture_kernel = match mode {
                AttentionMode::Block => true,
                AttentionMode::Split { kernel, .. } => kernel == Kernel::AttentionDecode && !f16,
                _ => false,
            };
            let kv_textures = match cache {
                Some(c) if c.texture_mirror && texture_kernel && matrix_texture_fits(rows_t as u64, nq * h, limits) => {
                    Some([BufferId::KeyCacheTexture, BufferId::ValueCacheTexture])
                }
                None if mode == AttentionMode::Block && block_textures_fit(p, tuning, limits, nb) => {
                    Some([BufferId::KeyProjTexture, BufferId::ValueProjTexture])
                }
                _ => None,
            };
            // The projections packed for the attention (the matmuls' packed inputs are `packed`).
            let mut attention_packed = Vec::new();
            if kv_textures.is_some() {
                let mut projections =
                    vec![(BufferId::QueryProj, BufferId::QueryProjTexture, "pack_query_proj", nq * h, rows_t as u64)];
                if cache.is_none() {
                    projections.extend([
                        (BufferId::KeyProj, BufferId::KeyProjTexture, "pack_key_proj", nkv * h, rows_s as u64),
                        (BufferId::ValueProj, BufferId::ValueProjTexture, "pack_value_proj", nkv * h, rows_s as u64),
                    ]);
                }
                for (src, texture, label, cols, rows) in projections {
                    attention_packed.push(pack(&mut steps, label, [src, texture], cols, rows));
                }
            }
            let gate_or_v = if p.use_gate { BufferId::GateProj } else { vcache };
            let items = tiles(t * p.group_size() as u64, Kernel::AttentionFused.tile()[0] as u64);
            let groups = (nbc * p.num_kv_heads) as u32;
            let qkv = [BufferId::QueryProj, kcache, vcache, BufferId::Masks, gate_or_v];
            match mode {
                AttentionMode::Fused => steps.push(Step::Dispatch(Pass {
                    label: "attention_fused",
                    kernel: fused_kernel,
                    workgroups: [items, 1, groups],
                    params: chunk,
                    bindings: [&qkv[..], &[BufferId::AttnOut]].concat(),
                })),
                AttentionMode::Block => {
                    // The texture form the tuning picks (its subgroup variants where the device has
                    // subgroups) where the attention reads textures.
                    let (block_kernel, qkv) = match kv_textures {
                        None => (Kernel::AttentionBlock, qkv),
                        Some([k, v]) => {
                            let kernel = tuning.block_texture_kernel(&chunk);
                            (kernel, [BufferId::QueryProjTexture, k, v, qkv[3], qkv[4]])
                        }
                    };
                    // Whether the values hold a NaN or an infinity, so that the attention may skip
                    // its scan of the keys it does not visit (only there to find them). The words
                    // matter only where keys can be skipped (a causal mask or a window) and fully
                    // masked rows give zeros: without a skip the scan's ranges are empty, and under
                    // Keras' policy the kernels scan for the sums whatever the words say. There
                    // the values are checked, or, in a cached call (its values are in the cache),
                    // the words set to "unknown"; elsewhere no pass runs.
                    let skips = p.mask.causal.is_some() || p.mask.window.is_some();
                    if skips && p.masked_rows == MaskedRows::Zeros {
                        let check = cache.is_none();
                        let vec4s =
                            if check { (nbc * p.source_len * p.num_kv_heads * p.head_dim / 4) as u32 } else { 0 };
                        steps.push(Step::Dispatch(Pass {
                            label: "check_values",
                            kernel: Kernel::VFinite,
                            workgroups: [Kernel::V_FLAG_WORDS, 1, 1],
                            params: Params { m: vec4s, n: (!check) as u32, ..chunk },
                            bindings: vec![vcache, BufferId::VFlags],
                        }));
                    }
                    steps.push(Step::Dispatch(Pass {
                        label: "attention_block",
                        kernel: block_kernel,
                        workgroups: [tiles(t * p.group_size() as u64, block_kernel.tile()[0] as u64), 1, groups],
                        params: chunk,
                        bindings: [&qkv[..], &[BufferId::AttnOut, BufferId::VFlags]].concat(),
                    }))
                }
                AttentionMode::Split { split_keys, splits, kernel } => {
                    let params = Params { split_keys: split_keys as u32, ..chunk };
                    if kernel == Kernel::AttentionDecode && !f16 {
                        let decode_items = tiles(t * p.group_size() as u64, kernel.tile()[0] as u64);
                        let (kernel, q, k, v) = match kv_textures {
                            Some([k, v]) => (Kernel::AttentionDecodeTex, BufferId::QueryProjTexture, k, v),
                            None => (kernel, BufferId::QueryProj, kcache, vcache),
                        };
                        steps.push(Step::Dispatch(Pass {
                            label: "attention_split",
                            kernel,
                            workgroups: [decode_items, splits as u32, groups],
                            params,
                            bindings: vec![q, k, v, BufferId::Masks, BufferId::Partials],
                        }));
                    } else {
                        steps.push(Step::Dispatch(Pass {
                            label: "attention_split",
                            kernel: split_kernel,
                            workgroups: [items, splits as u32, groups],
                            params,
                            bindings: [&qkv[..], &[BufferId::Partials]].concat(),
                        }));
                    }
                    steps.push(Step::Dispatch(Pass {
                        label: "attention_reduce",
                        kernel: reduce_kernel,
                        workgroups: [items, 1, groups],
                        params,
                        bindings: vec![BufferId::Partials, gate_or_v, BufferId::AttnOut],
                    }));
                }
                AttentionMode::Unfused => {}
            }
            let rows = if fused { 0 } else { nbc * p.num_query_heads };
            for bu0 in (0..rows).step_by(chunking.rows_per_chunk) {
                let n = chunking.rows_per_chunk.min(rows - bu0);
                for t0 in (0..p.target_len).step_by(chunking.queries_per_chunk) {
                    let tc = chunking.queries_per_chunk.min(p.target_len - t0);
                    let params = Params { bu_base: bu0 as u32, t_base: t0 as u32, t_count: tc as u32, ..chunk };
                    let (n32, tc64) = (n as u32, tc as u64);
                    steps.push(Step::Dispatch(Pass {
                        label: "logits",
                        kernel: qk_kernel,
                        workgroups: tiled(qk_kernel, s, tc64, n32),
                        params,
                        bindings: vec![BufferId::QueryProj, kcache, BufferId::Probs],
                    }));
                    steps.push(Step::Dispatch(Pass {
                        label: "softmax",
                        kernel: tuning.softmax_kernel(),
                        workgroups: [tc as u32, n32, 1],
                        params,
                        bindings: vec![BufferId::Masks, BufferId::Probs],
                    }));
                    if p.return_scores && !scores_in_probs {
                        let first_row = (b0 * p.num_query_heads + bu0) as u64;
                        let at = (first_row * t + t0 as u64) * s * 4;
                        steps.push(copy(BufferId::Probs, 0, BufferId::Scores, at, n as u64 * tc64 * s * 4));
                    }
                    steps.push(Step::Dispatch(Pass {
                        label: "attend_values",
                        kernel: pv_kernel,
                        workgroups: tiled(pv_kernel, h, tc64, n32),
                        params,
                        bindings: vec![BufferId::Probs, vcache, gate_or_v, BufferId::AttnOut],
                    }));
                }
            }
            project(&mut steps, "project_output", Dense::Output, [BufferId::AttnOut, out], rows_t);
            for spec in packed.into_iter().chain(attention_packed) {
                if !textures.iter().any(|t: &BufferSpec| t.id == spec.id) {
                    textures.push(spec);
                }
            }
            if split_batch {
                let per_b = t * p.query_dim as u64 * 4;
                steps.push(copy(out, 0, BufferId::Output, b0 as u64 * per_b, nbc as u64 * per_b));
            }
        }

        buffers.extend(textures);
        let mut plan =
            Self { problem: p.clone(), buffers, steps, mask_offsets, chunking, tuning, cache: cache.cloned() };
        // A kernel kept as a texture is a buffer too only where a pass binds it (a call too tall
        // for the textures): the layer uploads it as its texture alone and makes the buffer from it
        // when a plan needs one.
        let bound = plan.bound();
        let textured: Vec<BufferId> = plan
            .buffers
            .iter()
            .filter_map(|b| match b.id {
                BufferId::KernelTexture(d) => Some(BufferId::Kernel(d)),
                _ => None,
            })
            .collect();
        plan.buffers.retain(|b| !textured.contains(&b.id) || bound.contains(&b.id));
        plan.check(limits)?;
        Ok(plan)
    }

    /// The steps of the attention core: after the last input projection, before the output
    /// projection (a cached call's appends, the packing of the projections, the attention passes,
    /// and under the textured tuning the packing of the output projection's input).
    /// `None` when the plan splits the batch (each chunk repeats the projections).
    pub fn attention_steps(&self) -> Option<std::ops::Range<usize>> {
        let mut outputs = self.steps.iter().enumerate().filter(|(_, s)| s.label() == "project_output");
        let (end, _) = outputs.next()?;
        if outputs.next().is_some() {
            return None;
        }
        let start = self.steps[..end].iter().rposition(|s| s.label().starts_with("project_"))? + 1;
        Some(start..end)
    }

    /// The buffers and textures some dispatch binds.
    fn bound(&self) -> std::collections::HashSet<BufferId> {
        self.passes().flat_map(|p| p.bindings.iter().copied()).collect()
    }

    /// The dispatches, in order.
    pub fn passes(&self) -> impl Iterator<Item = &Pass> {
        self.steps.iter().filter_map(|s| match s {
            Step::Dispatch(p) => Some(p),
            Step::Copy(_) => None,
        })
    }

    /// The spec of a buffer, if the plan has it.
    pub fn buffer(&self, id: BufferId) -> Option<&BufferSpec> {
        self.buffers.iter().find(|b| b.id == id)
    }

    /// The buffer that holds all the scores after the plan ran, when they were requested.
    pub fn scores_buffer(&self) -> Option<BufferId> {
        match (self.problem.return_scores, self.buffer(BufferId::Scores)) {
            (false, _) => None,
            (true, Some(_)) => Some(BufferId::Scores),
            (true, None) => Some(BufferId::Probs),
        }
    }

    /// Total bytes of the buffers with a role.
    pub fn bytes_of(&self, role: BufferRole) -> u64 {
        self.buffers.iter().filter(|b| b.role == role).map(|b| b.bytes).sum()
    }

    /// Floating-point operations of the forward pass (multiply-add = 2), for throughput figures.
    pub fn flops(&self) -> u64 {
        let p = &self.problem;
        let (b, t, s) = (p.batch as u64, p.target_len as u64, p.source_len as u64);
        // A cached call projects only its new tokens' keys and values.
        let s_in = if self.cache.is_some() { t } else { s };
        let heads = (p.num_query_heads * p.head_dim) as u64;
        let kv = (p.num_kv_heads * p.head_dim) as u64;
        let gate = if p.use_gate { 2 * b * t * p.query_dim as u64 * heads } else { 0 };
        let projections = 2 * b * t * p.query_dim as u64 * heads
            + 2 * b * s_in * (p.key_dim + p.value_dim) as u64 * kv
            + 2 * b * t * heads * p.query_dim as u64
            + gate;
        projections + 4 * b * t * s * heads
    }

    fn check(&self, limits: &Limits) -> Result<(), GqaError> {
        if let Some(cap) = self.tuning.loop_iteration_cap {
            for pass in self.passes() {
                let needed = pass.kernel.loop_iterations(&pass.params, self.tuning.subgroup_sizes);
                if needed > cap {
                    return Err(GqaError::LimitExceeded {
                        kernel: pass.label.to_string(),
                        limit: "loop_iteration_cap",
                        allowed: cap,
                        needed,
                        detail: format!(
                            "kernel {} would loop {needed} times per invocation; this adapter's driver (Mesa llvmpipe) \
                             stops loops after {cap}",
                            pass.kernel.name()
                        ),
                    });
                }
            }
        }
        let bound = self.bound();
        for buf in self.buffers.iter().filter(|b| b.texture.is_none()) {
            let mut checks = vec![("max_buffer_size", limits.max_buffer_size)];
            if bound.contains(&buf.id) {
                checks.push(("max_storage_buffer_binding_size", limits.max_storage_buffer_binding_size));
            }
            for (limit, allowed) in checks {
                if buf.bytes > allowed {
                    return Err(GqaError::LimitExceeded {
                        kernel: format!("buffer {}", buf.id),
                        limit,
                        allowed,
                        needed: buf.bytes,
                        detail: format!("{} elements of {} bytes", buf.elems, buf.element_bytes),
                    });
                }
            }
        }
        for pass in self.passes() {
            let k = pass.kernel;
            for (axis, count) in pass.workgroups.iter().enumerate() {
                if *count > limits.max_compute_workgroups_per_dimension {
                    return Err(GqaError::LimitExceeded {
                        kernel: pass.label.to_string(),
                        limit: "max_compute_workgroups_per_dimension",
                        allowed: limits.max_compute_workgroups_per_dimension as u64,
                        needed: *count as u64,
                        detail: format!("workgroups along {} of {:?}", ["x", "y", "z"][axis], pass.workgroups),
                    });
                }
            }
            let invocations: u32 = k.workgroup_size().iter().product();
            let checks = [
                ("max_compute_invocations_per_workgroup", limits.max_compute_invocations_per_workgroup, invocations),
                (
                    "max_compute_workgroup_storage_size",
                    limits.max_compute_workgroup_storage_size,
                    k.workgroup_memory_bytes(),
                ),
                (
                    "max_storage_buffers_per_shader_stage",
                    limits.max_storage_buffers_per_shader_stage,
                    k.storage_buffers(),
                ),
                (
                    "max_storage_textures_per_shader_stage",
                    limits.max_storage_textures_per_shader_stage,
                    k.storage_textures(),
                ),
            ];
            for (limit, allowed, needed) in checks {
                if needed > allowed {
                    return Err(GqaError::LimitExceeded {
                        kernel: pass.label.to_string(),
                        limit,
                        allowed: allowed as u64,
                        needed: needed as u64,
                        detail: format!("kernel {}", k.name()),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Workgroups covering an `x` by `y` output with `kernel`'s declared tile, `z` along z.
fn tiled(kernel: Kernel, x: u64, y: u64, z: u32) -> [u32; 3] {
    let [tx, ty] = kernel.tile();
    [tiles(x, tx as u64), tiles(y, ty as u64), z]
}

fn tiles(n: u64, tile: u64) -> u32 {
    n.div_ceil(tile).min(u32::MAX as u64) as u32
}

/// A dense sub-layer's weight as an `[in, out]` matrix: (rows, cols).
fn dense_matrix(p: &Problem, d: Dense) -> (u64, u64) {
    let (nq, nkv, h) = (p.num_query_heads as u64, p.num_kv_heads as u64, p.head_dim as u64);
    match d {
        Dense::Query | Dense::Gate => (p.query_dim as u64, nq * h),
        Dense::Key => (p.key_dim as u64, nkv * h),
        Dense::Value => (p.value_dim as u64, nkv * h),
        Dense::Output => (nq * h, p.query_dim as u64),
    }
}

/// One projection of a plan: `io[1] = io[0] · kernel(d) (+ bias) (sigmoid for the gate)` over
/// `rows` rows.
struct MatmulCall<'a> {
    tuning: Tuning,
    limits: &'a Limits,
    p: &'a Problem,
    label: &'static str,
    d: Dense,
    io: [BufferId; 2],
    rows: usize,
    base: Params,
}

/// The texture a textured matmul reads `input` from, and the pack pass's label.
fn input_texture(input: BufferId) -> (BufferId, &'static str) {
    match input {
        BufferId::Query | BufferId::QueryChunk => (BufferId::QueryTexture, "pack_query"),
        BufferId::Key | BufferId::KeyChunk => (BufferId::KeyTexture, "pack_key"),
        BufferId::Value | BufferId::ValueChunk => (BufferId::ValueTexture, "pack_value"),
        _ => (BufferId::AttnOutTexture, "pack_attention_output"),
    }
}

/// Pushes a projection's steps: the matmul, preceded for the texture kernels by the packing of its
/// input into a texture (once per input per batch chunk: `packed` lists the textures of this
/// chunk, with their specs).
fn matmul(c: MatmulCall<'_>, steps: &mut Vec<Step>, packed: &mut Vec<BufferSpec>) {
    let (p, d, rows) = (c.p, c.d, c.rows);
    let [input, out] = c.io;
    let (k, n) = dense_matrix(p, d);
    let kernel = match (c.tuning.precision, d) {
        (Precision::F32, _) => c.tuning.matmul_kernel(rows as u64, k, n, c.limits),
        (Precision::F16, Dense::Output) => Kernel::MatmulBiasF16ToF32,
        (Precision::F16, _) => Kernel::MatmulBiasF16,
    };
    let mut flags = 0;
    if p.use_bias {
        flags |= matmul_flags::BIAS;
    }
    if d == Dense::Gate {
        flags |= matmul_flags::SIGMOID;
    }
    let params = Params { m: rows as u32, n: n as u32, k: k as u32, matmul_flags: flags, ..c.base };
    let bias = if p.use_bias { BufferId::Bias(d) } else { BufferId::Kernel(d) };
    let (a, b) = if kernel.reads_operand_textures() {
        let (texture, label) = input_texture(input);
        if !packed.iter().any(|t| t.id == texture) {
            packed.push(pack(steps, label, [input, texture], k, rows as u64));
        }
        (texture, BufferId::KernelTexture(d))
    } else {
        (input, BufferId::Kernel(d))
    };
    steps.push(Step::Dispatch(Pass {
        label: c.label,
        kernel,
        workgroups: tiled(kernel, n, rows as u64, 1),
        params,
        bindings: vec![a, b, bias, out],
    }));
}

/// Whether the block attention of a plan without a KV cache reads Q, K and V from textures
/// ([`Kernel::AttentionBlockTex`]): under a tuning that reads textures ([`Tuning::reads_textures`]),
/// when the packed projections of a batch chunk of `nb` elements
/// (`Nq·H / 4` x `nb·T` and `Nkv·H / 4` x `nb·S` texels) fit `max_texture_dimension_2d` and a
/// storage texture is allowed per stage (for packing them).
fn block_textures_fit(p: &Problem, tuning: Tuning, limits: &Limits, nb: u64) -> bool {
    let (nq, nkv, h) = (p.num_query_heads as u64, p.num_kv_heads as u64, p.head_dim as u64);
    let (t, s) = (nb * p.target_len as u64, nb * p.source_len as u64);
    tuning.reads_textures()
        && h.is_multiple_of(4)
        && matrix_texture_fits(t, nq * h, limits)
        && matrix_texture_fits(s, nkv * h, limits)
}

/// Pushes the copy that packs `src`, a row-major `rows` x `cols` f32 matrix, into `texture` (one copy
/// command where the rows are a multiple of WebGPU's 256-byte copy row alignment, else one per row,
/// as the executor splits it); returns the texture's spec. A copy is the driver's own row copy: on
/// lavapipe 512 x 4096 f32 in 2.0 ms (one command) where a `Kernel::PackTexture` pass took 22 ms, 512
/// rows of 4080 in 3-4 ms with one command per row (encoding included), 16,384 rows of 1000 in 74
/// ms against the pass's 159 ms; GL llvmpipe likewise. The pass remains for a caller's buffer that
/// cannot be a copy source ([`Plan::packing_by_passes_from`]).
fn pack(steps: &mut Vec<Step>, label: &'static str, [src, texture]: [BufferId; 2], cols: u64, rows: u64) -> BufferSpec {
    let bytes = cols * rows * 4;
    steps.push(Step::Copy(CopySpec { label, src, src_offset: 0, dst: texture, dst_offset: 0, bytes }));
    texture_spec(texture, cols, rows, BufferRole::Scratch)
}

/// The spec of a `rows` x `cols` f32 matrix kept as an rgba32float texture.
fn texture_spec(id: BufferId, cols: u64, rows: u64, role: BufferRole) -> BufferSpec {
    let shape = TextureShape::new((cols / 4) as u32, rows as u32);
    BufferSpec { id, elems: cols * rows, element_bytes: 4, bytes: shape.bytes(), role, texture: Some(shape) }
}

/// The attention fields of [`Params`], shared by every pass of a problem.
fn attention_params(p: &Problem, offsets: &MaskOffsets) -> Params {
    let m = &p.mask;
    let mut flags = 0;
    let strides = m.attention.unwrap_or(crate::problem::BroadcastStrides { b: 0, h: 0, t: 0, s: 0 });
    if m.attention.is_some() {
        flags |= mask_flags::ATTENTION;
    }
    if m.query {
        flags |= mask_flags::QUERY;
    }
    if m.value {
        flags |= mask_flags::VALUE;
    }
    if m.key {
        flags |= mask_flags::KEY;
    }
    if m.causal.is_some() {
        flags |= mask_flags::CAUSAL;
    }
    if m.window.is_some() {
        flags |= mask_flags::WINDOW;
    }
    let (rate, scale, seed) = match p.dropout {
        Some(d) => (d.rate, 1.0 / (1.0 - d.rate), d.seed),
        None => (0.0, 1.0, 0),
    };
    Params {
        batch: p.batch as u32,
        t_len: p.target_len as u32,
        s_len: p.source_len as u32,
        nq: p.num_query_heads as u32,
        nkv: p.num_kv_heads as u32,
        head_dim: p.head_dim as u32,
        group: p.group_size() as u32,
        scale: p.scale() as f32,
        mask_flags: flags,
        causal_shift: m.query_shift.clamp(i32::MIN as i64, i32::MAX as i64) as i32,
        window: m.window.unwrap_or(0).min(i32::MAX as usize) as u32,
        am_stride_b: strides.b as u32,
        am_stride_h: strides.h as u32,
        am_stride_t: strides.t as u32,
        am_stride_s: strides.s as u32,
        am_offset: offsets.attention as u32,
        qm_offset: offsets.query as u32,
        vm_offset: offsets.value as u32,
        km_offset: offsets.key as u32,
        masked_rows: match p.masked_rows {
            MaskedRows::Zeros => 0,
            MaskedRows::KerasDefault => 1,
        },
        dropout_rate: rate,
        dropout_scale: scale,
        seed_lo: seed as u32,
        seed_hi: (seed >> 32) as u32,
        use_gate: p.use_gate as u32,
        t_count: p.target_len as u32,
        ..Params::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CallOptions, GqaConfig, Mask};

    /// Every padded row is an odd number of 64-byte lines (4 texels each), at most 7 texels longer
    /// than the matrix's row, and never shorter.
    #[test]
    fn texture_rows_span_an_odd_number_of_cache_lines() {
        assert_eq!([1, 4, 8, 256, 1024, 1027, 1029].map(row_texels), [4, 4, 12, 260, 1028, 1028, 1036]);
        for width in 1..2000u32 {
            let padded = row_texels(width);
            assert!(padded >= width && padded - width <= 7, "{width} -> {padded}");
            assert_eq!((padded / 4) % 2, 1, "{width} -> {padded}");
            assert_eq!(padded % 4, 0, "{width} -> {padded}");
        }
        let shape = TextureShape::new(1024, 3);
        assert_eq!((shape.width, shape.row_texels, shape.bytes()), (1024, 1028, 1028 * 3 * 16));
    }

    /// A packing copy out of a buffer that cannot be a copy source becomes the pack pass that fills
    /// the same texture; the other packings stay copies.
    #[test]
    fn packing_copies_become_passes_for_one_source() {
        let cfg = GqaConfig::new(16, 4, 2);
        let p = Problem::new(&cfg, &[2, 20, 64], &[2, 24, 128], None, &CallOptions::default()).unwrap();
        let plan = Plan::tuned(&p, &Limits::default(), Tuning::CPU).unwrap();
        let kind = |plan: &Plan, label: &str| match plan.steps.iter().find(|s| s.label() == label) {
            Some(Step::Copy(_)) => "copy",
            Some(Step::Dispatch(p)) if p.kernel == Kernel::PackTexture => "pass",
            _ => "none",
        };
        assert_eq!((kind(&plan, "pack_query"), kind(&plan, "pack_value")), ("copy", "copy"));
        let plan = plan.packing_by_passes_from(BufferId::Query);
        assert_eq!((kind(&plan, "pack_query"), kind(&plan, "pack_value")), ("pass", "copy"));
        let pass = plan.passes().find(|p| p.label == "pack_query").unwrap();
        assert_eq!(
            (pass.params.m, pass.params.k, pass.bindings.clone()),
            (40, 64, vec![BufferId::Query, BufferId::QueryTexture])
        );
        assert_eq!(pass.workgroups, tiled(Kernel::PackTexture, 64, 40, 1));
    }

    /// A matrix fits a texture only if its padded rows do: at a 8192-texel limit, 32,752 columns
    /// (8188 texels, already 4 more than a multiple of 8) fit and 32,768 (8192, padded to 8196) do
    /// not.
    #[test]
    fn texture_fit_counts_the_padded_row() {
        let limits = Limits { max_texture_dimension_2d: 8192, ..Limits::default() };
        assert!(matrix_texture_fits(16, 32_752, &limits));
        assert!(!matrix_texture_fits(16, 32_768, &limits));
    }

    fn problem(cfg: &GqaConfig, b: usize, t: usize, s: usize, opts: &CallOptions) -> Problem {
        Problem::new(cfg, &[b, t, 16], &[b, s, 12], None, opts).unwrap()
    }

    /// A cached call's plan for `new` tokens per sequence over a cache of `cap` tokens holding
    /// `past` each, with or without texture mirrors.
    fn cached_plan(
        past: usize,
        new: usize,
        cap: usize,
        mirror: bool,
        limits: &Limits,
        tuning: Tuning,
    ) -> Result<Plan, GqaError> {
        let cfg = GqaConfig::new(8, 8, 2);
        let shape = crate::CacheShape::new(&cfg, 2, cap).unwrap();
        let update = CacheUpdate::new(shape, &[past; 2], &[new; 2], new, None).unwrap().with_texture_mirror(mirror);
        let (problem, _) = update.problem(&cfg, 16, 12, None).unwrap();
        Plan::cached(&problem, &update, limits, tuning)
    }

    /// The block attention's value check (`check_values`, Kernel::VFinite): a real check of the
    /// chunk's projected values where keys can be skipped and fully masked rows give zeros,
    /// "unknown" (n = 1, nothing read) for such a cached call, no pass without a mask that skips or
    /// under Keras' policy (the words are not consulted there); its words bound by the attention.
    #[test]
    fn block_plans_check_the_values_only_where_the_attention_may_skip_keys() {
        let cfg = GqaConfig::new(8, 4, 2);
        let check_of = |plan: &Plan| {
            let i = plan.passes().position(|p| p.label == "check_values").expect("a check");
            let passes: Vec<_> = plan.passes().collect();
            let attention = passes[i + 1];
            assert!(attention.kernel.is_block_attention() && attention.bindings.last() == Some(&BufferId::VFlags));
            assert_eq!(passes[i].bindings, [BufferId::ValueProj, BufferId::VFlags]);
            (passes[i].params.m, passes[i].params.n)
        };
        let causal = CallOptions { use_causal_mask: true, ..Default::default() };
        let plan = Plan::tuned(&problem(&cfg, 2, 20, 50, &causal), &Limits::default(), Tuning::CPU).unwrap();
        // B·S·Nkv·H / 4 vec4s: 2 x 50 x 2 x 8 / 4.
        assert_eq!(check_of(&plan), (400, 0));
        assert_eq!(plan.buffer(BufferId::VFlags).unwrap().bytes, 4 * Kernel::V_FLAG_WORDS as u64);
        let windowed = GqaConfig { sliding_window: Some(8), ..cfg.clone() };
        let plan =
            Plan::tuned(&problem(&windowed, 2, 20, 50, &CallOptions::default()), &Limits::default(), Tuning::CPU)
                .unwrap();
        assert_eq!(check_of(&plan), (400, 0));
        for opts in [CallOptions::default(), CallOptions { masked_rows: MaskedRows::KerasDefault, ..causal.clone() }] {
            let plan = Plan::tuned(&problem(&cfg, 2, 20, 50, &opts), &Limits::default(), Tuning::CPU).unwrap();
            assert!(plan.passes().any(|p| p.kernel.is_block_attention()), "{opts:?}");
            assert!(plan.passes().all(|p| p.kernel != Kernel::VFinite), "{opts:?}");
        }
        // A uniform cached call is bottom-right causal: its words say "unknown".
        let plan = cached_plan(30, 20, 64, true, &Limits::default(), Tuning::CPU).unwrap();
        let i = plan.passes().position(|p| p.label == "check_values").expect("a check");
        assert_eq!(plan.passes().nth(i).map(|p| (p.params.m, p.params.n)), Some((0, 1)));
        // No block attention, no check.
        let gpu = Plan::tuned(&problem(&cfg, 2, 20, 50, &causal), &Limits::default(), Tuning::GPU).unwrap();
        assert!(gpu.passes().all(|p| p.kernel != Kernel::VFinite) && gpu.buffer(BufferId::VFlags).is_none());
    }

    #[test]
    fn cached_plans_append_whole_rows_to_the_texture_mirrors_and_read_them() {
        let limits = Limits::default();
        let row = 2 * 8 * 4; // Nkv·H f32 per token: one texel row of the mirror
        for (new, subgroups, want) in [
            (1, false, Kernel::AttentionDecodeTex),
            (20, false, Kernel::AttentionBlockTex),
            (20, true, Kernel::AttentionBlockTexSubgroup),
        ] {
            let tuning = Tuning { subgroups, ..Tuning::CPU };
            let plan = cached_plan(30, new, 64, true, &limits, tuning).unwrap();
            for id in [BufferId::KeyCacheTexture, BufferId::ValueCacheTexture] {
                let spec = plan.buffer(id).unwrap();
                assert_eq!((spec.texture, spec.role), (Some(TextureShape::new(4, 128)), BufferRole::Cache));
            }
            // Each sequence's new rows land at its length, in the buffers and the mirrors alike.
            let appends: Vec<&CopySpec> = plan
                .steps
                .iter()
                .filter_map(|st| match st {
                    Step::Copy(c) if c.dst == BufferId::KeyCacheTexture => Some(c),
                    _ => None,
                })
                .collect();
            assert_eq!(appends.len(), 2);
            for (b, c) in appends.iter().enumerate() {
                assert_eq!((c.src, c.bytes), (BufferId::KeyProj, (new * row) as u64));
                assert_eq!(c.dst_offset, ((b * 64 + 30) * row) as u64);
                assert_eq!(c.src_offset % 16, 0);
            }
            let attention = plan.passes().find(|p| p.label.starts_with("attention_")).unwrap();
            assert_eq!(attention.kernel, want, "{new} new tokens, subgroups {subgroups}");
            // The attention core, between the input projections and the output projection: the
            // appends (keys and values of 2 sequences, to the buffers and the mirrors), the packed
            // queries, the attention passes (the block kernel's after its value check, "unknown"
            // for a cached call), the packing of the output projection's input.
            let core: Vec<&str> = plan.steps[plan.attention_steps().unwrap()].iter().map(Step::label).collect();
            let n = core.len();
            assert!(core[..8].iter().all(|l| *l == "copy") && core[8] == "pack_query_proj", "{core:?}");
            let block = want.is_block_attention();
            assert_eq!(core[9] == "check_values", block, "{core:?}");
            assert!(core[9 + block as usize..n - 1].iter().all(|l| l.starts_with("attention_")), "{core:?}");
            assert_eq!(core[n - 1], "pack_attention_output");
            assert_eq!(
                attention.bindings[..3],
                [BufferId::QueryProjTexture, BufferId::KeyCacheTexture, BufferId::ValueCacheTexture]
            );
        }
        // Without mirrors: no texture, the buffers' kernels.
        let plan = cached_plan(30, 1, 64, false, &limits, Tuning::CPU).unwrap();
        assert!(plan.buffer(BufferId::KeyCacheTexture).is_none());
        assert!(plan.passes().any(|p| p.kernel == Kernel::AttentionDecode));
        // A mirror beyond the texture limit is an error naming it, not a silent fallback.
        let small = Limits { max_texture_dimension_2d: 100, ..limits };
        let err = cached_plan(30, 1, 64, true, &small, Tuning::CPU).unwrap_err();
        assert!(matches!(err, GqaError::LimitExceeded { limit: "max_texture_dimension_2d", .. }), "{err:?}");
    }

    #[test]
    fn textured_plans_pack_each_input_once_and_list_every_texture() {
        let mut cfg = GqaConfig::new(8, 4, 2);
        cfg.use_gate = true;
        let tuning = Tuning { matmul: crate::MatmulVariant::Textured, ..Tuning::CPU };
        let opts = CallOptions::default();
        // 2 x 40 query rows and 2 x 50 key/value rows: every projection textured, the gate reading
        // the packed query, the key projection the packed value (no key given).
        let plan = Plan::tuned(&problem(&cfg, 2, 40, 50, &opts), &Limits::default(), tuning).unwrap();
        // Packed by copies (None: not a pass).
        let kernel = |s: &Step| if let Step::Dispatch(p) = s { Some(p.kernel) } else { None };
        let labels: Vec<_> = plan.steps.iter().map(|s| (s.label(), kernel(s))).collect();
        // One 128 x 128 tile would hold each product: the 8-row textured kernel.
        let tex = Some(Kernel::MatmulBiasTexRows8);
        assert_eq!(
            labels[..6],
            [
                ("pack_query", None),
                ("project_query", tex),
                ("pack_value", None),
                ("project_key", tex),
                ("project_value", tex),
                ("project_gate", tex),
            ]
        );
        let shape = |id| plan.buffer(id).and_then(|b| b.texture);
        assert_eq!(shape(BufferId::QueryTexture), Some(TextureShape::new(4, 80)));
        assert_eq!(shape(BufferId::ValueTexture), Some(TextureShape::new(3, 100)));
        assert_eq!(shape(BufferId::KernelTexture(Dense::Key)), Some(TextureShape::new(4, 12)));
        assert_eq!(shape(BufferId::AttnOutTexture), Some(TextureShape::new(8, 80)));
        let weight_textures = plan.buffers.iter().filter(|b| b.texture.is_some() && b.role == BufferRole::Weight);
        assert_eq!(weight_textures.count(), 5, "every kernel, gate included");
        for d in Dense::ALL {
            assert!(plan.buffer(BufferId::Kernel(d)).is_none(), "{d:?}: kept as its texture alone");
            assert!(plan.buffer(BufferId::Bias(d)).is_some(), "{d:?}: biases stay buffers");
        }
        let pack = plan.steps.iter().find(|s| s.label() == "pack_attention_output");
        let copy = CopySpec {
            label: "pack_attention_output",
            src: BufferId::AttnOut,
            src_offset: 0,
            dst: BufferId::AttnOutTexture,
            dst_offset: 0,
            bytes: 32 * 80 * 4,
        };
        assert_eq!(pack, Some(&Step::Copy(copy)), "32 columns, 80 rows, copied");

        // One query row takes the rows kernel's texture form; its input is packed like the others.
        let step = Plan::tuned(&problem(&cfg, 1, 1, 50, &opts), &Limits::default(), tuning).unwrap();
        let q = step.passes().find(|p| p.label == "project_query").unwrap();
        assert_eq!(q.kernel, Kernel::MatmulBiasRows4Tex);
        assert_eq!(q.bindings[..2], [BufferId::QueryTexture, BufferId::KernelTexture(Dense::Query)]);
        assert_eq!(step.buffer(BufferId::QueryTexture).unwrap().texture, Some(TextureShape::new(4, 1)));
        assert!(step.buffer(BufferId::KernelTexture(Dense::Query)).is_some());

        // Textures beyond the device's limit: the buffer kernel, and no texture listed for it.
        let small = Limits { max_texture_dimension_2d: 60, ..Limits::default() };
        let plan = Plan::tuned(&problem(&cfg, 2, 40, 50, &opts), &small, tuning).unwrap();
        let kernel_of = |label| plan.passes().find(|p| p.label == label).unwrap().kernel;
        assert_eq!(kernel_of("project_query"), Kernel::MatmulBiasRb16, "80 rows > 60");
        assert_eq!(kernel_of("project_key"), Kernel::MatmulBiasRb16, "100 rows > 60");
        assert!(plan.buffer(BufferId::QueryTexture).is_none());
    }

    #[test]
    fn buffers_and_passes_follow_the_problem() {
        let mut cfg = GqaConfig::new(8, 4, 2);
        cfg.use_gate = true;
        let opts = CallOptions { return_attention_scores: true, ..Default::default() };
        let plan = Plan::new(&problem(&cfg, 2, 5, 70, &opts), &Limits::default()).unwrap();
        let elems = |id| plan.buffer(id).unwrap().elems;
        assert_eq!(elems(BufferId::Query), 2 * 5 * 16);
        assert_eq!(elems(BufferId::Kernel(Dense::Query)), 16 * 32);
        assert_eq!(elems(BufferId::Kernel(Dense::Key)), 12 * 16);
        assert_eq!(elems(BufferId::Bias(Dense::Output)), 16);
        assert_eq!(elems(BufferId::Probs), 2 * 4 * 5 * 70);
        assert_eq!(elems(BufferId::Masks), 1);
        assert!(plan.buffer(BufferId::Key).is_none(), "no key given: value is bound instead");
        assert_eq!(plan.buffer(BufferId::Probs).unwrap().role, BufferRole::Output);
        let passes: Vec<&Pass> = plan.passes().collect();
        let labels: Vec<_> = passes.iter().map(|p| p.label).collect();
        assert_eq!(
            labels,
            [
                "project_query",
                "project_key",
                "project_value",
                "project_gate",
                "logits",
                "softmax",
                "attend_values",
                "project_output"
            ]
        );
        let logits = passes[4];
        assert_eq!(logits.workgroups, [2, 1, 8], "S=70 needs two 64-wide tiles, B*Nq = 8");
        assert_eq!(passes[1].bindings[0], BufferId::Value);
        assert_eq!(plan.steps.len(), passes.len(), "nothing to split: no copies");
        let qkv = 2 * (10 * 16 * 32 + 2 * 140 * 12 * 16) + 2 * 10 * 16 * 32 + 2 * 10 * 32 * 16;
        assert_eq!(plan.flops(), (qkv + 2 * 2 * 2 * 4 * 5 * 70 * 8) as u64);
        // The five projections count 2 m n k each, and add up to the plan's projection FLOPs; the
        // attention's passes have no count of their own.
        let counted: Vec<_> = passes.iter().map(|p| p.flops()).collect();
        assert_eq!(counted[0], Some(2 * 10 * 16 * 32), "query: m = B T = 10, k = Dq = 16, n = Nq H = 32");
        assert!(counted[4..7].iter().all(Option::is_none), "{counted:?}");
        assert_eq!(counted.iter().flatten().sum::<u64>(), qkv as u64);
    }

    #[test]
    fn f16_plans_halve_the_weights_and_intermediates_only() {
        let mut cfg = GqaConfig::new(6, 4, 2);
        cfg.use_gate = true;
        let opts = CallOptions { return_attention_scores: true, ..Default::default() };
        let p = problem(&cfg, 2, 5, 7, &opts);
        let tuning = Tuning { precision: Precision::F16, ..Tuning::CPU };
        let plan = Plan::tuned(&p, &Limits::default(), tuning).unwrap();
        // f16 plans take the register-blocked matmuls over buffers: the f32 plan to compare with
        // does too (the textured one keeps no kernel buffers).
        let buffers = Tuning { matmul: crate::MatmulVariant::RegisterBlocked, ..Tuning::CPU };
        let f32_plan = Plan::tuned(&p, &Limits::default(), buffers).unwrap();
        assert_eq!(plan.buffers.len(), f32_plan.buffers.len());
        assert_eq!(plan.tuning.precision, Precision::F16);
        for (b, f) in plan.buffers.iter().zip(&f32_plan.buffers) {
            assert_eq!((b.id, b.elems), (f.id, f.elems));
            let want = if b.id.follows_precision() { (b.elems * 2).next_multiple_of(4) } else { b.elems * 4 };
            assert_eq!(b.bytes, want, "{}", b.id);
            assert_eq!(b.element_bytes, if b.id.follows_precision() { 2 } else { 4 }, "{}", b.id);
        }
        assert_eq!(plan.buffer(BufferId::QueryProj).unwrap().bytes, 2 * 5 * 24 * 2);
        let kernels: Vec<Kernel> = plan.passes().map(|p| p.kernel).collect();
        use Kernel::*;
        assert_eq!(
            kernels,
            [
                MatmulBiasF16,
                MatmulBiasF16,
                MatmulBiasF16,
                MatmulBiasF16,
                QkGroupedF16,
                SoftmaxMasked,
                PvGroupedF16,
                MatmulBiasF16ToF32
            ]
        );
        assert!(f32_plan.passes().all(|p| !p.kernel.needs_shader_f16()));
    }

    #[test]
    fn masks_are_packed_at_their_offsets() {
        let cfg = GqaConfig::new(8, 4, 2);
        let opts = CallOptions {
            attention_mask: Some(Mask::filled(vec![3, 4], true)),
            query_mask: Some(Mask::filled(vec![2, 3], false)),
            key_mask: Some(Mask::filled(vec![2, 4], true)),
            ..Default::default()
        };
        let p = problem(&cfg, 2, 3, 4, &opts);
        let off = MaskOffsets::of(&p);
        assert_eq!(off, MaskOffsets { attention: 0, query: 12, value: 18, key: 18, bits: 26 });
        let words = crate::pack_masks(&p, &opts);
        assert_eq!(words, vec![((1 << 12) - 1) | (0xff << 18)], "attention ones, query zeros, key ones");
        let plan = Plan::new(&p, &Limits::default()).unwrap();
        let params = &plan.passes().next().unwrap().params;
        assert_eq!((params.qm_offset, params.km_offset), (12, 18));
        assert_eq!(
            params.mask_flags,
            crate::params::mask_flags::ATTENTION | crate::params::mask_flags::QUERY | crate::params::mask_flags::KEY
        );
    }

    #[test]
    fn limits_are_named_when_exceeded() {
        let cfg = GqaConfig::new(8, 4, 2);
        let p = problem(&cfg, 1, 100, 100, &CallOptions::default());
        let tiny = Limits { max_storage_buffer_binding_size: 1024, ..Limits::default() };
        let err = Plan::new(&p, &tiny).unwrap_err();
        assert!(matches!(err, GqaError::LimitExceeded { limit: "max_storage_buffer_binding_size", .. }), "{err}");
        let one = Limits { max_compute_workgroups_per_dimension: 1, ..Limits::default() };
        let err = Plan::new(&p, &one).unwrap_err();
        assert!(err.to_string().contains("max_compute_workgroups_per_dimension is 1"), "{err}");
        let small_wg = Limits { max_compute_workgroup_storage_size: 4096, ..Limits::default() };
        let err = Plan::new(&p, &small_wg).unwrap_err();
        assert!(err.to_string().contains("max_compute_workgroup_storage_size"), "{err}");
        let few_inv = Limits { max_compute_invocations_per_workgroup: 128, ..Limits::default() };
        assert!(Plan::new(&p, &few_inv).is_err());
    }

    #[test]
    fn small_limits_split_the_batch_and_the_attention() {
        let cfg = GqaConfig::new(8, 4, 2);
        let opts = CallOptions { return_attention_scores: true, ..Default::default() };
        let p = problem(&cfg, 3, 100, 100, &opts);
        // One batch element's projected queries (100 x 32 floats) fit, two do not.
        let limits = Limits { max_storage_buffer_binding_size: 100 * 32 * 4 + 4, ..Limits::default() };
        let plan = Plan::new(&p, &limits).unwrap();
        assert_eq!(plan.chunking, Chunking { batch_per_chunk: 1, rows_per_chunk: 1, queries_per_chunk: 32 });
        assert_eq!(plan.scores_buffer(), Some(BufferId::Scores));
        assert_eq!(plan.buffer(BufferId::Scores).unwrap().elems, 3 * 4 * 100 * 100);
        // Every score row is copied out exactly once, and every output batch element.
        let copies: Vec<CopySpec> =
            plan.steps.iter().filter_map(|s| if let Step::Copy(c) = s { Some(*c) } else { None }).collect();
        let scores: u64 = copies.iter().filter(|c| c.dst == BufferId::Scores).map(|c| c.bytes).sum();
        assert_eq!(scores, 3 * 4 * 100 * 100 * 4);
        let outputs: u64 = copies.iter().filter(|c| c.dst == BufferId::Output).map(|c| c.bytes).sum();
        assert_eq!(outputs, 3 * 100 * 16 * 4);
        let softmax_rows: u32 = plan
            .passes()
            .filter(|p| p.kernel == Kernel::SoftmaxMasked)
            .map(|p| p.workgroups[0] * p.workgroups[1])
            .sum();
        assert_eq!(softmax_rows, 3 * 4 * 100);
        // Each batch chunk repeats the projections: no single attention core.
        assert_eq!(plan.attention_steps(), None);
        // Grids over the limit split the query rows too.
        let grid = Limits { max_compute_workgroups_per_dimension: 50, ..Limits::default() };
        let plan = Plan::new(&p, &grid).unwrap();
        assert!(plan.passes().all(|p| p.workgroups.iter().all(|w| *w <= 50)));
        assert_eq!(plan.chunking.queries_per_chunk, 50);
    }

    #[test]
    fn the_subgroup_softmax_only_when_the_tuning_allows() {
        let cfg = GqaConfig::new(8, 4, 2);
        let opts = CallOptions { return_attention_scores: true, ..Default::default() };
        let p = problem(&cfg, 2, 5, 70, &opts);
        let softmax = |tuning: Tuning| -> Vec<Kernel> {
            let plan = Plan::tuned(&p, &Limits::default(), tuning).unwrap();
            plan.passes().filter(|p| p.label == "softmax").map(|p| p.kernel).collect()
        };
        for base in [Tuning::CPU, Tuning::GPU] {
            assert!(!base.subgroups, "the baselines are the default");
            assert_eq!(softmax(base), [Kernel::SoftmaxMasked]);
            assert_eq!(softmax(Tuning { subgroups: true, ..base }), [Kernel::SoftmaxMaskedSubgroup]);
        }
        assert!(Kernel::SoftmaxMaskedSubgroup.needs_subgroups());
        assert_eq!(Kernel::ALL.iter().filter(|k| k.needs_subgroups()).count(), 5);
    }

    #[test]
    fn the_subgroup_attention_where_the_subgroup_sizes_fit_the_head() {
        let attention = |h: usize, t: usize, s: usize, tuning: Tuning| -> Kernel {
            let cfg = GqaConfig::new(h, 8, 2);
            let p = problem(&cfg, 1, t, s, &CallOptions::default());
            let plan = Plan::tuned(&p, &Limits::default(), tuning).unwrap();
            plan.passes().find(|p| p.label == "attention_block").unwrap().kernel
        };
        let cpu = |sizes: [u32; 2]| Tuning { subgroups: true, subgroup_sizes: sizes, ..Tuning::CPU };
        // lavapipe: 8 lanes, 4 columns each: heads up to 128.
        assert_eq!(attention(128, 40, 50, cpu([8, 8])), Kernel::AttentionSubgroup);
        assert_eq!(attention(132, 40, 50, cpu([8, 8])), Kernel::AttentionBlockTexSubgroup);
        assert_eq!(attention(256, 40, 50, cpu([16, 16])), Kernel::AttentionSubgroup);
        assert_eq!(attention(128, 40, 50, cpu([4, 32])), Kernel::AttentionBlockTexSubgroup);
        // Unknown sizes, sizes that are not powers of two or exceed the workgroup: the other form.
        for sizes in [[0, 0], [8, 128], [12, 12], [16, 8]] {
            assert_eq!(attention(64, 40, 50, cpu(sizes)), Kernel::AttentionBlockTexSubgroup, "{sizes:?}");
        }
        assert_eq!(attention(64, 40, 50, Tuning::CPU), Kernel::AttentionBlockTex);
        // Its loops within llvmpipe's cap at T = S = 8192 with 8 lanes, and past the cap beyond.
        let p = Params { s_len: 8192, head_dim: 128, ..Params::default() };
        assert!(Kernel::AttentionSubgroup.loop_iterations(&p, [8, 8]) <= 65_535);
        let far = Params { s_len: 40_000, ..p };
        assert!(Kernel::AttentionSubgroup.loop_iterations(&far, [8, 8]) > 65_535);
        assert_eq!(cpu([8, 8]).block_texture_kernel(&far), Kernel::AttentionBlockTexSubgroup);
        // The worst size from 4 to 64 when unknown.
        assert!(
            Kernel::AttentionSubgroup.loop_iterations(&p, [0, 0])
                >= Kernel::AttentionSubgroup.loop_iterations(&p, [8, 8])
        );
    }

    #[test]
    fn the_subgroup_matmul_only_in_place_of_the_textured_one() {
        let cfg = GqaConfig::new(8, 4, 2);
        let p = problem(&cfg, 2, 70, 50, &CallOptions::default());
        let kernel = |tuning: Tuning| -> Kernel {
            let plan = Plan::tuned(&p, &Limits::default(), tuning).unwrap();
            plan.passes().find(|p| p.label == "project_query").unwrap().kernel
        };
        assert_eq!(kernel(Tuning::CPU), Kernel::MatmulBiasTex);
        assert_eq!(kernel(Tuning { subgroups: true, ..Tuning::CPU }), Kernel::MatmulBiasTexSubgroup);
        assert_eq!(kernel(Tuning { subgroups: true, ..Tuning::GPU }), Kernel::MatmulBias);
        let buffers = Tuning { matmul: crate::MatmulVariant::RegisterBlocked, subgroups: true, ..Tuning::CPU };
        assert_eq!(kernel(buffers), Kernel::MatmulBiasRb16);
        assert!(
            Kernel::MatmulBiasTexSubgroup.needs_subgroups() && Kernel::MatmulBiasTexSubgroup.reads_operand_textures()
        );
        // By rows (B = 1, T rows; Nq·H = 256 output columns, two 128-column tiles): the rows-of-4
        // kernel up to 16, the 8-row kernel up to 64 (one 64-row tile), the 16-row one beyond; in
        // the subgroup form with subgroups, the texture form without.
        let cfg = GqaConfig::new(64, 4, 2);
        let subgroups = Tuning { subgroups: true, ..Tuning::CPU };
        for (t, with, without) in [
            (16, Kernel::MatmulBiasRows4Tex, Kernel::MatmulBiasRows4Tex),
            (17, Kernel::MatmulBiasTexSubgroupRows8, Kernel::MatmulBiasTexRows8),
            (64, Kernel::MatmulBiasTexSubgroupRows8, Kernel::MatmulBiasTexRows8),
            (65, Kernel::MatmulBiasTexSubgroup, Kernel::MatmulBiasTex),
        ] {
            let p = problem(&cfg, 1, t, 50, &CallOptions::default());
            let plan = Plan::tuned(&p, &Limits::default(), subgroups).unwrap();
            let pass = plan.passes().find(|p| p.label == "project_query").unwrap();
            assert_eq!(pass.kernel, with, "T = {t}");
            assert_eq!(pass.workgroups[1], t.div_ceil(pass.kernel.tile()[1] as usize) as u32, "T = {t}");
            let plan = Plan::tuned(&p, &Limits::default(), Tuning::CPU).unwrap();
            assert_eq!(plan.passes().find(|p| p.label == "project_query").unwrap().kernel, without, "T = {t}");
        }
        let rows8 = Kernel::MatmulBiasTexSubgroupRows8;
        assert!(rows8.needs_subgroups() && rows8.reads_operand_textures() && rows8.tile() == [128, 64]);
        // Where one 128 x 128 tile would hold the product, the 8-row kernel's two tiles.
        let limits = Limits::default();
        assert_eq!(subgroups.matmul_kernel(128, 512, 128, &limits), rows8);
        assert_eq!(subgroups.matmul_kernel(128, 512, 256, &limits), Kernel::MatmulBiasTexSubgroup);
        assert_eq!(subgroups.matmul_kernel(129, 512, 128, &limits), Kernel::MatmulBiasTexSubgroup);
        let (plain, rows8) = (Tuning::CPU, Kernel::MatmulBiasTexRows8);
        assert!(!rows8.needs_subgroups() && rows8.reads_operand_textures() && rows8.tile() == [128, 64]);
        assert_eq!(plain.matmul_kernel(64, 512, 4096, &limits), rows8);
        assert_eq!(plain.matmul_kernel(128, 512, 128, &limits), rows8);
        assert_eq!(plain.matmul_kernel(128, 512, 256, &limits), Kernel::MatmulBiasTex);
        // Over storage buffers (textures not chosen), neither 8-row kernel.
        let buffers = Tuning { matmul: crate::MatmulVariant::RegisterBlocked, ..Tuning::CPU };
        assert_eq!(buffers.matmul_kernel(64, 512, 4096, &limits), Kernel::MatmulBiasRb16);
    }
}
