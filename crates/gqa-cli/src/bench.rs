//! `gqa bench`: a sweep over sequence lengths on one adapter, the CPU layer (`gqa_cpu`, f32, every
//! thread) and the CPU oracle (f64): tables of ms and GFLOP/s, the share of the adapter's measured
//! FMA roofline (each timed call against the FMA probe run just before it, the median of those
//! ratios), the GPU's speed-up over the CPU layer, the oracle's time apart; `--backend cpu` sweeps
//! the CPU layer alone, with its share of the CPU's FMA peak. CSV, an SVG plot and JSON for scripts.
//! The whole-call sweep is [`crate::bench_forward`], the decode steps [`crate::bench_decode`].
//!
//! A timing counts only from a checked run: at each length the oracle's output is kept and every
//! output of the GPU and of the CPU layer (the warm-up's and each timed call's) is compared with it
//! ([`gqa_ref::check`]). Each row says whether all of them passed (`check`: `pass`, `FAIL`, or
//! `unchecked` under `--no-oracle`); a row that fails is still printed, and the command then exits
//! with an error naming its length.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use gqa_core::HostTensor;
use gqa_ref::check::{Comparison, Tolerance};
use serde_json::json;

use crate::args::Backend;
use crate::error::CliError;
use crate::timed::Call;
pub(crate) use crate::timed::ms;

/// `gqa bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The GPU API to use (auto: the best adapter); the CPU layer is timed beside it. cpu: the CPU
    /// layer alone (gqa-cpu, f32, every thread of rayon's pool), with its share of the CPU's
    /// measured FMA peak.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// Time KV-cache decoding steps instead of whole calls: one new token per step over a cache
    /// holding `--seq` tokens (default shape Nq=32, Nkv=8, H=128, Dq=4096; lengths 512, 2048, 8192,
    /// 32768), GPU, the CPU layer's and the oracle's own cache; reports ms per step and its linear
    /// fit in S.
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
    /// Timed calls per length, on the GPU and on the CPU layer each (the median is reported).
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
    /// kernel (attention_decode.wgsl), to compare. GPU only (an error with --backend cpu).
    #[arg(long)]
    pub no_decode_kernel: bool,
    /// With --decode: how the GPU's KV cache stores keys and values (f32, f16, or int8 with a
    /// power-of-two scale per token and kv head); the oracle's cache stores them the same way and
    /// checks every GPU output; the CPU layer's cache stays f32, checked against an f32 oracle.
    /// f16 and int8 (GPU only) put the weights on a grid of 1/256 and the new token on 1/64, so that
    /// its projections are exact and both caches store the same values.
    /// Several, comma separated, are timed in turn at each length, their timed steps interleaved
    /// (each round runs one step over every cache), so that their ratios come from the same moments.
    /// [default: f32; with --f16 f16]
    #[arg(long, value_name = "STORAGE", value_delimiter = ',')]
    pub cache: Vec<gqa_core::CacheStorage>,
    /// With --decode: a layer computing in f16 (f16 storage, f32 accumulation: Keras'
    /// mixed_float16) where the adapter has SHADER_F16, over its f16 KV cache (the only storage
    /// such a layer takes); its outputs are checked at atol = rtol = 5e-3. Where the adapter lacks
    /// SHADER_F16 the layer runs in f32 (the header says which). GPU only.
    #[arg(long, requires = "decode")]
    pub f16: bool,
    /// With --decode: time the step of a layer with Qwen3's RoPE and QK-norm beside the same layer
    /// without them (no biases, same weights), alternating their timed steps, each output checked
    /// (the plain one against the oracle's cache, the other against the oracle of KerasHub's
    /// Qwen3Attention); reports both and their ratio. GPU only, f32 caches.
    #[arg(long, requires = "decode")]
    pub rope_qk_norm: bool,
    /// With --decode: a layer with this sliding window, decoding in ring caches of the window's
    /// size (a step attends over at most N keys, however long the sequence).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub window: Option<u64>,
    /// The kernel set to start from: the adapter's (auto), the one for GPUs (gpu) or for CPU
    /// adapters (cpu), keeping the adapter's loop cap and subgroups. GPU only (an error with
    /// --backend cpu).
    #[arg(long, value_enum, default_value_t = crate::args::TuningFlag::Auto)]
    pub tuning: crate::args::TuningFlag,
    /// Write the table as CSV.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write the plot (the sweep: GFLOP/s against the sequence length, GPU, CPU layer, CPU oracle
    /// and the FMA probe; --decode: ms per step against the cached keys, GPU, CPU layer, CPU oracle
    /// and the copy probe's floor) as STEM.svg and STEM.png (the PNG where a TrueType font is found,
    /// see GQA_PLOT_FONT).
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

    /// The KV cache storages asked for, each once, in order (f32 when none).
    pub(crate) fn caches(&self) -> Vec<gqa_core::CacheStorage> {
        let mut out = Vec::new();
        for &c in &self.cache {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        if out.is_empty() {
            out.push(if self.f16 { gqa_core::CacheStorage::F16 } else { gqa_core::CacheStorage::F32 });
        }
        out
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
            "cache": self.caches().iter().map(|c| c.name()).collect::<Vec<_>>(),
            "window": self.window,
            "f16": self.f16,
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

/// The warning `--no-oracle` prints (on stderr, and above the table).
pub(crate) const UNCHECKED_WARNING: &str =
    "UNCHECKED: --no-oracle: no output was compared with the oracle; these timings are from outputs nobody compared";

/// A hook on each output (with its length, the layer and the call that gave it) before it is
/// checked: the tests perturb one to see the check fail; the command passes one that does nothing.
pub(crate) type Tamper<'a> = &'a mut dyn FnMut(usize, Side, Call, &mut HostTensor);

/// Which layer gave an output: the GPU's or the CPU layer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The GPU layer (`gqa_wgpu`).
    Gpu,
    /// The CPU layer (`gqa_cpu`).
    Cpu,
}

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
        self.record_labelled("", which, c);
    }

    /// Records one output's comparison, its failure (if any) named `{label}{which}` (`CPU layer, `
    /// for the CPU layer's outputs beside a GPU's).
    pub(crate) fn record_labelled(&mut self, label: &str, which: Call, c: &Comparison) {
        self.outputs += 1;
        self.max_abs = self.max_abs.max(c.max_abs);
        self.out_of_tolerance = self.out_of_tolerance.max(c.out_of_tolerance);
        if !c.passed() {
            self.failed += 1;
            self.first_failure.get_or_insert_with(|| format!("{label}{which}: {c}"));
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

/// Deterministic, non-zero test data (benchmarks need no randomness).
pub(crate) fn data(shape: &[usize], phase: f32) -> HostTensor {
    let n: usize = shape.iter().product();
    HostTensor::new(shape.to_vec(), (0..n).map(|i| (i as f32 * 0.618 + phase).sin()).collect())
        .expect("length matches shape")
}

/// The oracle's ms as a table cell (`-` when the oracle was skipped).
pub(crate) fn oracle_cell(oracle: Option<Duration>) -> String {
    oracle.map_or_else(|| "-".into(), |o| format!("{:.2}", ms(o)))
}

/// A speed-up as a table cell (`2.50x`, `-` when there is none).
pub(crate) fn ratio_cell(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "-".into(), |r| format!("{r:.2}x"))
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
    bench_with(args, &mut |_, _, _, _| {})
}

/// [`bench`], with `tamper` applied to each output (the GPU's and the CPU layer's) before it is
/// checked.
pub(crate) fn bench_with(args: &BenchArgs, tamper: Tamper<'_>) -> Result<(), CliError> {
    if args.backend.is_cpu() {
        let gpu_only: Vec<&str> = [
            (args.tuning != crate::args::TuningFlag::Auto, "--tuning"),
            (args.no_decode_kernel, "--no-decode-kernel"),
            (args.f16, "--f16"),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect();
        if !gpu_only.is_empty() {
            return Err(CliError::Flags(format!(
                "{}: GPU only, not with --backend cpu (the CPU layer)",
                gpu_only.join(", ")
            )));
        }
    }
    let quantized: Vec<String> =
        args.caches().into_iter().filter(|&c| c != gqa_core::CacheStorage::F32).map(|c| c.to_string()).collect();
    if !args.decode && (!quantized.is_empty() || args.window.is_some()) {
        return Err(CliError::Flags("--cache and --window: with --decode only (they choose the KV cache)".into()));
    }
    if args.backend.is_cpu() && !quantized.is_empty() {
        return Err(CliError::Flags(format!(
            "--cache {}: GPU only (the CPU layer's cache is f32)",
            quantized.join(",")
        )));
    }
    if args.no_oracle {
        eprintln!("warning: {UNCHECKED_WARNING}");
    }
    if args.rope_qk_norm {
        return crate::bench_positions::bench_positions(args);
    }
    if args.decode {
        return crate::bench_decode::bench_decode(args, tamper);
    }
    crate::bench_forward::bench_forward(args, tamper)
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
    //! The sweep on the best adapter and the CPU layer at tiny shapes, with one output (the GPU's
    //! or the CPU layer's) perturbed after it is computed: its row must fail, be written as such,
    //! and make the command fail naming the length.

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
    fn perturb(at: usize, side: Side, which: Call) -> impl FnMut(usize, Side, Call, &mut HostTensor) {
        move |seq, got, call, out| {
            if seq == at && got == side && call == which {
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
        bench_with(&args(&["--seq", "4,9"]), &mut |_, _, _, _| {}).unwrap();
        bench_with(&args(&["--decode", "--seq", "4,9"]), &mut |_, _, _, _| {}).unwrap();
    }

    #[test]
    fn a_perturbed_timed_output_fails_its_row() {
        let csv = scratch("forward").join("b.csv");
        let err = bench_with(
            &args(&["--seq", "4,9", "--csv", csv.to_str().unwrap()]),
            &mut perturb(9, Side::Gpu, Call::Timed(1)),
        )
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
        let err = bench_with(&args(&["--seq", "4"]), &mut perturb(4, Side::Gpu, Call::WarmUp)).unwrap_err();
        assert!(err.to_string().contains("the warm-up call"), "{err}");
    }

    #[test]
    fn a_perturbed_decode_step_fails_its_row() {
        let err =
            bench_with(&args(&["--decode", "--seq", "4,9"]), &mut perturb(4, Side::Gpu, Call::Timed(1))).unwrap_err();
        assert!(err.to_string().contains("S=4 (timed call 2"), "{err}");
        // The attention timer's output: the rest of its plan runs after the timed range and is read back.
        let err = bench_with(&args(&["--decode", "--seq", "4,9"]), &mut perturb(9, Side::Gpu, Call::AttentionTimer))
            .unwrap_err();
        assert!(err.to_string().contains("S=9 (the attention timer"), "{err}");
    }

    #[test]
    fn a_perturbed_cpu_layer_output_fails_its_row() {
        let cpu = |extra: &[&str]| args(&[&["--backend", "cpu"][..], extra].concat());
        bench_with(&cpu(&["--seq", "4,9"]), &mut |_, _, _, _| {}).unwrap();
        bench_with(&cpu(&["--decode", "--seq", "4,9"]), &mut |_, _, _, _| {}).unwrap();
        let err = bench_with(&cpu(&["--seq", "4,9"]), &mut perturb(9, Side::Cpu, Call::Timed(1))).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("T=S=9 (timed call 2") && !msg.contains("T=S=4"), "{msg}");
        let err = bench_with(&cpu(&["--seq", "4"]), &mut perturb(4, Side::Cpu, Call::WarmUp)).unwrap_err();
        assert!(err.to_string().contains("the warm-up call"), "{err}");
        let err =
            bench_with(&cpu(&["--decode", "--seq", "4,9"]), &mut perturb(4, Side::Cpu, Call::Timed(0))).unwrap_err();
        assert!(err.to_string().contains("S=4 (timed call 1"), "{err}");
        // Beside a GPU, the CPU layer's outputs are checked too, and named as its own.
        let err = bench_with(&args(&["--seq", "4,9"]), &mut perturb(9, Side::Cpu, Call::Timed(0))).unwrap_err();
        assert!(err.to_string().contains("T=S=9 (CPU layer, timed call 1"), "{err}");
        let err = bench_with(&args(&["--decode", "--seq", "4"]), &mut perturb(4, Side::Cpu, Call::WarmUp)).unwrap_err();
        assert!(err.to_string().contains("S=4 (CPU layer, the warm-up call"), "{err}");
    }

    #[test]
    fn no_oracle_checks_nothing() {
        let csv = scratch("unchecked").join("b.csv");
        bench_with(
            &args(&["--seq", "4", "--no-oracle", "--csv", csv.to_str().unwrap()]),
            &mut perturb(4, Side::Gpu, Call::Timed(0)),
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
