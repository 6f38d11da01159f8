//! Finding a GroupQueryAttention layer's config in Keras JSON: a bare `get_config()`, one serialized
//! layer (`{"class_name", "config", "build_config"}`) or a whole model (`config.json` of a `.keras`,
//! `model.to_json()`), where the layer may sit at any depth.
//!
//! Keys of the layer's config this version does not know (arguments of a newer Keras) are ignored
//! with a warning through the `log` crate ([`UnknownKeys::Warn`]), so that such files still load.

use gqa_core::config::KERAS_CLASS_NAMES as CLASS_NAMES;
use gqa_core::{GqaConfig, LayerDims, UnknownKeys};
use serde_json::Value;

use crate::error::{IoError, Result};

/// A GroupQueryAttention layer found in Keras JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerEntry {
    /// The layer's config.
    pub config: GqaConfig,
    /// Dq, Dk, Dv from `build_config.shapes_dict`, when the JSON has it.
    pub dims: Option<LayerDims>,
}

/// Parses JSON text (see [`find_layer`]); `file` names it in errors.
pub fn parse_layer_json(file: &str, text: &str, wanted: Option<&str>) -> Result<LayerEntry> {
    let value: Value = serde_json::from_str(text).map_err(|e| IoError::Format {
        file: file.into(),
        format: "JSON",
        message: e.to_string(),
    })?;
    find_layer(file, &value, wanted)
}

/// Finds the GroupQueryAttention layer in `json`: a bare `get_config()` dict, a serialized layer, or a
/// model holding one or more such layers (then `wanted` picks one by name; without it there must be
/// exactly one). Errors when the JSON is for another class or holds no such layer.
pub fn find_layer(file: &str, json: &Value, wanted: Option<&str>) -> Result<LayerEntry> {
    let Some(obj) = json.as_object() else {
        return Err(IoError::NoConfig { file: file.into(), hint: "the JSON is not an object".into() });
    };
    let Some(class) = obj.get("class_name") else {
        // A bare get_config() dict.
        let config = GqaConfig::from_keras_value_with(json, UnknownKeys::Warn)
            .map_err(|e| IoError::Config { file: file.into(), source: Box::new(e) })?;
        return Ok(LayerEntry { config, dims: None });
    };
    if is_gqa(json) {
        return entry(file, json);
    }
    let mut found = Vec::new();
    collect(json, &mut found);
    if found.is_empty() {
        let mut layers = Vec::new();
        list_layers(json, &mut layers);
        if layers.is_empty() {
            return Err(IoError::WrongClass { file: file.into(), found: class.as_str().unwrap_or("?").into() });
        }
        return Err(IoError::LayerNotFound { file: file.into(), wanted: wanted.map(Into::into), found: layers });
    }
    let names: Vec<String> = found.iter().map(|v| layer_name(v).unwrap_or("?").to_string()).collect();
    let chosen: Vec<&Value> = match wanted {
        Some(w) => found.into_iter().filter(|v| layer_name(v) == Some(w)).collect(),
        None => found,
    };
    match chosen.as_slice() {
        [one] => entry(file, one),
        [] => Err(IoError::LayerNotFound { file: file.into(), wanted: wanted.map(Into::into), found: names }),
        _ => Err(IoError::AmbiguousLayer { file: file.into(), found: names }),
    }
}

fn is_gqa(v: &Value) -> bool {
    v.get("class_name").and_then(Value::as_str).is_some_and(|c| CLASS_NAMES.contains(&c))
}

fn layer_name(v: &Value) -> Option<&str> {
    v.get("config").and_then(|c| c.get("name")).or_else(|| v.get("name")).and_then(Value::as_str)
}

/// Every serialized GroupQueryAttention layer under `v`, in document order.
fn collect<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    if is_gqa(v) {
        out.push(v);
        return;
    }
    match v {
        Value::Object(m) => m.values().for_each(|c| collect(c, out)),
        Value::Array(a) => a.iter().for_each(|c| collect(c, out)),
        _ => {}
    }
}

/// `name (class)` of every serialized layer under `v` (objects with a `class_name` and a `name`).
fn list_layers(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let (Some(c), Some(n)) =
                (m.get("class_name").and_then(Value::as_str), m.get("name").and_then(Value::as_str))
            {
                out.push(format!("{n} ({c})"));
            }
            m.values().for_each(|c| list_layers(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| list_layers(c, out)),
        _ => {}
    }
}

/// A serialized layer: its `config` and `build_config`.
fn entry(file: &str, v: &Value) -> Result<LayerEntry> {
    let cfg = v.get("config").ok_or_else(|| IoError::NoConfig {
        file: file.into(),
        hint: "the GroupQueryAttention entry has no `config`".into(),
    })?;
    let config = GqaConfig::from_keras_value_with(cfg, UnknownKeys::Warn)
        .map_err(|e| IoError::Config { file: file.into(), source: Box::new(e) })?;
    let dims = v.get("build_config").map(|b| dims_from_build_config(file, b)).transpose()?;
    Ok(LayerEntry { config, dims })
}

/// Dq, Dk, Dv from a `build_config` (`{"shapes_dict": {"query_shape": [..., Dq], "value_shape": [...],
/// "key_shape": [...]}}`; no `key_shape` means key = value).
pub fn dims_from_build_config(file: &str, build_config: &Value) -> Result<LayerDims> {
    let shapes = build_config.get("shapes_dict").ok_or_else(|| IoError::Dims {
        file: file.into(),
        message: format!("build_config has no shapes_dict: {build_config}"),
    })?;
    let last = |key: &str| -> Result<Option<usize>> {
        match shapes.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(s) => s
                .as_array()
                .and_then(|a| a.last())
                .and_then(Value::as_u64)
                .and_then(|d| usize::try_from(d).ok())
                .filter(|&d| d > 0)
                .map(Some)
                .ok_or_else(|| IoError::Dims {
                    file: file.into(),
                    message: format!("build_config.shapes_dict.{key} must end in a positive size, got {s}"),
                }),
        }
    };
    let need = |key: &str| -> Result<usize> {
        last(key)?.ok_or_else(|| IoError::Dims {
            file: file.into(),
            message: format!("build_config.shapes_dict has no {key}"),
        })
    };
    let query_dim = need("query_shape")?;
    let value_dim = need("value_shape")?;
    let key_dim = last("key_shape")?.unwrap_or(value_dim);
    Ok(LayerDims { query_dim, key_dim, value_dim })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gqa(name: &str) -> Value {
        json!({"class_name": "GroupQueryAttention", "name": name,
               "config": {"name": name, "head_dim": 2, "num_query_heads": 2, "num_key_value_heads": 1},
               "build_config": {"shapes_dict": {"query_shape": [null, 3, 6], "value_shape": [null, 4, 6],
                                                "key_shape": [null, 4, 5]}}})
    }

    #[test]
    fn finds_by_name_at_any_depth() {
        let model = json!({"class_name": "Functional", "config": {"layers": [
            gqa("a"), {"class_name": "Functional", "name": "inner", "config": {"layers": [gqa("b")]}}]}});
        let e = find_layer("m.json", &model, Some("b")).unwrap();
        assert_eq!(e.config.name, "b");
        assert_eq!(e.dims, Some(LayerDims { query_dim: 6, key_dim: 5, value_dim: 6 }));
        let err = find_layer("m.json", &model, None).unwrap_err().to_string();
        assert!(err.contains("several") && err.contains("\"a\""), "{err}");
        let err = find_layer("m.json", &model, Some("c")).unwrap_err().to_string();
        assert!(err.contains("m.json") && err.contains("\"c\""), "{err}");
    }

    #[test]
    fn bare_config_and_other_classes() {
        let bare = json!({"head_dim": 2, "num_query_heads": 4, "num_key_value_heads": 2});
        assert_eq!(find_layer("f", &bare, None).unwrap().dims, None);
        let mha = json!({"class_name": "MultiHeadAttention", "config": {"num_heads": 2, "key_dim": 4}});
        let err = find_layer("mha.json", &mha, None).unwrap_err().to_string();
        assert!(err.contains("mha.json") && err.contains("MultiHeadAttention"), "{err}");
        let model = json!({"class_name": "Sequential", "config": {"layers": [
            {"class_name": "Dense", "name": "d", "config": {"name": "d"}}]}});
        let err = find_layer("s.json", &model, None).unwrap_err().to_string();
        assert!(err.contains("d (Dense)"), "{err}");
    }
}
