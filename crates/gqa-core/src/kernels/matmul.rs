//! The projections' matmuls, `C = A·B (+ bias) (sigmoid)` with sizes in the params' `m`, `n`, `k`.

use super::{Access, Features, Kernel, KernelSpec, Operands, WavesFloor};

/// A matmul kernel: how it blocks the product, and its operands' storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatmulKernel {
    /// 64x64 output tiles, 4x4 per invocation, K staged through workgroup memory in slices of 16
    /// (`matmul_bias.wgsl`): the portable default, for GPUs. f32, storage buffers.
    Tiled,
    /// 8x8 outputs per invocation, scalar loads, no workgroup memory or barriers, storage buffers:
    /// f32 (`matmul_bias_rb.wgsl`, for CPU adapters where barriers are expensive) or the f16 forms
    /// (`matmul_bias_f16.wgsl`, `matmul_bias_f16_to_f32.wgsl`).
    Blocked8x8(MatmulPrecision),
    /// Register blocks of `rows` x 16 outputs per invocation in named vec4 accumulators, vec4 loads
    /// (k and n multiples of 4), f32: the four files `tools/gen_matmul_rb16.py` generates. A and B
    /// come through `load_a` / `load_b` from `common/operands_storage.wgsl` or
    /// `common/operands_texture.wgsl`. With `subgroups`, the 8 lanes of a row of the grid, which
    /// read the same rows of A, fetch a share of them each and broadcast them (only where every
    /// subgroup has exactly 8 lanes in one row of the grid, checked at run time; elsewhere the lanes
    /// fetch their own rows).
    Blocked {
        /// Rows per invocation (and per tile: 128 or 64).
        rows: BlockRows,
        /// Where A and B are read from.
        operands: Operands,
        /// Whether A's rows are shared across a subgroup.
        subgroups: bool,
    },
    /// 4 rows x 4 adjacent columns per invocation, vec4 loads, each weight vec4 read once per 4
    /// rows (`matmul_bias_rows4.wgsl`): a decoding step's projections (a matrix-vector product
    /// bound by reading the weights). k and n multiples of 4.
    Rows4(Operands),
}

/// Storage types of a matmul's operands and output (accumulation is f32 in every kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatmulPrecision {
    /// f32 throughout.
    F32,
    /// f32 input rounded to f16 as it is loaded, f16 weight and bias, f16 output.
    F16,
    /// f16 input, weight and bias, f32 output: the f16 plans' output projection.
    F16ToF32,
}

/// Rows per invocation of [`MatmulKernel::Blocked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockRows {
    /// 16 rows x 16 columns, 128 x 128 tiles.
    Sixteen,
    /// 8 rows x 16 columns, 64-row tiles (128 x 64): products of few rows fill their tiles better.
    Eight,
}

const STORAGE: &[Access] = &[Access::Read, Access::Read, Access::Read, Access::ReadWrite];
const TEXTURES: &[Access] = &[Access::Texture, Access::Texture, Access::Read, Access::ReadWrite];

/// Every matmul kernel, each once (this family's part of [`Kernel::ALL`]).
pub const KERNELS: &[Kernel] = {
    use BlockRows::{Eight, Sixteen};
    use MatmulKernel::{Blocked8x8, Rows4, Tiled};
    use Operands::{Storage, Texture};
    &[
        Kernel::Matmul(Tiled),
        Kernel::Matmul(Blocked8x8(MatmulPrecision::F32)),
        Kernel::Matmul(Blocked8x8(MatmulPrecision::F16)),
        Kernel::Matmul(Blocked8x8(MatmulPrecision::F16ToF32)),
        Kernel::Matmul(MatmulKernel::blocked(Sixteen, Storage, false)),
        Kernel::Matmul(MatmulKernel::blocked(Sixteen, Storage, true)),
        Kernel::Matmul(MatmulKernel::blocked(Sixteen, Texture, false)),
        Kernel::Matmul(MatmulKernel::blocked(Sixteen, Texture, true)),
        Kernel::Matmul(MatmulKernel::blocked(Eight, Storage, false)),
        Kernel::Matmul(MatmulKernel::blocked(Eight, Storage, true)),
        Kernel::Matmul(MatmulKernel::blocked(Eight, Texture, false)),
        Kernel::Matmul(MatmulKernel::blocked(Eight, Texture, true)),
        Kernel::Matmul(Rows4(Storage)),
        Kernel::Matmul(Rows4(Texture)),
    ]
};

impl MatmulKernel {
    /// [`MatmulKernel::Blocked`] with these axes.
    pub const fn blocked(rows: BlockRows, operands: Operands, subgroups: bool) -> Self {
        MatmulKernel::Blocked { rows, operands, subgroups }
    }

    /// Where A and B are read from.
    pub fn operands(self) -> Operands {
        match self {
            MatmulKernel::Tiled | MatmulKernel::Blocked8x8(_) => Operands::Storage,
            MatmulKernel::Blocked { operands, .. } | MatmulKernel::Rows4(operands) => operands,
        }
    }

    /// The kernel's spec.
    pub fn spec(self) -> KernelSpec {
        match self {
            MatmulKernel::Tiled => KernelSpec {
                name: "matmul_bias",
                file: "matmul_bias.wgsl",
                snippets: &["common/params.wgsl"],
                workgroup_size: [16, 16, 1],
                tile: [64, 64],
                bindings: STORAGE,
                workgroup_memory_bytes: 2 * 16 * 64 * 4,
                features: Features::NONE,
                waves_floor: WavesFloor { rdna: 32, gcn: 8 },
                // Per 16 steps of k: the staging step, the 16 steps of the inner loop over the
                // staged slice and its exit (Mesa's Vulkan lavapipe keeps that loop: 18 per slice,
                // measured); the outer loop's exit, and the 4 stores' loops of 4 and their exits.
                loop_iterations: |p, _| (p.k as u64).div_ceil(16) * 18 + 1 + 4 * 5,
            },
            MatmulKernel::Blocked8x8(precision) => {
                let (name, file, snippets, features): (_, _, &'static [&'static str], _) = match precision {
                    MatmulPrecision::F32 => {
                        ("matmul_bias_rb", "matmul_bias_rb.wgsl", &["common/params.wgsl"], Features::NONE)
                    }
                    MatmulPrecision::F16 => {
                        ("matmul_bias_f16", "matmul_bias_f16.wgsl", F16_SNIPPETS, Features::SHADER_F16)
                    }
                    MatmulPrecision::F16ToF32 => {
                        ("matmul_bias_f16_to_f32", "matmul_bias_f16_to_f32.wgsl", F16_SNIPPETS, Features::SHADER_F16)
                    }
                };
                KernelSpec {
                    name,
                    file,
                    snippets,
                    workgroup_size: [8, 8, 1],
                    tile: [64, 64],
                    bindings: STORAGE,
                    workgroup_memory_bytes: 0,
                    features,
                    waves_floor: WavesFloor { rdna: 8, gcn: 2 },
                    // The loop over k and its exit, the loop over the block's 8 rows and its exit
                    // (measured on lavapipe: right up to k = 65,525, wrong from 65,527).
                    loop_iterations: |p, _| p.k as u64 + 10,
                }
            }
            MatmulKernel::Blocked { rows, operands, subgroups } => {
                use BlockRows::{Eight, Sixteen};
                use Operands::{Storage, Texture};
                let name = match (rows, operands, subgroups) {
                    (Sixteen, Storage, false) => "matmul_bias_rb16",
                    (Sixteen, Storage, true) => "matmul_bias_rb16_subgroup",
                    (Sixteen, Texture, false) => "matmul_bias_tex",
                    (Sixteen, Texture, true) => "matmul_bias_tex_subgroup",
                    (Eight, Storage, false) => "matmul_bias_rb8",
                    (Eight, Storage, true) => "matmul_bias_rb8_subgroup",
                    (Eight, Texture, false) => "matmul_bias_tex_r8",
                    (Eight, Texture, true) => "matmul_bias_tex_subgroup_r8",
                };
                // The generated files are named after the form plans use them in.
                let file = match (rows, subgroups) {
                    (Sixteen, false) => "matmul_bias_rb16.wgsl",
                    (Sixteen, true) => "matmul_bias_tex_subgroup.wgsl",
                    (Eight, false) => "matmul_bias_tex_r8.wgsl",
                    (Eight, true) => "matmul_bias_tex_subgroup_r8.wgsl",
                };
                KernelSpec {
                    name,
                    file,
                    snippets: operand_snippets(operands),
                    // The subgroup forms lay the same 8 x 8 grid out as 64 invocations along x.
                    workgroup_size: if subgroups { [64, 1, 1] } else { [8, 8, 1] },
                    tile: match rows {
                        Sixteen => [128, 128],
                        Eight => [128, 64],
                    },
                    bindings: operand_bindings(operands),
                    // The flag of subgroups that cannot share their rows, and its uniform copy.
                    workgroup_memory_bytes: if subgroups { 2 * 4 } else { 0 },
                    features: if subgroups { Features::SUBGROUPS } else { Features::NONE },
                    waves_floor: WavesFloor { rdna: 4, gcn: 1 },
                    loop_iterations: |p, _| (p.k as u64).div_ceil(4) + 64,
                }
            }
            MatmulKernel::Rows4(operands) => KernelSpec {
                name: match operands {
                    Operands::Storage => "matmul_bias_rows4",
                    Operands::Texture => "matmul_bias_rows4_tex",
                },
                file: "matmul_bias_rows4.wgsl",
                snippets: operand_snippets(operands),
                workgroup_size: [64, 1, 1],
                // 64 invocations of 4 columns, 4 rows each.
                tile: [256, 4],
                bindings: operand_bindings(operands),
                workgroup_memory_bytes: 0,
                features: Features::NONE,
                waves_floor: match operands {
                    Operands::Storage => WavesFloor { rdna: 24, gcn: 7 },
                    Operands::Texture => WavesFloor { rdna: 20, gcn: 5 },
                },
                loop_iterations: |p, _| (p.k as u64).div_ceil(4) + 4,
            },
        }
    }
}

/// The snippets of the f16 register-blocked matmuls (their shared body is `common/matmul_rb_f16.wgsl`).
const F16_SNIPPETS: &[&str] = &["common/f16.wgsl", "common/params.wgsl", "common/matmul_rb_f16.wgsl"];

fn operand_snippets(operands: Operands) -> &'static [&'static str] {
    match operands {
        Operands::Storage => &["common/params.wgsl", "common/operands_storage.wgsl", "common/matmul_out.wgsl"],
        Operands::Texture => &["common/params.wgsl", "common/operands_texture.wgsl", "common/matmul_out.wgsl"],
    }
}

fn operand_bindings(operands: Operands) -> &'static [Access] {
    match operands {
        Operands::Storage => STORAGE,
        Operands::Texture => TEXTURES,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::axes::{block_rows, matmul_precisions, operands};
    use super::*;

    /// Every matmul kernel the type can name. The match names every variant without a wildcard, so
    /// a variant added fails to compile here until it is listed (with every value of its axes).
    pub(in crate::kernels) fn every_nameable() -> Vec<MatmulKernel> {
        let mut all = vec![MatmulKernel::Tiled];
        all.extend(matmul_precisions().map(MatmulKernel::Blocked8x8));
        for rows in block_rows() {
            for o in operands() {
                all.extend([false, true].map(|subgroups| MatmulKernel::blocked(rows, o, subgroups)));
            }
        }
        all.extend(operands().map(MatmulKernel::Rows4));
        for m in &all {
            match m {
                MatmulKernel::Tiled
                | MatmulKernel::Blocked8x8(_)
                | MatmulKernel::Blocked { .. }
                | MatmulKernel::Rows4(_) => {}
            }
        }
        all
    }
}
