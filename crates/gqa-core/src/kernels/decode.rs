//! The split pass of flash-decoding for few items per kv group (`attention_decode.wgsl`): one
//! workgroup per (b, kv group, split of [`split_keys`] keys); lanes over keys compute the logits of
//! all items (each K row read once per 4 items) into workgroup memory, a workgroup softmax per
//! item, then lanes over H columns accumulate p·V (each V row read once per 4 items). Writes the
//! partial states of the fused kernel in split mode, combined by
//! [`Kernel::ReduceSplits`]. f32, H a multiple of 4, at most 256. Q, K
//! and V come through `load_q` / `load_k` / `load_v` from `common/q_storage.wgsl + common/kv_f32.wgsl` or, for CPU
//! adapters, `common/qkv_texture.wgsl` (a cached call's split pass over the KV cache's texture
//! mirrors and the projected queries packed into a texture by a copy).

use super::{Access, Features, Kernel, KernelSpec, Operands, WavesFloor};

/// The most (query, head-in-group) items per kv group (T·R) the kernel takes; more items go to
/// the fused kernel in split mode, whose 64 lanes are then better filled.
pub const MAX_ITEMS: usize = 16;

/// Floats of the kernel's score array (vec4s of 4 items each): the items rounded up to a multiple
/// of 4, times the split keys, fit in it.
pub const SCORE_FLOATS: usize = 2048;

/// Keys per split for `items` = T·R items per kv group (1 to [`MAX_ITEMS`]): the score array
/// divided by the items rounded up to a power of two, at most 512 (512 keys for up to 4 items, 256
/// for 5 to 8, 128 for 9 to 16).
pub fn split_keys(items: usize) -> usize {
    (SCORE_FLOATS / items.max(1).next_power_of_two()).min(512)
}

/// Every decode attention kernel, each once (this family's part of [`Kernel::ALL`]).
pub const KERNELS: &[Kernel] =
    &[Kernel::DecodeAttention(Operands::Storage), Kernel::DecodeAttention(Operands::Texture)];

/// The snippets of the kernel over storage buffers, K and V read through `kv` (`common/kv_f32.wgsl`,
/// or a quantized cache's `common/kv_f16.wgsl` / `common/kv_int8.wgsl`).
pub(super) const fn storage_snippets(kv: &'static str) -> [&'static str; 8] {
    [
        "common/params.wgsl",
        "common/q_storage.wgsl",
        kv,
        "common/mask.wgsl",
        "common/nan.wgsl",
        "common/dots4x4.wgsl",
        "common/key_groups.wgsl",
        "common/items.wgsl",
    ]
}

const STORAGE_SNIPPETS: [&str; 8] = storage_snippets("common/kv_f32.wgsl");

/// The kernel's spec over Q, K and V from `operands`.
pub fn spec(operands: Operands) -> KernelSpec {
    let (name, snippets, bindings): (_, &'static [&'static str], &'static [Access]) = match operands {
        Operands::Storage => (
            "attention_decode",
            &STORAGE_SNIPPETS,
            &[Access::Read, Access::Read, Access::Read, Access::Read, Access::ReadWrite],
        ),
        Operands::Texture => (
            "attention_decode_tex",
            &[
                "common/params.wgsl",
                "common/qkv_texture.wgsl",
                "common/mask.wgsl",
                "common/nan.wgsl",
                "common/dots4x4.wgsl",
                "common/key_groups.wgsl",
                "common/items.wgsl",
            ],
            &[Access::Texture, Access::Texture, Access::Texture, Access::Read, Access::ReadWrite],
        ),
    };
    KernelSpec {
        name,
        file: "attention_decode.wgsl",
        snippets,
        workgroup_size: [64, 1, 1],
        // All the items of a kv group (at most 16) in one workgroup.
        tile: [MAX_ITEMS as u32, 1],
        bindings,
        // Scores (items x split_keys <= 2048 floats), the key groups' partial sums (320 vec4s),
        // three 64-slot reduction arrays: 14,080 bytes, within WebGPU's default 16 KiB.
        workgroup_memory_bytes: SCORE_FLOATS as u32 * 4 + 320 * 16 + 3 * 64 * 4,
        features: Features::NONE,
        waves_floor: WavesFloor { rdna: 6, gcn: 2 },
        // Phase 1: per group of 4 keys of the lane, per block of 4 items, H / 4 vec4s; phase 2: two
        // walks over the item's keys split between at least 4 lanes and two over at most 64 slots;
        // phase 3: per block of 4 items the lane's keys and two combines over the key groups (at
        // most 64 each); the end.
        loop_iterations: |p, _| {
            let (s, h) = (p.s_len as u64, p.head_dim as u64);
            let keys = (p.split_keys as u64).min(s).max(1);
            let items = (p.t_len as u64 * p.group as u64).max(1);
            let blocks = items.div_ceil(4);
            let h4 = h.div_ceil(4).max(1);
            let segs = 64 / items.next_power_of_two().min(64);
            let kgroups = (64 / h4.div_ceil(2)).max(1);
            let phase1 = keys.div_ceil(4).div_ceil(64) * (1 + blocks * (1 + h4));
            let phase2 = 2 * keys.div_ceil(segs) + 2 * segs + 4;
            let phase3 = blocks * (keys.div_ceil(kgroups) + 2 * kgroups + 2);
            phase1 + phase2 + phase3 + 64 + 8
        },
    }
}
