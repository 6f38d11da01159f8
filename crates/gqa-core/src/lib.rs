//! # gqa-core
//!
//! Everything about Keras' `GroupQueryAttention` that needs no GPU: the layer's config (every
//! constructor argument, Keras-compatible JSON), the weights' layout, shape and mask checking with
//! clear errors, and the **plan** — every buffer and dispatch of a forward call as plain data, checked
//! against device limits.
//!
//! It is the first half of the data path `config -> plan -> buffers -> dispatches -> outputs`
//! (see `docs/ARCHITECTURE.md`): [`GqaConfig`] and [`Weights`] describe the layer as Keras does,
//! [`Problem`] validates one call's shapes and masks once, and [`Plan`] lists every buffer
//! ([`BufferSpec`], with its [`BufferRole`]) and every step ([`Step`]: a dispatch of a [`Kernel`]
//! with its [`Params`], or a copy) for a device's [`Limits`] and an adapter's [`Tuning`]. The
//! kernels are catalogued in [`kernels`] (one [`KernelSpec`] each); the planner's stages are in
//! [`plan`]. `gqa-wgpu`
//! executes a plan without re-deriving any size; `gqa-ref` computes the same call on the CPU.
//! [`AttentionLayer`] is the call shape both implement (forward, and decoding through a KV cache),
//! so that an application is written once for either; [`Weights::random`] draws a layer's weights
//! from its config's Keras initializers.
//!
//! ```
//! use gqa_core::{CallOptions, GqaConfig, Limits, Plan, Problem};
//!
//! let config = GqaConfig::new(64, 8, 2); // head_dim, Nq, Nkv
//! let options = CallOptions::default().with_causal_mask(true);
//! let problem = Problem::new(&config, &[1, 128, 512], &[1, 128, 512], None, &options)?;
//! let plan = Plan::new(&problem, &Limits::webgpu_default())?;
//! for pass in plan.passes() {
//!     println!("{:<16} {:?} workgroups {:?}", pass.label, pass.kernel, pass.workgroups);
//! }
//! // What a call needs besides the weights, known before any GPU is involved.
//! let scratch = plan.bytes_of(gqa_core::BufferRole::Scratch);
//! assert!(scratch > 0 && plan.bytes_of(gqa_core::BufferRole::Output) == 128 * 512 * 4);
//! # Ok::<(), gqa_core::GqaError>(())
//! ```
#![deny(missing_docs)]

pub mod attention_layer;
pub mod cache_storage;
pub mod config;
pub mod constraint;
pub mod dropout;
pub mod error;
pub mod extensions;
pub mod initializer;
mod keras_object;
pub mod kerashub;
pub mod kernels;
pub mod kv_cache;
pub mod limits;
pub mod options;
pub mod output;
pub mod params;
pub mod plan;
pub mod problem;
pub mod regularizer;
pub mod sampling;
pub mod tensor;
pub mod tuning;
pub mod weights;

pub use attention_layer::{AttentionCache, AttentionLayer};
pub use cache_storage::{CacheStorage, Quantization};
pub use config::{GqaConfig, UnknownKeys};
pub use constraint::Constraint;
pub use error::{GqaError, Result};
pub use extensions::{AttentionExtensions, ExtensionWeights};
pub use initializer::{Distribution, FanMode, Initializer};
pub use kernels::texture::{TextureShape, row_texels};
pub use kernels::{
    Access, BlockAttention, BlockLanes, BlockRows, Features, FusedOutput, Kernel, KernelSpec, Lanes, MatmulKernel,
    MatmulPrecision, Operands, Precision, WavesFloor,
};
pub use kv_cache::{CacheContents, CacheLayout, CacheShape, CacheUpdate};
pub use limits::Limits;
pub use options::{CallOptions, CausalAlignment, MaskedRows};
pub use output::ForwardOutput;
pub use params::Params;
pub use plan::{
    AttentionRoute, BufferId, BufferRole, BufferSpec, Chunking, CopySpec, ExtensionWeight, MaskOffsets, Pass, Plan,
    ProjectionRoute, Route, Step, ValueCheck,
};
pub use problem::{BroadcastStrides, DropoutSpec, MaskSpec, MaskValues, Problem};
pub use regularizer::Regularizer;
pub use tensor::{HostTensor, Mask};
pub use tuning::{LLVMPIPE_LOOP_CAP, MatmulVariant, Tuning, cache_texture_fits};
pub use weights::{Dense, DenseWeights, LayerDims, Weights};
