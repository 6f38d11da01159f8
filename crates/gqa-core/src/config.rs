//! `GqaConfig`: every constructor argument of `keras.layers.GroupQueryAttention`, with the same JSON
//! as Keras' `get_config()` (read bare or inside a serialized layer's
//! `{"class_name": "GroupQueryAttention", "config": {...}}`), and `with_*` builders.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

use crate::constraint::Constraint;
use crate::error::GqaError;
use crate::initializer::Initializer;
use crate::keras_object::envelope;
use crate::regularizer::Regularizer;

/// The class names a GroupQueryAttention layer is serialized under (Keras 3 writes the first; the
/// second is the layer's alias).
pub const KERAS_CLASS_NAMES: [&str; 2] = ["GroupQueryAttention", "GroupedQueryAttention"];

/// What reading a config JSON does with keys `GqaConfig` does not know (e.g. arguments a newer Keras
/// added).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownKeys {
    /// Ignored, each with a warning through the `log` crate (target `gqa_core::config`) naming it:
    /// what [`GqaConfig::from_keras_json`] and [`GqaConfig::from_keras_value`] do, so that a config
    /// written by a newer Keras still loads.
    #[default]
    Warn,
    /// An error naming the key, for callers that want to know the config holds nothing this crate
    /// ignores.
    Reject,
}

/// The layer's configuration. Field names and JSON keys are those of Keras `get_config()`.
///
/// ```
/// let cfg = gqa_core::GqaConfig::new(16, 8, 2).with_gate(true).with_sliding_window(64);
/// let json = cfg.to_keras_json();
/// assert_eq!(gqa_core::GqaConfig::from_keras_json(&json).unwrap(), cfg);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GqaConfig {
    /// The layer name (Keras' default `grouped_query_attention`).
    #[serde(default = "default_name")]
    pub name: String,
    /// Whether the weights are trainable.
    #[serde(default = "yes")]
    pub trainable: bool,
    /// The dtype policy name (`float32`, `mixed_float16`, ...).
    #[serde(default = "default_dtype", serialize_with = "ser_dtype", deserialize_with = "de_dtype")]
    pub dtype: String,
    /// H, the size of each head.
    pub head_dim: usize,
    /// Nq.
    pub num_query_heads: usize,
    /// Nkv; must divide Nq.
    pub num_key_value_heads: usize,
    /// Whether the dense layers have biases.
    #[serde(default = "yes")]
    pub use_bias: bool,
    /// Whether a sigmoid gate from the query multiplies the attention output.
    #[serde(default)]
    pub use_gate: bool,
    /// Keys with `|i - j| >= sliding_window` are masked (`None`: no window).
    #[serde(default)]
    pub sliding_window: Option<usize>,
    /// Dropout rate on the attention probabilities, in [0, 1).
    #[serde(default)]
    pub dropout: f64,
    /// Kernel initializer (default `glorot_uniform`).
    #[serde(default = "default_kernel_init")]
    pub kernel_initializer: Initializer,
    /// Bias initializer (default `zeros`).
    #[serde(default = "default_bias_init")]
    pub bias_initializer: Initializer,
    /// Regularizer of the kernels.
    #[serde(default)]
    pub kernel_regularizer: Option<Regularizer>,
    /// Regularizer of the biases.
    #[serde(default)]
    pub bias_regularizer: Option<Regularizer>,
    /// Regularizer of the layer's output.
    #[serde(default)]
    pub activity_regularizer: Option<Regularizer>,
    /// Constraint on the kernels.
    #[serde(default)]
    pub kernel_constraint: Option<Constraint>,
    /// Constraint on the biases.
    #[serde(default)]
    pub bias_constraint: Option<Constraint>,
    /// Seed of the dropout generator.
    #[serde(default)]
    pub seed: Option<u64>,
}

fn default_name() -> String {
    "grouped_query_attention".into()
}
fn default_dtype() -> String {
    "float32".into()
}
fn yes() -> bool {
    true
}
fn default_kernel_init() -> Initializer {
    Initializer::GlorotUniform { seed: None }
}
fn default_bias_init() -> Initializer {
    Initializer::Zeros
}

fn ser_dtype<S: Serializer>(name: &str, s: S) -> Result<S::Ok, S::Error> {
    envelope("keras", "DTypePolicy", json!({ "name": name })).serialize(s)
}

fn de_dtype<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde::de::Error;
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Null => Ok(default_dtype()),
        Value::Object(m) => m
            .get("config")
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| D::Error::custom("dtype: a DTypePolicy object needs config.name")),
        other => Err(D::Error::custom(format!("dtype: expected a string or a DTypePolicy, got {other}"))),
    }
}

impl GqaConfig {
    /// A config with Keras' defaults for everything but the three head sizes.
    pub fn new(head_dim: usize, num_query_heads: usize, num_key_value_heads: usize) -> Self {
        Self {
            name: default_name(),
            trainable: true,
            dtype: default_dtype(),
            head_dim,
            num_query_heads,
            num_key_value_heads,
            use_bias: true,
            use_gate: false,
            sliding_window: None,
            dropout: 0.0,
            kernel_initializer: default_kernel_init(),
            bias_initializer: default_bias_init(),
            kernel_regularizer: None,
            bias_regularizer: None,
            activity_regularizer: None,
            kernel_constraint: None,
            bias_constraint: None,
            seed: None,
        }
    }

    /// Checks what Keras' constructor checks, and more: positive sizes, Nq divisible by Nkv, a
    /// positive window, dropout in [0, 1), finite initializer/regularizer/constraint values.
    pub fn validate(&self) -> Result<(), GqaError> {
        for (what, v) in [
            ("head_dim", self.head_dim),
            ("num_query_heads", self.num_query_heads),
            ("num_key_value_heads", self.num_key_value_heads),
        ] {
            if v == 0 {
                return Err(GqaError::ZeroSize { what: what.into() });
            }
        }
        if !self.num_query_heads.is_multiple_of(self.num_key_value_heads) {
            return Err(GqaError::HeadsDoNotDivide {
                num_query_heads: self.num_query_heads,
                num_key_value_heads: self.num_key_value_heads,
            });
        }
        if self.sliding_window == Some(0) {
            return Err(GqaError::ZeroSize { what: "sliding_window".into() });
        }
        if !(self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout)) {
            return Err(GqaError::DropoutOutOfRange(self.dropout));
        }
        self.kernel_initializer.validate()?;
        self.bias_initializer.validate()?;
        for c in [&self.kernel_constraint, &self.bias_constraint].into_iter().flatten() {
            c.validate()?;
        }
        Ok(())
    }

    /// R = Nq / Nkv, the number of query heads that share one kv head.
    pub fn group_size(&self) -> usize {
        self.num_query_heads / self.num_key_value_heads
    }

    /// `1 / sqrt(head_dim)`.
    pub fn scale(&self) -> f64 {
        1.0 / (self.head_dim as f64).sqrt()
    }

    /// The kv head that query head `u` reads (Keras `repeat` order).
    pub fn kv_head_of(&self, query_head: usize) -> usize {
        query_head / self.group_size()
    }

    /// Parses Keras `get_config()` JSON (objects or string identifiers) and validates it. The JSON is
    /// the bare config or a serialized layer (`{"class_name": "GroupQueryAttention", "config":
    /// {...}, ...}`, whose other keys are ignored); unknown keys of the config are ignored with a
    /// warning through `log` ([`UnknownKeys::Warn`]; [`GqaConfig::from_keras_json_with`] can reject
    /// them instead).
    pub fn from_keras_json(json: &str) -> Result<Self, GqaError> {
        Self::from_keras_json_with(json, UnknownKeys::Warn)
    }

    /// [`GqaConfig::from_keras_json`] with a policy for unknown keys.
    ///
    /// ```
    /// use gqa_core::{GqaConfig, config::UnknownKeys};
    /// let json = r#"{"class_name": "GroupQueryAttention", "module": "keras.layers",
    ///     "config": {"head_dim": 8, "num_query_heads": 4, "num_key_value_heads": 2, "new_option": 1}}"#;
    /// assert!(GqaConfig::from_keras_json_with(json, UnknownKeys::Reject).is_err());
    /// let cfg = GqaConfig::from_keras_json(json)?; // logs `new_option`
    /// assert_eq!(cfg, GqaConfig::new(8, 4, 2));
    /// # Ok::<(), gqa_core::GqaError>(())
    /// ```
    pub fn from_keras_json_with(json: &str, unknown: UnknownKeys) -> Result<Self, GqaError> {
        let value: Value = serde_json::from_str(json).map_err(|e| GqaError::Json(e.to_string()))?;
        if unknown == UnknownKeys::Reject && !is_serialized_layer(&value) {
            // Straight from the text, so that serde's errors say where (line and column).
            let cfg: Self = serde_json::from_str(json).map_err(|e| GqaError::Json(e.to_string()))?;
            cfg.validate()?;
            return Ok(cfg);
        }
        Self::from_keras_value_with(&value, unknown)
    }

    /// Parses an already decoded JSON value (e.g. the `config` of a `.keras` layer entry, or the
    /// whole entry), as [`GqaConfig::from_keras_json`].
    pub fn from_keras_value(value: &Value) -> Result<Self, GqaError> {
        Self::from_keras_value_with(value, UnknownKeys::Warn)
    }

    /// [`GqaConfig::from_keras_value`] with a policy for unknown keys.
    pub fn from_keras_value_with(value: &Value, unknown: UnknownKeys) -> Result<Self, GqaError> {
        let config = layer_config(value)?;
        let parsed = match (unknown, config.as_object()) {
            (UnknownKeys::Warn, Some(map)) => {
                let known = known_keys();
                let mut kept = map.clone();
                kept.retain(|key, _| {
                    let is_known = known.iter().any(|k| k == key);
                    if !is_known {
                        let name = map.get("name").and_then(Value::as_str).unwrap_or("?");
                        log::warn!(
                            target: "gqa_core::config",
                            "GroupQueryAttention config of layer {name:?}: ignoring unknown key `{key}`"
                        );
                    }
                    is_known
                });
                Self::deserialize(&Value::Object(kept))
            }
            _ => Self::deserialize(config),
        };
        let cfg = parsed.map_err(|e| GqaError::Json(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The JSON Keras' `get_config()` would write, pretty-printed.
    pub fn to_keras_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a GqaConfig always serialises")
    }
}

/// Builders: each `with_*` sets one argument and returns the config, so that a config reads as one
/// expression and new arguments (which start at Keras' defaults) break no caller. Nothing is
/// checked until [`GqaConfig::validate`] (which every consumer calls).
///
/// ```
/// use gqa_core::{GqaConfig, Initializer};
/// let config = GqaConfig::new(64, 8, 2)
///     .with_name("attn")
///     .with_gate(true)
///     .with_bias(false)
///     .with_sliding_window(128)
///     .with_kernel_initializer(Initializer::HeNormal { seed: Some(1) });
/// config.validate()?;
/// assert_eq!(config.sliding_window, Some(128));
/// # Ok::<(), gqa_core::GqaError>(())
/// ```
impl GqaConfig {
    /// Sets `name`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets `trainable`.
    pub fn with_trainable(mut self, trainable: bool) -> Self {
        self.trainable = trainable;
        self
    }

    /// Sets the dtype policy name (`float32`, `mixed_float16`, ...).
    pub fn with_dtype(mut self, dtype: impl Into<String>) -> Self {
        self.dtype = dtype.into();
        self
    }

    /// Sets `use_bias`.
    pub fn with_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// Sets `use_gate`.
    pub fn with_gate(mut self, use_gate: bool) -> Self {
        self.use_gate = use_gate;
        self
    }

    /// Sets `sliding_window` (a size, or `None` for no window).
    pub fn with_sliding_window(mut self, window: impl Into<Option<usize>>) -> Self {
        self.sliding_window = window.into();
        self
    }

    /// Sets the `dropout` rate.
    pub fn with_dropout(mut self, rate: f64) -> Self {
        self.dropout = rate;
        self
    }

    /// Sets `kernel_initializer`.
    pub fn with_kernel_initializer(mut self, init: Initializer) -> Self {
        self.kernel_initializer = init;
        self
    }

    /// Sets `bias_initializer`.
    pub fn with_bias_initializer(mut self, init: Initializer) -> Self {
        self.bias_initializer = init;
        self
    }

    /// Sets `kernel_regularizer` (a regularizer, or `None`).
    pub fn with_kernel_regularizer(mut self, regularizer: impl Into<Option<Regularizer>>) -> Self {
        self.kernel_regularizer = regularizer.into();
        self
    }

    /// Sets `bias_regularizer` (a regularizer, or `None`).
    pub fn with_bias_regularizer(mut self, regularizer: impl Into<Option<Regularizer>>) -> Self {
        self.bias_regularizer = regularizer.into();
        self
    }

    /// Sets `activity_regularizer` (a regularizer, or `None`).
    pub fn with_activity_regularizer(mut self, regularizer: impl Into<Option<Regularizer>>) -> Self {
        self.activity_regularizer = regularizer.into();
        self
    }

    /// Sets `kernel_constraint` (a constraint, or `None`).
    pub fn with_kernel_constraint(mut self, constraint: impl Into<Option<Constraint>>) -> Self {
        self.kernel_constraint = constraint.into();
        self
    }

    /// Sets `bias_constraint` (a constraint, or `None`).
    pub fn with_bias_constraint(mut self, constraint: impl Into<Option<Constraint>>) -> Self {
        self.bias_constraint = constraint.into();
        self
    }

    /// Sets the dropout generator's `seed` (a seed, or `None`).
    pub fn with_seed(mut self, seed: impl Into<Option<u64>>) -> Self {
        self.seed = seed.into();
        self
    }
}

/// Whether `value` is a serialized layer (`{"class_name": ..., "config": ...}`), not a bare config.
fn is_serialized_layer(value: &Value) -> bool {
    value.get("class_name").is_some()
}

/// The config object of `value`: `value` itself, or the `config` of a serialized GroupQueryAttention.
fn layer_config(value: &Value) -> Result<&Value, GqaError> {
    let Some(class) = value.get("class_name") else { return Ok(value) };
    match class.as_str() {
        Some(c) if KERAS_CLASS_NAMES.contains(&c) => {
            value.get("config").ok_or_else(|| GqaError::Json(format!("the serialized {c} has no `config`")))
        }
        _ => Err(GqaError::Json(format!(
            "expected a GroupQueryAttention config or serialized layer, got class_name {class}"
        ))),
    }
}

/// The JSON keys of a config, as `get_config()` writes them (every field serializes).
fn known_keys() -> &'static [String] {
    static KEYS: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| match serde_json::to_value(GqaConfig::new(1, 1, 1)) {
            Ok(Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        });
    &KEYS
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../tests/data/keras-get-config-example.json");
    const DEFAULTS: &str = include_str!("../tests/data/keras-get-config-defaults.json");

    #[test]
    fn reads_keras_example_with_every_option() {
        let cfg = GqaConfig::from_keras_json(EXAMPLE).unwrap();
        assert_eq!(cfg.name, "attn");
        assert_eq!(cfg.sliding_window, Some(3));
        assert!(cfg.use_gate);
        assert_eq!(cfg.seed, Some(42));
        assert_eq!(cfg.kernel_initializer, Initializer::HeNormal { seed: None });
        assert_eq!(cfg.kernel_regularizer, Some(Regularizer::L1L2 { l1: 1e-5, l2: 1e-4 }));
        assert_eq!(cfg.kernel_constraint, Some(Constraint::MaxNorm { max_value: 2.0, axis: vec![0] }));
        assert_eq!(cfg.bias_constraint, Some(Constraint::NonNeg));
    }

    #[test]
    fn writes_exactly_what_keras_writes() {
        for text in [EXAMPLE, DEFAULTS] {
            let cfg = GqaConfig::from_keras_json(text).unwrap();
            let ours: Value = serde_json::from_str(&cfg.to_keras_json()).unwrap();
            let keras: Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours, keras);
        }
        let defaults: Value = serde_json::from_str(DEFAULTS).unwrap();
        let ours: Value = serde_json::to_value(GqaConfig::new(8, 4, 2)).unwrap();
        assert_eq!(ours, defaults);
    }

    #[test]
    fn string_identifiers_and_validation() {
        let cfg = GqaConfig::from_keras_json(
            r#"{"head_dim": 4, "num_query_heads": 6, "num_key_value_heads": 3, "kernel_initializer": "lecun_normal",
                "kernel_regularizer": "l2", "kernel_constraint": "unit_norm", "dtype": "mixed_float16"}"#,
        )
        .unwrap();
        assert_eq!(cfg.dtype, "mixed_float16");
        assert_eq!(cfg.kernel_regularizer, Some(Regularizer::L2 { l2: 0.01 }));
        let err = GqaConfig::from_keras_json(r#"{"head_dim": 4, "num_query_heads": 6, "num_key_value_heads": 4}"#)
            .unwrap_err();
        assert!(matches!(err, GqaError::HeadsDoNotDivide { .. }), "{err}");
        let mut bad = GqaConfig::new(4, 4, 2);
        bad.dropout = 1.0;
        assert!(matches!(bad.validate(), Err(GqaError::DropoutOutOfRange(_))));
        bad.dropout = f64::NAN;
        assert!(matches!(bad.validate(), Err(GqaError::DropoutOutOfRange(_))));
        let err = GqaConfig::from_keras_json_with(
            r#"{"head_dim": 4, "num_query_heads": 2, "num_key_value_heads": 1, "bogus": 1}"#,
            UnknownKeys::Reject,
        )
        .unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn grouping_is_repeat_order() {
        let cfg = GqaConfig::new(4, 8, 2);
        let heads: Vec<usize> = (0..8).map(|u| cfg.kv_head_of(u)).collect();
        assert_eq!(heads, [0, 0, 0, 0, 1, 1, 1, 1]);
    }
}
