//! `gqa demo`: builds a `GroupQueryAttention` layer with random weights, runs it on the best GPU
//! adapter wgpu finds, runs the f64 CPU oracle on the same inputs and compares every output the GPU
//! gave (the warm-up's, each timed call's and, with `--profile`, each profiling round's) with the
//! oracle's, elementwise ([`gqa_ref::check`], through the core it shares with `gqa bench`,
//! [`crate::timed`]). A timing counts only from a checked run: with `--no-oracle` the figures are
//! printed marked UNCHECKED.
//!
//! `--backend cpu` runs the layer on the CPU layer instead ([`crate::demo_cpu`]).
//!
//! Exit status: 0 when every GPU output matches the oracle (or, with `--no-oracle`, when the run
//! finished: nothing was checked), 1 when one does not, 2 for invalid flags or an invalid
//! layer/problem (the `GqaError` is printed), 3 when no adapter or device is available or the GPU
//! fails (the `GpuError` is printed; it names what to install).

use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};
use gqa_core::{
    CallOptions, ForwardOutput, GqaConfig, GqaError, HostTensor, Initializer, LayerDims, MatmulVariant, Precision,
    Problem, Weights,
};
use gqa_ref::check::Tolerance;
use gqa_wgpu::{GpuContext, GpuError, GqaLayer};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::json;

use crate::args::{Alignment, Backend, MaskedRowsArg};
use crate::demo_report::{describe_problem, print_checks, print_plan, print_profile, row, what_was_checked};
use crate::error::CliError;
use crate::timed::{Call, Calls, Checks, ms, timed_calls};

/// Whether the human-readable report goes to stderr (`--json`: stdout holds the JSON report).
pub(crate) static TEXT_TO_STDERR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The JSON report `--json` prints, filled as the run goes.
pub(crate) type Report = serde_json::Map<String, serde_json::Value>;

/// What `--no-oracle` prints before the timing table and as the final line.
pub(crate) const UNCHECKED: &str = "UNCHECKED: no oracle ran; these timings are from outputs nobody compared";

/// `gqa demo`: the layer's shape and options, and what to time.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// B, the batch size.
    #[arg(long, default_value_t = 2)]
    pub(crate) batch: usize,
    /// T, the query (target) length.
    #[arg(long, default_value_t = 128)]
    pub(crate) target_len: usize,
    /// S, the key/value (source) length.
    #[arg(long, default_value_t = 128)]
    pub(crate) source_len: usize,
    /// Nq, the number of query heads.
    #[arg(long, default_value_t = 8)]
    pub(crate) query_heads: usize,
    /// Nkv, the number of key/value heads (must divide Nq).
    #[arg(long, default_value_t = 2)]
    pub(crate) kv_heads: usize,
    /// H, the size of each head.
    #[arg(long, default_value_t = 64)]
    pub(crate) head_dim: usize,
    /// Dq, the query's last dim (also the output's).
    #[arg(long, default_value_t = 256)]
    pub(crate) query_dim: usize,
    /// Dv, the value's last dim.
    #[arg(long, default_value_t = 256)]
    pub(crate) value_dim: usize,
    /// Dk, the key's last dim; when given, a separate key tensor is passed (otherwise key = value).
    #[arg(long)]
    pub(crate) key_dim: Option<usize>,
    /// Apply a causal mask (the default).
    #[arg(long, overrides_with = "no_causal")]
    pub(crate) causal: bool,
    /// Do not apply a causal mask (the last of --causal/--no-causal wins).
    #[arg(long, overrides_with = "causal")]
    pub(crate) no_causal: bool,
    /// Where the causal diagonal (and the sliding window) sits when T != S.
    #[arg(long = "causal-alignment", alias = "alignment", value_enum, default_value_t = Alignment::TopLeft)]
    pub(crate) alignment: Alignment,
    /// What a fully masked query row produces.
    #[arg(long, value_enum, default_value_t = MaskedRowsArg::Zeros)]
    pub(crate) masked_rows: MaskedRowsArg,
    /// Sliding window: keys with |i - j| >= W are masked.
    #[arg(long)]
    pub(crate) window: Option<usize>,
    /// Build the layer without biases (use_bias=False).
    #[arg(long)]
    pub(crate) no_bias: bool,
    /// Build the layer with the sigmoid gate (use_gate=True).
    #[arg(long)]
    pub(crate) gate: bool,
    /// Attention dropout rate; when > 0 the call runs in training mode (dropout seeded by --seed).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) dropout: f64,
    /// Also return and check the attention scores (B, Nq, T, S).
    #[arg(long)]
    pub(crate) scores: bool,
    /// Number of timed GPU runs (after one warm-up run).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) runs: u32,
    /// Seed of the weights, the inputs and dropout.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Restrict the adapter search to these backends (comma list: vulkan, gl, metal, dx12);
    /// overrides WGPU_BACKEND. `cpu` (alone) runs the layer on the CPU layer instead (gqa-cpu, f32,
    /// every thread of rayon's pool), checked against the oracle the same way; the GPU-only flags
    /// (--list-adapters, --profile, --roofline, --compile-all, --f16, --tuning, --matmul, --no-fused,
    /// --no-decode, --no-decode-kernel, --no-block, --no-subgroups) are then an error.
    #[arg(long)]
    pub(crate) backend: Option<String>,
    /// Skip the CPU oracle, and so the check: for shapes too big for it. Every timing is then
    /// printed marked UNCHECKED, and the final line says that nothing was compared.
    #[arg(long)]
    pub(crate) no_oracle: bool,
    /// List every adapter wgpu finds, best first, and exit. GPU only.
    #[arg(long)]
    pub(crate) list_adapters: bool,
    /// Also time each step of the plan on its own (submitted alone, device waited for), --runs
    /// rounds; the output of every round is read back and checked against the oracle. GPU only.
    #[arg(long)]
    pub(crate) profile: bool,
    /// Run attention as separate logits/softmax/PV passes even where the fused kernel applies.
    #[arg(long)]
    pub(crate) no_fused: bool,
    /// Do not use the split (flash-decoding) path for short queries over long sources.
    #[arg(long)]
    pub(crate) no_decode: bool,
    /// In the split path, use the fused kernel in split mode instead of the decode kernel
    /// (attention_decode.wgsl), to compare.
    #[arg(long)]
    pub(crate) no_decode_kernel: bool,
    /// Do not use the block attention kernel (attention_block.wgsl, the CPU adapters' default for
    /// calls without scores or dropout), to compare with the separate passes.
    #[arg(long)]
    pub(crate) no_block: bool,
    /// Compile every kernel variant the device runs right after opening the context (on one thread
    /// per core, timed on its own line), so that the cold start counts the pipelines of every
    /// variant, not only those of the call's plan. GPU only.
    #[arg(long)]
    pub(crate) compile_all: bool,
    /// Compute in f16 (f16 storage, f32 accumulation: Keras' mixed_float16) where the adapter has
    /// SHADER_F16; in f32 elsewhere. The check then uses atol = rtol = 5e-3. GPU only.
    #[arg(long)]
    pub(crate) f16: bool,
    /// Use the workgroup-memory baselines even where the device has subgroups.
    #[arg(long)]
    pub(crate) no_subgroups: bool,
    /// Force a projection matmul variant instead of the adapter's choice.
    #[arg(long, value_enum)]
    pub(crate) matmul: Option<MatmulFlag>,
    /// The kernel set to start from: the adapter's (auto), the one for GPUs (gpu: tiled matmuls,
    /// the fused attention, its split decode) or for CPU adapters (cpu); the other flags apply on
    /// top. The adapter's loop cap and subgroups are kept: `--tuning gpu` on lavapipe checks the
    /// GPU kernels at this shape. GPU only.
    #[arg(long, value_enum, default_value_t = crate::args::TuningFlag::Auto)]
    pub(crate) tuning: crate::args::TuningFlag,
    /// Print a JSON report on stdout (adapter, shape, options, times, the check); the text report
    /// then goes to stderr.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also measure the adapter's roofline (WGSL FMA and copy probes) and report the forward pass's
    /// share of it: the probes run just before each timed call, and the share is the median of the
    /// calls' own ratios (a shared machine's speed moves between a probe and a call taken apart).
    /// GPU only (`gqa bench --backend cpu` gives the CPU layer's share of the CPU's FMA peak).
    #[arg(long)]
    pub(crate) roofline: bool,
}

/// `--matmul`: a projection matmul variant.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum MatmulFlag {
    /// Workgroup-memory tiles (the GPU variant).
    Tiled,
    /// Register blocking over storage buffers.
    RegisterBlocked,
    /// Register blocking over textures (the CPU-adapter variant).
    Textured,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every output the GPU gave matched the oracle.
    Pass,
    /// These calls' outputs did not.
    Fail(Vec<Call>),
    /// `--no-oracle` (or `--list-adapters`): nothing was compared.
    Unchecked,
}

/// Why the demo stops early, with its exit status.
pub(crate) enum Failure {
    /// An invalid layer or problem (exit status 2).
    Invalid(GqaError),
    /// No adapter, no device or a GPU failure (exit status 3).
    Gpu(GpuError),
    /// Any other error of the command (its own exit status).
    Cli(CliError),
}

impl From<GqaError> for Failure {
    fn from(e: GqaError) -> Self {
        Self::Invalid(e)
    }
}

impl From<GpuError> for Failure {
    fn from(e: GpuError) -> Self {
        match e {
            GpuError::Invalid(e) => Self::Invalid(e),
            other => Self::Gpu(other),
        }
    }
}

/// Runs the demo and maps its end to the exit status: 0 pass (or unchecked), else the error (see
/// [`crate::error::EXIT_STATUS_HELP`]: 1 a check failed, 2 an invalid layer or problem, 3 no adapter
/// or a GPU error).
pub fn demo(args: &DemoArgs) -> Result<ExitCode, CliError> {
    TEXT_TO_STDERR.store(args.json, std::sync::atomic::Ordering::Relaxed);
    let mut report = Report::new();
    report.insert("date".into(), json!(crate::meta::now_utc()));
    report.insert(
        "shape".into(),
        json!({
            "batch": args.batch, "target_len": args.target_len, "source_len": args.source_len,
            "query_heads": args.query_heads, "kv_heads": args.kv_heads, "head_dim": args.head_dim,
            "query_dim": args.query_dim, "value_dim": args.value_dim, "key_dim": args.key_dim,
        }),
    );
    report.insert(
        "options".into(),
        json!({
            "causal": !args.no_causal, "causal_alignment": format!("{:?}", args.alignment),
            "masked_rows": format!("{:?}", args.masked_rows), "window": args.window, "gate": args.gate,
            "bias": !args.no_bias, "dropout": args.dropout, "scores": args.scores, "runs": args.runs,
            "seed": args.seed, "f16": args.f16, "no_oracle": args.no_oracle,
        }),
    );
    let result = run(args, &mut |_, _| {}, &mut report);
    if args.json {
        let (check, checked) = match &result {
            Ok(Verdict::Pass) => ("pass", true),
            Ok(Verdict::Unchecked) => ("unchecked", false),
            _ => ("FAIL", false),
        };
        report.insert("check".into(), json!(check));
        report.insert("checked".into(), json!(checked));
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON values serialize"));
    }
    match result {
        Ok(Verdict::Pass | Verdict::Unchecked) => Ok(ExitCode::SUCCESS),
        Ok(Verdict::Fail(calls)) => {
            Err(CliError::CheckFailed { rows: calls.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ") })
        }
        Err(Failure::Invalid(e)) => Err(CliError::Invalid(e)),
        Err(Failure::Gpu(source)) => Err(CliError::Gpu { context: "running the demo on the GPU".into(), source }),
        Err(Failure::Cli(e)) => Err(e),
    }
}

/// Everything the run needs, built and validated from the flags before any GPU work.
pub(crate) struct Setup {
    /// The layer's config.
    pub(crate) config: GqaConfig,
    /// Dq, Dk, Dv.
    pub(crate) dims: LayerDims,
    /// The call's options.
    pub(crate) options: CallOptions,
    /// (B, T, Dq).
    pub(crate) query: HostTensor,
    /// (B, S, Dv).
    pub(crate) value: HostTensor,
    /// (B, S, Dk), when --key-dim is given.
    pub(crate) key: Option<HostTensor>,
    /// From the layer's initializers.
    pub(crate) weights: Weights,
}

/// The layer, its weights and the inputs of the flags, validated.
pub(crate) fn setup(args: &DemoArgs) -> Result<Setup, GqaError> {
    let mut config = GqaConfig::new(args.head_dim, args.query_heads, args.kv_heads);
    config.use_bias = !args.no_bias;
    config.use_gate = args.gate;
    config.sliding_window = args.window;
    config.dropout = args.dropout;
    config.seed = Some(args.seed);
    config.bias_initializer = Initializer::RandomUniform { minval: -0.1, maxval: 0.1, seed: None };
    config.validate()?;
    let options = CallOptions {
        // The two flags override each other, so at most one is set; neither means causal.
        use_causal_mask: args.causal || !args.no_causal,
        causal_alignment: args.alignment.into(),
        masked_rows: args.masked_rows.into(),
        return_attention_scores: args.scores,
        training: args.dropout > 0.0,
        ..Default::default()
    };
    let (b, t, s) = (args.batch, args.target_len, args.source_len);
    let query_shape = [b, t, args.query_dim];
    let value_shape = [b, s, args.value_dim];
    let key_shape = args.key_dim.map(|dk| [b, s, dk]);
    // Shapes, masks and options are checked here, before anything is allocated or any GPU is opened.
    Problem::new(&config, &query_shape, &value_shape, key_shape.as_ref().map(|k| &k[..]), &options)?;
    let dims = LayerDims {
        query_dim: args.query_dim,
        key_dim: args.key_dim.unwrap_or(args.value_dim),
        value_dim: args.value_dim,
    };
    let weights = gqa_ref::initialize_weights(&config, dims, args.seed)?;
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x5eed_da7a);
    let query = random_tensor(&query_shape, &mut rng)?;
    let value = random_tensor(&value_shape, &mut rng)?;
    let key = key_shape.map(|shape| random_tensor(&shape, &mut rng)).transpose()?;
    Ok(Setup { config, dims, options, query, value, key, weights })
}

/// A tensor of `shape`, uniform in [-1, 1).
fn random_tensor(shape: &[usize], rng: &mut StdRng) -> Result<HostTensor, GqaError> {
    let n = shape.iter().product();
    HostTensor::new(shape.to_vec(), (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect())
}

/// `--backend`'s list, or `None` (all, or WGPU_BACKEND).
fn backends(args: &DemoArgs) -> Result<Option<wgpu::Backends>, Failure> {
    let Some(list) = &args.backend else { return Ok(None) };
    for name in list.split(',').map(str::trim) {
        if let Ok(backend) = <Backend as ValueEnum>::from_str(name, true) {
            crate::backend::check_offered(backend).map_err(Failure::Cli)?;
        }
    }
    let backends = wgpu::Backends::from_comma_list(list);
    if backends.is_empty() {
        return Err(Failure::Cli(CliError::Flags(format!(
            "--backend {list:?}: no known backend (use {})",
            crate::backend::offered()
        ))));
    }
    Ok(Some(backends))
}

/// Whether `--backend` names the CPU layer (`cpu`, alone); an error when it is named with GPU
/// backends or with a GPU-only flag.
fn on_cpu(args: &DemoArgs) -> Result<bool, Failure> {
    let Some(list) = &args.backend else { return Ok(false) };
    let names: Vec<&str> = list.split(',').map(str::trim).collect();
    if !names.iter().any(|n| n.eq_ignore_ascii_case(crate::cpu_layer::FLAG)) {
        return Ok(false);
    }
    let flag = |e: String| Err(Failure::Cli(CliError::Flags(e)));
    if names.len() > 1 {
        return flag(format!("--backend {list:?}: cpu (the CPU layer) cannot be combined with GPU backends"));
    }
    let gpu_only: Vec<&str> = [
        (args.list_adapters, "--list-adapters"),
        (args.profile, "--profile"),
        (args.roofline, "--roofline"),
        (args.compile_all, "--compile-all"),
        (args.f16, "--f16"),
        (args.tuning != crate::args::TuningFlag::Auto, "--tuning"),
        (args.matmul.is_some(), "--matmul"),
        (args.no_fused, "--no-fused"),
        (args.no_decode, "--no-decode"),
        (args.no_decode_kernel, "--no-decode-kernel"),
        (args.no_block, "--no-block"),
        (args.no_subgroups, "--no-subgroups"),
    ]
    .into_iter()
    .filter_map(|(given, name)| given.then_some(name))
    .collect();
    if !gpu_only.is_empty() {
        return flag(format!("{}: GPU only, not with --backend cpu (the CPU layer)", gpu_only.join(", ")));
    }
    Ok(true)
}

/// `--list-adapters`: every adapter, best first.
fn list_adapters(backends: wgpu::Backends) -> Result<Verdict, Failure> {
    let all = GpuContext::all_adapters(backends);
    if all.is_empty() {
        // The same error (and install hint) as GpuContext::new gives.
        GpuContext::with_backends(backends)?;
    }
    for (i, ctx) in all.into_iter().enumerate() {
        match ctx {
            Ok(ctx) => say!("{i}: {}", ctx.describe()),
            Err(e) => say!("{i}: failed to open: {e}"),
        }
    }
    Ok(Verdict::Unchecked)
}

/// A hook on each GPU output before it is checked (the tests perturb one to see the check fail).
pub(crate) type Tamper<'a> = &'a mut dyn FnMut(Call, &mut ForwardOutput);

/// The demo: open the adapter, build the layer, print the plan, then the warm-up, the oracle and
/// the timed calls ([`timed_calls`]), the table, the roofline and the profile, and every check.
fn run(args: &DemoArgs, tamper: Tamper<'_>, report: &mut Report) -> Result<Verdict, Failure> {
    if on_cpu(args)? {
        return crate::demo_cpu::run(args, tamper, report);
    }
    let backends = backends(args)?;
    if args.list_adapters {
        return list_adapters(backends.unwrap_or_else(wgpu::Backends::all));
    }
    let process = Instant::now();
    let setup = setup(args)?;
    let Setup { config, dims, options, query, value, key, weights } = &setup;
    let setup_time = process.elapsed();

    let started = Instant::now();
    let ctx = match backends {
        Some(b) => GpuContext::with_backends(b)?,
        None => GpuContext::new()?,
    };
    let tuning = tuning(args, ctx.tuning());
    let ctx = ctx.with_tuning(tuning);
    report.insert("adapter".into(), json!(ctx.describe()));
    report.insert("adapter_info".into(), crate::meta::adapter(ctx.adapter_info()));
    let context_time = started.elapsed();
    // With --compile-all, every variant compiles on a thread of its own (which uses one thread per
    // core) while the weights upload, as an application would do it: the upload is one core's
    // copying and the compiles fill the other.
    let compiling = args.compile_all.then(|| {
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            ctx.compile_all_kernels().map(|()| started.elapsed())
        })
    });
    let started = Instant::now();
    let layer = GqaLayer::new(&ctx, config, weights)?;
    let layer_time = started.elapsed();
    let compile_time = match compiling {
        Some(thread) => Some(thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?),
        None => None,
    };
    let ready = context_time + started.elapsed();
    let plan = layer.plan(query.shape(), value.shape(), key.as_ref().map(HostTensor::shape), options)?;
    let flops = plan.flops() as f64;

    say!("adapter   {}", ctx.describe());
    say!("precision {:?}", layer.precision());
    say!("problem   {}", describe_problem(args, config, *dims, options));
    print_plan(&plan, &layer);
    say!();

    // The warm-up, the oracle (once, after the warm-up, so that the cold-start figures do not
    // count it) and the timed calls; with --roofline the probes are built after the oracle and
    // run just before each timed call.
    let mut probe_kernels: Option<gqa_wgpu::roofline::Probes> = None;
    let mut warmup_output: Option<Vec<f32>> = None;
    let mut differ = Vec::new();
    let mut oracle = || Ok(gqa_ref::forward(config, weights, query, value, key.as_ref(), options)?);
    let timed = timed_calls(
        args.runs as usize,
        Tolerance::for_precision(layer.precision()),
        Calls {
            call: &mut || Ok(layer.forward(query, value, key.as_ref(), options)?),
            oracle: if args.no_oracle { None } else { Some(&mut oracle) },
            before: &mut || -> Result<_, Failure> {
                if !args.roofline {
                    return Ok(None);
                }
                let probes = match probe_kernels.take() {
                    Some(p) => p,
                    None => gqa_wgpu::roofline::Probes::new(&ctx)?,
                };
                let roof = probes.measure(1);
                probe_kernels = Some(probes);
                Ok(Some(roof?))
            },
            tamper: &mut |call, out| {
                tamper(call, out);
                match call {
                    Call::WarmUp => warmup_output = Some(out.output.data().to_vec()),
                    Call::Timed(i) if warmup_output.as_deref() != Some(out.output.data()) => differ.push(i + 1),
                    _ => {}
                }
            },
        },
    )?;
    let first_output = timed.warmed_up.duration_since(process);
    let probes: Vec<_> = timed.before.iter().flatten().collect();
    let median = timed.median();
    report.insert("context_ms".into(), json!(context_time.as_secs_f64() * 1e3));
    report.insert("warmup_ms".into(), json!(timed.warmup.as_secs_f64() * 1e3));
    report.insert("gpu_ms".into(), json!(median.as_secs_f64() * 1e3));
    report.insert("oracle_ms".into(), json!(timed.checks.as_ref().map(|c| c.oracle_time.as_secs_f64() * 1e3)));
    let mut checks = timed.checks;
    let mut times = timed.times.clone();
    times.sort();
    // The verdict on the timed calls, printed in the median's row.
    let timed_verdict = match &checks {
        None => "UNCHECKED".to_string(),
        Some(c) => {
            let (passed, total) = c.tally(|call| matches!(call, Call::Timed(_)));
            format!("checked: {passed} of {total} outputs {}", if passed == total { "PASS" } else { "FAIL" })
        }
    };

    if checks.is_none() {
        say!("{UNCHECKED}");
    }
    say!("{:<36} {:>12} {:>9}", "step", "time (ms)", "GFLOP/s");
    row("setup: random weights, inputs (CPU)", setup_time, None, "");
    row("context: adapter, device", context_time, None, "");
    row("layer: weights upload", layer_time, None, "");
    if let Some(t) = compile_time {
        row("context: every kernel variant", t, None, "on a thread, beside the upload");
    }
    let compiles = if args.compile_all { "" } else { " (compiles)" };
    row(&format!("forward: first call{compiles}"), timed.warmup, Some(flops), "");
    let cold = ready + timed.warmup;
    row("cold start: context to first output", cold, None, "");
    row("cold start: main to first output", first_output, None, "the setup included");
    let spread = format!("min {:.3}, max {:.3}; {timed_verdict}", ms(times[0]), ms(times[times.len() - 1]));
    row(&format!("forward: median of {}", args.runs), median, Some(flops), &spread);
    report.insert("gpu_gflops".into(), json!(flops / median.as_secs_f64() / 1e9));
    if let Some(c) = &checks {
        row("oracle: CPU, f64, one thread", c.oracle_time, Some(flops), "");
    }
    if !differ.is_empty() {
        say!("note: timed run(s) {differ:?} gave an output that differs bitwise from the warm-up's");
    }
    if args.roofline {
        // Under --no-oracle every roofline line says that its figures come from unchecked outputs.
        let tag = if checks.is_none() { "roofline (UNCHECKED)" } else { "roofline" };
        let achieved = flops / median.as_secs_f64() / 1e9;
        // Each call's share of the probe taken just before it, in the calls' order.
        let mut shares: Vec<f64> = probes
            .iter()
            .zip(&timed.times)
            .map(|(roof, t)| 100.0 * flops / t.as_secs_f64() / 1e9 / roof.gflops)
            .collect();
        let each = shares.iter().map(|r| format!("{r:.1}%")).collect::<Vec<_>>().join(", ");
        shares.sort_by(f64::total_cmp);
        let mut fma: Vec<f64> = probes.iter().map(|r| r.gflops).collect();
        let mut copy: Vec<f64> = probes.iter().map(|r| r.gbps).collect();
        fma.sort_by(f64::total_cmp);
        copy.sort_by(f64::total_cmp);
        // The FLOP count is the full T x S product; under a causal mask (the default) the block
        // kernel skips the hidden key chunks, so the rate is nominal there.
        let nominal =
            if options.use_causal_mask { " (nominal: causal mask, FLOPs counted over all T x S)" } else { "" };
        say!(
            "{tag}: FMA probe {:.1} GFLOP/s (median of {}, {:.1}-{:.1}), copy probe {:.1} GB/s; forward at {:.2} GFLOP/s (median call){nominal}",
            fma[fma.len() / 2],
            fma.len(),
            fma[0],
            fma[fma.len() - 1],
            copy[copy.len() / 2],
            achieved,
        );
        say!(
            "{tag}: each call's share of the FMA probe run just before it: {each}; median {:.1}% of the FMA peak",
            shares[shares.len() / 2]
        );
    }
    if let Some(c) = &checks {
        say!("\ncheck: every output against the oracle, {}", c.tolerance);
        print_checks(c, |_| true);
    }

    if args.profile {
        let runs = args.runs as usize;
        // The profile runs the same plan, every step submitted alone; each round computes the whole
        // call, and its output is read back (untimed) and checked like the forward calls'.
        let steps = layer.profile_with_outputs(
            query,
            value,
            key.as_ref(),
            options,
            runs,
            probe_kernels.as_ref(),
            &mut |round, mut out| {
                tamper(Call::ProfileRound(round), &mut out);
                if let Some(c) = checks.as_mut() {
                    c.check(Call::ProfileRound(round), &out);
                }
            },
        )?;
        let profile_verdict = match &checks {
            None => "UNCHECKED: no oracle ran; nobody compared the outputs of these rounds".to_string(),
            Some(c) => {
                let (passed, total) = c.tally(|call| matches!(call, Call::ProfileRound(_)));
                let verdict = if passed == total { "PASS" } else { "FAIL" };
                format!("the output of each round checked against the oracle: {passed} of {total} {verdict}")
            }
        };
        print_profile(args, &steps, &profile_verdict);
        if let Some(c) = &checks {
            print_checks(c, |call| matches!(call, Call::ProfileRound(_)));
        }
    }

    Ok(verdict(checks))
}

/// The last line (PASS, FAIL and the failed calls, or UNCHECKED) and the verdict.
pub(crate) fn verdict(checks: Option<Checks<ForwardOutput>>) -> Verdict {
    let Some(checks) = checks else {
        say!("\nUNCHECKED (--no-oracle): no output was compared with the oracle; the timings above are not results");
        return Verdict::Unchecked;
    };
    let failed = checks.failed();
    let count = checks.results.len();
    if failed.is_empty() {
        say!("\ncheck {}: PASS (all {count} outputs: {})", checks.tolerance, what_was_checked(&checks));
        Verdict::Pass
    } else {
        let names: Vec<String> = failed.iter().map(Call::to_string).collect();
        say!(
            "\ncheck {}: FAIL ({} of {count} outputs out of tolerance: {})",
            checks.tolerance,
            failed.len(),
            names.join(", ")
        );
        Verdict::Fail(failed)
    }
}

/// The adapter's tuning with the flags that override it (`--no-fused`, `--matmul`, `--f16` ...).
fn tuning(args: &DemoArgs, adapter: gqa_core::Tuning) -> gqa_core::Tuning {
    let mut tuning = args.tuning.apply(adapter);
    if args.no_fused {
        tuning.fused_attention = false;
    }
    if args.no_decode {
        tuning.split_decode = false;
    }
    if args.no_decode_kernel {
        tuning.decode_kernel = false;
    }
    if args.no_subgroups {
        tuning.subgroups = false;
    }
    if args.no_block {
        tuning.block_attention = false;
    }
    match args.matmul {
        Some(MatmulFlag::Tiled) => tuning.matmul = MatmulVariant::Tiled,
        Some(MatmulFlag::RegisterBlocked) => tuning.matmul = MatmulVariant::RegisterBlocked,
        Some(MatmulFlag::Textured) => tuning.matmul = MatmulVariant::Textured,
        None => {}
    }
    if args.f16 {
        tuning.precision = Precision::F16;
    }
    tuning
}

#[cfg(test)]
mod tests {
    //! `gqa demo` end to end on the best adapter at a small shape, with one output perturbed after
    //! it is read back: the check must name that call and fail.

    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        demo: DemoArgs,
    }

    fn args(extra: &[&str]) -> DemoArgs {
        let small = [
            "demo",
            "--batch",
            "1",
            "--target-len",
            "8",
            "--source-len",
            "8",
            "--query-heads",
            "4",
            "--kv-heads",
            "2",
            "--head-dim",
            "8",
            "--query-dim",
            "16",
            "--value-dim",
            "16",
            "--runs",
            "3",
        ];
        Command::parse_from(small.iter().chain(extra)).demo
    }

    /// Adds 1e-2 to one element of the output (or the scores) of the call `which`.
    fn perturb(which: Call, scores: bool) -> impl FnMut(Call, &mut ForwardOutput) {
        move |call, out| {
            if call == which {
                let t = if scores { out.scores.as_mut().expect("scores") } else { &mut out.output };
                let mut data = t.data().to_vec();
                data[3] += 1e-2;
                *t = HostTensor::new(t.shape().to_vec(), data).unwrap();
            }
        }
    }

    fn verdict(extra: &[&str], tamper: Tamper<'_>) -> Verdict {
        run(&args(extra), tamper, &mut Report::new()).unwrap_or_else(|e| match e {
            Failure::Invalid(e) => panic!("invalid: {e}"),
            Failure::Gpu(e) => panic!("GPU: {e}"),
            Failure::Cli(e) => panic!("{e}"),
        })
    }

    #[test]
    fn every_output_passes_unperturbed() {
        assert_eq!(verdict(&["--scores", "--profile"], &mut |_, _| {}), Verdict::Pass);
    }

    #[test]
    fn a_perturbed_timed_run_fails_and_is_named() {
        assert_eq!(verdict(&[], &mut perturb(Call::Timed(1), false)), Verdict::Fail(vec![Call::Timed(1)]));
        assert_eq!(verdict(&[], &mut perturb(Call::WarmUp, false)), Verdict::Fail(vec![Call::WarmUp]));
    }

    #[test]
    fn perturbed_scores_fail() {
        assert_eq!(verdict(&["--scores"], &mut perturb(Call::Timed(2), true)), Verdict::Fail(vec![Call::Timed(2)]));
    }

    #[test]
    fn a_perturbed_profile_round_fails() {
        // The last of the three rounds: every round is read back and checked, not only the first.
        let got = verdict(&["--profile"], &mut perturb(Call::ProfileRound(2), false));
        assert_eq!(got, Verdict::Fail(vec![Call::ProfileRound(2)]));
    }

    #[test]
    fn the_cpu_layers_outputs_are_checked_too() {
        let cpu = ["--backend", "cpu", "--scores"];
        assert_eq!(verdict(&cpu, &mut |_, _| {}), Verdict::Pass);
        assert_eq!(verdict(&cpu, &mut perturb(Call::Timed(1), false)), Verdict::Fail(vec![Call::Timed(1)]));
        assert_eq!(verdict(&cpu, &mut perturb(Call::WarmUp, true)), Verdict::Fail(vec![Call::WarmUp]));
        assert_eq!(
            verdict(&["--backend", "cpu", "--no-oracle"], &mut perturb(Call::Timed(0), false)),
            Verdict::Unchecked
        );
    }

    #[test]
    fn no_oracle_is_unchecked_not_a_pass() {
        assert_eq!(verdict(&["--no-oracle"], &mut perturb(Call::Timed(0), false)), Verdict::Unchecked);
    }
}
