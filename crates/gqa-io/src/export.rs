//! Writing a layer back: the safetensors layout Keras users exchange (`{w.path: w.numpy()}`), with
//! the config and build config in the metadata, which `tools/keras_fixtures.py --check` (and so
//! Keras) loads.

use std::path::Path;

use serde_json::json;

use crate::error::Result;
use crate::layer::KerasLayer;
use crate::safetensors_layer::{BUILD_CONFIG_KEY, CONFIG_KEY};
use crate::tensor_file::TensorFile;

/// The layer as a tensor file: every weight under `<layer name>/<Keras path>`, metadata `config`
/// (Keras `get_config()` JSON) and `build_config` (Dq, Dk, Dv as Keras' `shapes_dict`).
pub fn export_tensor_file(layer: &KerasLayer, file: impl Into<String>) -> TensorFile {
    let mut tf = TensorFile::new(file);
    for (path, tensor) in layer.weights.named() {
        tf.insert_f32(format!("{}/{path}", layer.config.name), tensor);
    }
    let d = layer.dims;
    let build = json!({ "shapes_dict": {
        "query_shape": [null, null, d.query_dim],
        "value_shape": [null, null, d.value_dim],
        "key_shape": [null, null, d.key_dim],
    }});
    tf.metadata.insert(CONFIG_KEY.into(), layer.config.to_keras_json());
    tf.metadata.insert(BUILD_CONFIG_KEY.into(), build.to_string());
    tf
}

/// Writes the layer to a safetensors file (see [`export_tensor_file`]).
pub fn export_safetensors(layer: &KerasLayer, path: &Path) -> Result<()> {
    export_tensor_file(layer, path.display().to_string()).write(path)
}
