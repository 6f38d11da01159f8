//! `GqaLayer`: a configured layer whose weights live on the GPU, runnable any number of times.
//!
//! This module holds the type and its construction (the weights' upload); each kind of call lives
//! in a file of its own: [`plan`] (planning a call), [`forward`] (on host data), [`gpu_call`] (on
//! GPU buffers), [`cached`] (decoding with a [`KvCache`](crate::KvCache)), [`profile`] (timing
//! the steps), [`describe`] (memory and kernel variants before running), [`warm_up`] (compiling a
//! layer's kernels before its first call), `attention_layer` (the
//! common call shape, [`gqa_core::AttentionLayer`]) and, with the feature `io`, `keras_file`
//! ([`GqaLayer::from_keras_file`]), with [`host_call`] the upload of host inputs that host calls and
//! timers share.

mod attention_layer;
mod cached;
mod describe;
mod forward;
mod gpu_call;
mod host_call;
#[cfg(feature = "io")]
mod keras_file;
mod kerashub;
mod plan;
mod profile;
mod warm_up;

#[cfg(feature = "io")]
pub use keras_file::LoadError;
pub use kerashub::KerasHubLayer;
pub use warm_up::{WarmCall, WarmUpHandle};

use gqa_core::{AttentionExtensions, ExtensionWeights, GqaConfig, LayerDims, Precision, Weights};

use crate::context::GpuContext;
use crate::error::GpuError;
use crate::error_scope::{Catch, scoped};
use crate::weight_store::WeightStore;

/// A `GroupQueryAttention` layer on the GPU: its config, the input dims it was built for and its
/// weights, uploaded once and shared by every call.
///
/// Calls come in three forms: on host tensors ([`GqaLayer::forward`], [`GqaLayer::forward_async`]),
/// on GPU tensors submitted by the layer ([`GqaLayer::forward_tensors`]), or recorded into the
/// caller's command encoder ([`GqaLayer::encode_forward`]). `GqaLayer` is `Send + Sync`: one layer
/// may be called from several threads at once. What a call will allocate and run is known before
/// running it ([`GqaLayer::plan`], [`GqaLayer::memory`], [`GqaLayer::describe_call`]).
///
/// ```no_run
/// use gqa_core::{CallOptions, GqaConfig, HostTensor, LayerDims};
/// # fn weights(_: &GqaConfig, _: LayerDims) -> gqa_core::Weights { unimplemented!() }
/// let ctx = gqa_wgpu::GpuContext::new()?;
/// let config = GqaConfig::new(16, 4, 2);
/// let dims = LayerDims { query_dim: 32, key_dim: 32, value_dim: 32 };
/// let layer = gqa_wgpu::GqaLayer::new(&ctx, &config, &weights(&config, dims))?;
/// let x = HostTensor::new([1, 8, 32], vec![0.5; 8 * 32])?;
/// let out = layer.forward(&x, &x, None, &CallOptions::default())?;
/// assert_eq!(out.output.shape(), &[1, 8, 32]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct GqaLayer {
    pub(crate) ctx: GpuContext,
    config: GqaConfig,
    dims: LayerDims,
    weights: WeightStore,
    precision: Precision,
    extensions: AttentionExtensions,
    pub(crate) poison_outputs: bool,
}

impl std::fmt::Debug for GqaLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GqaLayer")
            .field("config", &self.config)
            .field("dims", &self.dims)
            .field("precision", &self.precision)
            .field("ctx", &self.ctx)
            .finish()
    }
}

impl GqaLayer {
    /// Validates `config` and `weights` (Keras layout) and uploads the weights.
    ///
    /// The layer computes in f16 ([`Precision::F16`]: f16 storage, f32 accumulation) when its
    /// config's dtype policy is Keras' `mixed_float16` (or `float16`), or when the context's tuning
    /// asks for f16, and the device has `SHADER_F16`; otherwise in f32. See
    /// [`GqaLayer::with_precision`] and [`GqaLayer::precision`].
    pub fn new(ctx: &GpuContext, config: &GqaConfig, weights: &Weights) -> Result<Self, GpuError> {
        let wanted = match (Precision::for_dtype_policy(&config.dtype), ctx.tuning().precision) {
            (Precision::F32, Precision::F32) => Precision::F32,
            _ => Precision::F16,
        };
        Self::with_precision(ctx, config, weights, wanted)
    }

    /// [`GqaLayer::new`] with the precision chosen by the caller, whatever the config's dtype
    /// policy says. [`Precision::F16`] on a device without `SHADER_F16` falls back to f32 (logged;
    /// [`GqaLayer::precision`] and every plan's `tuning.precision` say what runs). In f16 the weights
    /// are converted to f16 once, here; the host's `weights` stay f32.
    pub fn with_precision(
        ctx: &GpuContext,
        config: &GqaConfig,
        weights: &Weights,
        precision: Precision,
    ) -> Result<Self, GpuError> {
        ctx.check_alive("GqaLayer::new")?;
        let precision = ctx.resolve_precision(precision);
        let start = std::time::Instant::now();
        config.validate()?;
        let dims = weights.dims();
        weights.validate(config, dims)?;
        // Start the staged writes at once (an empty submission carries them), so the copy into the
        // weights' buffers and textures (on lavapipe 170-180 ms for 168 MiB, mostly page faults of
        // the new memory) runs while the caller goes on, instead of at the first call's submission.
        let store = scoped(&ctx.device, "upload weights", Catch::ValidationAndOutOfMemory, || {
            let store = WeightStore::upload(ctx, config, weights, precision);
            ctx.queue.submit([]);
            Ok(store)
        })?;
        let layer = Self {
            ctx: ctx.clone(),
            config: config.clone(),
            dims,
            weights: store,
            precision,
            extensions: AttentionExtensions::default(),
            poison_outputs: false,
        };
        log::debug!(
            "gqa: layer {:?} ({precision:?}, head_dim {}, Nq {}, Nkv {}, dims {:?}): {} weight bytes uploaded in {:?}",
            config.name,
            config.head_dim,
            config.num_query_heads,
            config.num_key_value_heads,
            dims,
            layer.weight_bytes(),
            start.elapsed()
        );
        Ok(layer)
    }

    /// This layer with attention extensions (RoPE, QK-norm, score scale, soft cap, sinks, window;
    /// see [`gqa_core::extensions`]) and their learned weights, checked and uploaded. Every call
    /// then applies them: QK-norm and RoPE in a positional pass after the projections (query row
    /// `t` at position `t + shift`, key row `s` at `s`), the soft cap, the window, the scale and
    /// the sinks in every attention kernel. Cached calls take the soft cap, sinks, scale
    /// and window; RoPE and QK-norm over a [`crate::KvCache`] are refused.
    pub fn with_extensions(
        mut self,
        extensions: &AttentionExtensions,
        weights: &ExtensionWeights,
    ) -> Result<Self, GpuError> {
        extensions.validate(self.config.head_dim)?;
        weights.validate(extensions, &self.config)?;
        if (extensions.rope.is_some() || extensions.qk_norm.is_some())
            && self.config.head_dim > gqa_core::kernels::position::MAX_HEAD_DIM
        {
            return Err(gqa_core::GqaError::IncompatibleOptions(format!(
                "QK-norm and RoPE take heads of up to {} features, the layer has {}",
                gqa_core::kernels::position::MAX_HEAD_DIM,
                self.config.head_dim
            ))
            .into());
        }
        scoped(&self.ctx.device, "upload extension weights", Catch::ValidationAndOutOfMemory, || {
            self.weights.upload_extensions(&self.ctx, weights);
            self.ctx.queue.submit([]);
            Ok(())
        })?;
        self.extensions = extensions.clone();
        Ok(self)
    }

    /// The layer's config as its KV caches see it: `sliding_window` the keys a decoding token sees
    /// through the layer's own window and the extensions' (the smaller), what a ring keeps.
    pub(crate) fn decoding_config(&self) -> GqaConfig {
        let ext = self.extensions.window.and_then(|w| w.lookback());
        let window = match (self.config.sliding_window, ext) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        GqaConfig { sliding_window: window, ..self.config.clone() }
    }

    /// The layer's attention extensions (none for Keras' `GroupQueryAttention`).
    pub fn extensions(&self) -> &AttentionExtensions {
        &self.extensions
    }

    /// The layer's config.
    pub fn config(&self) -> &GqaConfig {
        &self.config
    }

    /// The input dims (Dq, Dk, Dv) the weights were built for.
    pub fn dims(&self) -> LayerDims {
        self.dims
    }

    /// The storage precision the layer runs in (what it asked for, unless f16 fell back to f32 on
    /// a device without `SHADER_F16`).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The context the layer runs on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// A testing aid: fill output and scores buffers with NaN before every host forward call, so an
    /// element a kernel fails to write shows up as NaN.
    pub fn set_poison_outputs(&mut self, on: bool) {
        self.poison_outputs = on;
    }

    /// The weights on the device, by plan resource id.
    pub(crate) fn weight_store(&self) -> &WeightStore {
        &self.weights
    }

    /// Bytes of GPU memory the weights take (on CPU adapters a kernel kept as a texture for the
    /// textured matmul has no buffer until a call too tall for the textures needs one).
    pub fn weight_bytes(&self) -> u64 {
        self.weights.bytes()
    }
}
