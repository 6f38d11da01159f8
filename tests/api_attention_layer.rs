//! One call shape for every implementation of the layer: the same generic code, written against
//! `gqa_core::AttentionLayer`, runs the f64 oracle (`gqa_ref::ReferenceLayer`), the CPU layer
//! (`gqa_cpu::CpuLayer`) and the GPU layer
//! (`gqa_wgpu::GqaLayer`, on every adapter) and gets the same results; and `GqaLayer::from_keras_file`
//! loads the files Keras writes.

mod common;
mod keras_common;

use common::{F32, adapter_name, adapters, assert_close, gl_guard, random_mask, random_tensor, random_weights, rng};
use gqa::core::{
    AttentionCache, AttentionLayer, CacheContents, CallOptions, ForwardOutput, GqaConfig, HostTensor, LayerDims,
    MaskedRows,
};
use gqa::cpu::CpuLayer;
use gqa::gpu::{GqaLayer, LoadError};
use gqa::reference::ReferenceLayer;
use gqa_io::{IoError, LoadOptions};
use keras_common::{Fixture, path};

/// What the generic driver returns: a forward call, then a prefill and steps.
struct Run {
    forward: ForwardOutput,
    decoded: Vec<HostTensor>,
    lengths: Vec<usize>,
    cache: CacheContents,
}

/// The application code under test: written once, for any implementation of the layer. One
/// forward call with `options`, then the same sequence decoded through a KV cache: a prefill of
/// `prompt` tokens, then one step per `steps` window.
fn drive<L: AttentionLayer>(
    layer: &L,
    query: &HostTensor,
    value: &HostTensor,
    key: Option<&HostTensor>,
    options: &CallOptions,
    prompt: usize,
    steps: &[usize],
) -> Result<Run, L::Error> {
    let forward = layer.forward(query, value, key, options)?;
    let (batch, len) = (query.shape()[0], query.shape()[1]);
    let mut cache = layer.new_cache(batch, len)?;
    let window = |x: &HostTensor, from: usize, to: usize| x.time_slice(from..to);
    let (q, v) = (window(query, 0, prompt)?, window(value, 0, prompt)?);
    let k = key.map(|k| window(k, 0, prompt)).transpose()?;
    let mut decoded = vec![layer.prefill(&mut cache, &q, &v, k.as_ref(), None)?];
    let mut at = prompt;
    for &n in steps {
        let (q, v) = (window(query, at, at + n)?, window(value, at, at + n)?);
        let k = key.map(|k| window(k, at, at + n)).transpose()?;
        decoded.push(layer.step(&mut cache, &q, &v, k.as_ref())?);
        at += n;
    }
    Ok(Run { forward, decoded, lengths: cache.lengths().to_vec(), cache: layer.read_cache(&cache)? })
}

fn config() -> GqaConfig {
    GqaConfig::new(8, 4, 2).with_gate(true).with_sliding_window(5)
}

fn dims() -> LayerDims {
    LayerDims { query_dim: 12, key_dim: 10, value_dim: 9 }
}

#[test]
fn one_generic_driver_gives_the_same_results_on_the_oracle_and_every_adapter() {
    let (b, t) = (2, 9);
    let config = config();
    let weights = random_weights(&config, dims(), 3);
    let mut r = rng(4);
    let query = random_tensor(&[b, t, 12], &mut r);
    let value = random_tensor(&[b, t, 9], &mut r);
    let key = random_tensor(&[b, t, 10], &mut r);
    let options = CallOptions::default()
        .with_causal_mask(true)
        .with_query_mask(random_mask(&[b, t], 0.8, 5))
        .with_attention_scores(true)
        .with_masked_rows(MaskedRows::Zeros);
    let steps = [1, 3, 1];
    let oracle = ReferenceLayer::new(config.clone(), weights.clone()).unwrap();
    let want = drive(&oracle, &query, &value, Some(&key), &options, 4, &steps).unwrap();
    assert_eq!(want.lengths, [t, t]);
    assert_eq!(want.decoded.iter().map(|o| o.shape()[1]).collect::<Vec<_>>(), [4, 1, 3, 1]);
    // The decoded rows are those of one causal call (the cached calls use no query mask).
    let causal = oracle.forward(&query, &value, Some(&key), &CallOptions::default().with_causal_mask(true)).unwrap();
    let joined = HostTensor::concat(&want.decoded, 1).unwrap();
    assert_close("oracle: decoded vs one causal call", joined.data(), causal.output.data(), F32);

    let cpu = CpuLayer::new(config.clone(), weights.clone()).unwrap();
    let on_cpu = drive(&cpu, &query, &value, Some(&key), &options, 4, &steps).unwrap();
    let mut runs = vec![("CPU layer".to_string(), on_cpu)];
    for ctx in adapters() {
        let _gl = gl_guard(ctx);
        let gpu = GqaLayer::new(ctx, &config, &weights).unwrap();
        assert_eq!((AttentionLayer::config(&gpu), AttentionLayer::dims(&gpu)), (oracle.config(), oracle.dims()));
        runs.push((adapter_name(ctx), drive(&gpu, &query, &value, Some(&key), &options, 4, &steps).unwrap()));
    }
    for (name, got) in runs {
        assert_close(&format!("{name}: forward output"), got.forward.output.data(), want.forward.output.data(), F32);
        let (got_scores, want_scores) = (got.forward.scores.unwrap(), want.forward.scores.as_ref().unwrap().clone());
        assert_eq!(got_scores.shape(), want_scores.shape());
        assert_close(&format!("{name}: forward scores"), got_scores.data(), want_scores.data(), F32);
        assert_eq!(got.decoded.len(), want.decoded.len());
        for (i, (g, w)) in got.decoded.iter().zip(&want.decoded).enumerate() {
            assert_eq!(g.shape(), w.shape(), "{name}: call {i}");
            assert_close(&format!("{name}: cached call {i}"), g.data(), w.data(), F32);
        }
        assert_eq!(got.lengths, want.lengths, "{name}");
        assert_eq!(got.cache.lengths, want.cache.lengths, "{name}");
        assert_close(&format!("{name}: cached keys"), got.cache.keys.data(), want.cache.keys.data(), F32);
        assert_close(&format!("{name}: cached values"), got.cache.values.data(), want.cache.values.data(), F32);
    }
}

/// Decodes the last `tail` tokens with a cache first filled by another implementation.
fn continue_from<L: AttentionLayer>(
    layer: &L,
    contents: &CacheContents,
    capacity: usize,
    query: &HostTensor,
    value: &HostTensor,
) -> Result<HostTensor, L::Error> {
    let mut cache = layer.new_cache(contents.lengths.len(), capacity)?;
    layer.load_cache(&mut cache, contents)?;
    let at = cache.lengths()[0];
    let out = layer.step(&mut cache, &query.time_slice(at..at + 1)?, &value.time_slice(at..at + 1)?, None)?;
    // Roll back the step: the cache holds the loaded tokens again.
    cache.truncate(at)?;
    assert_eq!(cache.lengths(), contents.lengths);
    Ok(out)
}

#[test]
fn a_cache_moves_between_implementations() {
    let (b, t) = (1, 6);
    let config = GqaConfig::new(4, 4, 1);
    let dims = LayerDims { query_dim: 8, key_dim: 8, value_dim: 8 };
    let weights = random_weights(&config, dims, 7);
    let mut r = rng(8);
    let (query, value) = (random_tensor(&[b, t, 8], &mut r), random_tensor(&[b, t, 8], &mut r));
    let oracle = ReferenceLayer::new(config.clone(), weights.clone()).unwrap();
    let mut cache = oracle.new_cache(b, t).unwrap();
    let (q, v) = (query.time_slice(..5).unwrap(), value.time_slice(..5).unwrap());
    oracle.prefill(&mut cache, &q, &v, None, None).unwrap();
    let filled = oracle.read_cache(&cache).unwrap();
    let want = continue_from(&oracle, &filled, t, &query, &value).unwrap();
    let cpu = CpuLayer::new(config.clone(), weights.clone()).unwrap();
    let got = continue_from(&cpu, &filled, t, &query, &value).unwrap();
    assert_close("CPU layer: step after a loaded cache", got.data(), want.data(), F32);
    for ctx in adapters() {
        let _gl = gl_guard(ctx);
        let gpu = GqaLayer::new(ctx, &config, &weights).unwrap();
        let got = continue_from(&gpu, &filled, t, &query, &value).unwrap();
        assert_close(&format!("{}: step after a loaded cache", adapter_name(ctx)), got.data(), want.data(), F32);
    }
}

#[test]
fn the_trait_errors_are_each_implementations_errors() {
    let oracle =
        ReferenceLayer::random(GqaConfig::new(4, 2, 1), LayerDims { query_dim: 4, key_dim: 4, value_dim: 4 }, 1)
            .unwrap();
    let x = HostTensor::zeros([1, 2, 4]);
    let mut cache = oracle.new_cache(1, 4).unwrap();
    let err = oracle.step(&mut cache, &x, &x, None).unwrap_err();
    assert!(matches!(err, gqa::core::GqaError::CacheEmpty { .. }), "{err}");
    // A reference layer checks its weights against its config.
    let weights = random_weights(&GqaConfig::new(4, 2, 1), LayerDims { query_dim: 4, key_dim: 4, value_dim: 4 }, 1);
    assert!(ReferenceLayer::new(GqaConfig::new(4, 2, 1).with_gate(true), weights).is_err());
    for ctx in adapters() {
        let _gl = gl_guard(ctx);
        let gpu = GqaLayer::new(ctx, oracle.config(), &oracle.weights).unwrap();
        let mut cache = AttentionLayer::new_cache(&gpu, 1, 4).unwrap();
        let err = AttentionLayer::step(&gpu, &mut cache, &x, &x, None).unwrap_err();
        assert!(matches!(err, gqa::gpu::GpuError::Invalid(gqa::core::GqaError::CacheEmpty { .. })), "{err}");
    }
}

/// `from_keras_file` of `file` (with `options`) on every adapter runs like Keras on the fixture.
fn assert_loads_like_keras(file: &str, options: &LoadOptions<'_>, fixture: &str) {
    let f = Fixture::load(fixture);
    let i = &f.inputs;
    let call = f.options(MaskedRows::Zeros, true);
    for ctx in adapters() {
        let _gl = gl_guard(ctx);
        let layer = GqaLayer::from_keras_file_with(ctx, path(file), options)
            .unwrap_or_else(|e| panic!("{file} on {}: {e}", adapter_name(ctx)));
        assert_eq!((layer.config(), layer.dims()), (&f.layer.config, f.layer.dims), "{file}");
        let got = layer.forward(&i.query, &i.value, i.key.as_ref(), &call).unwrap();
        assert_close(&format!("{file} ({})", adapter_name(ctx)), got.output.data(), f.output.data(), F32);
    }
}

#[test]
fn from_keras_file_reads_keras_archives_weights_h5_and_safetensors() {
    assert_loads_like_keras(
        "keras_model.keras",
        &LoadOptions { layer_name: Some("attn_in_model"), ..Default::default() },
        "keras_model",
    );
    let config = path("keras_weights_h5.model.json");
    assert_loads_like_keras(
        "keras_weights_h5.weights.h5",
        &LoadOptions { config: Some(&config), ..Default::default() },
        "keras_weights_h5",
    );
    assert_loads_like_keras("gqa_self.safetensors", &LoadOptions::default(), "gqa_self");
    // The plain form: one layer in the file, nothing else to say.
    let ctx = &adapters()[0];
    let _gl = gl_guard(ctx);
    let layer = GqaLayer::from_keras_file(ctx, path("mqa.safetensors")).unwrap();
    assert_eq!(layer.config(), &Fixture::load("mqa").layer.config);
}

#[test]
fn from_keras_file_errors_name_the_file() {
    let ctx = &adapters()[0];
    let _gl = gl_guard(ctx);
    let err = GqaLayer::from_keras_file(ctx, path("keras_model.keras")).unwrap_err();
    assert!(matches!(err, LoadError::Io(IoError::AmbiguousLayer { .. })), "{err}");
    assert!(err.to_string().contains("keras_model.keras"), "{err}");
    let err = GqaLayer::from_keras_file(ctx, path("keras_weights_h5.weights.h5")).unwrap_err();
    assert!(matches!(err, LoadError::Io(IoError::NoConfig { .. })), "{err}");
    let err = GqaLayer::from_keras_file(ctx, path("no_such_file.keras")).unwrap_err();
    assert!(matches!(err, LoadError::Io(_)) && err.to_string().contains("no_such_file.keras"), "{err}");
}
