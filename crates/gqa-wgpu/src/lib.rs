//! # gqa-wgpu
//!
//! Keras' `GroupQueryAttention` forward pass on any GPU wgpu reaches, as WGSL compute shaders
//! executing the plan of [`gqa_core`]: tiled projections with bias, grouped QK^T that indexes the kv
//! head in the shader (K and V are never repeated), masked softmax with Keras' semantics, dropout
//! with the oracle's counter-based hash, the PV product and the gate.
//!
//! - [`GpuContext`]: an adapter's device and queue with the kernels' pipelines (each compiled at
//!   its first use) and a buffer pool;
//!   found by us ([`GpuContext::new`]) or handed over by your application
//!   ([`GpuContext::from_device`]).
//! - [`GqaLayer`]: a layer's weights on the GPU (uploaded once), called on host tensors
//!   ([`GqaLayer::forward`], [`GqaLayer::forward_async`]), on [`GpuTensor`]s
//!   ([`GqaLayer::forward_tensors`]), or recorded into your own command encoder, several calls and
//!   layers per submission ([`GqaLayer::encode_forward`]).
//! - [`gqa_core::AttentionLayer`], the call shape `GqaLayer` shares with the oracle
//!   (`gqa_ref::ReferenceLayer`): forward, KV-cache new/prefill/step, written once, run on either.
//!   With the feature `io`, `GqaLayer::from_keras_file` loads a `.keras`, `.weights.h5` (with its
//!   config) or safetensors layer.
//! - Introspection before running: [`GqaLayer::plan`] (every buffer and dispatch),
//!   [`GqaLayer::memory`] ([`MemoryReport`]), [`GqaLayer::describe_call`] ([`CallDescription`]:
//!   adapter, backend, kernel variants).
//! - Start-up: [`GqaLayer::warm_up`] (or [`GqaLayer::warm_up_in_background`]) compiles the
//!   kernels of the calls an application will make, right after building the layer, so that the
//!   first request does not wait for the driver's compiler; [`quiet_mesa_runtime_dir`], called
//!   first thing in `main`, keeps Mesa's Vulkan layer from printing `XDG_RUNTIME_DIR is invalid or
//!   not set` when that variable is unset (the crate changes no environment variable unless asked).
//! - Logging through the [`log`](https://docs.rs/log) crate: the adapter and variants at `info`,
//!   each call's plan and timings at `debug`. The crate never prints.
//!
//! `GpuContext`, `GqaLayer` and `GpuTensor` are `Send + Sync`. Repeated calls of the same shapes
//! reuse pooled buffers and create none (see [`GpuContext::pool_stats`]). Memory of a call is known
//! without a GPU from its plan:
//!
//! ```
//! use gqa_core::{CallOptions, GqaConfig, Limits, Plan, Problem};
//!
//! let options = CallOptions { use_causal_mask: true, ..Default::default() };
//! let problem = Problem::new(&GqaConfig::new(16, 4, 2), &[2, 8, 32], &[2, 8, 32], None, &options)?;
//! let memory = gqa_wgpu::MemoryReport::of(&Plan::new(&problem, &Limits::webgpu_default())?, 256);
//! assert_eq!(memory.outputs, 2 * 8 * 32 * 4);
//! # Ok::<(), gqa_core::GqaError>(())
//! ```
//!
//! On a GPU (`no_run` here: the doc tests may run where there is none):
//!
//! ```no_run
//! use gqa_core::{CallOptions, GqaConfig, HostTensor, LayerDims};
//! use gqa_wgpu::{GpuContext, GpuTensor, GqaLayer, TensorArgs};
//!
//! let ctx = GpuContext::new()?; // best adapter; WGPU_BACKEND narrows the search
//! # let weights: gqa_core::Weights = unimplemented!();
//! let layer = GqaLayer::new(&ctx, &GqaConfig::new(16, 4, 2), &weights)?;
//! let options = CallOptions { use_causal_mask: true, ..Default::default() };
//!
//! // Host data in, host data out.
//! let x = HostTensor::new([1, 8, 32], vec![0.1; 256])?;
//! let out = layer.forward(&x, &x, None, &options)?;
//!
//! // Data kept on the GPU: two calls chained in one submission, one read back.
//! let x = GpuTensor::from_host(&ctx, &x)?;
//! let mut encoder = ctx.device().create_command_encoder(&Default::default());
//! let first = layer.encode_forward(&mut encoder, &TensorArgs::new(&x, &x), &options)?;
//! let second = layer.encode_forward(&mut encoder, &TensorArgs::new(&first.output, &x), &options)?;
//! ctx.queue().submit([encoder.finish()]);
//! let y = second.output.to_host()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod args;
mod context;
mod describe;
mod encode;
mod error;
mod error_scope;
mod kv_cache;
mod layer;
mod matrix_texture;
mod pipelines;
mod polling;
mod pool;
mod readback;
pub mod roofline;
mod runtime_dir;
pub mod shaders;
mod step_timer;
mod tensor;
mod upload;
mod weight_store;

pub use args::{EncodedForward, ForwardArgs, GpuInputs, TensorArgs};
pub use context::{GpuContext, core_limits};
pub use describe::{CallDescription, MemoryReport};
pub use error::GpuError;
pub use kv_cache::KvCache;
#[cfg(feature = "io")]
pub use layer::LoadError;
pub use layer::{GqaLayer, KerasHubLayer, WarmCall, WarmUpHandle};
pub use polling::AsyncPolling;
pub use pool::{DEFAULT_POOL_BUDGET, DEFAULT_POOL_MAX_BUFFERS, PoolStats};
pub use runtime_dir::{RuntimeDir, quiet_mesa_runtime_dir};
pub use step_timer::{StepTime, StepTimer, Timing};
pub use tensor::{DType, GpuTensor};

/// Compile-time proof that the handles can be shared between threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<GpuContext>();
    send_sync::<GqaLayer>();
    send_sync::<GpuTensor>();
    send_sync::<EncodedForward>();
    send_sync::<GpuError>();
};
