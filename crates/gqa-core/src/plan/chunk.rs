//! The planner's first stage: how the problem is split to fit the device's limits.

use crate::error::GqaError;
use crate::kv_cache::CacheUpdate;
use crate::limits::Limits;
use crate::problem::Problem;

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

/// The chunking of `p` for `limits`: [`largest`] for the rows the call projects (S, or a cached
/// call's T new tokens, whose keys and values live in the cache, bound whole). A cached call runs
/// its whole batch at once: an error where the batch would be split.
pub(crate) fn choose(p: &Problem, limits: &Limits, cache: Option<&CacheUpdate>) -> Result<Chunking, GqaError> {
    let s_in = if cache.is_some() { p.target_len } else { p.source_len };
    let chunking = largest(p, limits, s_in)?;
    if cache.is_some() && chunking.splits_batch(p) {
        let nb = chunking.batch_per_chunk as u64;
        let (s, nkv, h) = (p.source_len as u64, p.num_kv_heads as u64, p.head_dim as u64);
        return Err(GqaError::LimitExceeded {
            kernel: "cached call".into(),
            limit: "max_storage_buffer_binding_size",
            allowed: limits.max_storage_buffer_binding_size,
            needed: nb * s * nkv * h * 4,
            detail: format!("a cached call runs the whole batch at once; it would need chunks of {nb}"),
        });
    }
    Ok(chunking)
}

/// The largest chunks that fit: as many batch elements as the per-batch buffers and the projection
/// grids allow, then as many (b, u) rows (or, when one row's scores are too big, queries) as one
/// probabilities binding and the attention grids allow. `s_in` is the number of key/value rows the
/// call projects per batch element: S, or a cached call's T new tokens (its keys and values live in
/// the cache, bound whole).
fn largest(p: &Problem, limits: &Limits, s_in: usize) -> Result<Chunking, GqaError> {
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
