//! The positional prologue of a problem with QK-norm or RoPE: where its passes read the rotary
//! table, and the table itself ([`super::Plan::rope_table`], what [`BufferId::RopeTable`] holds).
//!
//! Query row `t` sits at position `t + query_shift` and key row `s` at `s` (uncached calls; the
//! shift is never negative with RoPE, [`crate::Problem::with_extensions`]). The table has one row
//! per position from 0 to the last one used, each holding `(m·cos, m·sin)` of every rotated pair's
//! angle ([`crate::extensions::Rope::cos_sin`]), in f32.
//!
//! [`BufferId::RopeTable`]: super::BufferId::RopeTable

use crate::problem::Problem;

/// Where the positional passes of a problem find their rows in the rotary table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PositionLayout {
    /// The table row of query row 0.
    pub(crate) query_base: u32,
    /// The table row of key row 0.
    pub(crate) key_base: u32,
}

/// The layout, `None` when the problem has neither QK-norm nor RoPE.
pub(crate) fn layout(p: &Problem) -> Option<PositionLayout> {
    let e = &p.extensions;
    (e.rope.is_some() || e.qk_norm.is_some())
        .then(|| PositionLayout { query_base: p.mask.query_shift.max(0) as u32, key_base: 0 })
}

/// The rotary table: `(m·cos, m·sin)` per position and pair, as f32; one zero where there is no
/// rope (the buffer is bound all the same).
pub(crate) fn table(p: &Problem) -> Vec<f32> {
    let Some(rope) = &p.extensions.rope else { return vec![0.0] };
    let rows = p.source_len.max(p.target_len + p.mask.query_shift.max(0) as usize);
    let mut out = Vec::with_capacity(rows * rope.rotary_dim);
    for position in 0..rows {
        for (c, s) in rope.cos_sin(position) {
            out.extend([c as f32, s as f32]);
        }
    }
    out
}
