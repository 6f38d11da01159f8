//! The CPU layer's side of the comparison with PyTorch (`scripts/cpu-baseline.sh`):
//!
//! - `torch_case write FILE`: draws the headline layer (B = 1, Nq = 32, Nkv = 8, H = 128,
//!   D = 4096, random biases), its inputs and a decode case (4,095 cached tokens and one step;
//!   the attention alone at T = 1 over S = 4,096), runs the f64 oracle on each, and writes
//!   weights, inputs and the oracle's outputs to one safetensors file that `tools/torch_baseline.py`
//!   reads too.
//! - `torch_case time FILE [RUNS]`: times the CPU layer on that file (the median of RUNS
//!   calls after a warm-up; the whole layer at T = S = 512, then one decode step of the layer, then
//!   the decode attention alone), checks every output against the oracle's (atol 1e-5, rtol 1e-4),
//!   and prints one JSON line.

use std::path::Path;
use std::time::{Duration, Instant};

use gqa_core::{AttentionLayer, CacheContents, CallOptions, Dense, GqaConfig, HostTensor, LayerDims, Problem, Weights};
use gqa_cpu::CpuLayer;
use gqa_io::TensorFile;
use gqa_ref::ReferenceLayer;
use gqa_ref::check::{Tolerance, compare};
use rand::{Rng, SeedableRng, rngs::StdRng};

const D: usize = 4096;
const T: usize = 512;
const HELD: usize = 4095;

fn config() -> GqaConfig {
    GqaConfig::new(128, 32, 8)
}

fn random(shape: &[usize], rng: &mut StdRng) -> HostTensor {
    let n = shape.iter().product();
    HostTensor::new(shape.to_vec(), (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()).unwrap()
}

/// The decode attention's oracle: softmax((q/√H)·K) · V per query head, kv head u / R, in f64.
fn attention_oracle(q: &[f32], k: &[f32], v: &[f32], s: usize) -> Vec<f32> {
    let (nq, nkv, h) = (32, 8, 128);
    let mut out = vec![0.0f32; nq * h];
    for u in 0..nq {
        let g = u / (nq / nkv);
        let scale = 1.0 / (h as f64).sqrt();
        let logits: Vec<f64> = (0..s)
            .map(|j| (0..h).map(|i| f64::from(q[u * h + i]) * scale * f64::from(k[(j * nkv + g) * h + i])).sum())
            .collect();
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = logits.iter().map(|x| (x - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        for i in 0..h {
            let o: f64 = (0..s).map(|j| e[j] / sum * f64::from(v[(j * nkv + g) * h + i])).sum();
            out[u * h + i] = o as f32;
        }
    }
    out
}

fn write(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let config = config();
    let dims = LayerDims { query_dim: D, key_dim: D, value_dim: D };
    let mut weights = Weights::random(&config, dims, 1)?;
    let mut rng = StdRng::seed_from_u64(2);
    for which in Dense::ALL {
        if let Some(bias) = weights.dense_mut(which).and_then(|d| d.bias.as_mut()) {
            bias.data_mut().iter_mut().for_each(|b| *b = rng.random_range(-0.5..0.5));
        }
    }
    let oracle = ReferenceLayer::new(config.clone(), weights.clone())?;
    let mut file = TensorFile::new(path.display().to_string());
    for (name, w) in [
        ("query", &weights.query),
        ("key", &weights.key),
        ("value", &weights.value),
        ("attention_output", &weights.output),
    ] {
        file.insert_f32(format!("{name}.kernel"), &w.kernel);
        file.insert_f32(format!("{name}.bias"), w.bias.as_ref().ok_or("the layer has biases")?);
    }

    eprintln!("oracle: the whole layer at T = S = {T}");
    let x = random(&[1, T, D], &mut rng);
    let y = oracle.forward(&x, &x, None, &CallOptions::default())?;
    file.insert_f32("x", &x);
    file.insert_f32("y", &y.output);

    eprintln!("oracle: a decode step over {HELD} cached tokens");
    let cached = CacheContents {
        keys: random(&[1, HELD, 8, 128], &mut rng),
        values: random(&[1, HELD, 8, 128], &mut rng),
        lengths: vec![HELD],
    };
    let mut cache = oracle.new_cache(1, HELD + 1)?;
    oracle.load_cache(&mut cache, &cached)?;
    let x_step = random(&[1, 1, D], &mut rng);
    let y_step = oracle.step(&mut cache, &x_step, &x_step, None)?;
    file.insert_f32("cache.keys", &cached.keys);
    file.insert_f32("cache.values", &cached.values);
    file.insert_f32("x_step", &x_step);
    file.insert_f32("y_step", &y_step);

    eprintln!("oracle: the decode attention alone over {} keys", HELD + 1);
    let (q, k, v) = (
        random(&[1, 1, 32, 128], &mut rng),
        random(&[1, HELD + 1, 8, 128], &mut rng),
        random(&[1, HELD + 1, 8, 128], &mut rng),
    );
    let o = attention_oracle(q.data(), k.data(), v.data(), HELD + 1);
    file.insert_f32("attn.q", &q);
    file.insert_f32("attn.k", &k);
    file.insert_f32("attn.v", &v);
    file.insert_f32("attn.o", &HostTensor::new([1, 1, 32, 128], o)?);
    file.write(path)?;
    Ok(())
}

/// The median of `runs` calls of `call` after one warm-up, and whether every output passed.
fn timed(runs: usize, want: &[f32], mut call: impl FnMut() -> Vec<f32>) -> (Duration, bool) {
    let mut checked = compare(&call(), want, Tolerance::F32).passed();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let got = call();
            let elapsed = start.elapsed();
            checked &= compare(&got, want, Tolerance::F32).passed();
            elapsed
        })
        .collect();
    times.sort();
    (times[times.len() / 2], checked)
}

fn time(path: &Path, runs: usize) -> Result<(), Box<dyn std::error::Error>> {
    let file = TensorFile::read(path)?;
    let config = config();
    let dims = LayerDims { query_dim: D, key_dim: D, value_dim: D };
    let mut weights = Weights::random(&config, dims, 1)?;
    for (name, w) in [
        ("query", &mut weights.query),
        ("key", &mut weights.key),
        ("value", &mut weights.value),
        ("attention_output", &mut weights.output),
    ] {
        w.kernel = file.f32(&format!("{name}.kernel"), "")?;
        w.bias = Some(file.f32(&format!("{name}.bias"), "")?);
    }
    let layer = CpuLayer::new(config.clone(), weights)?;

    let x = file.f32("x", "")?;
    let y = file.f32("y", "")?;
    let (forward, forward_ok) =
        timed(runs, y.data(), || layer.forward(&x, &x, None, &CallOptions::default()).unwrap().output.into_data());

    let cached =
        CacheContents { keys: file.f32("cache.keys", "")?, values: file.f32("cache.values", "")?, lengths: vec![HELD] };
    let x_step = file.f32("x_step", "")?;
    let y_step = file.f32("y_step", "")?;
    let mut cache = layer.new_cache(1, HELD + 1)?;
    layer.load_cache(&mut cache, &cached)?;
    // Each timed step appends the same token to the same 4,095 held ones.
    let (step, step_ok) = timed(runs, y_step.data(), || {
        cache.truncate(HELD).unwrap();
        layer.step(&mut cache, &x_step, &x_step, None).unwrap().into_data()
    });

    let (q, k, v, o) =
        (file.f32("attn.q", "")?, file.f32("attn.k", "")?, file.f32("attn.v", "")?, file.f32("attn.o", "")?);
    let problem = Problem::new(&config, &[1, 1, D], &[1, HELD + 1, D], None, &CallOptions::default())?;
    let (attn, attn_ok) = timed(runs, o.data(), || {
        gqa_cpu::attention(&problem, q.data(), k.data(), v.data()).unwrap().output.into_data()
    });

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{{\"impl\":\"gqa-cpu\",\"threads\":{},\"layer_ms\":{:.3},\"layer_checked\":{forward_ok},\"step_ms\":{:.3},\"step_checked\":{step_ok},\"attn_ms\":{:.3},\"attn_checked\":{attn_ok}}}",
        rayon::current_num_threads(),
        ms(forward),
        ms(step),
        ms(attn)
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["write", path] => write(Path::new(path)),
        ["time", path] => time(Path::new(path), 5),
        ["time", path, runs] => time(Path::new(path), runs.parse()?),
        _ => Err("usage: torch_case write FILE | torch_case time FILE [RUNS]".into()),
    }
}
