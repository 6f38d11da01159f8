//! Running GPU work under wgpu error scopes, so that what the device rejects comes back as a
//! [`GpuError`] naming the op instead of reaching the device's uncaptured-error handler.
//!
//! Error scopes are per thread in wgpu: a scope sees only the errors of the calls made on the
//! thread that pushed it, so concurrent calls on one device do not see each other's errors.

use crate::error::GpuError;

/// Which errors a scope catches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Catch {
    /// Validation errors only.
    Validation,
    /// Out-of-memory errors only.
    OutOfMemory,
    /// Validation and out-of-memory errors (the latter reported first when both occur).
    ValidationAndOutOfMemory,
}

impl Catch {
    fn validation(self) -> bool {
        matches!(self, Self::Validation | Self::ValidationAndOutOfMemory)
    }

    fn out_of_memory(self) -> bool {
        matches!(self, Self::OutOfMemory | Self::ValidationAndOutOfMemory)
    }
}

/// Runs `work` under the scopes `catch` names. `work`'s own error comes first; else an error the
/// scopes caught becomes [`GpuError::OutOfMemory`] or [`GpuError::Validation`] for `op`.
pub(crate) fn scoped<T>(
    device: &wgpu::Device,
    op: &str,
    catch: Catch,
    work: impl FnOnce() -> Result<T, GpuError>,
) -> Result<T, GpuError> {
    scoped_or_discard(device, op, catch, work, drop)
}

/// [`scoped`] that hands `work`'s value to `discard` when the scopes caught an error (so that
/// buffers the failed work leased are dropped instead of going back to the pool).
pub(crate) fn scoped_or_discard<T>(
    device: &wgpu::Device,
    op: &str,
    catch: Catch,
    work: impl FnOnce() -> Result<T, GpuError>,
    discard: impl FnOnce(T),
) -> Result<T, GpuError> {
    let validation = catch.validation().then(|| device.push_error_scope(wgpu::ErrorFilter::Validation));
    let out_of_memory = catch.out_of_memory().then(|| device.push_error_scope(wgpu::ErrorFilter::OutOfMemory));
    let result = work();
    // Popped innermost first.
    let out_of_memory = out_of_memory.and_then(|scope| pollster::block_on(scope.pop()));
    let validation = validation.and_then(|scope| pollster::block_on(scope.pop()));
    let value = result?;
    match out_of_memory.or(validation) {
        Some(e) => {
            discard(value);
            Err(GpuError::from_wgpu(op, e))
        }
        None => Ok(value),
    }
}
