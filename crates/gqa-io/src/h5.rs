//! A layer's weights in a Keras `.weights.h5` (also the `model.weights.h5` inside a `.keras`).
//!
//! Keras names a layer's group after its Python class, `grouped_query_attention[_N]`, at any depth
//! (nested models add their own `layers/<class>` levels); the user's layer name is the `name`
//! attribute of `<group>/vars`. The sub-layers are `_query_dense`, `_key_dense`, `_gate_dense`,
//! `_value_dense` and `_output_dense`, each with `vars/0` (kernel) and `vars/1` (bias).

use gqa_core::{Dense, HostTensor};
use hdf5_pure::{AttrValue, Datatype, DatatypeByteOrder, File, Group};

use crate::assemble::{Part, WeightSource, assemble, keras_path};
use crate::config_json::LayerEntry;
use crate::error::{IoError, Result};
use crate::layer::KerasLayer;
use crate::tensor_file::elements;

/// The group name prefix Keras gives a GroupQueryAttention layer (its snake_case class name).
const GROUP_CLASS: &str = "grouped_query_attention";

pub(crate) fn h5_err(file: &str, e: impl std::fmt::Display) -> IoError {
    IoError::Format { file: file.into(), format: "HDF5", message: e.to_string() }
}

/// Opens HDF5 bytes; `file` names them in errors.
pub(crate) fn open(file: &str, bytes: Vec<u8>) -> Result<File> {
    File::from_bytes(bytes).map_err(|e| h5_err(file, e))
}

/// The sub-layer group of a dense part.
fn sub_group(dense: Dense) -> &'static str {
    match dense {
        Dense::Query => "_query_dense",
        Dense::Key => "_key_dense",
        Dense::Gate => "_gate_dense",
        Dense::Value => "_value_dense",
        Dense::Output => "_output_dense",
    }
}

/// Whether a group name is Keras' name for a GroupQueryAttention layer: the class, or `class_N`.
fn is_layer_group_name(name: &str) -> bool {
    name.strip_prefix(GROUP_CLASS)
        .is_some_and(|rest| rest.is_empty() || rest.strip_prefix('_').is_some_and(|n| n.parse::<u32>().is_ok()))
}

/// The `name` attribute of `<group>/vars`, if any.
pub(crate) fn vars_name(group: &Group) -> Option<String> {
    let attrs = group.group("vars").ok()?.attrs().ok()?;
    match attrs.get("name")? {
        AttrValue::String(s)
        | AttrValue::AsciiString(s)
        | AttrValue::VarLenString(s)
        | AttrValue::VarLenAsciiString(s) => Some(s.clone()),
        AttrValue::StringSized { value, .. } | AttrValue::AsciiStringSized { value, .. } => {
            Some(value.trim_end_matches('\0').to_string())
        }
        _ => None,
    }
}

/// `(path, layer name)` of every GroupQueryAttention group in the file, depth first.
fn layer_groups(file: &str, group: &Group, path: &str, out: &mut Vec<(String, String)>) -> Result<()> {
    let children = group.groups().map_err(|e| h5_err(file, e))?;
    let is_layer = children.iter().any(|c| c == sub_group(Dense::Query));
    let own = path.rsplit('/').next().unwrap_or("");
    if is_layer && (path.is_empty() || is_layer_group_name(own)) {
        out.push((path.to_string(), vars_name(group).unwrap_or_default()));
        return Ok(());
    }
    for child in children {
        let g = group.group(&child).map_err(|e| h5_err(file, e))?;
        let p = if path.is_empty() { child.clone() } else { format!("{path}/{child}") };
        layer_groups(file, &g, &p, out)?;
    }
    Ok(())
}

/// The path of the group of the layer named `wanted` (or the only layer, when `wanted` is `None`).
fn find_layer_group(file: &str, h5: &File, wanted: Option<&str>) -> Result<String> {
    let mut all = Vec::new();
    layer_groups(file, &h5.root(), "", &mut all)?;
    let names: Vec<String> = all.iter().map(|(p, n)| format!("{n} (group /{p})")).collect();
    let chosen: Vec<&(String, String)> = match wanted {
        Some(w) => all.iter().filter(|(_, n)| n == w).collect(),
        None => all.iter().collect(),
    };
    match chosen.as_slice() {
        [one] => Ok(one.0.clone()),
        [] => Err(IoError::LayerNotFound { file: file.into(), wanted: wanted.map(Into::into), found: names }),
        _ => Err(IoError::AmbiguousLayer { file: file.into(), found: names }),
    }
}

struct Source<'a> {
    file: &'a str,
    h5: &'a File,
    group: String,
}

impl Source<'_> {
    /// `<group>/_query_dense/vars` ...
    fn vars(&self, dense: Dense) -> String {
        let sub = format!("{}/vars", sub_group(dense));
        if self.group.is_empty() { sub } else { format!("{}/{sub}", self.group) }
    }

    fn path(&self, dense: Dense, part: Part) -> String {
        let index = match part {
            Part::Kernel => 0,
            Part::Bias => 1,
        };
        format!("{}/{index}", self.vars(dense))
    }

    /// The dataset names in `<group>/_x_dense/vars` (none when the group is absent).
    fn var_names(&self, dense: Dense) -> Vec<String> {
        self.h5.group(&self.vars(dense)).and_then(|g| g.datasets()).unwrap_or_default()
    }

    /// Reads a dataset as f32 ([`read_dataset`]).
    fn read(&self, path: &str, tensor: &str) -> Result<HostTensor> {
        read_dataset(self.file, self.h5, path, tensor)
    }
}

/// Reads a dataset as f32: f32 and f64 directly, f16 and bfloat16 (Keras' opaque 2-byte type with a
/// `dtype` attribute) through their bits; integers are refused. `tensor` names it in errors.
pub(crate) fn read_dataset(file: &str, h5: &File, path: &str, tensor: &str) -> Result<HostTensor> {
    let ds = h5.dataset(path).map_err(|e| h5_err(file, format!("{path}: {e}")))?;
    let shape: Vec<usize> = ds
        .shape()
        .map_err(|e| h5_err(file, format!("{path}: {e}")))?
        .into_iter()
        .map(|d| usize::try_from(d).unwrap_or(usize::MAX))
        .collect();
    let dt = ds.datatype().map_err(|e| h5_err(file, format!("{path}: {e}")))?;
    let raw = || ds.read_raw().map_err(|e| h5_err(file, format!("{path}: {e}")));
    let bad = |dtype: String| IoError::Dtype {
        file: file.into(),
        tensor: tensor.into(),
        dtype,
        expected: "a float dataset (f32, f64, f16 or bfloat16)",
    };
    let data: Vec<f32> = match &dt {
        Datatype::FloatingPoint { size: 4 | 8, .. } => {
            ds.read_f32().map_err(|e| h5_err(file, format!("{path}: {e}")))?
        }
        Datatype::FloatingPoint { size: 2, byte_order, .. } => {
            let big = matches!(byte_order, DatatypeByteOrder::BigEndian);
            raw()?
                .chunks_exact(2)
                .map(|c| {
                    let b = if big { [c[1], c[0]] } else { [c[0], c[1]] };
                    half::f16::from_le_bytes(b).to_f32()
                })
                .collect()
        }
        Datatype::Opaque { size: 2, .. } if is_bfloat16(&ds) => {
            raw()?.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
        }
        _ => return Err(bad(ds.dtype().map_or_else(|_| "unknown".into(), |d| d.to_string()))),
    };
    if elements(&shape) != Some(data.len()) {
        return Err(h5_err(file, format!("{path}: shape {shape:?} does not match its {} values", data.len())));
    }
    HostTensor::new(shape, data).map_err(|e| IoError::Tensor {
        file: file.into(),
        tensor: tensor.into(),
        source: Box::new(e),
    })
}

fn is_bfloat16(ds: &hdf5_pure::Dataset) -> bool {
    ds.attrs().ok().and_then(|a| a.get("dtype").cloned()).is_some_and(|v| match v {
        AttrValue::String(s)
        | AttrValue::AsciiString(s)
        | AttrValue::VarLenString(s)
        | AttrValue::VarLenAsciiString(s) => s == "bfloat16",
        _ => false,
    })
}

impl WeightSource for Source<'_> {
    fn file(&self) -> &str {
        self.file
    }

    fn describe(&self, dense: Dense, part: Part) -> String {
        format!("/{} ({})", self.path(dense, part), keras_path(dense, part))
    }

    fn fetch(&self, dense: Dense, part: Part) -> Result<Option<HostTensor>> {
        let path = self.path(dense, part);
        let index = path.rsplit('/').next().unwrap_or_default();
        if !self.var_names(dense).iter().any(|n| n == index) {
            return Ok(None);
        }
        self.read(&path, &self.describe(dense, part)).map(Some)
    }

    fn strangers(&self) -> Vec<String> {
        // A third variable of a dense sub-layer (vars/2 ...) is not a Keras weight of this layer.
        Dense::ALL
            .into_iter()
            .flat_map(|d| {
                let vars = self.vars(d);
                self.var_names(d).into_iter().filter(|n| n != "0" && n != "1").map(move |n| format!("/{vars}/{n}"))
            })
            .collect()
    }
}

/// The layer described by `entry` from Keras weights in HDF5 bytes. The layer's group is found by
/// the `name` attribute of `<group>/vars` (the config's name, or `layer_name` when given).
pub(crate) fn layer_from_h5(file: &str, h5: &File, entry: LayerEntry, layer_name: Option<&str>) -> Result<KerasLayer> {
    let wanted = layer_name.unwrap_or(&entry.config.name);
    let group = find_layer_group(file, h5, Some(wanted))?;
    let (dims, weights) = assemble(&Source { file, h5, group }, &entry.config, entry.dims)?;
    Ok(KerasLayer { config: entry.config, dims, weights })
}

#[cfg(test)]
mod tests {
    use super::is_layer_group_name;

    #[test]
    fn group_names() {
        assert!(is_layer_group_name("grouped_query_attention"));
        assert!(is_layer_group_name("grouped_query_attention_12"));
        assert!(!is_layer_group_name("grouped_query_attention_x"));
        assert!(!is_layer_group_name("multi_head_attention"));
    }
}
