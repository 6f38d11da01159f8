//! `KvCache`: a layer's projected keys and values kept on the GPU between calls, for autoregressive
//! decoding (prefill a prompt, then step token by token), with per-sequence lengths.

use gqa_core::{CacheContents, CacheShape, CacheStorage, GqaError, TextureShape};

use crate::context::GpuContext;
use crate::encode::CacheBuffers;
use crate::error::GpuError;
use crate::error_scope::{Catch, scoped};
use crate::layer::GqaLayer;
use crate::matrix_texture::MatrixTexture;
use crate::tensor::GpuTensor;

/// A KV cache on the GPU for one [`GqaLayer`]: projected keys and values, each (B, capacity, Nkv,
/// H), and each sequence's current length.
///
/// The keys and values are stored as f32, f16 or int8 ([`CacheStorage`], chosen at creation with
/// [`KvCache::from_shape`]; [`KvCache::new`] and [`KvCache::new_ring`] store them as the layer
/// projects them: f32, or f16 for a layer computing in f16). A quantized cache of an f32 layer is
/// written by a pass that quantizes the new tokens in the call's own submission and read by
/// attention kernels that dequantize as they load, so a decode step reads half (f16) or about a
/// quarter (int8) of the f32 cache's bytes; an f16 layer copies its f16 projections into its f16
/// cache, which its f16 attention kernels read as they read those projections.
///
/// The batch size and the capacity are fixed at creation; appending past the capacity is an error
/// ([`GqaError::CacheFull`]) unless the cache is first made larger with [`KvCache::grow`] (which
/// copies the held tokens into new buffers). Sequences of one batch may hold different lengths.
/// With a sliding window in the layer's config, a cache made by [`KvCache::new`] keeps every token
/// (older ones masked); one made by [`KvCache::new_ring`] is a ring of the window's size
/// ([`gqa_core::CacheLayout::Ring`]): a conversation of any length runs in it, each step attending
/// over at most its capacity.
///
/// ```no_run
/// # use gqa_core::{HostTensor};
/// # fn f(layer: &gqa_wgpu::GqaLayer, prompt: &HostTensor, token: &HostTensor) -> Result<(), gqa_wgpu::GpuError> {
/// let mut cache = layer.new_cache(1, 1024)?;
/// let out = layer.prefill(&mut cache, prompt, prompt, None, None)?; // (1, P, Dq)
/// let next = layer.step(&mut cache, token, token, None)?; // (1, 1, Dq), attends over P + 1 keys
/// assert_eq!(cache.lengths(), &[prompt.shape()[1] + 1]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct KvCache {
    ctx: GpuContext,
    shape: CacheShape,
    /// The layer's sliding window (what a ring may drop).
    window: Option<usize>,
    keys: GpuTensor,
    values: GpuTensor,
    /// Texture mirrors of the keys and values (`Nkv·H / 4` x `B·capacity` rgba32float texels), kept
    /// on CPU adapters ([`gqa_core::Tuning::keeps_cache_texture`]), where cached calls read K and V
    /// with texel fetches: every append, [`KvCache::grow`] and [`KvCache::load`] writes both.
    textures: Option<[MatrixTexture; 2]>,
    lengths: Vec<usize>,
}

impl KvCache {
    /// An empty cache of `batch` sequences of up to `capacity` tokens for `layer`, storing keys and
    /// values as the layer projects them ([`CacheStorage::native`]: f32, or f16 for a layer
    /// computing in f16). The two buffers must each fit one storage binding of the device.
    pub fn new(layer: &GqaLayer, batch: usize, capacity: usize) -> Result<Self, GpuError> {
        Self::from_shape(
            layer,
            CacheShape::new(&layer.decoding_config(), batch, capacity)?.with_storage(native(layer))?,
        )
    }

    /// An empty cache of `shape` for `layer`: any storage and layout, e.g.
    /// `CacheShape::new(config, 1, 4096)?.with_storage(CacheStorage::Int8)?` or
    /// `CacheShape::ring(config, 1, 64, 4)?.with_storage(CacheStorage::F16)?`.
    ///
    /// A layer computing in f16 ([`GqaLayer::precision`]) takes an f16 cache only: its projections
    /// are copied into it as they are, and its f16 attention kernels read it (the quantizing append
    /// and the kernels over a quantized cache run in f32).
    pub fn from_shape(layer: &GqaLayer, shape: CacheShape) -> Result<Self, GpuError> {
        const OP: &str = "KvCache::from_shape";
        shape.storage.check_precision(OP, layer.precision())?;
        let config = layer.decoding_config();
        shape.check_layer(OP, &config)?;
        let batch = shape.batch;
        Self::with_shape(layer.context(), shape, config.sliding_window, vec![0; batch])
    }

    /// An empty ring cache for `layer`, which must have a sliding window `W` (its config's, or its
    /// extensions': the keys a token sees through it, `W + 1` for a lookback window;
    /// [`CacheShape::ring`]): capacity `keep_first + W + chunk - 1`; each call appends at most
    /// `chunk` tokens per sequence (prefill a longer prompt in several calls); the first
    /// `keep_first` tokens stay visible to every later token (attention sinks). Stored as the layer
    /// projects them, like [`KvCache::new`].
    pub fn new_ring(layer: &GqaLayer, batch: usize, chunk: usize, keep_first: usize) -> Result<Self, GpuError> {
        let shape = CacheShape::ring(&layer.decoding_config(), batch, chunk, keep_first)?;
        Self::from_shape(layer, shape.with_storage(native(layer))?)
    }

    fn with_shape(
        ctx: &GpuContext,
        shape: CacheShape,
        window: Option<usize>,
        lengths: Vec<usize>,
    ) -> Result<Self, GpuError> {
        const OP: &str = "KvCache::new";
        ctx.check_alive(OP)?;
        let bytes = shape.words() * 4;
        let limits = ctx.limits();
        for (limit, allowed) in [
            ("max_storage_buffer_binding_size", limits.max_storage_buffer_binding_size),
            ("max_buffer_size", limits.max_buffer_size),
        ] {
            if bytes > allowed {
                return Err(GqaError::LimitExceeded {
                    kernel: "KV cache".into(),
                    limit,
                    allowed,
                    needed: bytes,
                    detail: format!(
                        "keys (B={}, capacity={}, Nkv={}, H={}) {} in one buffer",
                        shape.batch, shape.capacity, shape.num_kv_heads, shape.head_dim, shape.storage
                    ),
                }
                .into());
            }
        }
        let dims = match shape.storage {
            CacheStorage::F32 => vec![shape.batch, shape.capacity, shape.num_kv_heads, shape.head_dim],
            _ => vec![shape.batch, shape.capacity, shape.token_words() as usize],
        };
        let make = |label| {
            let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage: GpuTensor::USAGE,
                mapped_at_creation: false,
            });
            GpuTensor::wrap(ctx, buffer, dims.clone())
        };
        let (keys, values, textures) = scoped(&ctx.device, OP, Catch::OutOfMemory, || {
            let (keys, values) = (make("gqa kv cache keys"), make("gqa kv cache values"));
            let textures = ctx.tuning().keeps_cache_texture(&shape, &limits).then(|| {
                let texels = TextureShape::new((shape.token_elems() / 4) as u32, (shape.batch * shape.capacity) as u32);
                let usage = wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_DST;
                let make = |label| MatrixTexture::create(&ctx.device, label, texels, usage);
                [make("gqa kv cache keys (texture)"), make("gqa kv cache values (texture)")]
            });
            Ok((keys, values, textures))
        })?;
        Ok(Self { ctx: ctx.clone(), shape, window, keys, values, textures, lengths })
    }

    /// The cache's shape.
    pub fn shape(&self) -> CacheShape {
        self.shape
    }

    /// Sequences.
    pub fn batch(&self) -> usize {
        self.shape.batch
    }

    /// Tokens each sequence can hold.
    pub fn capacity(&self) -> usize {
        self.shape.capacity
    }

    /// Tokens each sequence holds.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// Whether no sequence holds a token.
    pub fn is_empty(&self) -> bool {
        self.lengths.iter().all(|&l| l == 0)
    }

    /// The keys buffer (B, capacity, Nkv, H) of an f32 cache, or (B, capacity, token words) of a
    /// quantized one (its words as [`CacheStorage`] lays them out, viewed as f32 bits: read them
    /// with [`KvCache::read`]); only each sequence's held tokens are meaningful. Read it freely;
    /// write the cache through [`KvCache::load`] (or cached calls), not into this buffer: where the
    /// cache keeps texture mirrors ([`KvCache::has_texture_mirrors`]), cached calls read those, and a
    /// direct write would not reach them.
    pub fn keys(&self) -> &GpuTensor {
        &self.keys
    }

    /// The values buffer (B, capacity, Nkv, H), likewise.
    pub fn values(&self) -> &GpuTensor {
        &self.values
    }

    /// Whether the cache keeps rgba32float texture mirrors of its keys and values (on CPU adapters,
    /// [`gqa_core::Tuning::keeps_cache_texture`]): cached calls then read K and V from them, and the
    /// cache takes twice the memory of its buffers.
    pub fn has_texture_mirrors(&self) -> bool {
        self.textures.is_some()
    }

    /// How the cache stores its keys and values.
    pub fn storage(&self) -> CacheStorage {
        self.shape.storage
    }

    /// Bytes one token takes in the cache's buffers, its keys and values together
    /// ([`CacheShape::bytes_per_token`]; texture mirrors, where kept, take as much again in f32).
    pub fn bytes_per_token(&self) -> u64 {
        self.shape.bytes_per_token()
    }

    /// Bytes the cache holds on the device: its two buffers, and its texture mirrors (their rows
    /// padded as [`gqa_core::row_texels`] says) when it keeps them.
    pub fn device_bytes(&self) -> u64 {
        let buffers = 2 * self.shape.words() * 4;
        let mirrors: u64 = self.textures.iter().flatten().map(MatrixTexture::bytes).sum();
        buffers + mirrors
    }

    /// Forgets every token (nothing is cleared on the GPU: tokens past a length are never read).
    pub fn reset(&mut self) {
        self.lengths.fill(0);
    }

    /// Keeps at most `len` tokens of every sequence (for speculative decoding that rejects
    /// drafted tokens); shorter sequences are left as they are. A ring refuses to roll back to
    /// tokens it has dropped ([`GqaError::CacheWindow`]); nothing changes then.
    pub fn truncate(&mut self, len: usize) -> Result<(), GpuError> {
        Ok(self.shape.truncate("KvCache::truncate", &mut self.lengths, len, self.window)?)
    }

    /// Truncates sequence `b` to `lengths[b]` tokens, each at most its current length (and, in a
    /// ring, no further back than the tokens it still holds).
    pub fn truncate_each(&mut self, lengths: &[usize]) -> Result<(), GpuError> {
        Ok(self.shape.truncate_each("KvCache::truncate_each", &mut self.lengths, lengths, self.window)?)
    }

    /// Makes the cache hold up to `capacity` tokens per sequence: new buffers, into which the held
    /// tokens are copied on the GPU. Shrinking below a held length is an error, and so is growing
    /// a ring (its capacity follows from its window and chunk).
    pub fn grow(&mut self, capacity: usize) -> Result<(), GpuError> {
        const OP: &str = "KvCache::grow";
        if self.shape.layout != gqa_core::CacheLayout::Linear {
            let detail = "a ring's capacity is fixed by its window and chunk: make a new ring".into();
            return Err(GqaError::CacheWindow { op: OP, detail }.into());
        }
        if let Some((b, &have)) = self.lengths.iter().enumerate().find(|(_, l)| **l > capacity) {
            return Err(GqaError::CacheLength { op: OP, sequence: b, length: have, requested: capacity }.into());
        }
        let shape = CacheShape { capacity, ..self.shape };
        let grown = Self::with_shape(&self.ctx, shape, self.window, self.lengths.clone())?;
        let token = self.shape.token_words() * 4;
        let mut encoder = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(OP) });
        for (b, &len) in self.lengths.iter().enumerate().filter(|(_, l)| **l > 0) {
            for (from, to) in [(&self.keys, &grown.keys), (&self.values, &grown.values)] {
                let (src, dst) = ((b * self.shape.capacity) as u64 * token, (b * capacity) as u64 * token);
                encoder.copy_buffer_to_buffer(from.buffer(), src, to.buffer(), dst, len as u64 * token);
            }
            if let Some(mirrors) = &grown.textures {
                // From the old buffers, whether or not the old cache kept mirrors.
                for (from, to) in [&self.keys, &self.values].into_iter().zip(mirrors) {
                    let (src, first) = ((b * self.shape.capacity) as u64 * token, (b * capacity) as u32);
                    to.copy_rows(&mut encoder, from.buffer(), src, first..first + len as u32);
                }
            }
        }
        self.ctx.queue.submit([encoder.finish()]);
        *self = grown;
        Ok(())
    }

    /// Copies the held tokens to the host, in order (blocking until read), as f32 (a quantized
    /// cache's values as they are stored: what the attention reads); a ring gives the tokens it
    /// still holds (its kept first tokens and its window).
    pub fn read(&self) -> Result<CacheContents, GpuError> {
        let words = self.shape.token_words() as usize;
        let (nkv, h) = (self.shape.num_kv_heads, self.shape.head_dim);
        let (keys, values) = (self.keys.to_host()?, self.values.to_host()?);
        Ok(CacheContents::gather(&self.shape, &self.lengths, |k, b, slot, out| {
            let all = if k { keys.data() } else { values.data() };
            let from = (b * self.shape.capacity + slot) * words;
            let stored: &[u32] = bytemuck::cast_slice(&all[from..from + words]);
            out.copy_from_slice(&self.shape.storage.decode_token(stored, nkv, h));
        })?)
    }

    /// Replaces the cache's contents with `contents` (keys and values (B, L, Nkv, H) f32, as
    /// [`KvCache::read`] gives them; each sequence's first `lengths[b]` tokens are written, into a
    /// quantized cache quantized as its append pass does): to restore a saved cache, or to start
    /// from keys projected elsewhere.
    pub fn load(&mut self, contents: &CacheContents) -> Result<(), GpuError> {
        const OP: &str = "KvCache::load";
        self.ctx.check_alive(OP)?;
        let l = contents.check(OP, &self.shape)?;
        let token = self.shape.token_elems() as usize;
        let words = self.shape.token_words() as usize;
        let storage = self.shape.storage;
        for (b, &len) in contents.lengths.iter().enumerate().filter(|(_, l)| **l > 0) {
            let at = (b * self.shape.capacity * words * 4) as u64;
            for (i, (src, dst)) in
                [(&contents.keys, &self.keys), (&contents.values, &self.values)].into_iter().enumerate()
            {
                let data = &src.data()[b * l * token..][..len * token];
                let stored: Vec<u32> =
                    data.chunks(token).flat_map(|t| storage.encode_token(t, self.shape.head_dim)).collect();
                self.ctx.queue.write_buffer(dst.buffer(), at, bytemuck::cast_slice(&stored));
                if let Some(mirrors) = &self.textures {
                    mirrors[i].write_rows(&self.ctx.queue, (b * self.shape.capacity) as u32, data);
                }
            }
        }
        self.lengths.clone_from(&contents.lengths);
        Ok(())
    }

    /// The keys, values and texture mirrors, as cached calls bind them.
    pub(crate) fn buffers(&self) -> CacheBuffers<'_> {
        CacheBuffers {
            keys: self.keys.buffer(),
            values: self.values.buffer(),
            textures: self.textures.as_ref().map(|[k, v]| [k, v]),
        }
    }

    /// A step attends over a cached prefix: every sequence must hold one.
    pub(crate) fn check_prefix(&self, op: &'static str) -> Result<(), GpuError> {
        match self.lengths.iter().position(|&l| l == 0) {
            Some(b) => Err(GqaError::CacheEmpty { op, sequence: b }.into()),
            None => Ok(()),
        }
    }

    /// Whether the cache was made on `ctx`'s device.
    pub(crate) fn belongs_to(&self, ctx: &GpuContext) -> bool {
        self.ctx.same_as(ctx)
    }

    /// The lengths, for the trait's truncation (which checks before it changes them).
    pub(crate) fn lengths_mut(&mut self) -> &mut [usize] {
        &mut self.lengths
    }

    /// The layer's sliding window, as the cache was made for it.
    pub(crate) fn window(&self) -> Option<usize> {
        self.window
    }

    /// Sets the lengths after a cached call appended its tokens.
    pub(crate) fn set_lengths(&mut self, lengths: Vec<usize>) {
        self.lengths = lengths;
    }
}

/// The storage a layer's default caches use: its projections' own ([`CacheStorage::native`]).
fn native(layer: &GqaLayer) -> CacheStorage {
    CacheStorage::native(layer.precision())
}
