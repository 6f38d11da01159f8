//! Reading a KerasHub attention layer's config JSON into a [`KerasHubConfig`].

use serde_json::{Map, Value};

use super::KerasHubClass;
use crate::config::GqaConfig;
use crate::error::GqaError;
use crate::extensions::{
    AttentionExtensions, KeyWindow, NormScale, QkNorm, Rope, RopeFrequencies, RopeLayout, ScoreScale,
};

/// A KerasHub attention layer's config: the GQA part (heads, head size, biases, dropout, name,
/// dtype), the extensions, the hidden size D and the JSON it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct KerasHubConfig {
    /// The class.
    pub class: KerasHubClass,
    /// Heads, head size (resolved: `head_dim`, else `D // Nq`), biases, dropout, name, dtype.
    pub config: GqaConfig,
    /// RoPE, QK-norm, scale, soft cap, sinks and window.
    pub extensions: AttentionExtensions,
    /// D, the hidden size of the input (and output).
    pub hidden_dim: usize,
    /// The config JSON object as read (written back unchanged).
    pub json: Map<String, Value>,
}

/// Keys of the `Layer` base config, accepted by every class.
const BASE_KEYS: [&str; 4] = ["name", "trainable", "dtype", "kernel_initializer"];

impl KerasHubConfig {
    /// Reads `json` (a config object, or `{"class_name": ..., "config": {...}}`) as a layer of
    /// `class` whose input has `hidden_dim` features. Unknown keys are logged and ignored.
    pub fn from_json(class: KerasHubClass, json: &str, hidden_dim: usize) -> Result<Self, GqaError> {
        let value: Value = serde_json::from_str(json).map_err(|e| GqaError::Json(e.to_string()))?;
        Self::from_value(class, &value, hidden_dim)
    }

    /// [`KerasHubConfig::from_json`] on parsed JSON.
    pub fn from_value(class: KerasHubClass, value: &Value, hidden_dim: usize) -> Result<Self, GqaError> {
        let object = match value.get("config") {
            Some(inner) if value.get("class_name").is_some() => inner,
            _ => value,
        };
        let map = object
            .as_object()
            .ok_or_else(|| GqaError::Json(format!("{class} config: expected a JSON object, got {object}")))?;
        if hidden_dim == 0 {
            return Err(GqaError::ZeroSize { what: format!("{class} hidden size") });
        }
        let read = Reader { class, map };
        let parsed = read.layer(hidden_dim)?;
        read.warn_unknown();
        Ok(parsed)
    }

    /// The config JSON, as read.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.json).expect("a JSON map always serialises")
    }
}

/// Typed reads of one class's config keys, with errors naming the class and key.
struct Reader<'a> {
    class: KerasHubClass,
    map: &'a Map<String, Value>,
}

impl Reader<'_> {
    fn keys(&self) -> &'static [&'static str] {
        match self.class {
            KerasHubClass::Llama => &[
                "num_query_heads",
                "num_key_value_heads",
                "rope_max_wavelength",
                "rope_position_scaling_factor",
                "rope_frequency_adjustment_factor",
                "rope_low_freq_factor",
                "rope_high_freq_factor",
                "rope_pretraining_sequence_length",
                "dropout",
            ],
            KerasHubClass::Mistral => &[
                "num_query_heads",
                "num_key_value_heads",
                "rope_max_wavelength",
                "rope_scaling_factor",
                "sliding_window",
                "dropout",
                "head_dim",
            ],
            KerasHubClass::Qwen3 => &[
                "num_query_heads",
                "num_key_value_heads",
                "head_dim",
                "rope_max_wavelength",
                "rope_scaling_factor",
                "dropout",
                "layer_norm_epsilon",
                "sliding_window_size",
            ],
            KerasHubClass::GptOss => &[
                "num_query_heads",
                "num_key_value_heads",
                "rope_max_wavelength",
                "rope_scaling_factor",
                "sliding_window",
                "dropout",
                "head_dim",
            ],
            KerasHubClass::Gemma => &[
                "head_dim",
                "num_query_heads",
                "num_key_value_heads",
                "logit_soft_cap",
                "use_sliding_window_attention",
                "sliding_window_size",
                "query_head_dim_normalize",
                "dropout",
            ],
            KerasHubClass::Gemma3 => &[
                "head_dim",
                "num_query_heads",
                "num_key_value_heads",
                "logit_soft_cap",
                "use_sliding_window_attention",
                "sliding_window_size",
                "query_head_dim_normalize",
                "use_query_key_norm",
                "layer_norm_epsilon",
                "rope_wavelength",
                "rope_scaling_factor",
                "use_bidirectional_attention",
                "dropout",
            ],
        }
    }

    fn warn_unknown(&self) {
        for key in self.map.keys() {
            if !BASE_KEYS.contains(&key.as_str()) && !self.keys().contains(&key.as_str()) {
                log::warn!(target: "gqa_core::kerashub", "{} config: ignoring unknown key `{key}`", self.class);
            }
        }
    }

    fn bad(&self, key: &str, reason: String) -> GqaError {
        GqaError::InvalidConfigValue { what: format!("{}.{key}", self.class), reason }
    }

    /// The value of `key`, `None` when absent or null.
    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn size(&self, key: &str) -> Result<Option<usize>, GqaError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => {
                match v.as_u64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64)) {
                    Some(n) => Ok(Some(n as usize)),
                    None => Err(self.bad(key, format!("expected a non-negative integer, got {v}"))),
                }
            }
        }
    }

    fn required_size(&self, key: &str) -> Result<usize, GqaError> {
        self.size(key)?.ok_or_else(|| self.bad(key, "missing".into()))
    }

    fn number(&self, key: &str) -> Result<Option<f64>, GqaError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() => Ok(Some(x)),
                _ => Err(self.bad(key, format!("expected a finite number, got {v}"))),
            },
        }
    }

    fn flag(&self, key: &str, default: bool) -> Result<bool, GqaError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| self.bad(key, format!("expected true or false, got {v}"))),
        }
    }

    fn layer(&self, hidden_dim: usize) -> Result<KerasHubConfig, GqaError> {
        use KerasHubClass as C;
        let nq = self.required_size("num_query_heads")?;
        let nkv = self.required_size("num_key_value_heads")?;
        if nq == 0 {
            return Err(GqaError::ZeroSize { what: format!("{}.num_query_heads", self.class) });
        }
        let derived = hidden_dim / nq;
        // Gemma's head_dim is required; Qwen3's may be null or 0; Mistral's and GPT-OSS's default.
        let head_dim = match self.class {
            C::Llama => derived,
            C::Gemma | C::Gemma3 => self.required_size("head_dim")?,
            _ => self.size("head_dim")?.filter(|&h| h > 0).unwrap_or(derived),
        };
        let wavelength = |key: &str| Ok::<f64, GqaError>(self.number(key)?.unwrap_or(10_000.0));
        let linear = |key: &str| -> Result<RopeFrequencies, GqaError> {
            let factor = self.number("rope_scaling_factor")?.unwrap_or(1.0);
            Ok(RopeFrequencies::Linear { wavelength: wavelength(key)?, factor })
        };
        let mut ext = AttentionExtensions::default();
        let rope = |f, layout| Rope::new(head_dim, f, layout).map_err(|e| self.bad("head_dim", e.to_string()));
        match self.class {
            C::Llama => {
                let keys = [
                    "rope_frequency_adjustment_factor",
                    "rope_low_freq_factor",
                    "rope_high_freq_factor",
                    "rope_pretraining_sequence_length",
                ];
                let values = keys.iter().map(|k| self.number(k)).collect::<Result<Vec<_>, _>>()?;
                let frequencies = match values[..] {
                    [None, None, None, None] => {
                        RopeFrequencies::Plain { wavelength: wavelength("rope_max_wavelength")? }
                    }
                    [Some(factor), Some(low), Some(high), Some(length)] => RopeFrequencies::Llama3 {
                        wavelength: wavelength("rope_max_wavelength")?,
                        factor,
                        low_freq_factor: low,
                        high_freq_factor: high,
                        pretraining_length: length,
                    },
                    _ => {
                        return Err(
                            self.bad("rope_*", "the four Llama 3 rope arguments are all set or all null".into())
                        );
                    }
                };
                ext.rope = Some(rope(frequencies, RopeLayout::RotateHalf)?);
            }
            C::Mistral => ext.rope = Some(rope(linear("rope_max_wavelength")?, RopeLayout::RotateHalf)?),
            C::Qwen3 => {
                ext.rope = Some(rope(linear("rope_max_wavelength")?, RopeLayout::RotateHalf)?);
                let epsilon = self.number("layer_norm_epsilon")?.unwrap_or(1e-5);
                ext.qk_norm = Some(QkNorm { epsilon, form: NormScale::Scale });
                ext.window = self.size("sliding_window_size")?.filter(|&w| w > 0).map(KeyWindow::Symmetric);
            }
            C::GptOss => {
                let frequencies = RopeFrequencies::Yarn {
                    wavelength: wavelength("rope_max_wavelength")?,
                    factor: self.number("rope_scaling_factor")?.unwrap_or(1.0),
                    beta_fast: 32.0,
                    beta_slow: 1.0,
                    original_length: 4096.0,
                    truncate: false,
                };
                let rotary = head_dim / 2 * 2;
                ext.rope = Some(
                    Rope::partial(head_dim, rotary, frequencies, RopeLayout::RotateHalf)
                        .map_err(|e| self.bad("head_dim", e.to_string()))?,
                );
                ext.sinks = true;
                // Absent means the constructor's default, 4096; null or 0 disable it.
                let window = match self.map.get("sliding_window") {
                    None => Some(4096),
                    Some(_) => self.size("sliding_window")?,
                };
                ext.window = window.filter(|&w| w > 0).map(KeyWindow::Lookback);
            }
            C::Gemma | C::Gemma3 => {
                ext.rope = Some(if self.class == C::Gemma {
                    rope(RopeFrequencies::Plain { wavelength: 10_000.0 }, RopeLayout::Interleaved)?
                } else {
                    rope(linear("rope_wavelength")?, RopeLayout::RotateHalf)?
                });
                ext.soft_cap = self.number("logit_soft_cap")?;
                if !self.flag("query_head_dim_normalize", true)? {
                    ext.scale = ScoreScale::InverseSqrtOf(derived);
                }
                if self.flag("use_sliding_window_attention", false)? {
                    let size = self.size("sliding_window_size")?.unwrap_or(4096);
                    let bidirectional = self.class == C::Gemma3 && self.flag("use_bidirectional_attention", false)?;
                    ext.window =
                        Some(if bidirectional { KeyWindow::Centered(size) } else { KeyWindow::Symmetric(size) });
                }
                if self.class == C::Gemma3 && self.flag("use_query_key_norm", false)? {
                    let epsilon = self.number("layer_norm_epsilon")?.unwrap_or(1e-6);
                    ext.qk_norm = Some(QkNorm { epsilon, form: NormScale::OnePlusScale });
                }
            }
        }
        let mut config = GqaConfig::new(head_dim, nq, nkv);
        config.use_bias = self.class == C::GptOss;
        config.dropout = self.number("dropout")?.unwrap_or(0.0);
        if let Some(name) = self.get("name").and_then(Value::as_str) {
            config.name = name.to_string();
        }
        if let Some(dtype) = self.get("dtype") {
            config.dtype = dtype_name(dtype).ok_or_else(|| self.bad("dtype", format!("unreadable dtype {dtype}")))?;
        }
        config.validate()?;
        ext.validate(head_dim)?;
        Ok(KerasHubConfig { class: self.class, config, extensions: ext, hidden_dim, json: self.map.clone() })
    }
}

/// A dtype entry: a policy name, or a `DTypePolicy` object's `config.name`.
fn dtype_name(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => m.get("config").and_then(|c| c.get("name")).and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extensions::{KeyWindow, NormScale, QkNorm, RopeLayout, ScoreScale};

    #[test]
    fn llama_head_dim_floors_and_llama3_args_go_together() {
        let json = r#"{"num_query_heads": 3, "num_key_value_heads": 1}"#;
        let l = KerasHubConfig::from_json(KerasHubClass::Llama, json, 20).unwrap();
        assert_eq!(l.config.head_dim, 6);
        assert!(!l.config.use_bias);
        let partial = r#"{"num_query_heads": 2, "num_key_value_heads": 1, "rope_low_freq_factor": 1.0}"#;
        assert!(KerasHubConfig::from_json(KerasHubClass::Llama, partial, 16).is_err());
        // Odd head_dim: KerasHub's RotaryEmbedding refuses it.
        assert!(KerasHubConfig::from_json(KerasHubClass::Llama, json, 15).is_err());
    }

    #[test]
    fn gpt_oss_window_defaults_and_odd_heads() {
        let json = r#"{"num_query_heads": 2, "num_key_value_heads": 1, "head_dim": 5}"#;
        let g = KerasHubConfig::from_json(KerasHubClass::GptOss, json, 16).unwrap();
        assert_eq!(g.extensions.window, Some(KeyWindow::Lookback(4096)));
        assert_eq!(g.extensions.rope.as_ref().unwrap().rotary_dim, 4);
        assert!(g.extensions.sinks && g.config.use_bias);
        let off = r#"{"num_query_heads": 2, "num_key_value_heads": 1, "sliding_window": null}"#;
        assert_eq!(KerasHubConfig::from_json(KerasHubClass::GptOss, off, 16).unwrap().extensions.window, None);
    }

    #[test]
    fn gemma_scale_window_and_norm() {
        let json = r#"{"head_dim": 4, "num_query_heads": 3, "num_key_value_heads": 1, "logit_soft_cap": 5.0,
            "use_sliding_window_attention": true, "sliding_window_size": 3, "query_head_dim_normalize": false,
            "use_query_key_norm": true, "use_bidirectional_attention": true}"#;
        let g = KerasHubConfig::from_json(KerasHubClass::Gemma3, json, 20).unwrap();
        assert_eq!(g.extensions.scale, ScoreScale::InverseSqrtOf(6));
        assert_eq!(g.extensions.window, Some(KeyWindow::Centered(3)));
        assert_eq!(g.extensions.qk_norm, Some(QkNorm { epsilon: 1e-6, form: NormScale::OnePlusScale }));
        let g1 = KerasHubConfig::from_json(KerasHubClass::Gemma, json, 20).unwrap();
        assert_eq!(g1.extensions.window, Some(KeyWindow::Symmetric(3)));
        assert_eq!(g1.extensions.qk_norm, None);
        assert_eq!(g1.extensions.rope.unwrap().layout, RopeLayout::Interleaved);
        let missing = r#"{"num_query_heads": 3, "num_key_value_heads": 1}"#;
        assert!(KerasHubConfig::from_json(KerasHubClass::Gemma, missing, 20).is_err());
    }

    #[test]
    fn bad_values_name_the_key() {
        let json = r#"{"num_query_heads": 4, "num_key_value_heads": 3}"#;
        assert!(matches!(
            KerasHubConfig::from_json(KerasHubClass::Mistral, json, 16),
            Err(GqaError::HeadsDoNotDivide { .. })
        ));
        let json = r#"{"num_query_heads": "four", "num_key_value_heads": 1}"#;
        let e = KerasHubConfig::from_json(KerasHubClass::Mistral, json, 16).unwrap_err();
        assert!(e.to_string().contains("CachedMistralAttention.num_query_heads"), "{e}");
    }
}
