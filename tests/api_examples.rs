//! The examples run here, on every adapter: each example's body is a `pub fn run` included from
//! `examples/`, and its results are compared with the oracle (and with Keras, for `keras_layer`).

mod common;

#[path = "../examples/basic.rs"]
mod basic;
#[path = "../examples/embed.rs"]
mod embed;
#[path = "../examples/fallback.rs"]
mod fallback;
#[path = "../examples/generate.rs"]
mod generate;
#[path = "../examples/keras_layer.rs"]
mod keras_layer;

use common::{F32, adapter_name, adapters, assert_close, gl_guard};

#[test]
fn basic_example_matches_the_oracle() {
    for ctx in adapters() {
        let name = adapter_name(ctx);
        let r = basic::run(ctx).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.output.shape(), [2, 5, 32], "{name}");
        assert_close(&format!("{name}: examples/basic.rs"), r.output.data(), r.oracle.data(), F32);
    }
}

#[test]
fn embed_example_on_the_applications_device_matches_the_oracle() {
    for ctx in adapters() {
        let name = adapter_name(ctx);
        let (device, queue, info) = (ctx.device().clone(), ctx.queue().clone(), ctx.adapter_info().clone());
        let r = embed::run(device, queue, info).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_close(&format!("{name}: examples/embed.rs"), r.gpu.data(), r.oracle.data(), F32);
    }
}

#[test]
fn keras_layer_example_matches_keras() {
    let (file, layer, inputs) = keras_layer::default_paths();
    for ctx in adapters() {
        let name = adapter_name(ctx);
        let r = keras_layer::run(ctx, &file, Some(&layer), &inputs).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.name, "attn_in_model", "{name}");
        assert_close(&format!("{name}: examples/keras_layer.rs vs oracle"), r.output.data(), r.oracle.data(), F32);
        let keras = r.keras.expect("the fixture holds Keras' output");
        assert_close(&format!("{name}: examples/keras_layer.rs vs Keras"), r.output.data(), keras.data(), F32);
    }
}

#[test]
fn generate_example_matches_the_oracles_cache() {
    for ctx in adapters() {
        let _gl = gl_guard(ctx);
        let name = adapter_name(ctx);
        let plain = generate::Options { tokens: 12, prompt: 9, ..Default::default() };
        let r = generate::run(ctx, &plain).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.tokens.shape(), [1, 12, 256], "{name}");
        assert_close(&format!("{name}: examples/generate.rs"), r.tokens.data(), r.oracle.data(), F32);
        // An int8 ring of window 8 (2 sinks, prompt chunks of 4) over a sequence 4 times its size.
        let ring = generate::Options {
            tokens: 40,
            prompt: 9,
            cache: gqa::core::CacheStorage::Int8,
            window: Some(8),
            keep_first: 2,
            chunk: 4,
            ..Default::default()
        };
        let r = generate::run(ctx, &ring).unwrap_or_else(|e| panic!("{name}: int8 ring: {e}"));
        assert_eq!(r.capacity, 2 + 8 + 4 - 1, "{name}");
        assert_close(&format!("{name}: examples/generate.rs, int8 ring"), r.tokens.data(), r.oracle.data(), F32);
        // KerasHub's Llama 3 and Gemma 3 (windowed) attention, against KerasHub's oracle in lockstep.
        for (class, window) in [(generate::Decoder::Llama3, None), (generate::Decoder::Gemma3, Some(6))] {
            let o =
                generate::Options { tokens: 14, prompt: 9, chunk: 4, window, class: Some(class), ..Default::default() };
            let r = generate::run(ctx, &o).unwrap_or_else(|e| panic!("{name}: {class:?}: {e}"));
            assert_eq!(r.tokens.shape(), [1, 14, 256], "{name}");
            let what = format!("{name}: examples/generate.rs, {class:?}");
            assert_close(&what, r.tokens.data(), r.oracle.data(), F32);
        }
        // A layer in f16 over its f16 cache, checked at the f16 tolerance inside `run` (a ring).
        let f16 = generate::Options {
            tokens: 20,
            prompt: 9,
            chunk: 4,
            window: Some(8),
            cache: gqa::core::CacheStorage::F16,
            f16: true,
            ..Default::default()
        };
        let r = generate::run(ctx, &f16).unwrap_or_else(|e| panic!("{name}: --f16: {e}"));
        assert_eq!(r.precision == gqa::core::Precision::F16, ctx.supports_f16(), "{name}");
        assert_close(&format!("{name}: examples/generate.rs --f16"), r.tokens.data(), r.oracle.data(), common::F16);
        let bad = generate::Options { class: Some(generate::Decoder::Llama3), keep_first: 2, ..Default::default() };
        assert!(generate::run(ctx, &bad).is_err(), "{name}: keep_first with a KerasHub class");
    }
}

#[test]
fn fallback_example_runs_the_same_calls_on_the_cpu_layer_and_every_adapter() {
    let r = fallback::run(None).unwrap_or_else(|e| panic!("CPU layer: {e}"));
    assert_eq!(r.tokens.shape(), [2, 80, 256]);
    assert_close("examples/fallback.rs on the CPU layer", r.tokens.data(), r.oracle.data(), F32);
    for ctx in adapters() {
        let _gl = gl_guard(ctx);
        let name = adapter_name(ctx);
        let r = fallback::run(Some(ctx)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_close(&format!("{name}: examples/fallback.rs"), r.tokens.data(), r.oracle.data(), F32);
    }
    // On this machine's software adapters the example picks the CPU layer, and says why.
    let (picked, why) = fallback::pick();
    if let Some(ctx) = picked {
        assert_ne!(ctx.adapter_info().device_type, gqa::wgpu::DeviceType::Cpu, "{why}");
    } else {
        assert!(why.contains("CPU layer"), "{why}");
    }
}
