//! `ReferenceLayer`: the oracle as a layer value, implementing [`AttentionLayer`] with the same call
//! shape as the GPU layer.

use gqa_core::{
    AttentionCache, AttentionLayer, CacheContents, CallOptions, ForwardOutput, GqaConfig, GqaError, HostTensor,
    LayerDims, Weights,
};

use crate::kv_cache::KvCache;

/// The f64 oracle as a layer: a config and its weights (Keras layout), called through
/// [`AttentionLayer`] like `gqa_wgpu::GqaLayer` ([`crate::forward()`] and [`KvCache`] underneath).
///
/// ```
/// use gqa_core::{AttentionCache, AttentionLayer, CallOptions, GqaConfig, HostTensor, LayerDims};
/// use gqa_ref::ReferenceLayer;
///
/// let dims = LayerDims { query_dim: 8, key_dim: 8, value_dim: 8 };
/// let layer = ReferenceLayer::random(GqaConfig::new(4, 4, 2), dims, 7)?;
/// let x = HostTensor::new([1, 5, 8], (0..40).map(|i| (i as f32).sin()).collect())?;
/// let whole = layer.forward(&x, &x, None, &CallOptions::default().with_causal_mask(true))?;
/// let mut cache = layer.new_cache(1, 8)?;
/// layer.prefill(&mut cache, &x.time_slice(..4)?, &x.time_slice(..4)?, None, None)?;
/// let last = layer.step(&mut cache, &x.time_slice(4..)?, &x.time_slice(4..)?, None)?;
/// assert_eq!(cache.lengths(), [5]);
/// let want = whole.output.time_slice(4..)?;
/// assert!(last.data().iter().zip(want.data()).all(|(a, b)| (a - b).abs() < 1e-6));
/// # Ok::<(), gqa_core::GqaError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceLayer {
    /// The layer's config.
    pub config: GqaConfig,
    /// Its weights; their kernels' first axes give the dims (Dq, Dk, Dv).
    pub weights: Weights,
}

impl ReferenceLayer {
    /// A layer from a config and weights, both checked (the weights against the config).
    pub fn new(config: GqaConfig, weights: Weights) -> Result<Self, GqaError> {
        config.validate()?;
        weights.validate(&config, weights.dims())?;
        Ok(Self { config, weights })
    }

    /// A layer with weights drawn from the config's initializers ([`Weights::random`]).
    pub fn random(config: GqaConfig, dims: LayerDims, seed: u64) -> Result<Self, GqaError> {
        let weights = Weights::random(&config, dims, seed)?;
        Ok(Self { config, weights })
    }
}

impl AttentionLayer for ReferenceLayer {
    type Cache = KvCache;
    type Error = GqaError;

    fn config(&self) -> &GqaConfig {
        &self.config
    }

    fn dims(&self) -> LayerDims {
        self.weights.dims()
    }

    fn forward(
        &self,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        options: &CallOptions,
    ) -> Result<ForwardOutput, GqaError> {
        crate::forward(&self.config, &self.weights, query, value, key, options)
    }

    fn new_cache(&self, batch: usize, capacity: usize) -> Result<KvCache, GqaError> {
        KvCache::new(&self.config, batch, capacity)
    }

    fn prefill(
        &self,
        cache: &mut KvCache,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        lengths: Option<&[usize]>,
    ) -> Result<HostTensor, GqaError> {
        cache.prefill(&self.config, &self.weights, query, value, key, lengths)
    }

    fn step(
        &self,
        cache: &mut KvCache,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
    ) -> Result<HostTensor, GqaError> {
        cache.step(&self.config, &self.weights, query, value, key)
    }

    fn read_cache(&self, cache: &KvCache) -> Result<CacheContents, GqaError> {
        cache.read()
    }

    fn load_cache(&self, cache: &mut KvCache, contents: &CacheContents) -> Result<(), GqaError> {
        cache.load(contents)
    }
}

impl AttentionCache for KvCache {
    fn lengths(&self) -> &[usize] {
        KvCache::lengths(self)
    }

    fn truncate(&mut self, len: usize) -> Result<(), GqaError> {
        KvCache::truncate(self, len)
    }
}
