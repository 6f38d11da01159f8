//! The GPU layer behind the common call shape ([`gqa_core::AttentionLayer`]).

use gqa_core::{
    AttentionCache, AttentionLayer, CacheContents, CallOptions, ForwardOutput, GqaConfig, GqaError, HostTensor,
    LayerDims,
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

    fn truncate(&mut self, len: usize) -> Result<(), GqaError> {
        let (shape, window) = (self.shape(), self.window());
        shape.truncate("KvCache::truncate", self.lengths_mut(), len, window)
    }
}
