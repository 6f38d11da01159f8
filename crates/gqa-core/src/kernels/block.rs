//! The block attention: fused f32 attention over all S keys for any number of queries, built like
//! the decode kernel (no per-lane private arrays). One workgroup per (block of [`ITEMS`]
//! consecutive (query, head-in-group) items, b, kv group), the keys in chunks of [`CHUNK_KEYS`]
//! with an online softmax across chunks; lanes over keys for the logits (scores in workgroup
//! memory), a workgroup softmax per item, then lanes over H columns (and key groups) whose item
//! accumulators persist across chunks. Writes the attention output like the fused kernel (same
//! bindings and semantics), H a multiple of 4 up to 256. Reads the words of
//! [`Kernel::CheckValues`] to skip its scan of the keys it does not
//! visit where the values are finite.

use super::{Access, Features, Kernel, KernelSpec, Operands, WavesFloor};

/// (query, head-in-group) items per workgroup of the workgroup-lane forms.
pub const ITEMS: usize = 16;

/// Keys per chunk of the online softmax.
pub const CHUNK_KEYS: usize = 128;

/// Blocks of 8 items per workgroup of [`BlockLanes::Subgroup`] (its subgroups take them in turn).
pub const SUBGROUP_BLOCKS: usize = 8;

/// A block attention kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockAttention {
    /// Where Q, K and V are read from (`common/q_storage.wgsl + common/kv_f32.wgsl` or `common/qkv_texture.wgsl`):
    /// textures packed by copies after the projections (Q as `B·T` rows of `Nq·H/4` texels, K and
    /// V as `B·S` rows of `Nkv·H/4` texels), or a KV cache's texture mirrors.
    pub operands: Operands,
    /// How lanes share the work.
    pub lanes: BlockLanes,
}

/// How a block attention's lanes share the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockLanes {
    /// Through workgroup memory (`attention_block.wgsl` with `common/block_lanes.wgsl`).
    Workgroup,
    /// [`BlockLanes::Workgroup`] whose phase 3 shares the probability loads across a subgroup
    /// (`common/block_lanes_subgroup.wgsl`: each lane loads one of the four vec4s of a key's
    /// probabilities and broadcasts it, where the subgroup's lanes share their key group, checked
    /// at run time; no subgroup size assumed). Needs `SUBGROUP`.
    SharedLoads,
    /// Each block of 8 items owned by one subgroup from start to end (`attention_subgroup.wgsl`):
    /// the softmax's maxima and sums by subgroup reductions, each key's probabilities passed to the
    /// lanes that own the output columns by `subgroupShuffle`: no workgroup memory, no barrier.
    /// Each workgroup takes [`SUBGROUP_BLOCKS`] blocks. Needs `SUBGROUP`, every subgroup whole and
    /// `H / 4` columns within 4 per lane of the smallest subgroup ([`subgroup_fits`]).
    Subgroup,
}

/// Whether [`BlockLanes::Subgroup`] runs heads of `head_dim` on a device whose subgroups have
/// `subgroup_sizes` = [smallest, largest] lanes (wgpu's `AdapterInfo::subgroup_min_size` and
/// `subgroup_max_size`; [0, 0] when unknown): H a multiple of 4 whose `H / 4` columns fit 4 per lane
/// of the smallest subgroup, and sizes that are powers of two from 4 to the workgroup's 64
/// invocations, so that every subgroup of a workgroup is whole.
pub fn subgroup_fits(head_dim: usize, subgroup_sizes: [u32; 2]) -> bool {
    let [lo, hi] = subgroup_sizes;
    let size_ok = |n: u32| n.is_power_of_two() && (4..=64).contains(&n);
    size_ok(lo) && size_ok(hi) && lo <= hi && head_dim.is_multiple_of(4) && head_dim / 4 <= 4 * lo as usize
}

/// The snippets of the workgroup-lane form over storage buffers, K and V read through `kv`
/// (`common/kv_f32.wgsl`, or a quantized cache's `common/kv_f16.wgsl` / `common/kv_int8.wgsl`).
pub(super) const fn workgroup_snippets(kv: &'static str) -> [&'static str; 10] {
    [
        "common/params.wgsl",
        "common/q_storage.wgsl",
        kv,
        "common/block_lanes.wgsl",
        "common/mask.wgsl",
        "common/nan.wgsl",
        "common/dots8x4.wgsl",
        "common/items.wgsl",
        "common/block_softmax.wgsl",
        "common/v_flags.wgsl",
    ]
}

const WORKGROUP_SNIPPETS: [&str; 10] = workgroup_snippets("common/kv_f32.wgsl");

const STORAGE: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::Read,
    Access::Read,
];
const TEXTURES: &[Access] = &[
    Access::Texture,
    Access::Texture,
    Access::Texture,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::Read,
    Access::Read,
];

/// Every block attention kernel, each once (this family's part of [`Kernel::ALL`]).
pub const KERNELS: &[Kernel] = {
    use BlockLanes::{SharedLoads, Subgroup, Workgroup};
    use Operands::{Storage, Texture};
    &[
        Kernel::BlockAttention(BlockAttention { operands: Storage, lanes: Workgroup }),
        Kernel::BlockAttention(BlockAttention { operands: Storage, lanes: SharedLoads }),
        Kernel::BlockAttention(BlockAttention { operands: Storage, lanes: Subgroup }),
        Kernel::BlockAttention(BlockAttention { operands: Texture, lanes: Workgroup }),
        Kernel::BlockAttention(BlockAttention { operands: Texture, lanes: SharedLoads }),
        Kernel::BlockAttention(BlockAttention { operands: Texture, lanes: Subgroup }),
    ]
};

impl BlockAttention {
    /// The kernel's spec. Bindings: Q, K, V, masks, gate, output, the value check's words, the sink
    /// logits.
    pub fn spec(self) -> KernelSpec {
        use BlockLanes::{SharedLoads, Subgroup, Workgroup};
        use Operands::{Storage, Texture};
        let bindings = match self.operands {
            Storage => STORAGE,
            Texture => TEXTURES,
        };
        let name = match (self.operands, self.lanes) {
            (Storage, Workgroup) => "attention_block",
            (Storage, SharedLoads) => "attention_block_subgroup",
            (Storage, Subgroup) => "attention_subgroup_storage",
            (Texture, Workgroup) => "attention_block_tex",
            (Texture, SharedLoads) => "attention_block_tex_subgroup",
            (Texture, Subgroup) => "attention_subgroup",
        };
        match self.lanes {
            Workgroup | SharedLoads => KernelSpec {
                name,
                file: "attention_block.wgsl",
                snippets: match (self.operands, self.lanes) {
                    (Storage, Workgroup) => &WORKGROUP_SNIPPETS,
                    (Texture, Workgroup) => &[
                        "common/params.wgsl",
                        "common/qkv_texture.wgsl",
                        "common/block_lanes.wgsl",
                        "common/mask.wgsl",
                        "common/nan.wgsl",
                        "common/dots8x4.wgsl",
                        "common/items.wgsl",
                        "common/block_softmax.wgsl",
                        "common/v_flags.wgsl",
                    ],
                    (Storage, _) => &[
                        "common/params.wgsl",
                        "common/q_storage.wgsl",
                        "common/kv_f32.wgsl",
                        "common/block_lanes_subgroup.wgsl",
                        "common/mask.wgsl",
                        "common/nan.wgsl",
                        "common/dots8x4.wgsl",
                        "common/dots8x4_shared.wgsl",
                        "common/items.wgsl",
                        "common/block_softmax.wgsl",
                        "common/v_flags.wgsl",
                    ],
                    (Texture, _) => &[
                        "common/params.wgsl",
                        "common/qkv_texture.wgsl",
                        "common/block_lanes_subgroup.wgsl",
                        "common/mask.wgsl",
                        "common/nan.wgsl",
                        "common/dots8x4.wgsl",
                        "common/dots8x4_shared.wgsl",
                        "common/items.wgsl",
                        "common/block_softmax.wgsl",
                        "common/v_flags.wgsl",
                    ],
                },
                workgroup_size: [64, 1, 1],
                tile: [ITEMS as u32, 1],
                bindings,
                // Scores (chunk keys x 16 items, also the key groups' sums at the end), the
                // per-item partials of phase 1's lanes (chunk keys / 4 lanes x 16 items), four
                // 16-slot per item arrays, the skipped keys' 64 column flags: 10,752 bytes.
                workgroup_memory_bytes: {
                    let items_keys = (CHUNK_KEYS * ITEMS) as u32;
                    items_keys * 4 + items_keys / 4 * 4 + 4 * 16 * 4 + 64 * 4
                },
                features: if self.lanes == SharedLoads { Features::SUBGROUPS } else { Features::NONE },
                waves_floor: WavesFloor { rdna: 4, gcn: 1 },
                loop_iterations: workgroup_lanes_loops,
            },
            Subgroup => KernelSpec {
                name,
                file: "attention_subgroup.wgsl",
                snippets: match self.operands {
                    Storage => &[
                        "common/params.wgsl",
                        "common/q_storage.wgsl",
                        "common/kv_f32.wgsl",
                        "common/mask.wgsl",
                        "common/dots8x4.wgsl",
                        "common/dots8x4_shared.wgsl",
                        "common/items.wgsl",
                        "common/block_softmax.wgsl",
                        "common/v_flags.wgsl",
                    ],
                    Texture => &[
                        "common/params.wgsl",
                        "common/qkv_texture.wgsl",
                        "common/mask.wgsl",
                        "common/dots8x4.wgsl",
                        "common/dots8x4_shared.wgsl",
                        "common/items.wgsl",
                        "common/block_softmax.wgsl",
                        "common/v_flags.wgsl",
                    ],
                },
                workgroup_size: [64, 1, 1],
                tile: [8 * SUBGROUP_BLOCKS as u32, 1],
                bindings,
                workgroup_memory_bytes: 0,
                features: Features::SUBGROUPS,
                waves_floor: WavesFloor { rdna: 4, gcn: 1 },
                loop_iterations: subgroup_lanes_loops,
            },
        }
    }
}

/// Per chunk: phase 1 (two (keys, items) pairs per lane at most, H / 4 vec4s each), phase 2 (two
/// walks over a quarter of the chunk's keys, three over 4 slots), phase 3 (the lane's keys of the
/// chunk, lanes over pairs of vec4 columns); the end: eight combines over the key groups (at most
/// 64); the keys the chunk loop skips, once (two walks over the lane's share).
fn workgroup_lanes_loops(p: &crate::Params, _: [u32; 2]) -> u64 {
    let (s, h) = (p.s_len as u64, p.head_dim as u64);
    let chunk = CHUNK_KEYS as u64;
    let chunks = s.div_ceil(chunk).max(1);
    let h4 = h.div_ceil(4).max(1);
    let kgroups = (64 / h4.div_ceil(2)).max(1);
    let phase1 = 2 * (1 + h4) + 2;
    let phase2 = 2 * chunk.div_ceil(4) + 3 * 4 + 4;
    let phase3 = chunk.div_ceil(kgroups) + 2;
    let skipped = s.div_ceil(kgroups) + 4;
    chunks * (phase1 + phase2 + phase3 + 2) + skipped + 8 * (kgroups + 2) + 32
}

/// Per block the subgroup takes: per step of 4 keys per lane, the dot products over H / 4 vec4s,
/// the mask buffers' loop (at most 32), the causal loop (4) and the p * V loop (at most one per
/// lane); the keys outside the causal or window range, once. The subgroup sizes from the smallest
/// to the largest (4 to 64 when unknown), the worst.
fn subgroup_lanes_loops(p: &crate::Params, subgroup_sizes: [u32; 2]) -> u64 {
    let (s, h) = (p.s_len as u64, p.head_dim as u64);
    let [lo, hi] = subgroup_sizes;
    let (lo, hi) = if lo == 0 { (4, 64) } else { (lo.clamp(4, 64), hi.clamp(lo.clamp(4, 64), 64)) };
    let h4 = h.div_ceil(4).max(1);
    (lo.ilog2()..=hi.ilog2())
        .map(|e| {
            let sz = 1u64 << e;
            let blocks = (SUBGROUP_BLOCKS as u64 * sz).div_ceil(64);
            let steps = s.div_ceil(4 * sz).max(1);
            blocks * (steps * (h4 + 32 + 4 + sz + 3) + s + 4) + blocks + 8
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::axes::{block_lanes, operands};
    use super::*;

    /// Every block attention the type can name: each combination of its fields' values (a field
    /// added fails to compile here until it is set).
    pub(in crate::kernels) fn every_nameable() -> Vec<BlockAttention> {
        operands()
            .into_iter()
            .flat_map(|operands| block_lanes().map(|lanes| BlockAttention { operands, lanes }))
            .collect()
    }
}
