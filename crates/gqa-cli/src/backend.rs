//! Opening a GPU context for `--backend`, and which backends this build offers on this OS
//! (`--backend cpu`, the CPU layer, opens no GPU: the commands that offer it branch before [`open`]).

use gqa_wgpu::GpuContext;

use crate::args::Backend;
use crate::error::CliError;

impl Backend {
    /// The wgpu backends this choice searches (`None` for auto: all, or WGPU_BACKEND; and for cpu,
    /// which opens no adapter).
    pub fn wgpu(self) -> Option<wgpu::Backends> {
        match self {
            Backend::Cpu => None,
            Backend::Vulkan => Some(wgpu::Backends::VULKAN),
            Backend::Gl => Some(wgpu::Backends::GL),
            Backend::Metal => Some(wgpu::Backends::METAL),
            Backend::Dx12 => Some(wgpu::Backends::DX12),
            Backend::Auto => None,
        }
    }

    /// The flag's spelling (`vulkan`, `gl`, ...).
    pub fn flag(self) -> &'static str {
        match self {
            Backend::Vulkan => "vulkan",
            Backend::Gl => "gl",
            Backend::Metal => "metal",
            Backend::Dx12 => "dx12",
            Backend::Auto => "auto",
            Backend::Cpu => crate::cpu_layer::FLAG,
        }
    }

    /// Whether this build, on this operating system, can open an adapter of this backend.
    pub fn offered(self) -> bool {
        let apple = cfg!(any(target_os = "macos", target_os = "ios"));
        match self {
            Backend::Vulkan => cfg!(feature = "vulkan") && !cfg!(target_os = "ios"),
            Backend::Gl => cfg!(feature = "gles"),
            Backend::Metal => cfg!(feature = "metal") && apple,
            Backend::Dx12 => cfg!(feature = "dx12") && cfg!(windows),
            Backend::Auto | Backend::Cpu => true,
        }
    }

    /// Whether this is the CPU layer (`--backend cpu`) rather than a GPU API.
    pub fn is_cpu(self) -> bool {
        self == Backend::Cpu
    }
}

/// The backends this build offers on this OS, comma separated (`vulkan, gl` on Linux).
pub fn offered() -> String {
    [Backend::Vulkan, Backend::Gl, Backend::Metal, Backend::Dx12]
        .into_iter()
        .filter(|b| b.offered())
        .map(Backend::flag)
        .collect::<Vec<_>>()
        .join(", ")
}

/// An error when `backend` is one this build or OS does not offer.
pub fn check_offered(backend: Backend) -> Result<(), CliError> {
    if backend.offered() {
        return Ok(());
    }
    Err(CliError::UnsupportedBackend { backend: backend.flag().into(), os: std::env::consts::OS, offered: offered() })
}

/// Opens the best adapter of the chosen backend; `--backend cpu` is an error here (a command that
/// runs the CPU layer branches before).
pub fn open(backend: Backend) -> Result<GpuContext, CliError> {
    if backend.is_cpu() {
        return Err(CliError::Flags(
            "--backend cpu runs the CPU layer, and this command needs a GPU adapter: pass a GPU backend (or auto)"
                .into(),
        ));
    }
    check_offered(backend)?;
    let result = match backend.wgpu() {
        Some(b) => GpuContext::with_backends(b),
        None => GpuContext::new(),
    };
    result.map_err(|source| CliError::Gpu {
        context: format!("opening a GPU adapter (--backend {})", backend.flag()),
        source,
    })
}
