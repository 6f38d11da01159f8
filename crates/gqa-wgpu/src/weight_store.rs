//! A layer's weights on the device: one storage buffer per bias and per kernel, except that where
//! the context's tuning reads the projections' operands from textures (`MatmulVariant::Textured`) a
//! kernel is kept as an rgba32float texture instead, its buffer made from the texture only when a
//! plan binds it.

use std::collections::HashMap;
use std::sync::Mutex;

use gqa_core::{
    BufferId, Dense, ExtensionWeight, ExtensionWeights, GqaConfig, HostTensor, LayerDims, Limits, Precision,
    TextureShape, Tuning, Weights,
};

use crate::context::GpuContext;
use crate::matrix_texture::MatrixTexture;
use crate::upload::upload;

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
    /// Uploads `weights` (validated for `config`) in `precision`: each kernel as a buffer or, where
    /// [`WeightStore::wants_texture`], as a texture alone (plans bind its buffer only for calls too
    /// tall for the textures; [`WeightStore::buffer`] makes it then), and each bias as a buffer.
    /// In f16 the values are rounded once, here. Errors surface in the caller's error scopes.
    pub(crate) fn upload(ctx: &GpuContext, config: &GqaConfig, weights: &Weights, precision: Precision) -> Self {
        let (device, queue) = (&ctx.device, &ctx.queue);
        let dims = weights.dims();
        let limits = ctx.limits();
        let mut store = Self::default();
        let buffers = &mut store.buffers;
        let mut textured = Vec::new();
        for d in Dense::ALL {
            let Some(w) = weights.dense(d) else { continue };
            let as_texture = Self::wants_texture(d, config, dims, ctx.tuning(), precision, &limits);
            if as_texture {
                textured.push((d, d.kernel_fans(config, dims), w.kernel.data()));
            }
            let mut upload = |id: BufferId, t: &HostTensor| {
                let f16_bytes;
                let bytes: &[u8] = match precision {
                    Precision::F32 => bytemuck::cast_slice(t.data()),
                    Precision::F16 => {
                        f16_bytes = f16_le_bytes(t.data());
                        &f16_bytes
                    }
                };
                let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
                buffers.insert(id, upload(device, queue, &format!("gqa weight {id}"), bytes, usage));
            };
            if !as_texture {
                upload(BufferId::Weight(d), &w.kernel);
            }
            if let Some(b) = &w.bias {
                upload(BufferId::Bias(d), b);
            }
        }
        for (d, shape, data) in textured {
            store.upload_texture(device, queue, d, shape, data);
        }
        store
    }

    /// Uploads the attention extensions' weights (f32, whatever the layer's precision), replacing
    /// any uploaded before.
    pub(crate) fn upload_extensions(&mut self, ctx: &GpuContext, weights: &ExtensionWeights) {
        let entries = [
            (ExtensionWeight::QueryNorm, &weights.query_norm),
            (ExtensionWeight::KeyNorm, &weights.key_norm),
            (ExtensionWeight::Sinks, &weights.sinks),
        ];
        for (which, tensor) in entries {
            let id = BufferId::ExtensionWeight(which);
            self.buffers.remove(&id);
            if let Some(t) = tensor {
                let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
                let bytes = bytemuck::cast_slice(t.data());
                self.buffers.insert(id, upload(&ctx.device, &ctx.queue, &format!("gqa weight {id}"), bytes, usage));
            }
        }
    }

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
    fn wants_texture(
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
    fn upload_texture(
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

/// `data` rounded to f16 (to nearest even), as little-endian bytes padded to a multiple of 4 (the
/// queue writes whole 4-byte words).
fn f16_le_bytes(data: &[f32]) -> Vec<u8> {
    let mut bytes: Vec<u8> = data.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect();
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    bytes
}
