//! A layer's weights on the device: one storage buffer per kernel and bias, and, where the context's
//! tuning reads the projections' operands from textures (`MatmulVariant::Textured`), each kernel
//! also as an rgba32float texture.

use std::collections::HashMap;

use gqa_core::{BufferId, Dense, GqaConfig, LayerDims, Limits, Precision, Tuning};

use crate::matrix_texture;

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
        let textures: u64 = self.textures.values().map(matrix_texture::bytes).sum();
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
        let usage = wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_DST;
        let texture = matrix_texture::create(device, &format!("gqa weight {id}"), (n / 4) as u32, k as u32, usage);
        matrix_texture::write_rows(queue, &texture, 0, data);
        self.textures.insert(id, texture);
    }
}
