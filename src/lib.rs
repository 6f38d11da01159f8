//! # gqa
//!
//! Keras' `GroupQueryAttention` layer on every GPU wgpu reaches (Vulkan, Metal, Direct3D 12,
//! OpenGL), as WGSL compute shaders, checked element by element against an f64 CPU oracle. The
//! layer is configured exactly as in Keras (the same constructor arguments and `get_config()` JSON,
//! the same weight layout); its forward pass is planned on the CPU as plain data and run on the GPU.
//!
//! This facade re-exports the workspace:
//!
//! - [`core`](mod@core) (`gqa-core`): config, shapes, the plan; no GPU code.
//! - [`reference`](mod@reference) (`gqa-ref`): the f64 CPU oracle, Keras' initializers and
//!   [`reference::check`], the one comparison every GPU result is tested against.
//! - [`cpu`](mod@cpu) (`gqa-cpu`, feature `cpu`): [`cpu::CpuLayer`], the layer in f32 on every core
//!   (GEMMs and a grouped flash attention), the fallback where no hardware adapter exists and the
//!   CPU baseline the GPU is compared with.
//! - [`gpu`](mod@gpu) (`gqa-wgpu`): [`gpu::GpuContext`] (adapter, device, compiled kernels),
//!   [`gpu::GqaLayer`] (weights on the GPU) and [`gpu::KvCache`] for decoding.
//! - [`wgpu`]: the wgpu crate the GPU types come from, so that an application that owns its device
//!   ([`gpu::GpuContext::from_device`], [`gpu::GqaLayer::encode_forward`]) uses the same version.
//!
//! # The oracle
//!
//! ```
//! use gqa::core::{CallOptions, GqaConfig, HostTensor, LayerDims};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // keras.layers.GroupQueryAttention(head_dim=16, num_query_heads=4, num_key_value_heads=2)
//! let config = GqaConfig::new(16, 4, 2);
//! let dims = LayerDims { query_dim: 32, key_dim: 24, value_dim: 24 };
//! let weights = gqa::reference::initialize_weights(&config, dims, 42)?; // Keras' initializers, seeded
//!
//! let query = HostTensor::new([2, 5, 32], vec![0.25; 2 * 5 * 32])?;
//! let value = HostTensor::new([2, 7, 24], vec![0.5; 2 * 7 * 24])?;
//! let options = CallOptions { use_causal_mask: true, ..Default::default() };
//! let out = gqa::reference::forward(&config, &weights, &query, &value, None, &options)?; // key = value
//! assert_eq!(out.output.shape(), [2, 5, 32]); // (B, T, Dq)
//! # Ok(())
//! # }
//! ```
//!
//! # On a GPU
//!
//! The layer is built once (weights uploaded once) and called any number of times:
//!
//! ```no_run
//! use gqa::core::{CallOptions, GqaConfig, HostTensor, LayerDims};
//! use gqa::gpu::{GpuContext, GqaLayer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = GqaConfig::new(64, 8, 2);
//! let dims = LayerDims { query_dim: 256, key_dim: 256, value_dim: 256 };
//! let weights = gqa::reference::initialize_weights(&config, dims, 42)?;
//!
//! // The best adapter of the Vulkan and GL backends; GpuContext::new() searches all of them.
//! let ctx = GpuContext::with_backends(gqa::wgpu::Backends::VULKAN | gqa::wgpu::Backends::GL)?;
//! let device: &gqa::wgpu::Device = ctx.device(); // the application's own passes can share it
//! println!("running on {} ({:?})", ctx.describe(), device.limits().max_storage_buffer_binding_size);
//! let layer = GqaLayer::new(&ctx, &config, &weights)?;
//!
//! let x = HostTensor::new([1, 128, 256], vec![0.5; 128 * 256])?;
//! let options = CallOptions { use_causal_mask: true, ..Default::default() };
//! let got = layer.forward(&x, &x, None, &options)?; // self-attention: query = value (= key)
//! let want = gqa::reference::forward(&config, &weights, &x, &x, None, &options)?;
//! let check = gqa::reference::check::compare_outputs(&got, &want, gqa::reference::check::Tolerance::F32);
//! assert!(check.passed(), "{check}");
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! The wgpu backends are features, passed through to `gqa-wgpu` and wgpu; the default set is
//! wgpu's own: `vulkan`, `metal`, `dx12`, `gles` (OpenGL / OpenGL ES) and `webgpu` (the browser's
//! WebGPU on wasm32). `default-features = false, features = ["vulkan"]` builds a Vulkan-only
//! library. The `gqa` command line (`gqa run`, `gqa bench`, `gqa demo`, ...) is the separate
//! `gqa-cli` crate: this library compiles no argument parser.
//!
//! The repository's README and `docs/` (architecture, semantics, performance, testing, Keras files)
//! describe the layer, the scripts and the measured figures in full.
#![deny(missing_docs)]

pub use gqa_core as core;
/// The layer on the CPU in f32, multithreaded (feature `cpu`, on by default): [`gqa_cpu`].
#[cfg(feature = "cpu")]
pub use gqa_cpu as cpu;
/// Reading and writing layers in Keras' files (feature `io`): [`gqa_io`].
#[cfg(feature = "io")]
pub use gqa_io as io;
pub use gqa_ref as reference;
pub use gqa_wgpu as gpu;
pub use wgpu;

/// The README's code blocks, run as doc tests (the README is the repository's page, not these docs).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
