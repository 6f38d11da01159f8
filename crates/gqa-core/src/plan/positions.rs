//! The positional prologue of a problem with QK-norm or RoPE: where its passes read the rotary
//! table, and the table itself ([`super::Plan::rope_table`], what [`BufferId::RopeTable`] holds).
//!
//! An uncached call puts query row `t` at position `t + query_shift` and key row `s` at `s` (the
//! shift is never negative with RoPE, [`crate::Problem::with_extensions`]): the table has one row
//! per position from 0 to the last one used. A cached call puts new token `i` of sequence `b`
//! (query and key alike) at `past[b] + i`: the table has one row per (b, i). Each row holds
//! `(m·cos, m·sin)` of every rotated pair's angle ([`crate::extensions::Rope::cos_sin`]), in f32.
//!
//! [`BufferId::RopeTable`]: super::BufferId::RopeTable

use crate::kv_cache::CacheUpdate;
use crate::problem::Problem;

/// Where the positional passes of a problem find their rows in the rotary table: row `r` of a
/// pass over batch chunk `b0` reads table row `r % len + base + b0 · batch_rows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PositionLayout {
    /// Query rows per position cycle (T uncached; no cycle, `u32::MAX`, cached).
    pub(crate) query_len: u32,
    /// The table row of query row 0.
    pub(crate) query_base: u32,
    /// Key rows per position cycle.
    pub(crate) key_len: u32,
    /// The table row of key row 0.
    pub(crate) key_base: u32,
    /// Table rows per batch element (0: every element reads the same rows).
    pub(crate) batch_rows: u32,
}

/// The layout, `None` when the problem has neither QK-norm nor RoPE.
pub(crate) fn layout(p: &Problem, cache: Option<&CacheUpdate>) -> Option<PositionLayout> {
    let e = &p.extensions;
    if e.rope.is_none() && e.qk_norm.is_none() {
        return None;
    }
    Some(match cache {
        None => PositionLayout {
            query_len: p.target_len as u32,
            query_base: p.mask.query_shift.max(0) as u32,
            key_len: p.source_len as u32,
            key_base: 0,
            batch_rows: 0,
        },
        Some(_) => PositionLayout {
            query_len: u32::MAX,
            query_base: 0,
            key_len: u32::MAX,
            key_base: 0,
            batch_rows: p.target_len as u32,
        },
    })
}

/// The positions of the table's rows.
fn positions(p: &Problem, cache: Option<&CacheUpdate>) -> Vec<usize> {
    match cache {
        None => (0..p.source_len.max(p.target_len + p.mask.query_shift.max(0) as usize)).collect(),
        Some(u) => u.past.iter().flat_map(|&past| (0..p.target_len).map(move |i| past + i)).collect(),
    }
}

/// The rotary table: `(m·cos, m·sin)` per row and pair, as f32; one zero where there is no rope
/// (the buffer is bound all the same).
pub(crate) fn table(p: &Problem, cache: Option<&CacheUpdate>) -> Vec<f32> {
    let Some(rope) = &p.extensions.rope else { return vec![0.0] };
    let rows = positions(p, cache);
    let mut out = Vec::with_capacity(rows.len() * rope.rotary_dim);
    for position in rows {
        for (c, s) in rope.cos_sin(position) {
            out.extend([c as f32, s as f32]);
        }
    }
    out
}
