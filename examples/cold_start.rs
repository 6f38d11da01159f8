//! Cold start: from process start to the first output of a layer, checked against the CPU oracle,
//! with or without [`GqaLayer::warm_up_in_background`] (its compiles overlap the making of the
//! inputs). `XDG_RUNTIME_DIR` is given a private directory when unset
//! ([`gqa::gpu::quiet_mesa_runtime_dir`]), so Mesa prints nothing.
//!
//! ```sh
//! MESA_SHADER_CACHE_DISABLE=true WGPU_BACKEND=vulkan cargo run --release --example cold_start
//! MESA_SHADER_CACHE_DISABLE=true WGPU_BACKEND=vulkan cargo run --release --example cold_start -- --warm-up
//! cargo run --release --example cold_start -- --small   # a small layer, for a quick check
//! ```
//!
//! The headline layer: B=1, T=S=512, Nq=32, Nkv=8, H=128, D=4096, causal, f32. The oracle's check
//! (f64, one thread) runs after the figure is taken and is not part of it.

use std::time::Instant;

use gqa::core::{CallOptions, GqaConfig, HostTensor, LayerDims};
use gqa::gpu::{GpuContext, GqaLayer, RuntimeDir, WarmCall};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let runtime_dir = gqa::gpu::quiet_mesa_runtime_dir();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let warm = args.iter().any(|a| a == "--warm-up");
    let small = args.iter().any(|a| a == "--small");
    let (config, b, t, d) =
        if small { (GqaConfig::new(16, 4, 2), 1, 8, 32) } else { (GqaConfig::new(128, 32, 8), 1, 512, 4096) };
    let dims = LayerDims { query_dim: d, key_dim: d, value_dim: d };
    let options = CallOptions { use_causal_mask: true, ..Default::default() };

    let ctx = GpuContext::new()?;
    let weights = gqa::reference::initialize_weights(&config, dims, 7)?;
    let layer = GqaLayer::new(&ctx, &config, &weights)?;
    let built = start.elapsed();
    let warm_up = if warm {
        Some(layer.warm_up_in_background(&[WarmCall::forward(&[b, t, d], &[b, t, d], options.clone())])?)
    } else {
        None
    };
    let query: Vec<f32> = (0..b * t * d).map(|i| (i as f32 * 0.37).sin()).collect();
    let value: Vec<f32> = (0..b * t * d).map(|i| (i as f32 * 0.11).cos()).collect();
    let (query, value) = (HostTensor::new([b, t, d], query)?, HostTensor::new([b, t, d], value)?);
    let compiled_before = match warm_up {
        Some(handle) => {
            handle.join()?;
            Some(ctx.compiled_kernel_count())
        }
        None => None,
    };
    let ready = start.elapsed();
    let output = layer.forward(&query, &value, None, &options)?.output;
    let first_output = start.elapsed();
    let again = Instant::now();
    let second = layer.forward(&query, &value, None, &options)?.output;
    let second_call = again.elapsed();
    if second.data() != output.data() {
        return Err("the second call's output differs from the first's".into());
    }

    let oracle = gqa::reference::forward(&config, &weights, &query, &value, None, &options)?.output;
    let (atol, rtol) = (1e-5f32, 1e-4f32); // the project's f32 tolerance
    let bad = output.data().iter().zip(oracle.data()).filter(|(g, w)| (*g - *w).abs() > atol + rtol * w.abs()).count();
    let worst = output.data().iter().zip(oracle.data()).map(|(g, w)| (g - w).abs()).fold(0.0, f32::max);
    println!("adapter: {}", ctx.describe());
    if let RuntimeDir::Provided(dir) = &runtime_dir {
        println!("XDG_RUNTIME_DIR was unset: set to {}", dir.display());
    }
    println!(
        "shape: B={b} T=S={t} Nq={} Nkv={} H={} D={d}",
        config.num_query_heads, config.num_key_value_heads, config.head_dim
    );
    println!("warm-up: {}", if warm { "in the background, joined before the first call" } else { "none" });
    if let Some(n) = compiled_before {
        let compiled = ctx.compiled_kernel_count() - n;
        println!("kernels compiled by the first call after the warm-up: {compiled}");
    }
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!("main to layer built (context, weights made and uploaded): {:.1} ms", ms(built));
    println!("layer built to first call (inputs made, warm-up joined): {:.1} ms", ms(ready - built));
    println!("first call (plan, compiles left, run, read back): {:.1} ms", ms(first_output - ready));
    println!("second call, for comparison: {:.1} ms", ms(second_call));
    println!("cold start: main to first output {:.1} ms", first_output.as_secs_f64() * 1e3);
    println!("check: max |gpu - oracle| = {worst:e}, {bad} of {} out of atol {atol} rtol {rtol}", oracle.data().len());
    if bad > 0 {
        return Err(format!("{bad} elements differ from the oracle").into());
    }
    Ok(())
}
