//! What an adapter is good at, as the planner reads it: the tuning is chosen per adapter (by
//! gqa-wgpu from the adapter's type and features) and recorded in the plan. Which kernel runs is
//! decided from it by the planner's selection stage (`plan/select.rs`).

use crate::kernels::Kernel;
use crate::kernels::Precision;
use crate::kernels::texture::{matrix_texture_fits, product_texture_fits, weight_texture_fits};
use crate::kv_cache::CacheShape;
use crate::limits::Limits;
use crate::params::Params;

/// The projection matmul's variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatmulVariant {
    /// Workgroup-memory tiles ([`crate::MatmulKernel::Tiled`]): the portable default, for GPUs.
    #[default]
    Tiled,
    /// Register blocking without workgroup memory: for CPU adapters. 16x16 outputs per invocation
    /// with vec4 loads ([`crate::MatmulKernel::Blocked`]) when the contracted and output sizes are
    /// multiples of 4, else 8x8 with scalar loads ([`crate::MatmulKernel::Blocked8x8`]).
    RegisterBlocked,
    /// [`MatmulVariant::RegisterBlocked`] reading both operands from textures (A packed into a
    /// texture by a copy, the weights kept as textures too): for CPU adapters, where texel fetches
    /// are gathers and storage-buffer loads are per-lane loops. Products that do not fit
    /// ([`MatmulVariant::texture_fits`]) run as [`MatmulVariant::RegisterBlocked`].
    Textured,
}

impl MatmulVariant {
    /// Whether an `m` x `k` by `k` x `n` product can read its operands from rgba32float textures:
    /// the weight ([`MatmulVariant::weight_texture_fits`]) and A (`k / 4` texels wide, `m` high)
    /// within `max_texture_dimension_2d`, and a storage texture allowed per stage (for packing A).
    pub fn texture_fits(m: u64, k: u64, n: u64, limits: &Limits) -> bool {
        product_texture_fits(m, k, n, limits)
    }

    /// Whether a `k` x `n` weight can be kept as an rgba32float texture of `n / 4` x `k` texels
    /// (`n` and `k` multiples of 4, both sides within `max_texture_dimension_2d`): what a layer
    /// decides once, when it uploads its weights.
    pub fn weight_texture_fits(k: u64, n: u64, limits: &Limits) -> bool {
        weight_texture_fits(k, n, limits)
    }
}

/// Whether the keys (or values) of a KV cache of `shape` fit one rgba32float texture of `Nkv·H / 4`
/// x `B·capacity` texels: `H` a multiple of 4 and both sides within `max_texture_dimension_2d`.
pub fn cache_texture_fits(shape: &CacheShape, limits: &Limits) -> bool {
    shape.head_dim.is_multiple_of(4)
        && matrix_texture_fits((shape.batch * shape.capacity) as u64, shape.token_elems(), limits)
}

/// What an adapter is good at, as the planner reads it (`plan/select.rs` turns it into kernels).
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
    /// In the split path, use [`Kernel::DecodeAttention`] (lanes over keys, then over H) for at most
    /// [`crate::kernels::decode::MAX_ITEMS`] (query, head-in-group) items per kv group, instead of the fused
    /// kernel in split mode. f32 plans only. Calls with more items take the block attention where
    /// [`Tuning::block_attention`] is on, else the fused kernel's split mode. On in
    /// [`Tuning::CPU`], off in [`Tuning::GPU`].
    pub decode_kernel: bool,
    /// Use [`Kernel::BlockAttention`] (blocks of 16 items, lanes over keys then over H, an online
    /// softmax over key chunks) for the whole attention of f32 plans without scores or dropout,
    /// where it applies, instead of [`Kernel::FusedAttention`] or the separate passes. Short queries
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
    /// Use the subgroup variants ([`crate::Lanes::Subgroup`] for the masked softmax,
    /// [`crate::BlockLanes::Subgroup`] or [`crate::BlockLanes::SharedLoads`] for the block
    /// attention's texture form, [`crate::MatmulKernel::Blocked`] with `subgroups` for the textured
    /// matmul) instead of the baselines. Only for
    /// devices with the `SUBGROUP` feature: gqa-wgpu sets it from the device's features, and
    /// compiles those kernels only there. Off in [`Tuning::CPU`] and [`Tuning::GPU`].
    pub subgroups: bool,
    /// The device's smallest and largest subgroup sizes (wgpu's `AdapterInfo::subgroup_min_size`
    /// and `subgroup_max_size`), [0, 0] when unknown: with [`Tuning::subgroups`], the block
    /// attention's texture form is [`crate::BlockLanes::Subgroup`] where
    /// [`crate::kernels::block::subgroup_fits`] says these sizes fit. gqa-wgpu sets them from the
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
    /// For GPUs: workgroup-memory tiles, and the fused attention for every attention without
    /// scores or dropout, short queries over long sources included (in split mode): its 14 KiB of
    /// workgroup memory would let the decode kernel run fewer waves per SIMD than the fused
    /// kernel on RDNA (6 against 10 on navi21, by the compiler report).
    pub const GPU: Tuning = Tuning {
        matmul: MatmulVariant::Tiled,
        fused_attention: true,
        split_decode: true,
        decode_kernel: false,
        block_attention: false,
        loop_iteration_cap: None,
        precision: Precision::F32,
        subgroups: false,
        subgroup_sizes: [0, 0],
    };

    /// Whether layers under this tuning keep a `k` x `n` dense kernel as a texture (for
    /// the textured matmuls) instead of a buffer: f32, [`MatmulVariant::Textured`], and the
    /// weight within the texture limits. Plans list such a texture for every kernel it holds, used by
    /// the call or not, as the layer uploads them all, and the kernel's buffer only where a pass
    /// binds it (a call too tall for the textures: the layer then makes it from the texture).
    pub fn keeps_weight_texture(&self, k: u64, n: u64, limits: &Limits) -> bool {
        self.reads_textures() && weight_texture_fits(k, n, limits)
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
    /// [`Kernel::DecodeAttention`] and [`Kernel::BlockAttention`] over [`crate::Operands::Texture`]), within the limits
    /// ([`cache_texture_fits`]), for an f32 cache only (a quantized cache is read from its buffers).
    /// The mirror doubles the cache's memory.
    pub fn keeps_cache_texture(&self, shape: &CacheShape, limits: &Limits) -> bool {
        self.reads_textures() && shape.storage == crate::CacheStorage::F32 && cache_texture_fits(shape, limits)
    }

    /// Whether `kernel` with `params` loops within [`Tuning::loop_iteration_cap`] (always, without
    /// a cap), by [`Kernel::loop_iterations`] under this tuning's subgroup sizes.
    pub fn within_loop_cap(&self, kernel: Kernel, params: &Params) -> bool {
        self.loop_iteration_cap.is_none_or(|cap| kernel.loop_iterations(params, self.subgroup_sizes) <= cap)
    }
}
