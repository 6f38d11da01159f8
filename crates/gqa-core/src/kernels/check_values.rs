//! Whether the projected values hold a NaN or an infinity (`v_finite.wgsl`): its [`FLAG_WORDS`]
//! workgroups each write one word of `BufferId::VFlags`, 0 where their share of the values is
//! finite. The block attention reads the words and, where all are 0 and fully masked rows give
//! zeros, skips its scan of the keys outside `keys_seen` (causal and window skip), which only
//! looks for non-finite values there. A cached call, whose values are in the cache, writes "unknown" (1) without reading.

use super::{Access, Features, Kernel, KernelSpec, WavesFloor};

/// Workgroups of the kernel, and words it writes (one each).
pub const FLAG_WORDS: u32 = 16;

/// The value check (this family's part of [`Kernel::ALL`]).
pub const KERNELS: &[Kernel] = &[Kernel::CheckValues];

/// The kernel's spec. Bindings: the projected values, the words written.
pub const SPEC: KernelSpec = KernelSpec {
    name: "v_finite",
    file: "v_finite.wgsl",
    snippets: &["common/params.wgsl"],
    workgroup_size: [256, 1, 1],
    // One word per workgroup: the grid is FLAG_WORDS workgroups, not tiles of an output.
    tile: [1, 1],
    bindings: &[Access::Read, Access::ReadWrite],
    // The workgroup's flag.
    workgroup_memory_bytes: 4,
    features: Features::NONE,
    waves_floor: WavesFloor { rdna: 32, gcn: 10 },
    loop_iterations: |p, _| (p.check_vec4s as u64).div_ceil(256 * FLAG_WORDS as u64),
};
