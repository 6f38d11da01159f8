//! `gqa bench --decode`: the time of one KV-cache decoding step (one new token per sequence) against
//! the number of cached tokens S, on one adapter, on the CPU layer's cache (`gqa_cpu::KvCache`, f32,
//! every thread) and on the oracle's own cache; `--backend cpu` times the CPU layer's alone. The
//! caches are loaded with S - 1 projected tokens (prefilling 32K tokens at Dq=4096 would take hours
//! on a software adapter and measures something else); each timed step appends token S and is
//! truncated away. A step projects only its new token, so its time must grow linearly in S: the
//! report fits `ms = a + b * S` and gives R². On the GPU the attention over the cache (the appends,
//! the split pass and its reduce: the steps between the input and the output projections) is also
//! timed on its own, with the layer's step timer (GPU timestamps where the device has them), and
//! judged against the copy probe (docs/PERFORMANCE.md, "Decoding with the KV cache").
//!
//! A timing counts only from a checked run: the oracle's cache, loaded with the same tokens, takes
//! the same step first, and its output is compared with the GPU's of the warm-up step, of every
//! timed step and of the attention timer (whose timed runs write the attention's result; the rest
//! of its plan, the output projection, then runs once untimed and the output is read back), and
//! with the CPU layer's of its warm-up step and of every timed step.

use std::time::{Duration, Instant};

use gqa_core::{CacheContents, CacheShape, CacheStorage, CallOptions, GqaConfig, HostTensor, LayerDims, Problem};
use gqa_cpu::CpuLayer;
use gqa_ref::check::{Tolerance, compare_tensors};
use gqa_wgpu::{GpuContext, GqaLayer};

use crate::bench::{BenchArgs, RowCheck, Side, Tamper, check_failures, data, progress};
use crate::error::CliError;
use crate::timed::Call;

/// What the GPU measured at one cached length.
#[derive(Debug, Clone)]
pub(crate) struct GpuStep {
    /// The whole step (median).
    pub(crate) step: Duration,
    /// The attention over the cache alone (median).
    pub(crate) attention: Duration,
    /// The whole step's K and V GB/s over the copy probe run just before it, in percent: the median
    /// over the timed steps.
    pub(crate) copy_pct: f64,
    /// The same for the attention over the cache alone.
    pub(crate) attention_copy_pct: f64,
}

/// One cached length.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// The sequence's length after the step: S - 1 cached tokens plus the new one.
    pub(crate) seq: usize,
    /// Keys the step attends over: S, or at most the ring's capacity under a window.
    pub(crate) keys: usize,
    /// How the GPU's cache stores keys and values (the CPU layer's is f32).
    pub(crate) cache: CacheStorage,
    /// On a GPU backend.
    pub(crate) gpu: Option<GpuStep>,
    /// The CPU layer's step (median).
    pub(crate) cpu: Duration,
    /// The oracle's step, when it ran.
    pub(crate) oracle: Option<Duration>,
    /// Bytes of K and V the step reads once (in the GPU cache's storage).
    pub(crate) kv_bytes: f64,
    /// Bytes one token takes in the GPU's cache (keys and values).
    pub(crate) bytes_per_token: u64,
    /// FLOPs of one step.
    pub(crate) flops: f64,
    /// How the row's outputs (the GPU's and the CPU layer's) compared with the oracle's step.
    pub(crate) check: RowCheck,
}

impl Row {
    /// The median step of the row's main backend: the GPU's, or the CPU layer's under `--backend cpu`.
    pub(crate) fn main(&self) -> Duration {
        self.gpu.as_ref().map_or(self.cpu, |g| g.step)
    }

    /// The GPU's speed-up over the CPU layer.
    pub(crate) fn vs_cpu(&self) -> Option<f64> {
        self.gpu.as_ref().map(|g| self.cpu.as_secs_f64() / g.step.as_secs_f64())
    }
}

/// The GPU side: the context, the probes, the layer and its cache.
pub(crate) struct Gpu {
    /// The adapter, with the flags' tuning.
    pub(crate) ctx: GpuContext,
    /// The roofline probes (the copy probe runs before each timed step).
    pub(crate) probes: gqa_wgpu::roofline::Probes,
    /// Their first measurement, for the header.
    pub(crate) roof: gqa_wgpu::roofline::Roofline,
    /// The layer on the GPU.
    pub(crate) layer: GqaLayer,
    /// Its caches, one per storage asked for, each of the longest length's capacity (or a ring).
    pub(crate) caches: Vec<gqa_wgpu::KvCache>,
}

fn gpu_err(context: String) -> impl Fn(gqa_wgpu::GpuError) -> CliError {
    move |source| CliError::Gpu { context: context.clone(), source }
}

impl Gpu {
    fn open(
        args: &BenchArgs,
        config: &GqaConfig,
        weights: &gqa_core::Weights,
        shapes: &[CacheShape],
    ) -> Result<Self, CliError> {
        let ctx = crate::backend::open(args.backend)?;
        let mut tuning = args.tuning.apply(ctx.tuning());
        if args.no_decode_kernel {
            tuning.decode_kernel = false;
        }
        let ctx = ctx.with_tuning(tuning);
        // The probes are built once; the copy probe runs again before every timed step, and each
        // share of it is the median of the steps' own ratios (the header's figures are the first
        // measurement).
        let probes = gqa_wgpu::roofline::Probes::new(&ctx).map_err(gpu_err("building the roofline probes".into()))?;
        let roof = probes.measure(3).map_err(gpu_err("measuring the roofline".into()))?;
        let precision = if args.f16 { gqa_core::Precision::F16 } else { gqa_core::Precision::F32 };
        let layer = GqaLayer::with_precision(&ctx, config, weights, precision)
            .map_err(gpu_err("uploading the weights".into()))?;
        let caches = shapes
            .iter()
            .map(|&shape| {
                let what = format!("an {} KV cache of {} tokens", shape.storage, shape.capacity);
                gqa_wgpu::KvCache::from_shape(&layer, shape).map_err(gpu_err(what))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { ctx, probes, roof, layer, caches })
    }

    /// The steps at one length over every cache, their timed runs interleaved so that a drift of
    /// the machine's speed reaches every storage alike (their ratios come from the same moments):
    /// each cache's warm-up step; its attention timer primed; `runs` rounds of the attention alone
    /// over each cache in turn, then `runs` rounds of whole steps over each cache in turn, each run
    /// after a copy probe. `kv_bytes[i]`: the K and V bytes a step over cache `i` reads; `verify(i,
    /// call, output)` checks each output of cache `i`.
    fn rows(
        &mut self,
        runs: usize,
        contents: &CacheContents,
        (q, v): (&HostTensor, &HostTensor),
        kv_bytes: &[f64],
        verify: &mut dyn FnMut(usize, Call, HostTensor),
    ) -> Result<(Vec<GpuStep>, String), CliError> {
        let held = contents.lengths.first().copied().unwrap_or(0);
        let seq = held + 1;
        let run_err = gpu_err(format!("a decode step at S={seq} on {}", self.ctx.describe()));
        let probe_err = || gpu_err("measuring the roofline".into());
        let share = |bytes_per_s: f64, probe_gbps: f64| 100.0 * bytes_per_s / 1e9 / probe_gbps;
        let (layer, caches, probes) = (&self.layer, &mut self.caches, &self.probes);
        let n = caches.len();
        for (i, cache) in caches.iter_mut().enumerate() {
            cache.load(contents).map_err(&run_err)?;
            verify(i, Call::WarmUp, layer.step(cache, q, v, None).map_err(&run_err)?);
            cache.truncate(held).map_err(&run_err)?;
        }
        // The attention alone: each cache's timer, its whole plan run once, then the rounds.
        let mut timers = Vec::with_capacity(n);
        for cache in caches.iter() {
            let timer = layer.step_timer_cached(cache, q, v, None).map_err(&run_err)?;
            // A cached call never splits the batch, so the plan has one attention core.
            let all = 0..timer.plan().steps.len();
            let attention = timer.plan().attention_steps().unwrap_or(all.clone());
            timer.time(all.clone()).map_err(&run_err)?;
            timers.push((timer, all, attention));
        }
        let timing = timers.first().map_or_else(String::new, |(t, _, _)| format!("{:?}", t.timing()));
        let (mut attention, mut attention_shares) = (vec![Vec::new(); n], vec![Vec::new(); n]);
        for _ in 0..runs {
            for (i, (timer, _, steps)) in timers.iter().enumerate() {
                let probe = probes.copy_gbps(1).map_err(probe_err())?;
                let t = timer.time(steps.clone()).map_err(&run_err)?;
                attention[i].push(t);
                attention_shares[i].push(share(kv_bytes[i] / t.as_secs_f64(), probe));
            }
        }
        // What each cache's last timed attention wrote, carried through the rest of its plan
        // (untimed) and read back.
        for (i, (timer, all, steps)) in timers.iter().enumerate() {
            timer.time(steps.end..all.end).map_err(&run_err)?;
            verify(i, Call::AttentionTimer, timer.read_output().map_err(&run_err)?.output);
        }
        drop(timers);
        let (mut times, mut shares) = (vec![Vec::new(); n], vec![Vec::new(); n]);
        for r in 0..runs {
            for (i, cache) in caches.iter_mut().enumerate() {
                let probe = probes.copy_gbps(1).map_err(probe_err())?;
                let t = Instant::now();
                let out = layer.step(cache, q, v, None).map_err(&run_err)?;
                let took = t.elapsed();
                times[i].push(took);
                shares[i].push(share(kv_bytes[i] / took.as_secs_f64(), probe));
                cache.truncate(held).map_err(&run_err)?;
                verify(i, Call::Timed(r), out);
            }
        }
        let steps = (0..n)
            .map(|i| GpuStep {
                step: median(&mut times[i]),
                attention: median(&mut attention[i]),
                copy_pct: median_f64(&mut shares[i]),
                attention_copy_pct: median_f64(&mut attention_shares[i]),
            })
            .collect();
        Ok((steps, timing))
    }
}

/// The CPU layer's warm-up step and timed steps at one length; `verify` checks each output.
fn cpu_row(
    cpu: &CpuLayer,
    cache: &mut gqa_cpu::KvCache,
    runs: usize,
    contents: &CacheContents,
    (q, v): (&HostTensor, &HostTensor),
    verify: &mut dyn FnMut(Call, HostTensor),
) -> Result<Duration, CliError> {
    let held = contents.lengths.first().copied().unwrap_or(0);
    let run_err = |source| CliError::Inputs { inputs: format!("the CPU layer's cache at S={}", held + 1), source };
    cache.load(contents).map_err(run_err)?;
    verify(Call::WarmUp, cache.step(cpu, q, v, None).map_err(run_err)?);
    cache.truncate(held).map_err(run_err)?;
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let t = Instant::now();
        let out = cache.step(cpu, q, v, None).map_err(run_err)?;
        times.push(t.elapsed());
        cache.truncate(held).map_err(run_err)?;
        verify(Call::Timed(i), out);
    }
    Ok(median(&mut times))
}

/// `x` rounded to a multiple of `step` (a power of two).
fn on_grid(x: f32, step: f32) -> f32 {
    (x / step).round() * step
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn median_f64(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A least-squares line `y = a + b x` and its R².
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Fit {
    /// a.
    pub(crate) intercept: f64,
    /// b.
    pub(crate) slope: f64,
    /// R².
    pub(crate) r2: f64,
}

/// The least-squares line through `points` (`None` for fewer than two points or a single x).
pub(crate) fn fit(points: &[(f64, f64)]) -> Option<Fit> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let (mx, my) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let syy: f64 = points.iter().map(|(_, y)| (y - my).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let r2 = if syy == 0.0 { 1.0 } else { sxy * sxy / (sxx * syy) };
    Some(Fit { intercept: my - slope * mx, slope, r2 })
}

/// Runs the decode sweep.
pub(crate) fn bench_decode(args: &BenchArgs, tamper: Tamper<'_>) -> Result<(), CliError> {
    let sweep = args.sweep();
    if let Some(&s) = sweep.seq.iter().find(|&&s| s < 2) {
        return Err(CliError::Flags(format!(
            "--decode needs cached lengths >= 2 (a step attends over a prefix), got {s}"
        )));
    }
    let window = args.window.map(|w| w as usize);
    let config = GqaConfig {
        use_bias: true,
        sliding_window: window,
        ..GqaConfig::new(sweep.head_dim, sweep.query_heads, sweep.kv_heads)
    };
    let dq = sweep.query_dim;
    let dims = LayerDims { query_dim: dq, key_dim: dq, value_dim: dq };
    let inputs_err = |what: &str| {
        let what = what.to_string();
        move |source| CliError::Inputs { inputs: what.clone(), source }
    };
    let mut weights = gqa_ref::initialize_weights(&config, dims, 7).map_err(inputs_err("bench config"))?;
    let storages = args.caches();
    let quantized = storages.iter().any(|&c| c != CacheStorage::F32);
    if quantized {
        // Exact projections (weights on the grid of 1/256, the new token on 1/64): the GPU's
        // quantized caches and the oracle's then store the same values for the new token too.
        for dense in [&mut weights.query, &mut weights.key, &mut weights.value, &mut weights.output] {
            for w in dense.kernel.data_mut().iter_mut().chain(dense.bias.iter_mut().flat_map(|b| b.data_mut())) {
                *w = on_grid(*w, 1.0 / 256.0);
            }
        }
    }
    let (b, nkv, h) = (sweep.batch, sweep.kv_heads, sweep.head_dim);
    // A linear cache of the longest length, or under a window a ring of its size (one token per
    // call): the GPU's in each storage asked for, the CPU layer's in f32.
    let f32_shape = match window {
        None => CacheShape::new(&config, b, sweep.seq.iter().copied().max().unwrap_or(2)),
        Some(_) => CacheShape::ring(&config, b, 1, 0),
    }
    .map_err(inputs_err("the KV cache"))?;
    let shapes = storages
        .iter()
        .map(|&c| f32_shape.with_storage(c).map_err(inputs_err("the KV cache")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut gpu = if args.backend.is_cpu() { None } else { Some(Gpu::open(args, &config, &weights, &shapes)?) };
    let cpu = CpuLayer::new(config.clone(), weights.clone()).map_err(CliError::Invalid)?;
    let mut cpu_cache = match window {
        None => cpu.new_cache(b, f32_shape.capacity),
        Some(_) => gqa_cpu::KvCache::new_ring(&config, b, 1, 0),
    }
    .map_err(inputs_err("the CPU layer's cache"))?;
    // The oracle's caches: one per storage of the GPU's, and an f32 one for the CPU layer's outputs.
    let mut oracles = Vec::new();
    if !args.no_oracle {
        for shape in shapes.iter().chain((!storages.contains(&CacheStorage::F32)).then_some(&f32_shape)) {
            let o = gqa_ref::KvCache::from_shape(&config, *shape).map_err(inputs_err("the oracle's cache"))?;
            oracles.push((shape.storage, o));
        }
    }
    let token_shape = [b, 1, dq];
    let token = |phase| {
        let mut t = data(&token_shape, phase);
        if quantized {
            t.data_mut().iter_mut().for_each(|x| *x = on_grid(*x, 1.0 / 64.0));
        }
        t
    };
    let (q, v) = (token(0.0), token(1.0));
    let tolerance = gpu.as_ref().map_or(Tolerance::F32, |g| Tolerance::for_precision(g.layer.precision()));
    let runs = args.runs.max(1) as usize;

    let bar = progress(sweep.seq.len() * storages.len(), "S");
    let mut rows = Vec::with_capacity(sweep.seq.len() * storages.len());
    let mut timing = String::from("the step timer");
    for &seq in &sweep.seq {
        // The tokens a ring still holds (its window) stand for the whole sequence: a window's
        // attention depends only on their relative positions.
        let held = (seq - 1).min(f32_shape.capacity);
        let keys = seq.min(f32_shape.capacity);
        let kv_shape = [b, held, nkv, h];
        let contents =
            CacheContents { keys: data(&kv_shape, 2.0), values: data(&kv_shape, 3.0), lengths: vec![held; b] };
        // Each oracle cache takes the same step first (timed), and its output is kept: every output
        // below is compared with the one of its storage, outside the timed runs.
        let mut wants = Vec::new();
        for (storage, o) in &mut oracles {
            o.load(&contents).map_err(inputs_err("the oracle's cache"))?;
            let t = Instant::now();
            let want =
                o.step(&config, &weights, &q, &v, None).map_err(inputs_err(&format!("the oracle at S={seq}")))?;
            wants.push((*storage, t.elapsed(), want));
        }
        let want_of = |storage| wants.iter().find(|w| w.0 == storage);
        let on_cpu = gpu.is_none();
        // Checks one output of `side`'s layer against the oracle over a cache of `storage` (the CPU
        // layer's named as such beside a GPU), into `check`.
        let mut verify = |check: &mut RowCheck, storage, side: Side, which: Call, mut got: HostTensor| {
            tamper(seq, side, which, &mut got);
            if let Some((_, _, want)) = want_of(storage) {
                let (label, tolerance) = match side {
                    Side::Gpu => ("", tolerance),
                    Side::Cpu if on_cpu => ("", Tolerance::F32),
                    Side::Cpu => ("CPU layer, ", Tolerance::F32),
                };
                check.record_labelled(label, which, &compare_tensors(&got, want, tolerance));
            }
        };
        // The CPU layer once per length (f32), its checks in every row of the length.
        let mut cpu_check = RowCheck::new(!oracles.is_empty());
        let cpu_time = cpu_row(&cpu, &mut cpu_cache, runs, &contents, (&q, &v), &mut |w, got| {
            verify(&mut cpu_check, CacheStorage::F32, Side::Cpu, w, got)
        })?;
        let problem = Problem::new(&config, &token_shape, &[b, keys, dq], None, &CallOptions::default())
            .map_err(inputs_err(&format!("S={seq}")))?;
        // The GPU's steps over every storage, interleaved; each row's checks start from the CPU
        // layer's.
        bar.set_message(format!("{seq}"));
        let mut checks: Vec<RowCheck> = shapes.iter().map(|_| cpu_check.clone()).collect();
        let kv_bytes: Vec<f64> = shapes.iter().map(|s| (b * keys) as f64 * s.bytes_per_token() as f64).collect();
        let gpu_steps: Vec<Option<GpuStep>> = match gpu.as_mut() {
            Some(g) => {
                let mut verify_gpu = |i: usize, w, got| verify(&mut checks[i], shapes[i].storage, Side::Gpu, w, got);
                let (steps, t) = g.rows(runs, &contents, (&q, &v), &kv_bytes, &mut verify_gpu)?;
                timing = t;
                steps.into_iter().map(Some).collect()
            }
            None => vec![None; shapes.len()],
        };
        for (((shape, gpu_step), check), kv_bytes) in shapes.iter().zip(gpu_steps).zip(checks).zip(kv_bytes) {
            rows.push(Row {
                seq,
                keys,
                cache: shape.storage,
                gpu: gpu_step,
                cpu: cpu_time,
                oracle: want_of(shape.storage).map(|w| w.1),
                kv_bytes,
                bytes_per_token: shape.bytes_per_token(),
                flops: crate::cpu_layer::flops(&problem, 1),
                check,
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let named = |r: &Row| match storages[..] {
        [CacheStorage::F32] => format!("S={}", r.seq),
        _ => format!("S={} over the {} cache", r.seq, r.cache),
    };
    let failures = check_failures(rows.iter().map(|r| (named(r), &r.check)));
    let (described, info) = match &gpu {
        Some(g) => (g.ctx.describe(), crate::meta::adapter(g.ctx.adapter_info())),
        None => (crate::cpu_layer::describe(), crate::cpu_layer::info()),
    };
    let report = crate::bench_decode_report::Report {
        args,
        rows: &rows,
        gpu: gpu.as_ref(),
        batch: b,
        described,
        tolerance,
        timing,
    };
    report.write(info, &sweep)?;
    failures.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_a_line() {
        let f = fit(&[(1.0, 3.0), (2.0, 5.0), (4.0, 9.0)]).unwrap();
        assert!((f.slope - 2.0).abs() < 1e-12 && (f.intercept - 1.0).abs() < 1e-12 && (f.r2 - 1.0).abs() < 1e-12);
        assert!(fit(&[(1.0, 1.0)]).is_none());
        let noisy = fit(&[(1.0, 1.0), (2.0, 3.0), (3.0, 2.0)]).unwrap();
        assert!(noisy.r2 < 0.5);
    }
}
