//! Matrices kept as rgba32float textures (4 f32 per texel) for the kernels that read
//! [`Operands::Texture`](super::Operands::Texture): their shape, their padded rows, and whether one
//! fits a device.

use super::Kernel;
use crate::limits::Limits;

/// The shape of a plan resource that is a 2D rgba32float texture (4 f32 per texel) rather than a
/// buffer: a matrix of `4 width` columns and `height` rows, each row allocated `row_texels` wide
/// ([`TextureShape::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextureShape {
    /// Texels per row that hold the matrix (its columns / 4): what the kernels read and the copies
    /// move.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Texels per row the texture allocates: `width` padded by [`row_texels`] (the texture's width as
    /// the device sees it; the texels past `width` are never read).
    pub row_texels: u32,
}

impl TextureShape {
    /// A matrix texture of `width` x `height` texels, its rows padded as [`row_texels`] says.
    pub fn new(width: u32, height: u32) -> Self {
        Self { width, height, row_texels: row_texels(width) }
    }

    /// Bytes of device memory the texture takes (16 per texel, padding included).
    pub fn bytes(&self) -> u64 {
        self.row_texels as u64 * self.height as u64 * 16
    }
}

/// Texels a matrix texture allocates per row to hold `width`: `width` rounded up to the next count
/// that is 4 more than a multiple of 8, so that a row spans an odd number of 64-byte cache lines
/// (at most 7 texels, 112 bytes, more per row).
///
/// Why: on CPU adapters (Mesa llvmpipe lays a texture out row-major, rows 64-byte aligned) a row of
/// a power-of-two width is a multiple of 4 KiB, and the rows a kernel gathers from at once (the 4
/// rows of B a step of the matmul reads, the keys of 8 lanes in the block attention) then all fall
/// into the same sets of the core's caches and evict each other. With an odd number of lines per
/// row, consecutive rows map to different sets (on lavapipe the textured matmul and the block
/// attention run faster padded than unpadded). On GPUs the kernels that read textures are not chosen, and the padding costs nothing but memory.
pub fn row_texels(width: u32) -> u32 {
    width.saturating_add((12 - width % 8) % 8)
}

/// Whether a row-major `rows` x `cols` f32 matrix fits one rgba32float texture of `cols / 4` x
/// `rows` texels that the kernels can bind: `cols` a multiple of 4, neither side empty, both within
/// `max_texture_dimension_2d` (the width as allocated, padded by [`row_texels`]), and as many
/// storage textures per stage as the kernel that binds the most. The weights, the packed operands
/// (the projections' inputs, the projected Q, K and V of the textured block attention) and the KV
/// cache's mirrors all ask this, the weights and mirrors with further conditions of their own.
pub fn matrix_texture_fits(rows: u64, cols: u64, limits: &Limits) -> bool {
    let max = limits.max_texture_dimension_2d as u64;
    cols.is_multiple_of(4)
        && cols >= 4
        && cols / 4 <= max
        && row_texels((cols / 4) as u32) as u64 <= max
        && rows >= 1
        && rows <= max
        && limits.max_storage_textures_per_shader_stage >= texture_bindings_needed()
}

/// The most storage textures one kernel binds (the textured attention's Q, K and V).
fn texture_bindings_needed() -> u32 {
    Kernel::ALL.iter().map(|k| k.storage_textures()).max().unwrap_or(0)
}

/// Whether a `k` x `n` weight can be kept as an rgba32float texture of `n / 4` x `k` texels (`n`
/// and `k` multiples of 4, both sides within `max_texture_dimension_2d`): what a layer decides
/// once, when it uploads its weights.
pub fn weight_texture_fits(k: u64, n: u64, limits: &Limits) -> bool {
    k.is_multiple_of(4) && matrix_texture_fits(k, n, limits)
}

/// Whether an `m` x `k` by `k` x `n` product can read its operands from rgba32float textures: the
/// weight ([`weight_texture_fits`]) and A (`k / 4` texels wide, `m` high) within
/// `max_texture_dimension_2d`, and a storage texture allowed per stage (for packing A).
pub fn product_texture_fits(m: u64, k: u64, n: u64, limits: &Limits) -> bool {
    weight_texture_fits(k, n, limits) && matrix_texture_fits(m, k, limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every padded row is an odd number of 64-byte lines (4 texels each), at most 7 texels longer
    /// than the matrix's row, and never shorter.
    #[test]
    fn texture_rows_span_an_odd_number_of_cache_lines() {
        assert_eq!([1, 4, 8, 256, 1024, 1027, 1029].map(row_texels), [4, 4, 12, 260, 1028, 1028, 1036]);
        for width in 1..2000u32 {
            let padded = row_texels(width);
            assert!(padded >= width && padded - width <= 7, "{width} -> {padded}");
            assert_eq!((padded / 4) % 2, 1, "{width} -> {padded}");
            assert_eq!(padded % 4, 0, "{width} -> {padded}");
        }
        let shape = TextureShape::new(1024, 3);
        assert_eq!((shape.width, shape.row_texels, shape.bytes()), (1024, 1028, 1028 * 3 * 16));
    }

    /// A matrix fits a texture only if its padded rows do: at a 8192-texel limit, 32,752 columns
    /// (8188 texels, already 4 more than a multiple of 8) fit and 32,768 (8192, padded to 8196) do
    /// not.
    #[test]
    fn texture_fit_counts_the_padded_row() {
        let limits = Limits { max_texture_dimension_2d: 8192, ..Limits::default() };
        assert!(matrix_texture_fits(16, 32_752, &limits));
        assert!(!matrix_texture_fits(16, 32_768, &limits));
    }
}
