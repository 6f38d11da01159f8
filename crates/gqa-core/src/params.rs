//! `Params`: the one uniform struct every kernel reads, mirrored field for field in
//! `shaders/common/params.wgsl` (a test compares naga's reflected layout with this one). Each field
//! means one thing in every kernel that reads it; a kernel ignores the fields it does not read.

use bytemuck::{Pod, Zeroable};

/// Bits of [`Params::mask_flags`].
pub mod mask_flags {
    /// An attention mask is bound (strides `am_stride_*`, offset `am_offset`).
    pub const ATTENTION: u32 = 1;
    /// A query mask (B, T) at `qm_offset`.
    pub const QUERY: u32 = 2;
    /// A value mask (B, S) at `vm_offset`.
    pub const VALUE: u32 = 4;
    /// A key mask (B, S) at `km_offset`.
    pub const KEY: u32 = 8;
    /// Causal: key `j` visible iff `j <= i + causal_shift`.
    pub const CAUSAL: u32 = 16;
    /// Window band: visible iff `p - j <= window_behind` and `j - p <= window_ahead`, with
    /// `p = i + causal_shift`.
    pub const WINDOW: u32 = 32;
}

/// Bits of [`Params::position_flags`].
pub mod position_flags {
    /// RMS-normalize each head with the bound scale first.
    pub const NORM: u32 = 1;
    /// The norm multiplies by `1 + scale` (else `scale`).
    pub const ONE_PLUS_SCALE: u32 = 2;
    /// Store the rotated halves interleaved (`out[2i] = y[i]`, `out[2i + 1] = y[i + H/2]`).
    pub const INTERLEAVED: u32 = 4;
}

/// Bits of [`Params::matmul_flags`].
pub mod matmul_flags {
    /// Add the bias row vector.
    pub const BIAS: u32 = 1;
    /// Apply a sigmoid to the result (the gate).
    pub const SIGMOID: u32 = 2;
}

/// Shader parameters, one instance per dispatch, bound as a uniform at `@group(0) @binding(0)`.
///
/// All fields are 4 bytes; the struct is 208 bytes (a multiple of 16, as uniforms need).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable, Default)]
pub struct Params {
    /// Matmul: rows of A and C (its sizes are `m`, `n`, `k` only in the matmuls).
    pub m: u32,
    /// Matmul: columns of B and C.
    pub n: u32,
    /// Matmul: the contracted size.
    pub k: u32,
    /// Matmul: [`matmul_flags`].
    pub matmul_flags: u32,
    /// B.
    pub batch: u32,
    /// T.
    pub t_len: u32,
    /// S.
    pub s_len: u32,
    /// Nq.
    pub nq: u32,
    /// Nkv.
    pub nkv: u32,
    /// H.
    pub head_dim: u32,
    /// R = Nq / Nkv.
    pub group: u32,
    /// `1 / sqrt(H)`.
    pub scale: f32,
    /// [`mask_flags`].
    pub mask_flags: u32,
    /// Query position shift for causal and window (0 top-left, S - T bottom-right).
    pub causal_shift: i32,
    /// Keys at most this far before the query's position are visible (with [`mask_flags::WINDOW`]).
    pub window_behind: u32,
    /// Attention mask stride along B (elements; 0 when broadcast).
    pub am_stride_b: u32,
    /// Attention mask stride along Nq.
    pub am_stride_h: u32,
    /// Attention mask stride along T.
    pub am_stride_t: u32,
    /// Attention mask stride along S.
    pub am_stride_s: u32,
    /// Bit offset of the attention mask in the packed mask buffer.
    pub am_offset: u32,
    /// Bit offset of the query mask.
    pub qm_offset: u32,
    /// Bit offset of the value mask.
    pub vm_offset: u32,
    /// Bit offset of the key mask.
    pub km_offset: u32,
    /// 0: fully masked rows give zeros; 1: Keras' default call (uniform over S).
    pub masked_rows: u32,
    /// Dropout rate (0: no dropout).
    pub dropout_rate: f32,
    /// `1 / (1 - rate)`.
    pub dropout_scale: f32,
    /// Low 32 bits of the dropout seed.
    pub seed_lo: u32,
    /// High 32 bits of the dropout seed.
    pub seed_hi: u32,
    /// 1 when the gate multiplies the attention output.
    pub use_gate: u32,
    /// First batch element of this chunk (global index, for masks and dropout).
    pub b_base: u32,
    /// First (b, u) row of this attention chunk, `b_local * Nq + u`, relative to the batch chunk.
    pub bu_base: u32,
    /// First query of this attention chunk.
    pub t_base: u32,
    /// Queries in this attention chunk (the probabilities buffer holds `t_count` rows per head).
    pub t_count: u32,
    /// Keys per split of the fused kernel in split (decode) mode; 0: one pass over all S keys.
    pub split_keys: u32,
    /// Keys between consecutive batch elements of K and V as the attention kernels read them: S for a
    /// plain call, the capacity of the KV cache for a cached call.
    pub kv_stride: u32,
    /// [`crate::Kernel::CheckValues`]: vec4s of the projected values to check.
    pub check_vec4s: u32,
    /// [`crate::Kernel::CheckValues`]: 1 to write "unknown" (1) without reading the values (a cached
    /// call, whose values are in the cache).
    pub values_unknown: u32,
    /// [`crate::Kernel::PackTexture`]: rows of the matrix packed.
    pub pack_rows: u32,
    /// [`crate::Kernel::PackTexture`]: columns of the matrix packed (a multiple of 4).
    pub pack_cols: u32,
    /// [`crate::Kernel::AppendToCache`]: tokens appended (rows of the projected keys and values).
    pub append_rows: u32,
    /// [`crate::Kernel::AppendToCache`]: the first projected row appended (`b * T + i`).
    pub append_src_row: u32,
    /// [`crate::Kernel::AppendToCache`]: the cache row it goes to (`b * capacity + slot`).
    pub append_dst_row: u32,
    /// Keys at most this far after the query's position are visible (with
    /// [`mask_flags::WINDOW`]; at most 2^30, which no position reaches).
    pub window_ahead: u32,
    /// The logit soft cap `cap · tanh(s / cap)` on the scaled scores (0: none).
    pub soft_cap: f32,
    /// 1 when each query head's sink logit (bound beside the probabilities) joins the softmax's
    /// denominator.
    pub sinks: u32,
    /// [`crate::Kernel::Position`]: rows of the projection it processes.
    pub position_rows: u32,
    /// [`crate::Kernel::Position`]: heads per row (Nq or Nkv).
    pub position_heads: u32,
    /// [`crate::Kernel::Position`]: the rotary table's row of each sequence's first row.
    pub rope_row_base: u32,
    /// [`crate::Kernel::Position`]: pairs rotated per head (R / 2; 0: no rotation).
    pub rope_half: u32,
    /// [`crate::Kernel::Position`]: [`position_flags`].
    pub position_flags: u32,
    /// [`crate::Kernel::Position`]: the norm's epsilon.
    pub norm_epsilon: f32,
    /// [`crate::Kernel::Position`]: rows per sequence (T for queries, the key rows for keys): row
    /// `r` sits at table row `r % position_len + rope_row_base`.
    pub position_len: u32,
}

impl Params {
    /// Field names in declaration order with their byte offsets, for checking the WGSL twin.
    pub const FIELDS: [(&'static str, usize); 52] = [
        ("m", 0),
        ("n", 4),
        ("k", 8),
        ("matmul_flags", 12),
        ("batch", 16),
        ("t_len", 20),
        ("s_len", 24),
        ("nq", 28),
        ("nkv", 32),
        ("head_dim", 36),
        ("group", 40),
        ("scale", 44),
        ("mask_flags", 48),
        ("causal_shift", 52),
        ("window_behind", 56),
        ("am_stride_b", 60),
        ("am_stride_h", 64),
        ("am_stride_t", 68),
        ("am_stride_s", 72),
        ("am_offset", 76),
        ("qm_offset", 80),
        ("vm_offset", 84),
        ("km_offset", 88),
        ("masked_rows", 92),
        ("dropout_rate", 96),
        ("dropout_scale", 100),
        ("seed_lo", 104),
        ("seed_hi", 108),
        ("use_gate", 112),
        ("b_base", 116),
        ("bu_base", 120),
        ("t_base", 124),
        ("t_count", 128),
        ("split_keys", 132),
        ("kv_stride", 136),
        ("check_vec4s", 140),
        ("values_unknown", 144),
        ("pack_rows", 148),
        ("pack_cols", 152),
        ("append_rows", 156),
        ("append_src_row", 160),
        ("append_dst_row", 164),
        ("window_ahead", 168),
        ("soft_cap", 172),
        ("sinks", 176),
        ("position_rows", 180),
        ("position_heads", 184),
        ("rope_row_base", 188),
        ("rope_half", 192),
        ("position_flags", 196),
        ("norm_epsilon", 200),
        ("position_len", 204),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn field_table_matches_rust_layout() {
        assert_eq!(size_of::<Params>(), 208);
        assert_eq!(offset_of!(Params, scale), 44);
        assert_eq!(offset_of!(Params, causal_shift), 52);
        assert_eq!(offset_of!(Params, masked_rows), 92);
        assert_eq!(offset_of!(Params, use_gate), 112);
        assert_eq!(offset_of!(Params, t_count), 128);
        assert_eq!(offset_of!(Params, kv_stride), 136);
        assert_eq!(offset_of!(Params, check_vec4s), 140);
        assert_eq!(offset_of!(Params, pack_cols), 152);
        assert_eq!(offset_of!(Params, append_dst_row), 164);
        assert_eq!(offset_of!(Params, soft_cap), 172);
        assert_eq!(offset_of!(Params, position_len), 204);
        for w in Params::FIELDS.windows(2) {
            assert_eq!(w[1].1, w[0].1 + 4, "{:?}", w);
        }
    }
}
