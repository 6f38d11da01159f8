//! How a plan fits the device: how many batch elements, (b, u) rows and queries go in one chunk, and
//! whether the fused attention kernel can run the problem.

use crate::error::GqaError;
use crate::kernel::Kernel;
use crate::limits::Limits;
use crate::params::Params;
use crate::problem::Problem;
use crate::tuning::Tuning;

/// How a plan splits the problem to fit the device's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunking {
    /// Batch elements per batch chunk (= B when the batch is not split).
    pub batch_per_chunk: usize,
    /// (b, u) rows per attention chunk.
    pub rows_per_chunk: usize,
    /// Queries per attention chunk (= T unless one row's scores exceed a binding).
    pub queries_per_chunk: usize,
}

impl Chunking {
    /// Whether the batch is split (inputs and outputs then move through chunk buffers by copies).
    pub fn splits_batch(&self, problem: &Problem) -> bool {
        self.batch_per_chunk < problem.batch
    }

    /// Whether the attention is split into several chunks per batch chunk.
    pub fn splits_attention(&self, problem: &Problem) -> bool {
        self.rows_per_chunk < self.batch_per_chunk * problem.num_query_heads
            || self.queries_per_chunk < problem.target_len
    }
}

/// How the attention of a problem runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionMode {
    /// Logits, softmax and PV as separate passes through a (chunk of the) T x S buffer.
    Unfused,
    /// [`Kernel::AttentionFused`] over all S keys in one pass.
    Fused,
    /// [`Kernel::AttentionBlock`] over all S keys in one pass (f32, [`Tuning::block_attention`]).
    Block,
    /// Flash-decoding: a split pass over `splits` ranges of `split_keys` keys writing partial
    /// states, then [`Kernel::AttentionReduce`] (its f16 form in f16 plans) combining them.
    Split {
        /// Keys per split.
        split_keys: usize,
        /// Number of splits.
        splits: usize,
        /// The split pass: [`Kernel::AttentionDecode`] for at most [`Kernel::DECODE_MAX_ITEMS`]
        /// items per kv group, else [`Kernel::AttentionFused`] in split mode
        /// ([`Kernel::AttentionSplitF16`] in f16 plans).
        kernel: Kernel,
    },
}

/// Chooses the attention path: split decode for short queries over long sources, the fused kernel,
/// or the separate passes. The fused kernels need no scores and no dropout, H <= 256 and a multiple
/// of 4, the device's storage buffers and workgroup memory, grids within the limits, and loops within
/// the tuning's cap.
pub(crate) fn attention_mode(p: &Problem, limits: &Limits, tuning: Tuning, batch_per_chunk: usize) -> AttentionMode {
    let k = Kernel::AttentionFused;
    let max_wg = limits.max_compute_workgroups_per_dimension as u64;
    let items = (p.target_len * p.group_size()).div_ceil(64) as u64;
    let base = !p.return_scores
        && p.dropout.is_none()
        && p.head_dim <= Kernel::FUSED_MAX_HEAD_DIM
        && p.head_dim.is_multiple_of(4)
        && k.storage_buffers() <= limits.max_storage_buffers_per_shader_stage
        && k.workgroup_memory_bytes() <= limits.max_compute_workgroup_storage_size
        && items <= max_wg
        && (batch_per_chunk * p.num_kv_heads) as u64 <= max_wg;
    if !base {
        return AttentionMode::Unfused;
    }
    let masked_rows = match p.masked_rows {
        crate::options::MaskedRows::Zeros => 0,
        crate::options::MaskedRows::KerasDefault => 1,
    };
    let probe = |split_keys: usize| Params {
        s_len: p.source_len as u32,
        t_len: p.target_len as u32,
        group: p.group_size() as u32,
        head_dim: p.head_dim as u32,
        masked_rows,
        split_keys: split_keys as u32,
        ..Params::default()
    };
    // The split pass: the decode kernel for few items per kv group (f32 plans; H <= 256 and a
    // multiple of 4 is checked above), else the fused kernel in split mode.
    let item_count = p.target_len * p.group_size();
    let decode = Kernel::AttentionDecode;
    let (split_kernel, split_keys) = if tuning.decode_kernel
        && tuning.precision == crate::Precision::F32
        && item_count <= Kernel::DECODE_MAX_ITEMS
        && decode.storage_buffers() <= limits.max_storage_buffers_per_shader_stage
        && decode.workgroup_memory_bytes() <= limits.max_compute_workgroup_storage_size
        && tuning.within_loop_cap(decode, &probe(Kernel::decode_split_keys(item_count)))
    {
        (decode, Kernel::decode_split_keys(item_count))
    } else {
        (k, Kernel::DECODE_SPLIT_KEYS)
    };
    let splits = p.source_len.div_ceil(split_keys);
    if tuning.split_decode
        && p.target_len <= Kernel::DECODE_MAX_QUERIES
        // Long sources; or any source where the fused kernel is not the choice: the separate passes'
        // 64-query tiles would compute mostly clamped rows for so few queries.
        && (p.source_len >= 2 * Kernel::DECODE_SPLIT_KEYS || !tuning.fused_attention)
        && splits as u64 <= max_wg
        && tuning.within_loop_cap(split_kernel, &probe(split_keys))
        && tuning.within_loop_cap(Kernel::AttentionReduce, &probe(split_keys))
    {
        return AttentionMode::Split { split_keys, splits, kernel: split_kernel };
    }
    let block = Kernel::AttentionBlock;
    if tuning.block_attention
        && tuning.precision == crate::Precision::F32
        && block.storage_buffers() <= limits.max_storage_buffers_per_shader_stage
        && block.workgroup_memory_bytes() <= limits.max_compute_workgroup_storage_size
        && ((p.target_len * p.group_size()).div_ceil(Kernel::BLOCK_ITEMS) as u64) <= max_wg
        && tuning.within_loop_cap(block, &probe(0))
    {
        return AttentionMode::Block;
    }
    if tuning.fused_attention && tuning.within_loop_cap(k, &probe(0)) {
        return AttentionMode::Fused;
    }
    AttentionMode::Unfused
}

/// The largest chunks that fit: as many batch elements as the per-batch buffers and the projection
/// grids allow, then as many (b, u) rows (or, when one row's scores are too big, queries) as one
/// probabilities binding and the attention grids allow. `s_in` is the number of key/value rows the
/// call projects per batch element: S, or a cached call's T new tokens (its keys and values live in
/// the cache, bound whole).
pub(crate) fn choose_chunking(p: &Problem, limits: &Limits, s_in: usize) -> Result<Chunking, GqaError> {
    let binding = limits.max_storage_buffer_binding_size;
    let max_wg = limits.max_compute_workgroups_per_dimension as u64;
    let (t, s) = (p.target_len as u64, s_in as u64);
    let heads = (p.num_query_heads * p.head_dim) as u64;
    let kv = (p.num_kv_heads * p.head_dim) as u64;
    let key_dim = if p.key_given { p.key_dim as u64 } else { 0 };
    // Bytes per batch element of every buffer sized by the batch chunk.
    let per_batch = [
        ("query chunk", t * p.query_dim as u64),
        ("key chunk", s * key_dim),
        ("value chunk", s * p.value_dim as u64),
        ("projected queries", t * heads),
        ("projected keys/values", s * kv),
        ("output chunk", t * p.query_dim as u64),
    ];
    let (worst, worst_elems) = per_batch.iter().copied().max_by_key(|(_, e)| *e).unwrap_or(("", 1));
    let fit_binding = binding / (worst_elems * 4).max(1);
    // Projection grids: ceil(rows / 64) workgroups along y.
    let fit_grid = max_wg * 64 / t.max(s);
    let nb = (p.batch as u64).min(fit_binding).min(fit_grid);
    if nb == 0 {
        return Err(if fit_binding == 0 {
            GqaError::LimitExceeded {
                kernel: format!("buffer of {worst}"),
                limit: "max_storage_buffer_binding_size",
                allowed: binding,
                needed: worst_elems * 4,
                detail: "one batch element does not fit one binding".into(),
            }
        } else {
            GqaError::LimitExceeded {
                kernel: "projection".into(),
                limit: "max_compute_workgroups_per_dimension",
                allowed: max_wg,
                needed: t.max(s).div_ceil(64),
                detail: "rows of one batch element, 64 per workgroup".into(),
            }
        });
    }
    let rows = nb * p.num_query_heads as u64;
    // One query's scores cover all S keys (cached or not).
    let s = p.source_len as u64;
    let row_bytes = s * 4;
    if row_bytes > binding {
        return Err(GqaError::LimitExceeded {
            kernel: "buffer Probs".into(),
            limit: "max_storage_buffer_binding_size",
            allowed: binding,
            needed: row_bytes,
            detail: format!("one query's scores over S={s} keys"),
        });
    }
    let rows_fit = binding / row_bytes; // (b, u, t) score rows in one binding
    let (n, tc) = if t <= rows_fit && t <= max_wg {
        (rows.min(rows_fit / t).min(max_wg), t)
    } else {
        (1, t.min(rows_fit).min(max_wg))
    };
    Ok(Chunking { batch_per_chunk: nb as usize, rows_per_chunk: n as usize, queries_per_chunk: tc as usize })
}
