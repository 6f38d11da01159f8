//! Errors of the GPU path.

use thiserror::Error;

/// What can go wrong running the layer on wgpu.
///
/// [`GpuError::Invalid`] is bad input (fix the call); the others are about the device or the adapter
/// (fall back, or rebuild the context).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GpuError {
    /// The config, shapes, masks, weights or plan are invalid (see [`gqa_core::GqaError`]).
    #[error(transparent)]
    Invalid(#[from] gqa_core::GqaError),
    /// No adapter was found for the requested backends.
    #[error("no GPU adapter found for backends {backends}: {hint}")]
    NoAdapter {
        /// The backends searched.
        backends: String,
        /// What to install or check.
        hint: String,
    },
    /// The adapter refused to create a device.
    #[error("request_device on {adapter}: {message}")]
    RequestDevice {
        /// The adapter's name.
        adapter: String,
        /// wgpu's message.
        message: String,
    },
    /// wgpu reported a validation error while running an op.
    #[error("{op}: wgpu validation error: {message}")]
    Validation {
        /// The op (`forward`, `upload weights` ...).
        op: String,
        /// wgpu's message.
        message: String,
    },
    /// The device ran out of memory.
    #[error("{op}: out of GPU memory: {message}")]
    OutOfMemory {
        /// The op.
        op: String,
        /// wgpu's message.
        message: String,
    },
    /// Reading results back failed.
    #[error("{op}: mapping a buffer for reading failed: {message}")]
    Map {
        /// The op.
        op: String,
        /// Why.
        message: String,
    },
    /// Waiting for the device failed (lost device, timeout).
    #[error("{op}: waiting for the device failed: {message}")]
    Device {
        /// The op.
        op: String,
        /// Why.
        message: String,
    },
    /// Something the call needs is not available on this adapter.
    #[error("{op}: {what} is not available on this adapter")]
    Unsupported {
        /// The op.
        op: String,
        /// What is missing.
        what: String,
    },
    /// The device was lost (driver reset, `destroy`, ...): rebuild the context and the layer.
    #[error("{op}: the GPU device was lost ({reason}); create a new GpuContext and layer")]
    DeviceLost {
        /// The op.
        op: String,
        /// wgpu's reason.
        reason: String,
    },
    /// A caller-provided GPU buffer is too small or lacks a usage.
    #[error("{op}: buffer {buffer}: {problem}")]
    Buffer {
        /// The op.
        op: String,
        /// Which buffer.
        buffer: String,
        /// What is wrong.
        problem: String,
    },
}

impl GpuError {
    /// Converts a wgpu error popped from an error scope.
    pub(crate) fn from_wgpu(op: &str, e: wgpu::Error) -> Self {
        match e {
            wgpu::Error::OutOfMemory { .. } => Self::OutOfMemory { op: op.into(), message: e.to_string() },
            other => Self::Validation { op: op.into(), message: other.to_string() },
        }
    }
}
