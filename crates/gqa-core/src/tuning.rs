//! Which of the declared kernel variants a plan uses: the choice is made per adapter (by gqa-wgpu
//! from the adapter's type) and recorded in the plan.

use crate::kernel::Kernel;

/// The projection matmul's variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatmulVariant {
    /// Workgroup-memory tiles ([`Kernel::MatmulBias`]): the portable default, for GPUs.
    #[default]
    Tiled,
    /// Register blocking without workgroup memory ([`Kernel::MatmulBiasRb`]): for CPU adapters.
    RegisterBlocked,
}

impl MatmulVariant {
    /// The kernel that implements it.
    pub fn kernel(self) -> Kernel {
        match self {
            MatmulVariant::Tiled => Kernel::MatmulBias,
            MatmulVariant::RegisterBlocked => Kernel::MatmulBiasRb,
        }
    }
}

/// The variants a plan uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tuning {
    /// The projection matmul.
    pub matmul: MatmulVariant,
}

impl Tuning {
    /// For adapters that run shaders on the CPU (lavapipe, llvmpipe, WARP): register blocking wins
    /// there, workgroup barriers cost more than they save.
    pub const CPU: Tuning = Tuning { matmul: MatmulVariant::RegisterBlocked };
    /// For GPUs: workgroup-memory tiles.
    pub const GPU: Tuning = Tuning { matmul: MatmulVariant::Tiled };
}
