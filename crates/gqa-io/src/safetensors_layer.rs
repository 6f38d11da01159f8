//! A layer from a safetensors file: weights named by Keras paths under any layer-name prefix
//! (`attn/query/kernel`, `model/attn/query/kernel`, or none), the config in the metadata key
//! `config` (a `get_config()` dict or a serialized layer), optionally `build_config` beside it.

use std::collections::BTreeSet;

use gqa_core::{Dense, HostTensor};

use crate::assemble::{Part, WeightSource, assemble, keras_path};
use crate::config_json::{LayerEntry, dims_from_build_config, parse_layer_json};
use crate::error::{IoError, Result};
use crate::layer::KerasLayer;
use crate::tensor_file::TensorFile;

/// The metadata key holding the layer's Keras `get_config()` JSON.
pub const CONFIG_KEY: &str = "config";
/// The metadata key holding the layer's Keras `build_config` JSON (optional).
pub const BUILD_CONFIG_KEY: &str = "build_config";

/// Every Keras path of a GroupQueryAttention weight, relative to the layer.
fn all_paths() -> BTreeSet<String> {
    Dense::ALL.iter().flat_map(|&d| [keras_path(d, Part::Kernel), keras_path(d, Part::Bias)]).collect()
}

/// The layer-name prefixes in the file: `p` such that `p + "query/kernel"` (or another kernel) is a
/// tensor and `p` is empty or ends with `/`.
fn prefixes(tf: &TensorFile) -> BTreeSet<String> {
    let kernels: Vec<String> = Dense::ALL.iter().map(|&d| keras_path(d, Part::Kernel)).collect();
    tf.tensors
        .keys()
        .filter_map(|name| {
            kernels.iter().find_map(|k| name.strip_suffix(k.as_str())).filter(|p| p.is_empty() || p.ends_with('/'))
        })
        .map(str::to_string)
        .collect()
}

/// The prefix of the layer named `wanted` (its last path component), or the only prefix there is.
fn find_prefix(tf: &TensorFile, wanted: Option<&str>) -> Result<String> {
    let all = prefixes(tf);
    if all.is_empty() {
        return Err(IoError::LayerNotFound {
            file: tf.file.clone(),
            wanted: wanted.map(Into::into),
            found: vec![format!(
                "no tensor named <layer>/query/kernel; tensors: {:?}",
                tf.tensors.keys().collect::<Vec<_>>()
            )],
        });
    }
    let last = |p: &str| p.trim_end_matches('/').rsplit('/').next().unwrap_or("").to_string();
    let by_name: Vec<&String> = all.iter().filter(|p| wanted.is_some_and(|w| last(p) == w)).collect();
    match (by_name.as_slice(), all.len()) {
        ([one], _) => Ok((*one).clone()),
        (_, 1) => Ok(all.into_iter().next().unwrap_or_default()),
        ([], _) => Err(IoError::LayerNotFound {
            file: tf.file.clone(),
            wanted: wanted.map(Into::into),
            found: all.into_iter().collect(),
        }),
        _ => Err(IoError::AmbiguousLayer { file: tf.file.clone(), found: all.into_iter().collect() }),
    }
}

struct Source<'a> {
    tf: &'a TensorFile,
    prefix: String,
}

impl WeightSource for Source<'_> {
    fn file(&self) -> &str {
        &self.tf.file
    }

    fn describe(&self, dense: Dense, part: Part) -> String {
        format!("{}{}", self.prefix, keras_path(dense, part))
    }

    fn fetch(&self, dense: Dense, part: Part) -> Result<Option<HostTensor>> {
        let name = self.describe(dense, part);
        self.tf.get(&name).map(|t| t.to_f32(&self.tf.file, &name)).transpose()
    }

    fn strangers(&self) -> Vec<String> {
        let known = all_paths();
        self.tf
            .tensors
            .keys()
            .filter(|name| {
                name.strip_prefix(self.prefix.as_str())
                    .is_some_and(|rest| rest.matches('/').count() == 1 && !known.contains(rest))
            })
            .cloned()
            .collect()
    }
}

/// The layer in a safetensors file. `config` overrides the file's metadata config; `layer_name`
/// picks a layer when the file holds several (default: the config's name).
pub fn layer_from_tensor_file(
    tf: &TensorFile,
    config: Option<LayerEntry>,
    layer_name: Option<&str>,
) -> Result<KerasLayer> {
    let entry = match config {
        Some(e) => e,
        None => {
            let text = tf.metadata.get(CONFIG_KEY).ok_or_else(|| IoError::NoConfig {
                file: tf.file.clone(),
                hint: format!(
                    "the safetensors metadata has no key {CONFIG_KEY:?} (the layer's Keras get_config() JSON); \
                     add it, or give the config as a JSON file"
                ),
            })?;
            parse_layer_json(&format!("{} (metadata {CONFIG_KEY:?})", tf.file), text, layer_name)?
        }
    };
    let dims = match (entry.dims, tf.metadata.get(BUILD_CONFIG_KEY)) {
        (Some(d), _) => Some(d),
        (None, Some(text)) => {
            let file = format!("{} (metadata {BUILD_CONFIG_KEY:?})", tf.file);
            let value = serde_json::from_str(text).map_err(|e| IoError::Format {
                file: file.clone(),
                format: "JSON",
                message: e.to_string(),
            })?;
            Some(dims_from_build_config(&file, &value)?)
        }
        (None, None) => None,
    };
    let prefix = find_prefix(tf, Some(layer_name.unwrap_or(&entry.config.name)))?;
    let (dims, weights) = assemble(&Source { tf, prefix }, &entry.config, dims)?;
    Ok(KerasLayer { config: entry.config, dims, weights })
}
