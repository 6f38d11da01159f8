//! `gqa bench`: a sweep over sequence lengths (T = S) on one adapter and on the CPU oracle: a table of
//! ms, GFLOP/s, the share of the adapter's measured FMA roofline (each timed call against the FMA
//! probe run just before it, the median of those ratios) and the speed-up over the oracle; CSV, an
//! SVG plot (throughput vs sequence length) and JSON for scripts.

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
    /// Time KV-cache decoding steps instead of whole calls: one new token per step over a cache
    /// holding `--seq` tokens (default shape Nq=32, Nkv=8, H=128, Dq=4096; lengths 512, 2048, 8192,
    /// 32768), GPU and the oracle's own cache; reports ms per step and its linear fit in S.
    #[arg(long)]
    pub decode: bool,
    /// Sequence lengths to sweep (T = S; with --decode, cached lengths S), comma separated
    /// [default: 64,128,256,512; with --decode 512,2048,8192,32768].
    #[arg(long, value_delimiter = ',')]
    pub seq: Vec<usize>,
    /// B.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Nq [default: 8; with --decode 32].
    #[arg(long)]
    pub query_heads: Option<usize>,
    /// Nkv [default: 2; with --decode 8].
    #[arg(long)]
    pub kv_heads: Option<usize>,
    /// H [default: 64; with --decode 128].
    #[arg(long)]
    pub head_dim: Option<usize>,
    /// Dq = Dv [default: 512; with --decode 4096].
    #[arg(long)]
    pub query_dim: Option<usize>,
    /// Timed GPU calls per length (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    /// Causal masking.
    #[arg(long)]
    pub causal: bool,
    /// Skip the CPU oracle.
    #[arg(long)]
    pub no_oracle: bool,
    /// With --decode: run the split pass with the fused kernel in split mode instead of the decode
    /// kernel (attention_decode.wgsl), to compare.
    #[arg(long)]
    pub no_decode_kernel: bool,
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

/// The shape of a sweep, with each mode's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sweep {
    pub(crate) seq: Vec<usize>,
    pub(crate) batch: usize,
    pub(crate) query_heads: usize,
    pub(crate) kv_heads: usize,
    pub(crate) head_dim: usize,
    pub(crate) query_dim: usize,
}

impl BenchArgs {
    /// The sweep asked for, with the defaults of the mode (`--decode` or not).
    pub(crate) fn sweep(&self) -> Sweep {
        let (seq, nq, nkv, h, dq): (&[usize], _, _, _, _) = if self.decode {
            (&[512, 2048, 8192, 32768], 32, 8, 128, 4096)
        } else {
            (&[64, 128, 256, 512], 8, 2, 64, 512)
        };
        Sweep {
            seq: if self.seq.is_empty() { seq.to_vec() } else { self.seq.clone() },
            batch: self.batch,
            query_heads: self.query_heads.unwrap_or(nq),
            kv_heads: self.kv_heads.unwrap_or(nkv),
            head_dim: self.head_dim.unwrap_or(h),
            query_dim: self.query_dim.unwrap_or(dq),
        }
    }

    /// Writes `text` to `path`.
    pub(crate) fn write(path: &std::path::Path, text: &str) -> Result<(), CliError> {
        std::fs::write(path, text)
            .map_err(|e| CliError::Output { path: path.display().to_string(), message: e.to_string() })
    }
}

/// One row of the sweep.
#[derive(Debug, Clone)]
struct Row {
    seq: usize,
    flops: f64,
    gpu: Duration,
    oracle: Option<Duration>,
    /// The median over the timed calls of each call's GFLOP/s over the FMA probe run just before
    /// it, in percent.
    roofline_pct: f64,
}

impl Row {
    fn gflops(&self, d: Duration) -> f64 {
        self.flops / d.as_secs_f64() / 1e9
    }
}

/// Deterministic, non-zero test data (benchmarks need no randomness).
pub(crate) fn data(shape: &[usize], phase: f32) -> HostTensor {
    let n: usize = shape.iter().product();
    HostTensor::new(shape.to_vec(), (0..n).map(|i| (i as f32 * 0.618 + phase).sin()).collect())
        .expect("length matches shape")
}

/// The oracle's ms and the GPU's speed-up over it as table cells (`-` when the oracle was skipped).
pub(crate) fn oracle_cells(oracle: Option<Duration>, gpu: Duration) -> (String, String) {
    match oracle {
        Some(o) => (format!("{:.2}", ms(o)), format!("{:.2}x", o.as_secs_f64() / gpu.as_secs_f64())),
        None => ("-".into(), "-".into()),
    }
}

/// The same as CSV cells (empty when the oracle was skipped).
pub(crate) fn oracle_csv(oracle: Option<Duration>, gpu: Duration) -> (String, String) {
    match oracle {
        Some(o) => (format!("{:.4}", ms(o)), format!("{:.4}", o.as_secs_f64() / gpu.as_secs_f64())),
        None => (String::new(), String::new()),
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs the sweep.
pub fn bench(args: &BenchArgs) -> Result<(), CliError> {
    if args.decode {
        return crate::bench_decode::bench_decode(args);
    }
    let sweep = args.sweep();
    let started = Instant::now();
    let ctx = crate::backend::open(args.backend)?;
    let context_time = started.elapsed();
    let gpu_err = |context: &str| {
        let context = context.to_string();
        move |source| CliError::Gpu { context: context.clone(), source }
    };
    // Kernels compile at their first use; the bench compiles every variant up front and reports it.
    let started = Instant::now();
    ctx.compile_all_kernels().map_err(gpu_err("compiling the kernels"))?;
    let pipelines_time = started.elapsed();
    // The probes are built once; the FMA probe runs again before every timed call, and each row's
    // share of the roofline is the median of its calls' own ratios (a shared machine's speed moves
    // between a probe and a call taken apart). The header's figures are the first measurement's.
    let probes = gqa_wgpu::roofline::Probes::new(&ctx).map_err(gpu_err("building the roofline probes"))?;
    let roof = probes.measure(3).map_err(gpu_err("measuring the roofline"))?;
    let config = GqaConfig::new(sweep.head_dim, sweep.query_heads, sweep.kv_heads);
    let dims = LayerDims { query_dim: sweep.query_dim, key_dim: sweep.query_dim, value_dim: sweep.query_dim };
    let weights = gqa_ref::initialize_weights(&config, dims, 7)
        .map_err(|source| CliError::Inputs { inputs: "bench config".into(), source })?;
    let layer = GqaLayer::new(&ctx, &config, &weights).map_err(gpu_err("uploading the weights"))?;
    let options = CallOptions { use_causal_mask: args.causal, ..Default::default() };

    let bar = progress(sweep.seq.len(), "T=S");
    let mut rows = Vec::with_capacity(sweep.seq.len());
    for &seq in &sweep.seq {
        bar.set_message(seq.to_string());
        let shape = [sweep.batch, seq, sweep.query_dim];
        let (q, v) = (data(&shape, 0.0), data(&shape, 1.0));
        let plan = layer.plan(&shape, &shape, None, &options).map_err(gpu_err(&format!("planning T=S={seq}")))?;
        let run_err = gpu_err(&format!("running T=S={seq} on {}", ctx.describe()));
        layer.forward(&q, &v, None, &options).map_err(&run_err)?;
        let mut times = Vec::with_capacity(args.runs as usize);
        let mut shares = Vec::with_capacity(args.runs as usize);
        for _ in 0..args.runs {
            let probe = probes.fma_gflops(1).map_err(gpu_err("measuring the roofline"))?;
            let t = Instant::now();
            layer.forward(&q, &v, None, &options).map_err(&run_err)?;
            let took = t.elapsed();
            times.push(took);
            shares.push(100.0 * plan.flops() as f64 / took.as_secs_f64() / 1e9 / probe);
        }
        times.sort();
        shares.sort_by(f64::total_cmp);
        let oracle = if args.no_oracle {
            None
        } else {
            let t = Instant::now();
            gqa_ref::forward(&config, &weights, &q, &v, None, &options)
                .map_err(|source| CliError::Inputs { inputs: format!("T=S={seq}"), source })?;
            Some(t.elapsed())
        };
        let roofline_pct = shares[shares.len() / 2];
        rows.push(Row { seq, flops: plan.flops() as f64, gpu: times[times.len() / 2], oracle, roofline_pct });
        bar.inc(1);
    }
    bar.finish_and_clear();

    if let Some(path) = &args.csv {
        BenchArgs::write(path, &to_csv(&rows))?;
    }
    if let Some(path) = &args.svg {
        let plot = crate::plot::Plot {
            title: "gqa forward: GFLOP/s vs sequence length (T = S)".into(),
            subtitle: ctx.describe(),
            log_x: true,
            x: rows.iter().map(|r| r.seq).collect(),
            series: vec![
                ("GPU".into(), rows.iter().map(|r| Some(r.gflops(r.gpu))).collect()),
                ("CPU oracle (f64)".into(), rows.iter().map(|r| r.oracle.map(|o| r.gflops(o))).collect()),
            ],
        };
        BenchArgs::write(path, &plot.to_svg())?;
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
                    "roofline_pct": r.roofline_pct,
                    "oracle_ms": r.oracle.map(ms),
                    "speedup": r.oracle.map(|o| o.as_secs_f64() / r.gpu.as_secs_f64()),
                })
            })
            .collect();
        let doc = json!({
            "adapter": ctx.describe(),
            "context_ms": ms(context_time),
            "pipelines_ms": ms(pipelines_time),
            "roofline": { "fma_gflops": roof.gflops, "copy_gbps": roof.gbps },
            "shape": { "batch": sweep.batch, "query_heads": sweep.query_heads, "kv_heads": sweep.kv_heads,
                       "head_dim": sweep.head_dim, "query_dim": sweep.query_dim, "causal": args.causal },
            "rows": table,
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("JSON values serialise"));
        return Ok(());
    }
    println!("adapter   {}", ctx.describe());
    println!(
        "context   {:.1} ms (adapter, device); pipelines {:.1} ms (every kernel variant the device runs)",
        ms(context_time),
        ms(pipelines_time)
    );
    println!("roofline  FMA probe {:.1} GFLOP/s, copy probe {:.2} GB/s", roof.gflops, roof.gbps);
    println!(
        "shape     B={} Nq={} Nkv={} H={} Dq=Dv={}{}, T=S swept, median of {} GPU runs\n",
        sweep.batch,
        sweep.query_heads,
        sweep.kv_heads,
        sweep.head_dim,
        sweep.query_dim,
        if args.causal { ", causal" } else { "" },
        args.runs
    );
    println!(
        "{:>7} {:>9} {:>11} {:>9} {:>10} {:>11} {:>9}",
        "T=S", "GFLOP", "GPU ms", "GFLOP/s", "% roof", "oracle ms", "speed-up"
    );
    for r in &rows {
        let (oracle, speedup) = oracle_cells(r.oracle, r.gpu);
        println!(
            "{:>7} {:>9.3} {:>11.2} {:>9.2} {:>9.1}% {:>11} {:>9}",
            r.seq,
            r.flops / 1e9,
            ms(r.gpu),
            r.gflops(r.gpu),
            r.roofline_pct,
            oracle,
            speedup
        );
    }
    Ok(())
}

fn to_csv(rows: &[Row]) -> String {
    let mut s = String::from("seq,gflop,gpu_ms,gpu_gflops,roofline_pct,oracle_ms,speedup\n");
    for r in rows {
        let (oracle, speedup) = oracle_csv(r.oracle, r.gpu);
        let _ = writeln!(
            s,
            "{},{:.6},{:.4},{:.4},{:.3},{oracle},{speedup}",
            r.seq,
            r.flops / 1e9,
            ms(r.gpu),
            r.gflops(r.gpu),
            r.roofline_pct
        );
    }
    s
}

/// A progress bar on stderr over `len` items, labelled `what` (`T=S`, `S`).
pub(crate) fn progress(len: usize, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!("{{spinner}} [{{bar:30}}] {{pos}}/{{len}} {what}={{msg}}"))
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar
}
