//! The KerasHub fixtures (`tests/fixtures/kerashub/*.safetensors`, written by
//! `tools/kerashub_fixtures.py` from keras-hub 0.32.0): each holds a layer, one call's inputs and
//! KerasHub's outputs (`expected.*`, and JAX's `jax.*` where the class takes the fused path there).

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{F32, assert_close};
use gqa::core::MaskedRows;
use gqa::core::kerashub::{KerasHubCache, KerasHubCall, KerasHubOutput};
use gqa::reference::KerasHubLayer;
use gqa_io::TensorFile;
use gqa_io::kerashub::{KerasHubInputs, kerashub_layer_from_tensor_file, read_cache};

/// One fixture: the layer, the call and what KerasHub returned.
pub struct Case {
    /// The file stem.
    pub name: String,
    /// The file.
    pub tf: TensorFile,
    /// The layer on the oracle.
    pub layer: KerasHubLayer,
    /// The call's arguments.
    pub inputs: KerasHubInputs,
}

/// The fixture folder.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kerashub")
}

/// Every fixture, in name order.
pub fn cases() -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("tests/fixtures/kerashub")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let tf = TensorFile::read(&path).unwrap_or_else(|e| panic!("{e}"));
            let file = kerashub_layer_from_tensor_file(&tf).unwrap_or_else(|e| panic!("{e}"));
            let layer =
                KerasHubLayer::new(file.spec, file.weights, file.extra).unwrap_or_else(|e| panic!("{name}: {e}"));
            let inputs = KerasHubInputs::from_tensor_file(&tf, layer.spec().class).unwrap_or_else(|e| panic!("{e}"));
            Case { name, tf, layer, inputs }
        })
        .collect()
}

/// The case's call with `cache` and the masked-row policy.
pub fn call_of<'a>(case: &'a Case, cache: Option<&'a KerasHubCache>, policy: MaskedRows) -> KerasHubCall<'a> {
    let i = &case.inputs;
    KerasHubCall {
        input: &i.input,
        attention_mask: i.attention_mask.as_ref(),
        cache,
        cache_update_index: i.record.cache_update_index,
        cache_update_mask: i.cache_update_mask.as_ref(),
        masked_rows: policy,
    }
}

/// The fixtures' cached chains (metadata `chain`), by name, each call in order (`chain_step`).
pub fn chains() -> BTreeMap<String, Vec<Case>> {
    let mut chains: BTreeMap<String, Vec<(usize, Case)>> = BTreeMap::new();
    for case in cases() {
        if let Some(chain) = case.tf.metadata.get("chain").cloned() {
            let step = case.tf.metadata["chain_step"].parse::<usize>().unwrap();
            chains.entry(chain).or_default().push((step, case));
        }
    }
    chains
        .into_iter()
        .map(|(name, mut steps)| {
            steps.sort_by_key(|(s, _)| *s);
            (name, steps.into_iter().map(|(_, c)| c).collect())
        })
        .collect()
}

/// The case on the oracle.
pub fn run(case: &Case, cache: Option<&KerasHubCache>, policy: MaskedRows) -> KerasHubOutput {
    case.layer.call(&call_of(case, cache, policy)).unwrap_or_else(|e| panic!("{}: {e}", case.name))
}

/// Compares a result with the file's outputs under `prefix` (`expected.`, `jax.`).
pub fn check(label: &str, case: &Case, got: &KerasHubOutput, prefix: &str) {
    let class = case.layer.spec().class;
    let want = case.tf.f32(&format!("{prefix}output"), "expected output").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.output.shape(), want.shape(), "{label}: output shape");
    assert_close(&format!("{label}: {prefix}output"), got.output.data(), want.data(), F32);
    let want_cache = read_cache(&case.tf, prefix, class).unwrap_or_else(|e| panic!("{e}"));
    match (&got.cache, want_cache) {
        (None, None) => {}
        (Some(g), Some(w)) => {
            assert_close(&format!("{label}: {prefix}cache keys"), g.keys.data(), w.keys.data(), F32);
            assert_close(&format!("{label}: {prefix}cache values"), g.values.data(), w.values.data(), F32);
        }
        (g, w) => panic!("{label}: cache returned {} but KerasHub's {}", g.is_some(), w.is_some()),
    }
}

/// The GPU form of a case's layer on `ctx`, outputs poisoned.
pub fn gpu_layer(ctx: &gqa::gpu::GpuContext, case: &Case) -> gqa::gpu::KerasHubLayer {
    let l = &case.layer;
    let mut gpu = gqa::gpu::KerasHubLayer::new(ctx, l.spec().clone(), l.weights(), l.extension_weights())
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    gpu.set_poison_outputs(true);
    gpu
}
