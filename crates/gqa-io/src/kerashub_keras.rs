//! KerasHub attention layers from Keras' own files: a `.keras` archive (the layer found in
//! `config.json` by class, at any depth of the model), or `.weights.h5` with the layer's config.
//!
//! Keras stores a KerasHub layer's weights under a group named after its class (snake case) whose
//! `vars` group's `name` attribute is the layer's name; each sub-layer is a child group (named after
//! its Python attribute: `_query_dense`, `query_dense`, `query_norm` ...) whose `vars` group's
//! `name` attribute is the sub-layer's name (`query`, `query_norm`, `key_dense_layernorm` ...) and
//! holds `0` (the kernel, or a norm's scale) and `1` (the bias); GPT-OSS's sinks are the layer's own
//! `vars/0`. The weights are gathered under their Keras variable paths
//! (`<layer>/<sub-layer>/kernel`), and the layer is read as from a safetensors file
//! ([`crate::kerashub`]).

use std::path::Path;

use gqa_core::kerashub::KerasHubClass;
use hdf5_pure::{File, Group};
use serde_json::Value;

use crate::error::{IoError, Result};
use crate::h5::{self, h5_err, vars_name};
use crate::keras_archive;
use crate::kerashub::{CLASS_KEY, HIDDEN_DIM_KEY, KerasHubLayerFile, kerashub_layer_from_tensor_file};
use crate::safetensors_layer::CONFIG_KEY;
use crate::tensor_file::{StoredTensor, TensorFile};

/// A KerasHub layer found in Keras JSON: its class, config object and, when the JSON has it, the
/// hidden size from its `build_config`.
#[derive(Debug, Clone, PartialEq)]
pub struct KerasHubEntry {
    /// The class.
    pub class: KerasHubClass,
    /// The layer's config object.
    pub config: Value,
    /// D, from `build_config.input_shape`.
    pub hidden_dim: Option<usize>,
}

impl KerasHubEntry {
    /// The layer's name (its config's `name`).
    pub fn name(&self) -> Option<&str> {
        self.config.get("name").and_then(Value::as_str)
    }
}

/// The class of a serialized layer (`class_name`, or `registered_name` such as
/// `keras_hub>LlamaAttention`), when it is a KerasHub attention class.
fn class_of(v: &Value) -> Option<KerasHubClass> {
    ["class_name", "registered_name"]
        .iter()
        .filter_map(|k| v.get(k).and_then(Value::as_str))
        .find_map(KerasHubClass::from_class_name)
}

/// Every serialized KerasHub attention layer under `v`, in document order.
fn collect(v: &Value, out: &mut Vec<KerasHubEntry>) {
    if let (Some(class), Some(config)) = (class_of(v), v.get("config").filter(|c| c.is_object())) {
        let hidden_dim = v
            .get("build_config")
            .and_then(|b| b.get("input_shape"))
            .and_then(Value::as_array)
            .and_then(|s| s.last())
            .and_then(Value::as_u64)
            .map(|d| d as usize);
        out.push(KerasHubEntry { class, config: config.clone(), hidden_dim });
        return;
    }
    match v {
        Value::Object(m) => m.values().for_each(|c| collect(c, out)),
        Value::Array(a) => a.iter().for_each(|c| collect(c, out)),
        _ => {}
    }
}

/// The KerasHub layer of Keras JSON (a serialized layer, or a model holding it at any depth; a bare
/// config object when `class` is given), picked by `wanted` (its name) when there are several.
/// `None` when the JSON holds no KerasHub layer (it may hold a `GroupQueryAttention` one).
pub fn find_kerashub_layer(
    file: &str,
    json: &Value,
    class: Option<KerasHubClass>,
    wanted: Option<&str>,
) -> Result<Option<KerasHubEntry>> {
    if let Some(class) = class.filter(|_| json.get("class_name").is_none()) {
        return Ok(Some(KerasHubEntry { class, config: json.clone(), hidden_dim: None }));
    }
    let mut found = Vec::new();
    collect(json, &mut found);
    let names: Vec<String> = found.iter().map(|e| format!("{} {}", e.class, e.name().unwrap_or("?"))).collect();
    let chosen: Vec<KerasHubEntry> = match wanted {
        Some(w) => found.into_iter().filter(|e| e.name() == Some(w)).collect(),
        None => found,
    };
    match chosen.len() {
        0 if names.is_empty() => Ok(None),
        1 => Ok(chosen.into_iter().next()),
        0 => Err(IoError::LayerNotFound { file: file.into(), wanted: wanted.map(Into::into), found: names }),
        _ => Err(IoError::AmbiguousLayer { file: file.into(), found: names }),
    }
}

/// The layer's weights in Keras HDF5 weights, under their Keras variable paths, in a tensor file
/// with the entry's class and config as metadata.
fn tensors_from_h5(file: &str, h5: &File, entry: &KerasHubEntry) -> Result<TensorFile> {
    let name = entry.name().ok_or_else(|| IoError::NoConfig {
        file: file.into(),
        hint: format!("the {} config has no name, which Keras' weights are stored under", entry.class),
    })?;
    let mut groups = Vec::new();
    find_groups(file, &h5.root(), "", name, &mut groups)?;
    let path = match groups.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(IoError::LayerNotFound {
                file: file.into(),
                wanted: Some(name.into()),
                found: vec![format!("no group whose vars are named {name:?}")],
            });
        }
        _ => return Err(IoError::AmbiguousLayer { file: file.into(), found: groups }),
    };
    let group = h5.group(&path).map_err(|e| h5_err(file, e))?;
    let mut tf = TensorFile::new(file);
    let mut put = |vars_path: String, names: &[(&str, String)]| -> Result<()> {
        let present = h5.group(&vars_path).and_then(|g| g.datasets()).unwrap_or_default();
        for var in &present {
            let Some((_, key)) = names.iter().find(|(i, _)| i == var) else {
                return Err(IoError::UnexpectedWeight {
                    file: file.into(),
                    tensor: format!("/{vars_path}/{var}"),
                    reason: format!("{} has no such weight", entry.class),
                });
            };
            let t = h5::read_dataset(file, h5, &format!("{vars_path}/{var}"), key)?;
            tf.tensors.insert(key.clone(), StoredTensor::from_f32(&t));
        }
        Ok(())
    };
    put(format!("{path}/vars"), &[("0", format!("{name}/sinks"))])?;
    for child in group.groups().map_err(|e| h5_err(file, e))? {
        if child == "vars" {
            continue;
        }
        let sub = group.group(&child).map_err(|e| h5_err(file, e))?;
        let Some(sub_name) = vars_name(&sub) else { continue };
        let first = if sub_name.ends_with("norm") { "scale" } else { "kernel" };
        let names = [("0", format!("{name}/{sub_name}/{first}")), ("1", format!("{name}/{sub_name}/bias"))];
        put(format!("{path}/{child}/vars"), &names)?;
    }
    tf.metadata.insert(CLASS_KEY.into(), entry.class.class_name().into());
    tf.metadata.insert(CONFIG_KEY.into(), entry.config.to_string());
    if let Some(d) = entry.hidden_dim {
        tf.metadata.insert(HIDDEN_DIM_KEY.into(), d.to_string());
    }
    Ok(tf)
}

/// Paths of the groups (other than `vars`) whose `vars` group is named `name`, depth first.
fn find_groups(file: &str, group: &Group, path: &str, name: &str, out: &mut Vec<String>) -> Result<()> {
    for child in group.groups().map_err(|e| h5_err(file, e))? {
        if child == "vars" {
            continue;
        }
        let g = group.group(&child).map_err(|e| h5_err(file, e))?;
        let p = if path.is_empty() { child.clone() } else { format!("{path}/{child}") };
        if vars_name(&g).as_deref() == Some(name) {
            out.push(p);
        } else {
            find_groups(file, &g, &p, name, out)?;
        }
    }
    Ok(())
}

/// The KerasHub layer of a `.keras` archive (by `layer_name` when the model holds several), `None`
/// when its `config.json` holds none.
pub fn kerashub_from_keras(path: &Path, layer_name: Option<&str>) -> Result<Option<KerasHubLayerFile>> {
    let file = path.display().to_string();
    let mut zip = keras_archive::open(&file, path)?;
    let config_file = format!("{file}!config.json");
    let json: Value = serde_json::from_slice(&keras_archive::entry(&file, &mut zip, "config.json")?)
        .map_err(|e| IoError::Format { file: config_file.clone(), format: "JSON", message: e.to_string() })?;
    let Some(entry) = find_kerashub_layer(&config_file, &json, None, layer_name)? else { return Ok(None) };
    let weights_file = format!("{file}!model.weights.h5");
    let h5 = h5::open(&weights_file, keras_archive::entry(&file, &mut zip, "model.weights.h5")?)?;
    kerashub_layer_from_tensor_file(&tensors_from_h5(&weights_file, &h5, &entry)?).map(Some)
}

/// The KerasHub layer of a `.weights.h5` file, its config `config_json` (a serialized layer or a
/// model holding it; a bare config object with `class`), by `layer_name` when there are several.
/// `None` when the config holds no KerasHub layer.
pub fn kerashub_from_weights_h5(
    path: &Path,
    config_json: &str,
    class: Option<KerasHubClass>,
    layer_name: Option<&str>,
) -> Result<Option<KerasHubLayerFile>> {
    let file = path.display().to_string();
    let json: Value = serde_json::from_str(config_json).map_err(|e| IoError::Format {
        file: format!("{file} (config)"),
        format: "JSON",
        message: e.to_string(),
    })?;
    let Some(entry) = find_kerashub_layer(&file, &json, class, layer_name)? else { return Ok(None) };
    let bytes = std::fs::read(path).map_err(|source| IoError::Io { file: file.clone(), source })?;
    let h5 = h5::open(&file, bytes)?;
    kerashub_layer_from_tensor_file(&tensors_from_h5(&file, &h5, &entry)?).map(Some)
}

/// The KerasHub layer of any layer file, when it holds one: a safetensors file whose metadata
/// `class_name` names a KerasHub class, a `.keras` archive whose `config.json` holds a KerasHub
/// layer, or a `.weights.h5` file whose `config` file (a serialized layer or model; a bare config
/// object with `class`) describes one. `None` for a file of a `GroupQueryAttention` layer.
pub fn load_kerashub(
    path: &Path,
    config: Option<&Path>,
    class: Option<KerasHubClass>,
    layer_name: Option<&str>,
) -> Result<Option<KerasHubLayerFile>> {
    use crate::layer::LayerFormat;
    let file = path.display().to_string();
    match LayerFormat::of(path) {
        Some(LayerFormat::Safetensors) => match crate::kerashub::class_of_file(path)? {
            Some(_) => crate::kerashub::load_kerashub_layer(path).map(Some),
            None => Ok(None),
        },
        Some(LayerFormat::Keras) => kerashub_from_keras(path, layer_name),
        Some(LayerFormat::WeightsH5) => match config {
            Some(c) => {
                let text = std::fs::read_to_string(c)
                    .map_err(|source| IoError::Io { file: c.display().to_string(), source })?;
                kerashub_from_weights_h5(path, &text, class, layer_name)
            }
            None if class.is_some() => Err(IoError::NoConfig {
                file,
                hint: "a .weights.h5 file has weights only: give the layer's config JSON with its class".into(),
            }),
            None => Ok(None),
        },
        None => Err(IoError::UnknownFileType { file }),
    }
}
