//! Autoregressive generation with a GPU KV cache: a layer with random weights reads a prompt, then
//! produces one token at a time, each step's output (RMS-normalised) fed back as the next input.
//! Every step projects only its new token and attends over the cache. The cache stores f32, f16 or
//! int8 (`--cache`); with `--window W` the layer has a sliding window and decodes in a ring cache of
//! the window's size (plus the prompt's chunk, and `--keep-first` attention sinks), so a
//! conversation of any length runs in the same memory at the same step time. With `--f16` the
//! layer computes in f16 (where the adapter has `SHADER_F16`) over its f16 cache, checked at the
//! f16 tolerance (5e-3).
//!
//! The oracle (f64, its own cache of the same storage and layout) takes the same inputs in
//! lockstep, and every step's output is compared with its own at the f32 tolerance. The weights are
//! rounded to multiples of 1/256 and each input token to multiples of 1/64, so that the key and
//! value projections are exact in f32 and in f64: the GPU's quantized cache and the oracle's then
//! hold the very same values (otherwise a value within an f32 rounding of a quantization boundary
//! may round one way on one side and the other way on the other). Prints the
//! prefill time, tokens/s, the median step time of the first and of the last 1,000 steps (or
//! tenth of the steps), and the cache's size.
//!
//! `--class llama3` or `--class gemma3` generates with the attention of a KerasHub decoder instead
//! (Llama 3.1's RoPE frequency adjustment; Gemma 3's QK-norm, RoPE and, with `--window`, its sliding
//! window) through the library's own cache, the oracle of KerasHub's layer taking the same tokens
//! in lockstep through KerasHub's fixed-capacity cache (f32 caches).
//!
//! ```sh
//! cargo run --release --example generate                         # 64 tokens after a 32-token prompt
//! cargo run --release --example generate -- --class llama3 --tokens 128 --prompt 64
//! cargo run --release --example generate -- --class gemma3 --window 32 --tokens 128
//! cargo run --release --example generate -- --tokens 256 --prompt 128 --cache int8
//! cargo run --release --example generate -- --tokens 256 --prompt 128 --f16
//! # The long-conversation benchmark of docs/PERFORMANCE.md: 100,000 tokens in a 1,024-token window.
//! cargo run --release --example generate -- --tokens 100000 --prompt 1024 --window 1024 --chunk 64 --dim 512
//! WGPU_BACKEND=gl cargo run --release --example generate
//! ```

use std::time::{Duration, Instant};

use gqa::core::{CacheShape, CacheStorage, GqaConfig, HostTensor, LayerDims, Precision};
use gqa::gpu::{GpuContext, GqaLayer, KvCache};
use gqa::reference::check::{Tolerance, compare_tensors};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Tokens generated after the prompt.
    pub tokens: usize,
    /// Prompt tokens (prefilled in calls of at most `chunk`).
    pub prompt: usize,
    /// Features of a token (Dq = Dk = Dv); the layer has 8 query heads and 2 kv heads of 64.
    pub dim: usize,
    /// How the caches store keys and values.
    pub cache: CacheStorage,
    /// A sliding window, decoded in a ring cache; `None`: a linear cache of prompt + tokens.
    pub window: Option<usize>,
    /// Tokens a ring keeps from the start (attention sinks).
    pub keep_first: usize,
    /// The most tokens one prefill call appends (the ring's chunk).
    pub chunk: usize,
    /// A KerasHub decoder's attention instead of Keras' `GroupQueryAttention`.
    pub class: Option<Decoder>,
    /// The layer computes in f16 (Keras' `mixed_float16`) where the adapter has `SHADER_F16`, over
    /// its f16 cache (`cache` must then be f16), checked at the f16 tolerance.
    pub f16: bool,
}

/// The KerasHub decoders `--class` names, at the example's sizes (Nq=8, Nkv=2, H=64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    /// `LlamaAttention` with Llama 3.1's RoPE (wavelength 500,000, factor 8, low 1, high 4,
    /// pretraining length 8,192).
    Llama3,
    /// `CachedGemma3Attention` with QK-norm, RoPE (wavelength 10,000) and, with `--window`, its
    /// sliding window.
    Gemma3,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            tokens: 64,
            prompt: 32,
            dim: 256,
            cache: CacheStorage::F32,
            window: None,
            keep_first: 0,
            chunk: 64,
            class: None,
            f16: false,
        }
    }
}

/// The error a quantized cache adds: the oracle's outputs over the quantized cache against its
/// outputs over an f32 cache, fed the same inputs at every step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantizationError {
    /// The largest |difference| of an output element.
    pub max: f64,
    /// The RMS of the differences.
    pub rms: f64,
    /// The RMS of the f32 cache's outputs (the scale of the differences).
    pub output_rms: f64,
}

/// What [`run`] produced.
pub struct Generated {
    /// The generated tokens (1, N, D) from the GPU.
    pub tokens: HostTensor,
    /// The oracle's outputs of the same steps (same inputs, its own cache).
    pub oracle: HostTensor,
    /// Time of the prefill.
    pub prefill: Duration,
    /// Time of each step (the GPU's call alone).
    pub steps: Vec<Duration>,
    /// The GPU cache's capacity in tokens.
    pub capacity: usize,
    /// Its bytes per token (keys and values).
    pub bytes_per_token: u64,
    /// Its bytes on the device.
    pub device_bytes: u64,
    /// For a quantized cache, its error against an f32 cache over the generated steps.
    pub quantization_error: Option<QuantizationError>,
    /// What the GPU layer computed in (f16 with `--f16` where the adapter has `SHADER_F16`).
    pub precision: Precision,
}

/// `x` rounded to a multiple of `step` (a power of two).
fn on_grid(x: f32, step: f32) -> f32 {
    (x / step).round() * step
}

/// The next input: the last output row, scaled to unit RMS (the stand-in for a model's embedding of
/// its sampled token; keeps the values O(1) over long generations), on the grid of 1/64.
fn next_input(output: &HostTensor) -> HostTensor {
    let d = output.shape()[2];
    let last = &output.data()[output.len() - d..];
    let rms = (last.iter().map(|x| x * x).sum::<f32>() / d as f32).sqrt().max(1e-6);
    HostTensor::new([1, 1, d], last.iter().map(|x| on_grid(x / rms, 1.0 / 64.0)).collect()).expect("(1, 1, D)")
}

/// Generates `o.tokens` tokens after an `o.prompt`-token prompt on `ctx`, the oracle in lockstep.
pub fn run(ctx: &GpuContext, o: &Options) -> Result<Generated, Box<dyn std::error::Error>> {
    if let Some(class) = o.class {
        return run_kerashub(ctx, o, class);
    }
    // GroupQueryAttention(head_dim=64, num_query_heads=8, num_key_value_heads=2, sliding_window).
    let config = GqaConfig { sliding_window: o.window, ..GqaConfig::new(64, 8, 2) };
    let d = o.dim;
    let dims = LayerDims { query_dim: d, key_dim: d, value_dim: d };
    let mut weights = gqa::reference::initialize_weights(&config, dims, 3)?;
    for dense in [&mut weights.query, &mut weights.key, &mut weights.value, &mut weights.output] {
        for w in dense.kernel.data_mut().iter_mut().chain(dense.bias.iter_mut().flat_map(|b| b.data_mut())) {
            *w = on_grid(*w, 1.0 / 256.0);
        }
    }
    let precision = if o.f16 { Precision::F16 } else { Precision::F32 };
    let layer = GqaLayer::with_precision(ctx, &config, &weights, precision)?;
    let tolerance = Tolerance::for_precision(layer.precision());
    let x = prompt_of(o)?;

    let chunk = o.chunk.max(1);
    let shape = match o.window {
        Some(_) => CacheShape::ring(&config, 1, chunk, o.keep_first)?,
        None => CacheShape::new(&config, 1, o.prompt + o.tokens)?,
    }
    .with_storage(o.cache)?;
    let mut cache = KvCache::from_shape(&layer, shape)?;
    let mut oracle_cache = gqa::reference::KvCache::from_shape(&config, shape)?;
    // Beside a quantized cache, the oracle over an f32 cache of the same layout, for the error the
    // quantization adds.
    let f32_shape = CacheShape { storage: CacheStorage::F32, ..shape };
    let mut unquantized =
        (o.cache != CacheStorage::F32).then(|| gqa::reference::KvCache::from_shape(&config, f32_shape)).transpose()?;

    // Self-attention: the token is query, key and value. The prompt in calls of at most `chunk`.
    let parts = (0..o.prompt)
        .step_by(chunk)
        .map(|from| x.time_slice(from..(from + chunk).min(o.prompt)))
        .collect::<Result<Vec<_>, _>>()?;
    let start = Instant::now();
    let mut out = None;
    for part in &parts {
        out = Some(layer.prefill(&mut cache, part, part, None, None)?);
    }
    let prefill = start.elapsed();
    let mut want = None;
    for part in &parts {
        want = Some(oracle_cache.prefill(&config, &weights, part, part, None, None)?);
        if let Some(c) = unquantized.as_mut() {
            c.prefill(&config, &weights, part, part, None, None)?;
        }
    }
    let check = |got: &HostTensor, want: &HostTensor, what: &str| -> Result<(), Box<dyn std::error::Error>> {
        let c = compare_tensors(got, want, tolerance);
        if c.passed() { Ok(()) } else { Err(format!("{what}: against the oracle: {c}").into()) }
    };
    let (mut out, want) = out.zip(want).ok_or("a prompt of at least one token")?;
    check(&out, &want, "the prompt's last chunk")?;

    let mut generated = Vec::with_capacity(o.tokens * d);
    let mut oracle = Vec::with_capacity(o.tokens * d);
    let mut steps = Vec::with_capacity(o.tokens);
    let (mut max, mut sq, mut out_sq) = (0.0f64, 0.0f64, 0.0f64);
    for i in 0..o.tokens {
        let token = next_input(&out);
        let start = Instant::now();
        out = layer.step(&mut cache, &token, &token, None)?;
        steps.push(start.elapsed());
        let want = oracle_cache.step(&config, &weights, &token, &token, None)?;
        check(&out, &want, &format!("step {i}"))?;
        if let Some(c) = unquantized.as_mut() {
            let exact = c.step(&config, &weights, &token, &token, None)?;
            for (q, e) in want.data().iter().zip(exact.data()) {
                let diff = f64::from(q - e).abs();
                (max, sq, out_sq) = (max.max(diff), sq + diff * diff, out_sq + f64::from(*e).powi(2));
            }
        }
        generated.extend_from_slice(out.data());
        oracle.extend_from_slice(want.data());
    }
    Ok(Generated {
        tokens: HostTensor::new([1, o.tokens, d], generated)?,
        oracle: HostTensor::new([1, o.tokens, d], oracle)?,
        prefill,
        steps,
        capacity: shape.capacity,
        bytes_per_token: shape.bytes_per_token(),
        device_bytes: cache.device_bytes(),
        quantization_error: unquantized.map(|_| {
            let n = (o.tokens * d) as f64;
            QuantizationError { max, rms: (sq / n).sqrt(), output_rms: (out_sq / n).sqrt() }
        }),
        precision: layer.precision(),
    })
}

/// The prompt's tokens: a fixed pattern on the grid of 1/64.
fn prompt_of(o: &Options) -> Result<HostTensor, Box<dyn std::error::Error>> {
    let d = o.dim;
    let prompt = (0..o.prompt * d).map(|i| on_grid((i as f32 * 0.37).sin(), 1.0 / 64.0)).collect();
    Ok(HostTensor::new([1, o.prompt, d], prompt)?)
}

/// [`run`] with a KerasHub decoder's attention: the GPU through the library's cache, the oracle of
/// KerasHub's layer through KerasHub's cache of `prompt + tokens` slots (each call's causal mask
/// over its slots), both fed the same tokens.
fn run_kerashub(ctx: &GpuContext, o: &Options, class: Decoder) -> Result<Generated, Box<dyn std::error::Error>> {
    use gqa::core::kerashub::{KerasHubCache, KerasHubCall, KerasHubClass, KerasHubConfig};
    use gqa::core::{ExtensionWeights, Mask};

    if o.cache != CacheStorage::F32 || o.keep_first > 0 {
        return Err(
            "--class runs an f32 layer over f32 linear caches (no --cache f16/int8, no --f16, no --keep-first)".into(),
        );
    }
    let d = o.dim;
    let (kind, json) = match class {
        Decoder::Llama3 => (
            KerasHubClass::Llama,
            serde_json::json!({
                "num_query_heads": 8, "num_key_value_heads": 2, "rope_max_wavelength": 500_000,
                "rope_frequency_adjustment_factor": 8.0, "rope_low_freq_factor": 1.0,
                "rope_high_freq_factor": 4.0, "rope_pretraining_sequence_length": 8192,
            }),
        ),
        Decoder::Gemma3 => (
            KerasHubClass::Gemma3,
            serde_json::json!({
                "head_dim": 64, "num_query_heads": 8, "num_key_value_heads": 2, "use_query_key_norm": true,
                "use_sliding_window_attention": o.window.is_some(), "sliding_window_size": o.window.unwrap_or(4096),
            }),
        ),
    };
    let spec = KerasHubConfig::from_value(kind, &json, d)?;
    let h = spec.config.head_dim;
    let dims = LayerDims { query_dim: d, key_dim: d, value_dim: d };
    let weights = gqa::reference::initialize_weights(&spec.config, dims, 3)?;
    let scale = |phase: f32| HostTensor::new([h], (0..h).map(|i| 0.5 * (i as f32 * 0.7 + phase).sin()).collect());
    let extra = match spec.extensions.qk_norm {
        Some(_) => ExtensionWeights { query_norm: Some(scale(0.0)?), key_norm: Some(scale(1.0)?), sinks: None },
        None => ExtensionWeights::default(),
    };
    let layer = gqa::gpu::KerasHubLayer::new(ctx, spec.clone(), &weights, &extra)?;
    let oracle = gqa::reference::KerasHubLayer::new(spec, weights, extra)?;
    let capacity = o.prompt + o.tokens;
    let gpu = layer.layer();
    let mut cache = gpu.new_cache(1, capacity)?;
    let mut theirs = KerasHubCache::zeros(1, capacity, 2, h);
    // KerasHub's decoder mask of a call writing `t` tokens at `index`: slot j visible iff j <= index + row.
    let causal = |index: usize, t: usize| {
        Mask::new([1, t, capacity], (0..t * capacity).map(|k| k % capacity <= index + k / capacity).collect())
    };
    let x = prompt_of(o)?;
    let chunk = o.chunk.max(1);
    let (mut out, mut want) = (None, None);
    let start = Instant::now();
    for from in (0..o.prompt).step_by(chunk) {
        let part = x.time_slice(from..(from + chunk).min(o.prompt))?;
        out = Some(gpu.prefill(&mut cache, &part, &part, None, None)?);
    }
    let prefill = start.elapsed();
    for from in (0..o.prompt).step_by(chunk) {
        let part = x.time_slice(from..(from + chunk).min(o.prompt))?;
        let mask = causal(from, part.shape()[1])?;
        let r = oracle.call(&KerasHubCall::new(&part).with_mask(&mask).with_cache(&theirs, Some(from)))?;
        theirs = r.cache.ok_or("KerasHub's cached call returns its cache")?;
        want = Some(r.output);
    }
    let check = |got: &HostTensor, want: &HostTensor, what: &str| -> Result<(), Box<dyn std::error::Error>> {
        let c = compare_tensors(got, want, Tolerance::F32);
        if c.passed() { Ok(()) } else { Err(format!("{what}: against KerasHub's oracle: {c}").into()) }
    };
    let (mut out, want) = out.zip(want).ok_or("a prompt of at least one token")?;
    check(&out, &want, "the prompt's last chunk")?;
    let (mut generated, mut expected, mut steps) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..o.tokens {
        let token = next_input(&out);
        let start = Instant::now();
        out = gpu.step(&mut cache, &token, &token, None)?;
        steps.push(start.elapsed());
        let index = o.prompt + i;
        let mask = causal(index, 1)?;
        let r = oracle.call(&KerasHubCall::new(&token).with_mask(&mask).with_cache(&theirs, Some(index)))?;
        theirs = r.cache.ok_or("KerasHub's cached call returns its cache")?;
        check(&out, &r.output, &format!("step {i}"))?;
        generated.extend_from_slice(out.data());
        expected.extend_from_slice(r.output.data());
    }
    Ok(Generated {
        tokens: HostTensor::new([1, o.tokens, d], generated)?,
        oracle: HostTensor::new([1, o.tokens, d], expected)?,
        prefill,
        steps,
        capacity,
        bytes_per_token: cache.shape().bytes_per_token(),
        device_bytes: cache.device_bytes(),
        quantization_error: None,
        precision: Precision::F32,
    })
}

/// The median of `times` in ms.
fn median_ms(times: &[Duration]) -> f64 {
    let mut v = times.to_vec();
    v.sort();
    v.get(v.len() / 2).map_or(0.0, |t| t.as_secs_f64() * 1e3)
}

/// `--tokens N --prompt P --dim D --cache f32|f16|int8 --window W --keep-first K --chunk C
/// --class llama3|gemma3 --f16`.
fn options(args: &[String]) -> Result<Options, Box<dyn std::error::Error>> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--f16" {
            // A layer in f16 over its f16 cache (a later --cache overrides: other storages are refused).
            (o.f16, o.cache) = (true, CacheStorage::F16);
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || value.parse::<usize>().map_err(|e| format!("{flag} {value}: {e}"));
        match flag.as_str() {
            "--tokens" => o.tokens = number()?.max(1),
            "--prompt" => o.prompt = number()?.max(1),
            "--dim" => o.dim = number()?,
            "--cache" => o.cache = value.parse()?,
            "--window" => o.window = Some(number()?),
            "--keep-first" => o.keep_first = number()?,
            "--chunk" => o.chunk = number()?.max(1),
            "--class" => {
                o.class = Some(match value.as_str() {
                    "llama3" => Decoder::Llama3,
                    "gemma3" => Decoder::Gemma3,
                    other => return Err(format!("--class {other}: llama3 or gemma3").into()),
                })
            }
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    Ok(o)
}

#[allow(dead_code, reason = "tests/api_examples.rs includes this file and calls `run`")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = options(&std::env::args().skip(1).collect::<Vec<_>>())?;
    let ctx = GpuContext::new()?;
    println!("adapter: {}", ctx.describe());
    let g = run(&ctx, &o)?;
    let total: Duration = g.steps.iter().sum();
    let worst = g.tokens.data().iter().zip(g.oracle.data()).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    let window = o.window.map_or_else(|| "no window".into(), |w| format!("window {w}, keep first {}", o.keep_first));
    let class = o.class.map_or_else(|| "GroupQueryAttention".to_string(), |c| format!("{c:?}'s KerasHub attention"));
    println!(
        "layer: {class} Nq=8 Nkv=2 H=64 D={}, {window}; {} cache of {} tokens ({} bytes per token, {:.2} MB on the device)",
        o.dim,
        o.cache,
        g.capacity,
        g.bytes_per_token,
        g.device_bytes as f64 / 1e6
    );
    println!("prefill of {} tokens (calls of up to {}): {:.1} ms", o.prompt, o.chunk, g.prefill.as_secs_f64() * 1e3);
    println!(
        "{} tokens generated in {:.1} ms: {:.1} tokens/s ({:.3} ms per step on average)",
        o.tokens,
        total.as_secs_f64() * 1e3,
        o.tokens as f64 / total.as_secs_f64(),
        total.as_secs_f64() * 1e3 / o.tokens as f64
    );
    let n = 1000.min(o.tokens.div_ceil(10));
    let (first, last) = (median_ms(&g.steps[..n]), median_ms(&g.steps[g.steps.len() - n..]));
    println!(
        "median step: first {n} steps {first:.3} ms, last {n} steps {last:.3} ms (last / first = {:.3})",
        last / first
    );
    let tolerance = match g.precision {
        Precision::F16 => "5e-3 + 5e-3 |ref|: the layer in f16",
        Precision::F32 => "1e-5 + 1e-4 |ref|",
    };
    println!("every step checked against the oracle ({tolerance}): max |gpu - oracle| = {worst:e}");
    if let Some(e) = g.quantization_error {
        println!(
            "{} cache against an f32 cache (the oracle's, same inputs): max |diff| {:.3e}, RMS {:.3e} (outputs' RMS {:.3e}: {:.3}%)",
            o.cache,
            e.max,
            e.rms,
            e.output_rms,
            100.0 * e.rms / e.output_rms
        );
    }
    Ok(())
}
