//! Reading GPU buffers back to the host: copies into one pooled staging buffer, recorded into the
//! caller's encoder, then a map (see [`crate::polling`]); and a call's results as host tensors.

use gqa_core::{BufferId, ForwardOutput, HostTensor, Plan, Problem};

use crate::context::GpuContext;
use crate::error::GpuError;
use crate::error_scope::{Catch, scoped};
use crate::polling::{Drive, mapped};
use crate::pool::Class;

/// Copies recorded into a staging buffer, to read once the encoder is submitted.
pub(crate) struct Staging {
    buffer: wgpu::Buffer,
    /// The bytes of each source, in order.
    parts: Vec<u64>,
}

/// Records copies of `sources` (each `bytes` long, from offset 0) into one staging buffer from the
/// pool, one after the other.
pub(crate) fn stage(ctx: &GpuContext, encoder: &mut wgpu::CommandEncoder, sources: &[(&wgpu::Buffer, u64)]) -> Staging {
    let total: u64 = sources.iter().map(|(_, n)| n).sum();
    let usage = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
    let buffer = ctx.pool.take(&ctx.device, Class::Gpu, usage, total, "gqa readback");
    let mut at = 0;
    for (src, bytes) in sources {
        if *bytes > 0 {
            encoder.copy_buffer_to_buffer(src, 0, &buffer, at, *bytes);
        }
        at += bytes;
    }
    Staging { buffer, parts: sources.iter().map(|(_, n)| *n).collect() }
}

/// [`stage`] into an encoder of its own (labelled `label`), submitted under a validation scope:
/// the staging to [`Staging::read`].
pub(crate) fn submit_staged(
    ctx: &GpuContext,
    op: &str,
    label: &str,
    sources: &[(&wgpu::Buffer, u64)],
) -> Result<Staging, GpuError> {
    scoped(&ctx.device, op, Catch::Validation, || {
        let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        let staging = stage(ctx, &mut encoder, sources);
        ctx.queue.submit([encoder.finish()]);
        Ok(staging)
    })
}

impl Staging {
    /// After the encoder holding the copies was submitted: maps the staging buffer, waits as
    /// `drive` says, returns each source as f32 and gives the staging buffer back to the pool.
    pub(crate) async fn read(self, ctx: &GpuContext, op: &str, drive: Drive) -> Result<Vec<Vec<f32>>, GpuError> {
        let slice = self.buffer.slice(..);
        mapped(ctx, &self.buffer, op, drive).await?;
        let view = slice.get_mapped_range().map_err(|e| GpuError::Map { op: op.into(), message: e.to_string() })?;
        let all: &[f32] = bytemuck::cast_slice(&view);
        let mut out = Vec::with_capacity(self.parts.len());
        let mut at = 0;
        for bytes in &self.parts {
            let n = (*bytes / 4) as usize;
            out.push(all.get(at..at + n).map(<[f32]>::to_vec).unwrap_or_default());
            at += n;
        }
        drop(view);
        self.buffer.unmap();
        ctx.pool.give(Class::Gpu, self.buffer);
        Ok(out)
    }
}

/// A call's results to read back: its output buffer and, when the plan returns scores, its scores
/// buffer (those given), each with the bytes the plan writes.
pub(crate) fn result_sources<'a>(
    plan: &Plan,
    output: Option<&'a wgpu::Buffer>,
    scores: Option<&'a wgpu::Buffer>,
) -> Vec<(&'a wgpu::Buffer, u64)> {
    let bytes = |id| plan.buffer(id).map_or(0, |b| b.bytes);
    let scores = plan.scores_buffer().zip(scores).map(|(id, buffer)| (buffer, bytes(id)));
    output.map(|buffer| (buffer, bytes(BufferId::Output))).into_iter().chain(scores).collect()
}

/// The results read back from [`result_sources`] as host tensors: the output, and the scores when
/// the problem returns them.
pub(crate) fn forward_output(problem: &Problem, read: Vec<Vec<f32>>) -> Result<ForwardOutput, GpuError> {
    let mut read = read.into_iter();
    let output = HostTensor::new(problem.output_shape(), read.next().unwrap_or_default())?;
    let scores = match (problem.return_scores, read.next()) {
        (true, Some(data)) => Some(HostTensor::new(problem.scores_shape(), data)?),
        _ => None,
    };
    Ok(ForwardOutput { output, scores })
}
