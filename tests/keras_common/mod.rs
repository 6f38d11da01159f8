//! The Keras conformance fixtures (`tests/fixtures/keras/*.safetensors`, written by
//! `tools/keras_fixtures.py` from the real layer): each holds a layer, a call's inputs and Keras'
//! outputs.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::path::{Path, PathBuf};

use gqa::core::{CallOptions, HostTensor, MaskedRows};
use gqa_io::{CallInputs, KerasLayer, TensorFile};

/// The fixture folder.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras")
}

/// A path in the fixture folder.
pub fn path(name: &str) -> PathBuf {
    dir().join(name)
}

/// One case: Keras' layer, its call and what Keras returned.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The case's name (its file stem).
    pub name: String,
    /// What it covers.
    pub description: String,
    /// The layer (config, dims, weights).
    pub layer: KerasLayer,
    /// query, value, key, masks.
    pub inputs: CallInputs,
    /// `use_causal_mask` of the call.
    pub causal: bool,
    /// Keras' output with `return_attention_scores=True` (fully masked rows: zeros).
    pub output: HostTensor,
    /// Keras' output of the plain call (fully masked rows: uniform average).
    pub output_default_call: HostTensor,
    /// Keras' attention scores.
    pub scores: HostTensor,
}

impl Fixture {
    /// Reads `<name>.safetensors`.
    pub fn load(name: &str) -> Fixture {
        let file = path(&format!("{name}.safetensors"));
        let tf = TensorFile::read(&file).unwrap_or_else(|e| panic!("{e}"));
        let layer = gqa_io::layer_from_tensor_file(&tf, None, None).unwrap_or_else(|e| panic!("{e}"));
        let inputs = CallInputs::from_tensor_file(&tf).unwrap_or_else(|e| panic!("{e}"));
        let call: serde_json::Value = serde_json::from_str(&tf.metadata["call"]).unwrap();
        let tensor = |n: &str| tf.f32(n, "fixture output").unwrap_or_else(|e| panic!("{e}"));
        Fixture {
            name: name.into(),
            description: tf.metadata.get("description").cloned().unwrap_or_default(),
            layer,
            inputs,
            causal: call["use_causal_mask"].as_bool().unwrap(),
            output: tensor("output"),
            output_default_call: tensor("output_default_call"),
            scores: tensor("scores"),
        }
    }

    /// Every fixture, by name.
    pub fn all() -> Vec<Fixture> {
        let mut names: Vec<String> = std::fs::read_dir(dir())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".safetensors").map(str::to_string))
            .collect();
        names.sort();
        names.iter().map(|n| Fixture::load(n)).collect()
    }

    /// The call's options with this masked-rows policy, asking for scores or not.
    pub fn options(&self, masked_rows: MaskedRows, scores: bool) -> CallOptions {
        let mut o = CallOptions {
            use_causal_mask: self.causal,
            return_attention_scores: scores,
            masked_rows,
            ..Default::default()
        };
        self.inputs.apply_masks(&mut o);
        o
    }
}
