//! A layer from a `.keras` file: a zip of `config.json` (the model, with the layer's config and
//! `build_config`), `metadata.json` and `model.weights.h5`.

use std::io::Read;
use std::path::Path;

use crate::config_json::parse_layer_json;
use crate::error::{IoError, Result};
use crate::h5;
use crate::layer::KerasLayer;

/// The entry holding the model's config.
const CONFIG_ENTRY: &str = "config.json";
/// The entry holding the weights.
const WEIGHTS_ENTRY: &str = "model.weights.h5";

/// Reads one entry of the archive.
pub(crate) fn entry(file: &str, zip: &mut zip::ZipArchive<std::fs::File>, name: &str) -> Result<Vec<u8>> {
    let entries: Vec<String> = zip.file_names().filter_map(|n| n.ok().map(|n| n.into_owned())).collect();
    let mut e = zip.by_name(name).map_err(|e| match e {
        zip::result::ZipError::FileNotFound => {
            IoError::MissingEntry { file: file.into(), entry: name.into(), entries: entries.clone() }
        }
        other => IoError::Format { file: file.into(), format: "zip", message: other.to_string() },
    })?;
    let mut bytes = Vec::new();
    e.read_to_end(&mut bytes).map_err(|source| IoError::Io { file: format!("{file}!{name}"), source })?;
    Ok(bytes)
}

/// Opens a `.keras` archive; `file` names it in errors.
pub(crate) fn open(file: &str, path: &Path) -> Result<zip::ZipArchive<std::fs::File>> {
    let f = std::fs::File::open(path).map_err(|source| IoError::Io { file: file.into(), source })?;
    zip::ZipArchive::new(f).map_err(|e| IoError::Format { file: file.into(), format: "zip", message: e.to_string() })
}

/// The GroupQueryAttention layer of a `.keras` file: found in `config.json` by class (and by
/// `layer_name` when the model has several), with Dq/Dk/Dv from its `build_config`, and its weights
/// found in `model.weights.h5` by the `name` attribute of its group.
pub fn load_keras(path: &Path, layer_name: Option<&str>) -> Result<KerasLayer> {
    let file = path.display().to_string();
    let mut zip = open(&file, path)?;
    let config = entry(&file, &mut zip, CONFIG_ENTRY)?;
    let config_file = format!("{file}!{CONFIG_ENTRY}");
    let text = String::from_utf8(config).map_err(|e| IoError::Format {
        file: config_file.clone(),
        format: "JSON",
        message: e.to_string(),
    })?;
    let layer = parse_layer_json(&config_file, &text, layer_name)?;
    let weights_file = format!("{file}!{WEIGHTS_ENTRY}");
    let bytes = entry(&file, &mut zip, WEIGHTS_ENTRY)?;
    let h5 = h5::open(&weights_file, bytes)?;
    h5::layer_from_h5(&weights_file, &h5, layer, layer_name)
}
