//! The GPU-resident path: recording into the caller's encoder over the caller's buffers, with the
//! outputs written into poisoned buffers the caller owns; and its buffer checks.

mod common;

use common::{F32, adapter_name, adapters, assert_close, random_tensor, random_weights, rng};
use gqa::core::{CallOptions, GqaConfig, Kernel, LayerDims, Step};
use gqa::gpu::{GpuError, GpuInputs, GqaLayer};
use wgpu::util::DeviceExt;

fn storage(device: &wgpu::Device, data: &[f32], extra: wgpu::BufferUsages) -> wgpu::Buffer {
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("test"),
        contents: bytemuck::cast_slice(data),
        usage: wgpu::BufferUsages::STORAGE | extra,
    })
}

fn read(ctx: &gqa::gpu::GpuContext, buf: &wgpu::Buffer) -> Vec<f32> {
    let device = ctx.device();
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("staging"),
        size: buf.size(),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(buf, 0, &staging, 0, buf.size());
    ctx.queue().submit([enc.finish()]);
    staging.slice(..).map_async(wgpu::MapMode::Read, |r| r.unwrap());
    device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
    bytemuck::cast_slice(&staging.slice(..).get_mapped_range().unwrap()).to_vec()
}

#[test]
fn records_into_caller_encoder_over_caller_buffers() {
    let mut cfg = GqaConfig::new(8, 4, 2);
    cfg.use_gate = true;
    let dims = LayerDims { query_dim: 12, key_dim: 9, value_dim: 10 };
    let weights = random_weights(&cfg, dims, 3);
    let mut r = rng(4);
    let (b, t, s) = (2, 6, 9);
    let q = random_tensor(&[b, t, 12], &mut r);
    let v = random_tensor(&[b, s, 10], &mut r);
    let k = random_tensor(&[b, s, 9], &mut r);
    let opts = CallOptions { use_causal_mask: true, return_attention_scores: true, ..Default::default() };
    let want = gqa::reference::forward(&cfg, &weights, &q, &v, Some(&k), &opts).unwrap();
    for ctx in adapters() {
        let name = adapter_name(ctx);
        let device = ctx.device();
        let layer = GqaLayer::new(ctx, &cfg, &weights).unwrap();
        let qb = storage(device, q.data(), wgpu::BufferUsages::empty());
        let vb = storage(device, v.data(), wgpu::BufferUsages::empty());
        let kb = storage(device, k.data(), wgpu::BufferUsages::empty());
        let out = storage(device, &vec![f32::NAN; b * t * 12], wgpu::BufferUsages::COPY_SRC);
        let scores = storage(device, &vec![f32::NAN; b * 4 * t * s], wgpu::BufferUsages::COPY_SRC);
        let inputs = GpuInputs {
            query: &qb,
            query_shape: [b, t, 12],
            value: &vb,
            value_shape: [b, s, 10],
            key: Some((&kb, [b, s, 9])),
            output: Some(&out),
            scores: Some(&scores),
        };
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut enc = device.create_command_encoder(&Default::default());
        let rec = layer.encode_forward(&mut enc, &inputs, &opts).unwrap();
        ctx.queue().submit([enc.finish()]);
        assert!(pollster::block_on(scope.pop()).is_none(), "{name}: validation error");
        assert_eq!(rec.output.buffer(), &out, "{name}: writes into the caller's buffer");
        assert_close(&format!("{name}: encoded output"), &read(ctx, &out), want.output.data(), F32);
        assert_close(
            &format!("{name}: encoded scores"),
            &read(ctx, &scores),
            want.scores.as_ref().unwrap().data(),
            F32,
        );
    }
}

/// Inputs made with STORAGE alone, on rows a plan packs into textures by copies (256-byte rows):
/// the layer packs them with `Kernel::PackTexture` passes instead (a copy needs COPY_SRC), with the
/// oracle's result; with COPY_SRC the copies stay.
#[test]
fn storage_only_inputs_are_packed_by_passes() {
    let cfg = GqaConfig::new(16, 4, 2);
    let dims = LayerDims { query_dim: 64, key_dim: 64, value_dim: 128 };
    let weights = random_weights(&cfg, dims, 5);
    let mut r = rng(6);
    let (b, t, s) = (2, 20, 24);
    let q = random_tensor(&[b, t, 64], &mut r);
    let v = random_tensor(&[b, s, 128], &mut r);
    let k = random_tensor(&[b, s, 64], &mut r);
    let opts = CallOptions { use_causal_mask: true, ..Default::default() };
    let want = gqa::reference::forward(&cfg, &weights, &q, &v, Some(&k), &opts).unwrap();
    let step = |plan: &gqa::core::Plan, label: &str| plan.steps.iter().find(|s| s.label() == label).cloned();
    for ctx in adapters() {
        let name = adapter_name(ctx);
        let device = ctx.device();
        let layer = GqaLayer::new(ctx, &cfg, &weights).unwrap();
        for extra in [wgpu::BufferUsages::empty(), wgpu::BufferUsages::COPY_SRC] {
            let (qb, vb, kb) =
                (storage(device, q.data(), extra), storage(device, v.data(), extra), storage(device, k.data(), extra));
            let out = storage(device, &vec![f32::NAN; b * t * 64], wgpu::BufferUsages::COPY_SRC);
            let inputs = GpuInputs {
                query: &qb,
                query_shape: [b, t, 64],
                value: &vb,
                value_shape: [b, s, 128],
                key: Some((&kb, [b, s, 64])),
                output: Some(&out),
                scores: None,
            };
            let planned = layer.plan(&[b, t, 64], &[b, s, 128], Some(&[b, s, 64]), &opts).unwrap();
            let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
            let mut enc = device.create_command_encoder(&Default::default());
            let rec = layer.encode_forward(&mut enc, &inputs, &opts).unwrap();
            ctx.queue().submit([enc.finish()]);
            assert!(pollster::block_on(scope.pop()).is_none(), "{name}: validation error");
            for label in ["pack_query", "pack_key", "pack_value"] {
                if let Some(Step::Copy(_)) = step(&planned, label) {
                    let recorded = step(&rec.plan, label);
                    if extra.is_empty() {
                        assert!(
                            matches!(&recorded, Some(Step::Dispatch(p)) if p.kernel == Kernel::PackTexture),
                            "{name}: {label} {recorded:?}"
                        );
                    } else {
                        assert!(matches!(recorded, Some(Step::Copy(_))), "{name}: {label} {recorded:?}");
                    }
                }
            }
            assert_close(&format!("{name}: {extra:?}: output"), &read(ctx, &out), want.output.data(), F32);
        }
    }
}

#[test]
fn caller_buffers_are_checked() {
    let cfg = GqaConfig::new(4, 2, 1);
    let dims = LayerDims { query_dim: 6, key_dim: 6, value_dim: 6 };
    let weights = random_weights(&cfg, dims, 1);
    let ctx = &adapters()[0];
    let device = ctx.device();
    let layer = GqaLayer::new(ctx, &cfg, &weights).unwrap();
    let small = storage(device, &[0.0; 5], wgpu::BufferUsages::empty());
    let good = storage(device, &[0.0; 18], wgpu::BufferUsages::empty());
    let not_storage = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: bytemuck::cast_slice(&[0.0f32; 18]),
        usage: wgpu::BufferUsages::COPY_SRC,
    });
    let mut enc = device.create_command_encoder(&Default::default());
    let mut inputs = GpuInputs {
        query: &small,
        query_shape: [1, 3, 6],
        value: &good,
        value_shape: [1, 3, 6],
        key: None,
        output: None,
        scores: None,
    };
    let err = layer.encode_forward(&mut enc, &inputs, &CallOptions::default()).unwrap_err();
    assert!(matches!(err, GpuError::Buffer { .. }) && err.to_string().contains("needs 72"), "{err}");
    inputs.query = &not_storage;
    let err = layer.encode_forward(&mut enc, &inputs, &CallOptions::default()).unwrap_err();
    assert!(err.to_string().contains("STORAGE"), "{err}");
    inputs.query = &good;
    inputs.query_shape = [1, 3, 7];
    let err = layer.encode_forward(&mut enc, &inputs, &CallOptions::default()).unwrap_err();
    assert!(err.to_string().contains("built for 6"), "{err}");
}
