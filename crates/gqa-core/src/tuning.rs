//! Which of the declared kernel variants a plan uses: the choice is made per adapter (by gqa-wgpu
//! from the adapter's type) and recorded in the plan.

use crate::kernel::Kernel;

/// The projection matmul's variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatmulVariant {
    /// Workgroup-memory tiles ([`Kernel::MatmulBias`]): the portable default, for GPUs.
    #[default]
    Tiled,
    /// Register blocking without workgroup memory: for CPU adapters. 16x16 outputs per invocation
    /// with vec4 loads ([`Kernel::MatmulBiasRb16`]) when the contracted and output sizes are multiples
    /// of 4, else 8x8 with scalar loads ([`Kernel::MatmulBiasRb`]).
    RegisterBlocked,
}

impl MatmulVariant {
    /// The kernel that implements it for a `k`-deep product with `n` output columns.
    pub fn kernel(self, k: u64, n: u64) -> Kernel {
        match self {
            MatmulVariant::Tiled => Kernel::MatmulBias,
            MatmulVariant::RegisterBlocked if k.is_multiple_of(4) && n.is_multiple_of(4) => Kernel::MatmulBiasRb16,
            MatmulVariant::RegisterBlocked => Kernel::MatmulBiasRb,
        }
    }
}

/// The variants a plan uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// The projection matmul.
    pub matmul: MatmulVariant,
    /// Use the fused attention kernel where it applies (no scores requested, no dropout,
    /// H <= 256, and the device offers 6 storage buffers per stage and 8 KiB of workgroup memory);
    /// otherwise logits, softmax and PV run as separate passes.
    pub fused_attention: bool,
    /// Use flash-decoding (the fused kernel split over key ranges, then a reduce) for short queries
    /// (T <= 16) over long sources (S >= 512), under the same conditions as the fused kernel.
    pub split_decode: bool,
    /// The most loop iterations one invocation may run, where the driver stops loops early: Mesa's
    /// llvmpipe (lavapipe, GL llvmpipe) ends any loop after 65,535 iterations per invocation
    /// (counted over all its entries), silently. Plans keep every kernel under it, picking the
    /// variant that fits, or fail with an error naming it.
    pub loop_iteration_cap: Option<u64>,
    /// Use the subgroup variants ([`Kernel::SoftmaxMaskedSubgroup`] for the masked softmax) instead
    /// of the workgroup-memory baselines. Only for devices with the `SUBGROUP` feature: gqa-wgpu
    /// sets it from the device's features, and compiles those kernels only there. Off in
    /// [`Tuning::CPU`] and [`Tuning::GPU`].
    pub subgroups: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Self::GPU
    }
}

impl Tuning {
    /// For adapters that run shaders on the CPU (lavapipe, llvmpipe, WARP): register blocking wins
    /// there, workgroup barriers cost more than they save, and the fused attention kernel (its
    /// per-query arrays live in scratch memory there) was measured slower than the separate passes
    /// (docs/PERFORMANCE.md); loops stop at Mesa's cap.
    pub const CPU: Tuning = Tuning {
        matmul: MatmulVariant::RegisterBlocked,
        fused_attention: false,
        split_decode: true,
        loop_iteration_cap: Some(65_535),
        subgroups: false,
    };
    /// For GPUs: workgroup-memory tiles.
    pub const GPU: Tuning = Tuning {
        matmul: MatmulVariant::Tiled,
        fused_attention: true,
        split_decode: true,
        loop_iteration_cap: None,
        subgroups: false,
    };

    /// The masked softmax kernel this tuning picks.
    pub fn softmax_kernel(&self) -> Kernel {
        if self.subgroups { Kernel::SoftmaxMaskedSubgroup } else { Kernel::SoftmaxMasked }
    }
}
