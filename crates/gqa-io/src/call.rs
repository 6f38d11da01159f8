//! A call's options as a file records them: the safetensors metadata key `call` holds a JSON object
//! with any of `use_causal_mask` (bool), `causal_alignment` (`"top-left"` / `"bottom-right"`),
//! `masked_rows` (`"zeros"` / `"keras-default"`), `return_attention_scores` (bool), `training`
//! (bool), `seed` (the dropout seed, an integer or null) and, for KerasHub layers,
//! `cache_update_index` (an integer or null). `gqa run` writes every one of them into
//! its output file; `tools/keras_fixtures.py` writes `use_causal_mask` into the fixtures (which hold
//! a layer, its inputs and Keras' output in one file). A file's inputs and its `call` together say
//! which call produced its outputs, so `gqa run` applies the recorded options unless a flag
//! overrides them.
//!
//! ```
//! use gqa_core::CallOptions;
//! use gqa_io::CallRecord;
//!
//! let record = CallRecord::parse("in.safetensors", r#"{"use_causal_mask": true}"#)?;
//! assert_eq!(record.use_causal_mask, Some(true));
//! assert_eq!(record.training, None); // not recorded: the caller's default applies
//! let mut options = CallOptions::default();
//! record.apply(&mut options);
//! assert!(options.use_causal_mask);
//! # Ok::<(), gqa_io::IoError>(())
//! ```

use gqa_core::{CallOptions, CausalAlignment, MaskedRows};
use serde_json::{Map, Value, json};

use crate::error::{IoError, Result};
use crate::tensor_file::TensorFile;

/// The safetensors metadata key of a call's options.
pub const CALL_KEY: &str = "call";

/// The options of a call recorded in a file (see the [module](self)); each is `None` when the file
/// does not record it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallRecord {
    /// `use_causal_mask`.
    pub use_causal_mask: Option<bool>,
    /// `causal_alignment`: `"top-left"` or `"bottom-right"`.
    pub causal_alignment: Option<CausalAlignment>,
    /// `masked_rows`: `"zeros"` or `"keras-default"`.
    pub masked_rows: Option<MaskedRows>,
    /// `return_attention_scores`.
    pub return_attention_scores: Option<bool>,
    /// `training`.
    pub training: Option<bool>,
    /// `seed`: the dropout seed of the call (`null` is the same as absent).
    pub seed: Option<u64>,
    /// `cache_update_index`: the cache slot a KerasHub layer's cached call writes at (`null` is
    /// the same as absent); a `GroupQueryAttention` call has none.
    pub cache_update_index: Option<usize>,
}

/// The name of an alignment in the file (`top-left`, `bottom-right`).
pub fn alignment_name(a: CausalAlignment) -> &'static str {
    match a {
        CausalAlignment::TopLeft => "top-left",
        CausalAlignment::BottomRight => "bottom-right",
    }
}

/// The name of a masked-rows policy in the file (`zeros`, `keras-default`).
pub fn masked_rows_name(m: MaskedRows) -> &'static str {
    match m {
        MaskedRows::Zeros => "zeros",
        MaskedRows::KerasDefault => "keras-default",
    }
}

impl CallRecord {
    /// The record in a tensor file's metadata, or `None` when it has no `call` key.
    pub fn from_tensor_file(tf: &TensorFile) -> Result<Option<Self>> {
        tf.metadata.get(CALL_KEY).map(|text| Self::parse(&tf.file, text)).transpose()
    }

    /// Parses the JSON of a `call` entry (`file` names it in errors). A key this format does not
    /// know, or a value of the wrong type, is an error: a record that cannot be applied whole must
    /// not be applied in part.
    pub fn parse(file: &str, text: &str) -> Result<Self> {
        let bad = |message: String| IoError::CallMetadata { file: file.to_string(), message };
        let value: Value = serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(bad(format!("expected a JSON object, found {value}")));
        };
        let mut record = Self::default();
        for (key, v) in &map {
            let wrong = |expected: &str| bad(format!("{key}: expected {expected}, found {v}"));
            let flag = || v.as_bool().ok_or_else(|| wrong("true or false"));
            match key.as_str() {
                "use_causal_mask" => record.use_causal_mask = Some(flag()?),
                "return_attention_scores" => record.return_attention_scores = Some(flag()?),
                "training" => record.training = Some(flag()?),
                "causal_alignment" => {
                    record.causal_alignment = Some(match v.as_str() {
                        Some("top-left") => CausalAlignment::TopLeft,
                        Some("bottom-right") => CausalAlignment::BottomRight,
                        _ => return Err(wrong("\"top-left\" or \"bottom-right\"")),
                    })
                }
                "masked_rows" => {
                    record.masked_rows = Some(match v.as_str() {
                        Some("zeros") => MaskedRows::Zeros,
                        Some("keras-default") => MaskedRows::KerasDefault,
                        _ => return Err(wrong("\"zeros\" or \"keras-default\"")),
                    })
                }
                "seed" => {
                    record.seed = match v {
                        Value::Null => None,
                        v => Some(v.as_u64().ok_or_else(|| wrong("a non-negative integer or null"))?),
                    }
                }
                "cache_update_index" => {
                    record.cache_update_index = match v {
                        Value::Null => None,
                        v => Some(v.as_u64().ok_or_else(|| wrong("a non-negative integer or null"))? as usize),
                    }
                }
                other => {
                    return Err(bad(format!(
                        "unknown call option {other:?} (known: use_causal_mask, causal_alignment, masked_rows, \
                         return_attention_scores, training, seed, cache_update_index)"
                    )));
                }
            }
        }
        Ok(record)
    }

    /// The record of every option of `options` (masks are tensors of their own, not recorded here).
    pub fn of(options: &CallOptions) -> Self {
        Self {
            use_causal_mask: Some(options.use_causal_mask),
            causal_alignment: Some(options.causal_alignment),
            masked_rows: Some(options.masked_rows),
            return_attention_scores: Some(options.return_attention_scores),
            training: Some(options.training),
            seed: options.dropout_seed,
            cache_update_index: None,
        }
    }

    /// The JSON of the `call` entry: the options recorded (`seed` as null when `training` is
    /// recorded and the seed is not).
    pub fn to_json(&self) -> String {
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_string(), v);
            }
        };
        put("use_causal_mask", self.use_causal_mask.map(Value::Bool));
        put("causal_alignment", self.causal_alignment.map(|a| json!(alignment_name(a))));
        put("masked_rows", self.masked_rows.map(|r| json!(masked_rows_name(r))));
        put("return_attention_scores", self.return_attention_scores.map(Value::Bool));
        put("training", self.training.map(Value::Bool));
        put("seed", self.seed.map(|s| json!(s)).or(self.training.map(|_| Value::Null)));
        put("cache_update_index", self.cache_update_index.map(|i| json!(i)));
        Value::Object(m).to_string()
    }

    /// Sets in `options` every option the record holds; the others are left as they are.
    pub fn apply(&self, options: &mut CallOptions) {
        if let Some(v) = self.use_causal_mask {
            options.use_causal_mask = v;
        }
        if let Some(v) = self.causal_alignment {
            options.causal_alignment = v;
        }
        if let Some(v) = self.masked_rows {
            options.masked_rows = v;
        }
        if let Some(v) = self.return_attention_scores {
            options.return_attention_scores = v;
        }
        if let Some(v) = self.training {
            options.training = v;
        }
        if let Some(v) = self.seed {
            options.dropout_seed = Some(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_gqa_run_writes_and_round_trips() {
        let options = CallOptions {
            use_causal_mask: true,
            causal_alignment: CausalAlignment::BottomRight,
            masked_rows: MaskedRows::KerasDefault,
            return_attention_scores: true,
            training: true,
            dropout_seed: Some(9),
            ..Default::default()
        };
        let record = CallRecord::of(&options);
        let parsed = CallRecord::parse("f", &record.to_json()).unwrap();
        assert_eq!(parsed, record);
        let mut applied = CallOptions::default();
        parsed.apply(&mut applied);
        assert_eq!(applied, options);
    }

    #[test]
    fn parses_the_fixtures_record_and_leaves_the_rest() {
        let r = CallRecord::parse("f", r#"{"use_causal_mask": true}"#).unwrap();
        assert_eq!(r, CallRecord { use_causal_mask: Some(true), ..Default::default() });
        let mut o = CallOptions { masked_rows: MaskedRows::KerasDefault, ..Default::default() };
        r.apply(&mut o);
        assert!(o.use_causal_mask && o.masked_rows == MaskedRows::KerasDefault);
        let null_seed = CallRecord::parse("f", r#"{"training": false, "seed": null}"#).unwrap();
        assert_eq!((null_seed.training, null_seed.seed), (Some(false), None));
    }

    #[test]
    fn rejects_what_it_cannot_apply() {
        for (text, says) in [
            (r#"{"use_causal_mask": "yes"}"#, "use_causal_mask: expected true or false"),
            (r#"{"causal_alignment": "diagonal"}"#, "causal_alignment"),
            (r#"{"masked_rows": 1}"#, "masked_rows"),
            (r#"{"seed": -1}"#, "seed"),
            (r#"{"sliding_window": 4}"#, "unknown call option \"sliding_window\""),
            (r#"[true]"#, "expected a JSON object"),
            ("{", "not valid JSON"),
        ] {
            let e = CallRecord::parse("in.safetensors", text).unwrap_err().to_string();
            assert!(e.contains("in.safetensors") && e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn reads_the_metadata_of_a_tensor_file() {
        let mut tf = TensorFile::new("x.safetensors");
        assert_eq!(CallRecord::from_tensor_file(&tf).unwrap(), None);
        tf.metadata.insert(CALL_KEY.into(), r#"{"return_attention_scores": true}"#.into());
        let r = CallRecord::from_tensor_file(&tf).unwrap().unwrap();
        assert_eq!(r.return_attention_scores, Some(true));
    }
}
