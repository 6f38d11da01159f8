//! `gqa bench`: a sweep over sequence lengths (T = S) on one adapter and on the CPU oracle: a table of
//! ms, GFLOP/s, the share of the adapter's measured FMA roofline and the speed-up over the oracle;
//! CSV, an SVG plot (throughput vs sequence length) and JSON for scripts.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use gqa_core::{CallOptions, GqaConfig, HostTensor, LayerDims};
use gqa_wgpu::GqaLayer;
use serde_json::json;

use crate::args::Backend;
use crate::error::CliError;

/// `gqa bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The GPU API to use (auto: the best adapter).
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// Sequence lengths to sweep (T = S), comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = [64usize, 128, 256, 512])]
    pub seq: Vec<usize>,
    /// B.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Nq.
    #[arg(long, default_value_t = 8)]
    pub query_heads: usize,
    /// Nkv.
    #[arg(long, default_value_t = 2)]
    pub kv_heads: usize,
    /// H.
    #[arg(long, default_value_t = 64)]
    pub head_dim: usize,
    /// Dq = Dv.
    #[arg(long, default_value_t = 512)]
    pub query_dim: usize,
    /// Timed GPU calls per length (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    /// Causal masking.
    #[arg(long)]
    pub causal: bool,
    /// Skip the CPU oracle.
    #[arg(long)]
    pub no_oracle: bool,
    /// Write the table as CSV.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write an SVG plot of GFLOP/s against the sequence length, GPU and CPU.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Print the table as JSON on stdout (the progress bar stays on stderr).
    #[arg(long)]
    pub json: bool,
}

/// One row of the sweep.
#[derive(Debug, Clone)]
struct Row {
    seq: usize,
    flops: f64,
    gpu: Duration,
    oracle: Option<Duration>,
}

impl Row {
    fn gflops(&self, d: Duration) -> f64 {
        self.flops / d.as_secs_f64() / 1e9
    }
}

/// Deterministic, non-zero test data (benchmarks need no randomness).
fn data(shape: &[usize], phase: f32) -> HostTensor {
    let n: usize = shape.iter().product();
    HostTensor::new(shape.to_vec(), (0..n).map(|i| (i as f32 * 0.618 + phase).sin()).collect())
        .expect("length matches shape")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs the sweep.
pub fn bench(args: &BenchArgs) -> Result<(), CliError> {
    let started = Instant::now();
    let ctx = crate::backend::open(args.backend)?;
    let context_time = started.elapsed();
    let gpu_err = |context: &str| {
        let context = context.to_string();
        move |source| CliError::Gpu { context: context.clone(), source }
    };
    let roof = gqa_wgpu::roofline::measure(&ctx, 3).map_err(gpu_err("measuring the roofline"))?;
    let config = GqaConfig::new(args.head_dim, args.query_heads, args.kv_heads);
    let dims = LayerDims { query_dim: args.query_dim, key_dim: args.query_dim, value_dim: args.query_dim };
    let weights = gqa_ref::initialize_weights(&config, dims, 7)
        .map_err(|source| CliError::Inputs { inputs: "bench config".into(), source })?;
    let layer = GqaLayer::new(&ctx, &config, &weights).map_err(gpu_err("uploading the weights"))?;
    let options = CallOptions { use_causal_mask: args.causal, ..Default::default() };

    let bar = indicatif::ProgressBar::new(args.seq.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} T=S={msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let mut rows = Vec::with_capacity(args.seq.len());
    for &seq in &args.seq {
        bar.set_message(seq.to_string());
        let shape = [args.batch, seq, args.query_dim];
        let (q, v) = (data(&shape, 0.0), data(&shape, 1.0));
        let plan = layer.plan(&shape, &shape, None, &options).map_err(gpu_err(&format!("planning T=S={seq}")))?;
        let run_err = gpu_err(&format!("running T=S={seq} on {}", ctx.describe()));
        layer.forward(&q, &v, None, &options).map_err(&run_err)?;
        let mut times = Vec::with_capacity(args.runs as usize);
        for _ in 0..args.runs {
            let t = Instant::now();
            layer.forward(&q, &v, None, &options).map_err(&run_err)?;
            times.push(t.elapsed());
        }
        times.sort();
        let oracle = if args.no_oracle {
            None
        } else {
            let t = Instant::now();
            gqa_ref::forward(&config, &weights, &q, &v, None, &options)
                .map_err(|source| CliError::Inputs { inputs: format!("T=S={seq}"), source })?;
            Some(t.elapsed())
        };
        rows.push(Row { seq, flops: plan.flops() as f64, gpu: times[times.len() / 2], oracle });
        bar.inc(1);
    }
    bar.finish_and_clear();

    let csv = to_csv(&rows, roof.gflops);
    if let Some(path) = &args.csv {
        std::fs::write(path, &csv)
            .map_err(|e| CliError::Output { path: path.display().to_string(), message: e.to_string() })?;
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, to_svg(&rows, &ctx.describe()))
            .map_err(|e| CliError::Output { path: path.display().to_string(), message: e.to_string() })?;
    }
    if args.json {
        let table: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "seq": r.seq,
                    "gflop": r.flops / 1e9,
                    "gpu_ms": ms(r.gpu),
                    "gpu_gflops": r.gflops(r.gpu),
                    "roofline_pct": 100.0 * r.gflops(r.gpu) / roof.gflops,
                    "oracle_ms": r.oracle.map(ms),
                    "speedup": r.oracle.map(|o| o.as_secs_f64() / r.gpu.as_secs_f64()),
                })
            })
            .collect();
        let doc = json!({
            "adapter": ctx.describe(),
            "context_ms": ms(context_time),
            "roofline": { "fma_gflops": roof.gflops, "copy_gbps": roof.gbps },
            "shape": { "batch": args.batch, "query_heads": args.query_heads, "kv_heads": args.kv_heads,
                       "head_dim": args.head_dim, "query_dim": args.query_dim, "causal": args.causal },
            "rows": table,
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("JSON values serialise"));
        return Ok(());
    }
    println!("adapter   {}", ctx.describe());
    println!("context   {:.1} ms (adapter, device, every pipeline compiled)", ms(context_time));
    println!("roofline  FMA probe {:.1} GFLOP/s, copy probe {:.2} GB/s", roof.gflops, roof.gbps);
    println!(
        "shape     B={} Nq={} Nkv={} H={} Dq=Dv={}{}, T=S swept, median of {} GPU runs\n",
        args.batch,
        args.query_heads,
        args.kv_heads,
        args.head_dim,
        args.query_dim,
        if args.causal { ", causal" } else { "" },
        args.runs
    );
    println!(
        "{:>7} {:>9} {:>11} {:>9} {:>10} {:>11} {:>9}",
        "T=S", "GFLOP", "GPU ms", "GFLOP/s", "% roof", "oracle ms", "speed-up"
    );
    for r in &rows {
        let (oracle, speedup) = match r.oracle {
            Some(o) => (format!("{:.2}", ms(o)), format!("{:.2}x", o.as_secs_f64() / r.gpu.as_secs_f64())),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:>7} {:>9.3} {:>11.2} {:>9.2} {:>9.1}% {:>11} {:>9}",
            r.seq,
            r.flops / 1e9,
            ms(r.gpu),
            r.gflops(r.gpu),
            100.0 * r.gflops(r.gpu) / roof.gflops,
            oracle,
            speedup
        );
    }
    Ok(())
}

fn to_csv(rows: &[Row], roof_gflops: f64) -> String {
    let mut s = String::from("seq,gflop,gpu_ms,gpu_gflops,roofline_pct,oracle_ms,speedup\n");
    for r in rows {
        let oracle = r.oracle.map_or(String::new(), |o| format!("{:.4}", ms(o)));
        let speedup = r.oracle.map_or(String::new(), |o| format!("{:.4}", o.as_secs_f64() / r.gpu.as_secs_f64()));
        let _ = writeln!(
            s,
            "{},{:.6},{:.4},{:.4},{:.3},{oracle},{speedup}",
            r.seq,
            r.flops / 1e9,
            ms(r.gpu),
            r.gflops(r.gpu),
            100.0 * r.gflops(r.gpu) / roof_gflops
        );
    }
    s
}

/// A small self-contained SVG: GFLOP/s (y) against the sequence length (x, log scale), one line for
/// the GPU and one for the CPU oracle.
fn to_svg(rows: &[Row], adapter: &str) -> String {
    let (w, h, pad) = (640.0, 400.0, 60.0);
    let xs: Vec<f64> = rows.iter().map(|r| (r.seq.max(1) as f64).log2()).collect();
    let (x0, x1) = xs.iter().fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
    let ymax = rows
        .iter()
        .flat_map(|r| std::iter::once(r.gflops(r.gpu)).chain(r.oracle.map(|o| r.gflops(o))))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let px = |x: f64| pad + (x - x0) / (x1 - x0).max(1e-9) * (w - 2.0 * pad);
    let py = |y: f64| h - pad - y / ymax * (h - 2.0 * pad);
    let line = |values: Vec<(f64, f64)>, color: &str| {
        let points: Vec<String> = values.iter().map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y))).collect();
        let dots: String = values
            .iter()
            .map(|(x, y)| format!(r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#, px(*x), py(*y)))
            .collect();
        format!(r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>{dots}"#, points.join(" "))
    };
    let gpu = line(xs.iter().zip(rows).map(|(x, r)| (*x, r.gflops(r.gpu))).collect(), "#1f77b4");
    let cpu = line(xs.iter().zip(rows).filter_map(|(x, r)| r.oracle.map(|o| (*x, r.gflops(o)))).collect(), "#d62728");
    let mut ticks = String::new();
    for (x, r) in xs.iter().zip(rows) {
        let _ = write!(
            ticks,
            r#"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle">{}</text>"#,
            px(*x),
            h - pad + 16.0,
            r.seq
        );
    }
    for i in 0..=4 {
        let y = ymax * i as f64 / 4.0;
        let _ = write!(
            ticks,
            r#"<text x="{}" y="{:.1}" font-size="11" text-anchor="end">{y:.2}</text>"#,
            pad - 6.0,
            py(y) + 4.0
        );
    }
    let title: String = adapter.chars().filter(|c| !matches!(c, '<' | '>' | '&')).collect();
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">
<rect width="100%" height="100%" fill="white"/>
<text x="{pad}" y="24" font-size="14">gqa forward: GFLOP/s vs sequence length (T = S)</text>
<text x="{pad}" y="40" font-size="11">{title}</text>
<line x1="{pad}" y1="{b}" x2="{r}" y2="{b}" stroke="black"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{b}" stroke="black"/>
{ticks}{gpu}{cpu}
<text x="{r}" y="{pad}" font-size="12" text-anchor="end" fill="#1f77b4">GPU</text>
<text x="{r}" y="{l2}" font-size="12" text-anchor="end" fill="#d62728">CPU oracle (f64)</text>
</svg>
"##,
        b = h - pad,
        r = w - pad,
        l2 = pad + 16.0
    )
}
