//! `gqa bench`: a sweep over sequence lengths (T = S) on one adapter and on the CPU oracle: a table of
//! ms, GFLOP/s, the share of the adapter's measured FMA roofline (each timed call against the FMA
//! probe run just before it, the median of those ratios) and the speed-up over the oracle; CSV, an
//! SVG plot (throughput vs sequence length) and JSON for scripts.
//!
//! A timing counts only from a checked run: at each length the oracle's output is kept and every
//! GPU output (the warm-up's and each timed call's) is compared with it
//! ([`gqa_ref::check`]). Each row says whether all of them passed (`check`: `pass`, `FAIL`, or
//! `unchecked` under `--no-oracle`); a row that fails is still printed, and the command then exits
//! with an error naming its length.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use gqa_core::{CallOptions, GqaConfig, HostTensor, LayerDims};
use gqa_ref::check::{Comparison, Tolerance};
use gqa_wgpu::GqaLayer;
use serde_json::json;

use crate::args::Backend;
use crate::error::CliError;
pub(crate) use crate::timed::ms;
use crate::timed::{Call, Calls, timed_calls};

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
    #[arg(long, overrides_with = "no_causal")]
    pub causal: bool,
    /// No causal masking (the default; the last of --causal/--no-causal wins).
    #[arg(long, overrides_with = "causal")]
    pub no_causal: bool,
    /// Skip the CPU oracle, and so the check of every output against it: the rows are marked
    /// `unchecked` and a warning says that their timings come from outputs nobody compared.
    #[arg(long)]
    pub no_oracle: bool,
    /// With --decode: run the split pass with the fused kernel in split mode instead of the decode
    /// kernel (attention_decode.wgsl), to compare.
    #[arg(long)]
    pub no_decode_kernel: bool,
    /// The kernel set to start from: the adapter's (auto), the one for GPUs (gpu) or for CPU
    /// adapters (cpu), keeping the adapter's loop cap and subgroups.
    #[arg(long, value_enum, default_value_t = crate::args::TuningFlag::Auto)]
    pub tuning: crate::args::TuningFlag,
    /// Write the table as CSV.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write the plot (the sweep: GFLOP/s against the sequence length, GPU, CPU oracle and the FMA
    /// probe; --decode: ms per step against the cached keys, GPU, CPU oracle and the copy probe's
    /// floor) as STEM.svg and STEM.png (the PNG where a TrueType font is found, see GQA_PLOT_FONT).
    #[arg(long, value_name = "STEM")]
    pub plot: Option<PathBuf>,
    /// Write the plot as SVG to FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Write the plot as PNG to FILE (fails where no TrueType font is found).
    #[arg(long, value_name = "FILE")]
    pub png: Option<PathBuf>,
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

    /// The report's `shape` and `options` (JSON and CSV).
    pub(crate) fn described(&self, sweep: &Sweep) -> (serde_json::Value, serde_json::Value) {
        let shape = json!({
            "batch": sweep.batch, "query_heads": sweep.query_heads, "kv_heads": sweep.kv_heads,
            "head_dim": sweep.head_dim, "query_dim": sweep.query_dim, "seq": sweep.seq,
            "causal": self.causal,
        });
        let options = json!({
            "mode": if self.decode { "decode" } else { "forward" },
            "backend": self.backend.flag(),
            "runs": self.runs,
            "causal": self.causal,
            "no_oracle": self.no_oracle,
            "no_decode_kernel": self.no_decode_kernel,
            "tuning": format!("{:?}", self.tuning).to_lowercase(),
        });
        (shape, options)
    }

    /// Writes `text` to `path`.
    /// The plot files that --plot, --svg and --png name.
    pub(crate) fn plot_files(&self) -> crate::plot::PlotFiles {
        crate::plot::PlotFiles::new(self.plot.as_deref(), self.svg.as_deref(), self.png.as_deref())
    }

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
    /// How the row's outputs compared with the oracle's.
    check: RowCheck,
}

/// The warning `--no-oracle` prints (on stderr, and above the table).
pub(crate) const UNCHECKED_WARNING: &str =
    "UNCHECKED: --no-oracle: no output was compared with the oracle; these timings are from outputs nobody compared";

/// A hook on each GPU output (with its length and which call gave it) before it is checked: the
/// tests perturb one to see the check fail; the command passes one that does nothing.
pub(crate) type Tamper<'a> = &'a mut dyn FnMut(usize, Call, &mut HostTensor);

/// The check of one row: every GPU output of the row against the oracle's output at that length.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowCheck {
    /// Whether the oracle ran (else nothing is compared: `unchecked`).
    oracle: bool,
    /// The outputs compared.
    pub(crate) outputs: usize,
    /// The outputs out of tolerance.
    pub(crate) failed: usize,
    /// The largest finite |gpu - oracle| over every output compared.
    pub(crate) max_abs: f32,
    /// The most elements out of tolerance in any one output.
    pub(crate) out_of_tolerance: usize,
    /// The first output that failed, and how.
    pub(crate) first_failure: Option<String>,
}

impl RowCheck {
    /// A row checked against the oracle (`oracle` true) or not.
    pub(crate) fn new(oracle: bool) -> Self {
        Self { oracle, outputs: 0, failed: 0, max_abs: 0.0, out_of_tolerance: 0, first_failure: None }
    }

    /// Records one output's comparison.
    pub(crate) fn record(&mut self, which: Call, c: &Comparison) {
        self.outputs += 1;
        self.max_abs = self.max_abs.max(c.max_abs);
        self.out_of_tolerance = self.out_of_tolerance.max(c.out_of_tolerance);
        if !c.passed() {
            self.failed += 1;
            self.first_failure.get_or_insert_with(|| format!("{which}: {c}"));
        }
    }

    /// True only when the oracle ran and every output compared passed.
    pub(crate) fn checked(&self) -> bool {
        self.oracle && self.outputs > 0 && self.failed == 0
    }

    /// `pass`, `FAIL` or `unchecked`.
    pub(crate) fn status(&self) -> &'static str {
        match (self.oracle, self.checked()) {
            (false, _) => "unchecked",
            (true, true) => "pass",
            (true, false) => "FAIL",
        }
    }

    /// Whether the row failed its check (not merely unchecked).
    pub(crate) fn failed(&self) -> bool {
        self.oracle && !self.checked()
    }

    /// The max abs error and out-of-tolerance count as table cells (`-` when unchecked).
    pub(crate) fn cells(&self) -> (String, String) {
        if self.oracle {
            (format!("{:.2e}", self.max_abs), self.out_of_tolerance.to_string())
        } else {
            ("-".into(), "-".into())
        }
    }

    /// The same as CSV cells (empty when unchecked).
    pub(crate) fn csv(&self) -> String {
        if self.oracle {
            format!("{},{},{:e},{}", self.status(), self.checked(), self.max_abs, self.out_of_tolerance)
        } else {
            format!("{},false,,", self.status())
        }
    }

    /// The row's JSON fields: `check`, `checked`, `checked_outputs`, `max_abs_err`,
    /// `out_of_tolerance` (null when unchecked).
    pub(crate) fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("check".into(), json!(self.status()));
        m.insert("checked".into(), json!(self.checked()));
        m.insert("checked_outputs".into(), json!(self.outputs));
        m.insert("max_abs_err".into(), if self.oracle { json!(self.max_abs) } else { json!(null) });
        m.insert("out_of_tolerance".into(), if self.oracle { json!(self.out_of_tolerance) } else { json!(null) });
        m
    }
}

/// The CSV columns [`RowCheck::csv`] writes.
pub(crate) const CHECK_CSV_COLUMNS: &str = "check,checked,max_abs_err,out_of_tolerance";

/// The error for the rows whose check failed (`what` names each row: `T=S=128`), or `None`.
pub(crate) fn check_failures<'a>(rows: impl Iterator<Item = (String, &'a RowCheck)>) -> Option<CliError> {
    let failed: Vec<String> = rows
        .filter(|(_, c)| c.failed())
        .map(|(what, c)| format!("{what} ({})", c.first_failure.as_deref().unwrap_or("no output compared")))
        .collect();
    (!failed.is_empty()).then(|| CliError::CheckFailed { rows: failed.join("; ") })
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

/// Runs the sweep.
pub fn bench(args: &BenchArgs) -> Result<(), CliError> {
    bench_with(args, &mut |_, _, _| {})
}

/// [`bench`], with `tamper` applied to each GPU output before it is checked.
pub(crate) fn bench_with(args: &BenchArgs, tamper: Tamper<'_>) -> Result<(), CliError> {
    if args.no_oracle {
        eprintln!("warning: {UNCHECKED_WARNING}");
    }
    if args.decode {
        return crate::bench_decode::bench_decode(args, tamper);
    }
    let sweep = args.sweep();
    let started = Instant::now();
    let ctx = crate::backend::open(args.backend)?;
    let ctx = ctx.clone().with_tuning(args.tuning.apply(ctx.tuning()));
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
    let tolerance = Tolerance::for_precision(layer.precision());

    let bar = progress(sweep.seq.len(), "T=S");
    let mut rows = Vec::with_capacity(sweep.seq.len());
    for &seq in &sweep.seq {
        bar.set_message(seq.to_string());
        let shape = [sweep.batch, seq, sweep.query_dim];
        let (q, v) = (data(&shape, 0.0), data(&shape, 1.0));
        let plan = layer.plan(&shape, &shape, None, &options).map_err(gpu_err(&format!("planning T=S={seq}")))?;
        let run_err = gpu_err(&format!("running T=S={seq} on {}", ctx.describe()));
        // The oracle runs once, after the warm-up; every GPU output is compared with its output,
        // outside the timed calls, and the FMA probe runs just before each timed call.
        let mut oracle = || {
            gqa_ref::forward(&config, &weights, &q, &v, None, &options)
                .map(|want| want.output)
                .map_err(|source| CliError::Inputs { inputs: format!("T=S={seq}"), source })
        };
        let calls = Calls {
            call: &mut || layer.forward(&q, &v, None, &options).map(|out| out.output).map_err(&run_err),
            oracle: if args.no_oracle { None } else { Some(&mut oracle) },
            before: &mut || probes.fma_gflops(1).map_err(gpu_err("measuring the roofline")),
            tamper: &mut |which, got| tamper(seq, which, got),
        };
        let timed = timed_calls(args.runs as usize, tolerance, calls)?;
        let mut check = RowCheck::new(timed.checks.is_some());
        for (which, c) in timed.checks.iter().flat_map(|c| &c.results) {
            check.record(*which, c);
        }
        let mut shares: Vec<f64> = timed
            .times
            .iter()
            .zip(&timed.before)
            .map(|(took, probe)| 100.0 * plan.flops() as f64 / took.as_secs_f64() / 1e9 / probe)
            .collect();
        shares.sort_by(f64::total_cmp);
        let roofline_pct = shares[shares.len() / 2];
        let oracle = timed.checks.as_ref().map(|c| c.oracle_time);
        rows.push(Row { seq, flops: plan.flops() as f64, gpu: timed.median(), oracle, roofline_pct, check });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let failures = check_failures(rows.iter().map(|r| (format!("T=S={}", r.seq), &r.check)));

    let (shape, options) = args.described(&sweep);
    let meta = crate::meta::report(&ctx, shape, options, rows.iter().all(|r| r.check.checked()));
    if let Some(path) = &args.csv {
        BenchArgs::write(path, &(crate::meta::csv_comments(&meta) + &to_csv(&rows)))?;
    }
    let plot_files = args.plot_files();
    if !plot_files.is_empty() {
        use crate::plot::{Plot, Scale, Series, SeriesKind};
        let plot = Plot {
            title: "gqa forward: throughput vs sequence length (T = S)".into(),
            subtitle: ctx.describe(),
            x_title: "sequence length T = S (tokens, log scale)".into(),
            y_title: "throughput (GFLOP/s)".into(),
            y_scale: Scale::Linear,
            x: rows.iter().map(|r| r.seq).collect(),
            series: vec![
                Series {
                    name: "GPU".into(),
                    kind: SeriesKind::Measured,
                    y: rows.iter().map(|r| Some(r.gflops(r.gpu))).collect(),
                },
                Series {
                    name: "CPU oracle (f64)".into(),
                    kind: SeriesKind::Measured,
                    y: rows.iter().map(|r| r.oracle.map(|o| r.gflops(o))).collect(),
                },
                Series {
                    name: format!("FMA probe roofline ({:.0} GFLOP/s)", roof.gflops),
                    kind: SeriesKind::Bound,
                    y: rows.iter().map(|_| Some(roof.gflops)).collect(),
                },
            ],
        };
        plot_files.write(&plot)?;
    }
    if args.json {
        let table: Vec<_> = rows
            .iter()
            .map(|r| {
                let mut row = json!({
                    "seq": r.seq,
                    "gflop": r.flops / 1e9,
                    "ms": ms(r.gpu),
                    "gpu_ms": ms(r.gpu),
                    "gpu_gflops": r.gflops(r.gpu),
                    "roofline_pct": r.roofline_pct,
                    "oracle_ms": r.oracle.map(ms),
                    "speedup": r.oracle.map(|o| o.as_secs_f64() / r.gpu.as_secs_f64()),
                });
                row.as_object_mut().expect("a JSON object").extend(r.check.json());
                row
            })
            .collect();
        let mut doc = json!({
            "context_ms": ms(context_time),
            "pipelines_ms": ms(pipelines_time),
            "roofline": { "fma_gflops": roof.gflops, "copy_gbps": roof.gbps },
            "rows": table,
        });
        doc.as_object_mut().expect("a JSON object").extend(meta);
        println!("{}", serde_json::to_string_pretty(&doc).expect("JSON values serialise"));
        return failures.map_or(Ok(()), Err);
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
    print_check_header(args.no_oracle, "each GPU output (the warm-up's and every timed call's)", tolerance);
    println!(
        "{:>7} {:>9} {:>11} {:>9} {:>10} {:>11} {:>9} {:>9} {:>11} {:>10}",
        "T=S", "GFLOP", "GPU ms", "GFLOP/s", "% roof", "oracle ms", "speed-up", "check", "max abs err", "out of tol"
    );
    for r in &rows {
        let (oracle, speedup) = oracle_cells(r.oracle, r.gpu);
        let (max_abs, bad) = r.check.cells();
        println!(
            "{:>7} {:>9.3} {:>11.2} {:>9.2} {:>9.1}% {:>11} {:>9} {:>9} {:>11} {:>10}",
            r.seq,
            r.flops / 1e9,
            ms(r.gpu),
            r.gflops(r.gpu),
            r.roofline_pct,
            oracle,
            speedup,
            r.check.status(),
            max_abs,
            bad
        );
    }
    failures.map_or(Ok(()), Err)
}

/// The line above a table that says what its `check` column means, or (`--no-oracle`) the warning.
pub(crate) fn print_check_header(no_oracle: bool, what: &str, tolerance: Tolerance) {
    if no_oracle {
        println!("{UNCHECKED_WARNING}\n");
    } else {
        println!(
            "check     {what} against the oracle's, {tolerance};\n          `out of tol`: the most elements out of tolerance in one output\n"
        );
    }
}

fn to_csv(rows: &[Row]) -> String {
    let mut s = format!("seq,gflop,gpu_ms,gpu_gflops,roofline_pct,oracle_ms,speedup,{CHECK_CSV_COLUMNS}\n");
    for r in rows {
        let (oracle, speedup) = oracle_csv(r.oracle, r.gpu);
        let _ = writeln!(
            s,
            "{},{:.6},{:.4},{:.4},{:.3},{oracle},{speedup},{}",
            r.seq,
            r.flops / 1e9,
            ms(r.gpu),
            r.gflops(r.gpu),
            r.roofline_pct,
            r.check.csv()
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

#[cfg(test)]
mod tests {
    //! The sweep on the best adapter at tiny shapes, with one GPU output perturbed after it is read
    //! back: its row must fail, be written as such, and make the command fail naming the length.

    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn args(extra: &[&str]) -> BenchArgs {
        let tiny =
            ["bench", "--runs", "2", "--query-dim", "16", "--head-dim", "8", "--query-heads", "4", "--kv-heads", "2"];
        Command::parse_from(tiny.iter().chain(extra)).bench
    }

    /// Adds 1e-2 to one element of the output of call `which` at length `at`.
    fn perturb(at: usize, which: Call) -> impl FnMut(usize, Call, &mut HostTensor) {
        move |seq, call, out| {
            if seq == at && call == which {
                let mut data = out.data().to_vec();
                data[1] += 1e-2;
                *out = HostTensor::new(out.shape().to_vec(), data).unwrap();
            }
        }
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("gqa-bench-unit-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn row_check_counts_and_says_pass_fail_unchecked() {
        let want = [1.0, 2.0, 3.0];
        let mut c = RowCheck::new(true);
        c.record(Call::WarmUp, &gqa_ref::check::compare(&want, &want, Tolerance::F32));
        assert_eq!((c.status(), c.checked(), c.failed()), ("pass", true, false));
        c.record(Call::Timed(0), &gqa_ref::check::compare(&[1.0, 2.5, 3.5], &want, Tolerance::F32));
        assert_eq!((c.status(), c.checked(), c.failed()), ("FAIL", false, true));
        assert_eq!((c.outputs, c.failed, c.out_of_tolerance, c.max_abs), (2, 1, 2, 0.5));
        assert!(c.first_failure.as_deref().unwrap().starts_with("timed call 1: "), "{:?}", c.first_failure);
        assert_eq!(c.csv(), "FAIL,false,5e-1,2");
        assert_eq!(c.json()["checked"], false);
        let none = RowCheck::new(false);
        assert_eq!(
            (none.status(), none.checked(), none.failed(), none.csv()),
            ("unchecked", false, false, "unchecked,false,,".into())
        );
        assert!(none.json()["max_abs_err"].is_null());
        // A row with the oracle but no output compared is not checked.
        assert!(!RowCheck::new(true).checked());
    }

    #[test]
    fn every_output_passes_unperturbed() {
        bench_with(&args(&["--seq", "4,9"]), &mut |_, _, _| {}).unwrap();
        bench_with(&args(&["--decode", "--seq", "4,9"]), &mut |_, _, _| {}).unwrap();
    }

    #[test]
    fn a_perturbed_timed_output_fails_its_row() {
        let csv = scratch("forward").join("b.csv");
        let err = bench_with(&args(&["--seq", "4,9", "--csv", csv.to_str().unwrap()]), &mut perturb(9, Call::Timed(1)))
            .unwrap_err();
        assert!(matches!(err, CliError::CheckFailed { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("T=S=9") && msg.contains("timed call 2") && !msg.contains("T=S=4"), "{msg}");
        let table = std::fs::read_to_string(&csv).unwrap();
        assert!(table.contains("\n# date: ") && table.contains("\n# checked: false\n"), "{table}");
        let rows: Vec<&str> = table.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(rows[0].ends_with(",check,checked,max_abs_err,out_of_tolerance"), "{table}");
        assert!(rows[1].starts_with("4,") && rows[1].contains(",pass,true,"), "{table}");
        assert!(rows[2].starts_with("9,") && rows[2].contains(",FAIL,false,") && rows[2].ends_with(",1"), "{table}");
        // The warm-up's output is checked too.
        let err = bench_with(&args(&["--seq", "4"]), &mut perturb(4, Call::WarmUp)).unwrap_err();
        assert!(err.to_string().contains("the warm-up call"), "{err}");
    }

    #[test]
    fn a_perturbed_decode_step_fails_its_row() {
        let err = bench_with(&args(&["--decode", "--seq", "4,9"]), &mut perturb(4, Call::Timed(1))).unwrap_err();
        assert!(err.to_string().contains("S=4 (timed call 2"), "{err}");
        // The attention timer's output: the rest of its plan runs after the timed range and is read back.
        let err = bench_with(&args(&["--decode", "--seq", "4,9"]), &mut perturb(9, Call::AttentionTimer)).unwrap_err();
        assert!(err.to_string().contains("S=9 (the attention timer"), "{err}");
    }

    #[test]
    fn no_oracle_checks_nothing() {
        let csv = scratch("unchecked").join("b.csv");
        bench_with(
            &args(&["--seq", "4", "--no-oracle", "--csv", csv.to_str().unwrap()]),
            &mut perturb(4, Call::Timed(0)),
        )
        .unwrap();
        let table = std::fs::read_to_string(&csv).unwrap();
        assert!(table.contains("\n# checked: false\n"), "{table}");
        assert!(
            table.lines().filter(|l| !l.starts_with('#')).nth(1).unwrap().ends_with(",unchecked,false,,"),
            "{table}"
        );
    }
}
