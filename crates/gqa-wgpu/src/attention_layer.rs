//! The GPU layer behind the common call shape ([`gqa_core::AttentionLayer`]), and, with the `io`
//! feature, loading a layer from the files Keras writes ([`GqaLayer::from_keras_file`]).

use gqa_core::{
    AttentionCache, AttentionLayer, CacheContents, CallOptions, ForwardOutput, GqaConfig, HostTensor, LayerDims,
};

// Through the crate's re-exports, which stay where they are whichever module defines them.
use crate::{GpuError, GqaLayer, KvCache};

/// Each method is the inherent method of the same name ([`GqaLayer::forward`],
/// [`GqaLayer::new_cache`], [`GqaLayer::prefill`], [`GqaLayer::step`], [`KvCache::read`],
/// [`KvCache::load`]).
impl AttentionLayer for GqaLayer {
    type Cache = KvCache;
    type Error = GpuError;

    fn config(&self) -> &GqaConfig {
        GqaLayer::config(self)
    }

    fn dims(&self) -> LayerDims {
        GqaLayer::dims(self)
    }

    fn forward(
        &self,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        options: &CallOptions,
    ) -> Result<ForwardOutput, GpuError> {
        GqaLayer::forward(self, query, value, key, options)
    }

    fn new_cache(&self, batch: usize, capacity: usize) -> Result<KvCache, GpuError> {
        GqaLayer::new_cache(self, batch, capacity)
    }

    fn prefill(
        &self,
        cache: &mut KvCache,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        lengths: Option<&[usize]>,
    ) -> Result<HostTensor, GpuError> {
        GqaLayer::prefill(self, cache, query, value, key, lengths)
    }

    fn step(
        &self,
        cache: &mut KvCache,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
    ) -> Result<HostTensor, GpuError> {
        GqaLayer::step(self, cache, query, value, key)
    }

    fn read_cache(&self, cache: &KvCache) -> Result<CacheContents, GpuError> {
        cache.read()
    }

    fn load_cache(&self, cache: &mut KvCache, contents: &CacheContents) -> Result<(), GpuError> {
        cache.load(contents)
    }
}

impl AttentionCache for KvCache {
    fn lengths(&self) -> &[usize] {
        KvCache::lengths(self)
    }

    fn truncate(&mut self, len: usize) {
        KvCache::truncate(self, len);
    }
}

/// Why [`GqaLayer::from_keras_file`] failed: the file (reading, format, config, weights' shapes), or
/// the GPU (uploading the weights).
#[cfg(feature = "io")]
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read as a layer (see [`gqa_io::IoError`]).
    #[error(transparent)]
    Io(#[from] gqa_io::IoError),
    /// The layer could not be built on the device.
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

#[cfg(feature = "io")]
impl GqaLayer {
    /// Loads a layer from a file Keras users have and uploads it: a `.keras` archive (holding one
    /// GroupQueryAttention layer) or a `.safetensors` file with the config in its metadata, as
    /// [`gqa_io::load_layer`] reads them. A `.weights.h5`, which has no config, or a file holding
    /// several layers needs [`GqaLayer::from_keras_file_with`].
    ///
    /// ```no_run
    /// let ctx = gqa_wgpu::GpuContext::new()?;
    /// let layer = gqa_wgpu::GqaLayer::from_keras_file(&ctx, "model.keras")?;
    /// println!("{} query heads, dims {:?}", layer.config().num_query_heads, layer.dims());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_keras_file(ctx: &crate::GpuContext, path: impl AsRef<std::path::Path>) -> Result<Self, LoadError> {
        Self::from_keras_file_with(ctx, path, &gqa_io::LoadOptions::default())
    }

    /// [`GqaLayer::from_keras_file`] with [`gqa_io::LoadOptions`]: the config JSON of a
    /// `.weights.h5` (or one overriding a safetensors file's metadata), the layer's name in a file
    /// holding several.
    ///
    /// ```no_run
    /// use std::path::Path;
    /// let ctx = gqa_wgpu::GpuContext::new()?;
    /// let options = gqa_io::LoadOptions { config: Some(Path::new("model.json")), layer_name: Some("attn") };
    /// let layer = gqa_wgpu::GqaLayer::from_keras_file_with(&ctx, "model.weights.h5", &options)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_keras_file_with(
        ctx: &crate::GpuContext,
        path: impl AsRef<std::path::Path>,
        options: &gqa_io::LoadOptions<'_>,
    ) -> Result<Self, LoadError> {
        let layer = gqa_io::load_layer(path.as_ref(), options)?;
        Ok(Self::new(ctx, &layer.config, &layer.weights)?)
    }
}
