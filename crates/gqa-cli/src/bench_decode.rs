//! `gqa bench --decode`: the time of one KV-cache decoding step (one new token per sequence) against
//! the number of cached tokens S, on one adapter and on the oracle's own cache. The cache is loaded
//! with S - 1 projected tokens (prefilling 32K tokens at Dq=4096 would take hours on a software
//! adapter and measures something else); each timed step appends token S and is truncated away.
//! A step projects only its new token, so its time must grow linearly in S: the report fits
//! `ms = a + b * S` and gives R². The attention over the cache (the appends, the split pass and its
//! reduce: the steps between the input and the output projections) is also timed on its own, with
//! the layer's step timer (GPU timestamps where the device has them), and judged against the copy
//! probe (docs/PERFORMANCE.md, "Decoding with the KV cache").
//!
//! A timing counts only from a checked run: the oracle's cache, loaded with the same tokens, takes
//! the same step first, and its output is compared with the GPU's of the warm-up step, of every
//! timed step and of the attention timer (whose timed runs write the attention's result; the rest
//! of its plan, the output projection, then runs once untimed and the output is read back).

use std::time::{Duration, Instant};

use gqa_core::{CacheContents, GqaConfig, HostTensor, LayerDims};
use gqa_ref::check::{Tolerance, compare_tensors};
use gqa_wgpu::GqaLayer;
use serde_json::json;

use crate::bench::{
    BenchArgs, CHECK_CSV_COLUMNS, RowCheck, Tamper, check_failures, data, ms, oracle_cells, oracle_csv,
    print_check_header, progress,
};
use crate::error::CliError;
use crate::timed::Call;

/// One cached length.
#[derive(Debug, Clone)]
struct Row {
    /// Keys attended: S - 1 cached plus the new one.
    seq: usize,
    gpu: Duration,
    /// The attention over the cache alone (median).
    attention: Duration,
    oracle: Option<Duration>,
    /// Bytes of K and V the step reads once.
    kv_bytes: f64,
    flops: f64,
    /// The whole step's K and V GB/s over the copy probe run just before it, in percent: the median
    /// over the timed steps.
    copy_pct: f64,
    /// The same for the attention over the cache alone.
    attention_copy_pct: f64,
    /// How the row's outputs compared with the oracle's step.
    check: RowCheck,
}

/// A least-squares line `y = a + b x` and its R².
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Fit {
    pub(crate) intercept: f64,
    pub(crate) slope: f64,
    pub(crate) r2: f64,
}

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
    let gpu_err = |context: String| move |source| CliError::Gpu { context: context.clone(), source };
    let ctx = crate::backend::open(args.backend)?;
    let mut tuning = args.tuning.apply(ctx.tuning());
    if args.no_decode_kernel {
        tuning.decode_kernel = false;
    }
    let ctx = ctx.with_tuning(tuning);
    // The probes are built once; the copy probe runs again before every timed step, and each share
    // of it is the median of the steps' own ratios (the header's figures are the first measurement).
    let probes = gqa_wgpu::roofline::Probes::new(&ctx).map_err(gpu_err("building the roofline probes".into()))?;
    let roof = probes.measure(3).map_err(gpu_err("measuring the roofline".into()))?;
    let probe_err = || gpu_err("measuring the roofline".into());
    let config = GqaConfig { use_bias: true, ..GqaConfig::new(sweep.head_dim, sweep.query_heads, sweep.kv_heads) };
    let dq = sweep.query_dim;
    let dims = LayerDims { query_dim: dq, key_dim: dq, value_dim: dq };
    let inputs_err = |what: &str| {
        let what = what.to_string();
        move |source| CliError::Inputs { inputs: what.clone(), source }
    };
    let weights = gqa_ref::initialize_weights(&config, dims, 7).map_err(inputs_err("bench config"))?;
    let layer = GqaLayer::new(&ctx, &config, &weights).map_err(gpu_err("uploading the weights".into()))?;
    let (b, nkv, h) = (sweep.batch, sweep.kv_heads, sweep.head_dim);
    let capacity = sweep.seq.iter().copied().max().unwrap_or(2);
    let mut cache = layer.new_cache(b, capacity).map_err(gpu_err(format!("a KV cache of {capacity} tokens")))?;
    let mut oracle = if args.no_oracle {
        None
    } else {
        Some(gqa_ref::KvCache::new(&config, b, capacity).map_err(inputs_err("the oracle's cache"))?)
    };
    let token_shape = [b, 1, dq];
    let (q, v) = (data(&token_shape, 0.0), data(&token_shape, 1.0));
    let tolerance = Tolerance::for_precision(layer.precision());

    let bar = progress(sweep.seq.len(), "S");
    let mut rows = Vec::with_capacity(sweep.seq.len());
    let mut timing = String::from("the step timer");
    for &seq in &sweep.seq {
        bar.set_message(seq.to_string());
        let held = seq - 1;
        let kv_shape = [b, held, nkv, h];
        let contents =
            CacheContents { keys: data(&kv_shape, 2.0), values: data(&kv_shape, 3.0), lengths: vec![held; b] };
        let run_err = gpu_err(format!("a decode step at S={seq} on {}", ctx.describe()));
        // The oracle's cache takes the same step first (timed), and its output is kept: every GPU
        // output below is compared with it, outside the timed runs.
        let oracle_step = match oracle.as_mut() {
            None => None,
            Some(o) => {
                o.load(&contents).map_err(inputs_err("the oracle's cache"))?;
                let t = Instant::now();
                let want =
                    o.step(&config, &weights, &q, &v, None).map_err(inputs_err(&format!("the oracle at S={seq}")))?;
                Some((t.elapsed(), want))
            }
        };
        let mut check = RowCheck::new(oracle_step.is_some());
        let mut verify = |which: Call, mut got: HostTensor| {
            tamper(seq, which, &mut got);
            if let Some((_, want)) = &oracle_step {
                check.record(which, &compare_tensors(&got, want, tolerance));
            }
        };
        cache.load(&contents).map_err(&run_err)?;
        let plan = layer.plan_cached(&cache, &token_shape, false, &vec![1; b]).map_err(&run_err)?;
        verify(Call::WarmUp, layer.step(&mut cache, &q, &v, None).map_err(&run_err)?);
        cache.truncate(held);
        let timer = layer.step_timer_cached(&cache, &q, &v, None).map_err(&run_err)?;
        // A cached call never splits the batch, so the plan has one attention core.
        let all = 0..timer.plan().steps.len();
        let steps = timer.plan().attention_steps().unwrap_or(all.clone());
        timing = format!("{:?}", timer.timing());
        timer.time(all.clone()).map_err(&run_err)?;
        let kv_bytes = 2.0 * (b * seq * nkv * h * 4) as f64;
        let share = |bytes_per_s: f64, probe_gbps: f64| 100.0 * bytes_per_s / 1e9 / probe_gbps;
        let (mut attention, mut attention_shares) = (Vec::new(), Vec::new());
        for _ in 0..args.runs.max(1) {
            let probe = probes.copy_gbps(1).map_err(probe_err())?;
            let t = timer.time(steps.clone()).map_err(&run_err)?;
            attention.push(t);
            attention_shares.push(share(kv_bytes / t.as_secs_f64(), probe));
        }
        // What the last timed run of the attention wrote, carried through the rest of the plan
        // (untimed) and read back.
        timer.time(steps.end..all.end).map_err(&run_err)?;
        verify(Call::AttentionTimer, timer.read_output().map_err(&run_err)?.output);
        drop(timer);
        let (mut times, mut shares) = (Vec::new(), Vec::new());
        for i in 0..args.runs.max(1) as usize {
            let probe = probes.copy_gbps(1).map_err(probe_err())?;
            let t = Instant::now();
            let out = layer.step(&mut cache, &q, &v, None).map_err(&run_err)?;
            let took = t.elapsed();
            times.push(took);
            shares.push(share(kv_bytes / took.as_secs_f64(), probe));
            cache.truncate(held);
            verify(Call::Timed(i), out);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (copy_pct, attention_copy_pct) = (median(&mut shares), median(&mut attention_shares));
        attention.sort();
        times.sort();
        let oracle_time = oracle_step.map(|(t, _)| t);
        let attention = attention[attention.len() / 2];
        rows.push(Row {
            seq,
            gpu: times[times.len() / 2],
            attention,
            oracle: oracle_time,
            kv_bytes,
            flops: plan.flops() as f64,
            copy_pct,
            attention_copy_pct,
            check,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let failures = check_failures(rows.iter().map(|r| (format!("S={}", r.seq), &r.check)));

    let gpu_fit = fit(&rows.iter().map(|r| (r.seq as f64, ms(r.gpu))).collect::<Vec<_>>());
    let oracle_fit = fit(&rows.iter().filter_map(|r| r.oracle.map(|o| (r.seq as f64, ms(o)))).collect::<Vec<_>>());
    let (shape, options) = args.described(&sweep);
    let meta = crate::meta::report(&ctx, shape, options, rows.iter().all(|r| r.check.checked()));
    if let Some(path) = &args.csv {
        let mut csv = crate::meta::csv_comments(&meta);
        csv += &format!(
            "seq,gpu_ms,tokens_per_s,kv_gbps,copy_roofline_pct,gpu_gflops,attention_ms,attention_kv_gbps,attention_copy_roofline_pct,oracle_ms,speedup,{CHECK_CSV_COLUMNS}\n",
        );
        for r in &rows {
            let (oracle, speedup) = oracle_csv(r.oracle, r.gpu);
            csv.push_str(&format!(
                "{},{:.4},{:.3},{:.4},{:.3},{:.4},{:.4},{:.4},{:.3},{oracle},{speedup},{}\n",
                r.seq,
                ms(r.gpu),
                b as f64 / r.gpu.as_secs_f64(),
                gbps(r),
                r.copy_pct,
                r.flops / r.gpu.as_secs_f64() / 1e9,
                ms(r.attention),
                attention_gbps(r),
                r.attention_copy_pct,
                r.check.csv(),
            ));
        }
        BenchArgs::write(path, &csv)?;
    }
    let plot_files = args.plot_files();
    if !plot_files.is_empty() {
        use crate::plot::{Plot, Scale, Series, SeriesKind};
        let plot = Plot {
            title: "gqa decode: time per step vs cached keys".into(),
            subtitle: ctx.describe(),
            x_title: "keys attended S (log scale)".into(),
            y_title: "time per step (ms, log scale)".into(),
            y_scale: Scale::Log,
            x: rows.iter().map(|r| r.seq).collect(),
            series: vec![
                Series {
                    name: "GPU step".into(),
                    kind: SeriesKind::Measured,
                    y: rows.iter().map(|r| Some(ms(r.gpu))).collect(),
                },
                Series {
                    name: "CPU oracle (f64)".into(),
                    kind: SeriesKind::Measured,
                    y: rows.iter().map(|r| r.oracle.map(ms)).collect(),
                },
                Series {
                    name: format!("K and V read at the copy probe's {:.1} GB/s", roof.gbps),
                    kind: SeriesKind::Bound,
                    y: rows.iter().map(|r| Some(r.kv_bytes / (roof.gbps * 1e9) * 1e3)).collect(),
                },
            ],
        };
        plot_files.write(&plot)?;
    }
    let fit_json =
        |f: Option<Fit>| f.map(|f| json!({ "ms_at_zero": f.intercept, "ms_per_1k_keys": f.slope * 1e3, "r2": f.r2 }));
    if args.json {
        let table: Vec<_> = rows
            .iter()
            .map(|r| {
                let mut row = json!({
                    "seq": r.seq,
                    "ms": ms(r.gpu),
                    "gpu_ms": ms(r.gpu),
                    "tokens_per_s": b as f64 / r.gpu.as_secs_f64(),
                    "kv_gbps": gbps(r),
                    "copy_roofline_pct": r.copy_pct,
                    "gpu_gflops": r.flops / r.gpu.as_secs_f64() / 1e9,
                    "attention_ms": ms(r.attention),
                    "attention_kv_gbps": attention_gbps(r),
                    "attention_copy_roofline_pct": r.attention_copy_pct,
                    "oracle_ms": r.oracle.map(ms),
                    "speedup": r.oracle.map(|o| o.as_secs_f64() / r.gpu.as_secs_f64()),
                });
                row.as_object_mut().expect("a JSON object").extend(r.check.json());
                row
            })
            .collect();
        let mut doc = json!({
            "roofline": { "fma_gflops": roof.gflops, "copy_gbps": roof.gbps },
            "rows": table,
            "fit": { "gpu": fit_json(gpu_fit), "oracle": fit_json(oracle_fit) },
        });
        doc.as_object_mut().expect("a JSON object").extend(meta);
        println!("{}", serde_json::to_string_pretty(&doc).expect("JSON values serialise"));
        return failures.map_or(Ok(()), Err);
    }
    println!("adapter   {}", ctx.describe());
    println!("roofline  FMA probe {:.1} GFLOP/s, copy probe {:.2} GB/s", roof.gflops, roof.gbps);
    println!(
        "shape     B={b} Nq={} Nkv={nkv} H={h} Dq=Dv={dq}; one new token per step over S - 1 cached; median of {} GPU steps\n",
        sweep.query_heads, args.runs
    );
    print_check_header(
        args.no_oracle,
        "each GPU step's output (the warm-up's, every timed step's, the attention timer's)",
        tolerance,
    );
    println!(
        "{:>7} {:>11} {:>10} {:>10} {:>8} {:>9} {:>9} {:>8} {:>11} {:>9} {:>9} {:>11} {:>10}",
        "S",
        "GPU ms",
        "tokens/s",
        "KV GB/s",
        "% copy",
        "attn ms",
        "attn GB/s",
        "% copy",
        "oracle ms",
        "speed-up",
        "check",
        "max abs err",
        "out of tol"
    );
    for r in &rows {
        let (oracle, speedup) = oracle_cells(r.oracle, r.gpu);
        let (max_abs, bad) = r.check.cells();
        println!(
            "{:>7} {:>11.2} {:>10.2} {:>10.3} {:>7.1}% {:>9.2} {:>9.3} {:>7.1}% {:>11} {:>9} {:>9} {:>11} {:>10}",
            r.seq,
            ms(r.gpu),
            b as f64 / r.gpu.as_secs_f64(),
            gbps(r),
            r.copy_pct,
            ms(r.attention),
            attention_gbps(r),
            r.attention_copy_pct,
            oracle,
            speedup,
            r.check.status(),
            max_abs,
            bad
        );
    }
    println!(
        "\n(GPU ms, KV GB/s: the whole step; attn: the appends and the attention over the cache alone, timed by {timing};\n % copy: each timed step against the copy probe run just before it, the median of those ratios)"
    );
    for (who, f) in [("GPU", gpu_fit), ("oracle", oracle_fit)] {
        if let Some(f) = f {
            println!(
                "\n{who:<6} ms per step = {:.2} + {:.3} per 1K cached keys (R² = {:.4})",
                f.intercept,
                f.slope * 1e3,
                f.r2
            );
        }
    }
    failures.map_or(Ok(()), Err)
}

/// K and V bytes read per second.
fn gbps(r: &Row) -> f64 {
    r.kv_bytes / r.gpu.as_secs_f64() / 1e9
}

/// K and V bytes read per second by the attention over the cache alone.
fn attention_gbps(r: &Row) -> f64 {
    r.kv_bytes / r.attention.as_secs_f64() / 1e9
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
