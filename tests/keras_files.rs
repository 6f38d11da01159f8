//! Reading what Keras writes (`.keras`, `.weights.h5` + config JSON, safetensors by Keras paths),
//! writing it back (safetensors export), and the errors on bad files.

mod common;
mod keras_common;

use std::path::{Path, PathBuf};

use common::{F32, adapters, assert_close};
use gqa::core::MaskedRows;
use gqa_io::{IoError, KerasLayer, LoadOptions, TensorFile, load_layer};
use keras_common::{Fixture, path};

/// A fresh scratch folder for one test.
fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gqa-keras-files-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn named<'a>(name: &'a str) -> LoadOptions<'a> {
    LoadOptions { layer_name: Some(name), ..Default::default() }
}

fn with_config(config: &Path) -> LoadOptions<'_> {
    LoadOptions { config: Some(config), ..Default::default() }
}

/// The layer of a fixture, and its output with the zeros policy from the oracle and every adapter
/// compared with Keras'.
fn assert_runs_like_keras(layer: &KerasLayer, f: &Fixture) {
    let i = &f.inputs;
    let options = f.options(MaskedRows::Zeros, true);
    let got =
        gqa::reference::forward(&layer.config, &layer.weights, &i.query, &i.value, i.key.as_ref(), &options).unwrap();
    assert_close(&format!("{} (oracle)", f.name), got.output.data(), f.output.data(), F32);
    for ctx in adapters() {
        let gpu = gqa::gpu::GqaLayer::new(ctx, &layer.config, &layer.weights).unwrap();
        let got = gpu.forward(&i.query, &i.value, i.key.as_ref(), &options).unwrap();
        assert_close(&format!("{} ({})", f.name, common::adapter_name(ctx)), got.output.data(), f.output.data(), F32);
    }
}

#[test]
fn keras_archive_finds_the_nested_layer_by_name() {
    let f = Fixture::load("keras_model");
    let layer = load_layer(&path("keras_model.keras"), &named("attn_in_model")).unwrap();
    assert_eq!(layer, f.layer, "the .keras layer differs from the one Keras exported to safetensors");
    // Dq/Dk/Dv come from build_config (a key of its own: Dk = 5).
    assert_eq!((layer.dims.query_dim, layer.dims.key_dim, layer.dims.value_dim), (6, 5, 6));
    assert_runs_like_keras(&layer, &f);

    let other = load_layer(&path("keras_model.keras"), &named("other_attention")).unwrap();
    assert_eq!(other.config.name, "other_attention");
    assert!(!other.config.use_bias && other.weights.query.bias.is_none());
    assert_eq!((other.config.num_query_heads, other.config.num_key_value_heads), (2, 1));
}

#[test]
fn keras_archive_with_two_layers_needs_a_name() {
    let file = path("keras_model.keras");
    let err = load_layer(&file, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, IoError::AmbiguousLayer { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("keras_model.keras") && msg.contains("attn_in_model") && msg.contains("other_attention"),
        "{msg}"
    );
    let err = load_layer(&file, &named("nope")).unwrap_err().to_string();
    assert!(err.contains("keras_model.keras") && err.contains("\"nope\"") && err.contains("attn_in_model"), "{err}");
}

#[test]
fn weights_h5_with_the_model_json_or_the_layer_config() {
    let f = Fixture::load("keras_weights_h5");
    let h5 = path("keras_weights_h5.weights.h5");
    let layer = load_layer(&h5, &with_config(&path("keras_weights_h5.model.json"))).unwrap();
    assert_eq!(layer, f.layer);
    assert_runs_like_keras(&layer, &f);

    // A bare get_config() JSON: the dims come from the weights.
    let dir = scratch("h5_bare");
    let bare = dir.join("layer.json");
    let tf = TensorFile::read(&path("keras_weights_h5.safetensors")).unwrap();
    std::fs::write(&bare, &tf.metadata["config"]).unwrap();
    assert_eq!(load_layer(&h5, &with_config(&bare)).unwrap(), f.layer);

    let err = load_layer(&h5, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, IoError::NoConfig { .. }), "{err}");
    assert!(err.to_string().contains("keras_weights_h5.weights.h5"), "{err}");
}

/// Loads `h5` with the fixture's layer config changed by `edit`; returns the error message.
fn h5_error(dir: &Path, edit: impl Fn(&mut serde_json::Value)) -> String {
    let tf = TensorFile::read(&path("keras_weights_h5.safetensors")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&tf.metadata["config"]).unwrap();
    edit(&mut cfg);
    let json = dir.join("edited.json");
    std::fs::write(&json, cfg.to_string()).unwrap();
    load_layer(&path("keras_weights_h5.weights.h5"), &with_config(&json)).unwrap_err().to_string()
}

#[test]
fn weights_h5_that_disagree_with_the_config() {
    let dir = scratch("h5_errors");
    let err = h5_error(&dir, |c| c["head_dim"] = 4.into());
    assert!(
        err.contains("keras_weights_h5.weights.h5")
            && err.contains("_query_dense/vars/0 (query/kernel)")
            && err.contains("[4, 2, 4]")
            && err.contains("[4, 2, 8]"),
        "{err}"
    );
    let err = h5_error(&dir, |c| c["use_bias"] = false.into());
    assert!(err.contains("_query_dense/vars/1 (query/bias)") && err.contains("use_bias=false"), "{err}");
    let err = h5_error(&dir, |c| c["use_gate"] = false.into());
    assert!(err.contains("_gate_dense/vars/0 (gate/kernel)") && err.contains("use_gate=false"), "{err}");
    let err = h5_error(&dir, |c| c["name"] = "renamed".into());
    assert!(err.contains("\"renamed\"") && err.contains("attn_h5"), "{err}");
}

/// Writes the fixture `name` changed by `edit` to a scratch file and loads it; returns the error.
fn st_error(dir: &Path, name: &str, edit: impl Fn(&mut TensorFile)) -> (String, IoError) {
    let mut tf = TensorFile::read(&path(&format!("{name}.safetensors"))).unwrap();
    edit(&mut tf);
    let file = dir.join(format!("{name}.safetensors"));
    tf.write(&file).unwrap();
    let err = load_layer(&file, &LoadOptions::default()).unwrap_err();
    (file.display().to_string(), err)
}

#[test]
fn safetensors_errors_name_the_file_the_tensor_and_the_shape() {
    let dir = scratch("st_errors");
    let tensor = |t: &[usize], v: &[f32]| gqa::core::HostTensor::new(t.to_vec(), v.to_vec()).unwrap();

    let (file, err) = st_error(&dir, "key_dims_differ", |tf| {
        tf.tensors.remove("kdd/key/bias");
    });
    assert!(matches!(err, IoError::MissingWeight { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&file) && msg.contains("kdd/key/bias") && msg.contains("[2, 2]"), "{msg}");

    let (file, err) =
        st_error(&dir, "key_dims_differ", |tf| tf.insert_f32("kdd/query/kernel", &tensor(&[5, 4, 3], &[0.0; 60])));
    let msg = err.to_string();
    assert!(matches!(err, IoError::WeightShape { .. }), "{err}");
    assert!(
        msg.contains(&file)
            && msg.contains("kdd/query/kernel")
            && msg.contains("[5, 4, 2]")
            && msg.contains("[5, 4, 3]"),
        "{msg}"
    );

    let (_, err) = st_error(&dir, "no_bias", |tf| tf.insert_f32("nobias/query/bias", &tensor(&[6, 2], &[0.0; 12])));
    assert!(err.to_string().contains("nobias/query/bias") && err.to_string().contains("use_bias=false"), "{err}");

    let (_, err) = st_error(&dir, "mha", |tf| tf.insert_f32("mha/query/bais", &tensor(&[3, 4], &[0.0; 12])));
    assert!(matches!(err, IoError::UnexpectedWeight { .. }) && err.to_string().contains("mha/query/bais"), "{err}");

    let (_, err) = st_error(&dir, "mha", |tf| {
        let k = tf.tensors["mha/key/kernel"].clone();
        let ints =
            gqa_io::StoredTensor::from_bytes(gqa_io::DType::I32, k.shape().to_vec(), k.bytes().to_vec()).unwrap();
        tf.tensors.insert("mha/key/kernel".into(), ints);
    });
    assert!(matches!(err, IoError::Dtype { .. }) && err.to_string().contains("mha/key/kernel"), "{err}");
}

#[test]
fn config_errors_unknown_initializer_other_class_no_config() {
    let dir = scratch("config_errors");
    let (file, err) = st_error(&dir, "mha", |tf| {
        let mut cfg: serde_json::Value = serde_json::from_str(&tf.metadata["config"]).unwrap();
        cfg["kernel_initializer"] = "bogus_init".into();
        tf.metadata.insert("config".into(), cfg.to_string());
    });
    assert!(matches!(err, IoError::Config { .. }), "{err}");
    assert!(err.to_string().contains(&file) && err.to_string().contains("bogus_init"), "{err}");

    let (file, err) = st_error(&dir, "mha", |tf| {
        let mha = r#"{"module": "keras.layers", "class_name": "MultiHeadAttention",
                      "config": {"name": "mha", "num_heads": 3, "key_dim": 4}}"#;
        tf.metadata.insert("config".into(), mha.into());
    });
    assert!(matches!(err, IoError::WrongClass { .. }), "{err}");
    assert!(err.to_string().contains(&file) && err.to_string().contains("MultiHeadAttention"), "{err}");

    let (file, err) = st_error(&dir, "mha", |tf| {
        tf.metadata.clear();
    });
    assert!(matches!(err, IoError::NoConfig { .. }) && err.to_string().contains(&file), "{err}");

    // A model config without any GroupQueryAttention layer.
    let json = dir.join("dense.json");
    std::fs::write(
        &json,
        r#"{"class_name": "Sequential", "config": {"layers": [
        {"class_name": "Dense", "name": "d", "config": {"name": "d", "units": 3}}]}}"#,
    )
    .unwrap();
    let err = load_layer(&path("keras_weights_h5.weights.h5"), &with_config(&json)).unwrap_err().to_string();
    assert!(err.contains("dense.json") && err.contains("no GroupQueryAttention") && err.contains("d (Dense)"), "{err}");
}

#[test]
fn unreadable_files() {
    let dir = scratch("unreadable");
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"\x10\0\0\0\0\0\0\0{not json}      ").unwrap();
    let err = load_layer(&junk, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, IoError::Format { .. }) && err.to_string().contains("junk.safetensors"), "{err}");
    let fake = dir.join("fake.keras");
    std::fs::write(&fake, b"PK not a zip").unwrap();
    let err = load_layer(&fake, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, IoError::Format { format: "zip", .. }), "{err}");
    let err = load_layer(&dir.join("layer.onnx"), &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, IoError::UnknownFileType { .. }), "{err}");
    let err = load_layer(&dir.join("missing.safetensors"), &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, IoError::Io { .. }) && err.to_string().contains("missing.safetensors"), "{err}");
    let err = gqa_io::CallInputs::read(&path("keras_model.keras")).unwrap_err();
    assert!(matches!(err, IoError::Format { .. }), "{err}");
    // Inputs without a value.
    let mut tf = TensorFile::read(&path("mha.safetensors")).unwrap();
    tf.tensors.remove("value");
    let err = gqa_io::CallInputs::from_tensor_file(&tf).unwrap_err().to_string();
    assert!(err.contains("mha.safetensors") && err.contains("\"value\""), "{err}");
}

#[test]
fn export_round_trip_gives_the_same_layer_and_bytes() {
    let dir = scratch("export");
    let mut layers: Vec<(String, KerasLayer)> = Fixture::all().into_iter().map(|f| (f.name, f.layer)).collect();
    layers.push(("from .keras".into(), load_layer(&path("keras_model.keras"), &named("attn_in_model")).unwrap()));
    for (name, layer) in layers {
        let file = dir.join(format!("{}.safetensors", name.replace(' ', "_")));
        gqa_io::export_safetensors(&layer, &file).unwrap();
        let back = load_layer(&file, &LoadOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(back, layer, "{name}: the exported layer reads back differently");
        let again = dir.join("again.safetensors");
        gqa_io::export_safetensors(&back, &again).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), std::fs::read(&again).unwrap(), "{name}: export is not byte-stable");
    }
}

#[test]
fn safetensors_layer_under_any_prefix() {
    let f = Fixture::load("gate");
    let mut tf = TensorFile::read(&path("gate.safetensors")).unwrap();
    let renamed: Vec<_> = std::mem::take(&mut tf.tensors)
        .into_iter()
        .map(|(k, v)| (k.strip_prefix("gated/").map_or(k.clone(), |r| format!("model/block_0/gated/{r}")), v))
        .collect();
    tf.tensors = renamed.into_iter().collect();
    assert_eq!(gqa_io::layer_from_tensor_file(&tf, None, None).unwrap(), f.layer);
    // No prefix at all.
    let mut bare = TensorFile::read(&path("gate.safetensors")).unwrap();
    bare.tensors = std::mem::take(&mut bare.tensors)
        .into_iter()
        .map(|(k, v)| (k.strip_prefix("gated/").map_or(k.clone(), str::to_string), v))
        .collect();
    assert_eq!(gqa_io::layer_from_tensor_file(&bare, None, None).unwrap(), f.layer);
}

/// Keras stores float16 weights as IEEE half and bfloat16 ones as a 2-byte opaque type with a
/// `dtype` attribute; both read back as the f32 weights rounded to that precision.
#[test]
fn weights_h5_in_float16_and_bfloat16() {
    let f = Fixture::load("keras_weights_h5");
    for (dtype, eps) in [("float16", 2f32.powi(-11)), ("bfloat16", 2f32.powi(-8))] {
        let h5 = path(&format!("keras_weights_h5_{dtype}.weights.h5"));
        let json = path(&format!("keras_weights_h5_{dtype}.layer.json"));
        let layer = load_layer(&h5, &with_config(&json)).unwrap_or_else(|e| panic!("{dtype}: {e}"));
        assert_eq!(layer.config.dtype, dtype);
        assert_eq!(layer.dims, f.layer.dims);
        let mut rounded = 0;
        for ((name, low), (_, full)) in layer.weights.named().into_iter().zip(f.layer.weights.named()) {
            assert_eq!(low.shape(), full.shape(), "{dtype} {name}");
            for (a, b) in low.data().iter().zip(full.data()) {
                assert!((a - b).abs() <= eps * b.abs(), "{dtype} {name}: {a} is not {b} rounded");
                rounded += usize::from(a != b);
            }
        }
        assert!(rounded > 0, "{dtype}: the weights were not stored in low precision");
    }
}
