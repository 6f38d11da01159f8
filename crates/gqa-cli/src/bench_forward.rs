//! `gqa bench` (whole calls, T = S): at each length the GPU layer (on a GPU backend) and the CPU
//! layer (`gqa_cpu::CpuLayer`, f32, every thread) are each timed over the same `--runs` calls, every
//! output of both checked against the oracle's (run once per length, its time in its own column);
//! `--backend cpu` times the CPU layer alone and reports each row's share of the CPU's FMA peak
//! ([`crate::cpu_probe`]).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use gqa_core::{CallOptions, GqaConfig, HostTensor, LayerDims, Problem};
use gqa_cpu::CpuLayer;
use gqa_ref::check::Tolerance;
use gqa_wgpu::{GpuContext, GqaLayer};
use serde_json::json;

use crate::bench::{
    BenchArgs, CHECK_CSV_COLUMNS, RowCheck, Side, Tamper, check_failures, data, ms, oracle_cell, oracle_csv,
    print_check_header, progress, ratio_cell,
};
use crate::error::CliError;
use crate::timed::{Calls, timed_calls};

/// One row of the sweep.
#[derive(Debug, Clone)]
struct Row {
    seq: usize,
    flops: f64,
    /// The GPU's median (on a GPU backend).
    gpu: Option<Duration>,
    /// The median over the GPU's timed calls of each call's GFLOP/s over the FMA probe run just
    /// before it, in percent (on a GPU backend).
    roofline_pct: Option<f64>,
    /// The CPU layer's median.
    cpu: Duration,
    oracle: Option<Duration>,
    /// How every output of the row (the GPU's and the CPU layer's) compared with the oracle's.
    check: RowCheck,
}

impl Row {
    fn gflops(&self, d: Duration) -> f64 {
        self.flops / d.as_secs_f64() / 1e9
    }

    /// The median of the row's main backend: the GPU's, or the CPU layer's under `--backend cpu`.
    fn main(&self) -> Duration {
        self.gpu.unwrap_or(self.cpu)
    }

    /// The GPU's speed-up over the CPU layer.
    fn vs_cpu(&self) -> Option<f64> {
        self.gpu.map(|g| self.cpu.as_secs_f64() / g.as_secs_f64())
    }
}

/// The GPU side of the sweep: the context, the roofline probes and the times of setting them up.
struct Gpu {
    ctx: GpuContext,
    context_time: Duration,
    pipelines_time: Duration,
    probes: gqa_wgpu::roofline::Probes,
    roof: gqa_wgpu::roofline::Roofline,
}

fn gpu_err(context: &str) -> impl Fn(gqa_wgpu::GpuError) -> CliError + use<> {
    let context = context.to_string();
    move |source| CliError::Gpu { context: context.clone(), source }
}

impl Gpu {
    fn open(args: &BenchArgs) -> Result<Self, CliError> {
        let started = Instant::now();
        let ctx = crate::backend::open(args.backend)?;
        let ctx = ctx.clone().with_tuning(args.tuning.apply(ctx.tuning()));
        let context_time = started.elapsed();
        // Kernels compile at their first use; the bench compiles every variant up front and reports it.
        let started = Instant::now();
        ctx.compile_all_kernels().map_err(gpu_err("compiling the kernels"))?;
        let pipelines_time = started.elapsed();
        // The probes are built once; the FMA probe runs again before every timed call, and each
        // row's share of the roofline is the median of its calls' own ratios (a shared machine's
        // speed moves between a probe and a call taken apart). The header's figures are the first
        // measurement's.
        let probes = gqa_wgpu::roofline::Probes::new(&ctx).map_err(gpu_err("building the roofline probes"))?;
        let roof = probes.measure(3).map_err(gpu_err("measuring the roofline"))?;
        Ok(Self { ctx, context_time, pipelines_time, probes, roof })
    }
}

/// Runs the sweep.
pub(crate) fn bench_forward(args: &BenchArgs, tamper: Tamper<'_>) -> Result<(), CliError> {
    let sweep = args.sweep();
    let gpu = if args.backend.is_cpu() { None } else { Some(Gpu::open(args)?) };
    let fma_peak = args.backend.is_cpu().then(|| crate::cpu_probe::fma_peak_gflops(3));
    let config = GqaConfig::new(sweep.head_dim, sweep.query_heads, sweep.kv_heads);
    let dims = LayerDims { query_dim: sweep.query_dim, key_dim: sweep.query_dim, value_dim: sweep.query_dim };
    let weights = gqa_ref::initialize_weights(&config, dims, 7)
        .map_err(|source| CliError::Inputs { inputs: "bench config".into(), source })?;
    let layer = match &gpu {
        Some(g) => Some(GqaLayer::new(&g.ctx, &config, &weights).map_err(gpu_err("uploading the weights"))?),
        None => None,
    };
    let cpu = CpuLayer::new(config.clone(), weights.clone()).map_err(CliError::Invalid)?;
    let options = CallOptions { use_causal_mask: args.causal, ..Default::default() };
    let gpu_tolerance = layer.as_ref().map_or(Tolerance::F32, |l| Tolerance::for_precision(l.precision()));

    let bar = progress(sweep.seq.len(), "T=S");
    let mut rows = Vec::with_capacity(sweep.seq.len());
    for &seq in &sweep.seq {
        bar.set_message(seq.to_string());
        let shape = [sweep.batch, seq, sweep.query_dim];
        let (q, v) = (data(&shape, 0.0), data(&shape, 1.0));
        let problem = Problem::new(&config, &shape, &shape, None, &options)
            .map_err(|source| CliError::Inputs { inputs: format!("T=S={seq}"), source })?;
        let flops = crate::cpu_layer::flops(&problem, seq);
        let oracle = || {
            gqa_ref::forward(&config, &weights, &q, &v, None, &options)
                .map(|want| want.output)
                .map_err(|source| CliError::Inputs { inputs: format!("T=S={seq}"), source })
        };
        let mut check = RowCheck::new(!args.no_oracle);
        // The oracle's output and time, from the first timed backend that ran it.
        let mut want: Option<(HostTensor, Duration)> = None;
        let (mut gpu_time, mut roofline_pct) = (None, None);
        if let (Some(g), Some(layer)) = (&gpu, &layer) {
            let run_err = gpu_err(&format!("running T=S={seq} on {}", g.ctx.describe()));
            let mut oracle = oracle;
            let calls = Calls {
                call: &mut || layer.forward(&q, &v, None, &options).map(|out| out.output).map_err(&run_err),
                oracle: if args.no_oracle { None } else { Some(&mut oracle) },
                before: &mut || g.probes.fma_gflops(1).map_err(gpu_err("measuring the roofline")),
                tamper: &mut |which, got| tamper(seq, Side::Gpu, which, got),
            };
            let timed = timed_calls(args.runs as usize, gpu_tolerance, calls)?;
            for (which, c) in timed.checks.iter().flat_map(|c| &c.results) {
                check.record(*which, c);
            }
            let mut shares: Vec<f64> = timed
                .times
                .iter()
                .zip(&timed.before)
                .map(|(took, probe)| 100.0 * flops / took.as_secs_f64() / 1e9 / probe)
                .collect();
            shares.sort_by(f64::total_cmp);
            roofline_pct = Some(shares[shares.len() / 2]);
            gpu_time = Some(timed.median());
            want = timed.checks.map(|c| (c.want, c.oracle_time));
        }
        // The CPU layer: the same calls, checked against the same oracle output (computed here
        // under --backend cpu).
        let on_cpu = gpu.is_none();
        let label = if on_cpu { "" } else { "CPU layer, " };
        let mut cached = want.as_ref().map(|(w, _)| move || Ok::<_, CliError>(w.clone()));
        let mut fresh = oracle;
        let cpu_oracle: Option<&mut dyn FnMut() -> Result<HostTensor, CliError>> = match (args.no_oracle, &mut cached) {
            (true, _) => None,
            (false, Some(cached)) => Some(cached),
            (false, None) => Some(&mut fresh),
        };
        let run_err = |source| CliError::Inputs { inputs: format!("T=S={seq} on the CPU layer"), source };
        let calls = Calls {
            call: &mut || cpu.forward(&q, &v, None, &options).map(|out| out.output).map_err(run_err),
            oracle: cpu_oracle,
            before: &mut || Ok(()),
            tamper: &mut |which, got| tamper(seq, Side::Cpu, which, got),
        };
        let timed = timed_calls(args.runs as usize, Tolerance::F32, calls)?;
        for (which, c) in timed.checks.iter().flat_map(|c| &c.results) {
            check.record_labelled(label, *which, c);
        }
        let oracle_time = want.map(|(_, t)| t).or(timed.checks.as_ref().map(|c| c.oracle_time));
        rows.push(Row { seq, flops, gpu: gpu_time, roofline_pct, cpu: timed.median(), oracle: oracle_time, check });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let failures = check_failures(rows.iter().map(|r| (format!("T=S={}", r.seq), &r.check)));

    let (shape, options) = args.described(&sweep);
    let checked = rows.iter().all(|r| r.check.checked());
    let (described, info) = match &gpu {
        Some(g) => (g.ctx.describe(), crate::meta::adapter(g.ctx.adapter_info())),
        None => (crate::cpu_layer::describe(), crate::cpu_layer::info()),
    };
    let meta = crate::meta::report_on(described.clone(), info, shape, options, checked);
    if let Some(path) = &args.csv {
        BenchArgs::write(path, &(crate::meta::csv_comments(&meta) + &to_csv(&rows, fma_peak)))?;
    }
    let plot_files = args.plot_files();
    if !plot_files.is_empty() {
        plot_files.write(&plot(&rows, &described, gpu.as_ref(), fma_peak))?;
    }
    let peak_share = |r: &Row| fma_peak.map(|p| 100.0 * r.gflops(r.cpu) / p);
    if args.json {
        let table: Vec<_> = rows
            .iter()
            .map(|r| {
                let mut row = json!({
                    "s": r.seq,
                    "seq": r.seq,
                    "gflop": r.flops / 1e9,
                    "ms": ms(r.main()),
                    "cpu_ms": ms(r.cpu),
                    "cpu_gflops": r.gflops(r.cpu),
                    "oracle_ms": r.oracle.map(ms),
                    "speedup_vs_oracle": r.oracle.map(|o| o.as_secs_f64() / r.main().as_secs_f64()),
                });
                let m = row.as_object_mut().expect("a JSON object");
                if let Some(g) = r.gpu {
                    m.insert("gpu_ms".into(), json!(ms(g)));
                    m.insert("gpu_gflops".into(), json!(r.gflops(g)));
                    m.insert("roofline_pct".into(), json!(r.roofline_pct));
                    m.insert("speedup_vs_cpu".into(), json!(r.vs_cpu()));
                }
                if let Some(share) = peak_share(r) {
                    m.insert("peak_share".into(), json!(share));
                }
                m.extend(r.check.json());
                row
            })
            .collect();
        let mut doc = json!({ "rows": table, "cpu_layer": crate::cpu_layer::describe() });
        let m = doc.as_object_mut().expect("a JSON object");
        if let Some(g) = &gpu {
            m.insert("context_ms".into(), json!(ms(g.context_time)));
            m.insert("pipelines_ms".into(), json!(ms(g.pipelines_time)));
            m.insert("roofline".into(), json!({ "fma_gflops": g.roof.gflops, "copy_gbps": g.roof.gbps }));
        }
        if let Some(p) = fma_peak {
            m.insert("fma_peak_gflops".into(), json!(p));
            m.insert("fma_probe_isa".into(), json!(crate::cpu_probe::isa()));
            m.insert("threads".into(), json!(crate::cpu_layer::threads()));
        }
        m.extend(meta);
        println!("{}", serde_json::to_string_pretty(&doc).expect("JSON values serialise"));
        return failures.map_or(Ok(()), Err);
    }
    let shape_line = |who: &str| {
        println!(
            "shape     B={} Nq={} Nkv={} H={} Dq=Dv={}{}, T=S swept, median of {} {who} runs\n",
            sweep.batch,
            sweep.query_heads,
            sweep.kv_heads,
            sweep.head_dim,
            sweep.query_dim,
            if args.causal { ", causal" } else { "" },
            args.runs
        )
    };
    let Some(g) = &gpu else {
        let peak = fma_peak.unwrap_or_default();
        println!("device    {described}");
        println!(
            "FMA peak  {peak:.1} GFLOP/s (f32 multiply-adds, {}, on every thread: {})",
            crate::cpu_probe::isa(),
            crate::cpu_layer::threads()
        );
        shape_line("CPU layer");
        print_check_header(
            args.no_oracle,
            "each CPU layer output (the warm-up's and every timed call's)",
            Tolerance::F32,
        );
        println!(
            "{:>7} {:>9} {:>11} {:>9} {:>11} {:>11} {:>9} {:>11} {:>10}",
            "T=S", "GFLOP", "CPU ms", "GFLOP/s", "% FMA peak", "oracle ms", "check", "max abs err", "out of tol"
        );
        for r in &rows {
            let (max_abs, bad) = r.check.cells();
            println!(
                "{:>7} {:>9.3} {:>11.2} {:>9.2} {:>10.1}% {:>11} {:>9} {:>11} {:>10}",
                r.seq,
                r.flops / 1e9,
                ms(r.cpu),
                r.gflops(r.cpu),
                peak_share(r).unwrap_or_default(),
                oracle_cell(r.oracle),
                r.check.status(),
                max_abs,
                bad
            );
        }
        return failures.map_or(Ok(()), Err);
    };
    println!("adapter   {described}");
    println!("cpu       {}", crate::cpu_layer::describe());
    println!(
        "context   {:.1} ms (adapter, device); pipelines {:.1} ms (every kernel variant the device runs)",
        ms(g.context_time),
        ms(g.pipelines_time)
    );
    println!("roofline  FMA probe {:.1} GFLOP/s, copy probe {:.2} GB/s", g.roof.gflops, g.roof.gbps);
    println!("vs CPU    the CPU layer's median over the GPU's; oracle ms: the f64 reference, one call, one thread");
    shape_line("GPU and CPU layer");
    print_check_header(
        args.no_oracle,
        "each GPU and CPU layer output (the warm-up's and every timed call's)",
        gpu_tolerance,
    );
    println!(
        "{:>7} {:>9} {:>11} {:>9} {:>10} {:>11} {:>9} {:>9} {:>11} {:>9} {:>11} {:>10}",
        "T=S",
        "GFLOP",
        "GPU ms",
        "GFLOP/s",
        "% roof",
        "CPU ms",
        "GFLOP/s",
        "vs CPU",
        "oracle ms",
        "check",
        "max abs err",
        "out of tol"
    );
    for r in &rows {
        let (max_abs, bad) = r.check.cells();
        let gpu = r.main();
        println!(
            "{:>7} {:>9.3} {:>11.2} {:>9.2} {:>9.1}% {:>11.2} {:>9.2} {:>9} {:>11} {:>9} {:>11} {:>10}",
            r.seq,
            r.flops / 1e9,
            ms(gpu),
            r.gflops(gpu),
            r.roofline_pct.unwrap_or_default(),
            ms(r.cpu),
            r.gflops(r.cpu),
            ratio_cell(r.vs_cpu()),
            oracle_cell(r.oracle),
            r.check.status(),
            max_abs,
            bad
        );
    }
    failures.map_or(Ok(()), Err)
}

/// The plot: GFLOP/s against the length, the GPU (when it ran), the CPU layer, the oracle and the
/// FMA probe's bound (the GPU's, or the CPU's under `--backend cpu`).
fn plot(rows: &[Row], described: &str, gpu: Option<&Gpu>, fma_peak: Option<f64>) -> crate::plot::Plot {
    use crate::plot::{Plot, Scale, Series, SeriesKind};
    let mut series = Vec::new();
    if gpu.is_some() {
        series.push(Series {
            name: "GPU".into(),
            kind: SeriesKind::Measured,
            y: rows.iter().map(|r| r.gpu.map(|g| r.gflops(g))).collect(),
        });
    }
    series.push(Series {
        name: format!("CPU layer (f32, {} threads)", crate::cpu_layer::threads()),
        kind: SeriesKind::Measured,
        y: rows.iter().map(|r| Some(r.gflops(r.cpu))).collect(),
    });
    series.push(Series {
        name: "CPU oracle (f64)".into(),
        kind: SeriesKind::Measured,
        y: rows.iter().map(|r| r.oracle.map(|o| r.gflops(o))).collect(),
    });
    let bound = match (gpu, fma_peak) {
        (Some(g), _) => Some((format!("FMA probe roofline ({:.0} GFLOP/s)", g.roof.gflops), g.roof.gflops)),
        (None, Some(p)) => Some((format!("CPU FMA peak ({p:.0} GFLOP/s)"), p)),
        (None, None) => None,
    };
    if let Some((name, y)) = bound {
        series.push(Series { name, kind: SeriesKind::Bound, y: rows.iter().map(|_| Some(y)).collect() });
    }
    Plot {
        title: "gqa forward: throughput vs sequence length (T = S)".into(),
        subtitle: described.into(),
        x_title: "sequence length T = S (tokens, log scale)".into(),
        y_title: "throughput (GFLOP/s)".into(),
        y_scale: Scale::Linear,
        x: rows.iter().map(|r| r.seq).collect(),
        series,
    }
}

fn to_csv(rows: &[Row], fma_peak: Option<f64>) -> String {
    let gpu = rows.first().is_some_and(|r| r.gpu.is_some());
    let mut s = if gpu {
        format!(
            "seq,gflop,gpu_ms,gpu_gflops,roofline_pct,cpu_ms,cpu_gflops,speedup_vs_cpu,oracle_ms,speedup_vs_oracle,{CHECK_CSV_COLUMNS}\n"
        )
    } else {
        format!("seq,gflop,cpu_ms,cpu_gflops,peak_share,oracle_ms,speedup_vs_oracle,{CHECK_CSV_COLUMNS}\n")
    };
    for r in rows {
        let (oracle, speedup) = oracle_csv(r.oracle, r.main());
        let _ = write!(s, "{},{:.6},", r.seq, r.flops / 1e9);
        if let Some(g) = r.gpu {
            let _ = write!(
                s,
                "{:.4},{:.4},{:.3},{:.4},{:.4},{:.4},",
                ms(g),
                r.gflops(g),
                r.roofline_pct.unwrap_or_default(),
                ms(r.cpu),
                r.gflops(r.cpu),
                r.vs_cpu().unwrap_or_default()
            );
        } else {
            let share = fma_peak.map(|p| format!("{:.3}", 100.0 * r.gflops(r.cpu) / p)).unwrap_or_default();
            let _ = write!(s, "{:.4},{:.4},{share},", ms(r.cpu), r.gflops(r.cpu));
        }
        let _ = writeln!(s, "{oracle},{speedup},{}", r.check.csv());
    }
    s
}
