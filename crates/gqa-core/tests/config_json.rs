//! Keras config JSON: the bare `get_config()` dict or the serialized layer's envelope, and unknown
//! keys logged as warnings (or, on request, rejected).

use std::sync::Mutex;

use gqa_core::{GqaConfig, GqaError, UnknownKeys};

static RECORDS: Mutex<Vec<(log::Level, String, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let entry = (record.level(), record.target().to_string(), record.args().to_string());
        RECORDS.lock().unwrap().push(entry);
    }

    fn flush(&self) {}
}

/// The warnings logged while `f` runs (one test of this binary logs, so none interleave).
fn warnings_of<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&Capture).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
    RECORDS.lock().unwrap().clear();
    let out = f();
    let records = RECORDS.lock().unwrap().drain(..).collect::<Vec<_>>();
    let warnings = records
        .into_iter()
        .filter(|(level, target, _)| *level == log::Level::Warn && target == "gqa_core::config")
        .map(|(_, _, message)| message)
        .collect();
    (out, warnings)
}

const BARE: &str =
    r#"{"name": "attn", "head_dim": 8, "num_query_heads": 4, "num_key_value_heads": 2, "use_gate": true}"#;

fn envelope(class_name: &str, config: &str) -> String {
    format!(
        r#"{{"module": "keras.layers", "class_name": "{class_name}", "config": {config}, "registered_name": null,
            "build_config": {{"shapes_dict": {{"query_shape": [null, 3, 6], "value_shape": [null, 4, 6]}}}}}}"#
    )
}

fn expected() -> GqaConfig {
    GqaConfig::new(8, 4, 2).with_name("attn").with_gate(true)
}

#[test]
fn the_envelope_and_the_bare_config_read_the_same() {
    assert_eq!(GqaConfig::from_keras_json(BARE).unwrap(), expected());
    for class in ["GroupQueryAttention", "GroupedQueryAttention"] {
        let text = envelope(class, BARE);
        assert_eq!(GqaConfig::from_keras_json(&text).unwrap(), expected(), "{class}");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(GqaConfig::from_keras_value(&value).unwrap(), expected(), "{class}");
        // The full round trip through what this crate writes.
        let ours = envelope(class, &expected().to_keras_json());
        assert_eq!(GqaConfig::from_keras_json(&ours).unwrap(), expected());
    }
}

#[test]
fn other_classes_and_envelopes_without_config_are_errors() {
    let err = GqaConfig::from_keras_json(&envelope("MultiHeadAttention", BARE)).unwrap_err();
    assert!(matches!(&err, GqaError::Json(m) if m.contains("MultiHeadAttention")), "{err}");
    let err = GqaConfig::from_keras_json(r#"{"class_name": "GroupQueryAttention"}"#).unwrap_err();
    assert!(matches!(&err, GqaError::Json(m) if m.contains("no `config`")), "{err}");
    // The envelope's config is validated like a bare one.
    let bad = r#"{"head_dim": 8, "num_query_heads": 4, "num_key_value_heads": 3}"#;
    let err = GqaConfig::from_keras_json(&envelope("GroupQueryAttention", bad)).unwrap_err();
    assert!(matches!(err, GqaError::HeadsDoNotDivide { .. }), "{err}");
}

#[test]
fn unknown_keys_are_rejected_or_logged() {
    let with_new_keys = r#"{"name": "attn", "head_dim": 8, "num_query_heads": 4, "num_key_value_heads": 2,
        "use_gate": true, "flash_attention": null, "some_new_option": 3}"#;
    for text in [with_new_keys.to_string(), envelope("GroupQueryAttention", with_new_keys)] {
        // Rejected on request, naming the key.
        let err = GqaConfig::from_keras_json_with(&text, UnknownKeys::Reject).unwrap_err();
        assert!(err.to_string().contains("flash_attention"), "{err}");
        let err =
            GqaConfig::from_keras_value_with(&serde_json::from_str(&text).unwrap(), UnknownKeys::Reject).unwrap_err();
        assert!(err.to_string().contains("flash_attention"), "{err}");
        // Logged by default.
        let (parsed, warnings) = warnings_of(|| GqaConfig::from_keras_json(&text));
        assert_eq!(parsed.unwrap(), expected());
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        for key in ["flash_attention", "some_new_option"] {
            assert!(warnings.iter().any(|w| w.contains(&format!("`{key}`")) && w.contains("\"attn\"")), "{warnings:?}");
        }
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let (parsed, warnings) = warnings_of(|| GqaConfig::from_keras_value(&value));
        assert_eq!((parsed.unwrap(), warnings.len()), (expected(), 2));
    }
    // Known keys give no warning; bad values stay errors when warning.
    let (parsed, warnings) = warnings_of(|| GqaConfig::from_keras_json_with(BARE, UnknownKeys::Warn));
    assert_eq!((parsed.unwrap(), warnings), (expected(), Vec::<String>::new()));
    let bad = r#"{"head_dim": 8, "num_query_heads": 4, "num_key_value_heads": 2, "use_gate": 3, "x": 1}"#;
    assert!(matches!(GqaConfig::from_keras_json_with(bad, UnknownKeys::Warn), Err(GqaError::Json(_))));
    assert_eq!(UnknownKeys::default(), UnknownKeys::Warn);
}
