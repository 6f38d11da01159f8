//! Copies a row-major `m x k` f32 buffer (k a multiple of 4) into an rgba32float storage texture of
//! `k / 4` x `m` texels, one texel column of 128 rows per invocation (`pack_texture.wgsl`): the A
//! operand of a textured matmul where the input cannot be a copy source (a caller's buffer made
//! without `COPY_SRC`, `Plan::packing_by_passes_from`); plans pack with copies.

use super::{Access, Features, Kernel, KernelSpec, WavesFloor};

/// The texture packing (this family's part of [`Kernel::ALL`]).
pub const KERNELS: &[Kernel] = &[Kernel::PackTexture];

/// The kernel's spec. Bindings: the f32 source, the texture written.
pub const SPEC: KernelSpec = KernelSpec {
    name: "pack_texture",
    file: "pack_texture.wgsl",
    snippets: &["common/params.wgsl"],
    workgroup_size: [64, 1, 1],
    // One texel (4 columns) per invocation, over 128 rows (the matmuls' row tile).
    tile: [256, 128],
    bindings: &[Access::Read, Access::TextureWrite],
    workgroup_memory_bytes: 0,
    features: Features::NONE,
    waves_floor: WavesFloor { rdna: 32, gcn: 10 },
    loop_iterations: |_, _| 128,
};
