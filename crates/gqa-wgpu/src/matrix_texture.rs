//! f32 matrices kept as rgba32float textures (4 columns per texel, one matrix row per texel row):
//! the weights, the packed operands and the KV cache's mirrors of the CPU adapters' tuning. Creating
//! them, writing rows from the host, and copying rows from a buffer.

/// The format of every texture a plan uses (4 f32 per texel).
pub(crate) const TEXTURE_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba32Float;

/// Bytes of one texel.
const TEXEL_BYTES: u32 = 16;

/// A 2D rgba32float texture of `width` x `height` texels: a matrix of `4 width` columns and `height`
/// rows.
pub(crate) fn create(
    device: &wgpu::Device,
    label: &str,
    width: u32,
    height: u32,
    usage: wgpu::TextureUsages,
) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: TEXTURE_FORMAT,
        usage,
        view_formats: &[],
    })
}

/// Bytes of device memory a matrix texture takes.
pub(crate) fn bytes(texture: &wgpu::Texture) -> u64 {
    texture.width() as u64 * texture.height() as u64 * TEXEL_BYTES as u64
}

/// Writes whole rows of the matrix from the host: `data` (row-major, a multiple of the texture's
/// `4 width` columns) into the rows from `first_row` on.
pub(crate) fn write_rows(queue: &wgpu::Queue, texture: &wgpu::Texture, first_row: u32, data: &[f32]) {
    let row_bytes = texture.width() * TEXEL_BYTES;
    let rows = (std::mem::size_of_val(data) as u32) / row_bytes;
    queue.write_texture(
        texture_rows(texture, first_row),
        bytemuck::cast_slice(data),
        wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(row_bytes), rows_per_image: Some(rows) },
        rows_extent(texture, rows),
    );
}

/// The copies that move rows `rows` of a matrix texture with `row_bytes` bytes per row to or from a
/// row-major buffer starting at byte `offset` (a multiple of 16): one when a row is a multiple of
/// wgpu's 256-byte row alignment, else one per row. Each is the buffer's layout, the texture's first
/// row and the row count.
fn row_copies(row_bytes: u32, offset: u64, rows: std::ops::Range<u32>) -> Vec<(wgpu::TexelCopyBufferLayout, u32, u32)> {
    let layout = |offset: u64, count: u32| wgpu::TexelCopyBufferLayout {
        offset,
        // A multiple of 256 is required whenever given; one row needs none.
        bytes_per_row: (count > 1).then_some(row_bytes),
        rows_per_image: (count > 1).then_some(count),
    };
    if rows.is_empty() {
        Vec::new()
    } else if row_bytes.is_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) {
        vec![(layout(offset, rows.len() as u32), rows.start, rows.len() as u32)]
    } else {
        rows.enumerate().map(|(i, row)| (layout(offset + i as u64 * row_bytes as u64, 1), row, 1)).collect()
    }
}

/// Rows `first ..` of the matrix `texture`, for a copy.
fn texture_rows(texture: &wgpu::Texture, first: u32) -> wgpu::TexelCopyTextureInfo<'_> {
    wgpu::TexelCopyTextureInfo {
        texture,
        mip_level: 0,
        origin: wgpu::Origin3d { x: 0, y: first, z: 0 },
        aspect: wgpu::TextureAspect::All,
    }
}

/// `count` whole rows of the matrix `texture`.
fn rows_extent(texture: &wgpu::Texture, count: u32) -> wgpu::Extent3d {
    wgpu::Extent3d { width: texture.width(), height: count, depth_or_array_layers: 1 }
}

/// Copies consecutive rows of a row-major f32 matrix, starting at byte `offset` of `buffer`, into
/// rows `rows` of the matrix `texture` (`offset` a multiple of 16), as [`row_copies`] splits them.
pub(crate) fn copy_rows(
    encoder: &mut wgpu::CommandEncoder,
    buffer: &wgpu::Buffer,
    offset: u64,
    texture: &wgpu::Texture,
    rows: std::ops::Range<u32>,
) {
    for (layout, first, count) in row_copies(texture.width() * TEXEL_BYTES, offset, rows) {
        encoder.copy_buffer_to_texture(
            wgpu::TexelCopyBufferInfo { buffer, layout },
            texture_rows(texture, first),
            rows_extent(texture, count),
        );
    }
}

/// A storage buffer (`STORAGE | COPY_SRC | COPY_DST`) holding the matrix `texture` row-major (`4
/// width` f32 columns, `height` rows), copied on the GPU as [`row_copies`] splits it and submitted
/// on `queue` now. The texture needs `COPY_SRC`.
pub(crate) fn to_buffer(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    texture: &wgpu::Texture,
    label: &str,
) -> wgpu::Buffer {
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes(texture),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
    for (layout, first, count) in row_copies(texture.width() * TEXEL_BYTES, 0, 0..texture.height()) {
        encoder.copy_texture_to_buffer(
            texture_rows(texture, first),
            wgpu::TexelCopyBufferInfo { buffer: &buffer, layout },
            rows_extent(texture, count),
        );
    }
    queue.submit([encoder.finish()]);
    buffer
}
