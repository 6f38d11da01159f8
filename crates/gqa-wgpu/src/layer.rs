//! `GqaLayer`: a configured layer whose weights live on the GPU, runnable any number of times.

use gqa_core::{
    BufferId, BufferRole, CallOptions, GqaConfig, GqaError, LayerDims, Plan, Precision, Problem, Tuning, Weights,
};

use crate::args::{EncodedForward, ForwardArgs, TensorArgs};
pub(crate) use crate::args::{GpuInputs, dims3};
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
        let layer =
            Self { ctx: ctx.clone(), config: config.clone(), dims, weights: store, precision, poison_outputs: false };
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

    /// The plan a call with these shapes and options would run (buffers, sizes, dispatches), checked
    /// against this device's limits. Nothing is allocated.
    pub fn plan(
        &self,
        query_shape: &[usize],
        value_shape: &[usize],
        key_shape: Option<&[usize]>,
        options: &CallOptions,
    ) -> Result<Plan, GpuError> {
        let problem = Problem::new(&self.config, query_shape, value_shape, key_shape, options)?;
        self.check_dims(&problem)?;
        let tuning = Tuning { precision: self.precision, ..self.ctx.tuning() };
        Ok(Plan::tuned(&problem, &self.ctx.limits(), tuning)?)
    }

    fn check_dims(&self, p: &Problem) -> Result<(), GqaError> {
        let d = self.dims;
        let mismatch = |what: &str, got: usize, want: usize| GqaError::ShapeMismatch {
            op: "GqaLayer.forward",
            detail: format!("{what} has last dim {got}, the layer's weights were built for {want}"),
        };
        if p.query_dim != d.query_dim {
            return Err(mismatch("query", p.query_dim, d.query_dim));
        }
        if p.value_dim != d.value_dim {
            return Err(mismatch("value", p.value_dim, d.value_dim));
        }
        if p.key_dim != d.key_dim {
            let what = if p.key_given { "key" } else { "value (used as key: no key given)" };
            return Err(mismatch(what, p.key_dim, d.key_dim));
        }
        Ok(())
    }

    /// Records the forward pass into the caller's encoder over the caller's GPU buffers
    /// ([`TensorArgs`] of [`GpuTensor`](crate::GpuTensor)s, or raw [`GpuInputs`]); nothing is read back and nothing is
    /// submitted. Several calls, of this layer or others, can be recorded into one encoder and
    /// submitted at once; a result tensor can be the input of a later call in the same encoder.
    ///
    /// The outputs are written into the tensors given (`output`, `scores`) or into new buffers.
    /// Scratch buffers come from the context's pool and go back to it when this returns (safe: the
    /// queue runs submissions in order and every call writes its scratch before reading it); params
    /// and masks are immutable pooled constants. With the outputs given, repeated calls of the same
    /// shapes create no buffer. Bad shapes, buffers that are too small, lack a usage the plan needs
    /// or (tensors) were made with another context are errors here; errors in the recorded commands surface at the
    /// caller's submit (catch them with an error scope around it).
    pub fn encode_forward<A: ForwardArgs + ?Sized>(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        inputs: &A,
        options: &CallOptions,
    ) -> Result<EncodedForward, GpuError> {
        let inputs = inputs.gpu_inputs(&self.ctx)?;
        let mut plan =
            self.plan(&inputs.query_shape, &inputs.value_shape, inputs.key.as_ref().map(|k| &k.1[..]), options)?;
        // A caller's input made without COPY_SRC is packed into its texture by a pass, not a copy.
        let key = inputs.key.as_ref().map(|(buffer, _)| (BufferId::Key, *buffer));
        for (id, buffer) in [(BufferId::Query, inputs.query), (BufferId::Value, inputs.value)].into_iter().chain(key) {
            if !buffer.usage().contains(wgpu::BufferUsages::COPY_SRC) {
                plan = plan.packing_by_passes_from(id);
            }
        }
        log_plan("encode_forward", &plan);
        self.encode_planned(encoder, &inputs, options, plan)
    }

    /// Runs the layer on GPU tensors and returns GPU tensors: records the call into a new encoder
    /// and submits it. Nothing is read back and nothing waits; read the results with
    /// [`GpuTensor::to_host`](crate::GpuTensor::to_host), or use them in later calls (the queue orders the work).
    pub fn forward_tensors(&self, args: &TensorArgs<'_>, options: &CallOptions) -> Result<EncodedForward, GpuError> {
        const OP: &str = "forward_tensors";
        self.ctx.check_alive(OP)?;
        let device = &self.ctx.device;
        scoped(device, OP, Catch::ValidationAndOutOfMemory, || {
            let mut encoder =
                device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("gqa forward") });
            let encoded = self.encode_forward(&mut encoder, args, options)?;
            self.ctx.queue.submit([encoder.finish()]);
            Ok(encoded)
        })
    }

    pub(crate) fn encode_planned(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        inputs: &GpuInputs<'_>,
        options: &CallOptions,
        plan: Plan,
    ) -> Result<EncodedForward, GpuError> {
        crate::encode::record(&self.ctx, &self.weights, encoder, inputs, None, options, plan)
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

    /// Bytes a call with this plan allocates besides the weights.
    pub fn call_bytes(plan: &Plan) -> u64 {
        plan.buffers.iter().filter(|b| b.role != BufferRole::Weight).map(|b| b.bytes).sum()
    }
}

/// Logs a plan's summary at debug level.
pub(crate) fn log_plan(op: &str, plan: &Plan) {
    if log::log_enabled!(log::Level::Debug) {
        log::debug!("gqa {op}: {}", crate::describe::plan_summary(plan));
    }
}
