//! A layer's weights on the device: one storage buffer per kernel and bias, and, where the context's
//! tuning reads the projections' operands from textures (`MatmulVariant::Textured`), each kernel
//! also as an rgba32float texture.

use std::collections::HashMap;

use gqa_core::{BufferId, Dense, GqaConfig, LayerDims, Limits, Precision, Tuning};

use crate::pipelines::TEXTURE_FORMAT;

/// The weights of one layer, by plan resource id.
#[derive(Default)]
pub(crate) struct WeightStore {
    /// [`BufferId::Kernel`] and [`BufferId::Bias`] buffers.
    pub(crate) buffers: HashMap<BufferId, wgpu::Buffer>,
    /// [`BufferId::KernelTexture`] textures.
    pub(crate) textures: HashMap<BufferId, wgpu::Texture>,
}

impl WeightStore {
    /// Bytes of device memory the weights take.
    pub(crate) fn bytes(&self) -> u64 {
        let buffers: u64 = self.buffers.values().map(wgpu::Buffer::size).sum();
        let textures: u64 = self
            .textures
            .values()
            .map(|t| t.width() as u64 * t.height() as u64 * TEXTURE_FORMAT.block_copy_size(None).unwrap_or(16) as u64)
            .sum();
        buffers + textures
    }

    /// Whether a layer keeps `d`'s kernel as a texture too: the rule plans apply
    /// ([`Tuning::keeps_weight_texture`]), so a plan that lists [`BufferId::KernelTexture`] finds it.
    pub(crate) fn wants_texture(
        d: Dense,
        config: &GqaConfig,
        dims: LayerDims,
        tuning: Tuning,
        precision: Precision,
        limits: &Limits,
    ) -> bool {
        let (k, n) = d.kernel_fans(config, dims);
        Tuning { precision, ..tuning }.keeps_weight_texture(k as u64, n as u64, limits)
    }

    /// Uploads a `k` x `n` f32 kernel (row-major) as a texture of `n / 4` x `k` texels.
    pub(crate) fn upload_texture(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        d: Dense,
        (k, n): (usize, usize),
        data: &[f32],
    ) {
        let id = BufferId::KernelTexture(d);
        let size = wgpu::Extent3d { width: (n / 4) as u32, height: k as u32, depth_or_array_layers: 1 };
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some(&format!("gqa weight {id}")),
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: TEXTURE_FORMAT,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        queue.write_texture(
            texture.as_image_copy(),
            bytemuck::cast_slice(data),
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some((n * 4) as u32),
                rows_per_image: Some(k as u32),
            },
            size,
        );
        self.textures.insert(id, texture);
    }
}
