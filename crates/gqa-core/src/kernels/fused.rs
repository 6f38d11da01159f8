//! The fused attention (`attention_fused.wgsl`): logits, masks, online softmax and PV in one pass
//! over K/V tiles in workgroup memory, the query heads of a kv group together, the scores never
//! stored; and the reduce (`attention_reduce.wgsl`) that combines its split partial states
//! (flash-decoding: short queries over long sources, the keys split across workgroups). Both files
//! serve both precisions: their storage type is `Elem` (`common/store_f32.wgsl` or
//! `common/f16.wgsl`), the fused kernel's output type `Out` comes from `common/out_storage.wgsl`
//! (the attention output, `Elem`) or `common/out_partials.wgsl` (partial states, f32).

use super::{Access, Features, Kernel, KernelSpec, Precision, WavesFloor};

/// The largest head_dim the fused attention kernel holds in its private arrays.
pub const MAX_HEAD_DIM: usize = 256;

/// Keys per split of the fused kernel in split mode.
pub const SPLIT_KEYS: usize = 256;

/// What the fused kernel writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FusedOutput {
    /// The attention output (times the gate when used), over all S keys.
    Attention,
    /// In split mode (`split_keys` > 0), the f32 partial states of its split of the keys, for
    /// [`Kernel::ReduceSplits`].
    Partials,
}

/// Every kernel of the fused attention, each once (this family's part of [`Kernel::ALL`]).
pub const KERNELS: &[Kernel] = &[
    Kernel::FusedAttention { precision: Precision::F32, output: FusedOutput::Attention },
    Kernel::FusedAttention { precision: Precision::F32, output: FusedOutput::Partials },
    Kernel::FusedAttention { precision: Precision::F16, output: FusedOutput::Attention },
    Kernel::FusedAttention { precision: Precision::F16, output: FusedOutput::Partials },
    Kernel::ReduceSplits(Precision::F32),
    Kernel::ReduceSplits(Precision::F16),
];

/// The fused kernel's spec: H <= [`MAX_HEAD_DIM`], 64 (query, head-in-group) items per workgroup.
pub fn fused(precision: Precision, output: FusedOutput) -> KernelSpec {
    use FusedOutput::{Attention, Partials};
    let (name, snippets, features): (_, &'static [&'static str], _) = match (precision, output) {
        (Precision::F32, Attention) => (
            "attention_fused",
            &[
                "common/store_f32.wgsl",
                "common/out_storage.wgsl",
                "common/params.wgsl",
                "common/mask.wgsl",
                "common/nan.wgsl",
            ],
            Features::NONE,
        ),
        (Precision::F32, Partials) => (
            "attention_split",
            &[
                "common/store_f32.wgsl",
                "common/out_partials.wgsl",
                "common/params.wgsl",
                "common/mask.wgsl",
                "common/nan.wgsl",
            ],
            Features::NONE,
        ),
        (Precision::F16, Attention) => (
            "attention_fused_f16",
            &[
                "common/f16.wgsl",
                "common/out_storage.wgsl",
                "common/params.wgsl",
                "common/mask.wgsl",
                "common/nan.wgsl",
            ],
            Features::SHADER_F16,
        ),
        (Precision::F16, Partials) => (
            "attention_split_f16",
            &[
                "common/f16.wgsl",
                "common/out_partials.wgsl",
                "common/params.wgsl",
                "common/mask.wgsl",
                "common/nan.wgsl",
            ],
            Features::SHADER_F16,
        ),
    };
    KernelSpec {
        name,
        file: "attention_fused.wgsl",
        snippets,
        workgroup_size: [64, 1, 1],
        tile: [64, 1],
        bindings: &[Access::Read, Access::Read, Access::Read, Access::Read, Access::Read, Access::ReadWrite],
        // The K/V tiles, staged as f32 in both precisions.
        workgroup_memory_bytes: 2048 * 4,
        features,
        waves_floor: WavesFloor { rdna: 8, gcn: 2 },
        // Per key: the dot product and the PV update over H / 4 vec4s (and the V sum under Keras'
        // default-call policy), the tile loops, the staging loops; plus the start and the end over
        // H. In split mode only `split_keys` keys.
        loop_iterations: |p, _| {
            let (s, h) = (p.s_len as u64, p.head_dim as u64);
            let keys = if p.split_keys > 0 { (p.split_keys as u64).min(s) } else { s };
            let vsum = if p.masked_rows == 1 { keys * h.div_ceil(4) } else { 0 };
            2 * keys * h.div_ceil(4) + vsum + 4 * keys + 4 * h + 64
        },
    }
}

/// The reduce's spec: combines the partial states of the splits (f32) into the attention output
/// (times the gate), gate and output stored in the precision.
pub fn reduce(precision: Precision) -> KernelSpec {
    let (name, snippets, features): (_, &'static [&'static str], _) = match precision {
        Precision::F32 => {
            ("attention_reduce", &["common/store_f32.wgsl", "common/params.wgsl", "common/nan.wgsl"], Features::NONE)
        }
        Precision::F16 => (
            "attention_reduce_f16",
            &["common/f16.wgsl", "common/params.wgsl", "common/nan.wgsl"],
            Features::SHADER_F16,
        ),
    };
    KernelSpec {
        name,
        file: "attention_reduce.wgsl",
        snippets,
        workgroup_size: [64, 1, 1],
        tile: [64, 1],
        bindings: &[Access::Read, Access::Read, Access::ReadWrite],
        workgroup_memory_bytes: 0,
        features,
        waves_floor: WavesFloor { rdna: 32, gcn: 10 },
        loop_iterations: |p, _| {
            let splits = (p.s_len as u64).div_ceil((p.split_keys as u64).max(1));
            (splits + 1) * (p.head_dim as u64 + 2) + 64
        },
    }
}
