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
        wgpu::TexelCopyTextureInfo {
            texture,
            mip_level: 0,
            origin: wgpu::Origin3d { x: 0, y: first_row, z: 0 },
            aspect: wgpu::TextureAspect::All,
        },
        bytemuck::cast_slice(data),
        wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(row_bytes), rows_per_image: Some(rows) },
        wgpu::Extent3d { width: texture.width(), height: rows, depth_or_array_layers: 1 },
    );
}

/// Copies consecutive rows of a row-major f32 matrix, starting at byte `offset` of `buffer`, into
/// rows `rows` of the matrix `texture` (`offset` a multiple of 16). One copy when a row is a
/// multiple of wgpu's 256-byte row alignment, else one per row.
pub(crate) fn copy_rows(
    encoder: &mut wgpu::CommandEncoder,
    buffer: &wgpu::Buffer,
    offset: u64,
    texture: &wgpu::Texture,
    rows: std::ops::Range<u32>,
) {
    let row_bytes = texture.width() * TEXEL_BYTES;
    let copy = |encoder: &mut wgpu::CommandEncoder, offset: u64, first: u32, count: u32| {
        encoder.copy_buffer_to_texture(
            wgpu::TexelCopyBufferInfo {
                buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset,
                    // A multiple of 256 is required whenever given; one row needs none.
                    bytes_per_row: (count > 1).then_some(row_bytes),
                    rows_per_image: (count > 1).then_some(count),
                },
            },
            wgpu::TexelCopyTextureInfo {
                texture,
                mip_level: 0,
                origin: wgpu::Origin3d { x: 0, y: first, z: 0 },
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::Extent3d { width: texture.width(), height: count, depth_or_array_layers: 1 },
        );
    };
    if rows.is_empty() {
        return;
    }
    if row_bytes.is_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) {
        copy(encoder, offset, rows.start, rows.len() as u32);
    } else {
        for (i, row) in rows.enumerate() {
            copy(encoder, offset + i as u64 * row_bytes as u64, row, 1);
        }
    }
}

/// A storage buffer (`STORAGE | COPY_SRC | COPY_DST`) holding the matrix `texture` row-major (`4
/// width` f32 columns, `height` rows), copied on the GPU and submitted on `queue` now: one copy when a
/// row is a multiple of wgpu's 256-byte row alignment, else one per row. The texture needs
/// `COPY_SRC`.
pub(crate) fn to_buffer(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    texture: &wgpu::Texture,
    label: &str,
) -> wgpu::Buffer {
    let row_bytes = texture.width() * TEXEL_BYTES;
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes(texture),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
    let copy = |encoder: &mut wgpu::CommandEncoder, first: u32, count: u32| {
        encoder.copy_texture_to_buffer(
            wgpu::TexelCopyTextureInfo {
                texture,
                mip_level: 0,
                origin: wgpu::Origin3d { x: 0, y: first, z: 0 },
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::TexelCopyBufferInfo {
                buffer: &buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: first as u64 * row_bytes as u64,
                    bytes_per_row: (count > 1).then_some(row_bytes),
                    rows_per_image: (count > 1).then_some(count),
                },
            },
            wgpu::Extent3d { width: texture.width(), height: count, depth_or_array_layers: 1 },
        );
    };
    if row_bytes.is_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) {
        copy(&mut encoder, 0, texture.height());
    } else {
        for row in 0..texture.height() {
            copy(&mut encoder, row, 1);
        }
    }
    queue.submit([encoder.finish()]);
    buffer
}
