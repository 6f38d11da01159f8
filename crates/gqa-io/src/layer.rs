//! `KerasLayer` (config, dims, weights) and loading one from any file Keras users have.

use std::path::Path;

use gqa_core::{GqaConfig, LayerDims, Weights};

use crate::config_json::{LayerEntry, parse_layer_json};
use crate::error::{IoError, Result};
use crate::tensor_file::TensorFile;
use crate::{h5, keras_archive, safetensors_layer};

/// A GroupQueryAttention layer as Keras has it: its config, the input dims it was built for, its
/// weights (Keras layout).
#[derive(Debug, Clone, PartialEq)]
pub struct KerasLayer {
    /// The layer's config (`get_config()`).
    pub config: GqaConfig,
    /// Dq, Dk, Dv.
    pub dims: LayerDims,
    /// The weights.
    pub weights: Weights,
}

/// The file formats a layer can be read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerFormat {
    /// `.safetensors`: weights by Keras path, config in the metadata.
    Safetensors,
    /// `.keras`: Keras' own archive.
    Keras,
    /// `.weights.h5` (or any `.h5`): Keras weights; the config comes separately.
    WeightsH5,
}

impl LayerFormat {
    /// The format a file name says.
    pub fn of(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".safetensors") {
            Some(Self::Safetensors)
        } else if name.ends_with(".keras") {
            Some(Self::Keras)
        } else if name.ends_with(".h5") || name.ends_with(".hdf5") {
            Some(Self::WeightsH5)
        } else {
            None
        }
    }
}

/// How to load a layer besides its file.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions<'a> {
    /// A JSON file with the config: a `get_config()` dict, a serialized layer or a whole model
    /// (`model.to_json()`). Required for `.weights.h5`; overrides a safetensors file's metadata.
    pub config: Option<&'a Path>,
    /// The layer's name, when the file holds several GroupQueryAttention layers.
    pub layer_name: Option<&'a str>,
}

/// Reads the config JSON file of `options`, if any.
fn config_entry(options: &LoadOptions<'_>) -> Result<Option<LayerEntry>> {
    let Some(path) = options.config else { return Ok(None) };
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| IoError::Io { file: file.clone(), source })?;
    parse_layer_json(&file, &text, options.layer_name).map(Some)
}

/// Loads a layer from a `.safetensors`, `.keras` or `.weights.h5` file (the format is told by the
/// file name). A `.weights.h5` needs `options.config`.
pub fn load_layer(path: &Path, options: &LoadOptions<'_>) -> Result<KerasLayer> {
    let file = path.display().to_string();
    match LayerFormat::of(path) {
        Some(LayerFormat::Safetensors) => {
            let tf = TensorFile::read(path)?;
            safetensors_layer::layer_from_tensor_file(&tf, config_entry(options)?, options.layer_name)
        }
        Some(LayerFormat::Keras) => {
            if options.config.is_some() {
                return Err(IoError::NoConfig {
                    file,
                    hint: "a .keras file carries its own config.json; do not give another config".into(),
                });
            }
            keras_archive::load_keras(path, options.layer_name)
        }
        Some(LayerFormat::WeightsH5) => {
            let entry = config_entry(options)?.ok_or_else(|| IoError::NoConfig {
                file: file.clone(),
                hint: "a .weights.h5 file has weights only: give the layer's config JSON (get_config() or \
                       model.to_json()) too"
                    .into(),
            })?;
            load_weights_h5(path, entry, options.layer_name)
        }
        None => Err(IoError::UnknownFileType { file }),
    }
}

/// Loads the weights of the layer `entry` describes from a Keras `.weights.h5` file.
pub fn load_weights_h5(path: &Path, entry: LayerEntry, layer_name: Option<&str>) -> Result<KerasLayer> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| IoError::Io { file: file.clone(), source })?;
    let h5 = h5::open(&file, bytes)?;
    h5::layer_from_h5(&file, &h5, entry, layer_name)
}
