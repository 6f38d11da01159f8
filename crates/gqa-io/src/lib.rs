//! # gqa-io
//!
//! Keras' `GroupQueryAttention` layers in and out of files, with no Python:
//!
//! - **safetensors** with tensors named by Keras paths under any layer-name prefix
//!   (`attn/query/kernel` ...) and the layer's `get_config()` JSON under the metadata key `config`
//!   (the simple exchange file: `{w.path: w.numpy() for w in layer.weights}`);
//! - **`.keras`** archives: the layer is found in `config.json` by class (and by name when the model
//!   has several, at any depth), Dq/Dk/Dv come from its `build_config`, and its weights from
//!   `model.weights.h5` by the `name` attribute of its group;
//! - **`.weights.h5`** with a config JSON (`get_config()` or `model.to_json()`).
//!
//! Every weight is checked against the config; errors name the file, the tensor and the expected
//! shape. [`export_safetensors`] writes a layer back, [`CallInputs`] and [`write_outputs`] read and
//! write a call's tensors, and [`CallRecord`] the call's options recorded in a file's metadata.
//!
//! ```no_run
//! use std::path::Path;
//! let layer = gqa_io::load_layer(Path::new("model.keras"), &gqa_io::LoadOptions::default())?;
//! println!("{} heads, dims {:?}", layer.config.num_query_heads, layer.dims);
//! gqa_io::export_safetensors(&layer, Path::new("layer.safetensors"))?;
//! # Ok::<(), gqa_io::IoError>(())
//! ```
#![deny(missing_docs)]

mod assemble;
pub mod call;
pub mod config_json;
pub mod error;
pub mod export;
mod h5;
pub mod inputs;
pub mod keras_archive;
pub mod kerashub;
pub mod kerashub_keras;
pub mod layer;
pub mod safetensors_layer;
pub mod tensor_file;

pub use call::{CALL_KEY, CallRecord};
pub use config_json::{LayerEntry, find_layer, parse_layer_json};
pub use error::{IoError, Result};
pub use export::{export_safetensors, export_tensor_file};
pub use inputs::{CallInputs, outputs_tensor_file, write_outputs};
pub use keras_archive::load_keras;
pub use kerashub::{KerasHubInputs, KerasHubLayerFile, load_kerashub_layer};
pub use layer::{KerasLayer, LayerFormat, LoadOptions, load_layer, load_weights_h5};
pub use safetensors_layer::{BUILD_CONFIG_KEY, CONFIG_KEY, layer_from_tensor_file};
pub use tensor_file::{DType, StoredTensor, TensorFile};
