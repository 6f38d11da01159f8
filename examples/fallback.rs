//! The best hardware adapter, else the CPU layer: where the only adapters are software rasterizers
//! (lavapipe, llvmpipe, WARP; `describe()` reports their device type as `Cpu`) or there is none,
//! `gqa::cpu::CpuLayer` runs the same calls, multithreaded in f32, usually faster than a software
//! adapter. The calls are written once, generic over `AttentionLayer`: a prompt, then decoding steps
//! through the implementation's own KV cache, checked against the oracle's.
//!
//! ```sh
//! cargo run --release --example fallback              # the GPU when there is one, else the CPU layer
//! cargo run --release --example fallback -- --cpu     # the CPU layer whatever the adapters
//! ```

use gqa::core::{AttentionLayer, GqaConfig, HostTensor, LayerDims, Weights};
use gqa::cpu::CpuLayer;
use gqa::gpu::{GpuContext, GqaLayer};
use gqa::reference::ReferenceLayer;

/// What [`run`] computed.
pub struct Fallback {
    /// The outputs of the prompt and of every step, (B, tokens, Dq), from the layer that ran.
    pub tokens: HostTensor,
    /// The same from the oracle.
    pub oracle: HostTensor,
}

/// A hardware adapter when one is found, else `None` (run on the CPU) with the reason.
pub fn pick() -> (Option<GpuContext>, String) {
    match GpuContext::new() {
        Ok(ctx) if ctx.adapter_info().device_type != gqa::wgpu::DeviceType::Cpu => {
            let why = format!("hardware adapter: {}", ctx.describe());
            (Some(ctx), why)
        }
        Ok(ctx) => (None, format!("{} is a software adapter: the CPU layer runs instead", ctx.describe())),
        Err(e) => (None, format!("no GPU adapter ({e}): the CPU layer runs instead")),
    }
}

/// Prefills `prompt` tokens of `inputs` (B, L, Dq), then decodes the rest one token at a time, on
/// any implementation of the layer. Returns every output, (B, L, Dq).
pub fn generate<L: AttentionLayer>(layer: &L, inputs: &HostTensor, prompt: usize) -> Result<HostTensor, L::Error> {
    let (batch, len) = (inputs.shape()[0], inputs.shape()[1]);
    let mut cache = layer.new_cache(batch, len)?;
    let first = inputs.time_slice(..prompt)?;
    let mut outputs = vec![layer.prefill(&mut cache, &first, &first, None, None)?];
    for t in prompt..len {
        let token = inputs.time_slice(t..t + 1)?;
        outputs.push(layer.step(&mut cache, &token, &token, None)?);
    }
    Ok(HostTensor::concat(&outputs, 1)?)
}

/// Runs a Llama-shaped layer (Nq = 8, Nkv = 2, H = 32, D = 256, a window of 64) on `gpu`, or on the
/// CPU layer when `gpu` is `None`, and the oracle beside it.
pub fn run(gpu: Option<&GpuContext>) -> Result<Fallback, Box<dyn std::error::Error>> {
    let config = GqaConfig { sliding_window: Some(64), ..GqaConfig::new(32, 8, 2) };
    let dims = LayerDims { query_dim: 256, key_dim: 256, value_dim: 256 };
    let weights = Weights::random(&config, dims, 11)?;
    let (len, prompt) = (80, 70);
    let inputs = HostTensor::new([2, len, 256], (0..2 * len * 256).map(|i| (i as f32 * 0.37).sin()).collect())?;

    let tokens = match gpu {
        Some(ctx) => generate(&GqaLayer::new(ctx, &config, &weights)?, &inputs, prompt)?,
        None => generate(&CpuLayer::new(config.clone(), weights.clone())?, &inputs, prompt)?,
    };
    let oracle = generate(&ReferenceLayer::new(config, weights)?, &inputs, prompt)?;
    Ok(Fallback { tokens, oracle })
}

#[allow(dead_code, reason = "tests/api_examples.rs includes this file and calls `run`")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (ctx, why) = if std::env::args().any(|a| a == "--cpu") { (None, "--cpu".to_string()) } else { pick() };
    println!("{why}");
    let start = std::time::Instant::now();
    let Fallback { tokens, oracle } = run(ctx.as_ref())?;
    let check = gqa::reference::check::compare_tensors(&tokens, &oracle, gqa::reference::check::Tolerance::F32);
    println!(
        "{} outputs {:?} (with the oracle's) in {:.1} ms: {check}",
        if ctx.is_some() { "GPU" } else { "CPU layer" },
        tokens.shape(),
        start.elapsed().as_secs_f64() * 1e3
    );
    if !check.passed() {
        return Err("the outputs differ from the oracle's".into());
    }
    Ok(())
}
