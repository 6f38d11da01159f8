//! Layer files whose config has keys this version does not know (a newer Keras' arguments) load,
//! each unknown key logged as a warning.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use gqa_io::{LoadOptions, TensorFile, load_layer, parse_layer_json};
use serde_json::{Value, json};

static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() == log::Level::Warn
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            WARNINGS.lock().unwrap().push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

/// The warnings logged while `f` runs; the tests of this binary run one at a time through it.
fn warnings_of<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    static INSTALL: std::sync::Once = std::sync::Once::new();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    INSTALL.call_once(|| {
        log::set_logger(&Capture).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
    });
    WARNINGS.lock().unwrap().clear();
    let out = f();
    (out, WARNINGS.lock().unwrap().drain(..).collect())
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/keras").join(name)
}

#[test]
fn a_model_json_with_new_arguments_loads_with_warnings() {
    let model = json!({"class_name": "Functional", "config": {"layers": [
        {"class_name": "GroupQueryAttention", "name": "attn",
         "config": {"name": "attn", "head_dim": 2, "num_query_heads": 2, "num_key_value_heads": 1,
                    "flash_attention": null},
         "build_config": {"shapes_dict": {"query_shape": [null, 3, 6], "value_shape": [null, 4, 6]}}}]}});
    let (entry, warnings) = warnings_of(|| parse_layer_json("model.json", &model.to_string(), None));
    let entry = entry.unwrap();
    assert_eq!((entry.config.name.as_str(), entry.config.head_dim), ("attn", 2));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("`flash_attention`") && warnings[0].contains("\"attn\""), "{warnings:?}");
    // Known keys only: no warning.
    let bare = json!({"head_dim": 2, "num_query_heads": 2, "num_key_value_heads": 1});
    let (entry, warnings) = warnings_of(|| parse_layer_json("bare.json", &bare.to_string(), None));
    assert!(entry.is_ok() && warnings.is_empty(), "{warnings:?}");
}

#[test]
fn a_weights_h5_with_an_extended_config_loads_the_same_layer() {
    let h5 = fixture("keras_weights_h5.weights.h5");
    let tf = TensorFile::read(&fixture("keras_weights_h5.safetensors")).unwrap();
    let mut config: Value = serde_json::from_str(&tf.metadata["config"]).unwrap();
    let dir = std::env::temp_dir().join(format!("gqa-io-unknown-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plain = dir.join("plain.json");
    std::fs::write(&plain, config.to_string()).unwrap();
    config["some_new_option"] = 3.into();
    // The serialized layer's envelope, around the extended config.
    let extended = dir.join("extended.json");
    let envelope = json!({"module": "keras.layers", "class_name": "GroupQueryAttention", "config": config});
    std::fs::write(&extended, envelope.to_string()).unwrap();

    let want = load_layer(&h5, &LoadOptions { config: Some(&plain), ..Default::default() }).unwrap();
    let (got, warnings) =
        warnings_of(|| load_layer(&h5, &LoadOptions { config: Some(&extended), ..Default::default() }));
    assert_eq!(got.unwrap(), want);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("`some_new_option`"), "{warnings:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
