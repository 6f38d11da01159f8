//! `Send + Sync`: the handles are shareable (checked at compile time), and one layer called from
//! several threads at once gives each thread the oracle's answer for its own inputs.

mod common;

use common::{F32, adapter_name, adapters, assert_close, random_tensor, random_weights, rng};
use gqa::core::{CallOptions, GqaConfig, LayerDims};
use gqa::gpu::{EncodedForward, GpuContext, GpuError, GpuTensor, GqaLayer, TensorArgs};

const fn send_sync<T: Send + Sync>() {}
const _: () = {
    send_sync::<GpuContext>();
    send_sync::<GqaLayer>();
    send_sync::<GpuTensor>();
    send_sync::<EncodedForward>();
    send_sync::<GpuError>();
};

const THREADS: usize = 4;
const CALLS: usize = 3;

#[test]
fn one_layer_called_from_several_threads_at_once() {
    let mut cfg = GqaConfig::new(8, 4, 2);
    cfg.use_gate = true;
    let dims = LayerDims { query_dim: 12, key_dim: 10, value_dim: 10 };
    let weights = random_weights(&cfg, dims, 71);
    let options = CallOptions { use_causal_mask: true, return_attention_scores: true, ..Default::default() };
    // Every thread has inputs of its own, and shapes differ between threads.
    let inputs: Vec<_> = (0..THREADS)
        .map(|i| {
            let mut r = rng(100 + i as u64);
            let (b, t, s) = (1 + i % 2, 3 + i, 6 + 2 * i);
            let q = random_tensor(&[b, t, 12], &mut r);
            let v = random_tensor(&[b, s, 10], &mut r);
            let want = gqa::reference::forward(&cfg, &weights, &q, &v, None, &options).unwrap();
            (q, v, want)
        })
        .collect();
    for ctx in adapters() {
        let name = adapter_name(ctx);
        let layer = GqaLayer::new(ctx, &cfg, &weights).unwrap();
        std::thread::scope(|s| {
            for (i, (q, v, want)) in inputs.iter().enumerate() {
                let (layer, options, name) = (&layer, &options, &name);
                s.spawn(move || {
                    for call in 0..CALLS {
                        let label = format!("{name}: thread {i} call {call}");
                        // Host calls, and GPU calls submitted by the layer, interleaved.
                        let got = if call % 2 == 0 {
                            layer.forward(q, v, None, options).unwrap().output.data().to_vec()
                        } else {
                            let (qg, vg) =
                                (GpuTensor::from_host(ctx, q).unwrap(), GpuTensor::from_host(ctx, v).unwrap());
                            let rec = layer.forward_tensors(&TensorArgs::new(&qg, &vg), options).unwrap();
                            rec.output.to_host().unwrap().into_data()
                        };
                        assert_close(&format!("{label}: output"), &got, want.output.data(), F32);
                    }
                });
            }
        });
    }
}
