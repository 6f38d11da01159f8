//! # gqa-ref
//!
//! The CPU oracle for Keras' `GroupQueryAttention`: the forward pass written step by step as
//! Keras computes it (see `SEMANTICS.md`), accumulated in f64, plus Keras' weight initializers,
//! regularization penalties and constraints. Every GPU result is tested against it. It favours
//! being obviously right over being fast (single-threaded, plain loops).
//!
//! It takes the same inputs as the GPU layer (`gqa_core`'s [`GqaConfig`](gqa_core::GqaConfig),
//! [`Weights`](gqa_core::Weights), [`HostTensor`](gqa_core::HostTensor)s and
//! [`CallOptions`](gqa_core::CallOptions)) and returns the same [`ForwardOutput`], so a GPU result
//! is checked element by element against [`forward()`] (see `docs/ARCHITECTURE.md`) by the one
//! comparison routine of [`check`] (`|got - want| <= atol + rtol * |want|`, NaN must agree).
//! [`ReferenceLayer`] is the oracle as a layer value implementing [`gqa_core::AttentionLayer`], the
//! call shape the GPU layer implements too, so generic code runs on either.
//!
//! ```
//! use gqa_core::{CallOptions, GqaConfig, HostTensor, LayerDims};
//!
//! let config = GqaConfig::new(4, 4, 2); // head_dim, Nq, Nkv
//! let dims = LayerDims { query_dim: 8, key_dim: 6, value_dim: 6 };
//! let weights = gqa_ref::initialize_weights(&config, dims, 42)?;
//! let (b, t, s) = (1, 3, 5);
//! let query = HostTensor::new([b, t, 8], (0..b * t * 8).map(|i| (i as f32).sin()).collect())?;
//! let value = HostTensor::new([b, s, 6], (0..b * s * 6).map(|i| (i as f32).cos()).collect())?;
//! let options = CallOptions { use_causal_mask: true, return_attention_scores: true, ..Default::default() };
//! let out = gqa_ref::forward(&config, &weights, &query, &value, None, &options)?;
//! println!("output {:?}", out.output.shape());
//! assert_eq!(out.output.shape(), [1, 3, 8]);
//! assert_eq!(out.scores.unwrap().shape(), [1, 4, 3, 5]);
//! # Ok::<(), gqa_core::GqaError>(())
//! ```
#![deny(missing_docs)]

mod attention;
pub mod check;
pub mod constrain;
mod dense;
pub mod forward;
pub mod init;
pub mod kerashub;
pub mod kv_cache;
pub mod layer;
pub mod mask;
pub mod regularize;

pub use constrain::{apply_constraint, apply_constraints};
pub use forward::forward;
pub use gqa_core::ForwardOutput;
pub use init::{initialize_weights, keras_fans, sample};
pub use kerashub::KerasHubLayer;
pub use kv_cache::KvCache;
pub use layer::ReferenceLayer;
pub use mask::visibility;
pub use regularize::{activity_penalty, call_activity_penalty, penalty, weights_penalty};
