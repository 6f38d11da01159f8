//! KerasHub's attention layers on the GPU: a [`GqaLayer`] with the class's extensions, called with
//! KerasHub's arguments.

use gqa_core::kerashub::{KerasHubCache, KerasHubCall, KerasHubConfig, KerasHubOutput};
use gqa_core::{
    CacheContents, CacheShape, CacheStorage, CacheUpdate, ExtensionWeights, GqaError, Plan, Problem, Weights,
};

use super::GqaLayer;
use super::host_call::HostCall;
use crate::context::GpuContext;
use crate::error::GpuError;
use crate::kv_cache::KvCache;
use crate::polling::Drive;

/// A KerasHub attention layer (see [`gqa_core::kerashub`]) on the GPU.
///
/// The layer computes in f16 (f16 storage, f32 accumulation) where its config's dtype policy says
/// so and the device has `SHADER_F16` ([`GqaLayer::new`]), its cached calls over an f16 cache.
///
/// Uncached calls run as the layer's `GroupQueryAttention` call on `query = value = input` with
/// the class's extensions ([`GqaLayer::with_extensions`]). Cached calls take KerasHub's
/// fixed-capacity cache on the host: it is loaded into a [`KvCache`] of its capacity, the call's
/// new keys and values are written at `cache_update_index` (where `cache_update_mask` says) in the
/// call's own submission, the attention reads every slot under the call's mask with the queries at
/// the index's positions, and the cache comes back whole. The results match the oracle
/// `gqa_ref::KerasHubLayer`, which follows KerasHub's code step by step. (For decoding on the GPU
/// without the round trip through the host, use [`KerasHubLayer::layer`]'s own cache.)
#[derive(Debug)]
pub struct KerasHubLayer {
    spec: KerasHubConfig,
    layer: GqaLayer,
}

impl KerasHubLayer {
    /// Checks and uploads the layer: `weights` in `GroupQueryAttention`'s layout (the Gemma
    /// family's kernels transposed, as `gqa_io` loads them), `extra` the norms' scales and sinks.
    pub fn new(
        ctx: &GpuContext,
        spec: KerasHubConfig,
        weights: &Weights,
        extra: &ExtensionWeights,
    ) -> Result<Self, GpuError> {
        // f16 storage where the layer's dtype policy is float16 / mixed_float16 (or the context's
        // tuning asks for it) and the device has SHADER_F16; else f32.
        let layer = GqaLayer::new(ctx, &spec.config, weights)?.with_extensions(&spec.extensions, extra)?;
        let d = spec.hidden_dim;
        if layer.dims() != (gqa_core::LayerDims { query_dim: d, key_dim: d, value_dim: d }) {
            return Err(GqaError::ShapeMismatch {
                op: "KerasHubLayer::new",
                detail: format!("weights built for {:?}, the config's hidden size is {d}", layer.dims()),
            }
            .into());
        }
        Ok(Self { spec, layer })
    }

    /// The config.
    pub fn spec(&self) -> &KerasHubConfig {
        &self.spec
    }

    /// The GPU layer that runs the calls.
    pub fn layer(&self) -> &GqaLayer {
        &self.layer
    }

    /// A testing aid: poison the outputs before every call ([`GqaLayer::set_poison_outputs`]).
    pub fn set_poison_outputs(&mut self, on: bool) {
        self.layer.set_poison_outputs(on);
    }

    /// One call with KerasHub's arguments.
    pub fn call(&self, call: &KerasHubCall) -> Result<KerasHubOutput, GpuError> {
        let shape = call.check(&self.spec)?;
        let options = call.forward_options(self.spec.class);
        let Some(cache_in) = call.cache else {
            let out = self.layer.forward(call.input, call.input, None, &options)?;
            return Ok(KerasHubOutput { output: out.output, cache: None });
        };
        // KerasHub's cache: every slot loaded into a linear cache of its capacity, the new keys
        // and values written at the index (where the update mask says), the attention over every
        // slot under the call's mask, queries at the index's positions; then every slot read back.
        const OP: &str = "KerasHubLayer::call";
        let layer = &self.layer;
        let (b, t, s) = (shape.batch, shape.target_len, shape.source_len);
        // Keys and values as the layer projects them (an f16 layer's cache holds f16, as Keras').
        let cache_shape =
            CacheShape::new(layer.config(), b, s)?.with_storage(CacheStorage::native(layer.precision()))?;
        let mut kv = KvCache::from_shape(layer, cache_shape)?;
        kv.load(&CacheContents { keys: cache_in.keys.clone(), values: cache_in.values.clone(), lengths: vec![s; b] })?;
        let written = call.cache_update_mask.map(|m| m.data());
        let update = CacheUpdate::at_index(cache_shape, shape.start, t, shape.writes, written)?
            .with_texture_mirror(kv.has_texture_mirrors());
        let d = self.spec.hidden_dim;
        let problem = Problem::new(layer.config(), &[b, t, d], &[b, s, d], None, &options)?
            .with_query_positions(shape.start)
            .with_extensions(layer.extensions())?;
        let plan = Plan::cached(&problem, &update, &layer.ctx.limits(), layer.tuning())?;
        let host = HostCall { query: call.input, value: call.input, key: None, cache: Some(kv.buffers()) };
        let out = pollster::block_on(layer.run_planned(OP, &host, plan, Drive::Block))?;
        kv.set_lengths(update.lengths_after());
        let contents = kv.read()?;
        let cache = KerasHubCache { keys: contents.keys, values: contents.values };
        Ok(KerasHubOutput { output: out.output, cache: Some(cache) })
    }
}
