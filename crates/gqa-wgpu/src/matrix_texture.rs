//! f32 matrices kept as rgba32float textures (4 columns per texel, one matrix row per texel row):
//! the weights, the packed operands and the KV cache's mirrors of the CPU adapters' tuning. Creating
//! them (rows padded as [`gqa_core::row_texels`] says), writing rows from the host, and copying rows
//! from and to buffers.

use gqa_core::TextureShape;

/// The format of every texture a plan uses (4 f32 per texel).
pub(crate) const TEXTURE_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba32Float;

/// Bytes of one texel.
const TEXEL_BYTES: u32 = 16;

/// A matrix of `4 shape.width` f32 columns and `shape.height` rows in a 2D rgba32float texture whose
/// rows are `shape.row_texels` wide: the copies move the first `width` texels of each row, the
/// kernels read no others.
#[derive(Debug, Clone)]
pub(crate) struct MatrixTexture {
    texture: wgpu::Texture,
    shape: TextureShape,
}

impl MatrixTexture {
    /// Creates the texture for `shape` (`shape.row_texels` x `shape.height` texels on the device).
    pub(crate) fn create(device: &wgpu::Device, label: &str, shape: TextureShape, usage: wgpu::TextureUsages) -> Self {
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size: wgpu::Extent3d { width: shape.row_texels, height: shape.height, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: TEXTURE_FORMAT,
            usage,
            view_formats: &[],
        });
        Self { texture, shape }
    }

    /// The matrix's shape in texels (its padding included).
    pub(crate) fn shape(&self) -> TextureShape {
        self.shape
    }

    /// A view of the whole texture, to bind.
    pub(crate) fn view(&self) -> wgpu::TextureView {
        self.texture.create_view(&wgpu::TextureViewDescriptor::default())
    }

    /// Bytes of device memory the texture takes (its padding included).
    pub(crate) fn bytes(&self) -> u64 {
        self.shape.bytes()
    }

    /// Bytes of one row of the matrix in a row-major buffer.
    pub(crate) fn row_bytes(&self) -> u32 {
        self.shape.width * TEXEL_BYTES
    }

    /// Writes whole rows of the matrix from the host: `data` (row-major, a multiple of the matrix's
    /// `4 width` columns) into the rows from `first_row` on.
    pub(crate) fn write_rows(&self, queue: &wgpu::Queue, first_row: u32, data: &[f32]) {
        let rows = (std::mem::size_of_val(data) as u32) / self.row_bytes();
        queue.write_texture(
            self.rows(first_row),
            bytemuck::cast_slice(data),
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(self.row_bytes()),
                rows_per_image: Some(rows),
            },
            self.extent(rows),
        );
    }

    /// Copies consecutive rows of a row-major f32 matrix, starting at byte `offset` of `buffer`, into
    /// rows `rows` of the matrix (`offset` a multiple of 16), as [`row_copies`] splits them.
    pub(crate) fn copy_rows(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        buffer: &wgpu::Buffer,
        offset: u64,
        rows: std::ops::Range<u32>,
    ) {
        for (layout, first, count) in row_copies(self.row_bytes(), offset, rows) {
            encoder.copy_buffer_to_texture(
                wgpu::TexelCopyBufferInfo { buffer, layout },
                self.rows(first),
                self.extent(count),
            );
        }
    }

    /// A storage buffer (`STORAGE | COPY_SRC | COPY_DST`) holding the matrix row-major (`4 width` f32
    /// columns, `height` rows, no padding), copied on the GPU as [`row_copies`] splits it and
    /// submitted on `queue` now. The texture needs `COPY_SRC`.
    pub(crate) fn to_buffer(&self, device: &wgpu::Device, queue: &wgpu::Queue, label: &str) -> wgpu::Buffer {
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: self.row_bytes() as u64 * self.shape.height as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        for (layout, first, count) in row_copies(self.row_bytes(), 0, 0..self.shape.height) {
            encoder.copy_texture_to_buffer(
                self.rows(first),
                wgpu::TexelCopyBufferInfo { buffer: &buffer, layout },
                self.extent(count),
            );
        }
        queue.submit([encoder.finish()]);
        buffer
    }

    /// Rows `first ..` of the matrix, for a copy.
    fn rows(&self, first: u32) -> wgpu::TexelCopyTextureInfo<'_> {
        wgpu::TexelCopyTextureInfo {
            texture: &self.texture,
            mip_level: 0,
            origin: wgpu::Origin3d { x: 0, y: first, z: 0 },
            aspect: wgpu::TextureAspect::All,
        }
    }

    /// `count` whole rows of the matrix (its `width` texels, not the padding).
    fn extent(&self, count: u32) -> wgpu::Extent3d {
        wgpu::Extent3d { width: self.shape.width, height: count, depth_or_array_layers: 1 }
    }
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
