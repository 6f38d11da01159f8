//! A layer's weights on the device: one storage buffer per bias and per kernel, except that where
//! the context's tuning reads the projections' operands from textures (`MatmulVariant::Textured`) a
//! kernel is kept as an rgba32float texture instead, its buffer made from the texture only when a
//! plan binds it.

use std::collections::HashMap;
use std::sync::Mutex;

use gqa_core::{BufferId, Dense, GqaConfig, LayerDims, Limits, Precision, TextureShape, Tuning};

use crate::matrix_texture::MatrixTexture;

/// The weights of one layer, by plan resource id.
#[derive(Default)]
pub(crate) struct WeightStore {
    /// [`BufferId::Weight`] and [`BufferId::Bias`] buffers.
    pub(crate) buffers: HashMap<BufferId, wgpu::Buffer>,
    /// [`BufferId::WeightTexture`] textures.
    pub(crate) textures: HashMap<BufferId, MatrixTexture>,
    /// [`BufferId::Weight`] buffers made from their textures, the first time a plan bound one.
    made: Mutex<HashMap<BufferId, wgpu::Buffer>>,
}

impl WeightStore {
    /// Bytes of device memory the weights take.
    pub(crate) fn bytes(&self) -> u64 {
        let buffers: u64 = self.buffers.values().map(wgpu::Buffer::size).sum();
        let textures: u64 = self.textures.values().map(MatrixTexture::bytes).sum();
        let made: u64 = self.made.lock().unwrap_or_else(|e| e.into_inner()).values().map(wgpu::Buffer::size).sum();
        buffers + textures + made
    }

    /// The weight buffer `id`: uploaded, or, for a kernel kept as a texture, made from the texture
    /// (a copy submitted on `queue` before it is returned, so any later submission sees it) the
    /// first time it is asked for, and kept. `None` when the layer has neither.
    pub(crate) fn buffer(&self, device: &wgpu::Device, queue: &wgpu::Queue, id: BufferId) -> Option<wgpu::Buffer> {
        if let Some(b) = self.buffers.get(&id) {
            return Some(b.clone());
        }
        let BufferId::Weight(d) = id else { return None };
        let texture = self.textures.get(&BufferId::WeightTexture(d))?;
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = made.get(&id) {
            return Some(b.clone());
        }
        let buffer = texture.to_buffer(device, queue, &format!("gqa weight {id}"));
        made.insert(id, buffer.clone());
        Some(buffer)
    }

    /// Whether a layer keeps `d`'s kernel as a texture (instead of a buffer): the rule plans apply
    /// ([`Tuning::keeps_weight_texture`]), so a plan that lists [`BufferId::WeightTexture`] finds it.
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

    /// Uploads a `k` x `n` f32 kernel (row-major) as a texture of `n / 4` x `k` texels (rows padded as
    /// [`gqa_core::row_texels`] says).
    pub(crate) fn upload_texture(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        d: Dense,
        (k, n): (usize, usize),
        data: &[f32],
    ) {
        let id = BufferId::WeightTexture(d);
        let usage =
            wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_DST | wgpu::TextureUsages::COPY_SRC;
        let shape = TextureShape::new((n / 4) as u32, k as u32);
        let texture = MatrixTexture::create(device, &format!("gqa weight {id}"), shape, usage);
        texture.write_rows(queue, 0, data);
        self.textures.insert(id, texture);
    }
}
