//! The smallest use of the layer: host slices in, output out, checked against the CPU oracle.
//!
//! ```sh
//! cargo run --release --example basic            # the best adapter
//! WGPU_BACKEND=gl cargo run --release --example basic
//! ```

use gqa::core::{CallOptions, GqaConfig, HostTensor, LayerDims};
use gqa::gpu::{GpuContext, GqaLayer};

/// What [`run`] computed.
pub struct Basic {
    /// The layer's output (B, T, Dq) from the GPU.
    pub output: HostTensor,
    /// The same from the CPU oracle.
    pub oracle: HostTensor,
}

/// Builds a layer with Keras' initializers, runs it on `ctx` over host data, and runs the oracle.
pub fn run(ctx: &GpuContext) -> Result<Basic, Box<dyn std::error::Error>> {
    // keras.layers.GroupQueryAttention(head_dim=16, num_query_heads=4, num_key_value_heads=2),
    // built for query (.., 32) and value (.., 24).
    let config = GqaConfig::new(16, 4, 2);
    let dims = LayerDims { query_dim: 32, key_dim: 24, value_dim: 24 };
    let weights = gqa::reference::initialize_weights(&config, dims, 42)?;
    let layer = GqaLayer::new(ctx, &config, &weights)?; // weights uploaded once

    // Host data: plain row-major f32 slices with their shapes.
    let (b, t, s) = (2, 5, 7);
    let query: Vec<f32> = (0..b * t * 32).map(|i| (i as f32 * 0.1).sin()).collect();
    let value: Vec<f32> = (0..b * s * 24).map(|i| (i as f32 * 0.2).cos()).collect();
    let query = HostTensor::new([b, t, 32], query)?;
    let value = HostTensor::new([b, s, 24], value)?;
    let options = CallOptions { use_causal_mask: true, ..Default::default() };

    let output = layer.forward(&query, &value, None, &options)?.output; // key = value
    let oracle = gqa::reference::forward(&config, &weights, &query, &value, None, &options)?.output;
    Ok(Basic { output, oracle })
}

#[allow(dead_code, reason = "tests/api_examples.rs includes this file and calls `run`")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = GpuContext::new()?;
    println!("adapter: {}", ctx.describe());
    let Basic { output, oracle } = run(&ctx)?;
    let worst = output.data().iter().zip(oracle.data()).map(|(g, w)| (g - w).abs()).fold(0.0, f32::max);
    println!("output {:?}, first values {:?}", output.shape(), &output.data()[..4]);
    println!("max |gpu - oracle| = {worst:e}");
    Ok(())
}
