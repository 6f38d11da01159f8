//! The library's own KV cache (`KvCache`: prefill, then steps) running KerasHub's layers, on every
//! adapter, equal token by token to KerasHub's cached chains (`tests/fixtures/kerashub/*_chain_*`:
//! a prompt written into a larger cache at index 0, then one-token steps and multi-token chunks,
//! each call attending over the whole cache under the decoder's causal mask): each call's output
//! against KerasHub's at 1e-5 / 1e-4, and the cache the library holds against KerasHub's stored
//! (rotated; Gemma's interleaved) keys and values.
//!
//! Mistral's window lives in its decoder's mask, not in the layer: the library's cache gets it as
//! the extensions' window (`KeyWindow::Symmetric(sliding_window)`), what the decoder's band keeps.

mod common;
mod kerashub_common;

use common::{F32, adapter_name, adapters, assert_close};
use gqa::core::HostTensor;
use gqa::core::extensions::KeyWindow;
use gqa::core::kerashub::KerasHubClass;
use kerashub_common::{Case, chains};

/// The chains a plain prefill-then-steps run reproduces: every call under the decoder's causal
/// mask from index 0 on, writing every token (Gemma 3's `generate()` chain writes selectively).
fn plain(chain: &[Case]) -> bool {
    chain.first().is_some_and(|c| c.inputs.record.cache_update_index == Some(0))
        && chain.iter().all(|c| c.inputs.cache_update_mask.is_none())
}

#[test]
fn kv_cache_decodes_every_kerashub_chain_token_by_token() {
    let chains = chains();
    let runnable: Vec<_> = chains.iter().filter(|(_, c)| plain(c)).collect();
    let classes: Vec<KerasHubClass> = runnable.iter().map(|(_, c)| c[0].layer.spec().class).collect();
    for class in KerasHubClass::ALL.into_iter().filter(|&c| c != KerasHubClass::Gemma3) {
        assert!(classes.contains(&class), "no plain chain of {class}");
    }
    for ctx in adapters() {
        let adapter = adapter_name(ctx);
        for (name, chain) in &runnable {
            let first = &chain[0];
            let l = &first.layer;
            let mut spec = l.spec().clone();
            if spec.class == KerasHubClass::Mistral {
                let w = spec.json["sliding_window"].as_u64().expect("Mistral's sliding_window") as usize;
                spec.extensions.window = Some(KeyWindow::Symmetric(w));
            }
            let layer = gqa::gpu::KerasHubLayer::new(ctx, spec, l.weights(), l.extension_weights())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let gpu = layer.layer();
            let cache0 = first.inputs.cache.as_ref().expect("a cached chain");
            let (batch, capacity) = (cache0.batch(), cache0.capacity());
            let mut cache = gpu.new_cache(batch, capacity).unwrap();
            for (i, call) in chain.iter().enumerate() {
                let x = &call.inputs.input;
                let out =
                    if i == 0 { gpu.prefill(&mut cache, x, x, None, None) } else { gpu.step(&mut cache, x, x, None) }
                        .unwrap_or_else(|e| panic!("{name} call {i} ({adapter}): {e}"));
                let want = call.tf.f32("expected.output", "output").unwrap();
                let label = format!("{name} call {i} ({adapter})");
                assert_close(&format!("{label}: output"), out.data(), want.data(), F32);
                // The cache: the tokens held so far against KerasHub's slots.
                let held = cache.lengths()[0];
                let ours = cache.read().unwrap();
                let theirs = gqa_io::kerashub::read_cache(&call.tf, "expected.", call.layer.spec().class)
                    .unwrap()
                    .expect("the updated cache");
                let slots = |t: &HostTensor| t.time_slice(..held).unwrap();
                assert_close(&format!("{label}: keys"), ours.keys.data(), slots(&theirs.keys).data(), F32);
                assert_close(&format!("{label}: values"), ours.values.data(), slots(&theirs.values).data(), F32);
            }
        }
    }
}

/// The shape `gqa bench --decode --rope-qk-norm` times (Nq=32, Nkv=8, H=128, Dq=4096 over 4,095
/// cached keys): a Qwen3 layer's step through the library's cache on every adapter, against the
/// oracle of KerasHub's layer called on KerasHub's cache holding the same keys.
#[test]
fn the_headline_decode_step_with_rope_and_qk_norm_matches_kerashub() {
    use gqa::core::kerashub::{KerasHubCache, KerasHubCall, KerasHubConfig};
    use gqa::core::{CacheContents, ExtensionWeights, LayerDims};
    use rand::{SeedableRng, rngs::StdRng};

    let (b, nq, nkv, h, d, held) = (1, 32, 8, 128, 4096, 4095);
    let json = serde_json::json!({
        "num_query_heads": nq, "num_key_value_heads": nkv, "head_dim": h,
        "rope_max_wavelength": 1_000_000, "layer_norm_epsilon": 1e-6,
    });
    let spec = KerasHubConfig::from_value(KerasHubClass::Qwen3, &json, d).unwrap();
    let dims = LayerDims { query_dim: d, key_dim: d, value_dim: d };
    let weights = common::random_weights(&spec.config, dims, 11);
    let mut rng = StdRng::seed_from_u64(12);
    let norm = |rng: &mut StdRng| Some(common::random_tensor(&[h], rng));
    let extra = ExtensionWeights { query_norm: norm(&mut rng), key_norm: norm(&mut rng), sinks: None };
    let keys = common::random_tensor(&[b, held, nkv, h], &mut rng);
    let values = common::random_tensor(&[b, held, nkv, h], &mut rng);
    let x = common::random_tensor(&[b, 1, d], &mut rng);
    let pad = |t: &HostTensor| HostTensor::concat(&[t.clone(), HostTensor::zeros([b, 1, nkv, h])], 1).unwrap();
    let cache = KerasHubCache { keys: pad(&keys), values: pad(&values) };
    let oracle = gqa::reference::KerasHubLayer::new(spec.clone(), weights.clone(), extra.clone()).unwrap();
    let want = oracle.call(&KerasHubCall::new(&x).with_cache(&cache, Some(held))).unwrap();
    let contents = CacheContents { keys, values, lengths: vec![held; b] };
    for ctx in adapters() {
        let layer = gqa::gpu::KerasHubLayer::new(ctx, spec.clone(), &weights, &extra).unwrap();
        let gpu = layer.layer();
        let mut kv = gpu.new_cache(b, held + 1).unwrap();
        kv.load(&contents).unwrap();
        let got = gpu.step(&mut kv, &x, &x, None).unwrap();
        assert_close(&format!("headline step ({})", adapter_name(ctx)), got.data(), want.output.data(), F32);
    }
}

/// A windowed KerasHub layer decodes in a ring of its window's size (Gemma 3's symmetric window of
/// 5: 5 keys back; GPT-OSS's lookback of 3: 4 keys back), over a sequence several times the ring,
/// token by token against KerasHub's oracle over a linear cache of the whole sequence.
#[test]
fn windowed_kerashub_layers_decode_in_a_ring_of_their_window() {
    use gqa::core::ExtensionWeights;
    use gqa::core::LayerDims;
    use gqa::core::kerashub::{KerasHubCache, KerasHubCall, KerasHubConfig};
    use rand::{SeedableRng, rngs::StdRng};

    let gemma3 = serde_json::json!({
        "head_dim": 8, "num_query_heads": 4, "num_key_value_heads": 2, "use_query_key_norm": true,
        "use_sliding_window_attention": true, "sliding_window_size": 5, "logit_soft_cap": 5.0,
    });
    let gpt_oss =
        serde_json::json!({"num_query_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "sliding_window": 3});
    let (b, d, prompt, steps, chunk) = (2, 16, 4, 30, 4);
    for (class, json, ring) in
        [(KerasHubClass::Gemma3, gemma3, 5 + chunk - 1), (KerasHubClass::GptOss, gpt_oss, 4 + chunk - 1)]
    {
        let spec = KerasHubConfig::from_value(class, &json, d).unwrap();
        let dims = LayerDims { query_dim: d, key_dim: d, value_dim: d };
        let weights = common::random_weights(&spec.config, dims, 21);
        let mut rng = StdRng::seed_from_u64(22);
        let (h, nkv) = (spec.config.head_dim, spec.config.num_key_value_heads);
        let norm = spec.extensions.qk_norm.is_some();
        let extra = ExtensionWeights {
            query_norm: norm.then(|| common::random_tensor(&[h], &mut rng)),
            key_norm: norm.then(|| common::random_tensor(&[h], &mut rng)),
            sinks: spec.extensions.sinks.then(|| common::random_tensor(&[4], &mut rng)),
        };
        let oracle = gqa::reference::KerasHubLayer::new(spec.clone(), weights.clone(), extra.clone()).unwrap();
        let capacity = prompt + steps;
        let causal = |index: usize, t: usize| {
            let data = (0..b * t * capacity).map(|k| k % capacity <= index + k / capacity % t).collect();
            gqa::core::Mask::new([b, t, capacity], data).unwrap()
        };
        let tokens = common::random_tensor(&[b, capacity, d], &mut rng);
        for ctx in adapters() {
            let name = format!("{class} ring ({})", adapter_name(ctx));
            let layer = gqa::gpu::KerasHubLayer::new(ctx, spec.clone(), &weights, &extra).unwrap();
            let gpu = layer.layer();
            let mut kv = gqa::gpu::KvCache::new_ring(gpu, b, chunk, 0).unwrap();
            assert_eq!(kv.shape().capacity, ring, "{name}");
            let mut theirs = KerasHubCache::zeros(b, capacity, nkv, h);
            let mut at = 0;
            while at < capacity {
                let t = if at == 0 { prompt } else { 1 };
                let x = tokens.time_slice(at..at + t).unwrap();
                let got =
                    if at == 0 { gpu.prefill(&mut kv, &x, &x, None, None) } else { gpu.step(&mut kv, &x, &x, None) }
                        .unwrap_or_else(|e| panic!("{name} at {at}: {e}"));
                let mask = causal(at, t);
                let want = oracle.call(&KerasHubCall::new(&x).with_mask(&mask).with_cache(&theirs, Some(at))).unwrap();
                assert_close(&format!("{name}, tokens {at}..{}", at + t), got.data(), want.output.data(), F32);
                theirs = want.cache.unwrap();
                at += t;
            }
        }
    }
}
