//! The fused attention (`attention_fused.wgsl`): logits, masks, online softmax and PV in one pass
//! over tiles of 64 keys, the scores never stored, shaped for GPUs: a workgroup takes up to 8
//! (query, head-in-group) items of one kv group ([`items_per_workgroup`]), whose query heads share
//! every K and V row it reads, and H is spread over its lanes, so that what one invocation keeps
//! does not grow with H; and the reduce (`attention_reduce.wgsl`) that combines its split partial states
//! (flash-decoding: short queries over long sources, the keys split across workgroups). Both files
//! serve both precisions: their storage type is `Elem` (`common/store_f32.wgsl` or
//! `common/f16.wgsl`), the fused kernel's output type `Out` comes from `common/out_storage.wgsl`
//! (the attention output, `Elem`) or `common/out_partials.wgsl` (partial states, f32).

use super::{Access, Features, Kernel, KernelSpec, Precision, WavesFloor};

/// The largest head_dim the fused attention kernel takes (its queries' tile holds 1,024 floats).
pub const MAX_HEAD_DIM: usize = 256;

/// Keys per tile of the fused kernel (one per lane in its logits step).
pub const TILE_KEYS: u64 = 64;

/// The (query, head-in-group) items one workgroup of the fused kernel takes for head size
/// `head_dim` (<= [`MAX_HEAD_DIM`]): 8 up to H = 128, 4 above, so that the queries' tile (items x H
/// floats) stays within 1,024 floats and each lane of the PV step holds at most 4 items of one
/// vec4 column.
pub fn items_per_workgroup(head_dim: usize) -> usize {
    (4 * (256 / head_dim.clamp(1, MAX_HEAD_DIM))).min(8)
}

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

/// The fused kernel's snippets: its storage type (`common/store_f32.wgsl` or `common/f16.wgsl`),
/// its output (`common/out_storage.wgsl` or `common/out_partials.wgsl`) and its K and V loads (`kv`:
/// `common/kv_elem.wgsl`, or a quantized cache's `common/kv_f16.wgsl` / `common/kv_int8.wgsl`).
pub(super) const fn snippets(store: &'static str, out: &'static str, kv: &'static str) -> [&'static str; 6] {
    [store, out, "common/params.wgsl", kv, "common/mask.wgsl", "common/nan.wgsl"]
}

const F32_ATTENTION: [&str; 6] = snippets("common/store_f32.wgsl", "common/out_storage.wgsl", "common/kv_elem.wgsl");
const F32_PARTIALS: [&str; 6] = snippets("common/store_f32.wgsl", "common/out_partials.wgsl", "common/kv_elem.wgsl");
const F16_ATTENTION: [&str; 6] = snippets("common/f16.wgsl", "common/out_storage.wgsl", "common/kv_elem.wgsl");
const F16_PARTIALS: [&str; 6] = snippets("common/f16.wgsl", "common/out_partials.wgsl", "common/kv_elem.wgsl");

/// The fused kernel's spec: H <= [`MAX_HEAD_DIM`], [`items_per_workgroup`] (query, head-in-group)
/// items per workgroup (its `tile` says the most, 8).
pub fn fused(precision: Precision, output: FusedOutput) -> KernelSpec {
    use FusedOutput::{Attention, Partials};
    let (name, snippets, features): (_, &'static [&'static str], _) = match (precision, output) {
        (Precision::F32, Attention) => ("attention_fused", &F32_ATTENTION, Features::NONE),
        (Precision::F32, Partials) => ("attention_split", &F32_PARTIALS, Features::NONE),
        (Precision::F16, Attention) => ("attention_fused_f16", &F16_ATTENTION, Features::SHADER_F16),
        (Precision::F16, Partials) => ("attention_split_f16", &F16_PARTIALS, Features::SHADER_F16),
    };
    KernelSpec {
        name,
        file: "attention_fused.wgsl",
        snippets,
        workgroup_size: [64, 1, 1],
        tile: [8, 1],
        // Q, K, V, masks, gate, output (or partials), sink logits.
        bindings: &[
            Access::Read,
            Access::Read,
            Access::Read,
            Access::Read,
            Access::Read,
            Access::ReadWrite,
            Access::Read,
        ],
        // The queries' tile (256 vec4s), the tile's logits (8 items x 64 keys), two 64-slot
        // reduction arrays and four 8-slot row states: 6,784 bytes, so that 8 workgroups of one
        // wave fit 64 KiB.
        workgroup_memory_bytes: 256 * 16 + 512 * 4 + 2 * 64 * 4 + 4 * 8 * 4,
        features,
        waves_floor: WavesFloor { rdna: 10, gcn: 3 },
        // The queries' staging; per tile of 64 keys: the logits' walk over H / 4 vec4s, the PV walk
        // over the tile's keys, and the loops of at most 8 iterations (counted, in case a driver
        // does not unroll them); the end. In split mode only `split_keys` keys.
        loop_iterations: |p, _| {
            let (s, h) = (p.s_len as u64, p.head_dim as u64);
            let keys = if p.split_keys > 0 { (p.split_keys as u64).min(s) } else { s };
            let h4 = h.div_ceil(4);
            keys.div_ceil(TILE_KEYS) * (h4 + TILE_KEYS + 2 + 8 * 9) + h4.div_ceil(8) + 2 * 9 + 8
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
        // Partials, gate, output, sink logits.
        bindings: &[Access::Read, Access::Read, Access::ReadWrite, Access::Read],
        workgroup_memory_bytes: 0,
        features,
        waves_floor: WavesFloor { rdna: 32, gcn: 10 },
        // Two walks over the splits (maxima, sums); per element of H one more, and under Keras'
        // default-call policy a second for a fully masked row's average of V; the loops' exits
        // (measured on lavapipe: right up to one split fewer than this allows).
        loop_iterations: |p, _| {
            let splits = (p.s_len as u64).div_ceil((p.split_keys as u64).max(1));
            let per_h = if p.masked_rows == 1 { 2 * (splits + 2) } else { splits + 2 };
            2 * (splits + 2) + p.head_dim as u64 * (per_h + 1) + 64
        },
    }
}
