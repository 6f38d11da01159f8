//! The attention as separate passes through a buffer of logits: [`Kernel::Logits`], then
//! [`Kernel::Softmax`] in place, then [`Kernel::AttendValues`]. The logits and weighted-values
//! kernels are one file for both precisions, whose storage type is `Elem` (`common/store_f32.wgsl`
//! declares it f32, `common/f16.wgsl` f16).
//!
//! [`Kernel::Logits`]: super::Kernel::Logits
//! [`Kernel::Softmax`]: super::Kernel::Softmax
//! [`Kernel::AttendValues`]: super::Kernel::AttendValues

use super::{Access, Features, Kernel, KernelSpec, Precision, WavesFloor};

/// Who takes the masked softmax's row reductions (max, any visible, sum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lanes {
    /// The workgroup, through workgroup memory (`softmax_masked.wgsl`): one workgroup of 64 per
    /// (b, u, t) row, fifteen barriers per row.
    Workgroup,
    /// Subgroup operations, combined across subgroups through one workgroup slot per subgroup
    /// (`softmax_masked_subgroup.wgsl`): two barriers per row. Correct for any subgroup size and
    /// layout; needs the device's `SUBGROUP` feature.
    Subgroup,
}

/// Every kernel of the separate passes, each once (this family's part of [`Kernel::ALL`]).
pub const KERNELS: &[Kernel] = &[
    Kernel::Logits(Precision::F32),
    Kernel::Logits(Precision::F16),
    Kernel::Softmax(Lanes::Workgroup),
    Kernel::Softmax(Lanes::Subgroup),
    Kernel::AttendValues(Precision::F32),
    Kernel::AttendValues(Precision::F16),
];

/// The logits kernel (`qk_grouped.wgsl`): 64x64 (t, s) tiles, 4x4 per invocation, f32 logits.
pub fn logits(precision: Precision) -> KernelSpec {
    let (name, snippets, features): (_, &'static [&'static str], _) = match precision {
        Precision::F32 => ("qk_grouped", &["common/store_f32.wgsl", "common/params.wgsl"], Features::NONE),
        Precision::F16 => ("qk_grouped_f16", &["common/f16.wgsl", "common/params.wgsl"], Features::SHADER_F16),
    };
    KernelSpec {
        name,
        file: "qk_grouped.wgsl",
        snippets,
        workgroup_size: [16, 16, 1],
        tile: [64, 64],
        bindings: &[Access::Read, Access::Read, Access::ReadWrite],
        workgroup_memory_bytes: 0,
        features,
        waves_floor: WavesFloor { rdna: 24, gcn: 6 },
        loop_iterations: |p, _| p.head_dim as u64 + 16,
    }
}

/// The masked softmax over each row of the logits, in place (Keras' replace-then-zero semantics,
/// fully masked rows per the policy; the soft cap on the logits first, and the sinks in the
/// denominator, where the params say): one workgroup of 64 per (b, u, t) row. Bindings: masks,
/// probabilities, sink logits (Nq f32; the masks in their place without sinks).
pub fn softmax(lanes: Lanes) -> KernelSpec {
    let snippets = &["common/params.wgsl", "common/mask.wgsl"];
    let bindings = &[Access::Read, Access::ReadWrite, Access::Read];
    match lanes {
        Lanes::Workgroup => KernelSpec {
            name: "softmax_masked",
            file: "softmax_masked.wgsl",
            snippets,
            workgroup_size: [64, 1, 1],
            tile: [1, 1],
            bindings,
            workgroup_memory_bytes: 2 * 64 * 4,
            features: Features::NONE,
            waves_floor: WavesFloor { rdna: 32, gcn: 10 },
            loop_iterations: |p, _| 3 * (p.s_len as u64).div_ceil(64) + 12,
        },
        Lanes::Subgroup => KernelSpec {
            name: "softmax_masked_subgroup",
            file: "softmax_masked_subgroup.wgsl",
            snippets,
            workgroup_size: [64, 1, 1],
            tile: [1, 1],
            bindings,
            // Max, any-visible and sum slots for up to 64 subgroups.
            workgroup_memory_bytes: 3 * 64 * 4,
            features: Features::SUBGROUPS,
            waves_floor: WavesFloor { rdna: 32, gcn: 10 },
            // The three strided passes, and two walks over at most 64 subgroup slots.
            loop_iterations: |p, _| 3 * (p.s_len as u64).div_ceil(64) + 2 * 64,
        },
    }
}

/// The weighted values (`pv_grouped.wgsl`): `O = drop(P)·V (·G)`, 64x64 (h, t) tiles, 4x4 per
/// invocation; f32 probabilities, V, gate and output stored in the precision.
pub fn attend_values(precision: Precision) -> KernelSpec {
    let (name, snippets, features): (_, &'static [&'static str], _) = match precision {
        Precision::F32 => {
            ("pv_grouped", &["common/store_f32.wgsl", "common/params.wgsl", "common/dropout.wgsl"], Features::NONE)
        }
        Precision::F16 => {
            ("pv_grouped_f16", &["common/f16.wgsl", "common/params.wgsl", "common/dropout.wgsl"], Features::SHADER_F16)
        }
    };
    KernelSpec {
        name,
        file: "pv_grouped.wgsl",
        snippets,
        workgroup_size: [16, 16, 1],
        tile: [64, 64],
        bindings: &[Access::Read, Access::Read, Access::Read, Access::ReadWrite],
        workgroup_memory_bytes: 0,
        features,
        waves_floor: WavesFloor { rdna: 20, gcn: 5 },
        loop_iterations: |p, _| p.s_len as u64 + 16,
    }
}
