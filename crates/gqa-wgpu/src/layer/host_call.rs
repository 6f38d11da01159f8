//! One call on host data ([`HostCall`]) and the upload of its inputs into GPU buffers
//! ([`HostCall::upload_inputs`]), shared by the host calls and the step timers.

use gqa_core::HostTensor;

use crate::args::{GpuInputs, dims3};
use crate::encode::CacheBuffers;

/// One call on host data: the inputs and, for a cached call, the KV cache's buffers.
#[derive(Clone, Copy)]
pub(crate) struct HostCall<'a> {
    pub(crate) query: &'a HostTensor,
    pub(crate) value: &'a HostTensor,
    pub(crate) key: Option<&'a HostTensor>,
    pub(crate) cache: Option<CacheBuffers<'a>>,
}

/// A host call's inputs in GPU buffers.
pub(crate) struct InputBuffers {
    query: wgpu::Buffer,
    value: wgpu::Buffer,
    key: Option<wgpu::Buffer>,
}

impl HostCall<'_> {
    /// Writes query, value and key (when given), in that order, through `queue` into the buffers
    /// `buffer(label, bytes)` gives (each at least `bytes` long, with `COPY_DST`). The writes reach
    /// the buffers at the next submission.
    pub(crate) fn upload_inputs(
        &self,
        queue: &wgpu::Queue,
        mut buffer: impl FnMut(&str, u64) -> wgpu::Buffer,
    ) -> InputBuffers {
        let mut input = |label: &str, t: &HostTensor| {
            let buf = buffer(label, t.len() as u64 * 4);
            if !t.is_empty() {
                queue.write_buffer(&buf, 0, bytemuck::cast_slice(t.data()));
            }
            buf
        };
        let query = input("gqa query", self.query);
        let value = input("gqa value", self.value);
        let key = self.key.map(|k| input("gqa key", k));
        InputBuffers { query, value, key }
    }

    /// The call's GPU inputs: the uploaded `buffers` with this call's shapes, the results written
    /// into `output` and `scores`.
    pub(crate) fn gpu_inputs<'b>(
        &self,
        buffers: &'b InputBuffers,
        output: Option<&'b wgpu::Buffer>,
        scores: Option<&'b wgpu::Buffer>,
    ) -> GpuInputs<'b> {
        GpuInputs {
            query: &buffers.query,
            query_shape: dims3(self.query.shape()),
            value: &buffers.value,
            value_shape: dims3(self.value.shape()),
            key: buffers.key.as_ref().zip(self.key.map(|t| dims3(t.shape()))),
            output,
            scores,
        }
    }
}
