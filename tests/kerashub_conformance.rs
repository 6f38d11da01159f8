//! The oracle against KerasHub's real attention layers: every fixture of
//! `tests/fixtures/kerashub` (written by `tools/kerashub_fixtures.py` from keras-hub 0.32.0),
//! elementwise with atol 1e-5, rtol 1e-4.
//!
//! - `expected.output` / `expected.cache`: KerasHub's non-fused path (numpy backend), our default
//!   `MaskedRows::Zeros`;
//! - `jax.output` / `jax.cache` (Llama, Mistral, Qwen3 without a window): JAX's fused path,
//!   `MaskedRows::KerasDefault`;
//! - cached chains: each call again with the cache our own previous call returned, so a chain is
//!   equal token by token without KerasHub's caches in between;
//! - the GPU (every adapter, outputs poisoned first): every fixture under both policies, KerasHub's
//!   cached calls included (and the chains again with the GPU's own caches in between).

mod common;
mod kerashub_common;

use common::{adapter_name, adapters};
use gqa::core::MaskedRows;
use gqa::core::kerashub::{KerasHubCache, KerasHubCall, KerasHubClass, KerasHubOutput};
use kerashub_common::{Case, call_of, cases, chains, check, gpu_layer, run};

#[test]
fn the_fixtures_cover_every_class_cached_and_uncached() {
    let all = cases();
    for class in KerasHubClass::ALL {
        let of: Vec<&Case> = all.iter().filter(|c| c.layer.spec().class == class).collect();
        assert!(of.iter().any(|c| c.inputs.cache.is_none()), "{class}: no uncached fixture");
        assert!(of.iter().any(|c| c.inputs.cache.is_some()), "{class}: no cached fixture");
    }
    assert!(all.iter().any(|c| c.tf.get("jax.output").is_some()), "no fixture with JAX's outputs");
}

#[test]
fn oracle_matches_every_kerashub_fixture() {
    for case in cases() {
        let got = run(&case, case.inputs.cache.as_ref(), MaskedRows::Zeros);
        check(&format!("{} (oracle)", case.name), &case, &got, "expected.");
        if case.tf.get("jax.output").is_some() {
            let got = run(&case, case.inputs.cache.as_ref(), MaskedRows::KerasDefault);
            check(&format!("{} (oracle, keras-default)", case.name), &case, &got, "jax.");
        }
    }
}

/// Runs every chain with `call` (given the chain's first call, it returns the function that makes
/// one call), each call fed the cache the previous call returned, against KerasHub's outputs.
fn chain_own_caches<F: Fn(&Case, Option<&KerasHubCache>) -> KerasHubOutput>(who: &str, call: impl Fn(&Case) -> F) {
    let chains = chains();
    assert!(chains.len() >= 6, "only {} cached chains", chains.len());
    for (chain, steps) in chains {
        let one = call(&steps[0]);
        let mut cache = steps[0].inputs.cache.clone();
        for (step, case) in steps.iter().enumerate() {
            let got = one(case, cache.as_ref());
            check(&format!("chain {chain} step {step} ({}, {who})", case.name), case, &got, "expected.");
            cache = got.cache;
        }
    }
}

#[test]
fn oracle_chains_its_own_caches() {
    chain_own_caches("oracle", |_| |case: &Case, cache: Option<&KerasHubCache>| run(case, cache, MaskedRows::Zeros));
}

#[test]
fn gpu_matches_every_kerashub_fixture() {
    let all = cases();
    for ctx in adapters() {
        let name = adapter_name(ctx);
        for case in &all {
            let gpu = gpu_layer(ctx, case);
            let cache = case.inputs.cache.as_ref();
            let got =
                gpu.call(&call_of(case, cache, MaskedRows::Zeros)).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            check(&format!("{} ({name})", case.name), case, &got, "expected.");
            if case.tf.get("jax.output").is_some() {
                let got = gpu
                    .call(&call_of(case, cache, MaskedRows::KerasDefault))
                    .unwrap_or_else(|e| panic!("{}: {e}", case.name));
                check(&format!("{} ({name}, keras-default)", case.name), case, &got, "jax.");
            }
        }
    }
}

#[test]
fn gpu_chains_its_own_caches() {
    let ctx = &adapters()[0];
    chain_own_caches("GPU", |first| {
        let gpu = gpu_layer(ctx, first);
        move |case: &Case, cache: Option<&KerasHubCache>| {
            gpu.call(&call_of(case, cache, MaskedRows::Zeros)).unwrap_or_else(|e| panic!("{}: {e}", case.name))
        }
    });
}

/// A layer whose dtype policy is `mixed_float16` runs in f16 (f16 storage, f32 accumulation) where
/// the adapter has `SHADER_F16`: every fixture's layer and mask, uncached and cached (its cache in
/// f16, as Keras keeps it; heads a multiple of 4), on its input scaled by 1/4 (the fixtures' scores
/// are made large, up to ~10, so that the soft caps bite: f16 storage of Q and K then errs by ~1e-2
/// in a logit), against the oracle at the f16 tolerance: the output and the returned cache.
#[test]
fn f16_layers_match_the_oracle_at_the_f16_tolerance() {
    let all = cases();
    let f16 = |c: &&gqa::gpu::GpuContext| c.device().features().contains(gqa::wgpu::Features::SHADER_F16);
    assert!(adapters().iter().any(|c| f16(&c)), "no adapter with SHADER_F16 (lavapipe has it)");
    for ctx in adapters().iter().filter(f16) {
        let name = adapter_name(ctx);
        let mut cached = 0;
        for case in all.iter().filter(|c| c.inputs.cache.is_none() || c.layer.spec().config.head_dim % 4 == 0) {
            let l = &case.layer;
            let mut spec = l.spec().clone();
            spec.config.dtype = "mixed_float16".into();
            let gpu = gqa::gpu::KerasHubLayer::new(ctx, spec, l.weights(), l.extension_weights())
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!(gpu.layer().precision(), gqa::core::Precision::F16, "{name}");
            let mut x = case.inputs.input.clone();
            x.data_mut().iter_mut().for_each(|v| *v *= 0.25);
            let call = KerasHubCall { input: &x, ..call_of(case, case.inputs.cache.as_ref(), MaskedRows::Zeros) };
            let want = case.layer.call(&call).unwrap();
            let got = gpu.call(&call).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let what = format!("{} ({name}, f16)", case.name);
            common::assert_close(&what, got.output.data(), want.output.data(), common::F16);
            assert_eq!(got.cache.is_some(), want.cache.is_some(), "{what}");
            if let (Some(g), Some(w)) = (&got.cache, &want.cache) {
                common::assert_close(&format!("{what}: keys"), g.keys.data(), w.keys.data(), common::F16);
                common::assert_close(&format!("{what}: values"), g.values.data(), w.values.data(), common::F16);
                cached += 1;
            }
        }
        assert!(cached >= 6, "{name}: only {cached} cached fixtures in f16");
    }
}

/// The layers Keras itself saved (`<case>.keras` where the class's config round-trips, and
/// `<case>.weights.h5` with the config in `<case>.layer.json`) load as the same layers as the
/// safetensors fixtures: the same class, config and weights, bit for bit.
#[test]
fn keras_files_load_the_same_layers_as_safetensors() {
    use gqa_io::kerashub_keras::load_kerashub;
    let dir = kerashub_common::dir();
    let mut checked = 0;
    for case in cases() {
        let keras = dir.join(format!("{}.keras", case.name));
        let h5 = dir.join(format!("{}.weights.h5", case.name));
        let json = dir.join(format!("{}.layer.json", case.name));
        let class = case.layer.spec().class;
        let mut loaded = Vec::new();
        if keras.exists() {
            loaded.push(("keras", load_kerashub(&keras, None, None, None)));
        }
        if h5.exists() {
            loaded.push(("weights.h5", load_kerashub(&h5, Some(&json), Some(class), None)));
        }
        for (what, got) in loaded {
            let got = got.unwrap_or_else(|e| panic!("{} {what}: {e}", case.name)).expect("a KerasHub layer");
            let label = format!("{} ({what})", case.name);
            assert_eq!(&got.spec.config, &case.layer.spec().config, "{label}");
            assert_eq!(&got.spec.extensions, &case.layer.spec().extensions, "{label}");
            assert_eq!(&got.weights, case.layer.weights(), "{label}");
            assert_eq!(&got.extra, case.layer.extension_weights(), "{label}");
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} Keras files");
    // A bare config needs its class; a .keras without a KerasHub layer is none.
    let h5 = dir.join("gemma3_all.weights.h5");
    let json = dir.join("gemma3_all.layer.json");
    assert!(load_kerashub(&h5, Some(&json), None, None).unwrap().is_none());
    let gqa_keras = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras/keras_model.keras");
    assert!(load_kerashub(&gqa_keras, None, None, None).unwrap().is_none());
}
