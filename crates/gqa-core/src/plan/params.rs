//! The fields of [`Params`] that every pass of a problem shares (sizes, masks, dropout); each
//! emitting function adds its own.

use super::masks::MaskOffsets;
use crate::options::MaskedRows;
use crate::params::{Params, mask_flags};
use crate::problem::Problem;

/// The attention fields of [`Params`], shared by every pass of a problem.
pub(crate) fn shared(p: &Problem, offsets: &MaskOffsets) -> Params {
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
    let band = m.key_band();
    if band.is_some() {
        flags |= mask_flags::WINDOW;
    }
    // Within 2^30, so that the kernels' i32 position arithmetic cannot overflow.
    let bound = |x: usize| x.min(1 << 30) as u32;
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
        window_behind: band.map_or(0, |b| bound(b.behind)),
        window_ahead: band.map_or(0, |b| bound(b.ahead)),
        soft_cap: p.extensions.soft_cap.unwrap_or(0.0) as f32,
        sinks: p.extensions.sinks as u32,
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
