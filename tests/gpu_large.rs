//! The largest shapes on every adapter, against the oracle: the headline layer (B=1, T=S=512, Nq=32,
//! Nkv=8, H=128, Dq=Dk=Dv=4096, no mask) and a batch of long sequences (B=2, T=S=2048). Grids this
//! large are where a kernel whose workgroups ran several tiles each passed llvmpipe's loop cap and
//! silently left whole blocks of rows half-summed, while every smaller shape passed. Each call's
//! output is poisoned first and compared in full, several calls per adapter (such failures moved
//! from call to call).

mod common;

use common::{F32, adapter_name, adapters, assert_close, gl_guard, random_tensor, rng};
use gqa::core::{BlockAttention, BlockLanes, Operands};
use gqa::core::{CallOptions, GqaConfig, HostTensor, Initializer, LayerDims, Plan, Weights};
use gqa::gpu::{GpuContext, GqaLayer};

/// One large call: the layer, its weights (Keras' initializers, biases in [-0.1, 0.1]: the demo's),
/// random inputs in [-1, 1), and the oracle's output.
struct Large {
    name: &'static str,
    config: GqaConfig,
    weights: Weights,
    query: HostTensor,
    value: HostTensor,
    key: Option<HostTensor>,
    want: HostTensor,
}

impl Large {
    fn new(name: &'static str, config: GqaConfig, [b, t, s]: [usize; 3], dims: LayerDims, separate_key: bool) -> Self {
        let mut config = config;
        config.bias_initializer = Initializer::RandomUniform { minval: -0.1, maxval: 0.1, seed: None };
        let weights = gqa::reference::initialize_weights(&config, dims, 42).unwrap();
        let mut r = rng(42);
        let query = random_tensor(&[b, t, dims.query_dim], &mut r);
        let value = random_tensor(&[b, s, dims.value_dim], &mut r);
        let key = separate_key.then(|| random_tensor(&[b, s, dims.key_dim], &mut r));
        let started = std::time::Instant::now();
        let want = gqa::reference::forward(&config, &weights, &query, &value, key.as_ref(), &CallOptions::default())
            .unwrap()
            .output;
        eprintln!("[{name}] oracle: {:.1} s", started.elapsed().as_secs_f64());
        Self { name, config, weights, query, value, key, want }
    }

    /// Runs the call `calls` times on `ctx`, each output poisoned first and compared with the
    /// oracle's. Returns the plan, for the caller's checks of its passes.
    fn check(&self, ctx: &GpuContext, calls: usize) -> Plan {
        let _gl = gl_guard(ctx);
        let mut layer = GqaLayer::new(ctx, &self.config, &self.weights).unwrap();
        layer.set_poison_outputs(true);
        let options = CallOptions::default();
        let plan = layer
            .plan(self.query.shape(), self.value.shape(), self.key.as_ref().map(HostTensor::shape), &options)
            .unwrap();
        for call in 0..calls {
            let started = std::time::Instant::now();
            let got = layer.forward(&self.query, &self.value, self.key.as_ref(), &options).unwrap();
            let label = format!("{} on {}, call {call}", self.name, adapter_name(ctx));
            assert_eq!(got.output.shape(), self.want.shape(), "{label}");
            assert_close(&label, got.output.data(), self.want.data(), F32);
            eprintln!("[{label}] ok in {:.2} s", started.elapsed().as_secs_f64());
        }
        plan
    }
}

#[test]
fn the_headline_shape_matches_the_oracle_on_every_adapter() {
    let dims = LayerDims { query_dim: 4096, key_dim: 4096, value_dim: 4096 };
    let case =
        Large::new("B=1 T=S=512 Nq=32 Nkv=8 H=128 D=4096", GqaConfig::new(128, 32, 8), [1, 512, 512], dims, true);
    for ctx in adapters() {
        case.check(ctx, 3);
    }
}

#[test]
fn long_sequences_in_a_batch_match_the_oracle_on_every_adapter() {
    let dims = LayerDims { query_dim: 1024, key_dim: 1024, value_dim: 1024 };
    let case =
        Large::new("B=2 T=S=2048 Nq=16 Nkv=4 H=128 D=1024", GqaConfig::new(128, 16, 4), [2, 2048, 2048], dims, false);
    for ctx in adapters() {
        let plan = case.check(ctx, 2);
        // Where the device has subgroups (lavapipe), the attention is the subgroup kernel.
        if ctx.tuning().subgroups {
            let attention = plan.passes().find(|p| p.label == "attention_block").map(|p| p.kernel);
            assert_eq!(
                attention,
                Some(gqa::core::Kernel::BlockAttention(BlockAttention {
                    operands: Operands::Texture,
                    lanes: BlockLanes::Subgroup
                })),
                "{}",
                adapter_name(ctx)
            );
        }
    }
}
