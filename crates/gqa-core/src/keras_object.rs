//! The `{"module", "class_name", "config", "registered_name"}` envelope Keras uses to serialise
//! initializers, regularizers, constraints and dtype policies, and the helpers to read its fields.

use serde_json::{Map, Value, json};

use crate::error::GqaError;

/// Builds the Keras envelope for a serialised object.
pub(crate) fn envelope(module: &str, class_name: &str, config: Value) -> Value {
    json!({
        "module": module,
        "class_name": class_name,
        "config": config,
        "registered_name": Value::Null,
    })
}

/// A Keras object read back: either a plain string identifier or an envelope.
pub(crate) enum Identifier<'a> {
    /// A string such as `"glorot_uniform"` or `"l2"`.
    Name(&'a str),
    /// An envelope: its class name and config map.
    Object { class_name: &'a str, config: &'a Map<String, Value> },
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

/// Reads a JSON value as a Keras identifier (string or envelope).
pub(crate) fn identifier<'a>(kind: &'static str, value: &'a Value) -> Result<Identifier<'a>, GqaError> {
    match value {
        Value::String(s) => Ok(Identifier::Name(s)),
        Value::Object(map) => {
            let class_name = map
                .get("class_name")
                .and_then(Value::as_str)
                .ok_or_else(|| GqaError::Json(format!("{kind}: object without a string \"class_name\": {value}")))?;
            let config = match map.get("config") {
                Some(Value::Object(c)) => c,
                None | Some(Value::Null) => &EMPTY,
                Some(other) => {
                    return Err(GqaError::Json(format!(
                        "{kind} {class_name}: \"config\" must be an object, got {other}"
                    )));
                }
            };
            Ok(Identifier::Object { class_name, config })
        }
        other => Err(GqaError::Json(format!("{kind}: expected a string or a Keras object, got {other}"))),
    }
}

/// Reads an optional float field of a config map, with a default.
pub(crate) fn f64_field(config: &Map<String, Value>, owner: &str, key: &str, default: f64) -> Result<f64, GqaError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_f64().ok_or_else(|| GqaError::Json(format!("{owner}.{key}: expected a number, got {v}"))),
    }
}

/// Reads an optional seed (an unsigned integer or null).
pub(crate) fn seed_field(config: &Map<String, Value>, owner: &str) -> Result<Option<u64>, GqaError> {
    match config.get("seed") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| GqaError::Json(format!("{owner}.seed: expected a non-negative integer or null, got {v}"))),
    }
}

/// Reads an `axis` field that Keras allows as an int or a list of ints.
pub(crate) fn axis_field(config: &Map<String, Value>, owner: &str, default: i64) -> Result<Vec<i64>, GqaError> {
    let bad = |v: &Value| GqaError::Json(format!("{owner}.axis: expected an int or a list of ints, got {v}"));
    match config.get("axis") {
        None | Some(Value::Null) => Ok(vec![default]),
        Some(Value::Array(items)) => items.iter().map(|v| v.as_i64().ok_or_else(|| bad(v))).collect(),
        Some(v) => v.as_i64().map(|a| vec![a]).ok_or_else(|| bad(v)),
    }
}

/// Writes an axis list the way Keras does: a bare int when there is one axis.
pub(crate) fn axis_value(axis: &[i64]) -> Value {
    match axis {
        [one] => json!(one),
        many => json!(many),
    }
}
