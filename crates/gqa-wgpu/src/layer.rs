//! `GqaLayer`: a configured layer whose weights live on the GPU, runnable any number of times.

use std::collections::HashMap;

use gqa_core::{
    BufferId, BufferRole, CallOptions, Dense, ForwardOutput, GqaConfig, GqaError, HostTensor, LayerDims, Plan, Problem,
    Weights,
};

use crate::context::GpuContext;
use crate::error::GpuError;
use crate::upload::upload;

/// A `GroupQueryAttention` layer on the GPU: its config, the input dims it was built for and its
/// weights, uploaded once.
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
    ctx: GpuContext,
    config: GqaConfig,
    dims: LayerDims,
    weights: HashMap<BufferId, wgpu::Buffer>,
    poison_outputs: bool,
}

impl std::fmt::Debug for GqaLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GqaLayer")
            .field("config", &self.config)
            .field("dims", &self.dims)
            .field("ctx", &self.ctx)
            .finish()
    }
}

/// The caller's GPU buffers for [`GqaLayer::encode_forward`]: row-major f32 starting at offset 0.
/// Inputs need `STORAGE` usage when the plan binds them directly and `COPY_SRC` when it splits the
/// batch (see [`gqa_core::Chunking`]); outputs (`output` (B, T, Dq), `scores` (B, Nq, T, S)) need
/// `STORAGE`, or `COPY_DST` when split. Giving all of `STORAGE | COPY_SRC | COPY_DST` always works.
#[derive(Debug, Clone, Copy)]
pub struct GpuInputs<'a> {
    /// Query (B, T, Dq).
    pub query: &'a wgpu::Buffer,
    /// Its shape.
    pub query_shape: [usize; 3],
    /// Value (B, S, Dv).
    pub value: &'a wgpu::Buffer,
    /// Its shape.
    pub value_shape: [usize; 3],
    /// Key (B, S, Dk) and its shape, when it differs from value.
    pub key: Option<(&'a wgpu::Buffer, [usize; 3])>,
    /// Where to write the output; a new buffer is made when `None`.
    pub output: Option<&'a wgpu::Buffer>,
    /// Where to write the scores (when requested); a new buffer is made when `None`.
    pub scores: Option<&'a wgpu::Buffer>,
}

/// What [`GqaLayer::encode_forward`] recorded: the plan it follows and the buffers that will hold
/// the results once the caller submits the encoder.
#[derive(Debug)]
pub struct EncodedForward {
    /// The plan recorded.
    pub plan: Plan,
    /// The output (B, T, Dq), f32.
    pub output: wgpu::Buffer,
    /// The scores (B, Nq, T, S), f32, when requested.
    pub scores: Option<wgpu::Buffer>,
}

impl GqaLayer {
    /// Validates `config` and `weights` (Keras layout) and uploads the weights.
    pub fn new(ctx: &GpuContext, config: &GqaConfig, weights: &Weights) -> Result<Self, GpuError> {
        ctx.check_alive("GqaLayer::new")?;
        config.validate()?;
        let dims = weights.dims();
        weights.validate(config, dims)?;
        let device = &ctx.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let mut buffers = HashMap::new();
        for d in Dense::ALL {
            let Some(w) = weights.dense(d) else { continue };
            let mut upload = |id: BufferId, t: &HostTensor| {
                let buf = upload(
                    device,
                    &ctx.queue,
                    &format!("gqa weight {id}"),
                    bytemuck::cast_slice(t.data()),
                    wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                );
                buffers.insert(id, buf);
            };
            upload(BufferId::Kernel(d), &w.kernel);
            if let Some(b) = &w.bias {
                upload(BufferId::Bias(d), b);
            }
        }
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::from_wgpu("upload weights", e));
        }
        Ok(Self { ctx: ctx.clone(), config: config.clone(), dims, weights: buffers, poison_outputs: false })
    }

    /// The layer's config.
    pub fn config(&self) -> &GqaConfig {
        &self.config
    }

    /// The input dims (Dq, Dk, Dv) the weights were built for.
    pub fn dims(&self) -> LayerDims {
        self.dims
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
        Ok(Plan::tuned(&problem, &self.ctx.limits(), self.ctx.tuning())?)
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

    /// Runs the layer on host data and returns the output (and scores when requested). Blocks until
    /// the GPU is done; see [`GqaLayer::forward_async`].
    pub fn forward(
        &self,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        options: &CallOptions,
    ) -> Result<ForwardOutput, GpuError> {
        pollster::block_on(self.forward_async(query, value, key, options))
    }

    /// Async form of [`GqaLayer::forward`]: resolves when the results are read back.
    pub async fn forward_async(
        &self,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        options: &CallOptions,
    ) -> Result<ForwardOutput, GpuError> {
        let plan = self.plan(query.shape(), value.shape(), key.map(HostTensor::shape), options)?;
        self.ctx.check_alive("forward")?;
        let device = &self.ctx.device;
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let input = |name: &str, t: &HostTensor| {
            let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
            upload(device, &self.ctx.queue, name, bytemuck::cast_slice(t.data()), usage)
        };
        let q = input("gqa query", query);
        let v = input("gqa value", value);
        let k = key.map(|k| input("gqa key", k));
        let poison = |id: BufferId| {
            let spec = plan.buffer(id)?;
            self.poison_outputs.then(|| {
                let nan = vec![f32::NAN; spec.elems as usize];
                let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
                upload(device, &self.ctx.queue, "gqa poisoned output", bytemuck::cast_slice(&nan), usage)
            })
        };
        let out_buf = poison(BufferId::Output);
        let scores_buf = plan.scores_buffer().and_then(poison);
        let inputs = GpuInputs {
            query: &q,
            query_shape: dims3(query.shape()),
            value: &v,
            value_shape: dims3(value.shape()),
            key: k.as_ref().zip(key.map(|t| dims3(t.shape()))),
            output: out_buf.as_ref(),
            scores: scores_buf.as_ref(),
        };
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("gqa forward") });
        let encoded = self.encode_planned(&mut encoder, &inputs, options, plan)?;
        self.ctx.queue.submit([encoder.finish()]);
        let problem = &encoded.plan.problem;
        let mut sources = vec![(&encoded.output, encoded.plan.buffer(BufferId::Output).map_or(0, |b| b.bytes))];
        if let (Some(s), Some(id)) = (&encoded.scores, encoded.plan.scores_buffer()) {
            sources.push((s, encoded.plan.buffer(id).map_or(0, |b| b.bytes)));
        }
        let read = crate::readback::read_f32(device, &self.ctx.queue, "forward", &sources).await;
        if let Some(e) = oom.pop().await {
            return Err(GpuError::from_wgpu("forward", e));
        }
        if let Some(e) = validation.pop().await {
            return Err(GpuError::from_wgpu("forward", e));
        }
        let mut read = read?.into_iter();
        let output = HostTensor::new(problem.output_shape(), read.next().unwrap_or_default())?;
        let scores = match read.next() {
            Some(data) => Some(HostTensor::new(problem.scores_shape(), data)?),
            None => None,
        };
        Ok(ForwardOutput { output, scores })
    }

    /// Records the forward pass into the caller's encoder over the caller's GPU buffers; nothing is
    /// read back. Masks in `options` are packed into a new buffer created with its contents. Errors in the recorded work surface at the caller's submit (catch
    /// them with an error scope around it).
    pub fn encode_forward(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        inputs: &GpuInputs<'_>,
        options: &CallOptions,
    ) -> Result<EncodedForward, GpuError> {
        let plan =
            self.plan(&inputs.query_shape, &inputs.value_shape, inputs.key.as_ref().map(|k| &k.1[..]), options)?;
        self.encode_planned(encoder, inputs, options, plan)
    }

    fn encode_planned(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        inputs: &GpuInputs<'_>,
        options: &CallOptions,
        plan: Plan,
    ) -> Result<EncodedForward, GpuError> {
        crate::encode::record(&self.ctx, &self.weights, encoder, inputs, options, plan)
    }

    /// The weights' buffers, by plan buffer id.
    pub(crate) fn weight_buffers(&self) -> &HashMap<BufferId, wgpu::Buffer> {
        &self.weights
    }

    /// Bytes of GPU memory the weights take.
    pub fn weight_bytes(&self) -> u64 {
        self.weights.values().map(wgpu::Buffer::size).sum()
    }

    /// Bytes a call with this plan allocates besides the weights.
    pub fn call_bytes(plan: &Plan) -> u64 {
        plan.buffers.iter().filter(|b| b.role != BufferRole::Weight).map(|b| b.bytes).sum()
    }
}

pub(crate) fn dims3(s: &[usize]) -> [usize; 3] {
    // Shapes are validated by the plan first; a wrong rank never gets here.
    [s.first().copied().unwrap_or(0), s.get(1).copied().unwrap_or(0), s.get(2).copied().unwrap_or(0)]
}
