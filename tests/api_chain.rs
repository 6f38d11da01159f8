//! Several layers and calls in one submission: two layers chained on the GPU (the output of the
//! first is the query of the second) and a third call of the first layer, all recorded into one
//! encoder, submitted once and read back once, against the oracle run twice.

mod common;

use common::{F32, adapter_name, adapters, assert_close, random_tensor, random_weights, rng};
use gqa::core::{CallOptions, GqaConfig, LayerDims};
use gqa::gpu::{GpuTensor, GqaLayer, TensorArgs};

#[test]
fn two_layers_chained_in_one_submission_match_the_oracle_twice() {
    // Layer 1: cross-attention from a (B, T, 12) query over a (B, S, 10) memory; its output is
    // (B, T, 12), the query of layer 2, which attends over the same memory with a key of its own.
    let mut first_cfg = GqaConfig::new(8, 4, 2);
    first_cfg.use_gate = true;
    let first_dims = LayerDims { query_dim: 12, key_dim: 10, value_dim: 10 };
    let second_cfg = GqaConfig::new(4, 6, 3);
    let second_dims = LayerDims { query_dim: 12, key_dim: 7, value_dim: 10 };
    let (w1, w2) = (random_weights(&first_cfg, first_dims, 61), random_weights(&second_cfg, second_dims, 62));
    let mut r = rng(63);
    let (b, t, s) = (2, 5, 8);
    let x = random_tensor(&[b, t, 12], &mut r);
    let memory = random_tensor(&[b, s, 10], &mut r);
    let key2 = random_tensor(&[b, s, 7], &mut r);
    let causal = CallOptions { use_causal_mask: true, ..Default::default() };
    let scores = CallOptions { return_attention_scores: true, ..Default::default() };

    let y1 = gqa::reference::forward(&first_cfg, &w1, &x, &memory, None, &causal).unwrap();
    let y2 = gqa::reference::forward(&second_cfg, &w2, &y1.output, &memory, Some(&key2), &scores).unwrap();
    let again = gqa::reference::forward(&first_cfg, &w1, &y2.output, &memory, None, &causal).unwrap();

    for ctx in adapters() {
        let name = adapter_name(ctx);
        let first = GqaLayer::new(ctx, &first_cfg, &w1).unwrap();
        let second = GqaLayer::new(ctx, &second_cfg, &w2).unwrap();
        let x = GpuTensor::from_host(ctx, &x).unwrap();
        let memory = GpuTensor::from_host(ctx, &memory).unwrap();
        let key2 = GpuTensor::from_host(ctx, &key2).unwrap();
        let device = ctx.device();
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut encoder = device.create_command_encoder(&Default::default());
        let a = first.encode_forward(&mut encoder, &TensorArgs::new(&x, &memory), &causal).unwrap();
        let b = second.encode_forward(&mut encoder, &TensorArgs::new(&a.output, &memory).key(&key2), &scores).unwrap();
        let c = first.encode_forward(&mut encoder, &TensorArgs::new(&b.output, &memory), &causal).unwrap();
        ctx.queue().submit([encoder.finish()]);
        assert!(pollster::block_on(scope.pop()).is_none(), "{name}: validation error");

        assert_close(&format!("{name}: layer 1"), a.output.to_host().unwrap().data(), y1.output.data(), F32);
        assert_close(&format!("{name}: layer 2"), b.output.to_host().unwrap().data(), y2.output.data(), F32);
        let got_scores = b.scores.as_ref().unwrap().to_host().unwrap();
        assert_close(&format!("{name}: layer 2 scores"), got_scores.data(), y2.scores.as_ref().unwrap().data(), F32);
        assert_close(&format!("{name}: layer 1 again"), c.output.to_host().unwrap().data(), again.output.data(), F32);
    }
}
