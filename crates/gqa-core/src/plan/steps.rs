//! A plan's steps: dispatches of a kernel with its params and bindings, and copies.

use super::resources::BufferId;
use crate::kernels::Kernel;
use crate::params::Params;

/// One dispatch.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    /// A label for debugging and logs (`project_query` ...).
    pub label: &'static str,
    /// The kernel.
    pub kernel: Kernel,
    /// Workgroup counts (x, y, z).
    pub workgroups: [u32; 3],
    /// The uniform parameters.
    pub params: Params,
    /// Storage bindings 1.. in order (binding 0 is the params uniform).
    pub bindings: Vec<BufferId>,
}

impl Pass {
    /// The pass's floating-point operations (multiply-add = 2) where they follow from its params
    /// alone: `2 m n k` for a matmul ([`Kernel::is_matmul`]); `None` for other kernels, whose work
    /// depends on the masks and the chunking (the plan's total is [`crate::Plan::flops`]).
    pub fn flops(&self) -> Option<u64> {
        let p = &self.params;
        self.kernel.is_matmul().then(|| 2 * p.m as u64 * p.n as u64 * p.k as u64)
    }
}

/// A copy between passes (moving batch chunks in and out, gathering chunked scores, appending to a
/// KV cache). Its source is a buffer. Its destination is a buffer, or a texture resource (a KV cache's
/// texture mirror) addressed as the row-major f32 matrix it holds: `dst_offset` and `bytes` are then
/// whole rows of `width · 16` bytes, and `src_offset` a multiple of 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopySpec {
    /// What the copy is for (`copy`, or the texture it fills: `pack_query`, ...), as profiles show.
    pub label: &'static str,
    /// Source buffer.
    pub src: BufferId,
    /// Byte offset in the source (a multiple of 4).
    pub src_offset: u64,
    /// Destination buffer.
    pub dst: BufferId,
    /// Byte offset in the destination (a multiple of 4).
    pub dst_offset: u64,
    /// Bytes to copy (a multiple of 4).
    pub bytes: u64,
}

/// One step of a plan, in order.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a plan holds tens of steps, mostly dispatches: boxing each pass's params would only add indirection"
)]
pub enum Step {
    /// A compute dispatch.
    Dispatch(Pass),
    /// A copy.
    Copy(CopySpec),
}

impl Step {
    /// The dispatch's label (`project_query`, `attention_block`, ...), or the copy's (`copy`, or the
    /// texture a packing copy fills: `pack_query`, ...).
    pub fn label(&self) -> &'static str {
        match self {
            Step::Dispatch(p) => p.label,
            Step::Copy(c) => c.label,
        }
    }
}
