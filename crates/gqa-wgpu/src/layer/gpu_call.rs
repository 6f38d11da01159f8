//! Calls on GPU buffers: recorded into the caller's encoder ([`GqaLayer::encode_forward`]) or
//! submitted by the layer ([`GqaLayer::forward_tensors`]).

use gqa_core::{BufferId, CallOptions, Plan};

use super::GqaLayer;
use super::plan::log_plan;
use crate::args::{EncodedForward, ForwardArgs, GpuInputs, TensorArgs};
use crate::error::GpuError;
use crate::error_scope::{Catch, scoped};

impl GqaLayer {
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
        self.encode_planned(encoder, &inputs, plan)
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
        plan: Plan,
    ) -> Result<EncodedForward, GpuError> {
        crate::encode::record(&self.ctx, &self.weights, encoder, inputs, None, plan)
    }
}
