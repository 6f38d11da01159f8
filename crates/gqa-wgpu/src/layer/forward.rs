//! The host-data forward call: upload into pooled buffers, record the plan and the readback copies
//! into one encoder, submit once, then wait for the map (blocking or yielding).

use std::time::Instant;

use gqa_core::{BufferId, CallOptions, ForwardOutput, HostTensor, Plan};

use super::GqaLayer;
use super::host_call::HostCall;
use super::plan::log_plan;
use crate::encode::{Recording, SCRATCH_USAGE};
use crate::error::GpuError;
use crate::error_scope::{Catch, scoped_or_discard};
use crate::polling::Drive;
use crate::pool::{Class, Leases};
use crate::readback::{Staging, forward_output, result_sources, stage};
use crate::upload::upload;

const OP: &str = "forward";

impl GqaLayer {
    /// Runs the layer on host data and returns the output (and scores when requested). Blocks the
    /// thread until the GPU is done (`device.poll(Wait)`, under `pollster::block_on`); see
    /// [`GqaLayer::forward_async`].
    ///
    /// Every buffer the call needs besides the weights (inputs, scratch, outputs, readback staging,
    /// params, masks) comes from the context's pool: after the first call, calls with the same
    /// shapes and masks create no buffer.
    pub fn forward(
        &self,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        options: &CallOptions,
    ) -> Result<ForwardOutput, GpuError> {
        pollster::block_on(self.run_host(query, value, key, options, Drive::Block))
    }

    /// Async form of [`GqaLayer::forward`]: submits the call, then resolves once the results are
    /// mapped (wgpu's `map_async`, whose callback completes the future through a `futures` oneshot
    /// channel) and copied out. It never blocks the executor's thread, so it runs on any executor
    /// (`futures::executor`, tokio, an application's own loop), and the future is `Send`.
    ///
    /// Someone must poll the device for wgpu to call back; the context's [`crate::AsyncPolling`]
    /// says who: by default a short-lived helper thread blocked in `device.poll(Wait)`
    /// ([`crate::AsyncPolling::Thread`]); or the future itself, polling without blocking and
    /// yielding in between ([`crate::AsyncPolling::Yield`]); or the application
    /// ([`crate::AsyncPolling::External`]). See [`GpuContext::with_async_polling`](crate::GpuContext::with_async_polling).
    pub async fn forward_async(
        &self,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        options: &CallOptions,
    ) -> Result<ForwardOutput, GpuError> {
        self.run_host(query, value, key, options, Drive::Async).await
    }

    async fn run_host(
        &self,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        options: &CallOptions,
        drive: Drive,
    ) -> Result<ForwardOutput, GpuError> {
        let plan = self.plan(query.shape(), value.shape(), key.map(HostTensor::shape), options)?;
        let call = HostCall { query, value, key, cache: None };
        self.run_planned(OP, &call, plan, drive).await
    }

    /// Runs `plan` (made for `call`'s shapes) on host data and reads the results back.
    pub(crate) async fn run_planned(
        &self,
        op: &str,
        call: &HostCall<'_>,
        plan: Plan,
        drive: Drive,
    ) -> Result<ForwardOutput, GpuError> {
        log_plan(op, &plan);
        self.ctx.check_alive(op)?;
        let start = Instant::now();
        let problem = plan.problem.clone();
        let staging = self.submit_host(op, call, plan)?;
        let submitted = start.elapsed();
        let read = staging.read(&self.ctx, op, drive).await?;
        log::debug!("gqa {op}: recorded and submitted in {submitted:?}, results read back after {:?}", start.elapsed());
        forward_output(&problem, read)
    }

    /// Uploads the inputs, records the plan and the readback copies, submits: everything that
    /// needs the thread's error scopes, so that none is held across an `await`.
    fn submit_host(&self, op: &str, call: &HostCall<'_>, plan: Plan) -> Result<Staging, GpuError> {
        let ctx = &self.ctx;
        let device = &ctx.device;
        let work = || {
            // Inputs are written by the queue: they go back to the pool only after the submit.
            let mut inputs = Leases::new(ctx.pool.clone(), Class::Host);
            let mut outputs = Leases::new(ctx.pool.clone(), Class::Gpu);
            let uploaded =
                call.upload_inputs(&ctx.queue, |label, bytes| inputs.take(device, SCRATCH_USAGE, bytes, label));
            let output = |id: BufferId, leases: &mut Leases| {
                let spec = plan.buffer(id)?;
                Some(if self.poison_outputs {
                    let nan = vec![f32::NAN; spec.elems as usize];
                    upload(device, &ctx.queue, "gqa poisoned output", bytemuck::cast_slice(&nan), SCRATCH_USAGE)
                } else {
                    leases.take(device, SCRATCH_USAGE, spec.bytes, "gqa output")
                })
            };
            let out_buf = output(BufferId::Output, &mut outputs);
            let scores_buf = plan.scores_buffer().and_then(|id| output(id, &mut outputs));
            let args = call.gpu_inputs(&uploaded, out_buf.as_ref(), scores_buf.as_ref());
            let mut encoder =
                device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("gqa forward") });
            let rec = Recording::prepare(ctx, self.weight_store(), &args, call.cache, plan)?;
            rec.encode(&mut encoder, 0..rec.plan.steps.len());
            let sources = result_sources(&rec.plan, out_buf.as_ref(), scores_buf.as_ref());
            let staging = stage(ctx, &mut encoder, &sources);
            ctx.queue.submit([encoder.finish()]);
            Ok((staging, inputs, outputs))
        };
        let discard = |(_, inputs, outputs): (Staging, Leases, Leases)| {
            inputs.discard();
            outputs.discard();
        };
        // The inputs go back to the pool after the submit, when the leases are dropped here.
        let (staging, _inputs, _outputs) =
            scoped_or_discard(device, op, Catch::ValidationAndOutOfMemory, work, discard)?;
        Ok(staging)
    }
}
