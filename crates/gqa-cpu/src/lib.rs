//! # gqa-cpu
//!
//! Keras' `GroupQueryAttention` on the CPU in f32, fast: the layer an application falls back on
//! where no hardware adapter exists, and the honest CPU baseline the GPU's throughput is compared
//! with (`gqa bench`). The f64 oracle (`gqa-ref`) stays the definition of the layer; this crate is
//! tested against it at f32 tolerances.
//!
//! - The four projections (and the gate) are GEMMs on every core (faer).
//! - The attention is a grouped flash attention: a tile of query rows of all R query heads of one
//!   kv head walks the keys in blocks, each K and V block read once for the R heads that share it
//!   (never repeated), with an online softmax; tiles run in parallel on rayon's pool.
//! - Every semantic of the oracle: masks and their broadcasts, both causal alignments, the sliding
//!   window, the gate, both masked-row policies, the scores, dropout with the same counter-based
//!   hash, NaN and infinities propagating as in Keras.
//! - [`KvCache`]: prefill, chunks, steps, ragged sequences and windows, read and loaded in the
//!   format every implementation shares.
//!
//! [`attention`] runs the attention alone on Q, K and V an application projected itself.
//!
//! [`CpuLayer`] implements [`gqa_core::AttentionLayer`], the call shape of the GPU layer and the
//! oracle, so the same code runs on either.
//!
//! ```
//! use gqa_core::{AttentionCache, AttentionLayer, GqaConfig, HostTensor, LayerDims};
//! use gqa_cpu::CpuLayer;
//!
//! let dims = LayerDims { query_dim: 32, key_dim: 32, value_dim: 32 };
//! let layer = CpuLayer::random(GqaConfig::new(8, 4, 2), dims, 3)?;
//! let x = HostTensor::new([1, 6, 32], (0..192).map(|i| (i as f32 * 0.05).cos()).collect())?;
//! let mut cache = layer.new_cache(1, 16)?;
//! layer.prefill(&mut cache, &x.time_slice(..5)?, &x.time_slice(..5)?, None, None)?;
//! let next = layer.step(&mut cache, &x.time_slice(5..)?, &x.time_slice(5..)?, None)?;
//! assert_eq!((next.shape(), cache.lengths()), (&[1, 1, 32][..], &[6][..]));
//! # Ok::<(), gqa_core::GqaError>(())
//! ```
#![deny(missing_docs)]

mod attention;
mod exp;
mod forward;
pub mod kv_cache;
mod layer;
mod mask;
mod matmul;
mod projected;
mod softmax;

pub use kv_cache::KvCache;
pub use layer::CpuLayer;
pub use projected::{AttentionOutput, attention};

/// The vector instructions the attention's softmax runs with on this CPU, picked at run time:
/// `avx512f`, `avx2+fma` or `baseline` (the compile target's own: SSE2 on x86-64). The GEMMs (faer)
/// pick theirs the same way.
pub fn vector_isa() -> &'static str {
    softmax::vector_isa()
}
