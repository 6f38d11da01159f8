//! Opening a GPU context for `--backend`.

use gqa_wgpu::GpuContext;

use crate::args::Backend;
use crate::error::CliError;

impl Backend {
    /// The wgpu backends this choice searches (`None` for auto: all, or WGPU_BACKEND).
    pub fn wgpu(self) -> Option<wgpu::Backends> {
        match self {
            Backend::Vulkan => Some(wgpu::Backends::VULKAN),
            Backend::Gl => Some(wgpu::Backends::GL),
            Backend::Metal => Some(wgpu::Backends::METAL),
            Backend::Dx12 => Some(wgpu::Backends::DX12),
            Backend::Auto => None,
        }
    }
}

/// Opens the best adapter of the chosen backend.
pub fn open(backend: Backend) -> Result<GpuContext, CliError> {
    let result = match backend.wgpu() {
        Some(b) => GpuContext::with_backends(b),
        None => GpuContext::new(),
    };
    result.map_err(|source| CliError::Gpu { context: format!("opening a GPU adapter (--backend {backend:?})"), source })
}
