//! The planner's second stage, and the only code that names kernel variants: from the problem, the
//! chunking, the device's limits and the adapter's [`Tuning`], which kernels run the projections
//! and the attention ([`Route`]). A new kernel variant gets its arm here; a new tuning option is
//! read here.

use super::chunk::Chunking;
use super::resources::BufferId;
use crate::cache_storage::Quantization;
use crate::kernels::texture::matrix_texture_fits;
use crate::kernels::{
    BlockAttention, BlockLanes, BlockRows, CacheAttention, FusedOutput, Kernel, Lanes, MatmulKernel, MatmulPrecision,
    Operands, Precision, block, decode, fused,
};
use crate::kv_cache::CacheUpdate;
use crate::limits::Limits;
use crate::options::MaskedRows;
use crate::params::Params;
use crate::problem::Problem;
use crate::tuning::{MatmulVariant, Tuning};
use crate::weights::Dense;

/// Products of at most this many rows (a decoding step's B * T new tokens) take
/// [`MatmulKernel::Rows4`] when the sizes are multiples of 4: the tiles of the others would compute
/// mostly clamped rows (64 or 128 rows per tile for 1 real one).
pub const FEW_ROWS: u64 = 16;

/// The most rows of a product that the textured matmul's 8-row form ([`BlockRows::Eight`]) takes:
/// one 64-row tile (from [`FEW_ROWS`] + 1, where the rows-of-4 kernel stops). Lavapipe: 0.62-0.66
/// of the 16-row form's time at 64 x 512 x 512 with subgroups; GL llvmpipe without: 0.57-0.61 at
/// 64 x 512 x 512 and 64 x 4096 x 4096, 1.0 at 128 rows, 1.05 at 512.
pub const ROWS8_MAX_ROWS: u64 = 64;

/// The longest query (T) the split path (flash-decoding) takes.
pub const SPLIT_MAX_QUERIES: usize = 16;

/// The kernels a plan runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Route {
    /// How each projection's matmul is chosen.
    pub projections: ProjectionRoute,
    /// How the attention runs.
    pub attention: AttentionRoute,
}

/// What chooses the projections' matmul kernels: a product's kernel depends on its rows, which
/// differ in a plan's last batch chunk ([`ProjectionRoute::kernel`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProjectionRoute {
    precision: Precision,
    variant: MatmulVariant,
    subgroups: bool,
    limits: Limits,
    loop_iteration_cap: Option<u64>,
}

impl ProjectionRoute {
    /// The projections' choice under `tuning` on a device with `limits`.
    pub fn new(tuning: &Tuning, limits: &Limits) -> Self {
        Self {
            precision: tuning.precision,
            variant: tuning.matmul,
            subgroups: tuning.subgroups,
            limits: *limits,
            loop_iteration_cap: tuning.loop_iteration_cap,
        }
    }

    /// The matmul of projection `dense` for an `m` x `k` by `k` x `n` product. f16 plans take the
    /// register-blocked f16 matmuls whatever the variant says. Otherwise: [`MatmulKernel::Rows4`]
    /// for at most [`FEW_ROWS`] rows with sizes multiples of 4 (over textures where the tuning reads
    /// them and they fit); the tuning's [`MatmulVariant`] beyond: [`MatmulKernel::Tiled`], the
    /// textured [`MatmulKernel::Blocked`] where the textures fit, else the storage-buffer
    /// `Blocked` (sizes multiples of 4) or [`MatmulKernel::Blocked8x8`]. The textured form takes
    /// subgroups where the tuning has them, and 8 rows per invocation for at most
    /// [`ROWS8_MAX_ROWS`] rows (which fill at most half of a 128-row tile) and where the 16-row
    /// form's grid would be one workgroup (at most 128 x 128 outputs): its two tiles then let a
    /// second core work (with two 16-row tiles or more, the 8-row form gains nothing). An f32
    /// kernel whose loops would pass the tuning's loop cap over `k` gives way to the storage-buffer
    /// `Blocked` (sizes multiples of 4) or `Blocked8x8`, the first within it (the plan's check
    /// names the cap where none is).
    pub fn kernel(&self, dense: Dense, m: u64, k: u64, n: u64) -> MatmulKernel {
        let preferred = self.preferred(dense, m, k, n);
        if self.precision == Precision::F16 || self.within_loop_cap(preferred, m, k, n) {
            return preferred;
        }
        let vec4 = k.is_multiple_of(4) && n.is_multiple_of(4);
        let blocked = vec4.then_some(MatmulKernel::blocked(BlockRows::Sixteen, Operands::Storage, false));
        blocked
            .into_iter()
            .chain([MatmulKernel::Blocked8x8(MatmulPrecision::F32)])
            .find(|&kernel| self.within_loop_cap(kernel, m, k, n))
            .unwrap_or(preferred)
    }

    /// The storage precision of the projections (and of the projected tensors).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Whether `kernel`'s loops over an `m` x `k` by `k` x `n` product stay within the tuning's cap.
    fn within_loop_cap(&self, kernel: MatmulKernel, m: u64, k: u64, n: u64) -> bool {
        let [m, k, n] = [m, k, n].map(|x| u32::try_from(x).unwrap_or(u32::MAX));
        let params = Params { m, k, n, ..Params::default() };
        self.loop_iteration_cap.is_none_or(|cap| Kernel::Matmul(kernel).loop_iterations(&params, [0, 0]) <= cap)
    }

    /// The kernel [`ProjectionRoute::kernel`] picks before the loop cap is considered.
    fn preferred(&self, dense: Dense, m: u64, k: u64, n: u64) -> MatmulKernel {
        match (self.precision, dense) {
            (Precision::F16, Dense::Output) => return MatmulKernel::Blocked8x8(MatmulPrecision::F16ToF32),
            (Precision::F16, _) => return MatmulKernel::Blocked8x8(MatmulPrecision::F16),
            (Precision::F32, _) => {}
        }
        let vec4 = k.is_multiple_of(4) && n.is_multiple_of(4);
        let textures = self.variant == MatmulVariant::Textured && MatmulVariant::texture_fits(m, k, n, &self.limits);
        let operands = if textures { Operands::Texture } else { Operands::Storage };
        if m <= FEW_ROWS && vec4 {
            return MatmulKernel::Rows4(operands);
        }
        match self.variant {
            MatmulVariant::Tiled => MatmulKernel::Tiled,
            _ if textures => {
                let [cols, rows] = MatmulKernel::blocked(BlockRows::Sixteen, operands, self.subgroups).spec().tile;
                let one_tile = m <= rows as u64 && n <= cols as u64;
                let rows = if m <= ROWS8_MAX_ROWS || one_tile { BlockRows::Eight } else { BlockRows::Sixteen };
                MatmulKernel::blocked(rows, operands, self.subgroups)
            }
            _ if vec4 => MatmulKernel::blocked(BlockRows::Sixteen, Operands::Storage, false),
            _ => MatmulKernel::Blocked8x8(MatmulPrecision::F32),
        }
    }
}

/// How the attention of a plan runs, with its kernels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttentionRoute {
    /// Logits, softmax and weighted values as separate passes through a (chunk of the) T x S
    /// buffer ([`BufferId::Probs`]).
    Unfused {
        /// The logits.
        logits: Kernel,
        /// The masked softmax, in place.
        softmax: Kernel,
        /// The weighted values.
        attend_values: Kernel,
    },
    /// The fused kernel over all S keys in one pass.
    Fused {
        /// The fused kernel.
        kernel: Kernel,
    },
    /// Flash-decoding with the fused kernel in split mode: a split pass over `splits` ranges of
    /// `split_keys` keys writing partial states, then a reduce combining them.
    Split {
        /// Keys per split.
        split_keys: usize,
        /// Number of splits.
        splits: usize,
        /// The split pass.
        kernel: Kernel,
        /// The reduce.
        reduce: Kernel,
    },
    /// Flash-decoding with the decode kernel (few items per kv group, f32) as the split pass.
    Decode {
        /// Keys per split ([`decode::split_keys`]).
        split_keys: usize,
        /// Number of splits.
        splits: usize,
        /// The split pass.
        kernel: Kernel,
        /// The reduce.
        reduce: Kernel,
        /// The K and V textures it reads (a KV cache's mirrors), with the projected queries packed
        /// into [`BufferId::QueryProjTexture`]; `None`: buffers.
        kv_textures: Option<[BufferId; 2]>,
    },
    /// The block attention over all S keys in one pass (f32).
    Block {
        /// The block attention's form.
        kernel: Kernel,
        /// The K and V textures it reads (the packed projections, or a KV cache's mirrors), with
        /// the projected queries packed into [`BufferId::QueryProjTexture`]; `None`: buffers.
        kv_textures: Option<[BufferId; 2]>,
        /// The [`Kernel::CheckValues`] pass before it, where it may skip keys.
        check_values: Option<ValueCheck>,
    },
}

/// What the value check before a block attention does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueCheck {
    /// Reads the chunk's projected values.
    Read,
    /// Writes "unknown" without reading: a cached call, whose values are in the cache.
    Unknown,
}

impl AttentionRoute {
    /// Whether the route stores logits and probabilities ([`BufferId::Probs`]).
    pub fn uses_probs(&self) -> bool {
        matches!(self, AttentionRoute::Unfused { .. })
    }

    /// The number of splits of a flash-decoding route (its [`BufferId::Partials`]).
    pub fn splits(&self) -> Option<usize> {
        match *self {
            AttentionRoute::Split { splits, .. } | AttentionRoute::Decode { splits, .. } => Some(splits),
            _ => None,
        }
    }

    /// Whether the route is the block attention (its [`BufferId::VFlags`]).
    pub fn is_block(&self) -> bool {
        matches!(self, AttentionRoute::Block { .. })
    }

    /// The K and V textures the attention reads, if any.
    pub fn kv_textures(&self) -> Option<[BufferId; 2]> {
        match *self {
            AttentionRoute::Decode { kv_textures, .. } | AttentionRoute::Block { kv_textures, .. } => kv_textures,
            _ => None,
        }
    }
}

/// The route of `p` under `tuning` for `limits`, split as `chunking` says; `cache` for a cached
/// call.
pub(crate) fn route(
    p: &Problem,
    limits: &Limits,
    tuning: Tuning,
    chunking: &Chunking,
    cache: Option<&CacheUpdate>,
) -> Route {
    let attention = attention(p, limits, tuning, chunking, cache);
    Route {
        projections: ProjectionRoute::new(&tuning, limits),
        attention: match cache.and_then(|c| c.shape.storage.quantized_for(tuning.precision)) {
            Some(q) => over_quantized_cache(attention, q),
            None => attention,
        },
    }
}

/// The route over a quantized KV cache: each attention kernel of the f32 route in its form that
/// reads K and V from `storage` ([`CacheAttention`]). Such a cache keeps no texture mirrors, so the
/// route reads buffers. The separate passes have no such form (the plan refuses them).
fn over_quantized_cache(route: AttentionRoute, storage: Quantization) -> AttentionRoute {
    let over = |kernel: Kernel| CacheAttention::over(kernel, storage).unwrap_or(kernel);
    match route {
        AttentionRoute::Fused { kernel } => AttentionRoute::Fused { kernel: over(kernel) },
        AttentionRoute::Split { split_keys, splits, kernel, reduce } => {
            AttentionRoute::Split { split_keys, splits, kernel: over(kernel), reduce }
        }
        AttentionRoute::Decode { split_keys, splits, kernel, reduce, kv_textures } => {
            AttentionRoute::Decode { split_keys, splits, kernel: over(kernel), reduce, kv_textures }
        }
        AttentionRoute::Block { kernel, kv_textures, check_values } => {
            AttentionRoute::Block { kernel: over(kernel), kv_textures, check_values }
        }
        unfused @ AttentionRoute::Unfused { .. } => unfused,
    }
}

/// The attention's route: split decode for short queries over long sources (the decode kernel for
/// few items, else the fused kernel in split mode), the block attention, the fused kernel, or the
/// separate passes. The fused kernels need no scores and no dropout, H <= 256 and a multiple of 4,
/// the device's storage buffers and workgroup memory, grids within the limits, and loops within
/// the tuning's cap.
fn attention(
    p: &Problem,
    limits: &Limits,
    tuning: Tuning,
    chunking: &Chunking,
    cache: Option<&CacheUpdate>,
) -> AttentionRoute {
    let precision = tuning.precision;
    let nb = chunking.batch_per_chunk;
    let fused_kernel = Kernel::FusedAttention { precision, output: FusedOutput::Attention };
    let unfused = AttentionRoute::Unfused {
        logits: Kernel::Logits(precision),
        softmax: Kernel::Softmax(if tuning.subgroups { Lanes::Subgroup } else { Lanes::Workgroup }),
        attend_values: Kernel::AttendValues(precision),
    };
    let max_wg = limits.max_compute_workgroups_per_dimension as u64;
    let items = (p.target_len * p.group_size()).div_ceil(fused::items_per_workgroup(p.head_dim)) as u64;
    let fits = |k: Kernel| {
        k.storage_buffers() <= limits.max_storage_buffers_per_shader_stage
            && k.workgroup_memory_bytes() <= limits.max_compute_workgroup_storage_size
    };
    let base = !p.return_scores
        && p.dropout.is_none()
        && p.head_dim <= fused::MAX_HEAD_DIM
        && p.head_dim.is_multiple_of(4)
        && fits(fused_kernel)
        && items <= max_wg
        && (nb * p.num_kv_heads) as u64 <= max_wg;
    if !base {
        return unfused;
    }
    let probe = |split_keys: usize| Params {
        s_len: p.source_len as u32,
        t_len: p.target_len as u32,
        group: p.group_size() as u32,
        head_dim: p.head_dim as u32,
        masked_rows: match p.masked_rows {
            MaskedRows::Zeros => 0,
            MaskedRows::KerasDefault => 1,
        },
        split_keys: split_keys as u32,
        ..Params::default()
    };
    // The split pass: the decode kernel for few items per kv group (f32 plans; H <= 256 and a
    // multiple of 4 is checked above), else the fused kernel in split mode.
    let item_count = p.target_len * p.group_size();
    let decode_kernel = Kernel::DecodeAttention(Operands::Storage);
    let decode = tuning.decode_kernel
        && precision == Precision::F32
        && item_count <= decode::MAX_ITEMS
        && fits(decode_kernel)
        && tuning.within_loop_cap(decode_kernel, &probe(decode::split_keys(item_count)));
    let (split_kernel, split_keys) = if decode {
        (decode_kernel, decode::split_keys(item_count))
    } else {
        (Kernel::FusedAttention { precision, output: FusedOutput::Partials }, fused::SPLIT_KEYS)
    };
    let splits = p.source_len.div_ceil(split_keys);
    let reduce = Kernel::ReduceSplits(precision);
    let block_kernel =
        Kernel::BlockAttention(BlockAttention { operands: Operands::Storage, lanes: BlockLanes::Workgroup });
    let block = tuning.block_attention
        && precision == Precision::F32
        && fits(block_kernel)
        && ((p.target_len * p.group_size()).div_ceil(block::ITEMS) as u64) <= max_wg
        && tuning.within_loop_cap(block_kernel, &probe(0));
    if tuning.split_decode
        && p.target_len <= SPLIT_MAX_QUERIES
        // Where the decode kernel is wanted but the call has too many items for it, the block
        // attention where the tuning has it rather than the fused kernel's split mode: CPU
        // adapters run such calls many times faster there (lavapipe, T = 16, R = 4, H = 128,
        // S = 4,096: 80 ms against 1.4 s or more).
        && (decode || !(block && tuning.decode_kernel))
        // Long sources; or any source where the fused kernel is not the choice: the separate passes'
        // 64-query tiles would compute mostly clamped rows for so few queries.
        && (p.source_len >= 2 * fused::SPLIT_KEYS || !tuning.fused_attention)
        && splits as u64 <= max_wg
        && tuning.within_loop_cap(split_kernel, &probe(split_keys))
        && tuning.within_loop_cap(reduce, &probe(split_keys))
    {
        if !decode {
            return AttentionRoute::Split { split_keys, splits, kernel: split_kernel, reduce };
        }
        // A cached call's decode reads the cache's texture mirrors where it keeps them.
        let kv_textures = cache_textures(p, limits, cache, nb);
        let operands = if kv_textures.is_some() { Operands::Texture } else { Operands::Storage };
        return AttentionRoute::Decode {
            split_keys,
            splits,
            kernel: Kernel::DecodeAttention(operands),
            reduce,
            kv_textures,
        };
    }
    if block {
        // Over textures: a cached call's mirrors, or an uncached call's projections packed after
        // they are computed.
        let kv_textures = match cache {
            Some(_) => cache_textures(p, limits, cache, nb),
            None => block_textures_fit(p, tuning, limits, nb as u64)
                .then_some([BufferId::KeyProjTexture, BufferId::ValueProjTexture]),
        };
        let kernel = match kv_textures {
            None => block_kernel,
            Some(_) => Kernel::BlockAttention(BlockAttention {
                operands: Operands::Texture,
                lanes: block_texture_lanes(tuning, &probe(0)),
            }),
        };
        // Whether the values hold a NaN or an infinity, so that the attention may skip its scan of
        // the keys it does not visit (only there to find them). The words matter only where keys
        // can be skipped (a causal mask or a window) and fully masked rows give zeros: without a
        // skip the scan's ranges are empty, and under Keras' policy the kernels scan for the sums
        // whatever the words say. There the values are checked, or, in a cached call (its values
        // are in the cache), the words set to "unknown"; elsewhere no pass runs.
        let skips = p.mask.causal.is_some() || p.mask.key_band().is_some();
        let check_values = (skips && p.masked_rows == MaskedRows::Zeros).then_some(if cache.is_some() {
            ValueCheck::Unknown
        } else {
            ValueCheck::Read
        });
        return AttentionRoute::Block { kernel, kv_textures, check_values };
    }
    if tuning.fused_attention && tuning.within_loop_cap(fused_kernel, &probe(0)) {
        return AttentionRoute::Fused { kernel: fused_kernel };
    }
    unfused
}

/// The KV cache's texture mirrors, where a cached call's attention reads them: the cache keeps
/// them and the projected queries of the whole batch (`nb` = B elements) fit a texture.
fn cache_textures(p: &Problem, limits: &Limits, cache: Option<&CacheUpdate>, nb: usize) -> Option<[BufferId; 2]> {
    let rows = (nb * p.target_len) as u64;
    let queries = (p.num_query_heads * p.head_dim) as u64;
    cache
        .filter(|c| c.texture_mirror && matrix_texture_fits(rows, queries, limits))
        .map(|_| [BufferId::KeyCacheTexture, BufferId::ValueCacheTexture])
}

/// Whether the block attention of a plan without a KV cache reads Q, K and V from textures: under
/// a tuning that reads textures ([`Tuning::reads_textures`]), when the packed projections of a
/// batch chunk of `nb` elements (`Nq·H / 4` x `nb·T` and `Nkv·H / 4` x `nb·S` texels) fit
/// `max_texture_dimension_2d` and a storage texture is allowed per stage (for packing them).
fn block_textures_fit(p: &Problem, tuning: Tuning, limits: &Limits, nb: u64) -> bool {
    let (nq, nkv, h) = (p.num_query_heads as u64, p.num_kv_heads as u64, p.head_dim as u64);
    let (t, s) = (nb * p.target_len as u64, nb * p.source_len as u64);
    tuning.reads_textures()
        && h.is_multiple_of(4)
        && matrix_texture_fits(t, nq * h, limits)
        && matrix_texture_fits(s, nkv * h, limits)
}

/// The lanes of the block attention's texture form for a pass with `params` (its head size and
/// lengths): [`BlockLanes::Subgroup`] with [`Tuning::subgroups`] where the subgroup sizes fit
/// ([`block::subgroup_fits`]) and its loops stay within the cap, else [`BlockLanes::SharedLoads`]
/// with subgroups, else [`BlockLanes::Workgroup`].
pub fn block_texture_lanes(tuning: Tuning, params: &Params) -> BlockLanes {
    let whole = Kernel::BlockAttention(BlockAttention { operands: Operands::Texture, lanes: BlockLanes::Subgroup });
    if !tuning.subgroups {
        BlockLanes::Workgroup
    } else if block::subgroup_fits(params.head_dim as usize, tuning.subgroup_sizes)
        && tuning.within_loop_cap(whole, params)
    {
        BlockLanes::Subgroup
    } else {
        BlockLanes::SharedLoads
    }
}

/// Every kernel a plan under `tuning` can dispatch, each once, in the order of [`Kernel::ALL`]:
/// the selection above read for the values its conditions can take over all problems, device
/// limits and calls (cached or not), from the tuning's fields.
///
/// - Projections ([`ProjectionRoute::kernel`]): in f16 the f16 matmuls (the output projection's
///   to f32); in f32 [`MatmulKernel::Rows4`] over buffers for few rows (over textures too where
///   the tuning reads textures), and beyond the variant's: [`MatmulKernel::Tiled`]; the
///   storage-buffer `Blocked` or [`MatmulKernel::Blocked8x8`] (what `Textured` falls back to when
///   the textures do not fit); the textured `Blocked` in both row counts, with the tuning's
///   subgroups.
/// - Attention (the route above): the separate passes always (scores, dropout, H > 256 or not a
///   multiple of 4); the fused kernel with [`Tuning::fused_attention`]; with
///   [`Tuning::split_decode`] the fused kernel in split mode (more items than the decode kernel
///   takes, or no decode kernel) and the reduce, and the decode kernel with
///   [`Tuning::decode_kernel`] in f32; the block attention with [`Tuning::block_attention`] in f32,
///   with the value check.
/// - Textures: the decode and block attentions over textures, and [`Kernel::PackTexture`]
///   (the packing passes of [`super::Plan::packing_by_passes_from`]), only where the tuning reads
///   textures ([`Tuning::reads_textures`]): a KV cache keeps texture mirrors only then
///   ([`Tuning::keeps_cache_texture`]).
/// - Quantized KV caches (f32 tunings): [`Kernel::AppendToCache`] and the [`CacheAttention`] form
///   of each storage-buffer decode, block and fused attention above.
/// - Layers with attention extensions: [`Kernel::Position`] (QK-norm and RoPE).
pub fn selectable(tuning: &Tuning) -> Vec<Kernel> {
    let precision = tuning.precision;
    let f32 = precision == Precision::F32;
    let textures = tuning.reads_textures();
    let mut kernels = Vec::new();
    // Projections.
    match precision {
        Precision::F16 => kernels.extend([
            Kernel::Matmul(MatmulKernel::Blocked8x8(MatmulPrecision::F16)),
            Kernel::Matmul(MatmulKernel::Blocked8x8(MatmulPrecision::F16ToF32)),
        ]),
        Precision::F32 => {
            kernels.push(Kernel::Matmul(MatmulKernel::Rows4(Operands::Storage)));
            match tuning.matmul {
                MatmulVariant::Tiled => kernels.push(Kernel::Matmul(MatmulKernel::Tiled)),
                MatmulVariant::RegisterBlocked | MatmulVariant::Textured => kernels.extend([
                    Kernel::Matmul(MatmulKernel::blocked(BlockRows::Sixteen, Operands::Storage, false)),
                    Kernel::Matmul(MatmulKernel::Blocked8x8(MatmulPrecision::F32)),
                ]),
            }
            if tuning.matmul == MatmulVariant::Textured {
                kernels.push(Kernel::Matmul(MatmulKernel::Rows4(Operands::Texture)));
                for rows in [BlockRows::Sixteen, BlockRows::Eight] {
                    kernels.push(Kernel::Matmul(MatmulKernel::blocked(rows, Operands::Texture, tuning.subgroups)));
                }
            }
        }
    }
    // The separate passes.
    kernels.extend([
        Kernel::Logits(precision),
        Kernel::Softmax(if tuning.subgroups { Lanes::Subgroup } else { Lanes::Workgroup }),
        Kernel::AttendValues(precision),
    ]);
    if tuning.fused_attention {
        kernels.push(Kernel::FusedAttention { precision, output: FusedOutput::Attention });
    }
    if tuning.split_decode {
        kernels.extend([
            Kernel::FusedAttention { precision, output: FusedOutput::Partials },
            Kernel::ReduceSplits(precision),
        ]);
        if tuning.decode_kernel && f32 {
            kernels.push(Kernel::DecodeAttention(Operands::Storage));
            if textures {
                kernels.push(Kernel::DecodeAttention(Operands::Texture));
            }
        }
    }
    if tuning.block_attention && f32 {
        kernels.extend([
            Kernel::BlockAttention(BlockAttention { operands: Operands::Storage, lanes: BlockLanes::Workgroup }),
            Kernel::CheckValues,
        ]);
        if textures {
            let lanes: &[BlockLanes] = if tuning.subgroups {
                &[BlockLanes::Subgroup, BlockLanes::SharedLoads]
            } else {
                &[BlockLanes::Workgroup]
            };
            for &lanes in lanes {
                kernels.push(Kernel::BlockAttention(BlockAttention { operands: Operands::Texture, lanes }));
            }
        }
    }
    if textures {
        kernels.push(Kernel::PackTexture);
    }
    // The attention extensions' QK-norm and RoPE.
    kernels.push(Kernel::Position(precision));
    // Over a quantized KV cache (any tuning's cached calls, which run in f32): the quantizing append
    // and the f32 attention kernels above in their forms over the cache.
    if f32 {
        let chosen = kernels.clone();
        for storage in [Quantization::F16, Quantization::Int8] {
            kernels.push(Kernel::AppendToCache(storage));
            kernels.extend(chosen.iter().filter_map(|&k| CacheAttention::over(k, storage)));
        }
    }
    Kernel::ALL.into_iter().filter(|k| kernels.contains(k)).collect()
}

/// The tunings of GPUs: [`Tuning::GPU`] in f32 and in f16, with subgroups off and on (gqa-wgpu sets
/// the precision from the layer and the device's `SHADER_F16`, the subgroups from its `SUBGROUP`).
pub fn gpu_tunings() -> [Tuning; 4] {
    let gpu = |precision, subgroups| Tuning { precision, subgroups, ..Tuning::GPU };
    [gpu(Precision::F32, false), gpu(Precision::F32, true), gpu(Precision::F16, false), gpu(Precision::F16, true)]
}

/// The kernels some GPU tuning ([`gpu_tunings`]) can select, in the order of [`Kernel::ALL`].
pub fn gpu_selectable() -> Vec<Kernel> {
    let all: Vec<Kernel> = gpu_tunings().iter().flat_map(selectable).collect();
    Kernel::ALL.into_iter().filter(|k| all.contains(k)).collect()
}
