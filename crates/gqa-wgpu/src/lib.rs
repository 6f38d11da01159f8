//! # gqa-wgpu
//!
//! Keras' `GroupQueryAttention` forward pass on any GPU wgpu reaches, as WGSL compute shaders
//! executing the plan of [`gqa_core`]: tiled projections with bias, grouped QK^T that indexes the kv
//! head in the shader (K and V are never repeated), masked softmax with Keras' semantics, dropout
//! with the oracle's counter-based hash, the PV product and the gate.
//!
//! ```no_run
//! use gqa_core::{CallOptions, GqaConfig, HostTensor};
//!
//! let ctx = gqa_wgpu::GpuContext::new()?; // best adapter; WGPU_BACKEND narrows the search
//! println!("running on {}", ctx.describe());
//! # let weights: gqa_core::Weights = unimplemented!();
//! let layer = gqa_wgpu::GqaLayer::new(&ctx, &GqaConfig::new(16, 4, 2), &weights)?;
//! let x = HostTensor::new([1, 8, 32], vec![0.1; 256])?;
//! let out = layer.forward(&x, &x, None, &CallOptions { use_causal_mask: true, ..Default::default() })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod context;
mod encode;
mod error;
mod layer;
mod pipelines;
mod profile;
mod readback;
pub mod roofline;
pub mod shaders;
mod upload;

pub use context::{GpuContext, core_limits};
pub use error::GpuError;
pub use layer::{EncodedForward, GpuInputs, GqaLayer};
pub use profile::StepTime;
