//! What the catalogue records about a kernel.

use crate::params::Params;

/// Everything the planner and the executor need to know about one kernel.
#[derive(Debug, Clone, Copy)]
pub struct KernelSpec {
    /// A short name for labels, logs and profiles (unique per kernel).
    pub name: &'static str,
    /// The kernel's own WGSL file under `shaders/` (it holds the entry point `main`).
    pub file: &'static str,
    /// The shared snippets under `shaders/` (`common/...`) prepended to the file, in order.
    pub snippets: &'static [&'static str],
    /// `@workgroup_size` declared in the WGSL (a test compares it with naga's reflection).
    pub workgroup_size: [u32; 3],
    /// Output elements per workgroup along (x, y): the plan's grids are computed from these.
    pub tile: [u32; 2],
    /// What the kernel binds at bindings 1.. (after the params uniform at binding 0).
    pub bindings: &'static [Access],
    /// Bytes of workgroup memory the kernel declares.
    pub workgroup_memory_bytes: u32,
    /// The device features it needs.
    pub features: Features,
    /// The fewest waves per SIMD the kernel must keep on AMD GPUs: the occupancy its registers and
    /// workgroup memory are held to (measured on Mesa RADV's compiler by gqa-isa, checked by
    /// `crates/gqa-cli/tests/isa.rs` for the kernels a GPU tuning selects).
    pub waves_floor: WavesFloor,
    /// The most loop iterations one invocation runs for a pass's parameters, counting every
    /// iteration of every loop, the one that exits included (as Mesa's llvmpipe loop limiter does:
    /// one counter per invocation, shared by all its loops, never reset; measured by
    /// `tests/gpu_loop_cap.rs`). Loops with small constant trip counts are unrolled by the
    /// compilers and not counted. The second argument is the device's [smallest, largest] subgroup
    /// sizes ([0, 0] when unknown), which only the subgroup block attention's loops depend on.
    pub loop_iterations: fn(&Params, [u32; 2]) -> u64,
}

impl KernelSpec {
    /// How many storage buffers the kernel binds.
    pub fn storage_buffers(&self) -> u32 {
        self.bindings.iter().filter(|a| a.is_storage_buffer()).count() as u32
    }

    /// How many storage textures the kernel binds, read or written.
    pub fn storage_textures(&self) -> u32 {
        self.bindings.iter().filter(|a| a.is_storage_texture()).count() as u32
    }
}

/// A floor of waves per SIMD, per AMD architecture (what Mesa RADV's compiler reports as
/// "Subgroups per SIMD"): RDNA (navi21, gfx1100; 128 KiB of workgroup memory per WGP) and GCN
/// (vega10; 64 KiB per CU) differ in register files and workgroup memory, so each has its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavesFloor {
    /// The floor on RDNA (RDNA2 navi21, RDNA3 gfx1100).
    pub rdna: u32,
    /// The floor on GCN (vega10).
    pub gcn: u32,
}

/// The optional device features a kernel needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Features {
    /// `SHADER_F16` (WebGPU's `shader-f16`): the kernel stores f16 (`enable f16;`).
    pub shader_f16: bool,
    /// `SUBGROUP` (WGSL's `subgroups` extension): the kernel uses subgroup operations.
    pub subgroups: bool,
}

impl Features {
    /// No optional feature.
    pub const NONE: Features = Features { shader_f16: false, subgroups: false };
    /// `SHADER_F16` only.
    pub const SHADER_F16: Features = Features { shader_f16: true, subgroups: false };
    /// `SUBGROUP` only.
    pub const SUBGROUPS: Features = Features { shader_f16: false, subgroups: true };
}

/// How a kernel accesses one of its bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A storage buffer, `var<storage, read>`.
    Read,
    /// A storage buffer, `var<storage, read_write>`.
    ReadWrite,
    /// A read-only `texture_storage_2d<rgba32float, read>`, read with `textureLoad`. A storage
    /// texture rather than a sampled one: llvmpipe's image loads skip the sampler's per-lane mip
    /// level and clamp arithmetic (about a third of the instructions per fetch).
    Texture,
    /// A write-only `texture_storage_2d<rgba32float, write>`.
    TextureWrite,
}

impl Access {
    /// Whether the binding is a storage buffer.
    pub fn is_storage_buffer(self) -> bool {
        matches!(self, Access::Read | Access::ReadWrite)
    }

    /// Whether the binding is a storage texture (read-only or write-only).
    pub fn is_storage_texture(self) -> bool {
        matches!(self, Access::Texture | Access::TextureWrite)
    }
}
