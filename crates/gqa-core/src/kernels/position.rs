//! The positional prologue of a layer with attention extensions (`position.wgsl`): on projected
//! queries or keys, in place, each head RMS-normalized with its learned scale (QK-norm), then its
//! leading pairs rotated by the rotary table's cos and sin for the row's position (RoPE) and stored
//! in the rope's layout. One workgroup of 64 per (row, head): the head is staged in workgroup
//! memory, the norm's sum reduced there, so every lane writes its pairs in place.
//!
//! Bindings: the projection (read-write, stored in the precision), the rotary table (f32 cos, sin
//! per position and pair), the norm's scale (H f32; the table is bound in its place without a
//! norm).

use super::{Access, Features, Kernel, KernelSpec, Precision, WavesFloor};

/// The most features of a head the kernel stages.
pub const MAX_HEAD_DIM: usize = 256;

/// The positional prologue in each precision (this family's part of [`Kernel::ALL`]).
pub const KERNELS: &[Kernel] = &[Kernel::Position(Precision::F32), Kernel::Position(Precision::F16)];

/// The kernel's spec in `precision`.
pub fn spec(precision: Precision) -> KernelSpec {
    let (name, snippets, features): (_, &'static [&'static str], _) = match precision {
        Precision::F32 => ("position", &["common/store_f32.wgsl", "common/params.wgsl"], Features::NONE),
        Precision::F16 => ("position_f16", &["common/f16.wgsl", "common/params.wgsl"], Features::SHADER_F16),
    };
    KernelSpec {
        name,
        file: "position.wgsl",
        snippets,
        workgroup_size: [64, 1, 1],
        // One (head, row) per workgroup.
        tile: [1, 1],
        bindings: &[Access::ReadWrite, Access::Read, Access::Read],
        workgroup_memory_bytes: (MAX_HEAD_DIM as u32 + 64) * 4,
        features,
        waves_floor: WavesFloor { rdna: 32, gcn: 10 },
        // Staging, the norm's sum, the reduction, the pairs and the unrotated tail, each over at
        // most H / 64 features per lane.
        loop_iterations: |p, _| 4 * (p.head_dim as u64).div_ceil(64) + 8,
    }
}
