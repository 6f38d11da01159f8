//! Which of the declared kernel variants a plan uses: the choice is made per adapter (by gqa-wgpu
//! from the adapter's type) and recorded in the plan.

use crate::kernel::Kernel;
use crate::kv_cache::CacheShape;
use crate::limits::Limits;

/// The projection matmul's variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatmulVariant {
    /// Workgroup-memory tiles ([`Kernel::MatmulBias`]): the portable default, for GPUs.
    #[default]
    Tiled,
    /// Register blocking without workgroup memory: for CPU adapters. 16x16 outputs per invocation
    /// with vec4 loads ([`Kernel::MatmulBiasRb16`]) when the contracted and output sizes are multiples
    /// of 4, else 8x8 with scalar loads ([`Kernel::MatmulBiasRb`]).
    RegisterBlocked,
    /// [`MatmulVariant::RegisterBlocked`] reading both operands from textures
    /// ([`Kernel::MatmulBiasTex`]; A packed into a texture by a copy, the weights kept as textures
    /// too): for CPU adapters, where texel fetches are gathers and storage-buffer loads are
    /// per-lane loops. Products that do not fit ([`MatmulVariant::texture_fits`]) run as
    /// [`MatmulVariant::RegisterBlocked`].
    Textured,
}

/// Products of at most this many rows (a decoding step's B * T new tokens) take
/// [`Kernel::MatmulBiasRows4`] (its texture form [`Kernel::MatmulBiasRows4Tex`] under
/// [`MatmulVariant::Textured`]) when the sizes are multiples of 4: the tiles of the others would
/// compute mostly clamped rows (64 or 128 rows per tile for 1 real one).
pub const FEW_ROWS: u64 = 16;

impl MatmulVariant {
    /// The kernel that implements it for an `m` x `k` by `k` x `n` product on a device with
    /// `limits`.
    pub fn kernel(self, m: u64, k: u64, n: u64, limits: &Limits) -> Kernel {
        let vec4 = k.is_multiple_of(4) && n.is_multiple_of(4);
        if m <= FEW_ROWS && vec4 {
            return match self {
                MatmulVariant::Textured if Self::texture_fits(m, k, n, limits) => Kernel::MatmulBiasRows4Tex,
                _ => Kernel::MatmulBiasRows4,
            };
        }
        match self {
            MatmulVariant::Tiled => Kernel::MatmulBias,
            MatmulVariant::Textured if Self::texture_fits(m, k, n, limits) => Kernel::MatmulBiasTex,
            MatmulVariant::RegisterBlocked | MatmulVariant::Textured if vec4 => Kernel::MatmulBiasRb16,
            MatmulVariant::RegisterBlocked | MatmulVariant::Textured => Kernel::MatmulBiasRb,
        }
    }

    /// Whether an `m` x `k` by `k` x `n` product can read its operands from rgba32float textures:
    /// the weight ([`MatmulVariant::weight_texture_fits`]) and A (`k / 4` texels wide, `m` high)
    /// within `max_texture_dimension_2d`, and a storage texture allowed per stage (for packing A).
    pub fn texture_fits(m: u64, k: u64, n: u64, limits: &Limits) -> bool {
        Self::weight_texture_fits(k, n, limits) && matrix_texture_fits(m, k, limits)
    }

    /// Whether a `k` x `n` weight can be kept as an rgba32float texture of `n / 4` x `k` texels
    /// (`n` and `k` multiples of 4, both sides within `max_texture_dimension_2d`): what a layer
    /// decides once, when it uploads its weights.
    pub fn weight_texture_fits(k: u64, n: u64, limits: &Limits) -> bool {
        k.is_multiple_of(4) && matrix_texture_fits(k, n, limits)
    }
}

/// Whether a row-major `rows` x `cols` f32 matrix fits one rgba32float texture of `cols / 4` x
/// `rows` texels that the kernels can bind: `cols` a multiple of 4, neither side empty, both within
/// `max_texture_dimension_2d` (the width as allocated, padded by [`crate::plan::row_texels`]), and
/// as many storage textures per stage as the kernel that binds the most
/// ([`texture_bindings_needed`]). The weights, the packed operands (the projections' inputs, the
/// projected Q, K and V of the textured block attention) and the KV
/// cache's mirrors all ask this, the weights and mirrors with further conditions of their own.
pub(crate) fn matrix_texture_fits(rows: u64, cols: u64, limits: &Limits) -> bool {
    let max = limits.max_texture_dimension_2d as u64;
    cols.is_multiple_of(4)
        && cols >= 4
        && cols / 4 <= max
        && crate::plan::row_texels((cols / 4) as u32) as u64 <= max
        && rows >= 1
        && rows <= max
        && limits.max_storage_textures_per_shader_stage >= texture_bindings_needed()
}

/// The most storage textures one kernel binds (the textured attention's Q, K and V).
fn texture_bindings_needed() -> u32 {
    Kernel::ALL.iter().map(|k| k.storage_textures()).max().unwrap_or(0)
}

/// Whether the keys (or values) of a KV cache of `shape` fit one rgba32float texture of `Nkv·H / 4`
/// x `B·capacity` texels: `H` a multiple of 4 and both sides within `max_texture_dimension_2d`.
pub fn cache_texture_fits(shape: &CacheShape, limits: &Limits) -> bool {
    shape.head_dim.is_multiple_of(4)
        && matrix_texture_fits((shape.batch * shape.capacity) as u64, shape.token_elems(), limits)
}

/// The storage type of the weights and intermediates (accumulation is f32 in every kernel either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Precision {
    /// Everything in f32: the default.
    #[default]
    F32,
    /// Keras' `mixed_float16`: weights converted to f16 once on upload (the host keeps f32), inputs
    /// rounded to f16 as they are loaded, projected Q/K/V/gate and the attention output stored in f16;
    /// every product accumulated in f32, softmax and scores in f32, the layer output in f32. Needs
    /// the device feature `SHADER_F16`; where it is missing the f32 path runs instead.
    F16,
}

impl Precision {
    /// The precision Keras computes in under a dtype policy: [`Precision::F16`] for
    /// `mixed_float16` and `float16`, [`Precision::F32`] for anything else (`float32`,
    /// `mixed_bfloat16`, ...: bfloat16 has no WGSL type, so it runs in f32).
    pub fn for_dtype_policy(policy: &str) -> Self {
        match policy {
            "mixed_float16" | "float16" => Precision::F16,
            _ => Precision::F32,
        }
    }

    /// Bytes of one stored element of a weight or an intermediate.
    pub fn element_bytes(self) -> u64 {
        match self {
            Precision::F32 => 4,
            Precision::F16 => 2,
        }
    }
}

/// The variants a plan uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// The projection matmul.
    pub matmul: MatmulVariant,
    /// Use the fused attention kernel where it applies (no scores requested, no dropout,
    /// H <= 256, and the device offers 6 storage buffers per stage and 8 KiB of workgroup memory);
    /// otherwise logits, softmax and PV run as separate passes.
    pub fused_attention: bool,
    /// Use flash-decoding (the fused kernel split over key ranges, then a reduce) for short queries
    /// (T <= 16) over long sources (S >= 512; any S when `fused_attention` is off), under the same
    /// conditions as the fused kernel.
    pub split_decode: bool,
    /// In the split path, use [`Kernel::AttentionDecode`] (lanes over keys, then over H) for at most
    /// [`Kernel::DECODE_MAX_ITEMS`] (query, head-in-group) items per kv group, instead of the fused
    /// kernel in split mode (one lane per item). f32 plans only. On in [`Tuning::CPU`] and
    /// [`Tuning::GPU`]; off only to compare.
    pub decode_kernel: bool,
    /// Use [`Kernel::AttentionBlock`] (blocks of 16 items, lanes over keys then over H, an online
    /// softmax over key chunks) for the whole attention of f32 plans without scores or dropout,
    /// where it applies, instead of [`Kernel::AttentionFused`] or the separate passes. Short queries
    /// still take the split path when [`Tuning::split_decode`] picks it. On in [`Tuning::CPU`]
    /// (faster than the separate passes on lavapipe), off in [`Tuning::GPU`]
    /// (unmeasured there).
    pub block_attention: bool,
    /// The most loop iterations one invocation may run, where the driver stops loops early: Mesa's
    /// llvmpipe (lavapipe, GL llvmpipe) ends any loop after 65,535 iterations per invocation
    /// (counted over all its entries), silently. Plans keep every kernel under it, picking the
    /// variant that fits, or fail with an error naming it.
    pub loop_iteration_cap: Option<u64>,
    /// Storage precision of the weights and intermediates ([`Precision::F32`] unless a layer asks
    /// for f16 and the device has `SHADER_F16`: the plan records what actually runs). In f16 the
    /// projections always use the register-blocked f16 matmuls, whatever [`Tuning::matmul`] says.
    pub precision: Precision,
    /// Use the subgroup variants ([`Kernel::SoftmaxMaskedSubgroup`] for the masked softmax,
    /// [`Kernel::AttentionSubgroup`] or [`Kernel::AttentionBlockTexSubgroup`] for the block
    /// attention's texture form ([`Tuning::block_texture_kernel`]),
    /// [`Kernel::MatmulBiasTexSubgroup`] for the textured matmul) instead of the baselines. Only for
    /// devices with the `SUBGROUP` feature: gqa-wgpu sets it from the device's features, and
    /// compiles those kernels only there. Off in [`Tuning::CPU`] and [`Tuning::GPU`].
    pub subgroups: bool,
    /// The device's smallest and largest subgroup sizes (wgpu's `AdapterInfo::subgroup_min_size`
    /// and `subgroup_max_size`), [0, 0] when unknown: with [`Tuning::subgroups`], the block
    /// attention's texture form is [`Kernel::AttentionSubgroup`] where
    /// [`Kernel::subgroup_attention_fits`] says these sizes fit. gqa-wgpu sets them from the
    /// adapter's info; [0, 0] in [`Tuning::CPU`] and [`Tuning::GPU`].
    pub subgroup_sizes: [u32; 2],
}

impl Default for Tuning {
    fn default() -> Self {
        Self::GPU
    }
}

/// The most loop iterations one invocation of a shader runs on Mesa's llvmpipe (lavapipe, GL
/// llvmpipe): it ends an invocation's loops after this many in all, silently (one counter shared by
/// every loop, measured by `tests/gpu_loop_cap.rs`). [`Tuning::CPU`]'s
/// [`Tuning::loop_iteration_cap`].
pub const LLVMPIPE_LOOP_CAP: u64 = 65_535;

impl Tuning {
    /// For adapters that run shaders on the CPU (lavapipe, llvmpipe, WARP): register blocking over
    /// texture operands wins there (workgroup-memory tiles cost more than they save: every
    /// workgroup-memory access is a loop over the lanes), and the fused attention kernel (its
    /// per-query arrays live in scratch memory there) was measured slower than the separate passes,
    /// the block attention kernel faster; loops stop at Mesa's cap.
    pub const CPU: Tuning = Tuning {
        matmul: MatmulVariant::Textured,
        fused_attention: false,
        split_decode: true,
        decode_kernel: true,
        block_attention: true,
        loop_iteration_cap: Some(LLVMPIPE_LOOP_CAP),
        precision: Precision::F32,
        subgroups: false,
        subgroup_sizes: [0, 0],
    };
    /// For GPUs: workgroup-memory tiles.
    pub const GPU: Tuning = Tuning {
        matmul: MatmulVariant::Tiled,
        fused_attention: true,
        split_decode: true,
        decode_kernel: true,
        block_attention: false,
        loop_iteration_cap: None,
        precision: Precision::F32,
        subgroups: false,
        subgroup_sizes: [0, 0],
    };

    /// Whether layers under this tuning keep a `k` x `n` dense kernel as a texture (for
    /// [`Kernel::MatmulBiasTex`]) instead of a buffer: f32, [`MatmulVariant::Textured`], and the
    /// weight within the texture limits. Plans list such a texture for every kernel it holds, used by
    /// the call or not, as the layer uploads them all, and the kernel's buffer only where a pass
    /// binds it (a call too tall for the textures: the layer then makes it from the texture).
    pub fn keeps_weight_texture(&self, k: u64, n: u64, limits: &Limits) -> bool {
        self.reads_textures() && MatmulVariant::weight_texture_fits(k, n, limits)
    }

    /// Whether plans under this tuning read operands from textures where they fit: f32 and
    /// [`MatmulVariant::Textured`] (CPU adapters). The weights, the block attention's projections
    /// and the KV cache's mirrors follow it.
    pub fn reads_textures(&self) -> bool {
        self.precision == Precision::F32 && self.matmul == MatmulVariant::Textured
    }

    /// Whether KV caches of `shape` keep rgba32float texture mirrors of their keys and values
    /// beside the buffers under this tuning: f32 and [`MatmulVariant::Textured`] (CPU adapters,
    /// where the cached calls' attention then reads K and V with texel fetches,
    /// [`Kernel::AttentionDecodeTex`] and [`Kernel::AttentionBlockTex`]), within the limits
    /// ([`cache_texture_fits`]). The mirror doubles the cache's memory.
    pub fn keeps_cache_texture(&self, shape: &CacheShape, limits: &Limits) -> bool {
        self.reads_textures() && cache_texture_fits(shape, limits)
    }

    /// The f32 matmul kernel this tuning picks for an `m` x `k` by `k` x `n` product:
    /// [`MatmulVariant::kernel`], with [`Kernel::MatmulBiasTexSubgroup`] in place of
    /// [`Kernel::MatmulBiasTex`] when the tuning has [`Tuning::subgroups`]. Its 8-row form,
    /// [`Kernel::MatmulBiasTexSubgroupRows8`], is taken for at most [`Kernel::ROWS8_MAX_ROWS`] rows
    /// (which fill at most half of a 128-row tile), and where the 16-row kernel's grid would be one
    /// workgroup (at most 128 x 128 outputs): its two tiles then let a second core work (lavapipe,
    /// 128 x 128 x 512: 0.63 of the time; at 128 x 256, 4 tiles against 2, 1.03, so no further).
    /// Without subgroups, [`Kernel::MatmulBiasTexRows8`] in place of [`Kernel::MatmulBiasTex`] by
    /// the same rule.
    pub fn matmul_kernel(&self, m: u64, k: u64, n: u64, limits: &Limits) -> Kernel {
        let [cols, rows] = Kernel::MatmulBiasTexSubgroup.tile();
        let one_tile = m <= rows as u64 && n <= cols as u64;
        match self.matmul.kernel(m, k, n, limits) {
            Kernel::MatmulBiasTex if self.subgroups && (m <= Kernel::ROWS8_MAX_ROWS || one_tile) => {
                Kernel::MatmulBiasTexSubgroupRows8
            }
            Kernel::MatmulBiasTex if self.subgroups => Kernel::MatmulBiasTexSubgroup,
            Kernel::MatmulBiasTex if m <= Kernel::ROWS8_MAX_ROWS || one_tile => Kernel::MatmulBiasTexRows8,
            kernel => kernel,
        }
    }

    /// Whether `kernel` with `params` loops within [`Tuning::loop_iteration_cap`] (always, without
    /// a cap), by [`Kernel::loop_iterations`] under this tuning's subgroup sizes.
    pub fn within_loop_cap(&self, kernel: Kernel, params: &crate::Params) -> bool {
        self.loop_iteration_cap.is_none_or(|cap| kernel.loop_iterations(params, self.subgroup_sizes) <= cap)
    }

    /// The block attention's texture form this tuning picks for a pass with `params` (its head size
    /// and lengths): [`Kernel::AttentionSubgroup`] with [`Tuning::subgroups`] where its subgroup
    /// sizes fit ([`Kernel::subgroup_attention_fits`]) and its loops stay within the cap, else
    /// [`Kernel::AttentionBlockTexSubgroup`] with subgroups, else [`Kernel::AttentionBlockTex`].
    pub fn block_texture_kernel(&self, params: &crate::Params) -> Kernel {
        let whole = Kernel::AttentionSubgroup;
        let within_cap = self.within_loop_cap(whole, params);
        if !self.subgroups {
            Kernel::AttentionBlockTex
        } else if Kernel::subgroup_attention_fits(params.head_dim as usize, self.subgroup_sizes) && within_cap {
            whole
        } else {
            Kernel::AttentionBlockTexSubgroup
        }
    }

    /// The masked softmax kernel this tuning picks.
    pub fn softmax_kernel(&self) -> Kernel {
        if self.subgroups { Kernel::SoftmaxMaskedSubgroup } else { Kernel::SoftmaxMasked }
    }
}
