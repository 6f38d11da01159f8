//! `GqaLayer::warm_up`: after it, the calls it was told of compile nothing (the context's count of
//! compiled kernels does not grow), for forward calls and for decoding (prefill and steps, over f32,
//! f16 and int8 caches); it compiles only the kernels of those calls. Each test opens devices of its
//! own, so nothing is compiled before it.

mod api_common;
mod common;

use api_common::{Small, fresh_contexts};
use common::{F32, adapter_name, assert_close, gl_guard, random_tensor, rng};
use gqa::core::{CacheShape, CacheStorage, CallOptions};
use gqa::gpu::{GqaLayer, KvCache, WarmCall};

fn forward_call(case: &Small) -> WarmCall {
    WarmCall::Forward {
        query_shape: case.query.shape().to_vec(),
        value_shape: case.value.shape().to_vec(),
        key_shape: Some(case.key.shape().to_vec()),
        options: case.options.clone(),
    }
}

#[test]
fn after_warm_up_a_forward_call_compiles_nothing() {
    let case = Small::new(21);
    let want = case.oracle();
    for ctx in fresh_contexts() {
        let name = adapter_name(&ctx);
        let _gl = gl_guard(&ctx);
        let layer = GqaLayer::new(&ctx, &case.config, &case.weights).unwrap();
        assert_eq!(ctx.compiled_kernel_count(), 0, "{name}: a fresh context compiled kernels");
        let kernels = layer.warm_up(&[forward_call(&case)]).unwrap();
        let plan = layer.plan(case.query.shape(), case.value.shape(), Some(case.key.shape()), &case.options).unwrap();
        let mut planned: Vec<_> = plan.passes().map(|p| p.kernel).collect();
        planned.sort_by_key(|k| k.name());
        planned.dedup();
        assert_eq!(kernels, planned, "{name}: warm_up names other kernels than the plan's");
        assert_eq!(ctx.compiled_kernel_count(), kernels.len(), "{name}: warm_up compiled more than the plan's kernels");
        let compiled = ctx.compiled_kernel_count();
        let got = layer.forward(&case.query, &case.value, Some(&case.key), &case.options).unwrap();
        assert_close(&format!("{name}: output"), got.output.data(), want.output.data(), F32);
        assert_eq!(ctx.compiled_kernel_count(), compiled, "{name}: the call after warm_up compiled kernels");
        // A second warm-up of the same calls compiles nothing either.
        layer.warm_up(&[forward_call(&case)]).unwrap();
        assert_eq!(ctx.compiled_kernel_count(), compiled, "{name}: a repeated warm_up compiled kernels");
    }
}

#[test]
fn background_warm_up_covers_the_call() {
    let case = Small::new(22);
    for ctx in fresh_contexts() {
        let name = adapter_name(&ctx);
        let _gl = gl_guard(&ctx);
        let layer = GqaLayer::new(&ctx, &case.config, &case.weights).unwrap();
        let handle = layer.warm_up_in_background(&[forward_call(&case)]).unwrap();
        let named = handle.kernels().to_vec();
        assert!(!named.is_empty(), "{name}: no kernel to compile");
        assert_eq!(handle.join().unwrap(), named, "{name}: join returns other kernels");
        assert_eq!(ctx.compiled_kernel_count(), named.len(), "{name}: compiled count after the background warm-up");
        layer.forward(&case.query, &case.value, Some(&case.key), &case.options).unwrap();
        assert_eq!(ctx.compiled_kernel_count(), named.len(), "{name}: the call after the warm-up compiled kernels");
    }
}

#[test]
fn warm_up_of_a_decode_covers_prefill_and_steps() {
    let case = Small::new(23);
    let (batch, prompt, capacity) = (2, 6, 12);
    for (storage, ctx) in CacheStorage::ALL.into_iter().flat_map(|s| fresh_contexts().into_iter().map(move |c| (s, c)))
    {
        let name = format!("{} ({storage} cache)", adapter_name(&ctx));
        let _gl = gl_guard(&ctx);
        let layer = GqaLayer::new(&ctx, &case.config, &case.weights).unwrap();
        let decode = WarmCall::Decode { batch, capacity, prompt_len: prompt, step_len: 1, key_given: true, storage };
        let kernels = layer.warm_up(&[decode]).unwrap();
        let compiled = ctx.compiled_kernel_count();
        assert_eq!(compiled, kernels.len(), "{name}: warm_up compiled other kernels than it names");
        let shape = CacheShape::new(&case.config, batch, capacity).unwrap().with_storage(storage).unwrap();
        let mut cache = KvCache::from_shape(&layer, shape).unwrap();
        let mut r = rng(24);
        let [q, v, k] = [12, 10, 9].map(|d| random_tensor(&[batch, prompt, d], &mut r));
        layer.prefill(&mut cache, &q, &v, Some(&k), None).unwrap();
        assert_eq!(ctx.compiled_kernel_count(), compiled, "{name}: the prefill after warm_up compiled kernels");
        for step in 0..capacity - prompt {
            let [q, v, k] = [12, 10, 9].map(|d| random_tensor(&[batch, 1, d], &mut r));
            layer.step(&mut cache, &q, &v, Some(&k)).unwrap();
            assert_eq!(ctx.compiled_kernel_count(), compiled, "{name}: step {step} after warm_up compiled kernels");
        }
    }
}

#[test]
fn warm_up_of_a_call_the_layer_cannot_serve_is_an_error() {
    let case = Small::new(25);
    let ctx = &common::adapters()[0];
    let _gl = gl_guard(ctx);
    let layer = GqaLayer::new(ctx, &case.config, &case.weights).unwrap();
    // The weights were built for Dq = 12.
    let wrong = WarmCall::forward(&[1, 4, 13], &[1, 4, 10], CallOptions::default());
    let err = layer.warm_up(std::slice::from_ref(&wrong)).unwrap_err();
    assert!(err.to_string().contains("query has last dim 13"), "{err}");
    assert!(layer.warm_up_in_background(&[wrong]).is_err());
    let storage = CacheStorage::F32;
    let full = WarmCall::Decode { batch: 1, capacity: 4, prompt_len: 5, step_len: 1, key_given: true, storage };
    assert!(layer.warm_up(&[full]).is_err(), "a prompt longer than the cache");
}
