//! The buffer pool: repeated calls of the same shapes create no buffer after the first, as wgpu-hal
//! counts live buffers (`device.get_internal_counters()`, wgpu's `counters` feature); what a call
//! allocates is what `GqaLayer::memory` says before running it; the budget bounds what is kept.
//! Each test opens devices of its own, so no other test's buffers are counted.

mod api_common;
mod common;

use api_common::{Small, fresh_contexts, hal_buffers, settle};
use common::{F32, adapter_name, assert_close};
use gqa::gpu::{GpuTensor, GqaLayer, TensorArgs};

const CALLS: usize = 8;

#[test]
fn repeated_host_calls_create_no_buffer() {
    let case = Small::new(11);
    let want = case.oracle();
    for ctx in fresh_contexts() {
        let name = adapter_name(&ctx);
        assert!(hal_buffers(&ctx) > 0, "{name}: wgpu's counters feature is off: nothing to measure");
        let layer = GqaLayer::new(&ctx, &case.config, &case.weights).unwrap();
        let mut counts = Vec::new();
        for i in 0..CALLS {
            let got = layer.forward(&case.query, &case.value, Some(&case.key), &case.options).unwrap();
            assert_close(&format!("{name}: call {i}"), got.output.data(), want.output.data(), F32);
            settle(&ctx);
            counts.push(hal_buffers(&ctx));
        }
        let stats = ctx.pool_stats();
        eprintln!("[{name}] live buffers after each of {CALLS} host calls: {counts:?}; pool {stats:?}");
        assert!(counts.iter().all(|c| *c == counts[0]), "{name}: buffers created by repeated calls: {counts:?}");
        let created = stats.created;
        layer.forward(&case.query, &case.value, Some(&case.key), &case.options).unwrap();
        assert_eq!(ctx.pool_stats().created, created, "{name}: the pool created a buffer for a repeated call");
    }
}

#[test]
fn repeated_encoded_calls_into_given_outputs_create_no_buffer() {
    let case = Small::new(12);
    let want = case.oracle();
    for ctx in fresh_contexts() {
        let name = adapter_name(&ctx);
        let layer = GqaLayer::new(&ctx, &case.config, &case.weights).unwrap();
        let q = GpuTensor::from_host(&ctx, &case.query).unwrap();
        let v = GpuTensor::from_host(&ctx, &case.value).unwrap();
        let k = GpuTensor::from_host(&ctx, &case.key).unwrap();
        let out = GpuTensor::zeros(&ctx, want.output.shape()).unwrap();
        let scores = GpuTensor::zeros(&ctx, want.scores.as_ref().unwrap().shape()).unwrap();
        let args = TensorArgs::new(&q, &v).key(&k).output(&out).scores(&scores);
        let mut counts = Vec::new();
        for _ in 0..CALLS {
            let mut encoder = ctx.device().create_command_encoder(&Default::default());
            layer.encode_forward(&mut encoder, &args, &case.options).unwrap();
            ctx.queue().submit([encoder.finish()]);
            settle(&ctx);
            counts.push(hal_buffers(&ctx));
        }
        eprintln!("[{name}] live buffers after each of {CALLS} encoded calls: {counts:?}");
        assert!(counts.iter().all(|c| *c == counts[0]), "{name}: buffers created by repeated calls: {counts:?}");
        assert_close(&format!("{name}: output"), out.to_host().unwrap().data(), want.output.data(), F32);
    }
}

#[test]
fn the_pool_holds_what_memory_announced_and_respects_its_budget() {
    let case = Small::new(13);
    for ctx in fresh_contexts() {
        let name = adapter_name(&ctx);
        let layer = GqaLayer::new(&ctx, &case.config, &case.weights).unwrap();
        let key_shape = case.key.shape();
        let memory = layer.memory(case.query.shape(), case.value.shape(), Some(key_shape), &case.options).unwrap();
        assert_eq!(memory.weights, layer.weight_bytes(), "{name}");
        assert_eq!(ctx.pool_stats().created, 0, "{name}: nothing pooled before the first call");
        layer.forward(&case.query, &case.value, Some(&case.key), &case.options).unwrap();
        let s = ctx.pool_stats();
        assert_eq!(
            s.free_bytes + s.constant_bytes,
            memory.pooled(),
            "{name}: the first call allocated {s:?}, memory() announced {memory:?}"
        );
        assert_eq!(s.free_buffers + s.constant_buffers, s.created as usize, "{name}: every buffer is back");

        // A budget of 0 keeps nothing, and calls still work.
        ctx.set_pool_budget(0, 0);
        let s = ctx.pool_stats();
        assert_eq!((s.free_bytes, s.constant_bytes, s.budget), (0, 0, 0), "{name}");
        let got = layer.forward(&case.query, &case.value, Some(&case.key), &case.options).unwrap();
        assert_close(&format!("{name}: without a pool"), got.output.data(), case.oracle().output.data(), F32);
        assert_eq!(ctx.pool_stats().free_bytes, 0, "{name}");

        // A budget for one call's buffers keeps them; clear_pool drops them.
        ctx.set_pool_budget(memory.pooled(), 64);
        layer.forward(&case.query, &case.value, Some(&case.key), &case.options).unwrap();
        let s = ctx.pool_stats();
        assert_eq!(s.free_bytes + s.constant_bytes, memory.pooled(), "{name}: {s:?}");
        let created = s.created;
        layer.forward(&case.query, &case.value, Some(&case.key), &case.options).unwrap();
        assert_eq!(ctx.pool_stats().created, created, "{name}");
        ctx.clear_pool();
        assert_eq!(ctx.pool_stats().free_buffers + ctx.pool_stats().constant_buffers, 0, "{name}");
    }
}

#[test]
fn calls_of_many_shapes_keep_the_pool_within_its_bounds() {
    let case = Small::new(14);
    for ctx in fresh_contexts() {
        let name = adapter_name(&ctx);
        let layer = GqaLayer::new(&ctx, &case.config, &case.weights).unwrap();
        settle(&ctx);
        let before = hal_buffers(&ctx);
        let mut r = common::rng(15);
        for i in 0..40 {
            let (b, t, s) = (1 + i % 3, 1 + i % 7, 2 + i % 11);
            let q = common::random_tensor(&[b, t, 12], &mut r);
            let v = common::random_tensor(&[b, s, 10], &mut r);
            let k = common::random_tensor(&[b, s, 9], &mut r);
            layer.forward(&q, &v, Some(&k), &case.options).unwrap();
            let st = ctx.pool_stats();
            assert!(st.free_buffers + st.constant_buffers <= gqa::gpu::DEFAULT_POOL_MAX_BUFFERS, "{name}: {st:?}");
        }
        settle(&ctx);
        let after = hal_buffers(&ctx);
        let st = ctx.pool_stats();
        eprintln!("[{name}] 40 shapes: live buffers {before} -> {after}; pool {st:?}");
        assert!(st.evicted > 0, "{name}: the bound was never reached: {st:?}");
        assert!(after - before <= gqa::gpu::DEFAULT_POOL_MAX_BUFFERS as isize, "{name}: {before} -> {after}");
    }
}
