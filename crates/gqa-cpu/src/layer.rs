//! `CpuLayer`: the layer on the CPU in f32, implementing [`AttentionLayer`].

use gqa_core::{
    AttentionCache, AttentionLayer, CacheContents, CallOptions, ForwardOutput, GqaConfig, GqaError, HostTensor,
    LayerDims, Problem, Weights,
};

use crate::attention::KvView;
use crate::forward::{finish, gate, project};
use crate::kv_cache::KvCache;

/// `GroupQueryAttention` on the CPU in f32: a config and its weights (Keras layout), called like
/// `gqa_wgpu::GqaLayer` and `gqa_ref::ReferenceLayer` (the same [`AttentionLayer`] calls, the same
/// results up to f32 rounding).
///
/// The projections are multithreaded GEMMs (faer); the attention is a grouped flash attention
/// whose tiles run on rayon's pool: the global one (its size: `RAYON_NUM_THREADS`, or every core),
/// or yours when the call runs inside `rayon::ThreadPool::install`. Every input is checked as the
/// GPU layer checks it, and errors come back as [`GqaError`] values.
///
/// ```
/// use gqa_core::{AttentionLayer, CallOptions, GqaConfig, HostTensor, LayerDims};
/// use gqa_cpu::CpuLayer;
///
/// let dims = LayerDims { query_dim: 16, key_dim: 16, value_dim: 16 };
/// let layer = CpuLayer::random(GqaConfig::new(8, 4, 2), dims, 7)?;
/// let x = HostTensor::new([1, 5, 16], (0..80).map(|i| (i as f32 * 0.1).sin()).collect())?;
/// let out = layer.forward(&x, &x, None, &CallOptions::default().with_causal_mask(true))?;
/// assert_eq!(out.output.shape(), [1, 5, 16]);
/// # Ok::<(), gqa_core::GqaError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CpuLayer {
    config: GqaConfig,
    weights: Weights,
}

impl CpuLayer {
    /// A layer from a config and weights, both checked (the weights against the config).
    pub fn new(config: GqaConfig, weights: Weights) -> Result<Self, GqaError> {
        config.validate()?;
        weights.validate(&config, weights.dims())?;
        Ok(Self { config, weights })
    }

    /// A layer with weights drawn from the config's initializers ([`Weights::random`]).
    pub fn random(config: GqaConfig, dims: LayerDims, seed: u64) -> Result<Self, GqaError> {
        let weights = Weights::random(&config, dims, seed)?;
        Self::new(config, weights)
    }

    /// The layer's config.
    pub fn config(&self) -> &GqaConfig {
        &self.config
    }

    /// The layer's weights.
    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// The input feature sizes (Dq, Dk, Dv).
    pub fn dims(&self) -> LayerDims {
        self.weights.dims()
    }

    /// One call: `query` (B, T, Dq), `value` (B, S, Dv), `key` (B, S, Dk) or `None` (`key =
    /// value`). Returns the output (B, T, Dq) and, when asked, the scores (B, Nq, T, S).
    pub fn forward(
        &self,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        options: &CallOptions,
    ) -> Result<ForwardOutput, GqaError> {
        let p = Problem::new(&self.config, query.shape(), value.shape(), key.map(HostTensor::shape), options)?;
        let dims = LayerDims { query_dim: p.query_dim, key_dim: p.key_dim, value_dim: p.value_dim };
        self.weights.validate(&self.config, dims)?;
        let key = key.unwrap_or(value);
        let (rows, keys) = (p.batch * p.target_len, p.batch * p.source_len);
        let q = project(query.data(), rows, &self.weights.query);
        let k = project(key.data(), keys, &self.weights.key);
        let v = project(value.data(), keys, &self.weights.value);
        let g = gate(&self.config, &self.weights, query.data(), rows);
        let stride = p.source_len * p.num_kv_heads * p.head_dim;
        let view = |data| KvView { data, batch_stride: stride };
        finish(&p, &self.weights, &q, view(&k), view(&v), g)
    }

    /// An empty KV cache of `batch` sequences of up to `capacity` tokens.
    pub fn new_cache(&self, batch: usize, capacity: usize) -> Result<KvCache, GqaError> {
        KvCache::new(&self.config, batch, capacity)
    }
}

impl AttentionLayer for CpuLayer {
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
        CpuLayer::forward(self, query, value, key, options)
    }

    fn new_cache(&self, batch: usize, capacity: usize) -> Result<KvCache, GqaError> {
        CpuLayer::new_cache(self, batch, capacity)
    }

    fn prefill(
        &self,
        cache: &mut KvCache,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        lengths: Option<&[usize]>,
    ) -> Result<HostTensor, GqaError> {
        cache.prefill(self, query, value, key, lengths)
    }

    fn step(
        &self,
        cache: &mut KvCache,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
    ) -> Result<HostTensor, GqaError> {
        cache.step(self, query, value, key)
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
