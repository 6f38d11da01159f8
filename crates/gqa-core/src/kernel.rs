//! The kernels (one WGSL file each) with the workgroup shapes and memory the plan assumes.

/// A compute kernel of the unfused forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `C = A·B (+ bias) (sigmoid)`: 64x64 output tiles, 4x4 per invocation, K staged through
    /// workgroup memory in slices of 16. The portable default, for GPUs.
    MatmulBias,
    /// The same product register-blocked: 8x8 outputs per invocation, no workgroup memory or
    /// barriers. For CPU adapters (lavapipe, llvmpipe, WARP), where barriers are expensive.
    MatmulBiasRb,
    /// Register-blocked with 16x16 outputs per invocation and vec4 loads: for CPU adapters when the
    /// contracted and output sizes are multiples of 4.
    MatmulBiasRb16,
    /// The product for few rows (a decoding step's projections: a matrix-vector product bound by
    /// reading the weights): 4 rows x 4 adjacent columns per invocation, vec4 loads, each weight
    /// vec4 read once per 4 rows. Needs the contracted and output sizes multiples of 4.
    MatmulBiasRows4,
    /// Grouped, scaled logits `L[b,u,t,s] = Σ_h Q[b,t,u,h]·scale·K[b,s,u/R,h]`: 64x64 (t, s) tiles,
    /// 4x4 per invocation. Unmasked: masking happens in the softmax.
    QkGrouped,
    /// Masked softmax over each row of L, in place (Keras' replace-then-zero semantics, fully masked
    /// rows per the policy): one workgroup of 64 per (b, u, t) row.
    SoftmaxMasked,
    /// [`Kernel::SoftmaxMasked`] with its row reductions (max, any visible, sum) done by subgroup
    /// operations, combined across subgroups through one workgroup slot per subgroup: two barriers
    /// per row instead of fifteen. Correct for any subgroup size and layout. Needs the device's
    /// `SUBGROUP` feature ([`Kernel::needs_subgroups`]); plans use it only when
    /// [`Tuning::subgroups`](crate::Tuning::subgroups) says the device has it.
    SoftmaxMaskedSubgroup,
    /// `O[b,t,u,h] = Σ_s drop(P[b,u,t,s])·V[b,s,u/R,h] (·G)`: 64x64 (h, t) tiles, 4x4 per invocation.
    PvGrouped,
    /// Fused attention for calls without scores or dropout: logits, masks, online softmax and PV in
    /// one pass over K/V tiles in workgroup memory, the query heads of a kv group together; the
    /// scores are never stored. H <= 256.
    AttentionFused,
    /// Combines the partial states of [`Kernel::AttentionFused`] in split mode (flash-decoding: short
    /// queries over long sources, the keys split across workgroups).
    AttentionReduce,
    /// f16 projection ([`crate::Precision::F16`]): f32 input rounded to f16 as it is loaded, f16
    /// kernel and bias, f32 accumulation, f16 output. Register-blocked like [`Kernel::MatmulBiasRb`]
    /// (8x8 outputs per invocation, no workgroup memory), on every adapter.
    MatmulBiasF16,
    /// The f16 output projection: f16 attention output, kernel and bias, f32 accumulation, f32
    /// layer output. Register-blocked like [`Kernel::MatmulBiasF16`].
    MatmulBiasF16ToF32,
    /// [`Kernel::QkGrouped`] over f16 Q and K; f32 accumulation, f32 logits.
    QkGroupedF16,
    /// [`Kernel::PvGrouped`] over f32 probabilities and f16 V and gate; f32 accumulation, f16
    /// attention output.
    PvGroupedF16,
    /// [`Kernel::AttentionFused`] over f16 Q, K, V and gate (softmax and accumulation in f32), f16
    /// attention output.
    AttentionFusedF16,
    /// [`Kernel::AttentionFusedF16`] in split mode (flash-decoding): writes the f32 partial states
    /// for [`Kernel::AttentionReduceF16`].
    AttentionSplitF16,
    /// [`Kernel::AttentionReduce`] with an f16 gate and an f16 attention output.
    AttentionReduceF16,
    /// The split pass of flash-decoding for few items per kv group (T·R <= [`Kernel::DECODE_MAX_ITEMS`]):
    /// one workgroup per (b, kv group, split of [`Kernel::decode_split_keys`] keys); lanes over keys
    /// compute the logits of all items (each K row read once per 4 items) into workgroup memory, a
    /// workgroup softmax per item, then lanes over H columns accumulate p·V (each V row read once per
    /// 4 items). Writes the partial states of [`Kernel::AttentionFused`] in split mode, combined by
    /// [`Kernel::AttentionReduce`]. H a multiple of 4, at most 256.
    AttentionDecode,
    /// [`Kernel::AttentionDecode`] (the same file) reading Q, K and V from rgba32float textures (with
    /// `common/qkv_texture.wgsl` in place of `common/qkv_storage.wgsl`): a cached call's split pass on
    /// CPU adapters, over the KV cache's texture mirrors (`B·capacity` rows of `Nkv·H/4` texels, see
    /// [`crate::Tuning::keeps_cache_texture`]) and the projected queries packed into a texture (by a
    /// copy). A texel fetch is one gather there, a storage-buffer load a loop over the SIMD lanes.
    AttentionDecodeTex,
    /// Fused attention over all S keys for any number of queries, built like
    /// [`Kernel::AttentionDecode`] (no per-lane private arrays): one workgroup per (block of
    /// [`Kernel::BLOCK_ITEMS`] consecutive (query, head-in-group) items, b, kv group), the keys in
    /// chunks of [`Kernel::BLOCK_CHUNK_KEYS`] with an online softmax across chunks; lanes over keys
    /// for the logits (scores in workgroup memory), a workgroup softmax per item, then lanes over H
    /// columns (and key groups) whose 16 item accumulators persist across chunks. Writes the attention
    /// output like [`Kernel::AttentionFused`] (same bindings and semantics). f32, H a multiple of 4
    /// up to 256.
    AttentionBlock,
    /// [`Kernel::AttentionBlock`] (the same file) reading Q, K and V from rgba32float textures
    /// packed by copies after the projections (Q as `B·T` rows of `Nq·H/4` texels,
    /// K and V as `B·S` rows of `Nkv·H/4` texels): for CPU adapters, where a texel fetch is one
    /// gather and a storage-buffer load a loop over the SIMD lanes. Taken by plans whose tuning reads
    /// the projections' operands from textures ([`crate::MatmulVariant::Textured`]) where the
    /// textures fit `max_texture_dimension_2d`. Cached calls take it over the KV cache's texture
    /// mirrors (`B·capacity` rows, [`crate::CacheUpdate::texture_mirror`]) where the cache keeps
    /// them, else [`Kernel::AttentionBlock`] over its buffers.
    AttentionBlockTex,
    /// [`Kernel::AttentionBlockTex`] (the same file) whose phase 3 shares the probability loads
    /// across a subgroup (`common/block_lanes_subgroup.wgsl`: each lane loads one of the four vec4s
    /// of a key's probabilities and broadcasts it, where the subgroup's lanes share their key group,
    /// checked at run time; no subgroup size assumed). Taken in place of it when the tuning has
    /// [`crate::Tuning::subgroups`] and [`Kernel::AttentionSubgroup`] does not fit (subgroup sizes
    /// unknown, or too small for the head); compiled only where the device has `SUBGROUP`.
    AttentionBlockTexSubgroup,
    /// The block attention with each block of 8 items owned by one subgroup from start to end
    /// (`attention_subgroup.wgsl`): the same bindings (Q, K and V as textures) and semantics as
    /// [`Kernel::AttentionBlockTex`], with the softmax's maxima and sums taken by subgroup
    /// reductions and each key's probabilities passed from the lane that computed them to the lanes
    /// that own the output columns by `subgroupShuffle`: no workgroup memory, no barrier. Each
    /// workgroup takes [`Kernel::SUBGROUP_BLOCKS`] blocks of 8 items. Needs every subgroup whole
    /// and `H / 4` columns within 4 per lane of the smallest subgroup
    /// ([`Kernel::subgroup_attention_fits`]). Taken in place of
    /// [`Kernel::AttentionBlockTexSubgroup`] where it fits; compiled only where the device has
    /// `SUBGROUP`.
    AttentionSubgroup,
    /// [`Kernel::MatmulBiasRb16`] (the same file, 16x16 outputs per invocation, 64 named vec4
    /// accumulators) reading A and B from rgba32float textures instead of storage buffers (with
    /// `common/operands_texture.wgsl` in place of `common/operands_storage.wgsl`): for CPU
    /// adapters, where Mesa's llvmpipe turns every storage-buffer load into a loop over the SIMD
    /// lanes but a texel fetch into one gather (several times faster on lavapipe). A is the input
    /// packed into a texture (by a copy, or by [`Kernel::PackTexture`]), B is the weight's texture
    /// uploaded once. Needs k and n multiples of 4 and every texture within
    /// `max_texture_dimension_2d` ([`crate::MatmulVariant::texture_fits`]).
    MatmulBiasTex,
    /// [`Kernel::MatmulBiasTex`]'s blocks with A's rows shared across a subgroup
    /// (`matmul_bias_tex_subgroup.wgsl`, generated beside `matmul_bias_rb16.wgsl`): the 8 lanes of a
    /// row of the grid, which read the same 16 rows of A, fetch two rows each (one gather per 8 rows
    /// on a CPU driver, where 8 lanes fetching one texel cost a whole gather) and broadcast them.
    /// Only where every subgroup of the workgroup has exactly 8 lanes in one row of the grid,
    /// checked at run time; elsewhere the lanes fetch their own rows. Taken in place of
    /// [`Kernel::MatmulBiasTex`] when the tuning has [`crate::Tuning::subgroups`]; compiled only
    /// where the device has `SUBGROUP`.
    MatmulBiasTexSubgroup,
    /// [`Kernel::MatmulBiasTexSubgroup`] with 8 rows x 16 columns per invocation (64-row tiles, one
    /// gather of A per step; `matmul_bias_tex_subgroup_r8.wgsl`, from the same generator): taken in
    /// its place for products of 17 to [`Kernel::ROWS8_MAX_ROWS`] rows, which fill at most half of a
    /// 128-row tile (lavapipe: 0.62-0.66 of the time at 64 x 512 x 512), and for products that one
    /// 128 x 128 tile holds ([`crate::Tuning::matmul_kernel`]). Compiled only where the device has
    /// `SUBGROUP`.
    MatmulBiasTexSubgroupRows8,
    /// [`Kernel::MatmulBiasTex`] with 8 rows x 16 columns per invocation (64-row tiles;
    /// `matmul_bias_tex_r8.wgsl`, from the same generator): the portable counterpart of
    /// [`Kernel::MatmulBiasTexSubgroupRows8`], taken in place of [`Kernel::MatmulBiasTex`] by the
    /// same rule where the tuning has no subgroups (GL llvmpipe: 0.57-0.61 of the time at 64 x 512 x
    /// 512 and 64 x 4096 x 4096, 1.0 at 128 rows, 1.05 at 512).
    MatmulBiasTexRows8,
    /// Whether the projected values hold a NaN or an infinity (`v_finite.wgsl`): its
    /// [`Kernel::V_FLAG_WORDS`] workgroups each write one word of [`crate::BufferId::VFlags`], 0
    /// where their share of the values is finite. The block attention reads the words and, where all
    /// are 0 and fully masked rows give zeros, skips its scan of the keys outside `keys_seen`
    /// (causal and window skip), which only looks for non-finite values there (lavapipe, T=S=2048,
    /// causal: 0.91x of the attention's time without it). Params `m`: vec4s to check; `n`: 1 to write
    /// "unknown" (1) without reading (a cached call, whose values are in the cache).
    VFinite,
    /// [`Kernel::MatmulBiasRows4`] reading A and B from textures (the file with
    /// `common/operands_texture.wgsl` in place of `common/operands_storage.wgsl`): a decoding step's
    /// projections on CPU adapters, under [`crate::MatmulVariant::Textured`].
    MatmulBiasRows4Tex,
    /// Copies a row-major `m x k` f32 buffer (k a multiple of 4) into an rgba32float storage
    /// texture of `k / 4` x `m` texels, one texel column of 128 rows per invocation: the A operand
    /// of [`Kernel::MatmulBiasTex`] where the input cannot be a copy source (a caller's buffer made
    /// without `COPY_SRC`, [`crate::Plan::packing_by_passes_from`]); plans pack with copies.
    PackTexture,
}

impl Kernel {
    /// Every kernel.
    pub const ALL: [Kernel; 30] = [
        Kernel::MatmulBias,
        Kernel::MatmulBiasRb,
        Kernel::MatmulBiasRb16,
        Kernel::MatmulBiasRows4,
        Kernel::QkGrouped,
        Kernel::SoftmaxMasked,
        Kernel::SoftmaxMaskedSubgroup,
        Kernel::PvGrouped,
        Kernel::AttentionFused,
        Kernel::AttentionReduce,
        Kernel::MatmulBiasF16,
        Kernel::MatmulBiasF16ToF32,
        Kernel::QkGroupedF16,
        Kernel::PvGroupedF16,
        Kernel::AttentionFusedF16,
        Kernel::AttentionSplitF16,
        Kernel::AttentionReduceF16,
        Kernel::AttentionDecode,
        Kernel::AttentionBlock,
        Kernel::AttentionBlockTex,
        Kernel::MatmulBiasTex,
        Kernel::PackTexture,
        Kernel::MatmulBiasRows4Tex,
        Kernel::AttentionDecodeTex,
        Kernel::AttentionBlockTexSubgroup,
        Kernel::MatmulBiasTexSubgroup,
        Kernel::AttentionSubgroup,
        Kernel::MatmulBiasTexSubgroupRows8,
        Kernel::MatmulBiasTexRows8,
        Kernel::VFinite,
    ];

    /// Whether the kernel stores f16 (`enable f16;`): it needs the device feature `SHADER_F16`
    /// (WebGPU's `shader-f16`) and is compiled only where the device has it.
    pub fn needs_shader_f16(self) -> bool {
        matches!(
            self,
            Kernel::MatmulBiasF16
                | Kernel::MatmulBiasF16ToF32
                | Kernel::QkGroupedF16
                | Kernel::PvGroupedF16
                | Kernel::AttentionFusedF16
                | Kernel::AttentionSplitF16
                | Kernel::AttentionReduceF16
        )
    }

    /// Whether the kernel uses subgroup operations, and so compiles only on devices with the
    /// `SUBGROUP` feature (WGSL's `subgroups` extension).
    pub fn needs_subgroups(self) -> bool {
        matches!(
            self,
            Kernel::SoftmaxMaskedSubgroup
                | Kernel::AttentionBlockTexSubgroup
                | Kernel::MatmulBiasTexSubgroup
                | Kernel::AttentionSubgroup
                | Kernel::MatmulBiasTexSubgroupRows8
        )
    }

    /// Whether the kernel is a matmul (`C = A · B (+ bias)`, sizes in the pass's `m`, `n`, `k`), in any
    /// of its forms: the projections and the f16 variants.
    pub fn is_matmul(self) -> bool {
        matches!(
            self,
            Kernel::MatmulBias
                | Kernel::MatmulBiasRb
                | Kernel::MatmulBiasRb16
                | Kernel::MatmulBiasRows4
                | Kernel::MatmulBiasF16
                | Kernel::MatmulBiasF16ToF32
                | Kernel::MatmulBiasTex
                | Kernel::MatmulBiasTexSubgroup
                | Kernel::MatmulBiasTexSubgroupRows8
                | Kernel::MatmulBiasTexRows8
                | Kernel::MatmulBiasRows4Tex
        )
    }

    /// Whether the kernel is a matmul reading its operands from textures (A the packed input, B the
    /// weight's texture).
    pub fn reads_operand_textures(self) -> bool {
        matches!(
            self,
            Kernel::MatmulBiasTex
                | Kernel::MatmulBiasTexSubgroup
                | Kernel::MatmulBiasTexSubgroupRows8
                | Kernel::MatmulBiasTexRows8
                | Kernel::MatmulBiasRows4Tex
        )
    }

    /// Whether the kernel is one of the block attention's forms ([`Kernel::AttentionBlock`] and its
    /// texture and subgroup variants, [`Kernel::AttentionSubgroup`]).
    pub fn is_block_attention(self) -> bool {
        matches!(
            self,
            Kernel::AttentionBlock
                | Kernel::AttentionBlockTex
                | Kernel::AttentionBlockTexSubgroup
                | Kernel::AttentionSubgroup
        )
    }

    /// The kernel's WGSL file name under `shaders/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Kernel::MatmulBias => "matmul_bias.wgsl",
            Kernel::MatmulBiasRb => "matmul_bias_rb.wgsl",
            Kernel::MatmulBiasRb16 => "matmul_bias_rb16.wgsl",
            Kernel::MatmulBiasRows4 | Kernel::MatmulBiasRows4Tex => "matmul_bias_rows4.wgsl",
            Kernel::QkGrouped => "qk_grouped.wgsl",
            Kernel::SoftmaxMasked => "softmax_masked.wgsl",
            Kernel::SoftmaxMaskedSubgroup => "softmax_masked_subgroup.wgsl",
            Kernel::PvGrouped => "pv_grouped.wgsl",
            Kernel::AttentionFused => "attention_fused.wgsl",
            Kernel::AttentionReduce => "attention_reduce.wgsl",
            Kernel::MatmulBiasF16 => "matmul_bias_f16.wgsl",
            Kernel::MatmulBiasF16ToF32 => "matmul_bias_f16_to_f32.wgsl",
            Kernel::QkGroupedF16 => "qk_grouped.wgsl",
            Kernel::PvGroupedF16 => "pv_grouped.wgsl",
            Kernel::AttentionFusedF16 => "attention_fused.wgsl",
            Kernel::AttentionSplitF16 => "attention_fused.wgsl",
            Kernel::AttentionReduceF16 => "attention_reduce.wgsl",
            Kernel::AttentionDecode | Kernel::AttentionDecodeTex => "attention_decode.wgsl",
            Kernel::AttentionBlock | Kernel::AttentionBlockTex | Kernel::AttentionBlockTexSubgroup => {
                "attention_block.wgsl"
            }
            Kernel::MatmulBiasTex => "matmul_bias_rb16.wgsl",
            Kernel::MatmulBiasTexSubgroup => "matmul_bias_tex_subgroup.wgsl",
            Kernel::MatmulBiasTexSubgroupRows8 => "matmul_bias_tex_subgroup_r8.wgsl",
            Kernel::MatmulBiasTexRows8 => "matmul_bias_tex_r8.wgsl",
            Kernel::VFinite => "v_finite.wgsl",
            Kernel::AttentionSubgroup => "attention_subgroup.wgsl",
            Kernel::PackTexture => "pack_texture.wgsl",
        }
    }

    /// A short name for labels and logs.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::MatmulBias => "matmul_bias",
            Kernel::MatmulBiasRb => "matmul_bias_rb",
            Kernel::MatmulBiasRb16 => "matmul_bias_rb16",
            Kernel::MatmulBiasRows4 => "matmul_bias_rows4",
            Kernel::QkGrouped => "qk_grouped",
            Kernel::SoftmaxMasked => "softmax_masked",
            Kernel::SoftmaxMaskedSubgroup => "softmax_masked_subgroup",
            Kernel::PvGrouped => "pv_grouped",
            Kernel::AttentionFused => "attention_fused",
            Kernel::AttentionReduce => "attention_reduce",
            Kernel::MatmulBiasF16 => "matmul_bias_f16",
            Kernel::MatmulBiasF16ToF32 => "matmul_bias_f16_to_f32",
            Kernel::QkGroupedF16 => "qk_grouped_f16",
            Kernel::PvGroupedF16 => "pv_grouped_f16",
            Kernel::AttentionFusedF16 => "attention_fused_f16",
            Kernel::AttentionSplitF16 => "attention_split_f16",
            Kernel::AttentionReduceF16 => "attention_reduce_f16",
            Kernel::AttentionDecode => "attention_decode",
            Kernel::AttentionDecodeTex => "attention_decode_tex",
            Kernel::AttentionBlock => "attention_block",
            Kernel::AttentionBlockTex => "attention_block_tex",
            Kernel::AttentionBlockTexSubgroup => "attention_block_tex_subgroup",
            Kernel::MatmulBiasTex => "matmul_bias_tex",
            Kernel::MatmulBiasTexSubgroup => "matmul_bias_tex_subgroup",
            Kernel::MatmulBiasTexSubgroupRows8 => "matmul_bias_tex_subgroup_r8",
            Kernel::MatmulBiasTexRows8 => "matmul_bias_tex_r8",
            Kernel::VFinite => "v_finite",
            Kernel::AttentionSubgroup => "attention_subgroup",
            Kernel::PackTexture => "pack_texture",
            Kernel::MatmulBiasRows4Tex => "matmul_bias_rows4_tex",
        }
    }

    /// `@workgroup_size` declared in the WGSL (checked by a test against naga's reflection).
    pub fn workgroup_size(self) -> [u32; 3] {
        match self {
            Kernel::SoftmaxMasked
            | Kernel::SoftmaxMaskedSubgroup
            | Kernel::AttentionFused
            | Kernel::AttentionReduce
            | Kernel::AttentionFusedF16
            | Kernel::AttentionSplitF16
            | Kernel::AttentionReduceF16
            | Kernel::AttentionDecode
            | Kernel::AttentionDecodeTex
            | Kernel::AttentionBlock
            | Kernel::AttentionBlockTex
            | Kernel::AttentionBlockTexSubgroup
            | Kernel::AttentionSubgroup
            | Kernel::MatmulBiasRows4
            | Kernel::MatmulBiasRows4Tex
            | Kernel::MatmulBiasTexSubgroup
            | Kernel::MatmulBiasTexSubgroupRows8
            | Kernel::PackTexture => [64, 1, 1],
            Kernel::VFinite => [256, 1, 1],
            Kernel::MatmulBiasRb
            | Kernel::MatmulBiasRb16
            | Kernel::MatmulBiasTex
            | Kernel::MatmulBiasTexRows8
            | Kernel::MatmulBiasF16
            | Kernel::MatmulBiasF16ToF32 => [8, 8, 1],
            _ => [16, 16, 1],
        }
    }

    /// Bytes of workgroup memory the kernel declares.
    pub fn workgroup_memory_bytes(self) -> u32 {
        match self {
            Kernel::MatmulBias => 2 * 16 * 64 * 4,
            Kernel::MatmulBiasRb
            | Kernel::MatmulBiasRb16
            | Kernel::MatmulBiasRows4
            | Kernel::MatmulBiasRows4Tex
            | Kernel::MatmulBiasTex
            | Kernel::MatmulBiasTexRows8
            | Kernel::PackTexture
            | Kernel::MatmulBiasF16
            | Kernel::MatmulBiasF16ToF32
            | Kernel::AttentionSubgroup => 0,
            // The flag of subgroups that cannot share their rows, and its uniform copy.
            Kernel::MatmulBiasTexSubgroup | Kernel::MatmulBiasTexSubgroupRows8 => 2 * 4,
            // The workgroup's flag.
            Kernel::VFinite => 4,
            Kernel::SoftmaxMasked => 2 * 64 * 4,
            // Max, any-visible and sum slots for up to 64 subgroups.
            Kernel::SoftmaxMaskedSubgroup => 3 * 64 * 4,
            Kernel::QkGrouped | Kernel::PvGrouped | Kernel::AttentionReduce => 0,
            Kernel::QkGroupedF16 | Kernel::PvGroupedF16 | Kernel::AttentionReduceF16 => 0,
            // The f16 kernel stages its K/V tiles as f32 too.
            Kernel::AttentionFused | Kernel::AttentionFusedF16 | Kernel::AttentionSplitF16 => 2048 * 4,
            // Scores (items x split_keys <= 2048 floats), the key groups' partial sums (320 vec4s),
            // three 64-slot reduction arrays: 14,080 bytes, within WebGPU's default 16 KiB.
            Kernel::AttentionDecode | Kernel::AttentionDecodeTex => {
                Self::DECODE_SCORE_FLOATS as u32 * 4 + 320 * 16 + 3 * 64 * 4
            }
            // Scores (chunk keys x 16 items, also the key groups' sums at the end), the per-item
            // partials of phase 1's lanes (chunk keys / 4 lanes x 16 items), four 16-slot per item
            // arrays, the skipped keys' 64 column flags: 10,752 bytes.
            Kernel::AttentionBlock | Kernel::AttentionBlockTex | Kernel::AttentionBlockTexSubgroup => {
                let items_keys = (Self::BLOCK_CHUNK_KEYS * Self::BLOCK_ITEMS) as u32;
                items_keys * 4 + items_keys / 4 * 4 + 4 * 16 * 4 + 64 * 4
            }
        }
    }

    /// The largest head_dim the fused attention kernel holds in its private arrays.
    pub const FUSED_MAX_HEAD_DIM: usize = 256;

    /// Keys per split of the decode path (flash-decoding).
    pub const DECODE_SPLIT_KEYS: usize = 256;

    /// The longest query (T) the decode path takes.
    pub const DECODE_MAX_QUERIES: usize = 16;

    /// The most (query, head-in-group) items per kv group (T·R) that [`Kernel::AttentionDecode`]
    /// takes; more items go to [`Kernel::AttentionFused`] in split mode, whose 64 lanes are then
    /// better filled.
    pub const DECODE_MAX_ITEMS: usize = 16;

    /// Workgroups of [`Kernel::VFinite`], and words of [`crate::BufferId::VFlags`] (one each).
    pub const V_FLAG_WORDS: u32 = 16;

    /// The most rows of a product that [`Kernel::MatmulBiasTexSubgroupRows8`] and
    /// [`Kernel::MatmulBiasTexRows8`] take: one 64-row tile
    /// (from [`crate::tuning::FEW_ROWS`] + 1, where the rows-of-4 kernel stops).
    pub const ROWS8_MAX_ROWS: u64 = 64;

    /// Floats of [`Kernel::AttentionDecode`]'s score array (vec4s of 4 items each): the items rounded
    /// up to a multiple of 4, times the split keys, fit in it.
    pub const DECODE_SCORE_FLOATS: usize = 2048;

    /// Keys per split of [`Kernel::AttentionDecode`] for `items` = T·R items per kv group (1 to
    /// [`Kernel::DECODE_MAX_ITEMS`]): the score array divided by the items rounded up to a power of
    /// two, at most 512 (512 keys for up to 4 items, 256 for 5 to 8, 128 for 9 to 16).
    pub fn decode_split_keys(items: usize) -> usize {
        (Self::DECODE_SCORE_FLOATS / items.max(1).next_power_of_two()).min(512)
    }

    /// (query, head-in-group) items per workgroup of [`Kernel::AttentionBlock`].
    pub const BLOCK_ITEMS: usize = 16;

    /// Keys per chunk of [`Kernel::AttentionBlock`]'s online softmax.
    pub const BLOCK_CHUNK_KEYS: usize = 128;

    /// Blocks of 8 (query, head-in-group) items per workgroup of [`Kernel::AttentionSubgroup`]
    /// (its subgroups take them in turn).
    pub const SUBGROUP_BLOCKS: usize = 8;

    /// Whether [`Kernel::AttentionSubgroup`] runs heads of `head_dim` on a device whose subgroups
    /// have `subgroup_sizes` = [smallest, largest] lanes (wgpu's `AdapterInfo::subgroup_min_size`
    /// and `subgroup_max_size`; [0, 0] when unknown): H a multiple of 4 whose `H / 4` columns fit 4
    /// per lane of the smallest subgroup, and sizes that are powers of two from 4 to the
    /// workgroup's 64 invocations, so that every subgroup of a workgroup is whole.
    pub fn subgroup_attention_fits(head_dim: usize, subgroup_sizes: [u32; 2]) -> bool {
        let [lo, hi] = subgroup_sizes;
        let size_ok = |n: u32| n.is_power_of_two() && (4..=64).contains(&n);
        size_ok(lo) && size_ok(hi) && lo <= hi && head_dim.is_multiple_of(4) && head_dim / 4 <= 4 * lo as usize
    }

    /// The most loop iterations one invocation of the kernel runs for a pass's parameters, counting
    /// every iteration of every loop, the one that exits included (as Mesa's llvmpipe loop limiter
    /// does: one counter per invocation, shared by all its loops, never reset; measured by
    /// `tests/gpu_loop_cap.rs`). A kernel whose workgroups ran several tiles each would have to
    /// count them all. Loops with small constant trip counts are unrolled by the compilers and not
    /// counted. `subgroup_sizes` ([smallest, largest], [`crate::Tuning::subgroup_sizes`]) bounds
    /// [`Kernel::AttentionSubgroup`]'s, whose loops depend on the subgroup size (the worst size from
    /// 4 to 64 when unknown); the other kernels ignore it.
    pub fn loop_iterations(self, p: &crate::Params, subgroup_sizes: [u32; 2]) -> u64 {
        let (s, h, k) = (p.s_len as u64, p.head_dim as u64, p.k as u64);
        match self {
            // Per block the subgroup takes: per step of 4 keys per lane, the dot products over H / 4
            // vec4s, the mask buffers' loop (at most 32), the causal loop (4) and the p * V loop (at
            // most one per lane); the keys outside the causal or window range, once. The sizes from
            // the smallest to the largest, the worst.
            Kernel::AttentionSubgroup => {
                let [lo, hi] = subgroup_sizes;
                let (lo, hi) = if lo == 0 { (4, 64) } else { (lo.clamp(4, 64), hi.clamp(lo.clamp(4, 64), 64)) };
                let h4 = h.div_ceil(4).max(1);
                (lo.ilog2()..=hi.ilog2())
                    .map(|e| {
                        let sz = 1u64 << e;
                        let blocks = (Self::SUBGROUP_BLOCKS as u64 * sz).div_ceil(64);
                        let steps = s.div_ceil(4 * sz).max(1);
                        blocks * (steps * (h4 + 32 + 4 + sz + 3) + s + 4) + blocks + 8
                    })
                    .max()
                    .unwrap_or(0)
            }
            Kernel::MatmulBias => k.div_ceil(16) + 16,
            Kernel::MatmulBiasRb | Kernel::MatmulBiasF16 | Kernel::MatmulBiasF16ToF32 => k + 8,
            Kernel::MatmulBiasRb16
            | Kernel::MatmulBiasTex
            | Kernel::MatmulBiasTexSubgroup
            | Kernel::MatmulBiasTexSubgroupRows8
            | Kernel::MatmulBiasTexRows8 => k.div_ceil(4) + 64,
            Kernel::PackTexture => 128,
            Kernel::VFinite => (p.m as u64).div_ceil(256 * Self::V_FLAG_WORDS as u64),
            Kernel::MatmulBiasRows4 | Kernel::MatmulBiasRows4Tex => k.div_ceil(4) + 4,
            Kernel::QkGrouped | Kernel::QkGroupedF16 => h + 16,
            Kernel::SoftmaxMasked => 3 * s.div_ceil(64) + 12,
            // The three strided passes, and two walks over at most 64 subgroup slots.
            Kernel::SoftmaxMaskedSubgroup => 3 * s.div_ceil(64) + 2 * 64,
            Kernel::PvGrouped | Kernel::PvGroupedF16 => s + 16,
            // Per key: the dot product and the PV update over H / 4 vec4s (and the V sum under
            // Keras' default-call policy), the tile loops, the staging loops; plus the start and the
            // end over H. In split mode only `split_keys` keys.
            Kernel::AttentionFused | Kernel::AttentionFusedF16 | Kernel::AttentionSplitF16 => {
                let keys = if p.split_keys > 0 { (p.split_keys as u64).min(s) } else { s };
                let vsum = if p.masked_rows == 1 { keys * h.div_ceil(4) } else { 0 };
                2 * keys * h.div_ceil(4) + vsum + 4 * keys + 4 * h + 64
            }
            // Phase 1: per group of 4 keys of the lane, per block of 4 items, H / 4 vec4s; phase 2: two walks over
            // the item's keys split between at least 4 lanes and two over at most 64 slots; phase 3:
            // per block of 4 items the lane's keys and two combines over the key groups (at most
            // 64 each); the end.
            Kernel::AttentionDecode | Kernel::AttentionDecodeTex => {
                let keys = (p.split_keys as u64).min(s).max(1);
                let items = (p.t_len as u64 * p.group as u64).max(1);
                let blocks = items.div_ceil(4);
                let h4 = h.div_ceil(4).max(1);
                let segs = 64 / items.next_power_of_two().min(64);
                let kgroups = (64 / h4.div_ceil(2)).max(1);
                let phase1 = keys.div_ceil(4).div_ceil(64) * (1 + blocks * (1 + h4));
                let phase2 = 2 * keys.div_ceil(segs) + 2 * segs + 4;
                let phase3 = blocks * (keys.div_ceil(kgroups) + 2 * kgroups + 2);
                phase1 + phase2 + phase3 + 64 + 8
            }
            // Per chunk: phase 1 (two (keys, items) pairs per lane at most, H / 4 vec4s each), phase 2 (two
            // walks over a quarter of the chunk's keys, three over 4 slots), phase 3 (the lane's keys of
            // the chunk, lanes over pairs of vec4 columns); the end: eight combines over the key groups
            // (at most 64); the keys the chunk loop skips, once (two walks over the lane's share).
            Kernel::AttentionBlock | Kernel::AttentionBlockTex | Kernel::AttentionBlockTexSubgroup => {
                let chunk = Self::BLOCK_CHUNK_KEYS as u64;
                let chunks = s.div_ceil(chunk).max(1);
                let h4 = h.div_ceil(4).max(1);
                let kgroups = (64 / h4.div_ceil(2)).max(1);
                let phase1 = 2 * (1 + h4) + 2;
                let phase2 = 2 * chunk.div_ceil(4) + 3 * 4 + 4;
                let phase3 = chunk.div_ceil(kgroups) + 2;
                let skipped = s.div_ceil(kgroups) + 4;
                chunks * (phase1 + phase2 + phase3 + 2) + skipped + 8 * (kgroups + 2) + 32
            }
            Kernel::AttentionReduce | Kernel::AttentionReduceF16 => {
                let splits = s.div_ceil((p.split_keys as u64).max(1));
                (splits + 1) * (h + 2) + 64
            }
        }
    }

    /// Output elements per workgroup along (x, y): the plan's grids are computed from these.
    pub fn tile(self) -> [u32; 2] {
        match self {
            Kernel::SoftmaxMasked | Kernel::SoftmaxMaskedSubgroup => [1, 1],
            Kernel::AttentionFused
            | Kernel::AttentionReduce
            | Kernel::AttentionFusedF16
            | Kernel::AttentionSplitF16
            | Kernel::AttentionReduceF16 => [64, 1],
            // All the items of a kv group (at most 16) in one workgroup.
            Kernel::AttentionDecode | Kernel::AttentionDecodeTex => [Self::DECODE_MAX_ITEMS as u32, 1],
            Kernel::AttentionBlock | Kernel::AttentionBlockTex | Kernel::AttentionBlockTexSubgroup => {
                [Self::BLOCK_ITEMS as u32, 1]
            }
            Kernel::AttentionSubgroup => [8 * Self::SUBGROUP_BLOCKS as u32, 1],
            Kernel::MatmulBiasRb16 | Kernel::MatmulBiasTex | Kernel::MatmulBiasTexSubgroup => [128, 128],
            Kernel::MatmulBiasTexSubgroupRows8 | Kernel::MatmulBiasTexRows8 => [128, 64],
            // One texel (4 columns) per invocation, over 128 rows (the matmuls' row tile).
            Kernel::PackTexture => [256, 128],
            // 64 invocations of 4 columns, 4 rows each.
            Kernel::MatmulBiasRows4 | Kernel::MatmulBiasRows4Tex => [256, 4],
            _ => [64, 64],
        }
    }

    /// What the kernel binds at bindings 1.. (after the params uniform at binding 0).
    pub fn bindings(self) -> &'static [Access] {
        use Access::*;
        match self {
            // A, B (textures), bias, C.
            Kernel::MatmulBiasTex
            | Kernel::MatmulBiasTexSubgroup
            | Kernel::MatmulBiasTexSubgroupRows8
            | Kernel::MatmulBiasTexRows8
            | Kernel::MatmulBiasRows4Tex => &[Texture, Texture, Read, ReadWrite],
            // The f32 source, the texture written.
            Kernel::PackTexture => &[Read, TextureWrite],
            // Q, K, V (textures), masks, gate, output, Kernel::VFinite's words.
            Kernel::AttentionBlockTex | Kernel::AttentionBlockTexSubgroup | Kernel::AttentionSubgroup => {
                &[Texture, Texture, Texture, Read, Read, ReadWrite, Read]
            }
            // Q, K, V, masks, gate, output, Kernel::VFinite's words.
            Kernel::AttentionBlock => &[Read, Read, Read, Read, Read, ReadWrite, Read],
            // The projected values, the words written.
            Kernel::VFinite => &[Read, ReadWrite],
            Kernel::MatmulBias
            | Kernel::MatmulBiasRb
            | Kernel::MatmulBiasRb16
            | Kernel::MatmulBiasRows4
            | Kernel::MatmulBiasF16
            | Kernel::MatmulBiasF16ToF32 => &[Read, Read, Read, ReadWrite],
            Kernel::QkGrouped | Kernel::QkGroupedF16 => &[Read, Read, ReadWrite],
            Kernel::SoftmaxMasked | Kernel::SoftmaxMaskedSubgroup => &[Read, ReadWrite],
            Kernel::PvGrouped | Kernel::PvGroupedF16 => &[Read, Read, Read, ReadWrite],
            Kernel::AttentionFused | Kernel::AttentionFusedF16 | Kernel::AttentionSplitF16 => {
                &[Read, Read, Read, Read, Read, ReadWrite]
            }
            Kernel::AttentionReduce | Kernel::AttentionReduceF16 => &[Read, Read, ReadWrite],
            // Q, K, V, masks, partials.
            Kernel::AttentionDecode => &[Read, Read, Read, Read, ReadWrite],
            // Q, K, V (textures), masks, partials.
            Kernel::AttentionDecodeTex => &[Texture, Texture, Texture, Read, ReadWrite],
        }
    }

    /// How many storage buffers the kernel binds (what `max_storage_buffers_per_shader_stage`
    /// limits).
    pub fn storage_buffers(self) -> u32 {
        self.bindings().iter().filter(|a| a.is_storage_buffer()).count() as u32
    }

    /// How many storage textures the kernel binds, read or written (what
    /// `max_storage_textures_per_shader_stage` limits).
    pub fn storage_textures(self) -> u32 {
        self.bindings().iter().filter(|a| a.is_storage_texture()).count() as u32
    }
}

/// How a kernel accesses one of its bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A storage buffer, `var<storage, read>`.
    Read,
    /// A storage buffer, `var<storage, read_write>`.
    ReadWrite,
    /// A read-only `texture_storage_2d<rgba32float, read>`, read with `textureLoad`. A storage
    /// texture rather than a sampled one: llvmpipe's image loads skip the sampler's per-lane mip
    /// level and clamp arithmetic (about a third of the instructions per fetch).
    Texture,
    /// A write-only `texture_storage_2d<rgba32float, write>`.
    TextureWrite,
}

impl Access {
    /// Whether the binding is a storage buffer.
    pub fn is_storage_buffer(self) -> bool {
        matches!(self, Access::Read | Access::ReadWrite)
    }

    /// Whether the binding is a storage texture (read-only or write-only).
    pub fn is_storage_texture(self) -> bool {
        matches!(self, Access::Texture | Access::TextureWrite)
    }
}
