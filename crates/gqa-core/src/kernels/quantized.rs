//! Attention over a quantized KV cache ([`crate::CacheStorage::F16`], [`crate::CacheStorage::Int8`])
//! and the append that quantizes into it.
//!
//! [`CacheAttention`]: the decode kernel, the block attention and the fused kernel (whole, or in
//! split mode) of the f32 path, each composed from its own file with K and V read through
//! `common/kv_f16.wgsl` or `common/kv_int8.wgsl`: every K and V load dequantizes the vec4 it reads
//! (never a dequantized copy of the cache), the arithmetic is f32 as in the f32 kernels, and the
//! work, workgroup memory and loops are theirs.
//!
//! [`Kernel::AppendToCache`] (`cache_append.wgsl` with `common/append_f16.wgsl` or
//! `common/append_int8.wgsl`): a cached call's new keys and values, from the projections into the
//! cache's storage, in the same submission; one pass per contiguous run of slots.

use super::{Access, Features, FusedOutput, Kernel, KernelSpec, Operands, Precision, WavesFloor};
use super::{BlockAttention, BlockLanes, block, decode, fused};
use crate::cache_storage::Quantization;

/// Which attention kernel reads the quantized cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CachePath {
    /// The decode kernel's split pass ([`Kernel::DecodeAttention`]).
    Decode,
    /// The block attention with workgroup lanes ([`Kernel::BlockAttention`]).
    Block,
    /// The fused kernel over all keys, or in split mode ([`Kernel::FusedAttention`], f32).
    Fused(FusedOutput),
}

/// An attention kernel over a quantized KV cache: `path`'s kernel, K and V dequantized from
/// `storage` as they are loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheAttention {
    /// The kernel.
    pub path: CachePath,
    /// How the cache stores K and V.
    pub storage: Quantization,
}

/// Every kernel of this family, each once (its part of [`Kernel::ALL`]).
pub const KERNELS: &[Kernel] = {
    use CachePath::{Block, Decode, Fused};
    use FusedOutput::{Attention, Partials};
    use Quantization::{F16, Int8};
    &[
        Kernel::CacheAttention(CacheAttention { path: Decode, storage: F16 }),
        Kernel::CacheAttention(CacheAttention { path: Decode, storage: Int8 }),
        Kernel::CacheAttention(CacheAttention { path: Block, storage: F16 }),
        Kernel::CacheAttention(CacheAttention { path: Block, storage: Int8 }),
        Kernel::CacheAttention(CacheAttention { path: Fused(Attention), storage: F16 }),
        Kernel::CacheAttention(CacheAttention { path: Fused(Attention), storage: Int8 }),
        Kernel::CacheAttention(CacheAttention { path: Fused(Partials), storage: F16 }),
        Kernel::CacheAttention(CacheAttention { path: Fused(Partials), storage: Int8 }),
        Kernel::AppendToCache(F16),
        Kernel::AppendToCache(Int8),
    ]
};

impl CacheAttention {
    /// The form of `kernel` that reads K and V from a cache stored as `storage`, where it has one:
    /// the storage-buffer decode kernel, the block attention with workgroup lanes over storage
    /// buffers, and the f32 fused kernel (whole or split). `None` for every other kernel.
    pub fn over(kernel: Kernel, storage: Quantization) -> Option<Kernel> {
        let path = match kernel {
            Kernel::DecodeAttention(Operands::Storage) => CachePath::Decode,
            Kernel::BlockAttention(BLOCK) => CachePath::Block,
            Kernel::FusedAttention { precision: Precision::F32, output } => CachePath::Fused(output),
            _ => return None,
        };
        Some(Kernel::CacheAttention(CacheAttention { path, storage }))
    }

    /// The spec: the f32 kernel's (its file, workgroup, tile, bindings, memory, loops) with K and V
    /// read from the quantized storage.
    pub fn spec(self) -> KernelSpec {
        use CachePath::{Block, Decode, Fused};
        use FusedOutput::{Attention, Partials};
        use Quantization::{F16, Int8};
        let (base, name, snippets): (_, _, &'static [&'static str]) = match (self.path, self.storage) {
            (Decode, F16) => (decode::spec(Operands::Storage), "attention_decode_cache_f16", &DECODE_F16),
            (Decode, Int8) => (decode::spec(Operands::Storage), "attention_decode_cache_int8", &DECODE_INT8),
            (Block, F16) => (BLOCK.spec(), "attention_block_cache_f16", &BLOCK_F16),
            (Block, Int8) => (BLOCK.spec(), "attention_block_cache_int8", &BLOCK_INT8),
            (Fused(Attention), F16) => {
                (fused::fused(Precision::F32, Attention), "attention_fused_cache_f16", &FUSED_F16)
            }
            (Fused(Attention), Int8) => {
                (fused::fused(Precision::F32, Attention), "attention_fused_cache_int8", &FUSED_INT8)
            }
            (Fused(Partials), F16) => (fused::fused(Precision::F32, Partials), "attention_split_cache_f16", &SPLIT_F16),
            (Fused(Partials), Int8) => {
                (fused::fused(Precision::F32, Partials), "attention_split_cache_int8", &SPLIT_INT8)
            }
        };
        KernelSpec { name, snippets, ..base }
    }
}

/// The block attention a quantized cache's calls take (storage buffers, workgroup lanes).
const BLOCK: BlockAttention = BlockAttention { operands: Operands::Storage, lanes: BlockLanes::Workgroup };

const DECODE_F16: [&str; 8] = decode::storage_snippets("common/kv_f16.wgsl");
const DECODE_INT8: [&str; 8] = decode::storage_snippets("common/kv_int8.wgsl");
const BLOCK_F16: [&str; 10] = block::workgroup_snippets("common/kv_f16.wgsl");
const BLOCK_INT8: [&str; 10] = block::workgroup_snippets("common/kv_int8.wgsl");
const STORE: &str = "common/store_f32.wgsl";
const OUT: &str = "common/out_storage.wgsl";
const PARTIALS: &str = "common/out_partials.wgsl";
const FUSED_F16: [&str; 6] = fused::snippets(STORE, OUT, "common/kv_f16.wgsl");
const FUSED_INT8: [&str; 6] = fused::snippets(STORE, OUT, "common/kv_int8.wgsl");
const SPLIT_F16: [&str; 6] = fused::snippets(STORE, PARTIALS, "common/kv_f16.wgsl");
const SPLIT_INT8: [&str; 6] = fused::snippets(STORE, PARTIALS, "common/kv_int8.wgsl");

/// Workgroup size of the append.
pub const APPEND_WORKGROUP: u32 = 64;

/// The append's spec: bindings the projected keys and values, the cache's keys and values; one
/// invocation per (appended row, kv head) of each; dispatched as `append_rows * Nkv * 2`
/// invocations along x.
pub fn append(storage: Quantization) -> KernelSpec {
    let (name, snippets): (_, &'static [&'static str]) = match storage {
        Quantization::F16 => ("cache_append_f16", &["common/params.wgsl", "common/append_f16.wgsl"]),
        Quantization::Int8 => ("cache_append_int8", &["common/params.wgsl", "common/append_int8.wgsl"]),
    };
    KernelSpec {
        name,
        file: "cache_append.wgsl",
        snippets,
        workgroup_size: [APPEND_WORKGROUP, 1, 1],
        tile: [APPEND_WORKGROUP, 1],
        bindings: &[Access::Read, Access::Read, Access::ReadWrite, Access::ReadWrite],
        workgroup_memory_bytes: 0,
        features: Features::NONE,
        waves_floor: WavesFloor { rdna: 8, gcn: 4 },
        // Over the head's H / 4 vec4s: once (f16), twice (int8); the loops' exits.
        loop_iterations: |p, _| 2 * (p.head_dim as u64).div_ceil(4) + 4,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Every quantized-cache attention the type can name.
    pub(in crate::kernels) fn every_nameable() -> Vec<CacheAttention> {
        let paths = match CachePath::Decode {
            CachePath::Decode | CachePath::Block | CachePath::Fused(_) => [
                CachePath::Decode,
                CachePath::Block,
                CachePath::Fused(FusedOutput::Attention),
                CachePath::Fused(FusedOutput::Partials),
            ],
        };
        paths
            .into_iter()
            .flat_map(|path| super::super::axes::quantizations().map(|storage| CacheAttention { path, storage }))
            .collect()
    }

    #[test]
    fn a_quantized_kernel_keeps_its_base_kernel_but_for_k_and_v() {
        for k in every_nameable() {
            let spec = k.spec();
            let kv = spec.snippets.iter().filter(|s| s.starts_with("common/kv_")).count();
            assert_eq!(kv, 1, "{}", spec.name);
            assert!(!spec.snippets.contains(&"common/kv_f32.wgsl") && !spec.snippets.contains(&"common/kv_elem.wgsl"));
        }
    }
}
