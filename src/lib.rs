//! # gqa
//!
//! Keras' `GroupQueryAttention` on every GPU through wgpu. This facade re-exports the workspace:
//! [`core`](mod@core) (config, shapes, plan; no GPU code), [`reference`](mod@reference) (the f64 CPU oracle) and [`gpu`](mod@gpu)
//! (the wgpu executor and its WGSL kernels).
#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub use gqa_core as core;
/// Reading and writing layers in Keras' files (feature `io`): [`gqa_io`].
#[cfg(feature = "io")]
pub use gqa_io as io;
pub use gqa_ref as reference;
pub use gqa_wgpu as gpu;
