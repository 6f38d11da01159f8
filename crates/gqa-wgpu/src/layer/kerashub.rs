//! KerasHub's attention layers on the GPU: a [`GqaLayer`] with the class's extensions, called with
//! KerasHub's arguments.

use gqa_core::kerashub::{KerasHubCall, KerasHubConfig, KerasHubOutput};
use gqa_core::{ExtensionWeights, GqaError, Weights};

use super::GqaLayer;
use crate::context::GpuContext;
use crate::error::GpuError;

/// A KerasHub attention layer (see [`gqa_core::kerashub`]) on the GPU.
///
/// Uncached calls run as the layer's `GroupQueryAttention` call on `query = value = input` with
/// the class's extensions ([`GqaLayer::with_extensions`]); the results match the oracle
/// `gqa_ref::KerasHubLayer`, which follows KerasHub's code step by step. Cached calls (KerasHub's
/// fixed-capacity cache and `cache_update_index`) are refused for now with a typed error.
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
        let layer = GqaLayer::with_precision(ctx, &spec.config, weights, gqa_core::Precision::F32)?
            .with_extensions(&spec.extensions, extra)?;
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
        call.check(&self.spec)?;
        if call.cache.is_some() {
            return Err(GqaError::IncompatibleOptions(format!(
                "{}: cached calls (cache, cache_update_index) run on the oracle only for now",
                self.spec.class
            ))
            .into());
        }
        let options = call.forward_options(self.spec.class);
        let out = self.layer.forward(call.input, call.input, None, &options)?;
        Ok(KerasHubOutput { output: out.output, cache: None })
    }
}
