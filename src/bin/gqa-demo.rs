//! `gqa-demo`: builds a `GroupQueryAttention` layer with random weights, runs it on the best GPU
//! adapter wgpu finds, runs the f64 CPU oracle on the same inputs and compares them elementwise.
//!
//! Exit status: 0 when the GPU output matches the oracle, 1 when it does not, 2 for invalid flags or
//! an invalid layer/problem (the `GqaError` is printed), 3 when no adapter or device is available or
//! the GPU fails (the `GpuError` is printed; it names what to install).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use gqa::core::{
    CallOptions, CausalAlignment, GqaConfig, GqaError, HostTensor, Initializer, LayerDims, Limits, MaskedRows, Plan,
    Problem, Step, Weights,
};
use gqa::gpu::{GpuContext, GpuError, GqaLayer};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// The tolerance of the check: `|gpu - ref| <= ATOL + RTOL * |ref|`, elementwise.
const ATOL: f32 = 1e-5;
const RTOL: f32 = 1e-4;
/// The check's tolerance (atol = rtol) when the layer runs in f16 (`--f16`).
const F16_TOL: f32 = 5e-3;
/// The relative error is reported over elements with `|ref| >= REL_FLOOR` (near zero it means little;
/// the absolute part of the tolerance covers those).
const REL_FLOOR: f32 = 1e-3;

/// Runs Keras' GroupQueryAttention on the GPU (wgpu + WGSL) and checks it against the CPU oracle.
///
/// Weights come from the layer's initializers (glorot_uniform kernels; biases uniform in [-0.1, 0.1]
/// so that they matter), inputs are uniform in [-1, 1), all from --seed. WGPU_BACKEND=vulkan|gl|...
/// (or --backend) narrows the adapter search.
///
/// Exit status: 0 check passed, 1 check failed, 2 invalid flags or problem, 3 no adapter / GPU error.
#[derive(Debug, Parser)]
#[command(name = "gqa-demo", version, about, long_about)]
struct Args {
    /// B, the batch size.
    #[arg(long, default_value_t = 2)]
    batch: usize,
    /// T, the query (target) length.
    #[arg(long, default_value_t = 128)]
    target_len: usize,
    /// S, the key/value (source) length.
    #[arg(long, default_value_t = 128)]
    source_len: usize,
    /// Nq, the number of query heads.
    #[arg(long, default_value_t = 8)]
    query_heads: usize,
    /// Nkv, the number of key/value heads (must divide Nq).
    #[arg(long, default_value_t = 2)]
    kv_heads: usize,
    /// H, the size of each head.
    #[arg(long, default_value_t = 64)]
    head_dim: usize,
    /// Dq, the query's last dim (also the output's).
    #[arg(long, default_value_t = 256)]
    query_dim: usize,
    /// Dv, the value's last dim.
    #[arg(long, default_value_t = 256)]
    value_dim: usize,
    /// Dk, the key's last dim; when given, a separate key tensor is passed (otherwise key = value).
    #[arg(long)]
    key_dim: Option<usize>,
    /// Apply a causal mask (the default).
    #[arg(long, overrides_with = "no_causal")]
    causal: bool,
    /// Do not apply a causal mask (the last of --causal/--no-causal wins).
    #[arg(long, overrides_with = "causal")]
    no_causal: bool,
    /// Where the causal diagonal (and the sliding window) sits when T != S.
    #[arg(long, value_enum, default_value_t = Alignment::TopLeft)]
    alignment: Alignment,
    /// What a fully masked query row produces.
    #[arg(long, value_enum, default_value_t = Rows::Zeros)]
    masked_rows: Rows,
    /// Sliding window: keys with |i - j| >= W are masked.
    #[arg(long)]
    window: Option<usize>,
    /// Build the layer without biases (use_bias=False).
    #[arg(long)]
    no_bias: bool,
    /// Build the layer with the sigmoid gate (use_gate=True).
    #[arg(long)]
    gate: bool,
    /// Attention dropout rate; when > 0 the call runs in training mode (dropout seeded by --seed).
    #[arg(long, default_value_t = 0.0)]
    dropout: f64,
    /// Also return and check the attention scores (B, Nq, T, S).
    #[arg(long)]
    scores: bool,
    /// Number of timed GPU runs (after one warm-up run).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Seed of the weights, the inputs and dropout.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Restrict the adapter search to these backends (comma list: vulkan, gl, metal, dx12);
    /// overrides WGPU_BACKEND.
    #[arg(long)]
    backend: Option<String>,
    /// Skip the CPU oracle (and so the check): for shapes too big for it.
    #[arg(long)]
    no_oracle: bool,
    /// List every adapter wgpu finds, best first, and exit.
    #[arg(long)]
    list_adapters: bool,
    /// Also time each step of the plan on its own (submitted alone, device waited for).
    #[arg(long)]
    profile: bool,
    /// Run attention as separate logits/softmax/PV passes even where the fused kernel applies.
    #[arg(long)]
    no_fused: bool,
    /// Do not use the split (flash-decoding) path for short queries over long sources.
    #[arg(long)]
    no_decode: bool,
    /// In the split path, use the fused kernel in split mode instead of the decode kernel
    /// (attention_decode.wgsl), to compare.
    #[arg(long)]
    no_decode_kernel: bool,
    /// Do not use the block attention kernel (attention_block.wgsl, the CPU adapters' default for
    /// calls without scores or dropout), to compare with the separate passes.
    #[arg(long)]
    no_block: bool,
    /// Compile every kernel variant the device runs right after opening the context (on one thread
    /// per core, timed on its own line), so that the cold start counts the pipelines of every
    /// variant, not only those of the call's plan.
    #[arg(long)]
    compile_all: bool,
    /// Compute in f16 (f16 storage, f32 accumulation: Keras' mixed_float16) where the adapter has
    /// SHADER_F16; in f32 elsewhere. The check then uses atol = rtol = 5e-3.
    #[arg(long)]
    f16: bool,
    /// Use the workgroup-memory baselines even where the device has subgroups.
    #[arg(long)]
    no_subgroups: bool,
    /// Force a projection matmul variant instead of the adapter's choice.
    #[arg(long, value_enum)]
    matmul: Option<MatmulFlag>,
    /// Also measure the adapter's roofline (WGSL FMA and copy probes) and report the forward pass's
    /// share of it: the probes run just before each timed call, and the share is the median of the
    /// calls' own ratios (a shared machine's speed moves between a probe and a call taken apart).
    #[arg(long)]
    roofline: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MatmulFlag {
    /// Workgroup-memory tiles (the GPU variant).
    Tiled,
    /// Register blocking over storage buffers.
    RegisterBlocked,
    /// Register blocking over textures (the CPU-adapter variant).
    Textured,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Alignment {
    /// Keras and PyTorch: query i sees keys j <= i.
    TopLeft,
    /// FlashAttention and KV caches: query i sees keys j <= i + S - T.
    BottomRight,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Rows {
    /// All-zero probabilities: the output row is the output bias.
    Zeros,
    /// Uniform over all S keys, as Keras' plain call does.
    KerasDefault,
}

/// Why the demo stops early, with its exit status.
enum Failure {
    Invalid(GqaError),
    Gpu(GpuError),
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

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(Failure::Invalid(e)) => {
            eprintln!("gqa-demo: invalid layer or problem: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Gpu(e)) => {
            eprintln!("gqa-demo: GPU error: {e}");
            ExitCode::from(3)
        }
    }
}

/// Everything the run needs, built and validated from the flags before any GPU work.
struct Setup {
    config: GqaConfig,
    dims: LayerDims,
    options: CallOptions,
    query: HostTensor,
    value: HostTensor,
    key: Option<HostTensor>,
    weights: Weights,
}

fn setup(args: &Args) -> Result<Setup, GqaError> {
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
        causal_alignment: match args.alignment {
            Alignment::TopLeft => CausalAlignment::TopLeft,
            Alignment::BottomRight => CausalAlignment::BottomRight,
        },
        masked_rows: match args.masked_rows {
            Rows::Zeros => MaskedRows::Zeros,
            Rows::KerasDefault => MaskedRows::KerasDefault,
        },
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
    let weights = gqa::reference::initialize_weights(&config, dims, args.seed)?;
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x5eed_da7a);
    let query = random_tensor(&query_shape, &mut rng)?;
    let value = random_tensor(&value_shape, &mut rng)?;
    let key = key_shape.map(|shape| random_tensor(&shape, &mut rng)).transpose()?;
    Ok(Setup { config, dims, options, query, value, key, weights })
}

fn random_tensor(shape: &[usize], rng: &mut StdRng) -> Result<HostTensor, GqaError> {
    let n = shape.iter().product();
    HostTensor::new(shape.to_vec(), (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect())
}

fn backends(args: &Args) -> Result<Option<wgpu::Backends>, GqaError> {
    let Some(list) = &args.backend else { return Ok(None) };
    let backends = wgpu::Backends::from_comma_list(list);
    if backends.is_empty() {
        return Err(GqaError::IncompatibleOptions(format!(
            "--backend {list:?}: no known backend (use vulkan, gl, metal, dx12)"
        )));
    }
    Ok(Some(backends))
}

fn list_adapters(backends: wgpu::Backends) -> Result<bool, Failure> {
    let all = GpuContext::all_adapters(backends);
    if all.is_empty() {
        // The same error (and install hint) as GpuContext::new gives.
        GpuContext::with_backends(backends)?;
    }
    for (i, ctx) in all.into_iter().enumerate() {
        match ctx {
            Ok(ctx) => println!("{i}: {}", ctx.describe()),
            Err(e) => println!("{i}: failed to open: {e}"),
        }
    }
    Ok(true)
}

fn run(args: &Args) -> Result<bool, Failure> {
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
    let mut tuning = ctx.tuning();
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
        Some(MatmulFlag::Tiled) => tuning.matmul = gqa::core::MatmulVariant::Tiled,
        Some(MatmulFlag::RegisterBlocked) => tuning.matmul = gqa::core::MatmulVariant::RegisterBlocked,
        Some(MatmulFlag::Textured) => tuning.matmul = gqa::core::MatmulVariant::Textured,
        None => {}
    }
    if args.f16 {
        tuning.precision = gqa::core::Precision::F16;
    }
    let ctx = ctx.with_tuning(tuning);
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

    println!("adapter   {}", ctx.describe());
    println!("precision {:?}", layer.precision());
    println!("problem   {}", describe_problem(args, config, *dims, options));
    print_plan(&plan, &layer);
    println!();

    let started = Instant::now();
    let got = layer.forward(query, value, key.as_ref(), options)?;
    let warmup_time = started.elapsed();
    let first_output = process.elapsed();
    let mut times = Vec::with_capacity(args.runs as usize);
    // With --roofline: each timed call's probe (measured just before it) and its share of it.
    let mut probes = Vec::with_capacity(args.runs as usize);
    let probe_kernels = if args.roofline { Some(gqa::gpu::roofline::Probes::new(&ctx)?) } else { None };
    for _ in 0..args.runs {
        if let Some(p) = &probe_kernels {
            probes.push(p.measure(1)?);
        }
        let started = Instant::now();
        let again = layer.forward(query, value, key.as_ref(), options)?;
        times.push(started.elapsed());
        if again.output.data() != got.output.data() {
            eprintln!("warning: two GPU runs of the same call gave different outputs");
        }
    }
    let unsorted = times.clone();
    times.sort();
    let median = times[times.len() / 2];

    println!("{:<36} {:>12} {:>9}", "step", "time (ms)", "GFLOP/s");
    row("setup: random weights, inputs (CPU)", setup_time, None, "");
    row("context: adapter, device", context_time, None, "");
    row("layer: weights upload", layer_time, None, "");
    if let Some(t) = compile_time {
        row("context: every kernel variant", t, None, "on a thread, beside the upload");
    }
    let compiles = if args.compile_all { "" } else { " (compiles)" };
    row(&format!("forward: first call{compiles}"), warmup_time, Some(flops), "");
    let cold = ready + warmup_time;
    row("cold start: context to first output", cold, None, "");
    row("cold start: main to first output", first_output, None, "the setup included");
    let spread = format!("min {:.3}, max {:.3}", ms(times[0]), ms(times[times.len() - 1]));
    row(&format!("forward: median of {}", args.runs), median, Some(flops), &spread);
    if args.roofline {
        let achieved = flops / median.as_secs_f64() / 1e9;
        // Each call's share of the probe taken just before it, in the calls' order (`times` is sorted).
        let mut shares: Vec<f64> =
            probes.iter().zip(&unsorted).map(|(roof, t)| 100.0 * flops / t.as_secs_f64() / 1e9 / roof.gflops).collect();
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
        println!(
            "roofline: FMA probe {:.1} GFLOP/s (median of {}, {:.1}-{:.1}), copy probe {:.1} GB/s; forward at {:.2} GFLOP/s (median call){nominal}",
            fma[fma.len() / 2],
            fma.len(),
            fma[0],
            fma[fma.len() - 1],
            copy[copy.len() / 2],
            achieved,
        );
        println!(
            "roofline: each call's share of the FMA probe run just before it: {each}; median {:.1}% of the FMA peak",
            shares[shares.len() / 2]
        );
    }
    if args.profile {
        let runs = args.runs as usize;
        let steps = match &probe_kernels {
            Some(probes) => layer.profile_against_roofline(query, value, key.as_ref(), options, runs, probes)?,
            None => layer.profile(query, value, key.as_ref(), options, runs)?,
        };
        let timing = steps.first().map(|s| format!("{:?}", s.timing)).unwrap_or_default();
        println!("\nper step (each submitted alone, timed by {timing}; median of {}):", args.runs);
        if args.roofline {
            println!(
                "  (matmuls: GFLOP/s, and the median of the rounds' shares of the FMA probe run just before the step)"
            );
        }
        for step in steps {
            let rate = match (step.flops, step.fma_share) {
                (Some(f), Some(share)) => {
                    format!(
                        "  {:>7.1} GFLOP/s  {:>5.1}% of the FMA probe",
                        f as f64 / step.median.as_secs_f64() / 1e9,
                        100.0 * share
                    )
                }
                (Some(f), None) => format!("  {:>7.1} GFLOP/s", f as f64 / step.median.as_secs_f64() / 1e9),
                _ => String::new(),
            };
            println!("  {:<16} {:>14?} {:>12.3} ms{rate}", step.label, step.workgroups, ms(step.median));
        }
        println!();
    }

    if args.no_oracle {
        println!("\noracle skipped (--no-oracle): no check");
        return Ok(true);
    }
    let started = Instant::now();
    let want = gqa::reference::forward(config, weights, query, value, key.as_ref(), options)?;
    let oracle_time = started.elapsed();
    row("oracle: CPU, f64, one thread", oracle_time, Some(flops), "");
    println!();

    let (atol, rtol) = match layer.precision() {
        gqa::core::Precision::F32 => (ATOL, RTOL),
        gqa::core::Precision::F16 => (F16_TOL, F16_TOL),
    };
    let mut ok = compare("output", got.output.shape(), got.output.data(), want.output.data(), atol, rtol);
    match (&got.scores, &want.scores) {
        (Some(g), Some(w)) => ok &= compare("scores", g.shape(), g.data(), w.data(), atol, rtol),
        (None, None) => {}
        _ => {
            println!("scores: present on one side only  FAIL");
            ok = false;
        }
    }
    println!("\ncheck |gpu - oracle| <= {atol:e} + {rtol:e} * |oracle|: {}", if ok { "PASS" } else { "FAIL" });
    Ok(ok)
}

fn describe_problem(args: &Args, config: &GqaConfig, dims: LayerDims, options: &CallOptions) -> String {
    let mut s = format!(
        "B={} T={} S={} Nq={} Nkv={} (R={}) H={} Dq={} Dk={} Dv={}",
        args.batch,
        args.target_len,
        args.source_len,
        config.num_query_heads,
        config.num_key_value_heads,
        config.num_query_heads / config.num_key_value_heads,
        config.head_dim,
        dims.query_dim,
        dims.key_dim,
        dims.value_dim,
    );
    if options.use_causal_mask {
        s += &format!(", causal {:?}", options.causal_alignment);
    }
    if let Some(w) = config.sliding_window {
        s += &format!(", window {w}");
    }
    s += if config.use_bias { ", bias" } else { ", no bias" };
    if config.use_gate {
        s += ", gate";
    }
    if options.training {
        s += &format!(", dropout {}", config.dropout);
    }
    s += &format!(", masked rows {:?}", options.masked_rows);
    if options.return_attention_scores {
        s += ", scores";
    }
    s
}

fn print_plan(plan: &Plan, layer: &GqaLayer) {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "plan      {} dispatches, {:.1} MFLOP, weights {:.2} MiB, per call {:.2} MiB",
        plan.passes().count(),
        plan.flops() as f64 / 1e6,
        mib(layer.weight_bytes()),
        mib(GqaLayer::call_bytes(plan)),
    );
    let c = plan.chunking;
    if c.splits_batch(&plan.problem) || c.splits_attention(&plan.problem) {
        println!(
            "          split to fit the device: {} batch element(s), {} (b, u) row(s), {} quer(ies) per chunk",
            c.batch_per_chunk, c.rows_per_chunk, c.queries_per_chunk
        );
    }
    const SHOWN: usize = 24;
    for step in plan.steps.iter().take(SHOWN) {
        match step {
            Step::Dispatch(pass) => {
                println!("          {:<16} {:<16} workgroups {:?}", pass.label, pass.kernel.name(), pass.workgroups)
            }
            Step::Copy(copy) => {
                println!("          {:<16} copy {} bytes {} -> {}", copy.label, copy.bytes, copy.src, copy.dst)
            }
        }
    }
    if plan.steps.len() > SHOWN {
        println!("          ... {} more steps", plan.steps.len() - SHOWN);
    }
    // The same problem against WebGPU's default limits, so users know whether it would run in a browser.
    if let Err(e) = Plan::new(&plan.problem, &Limits::webgpu_default()) {
        println!("          note: over WebGPU's default limits: {e}");
    }
}

/// Milliseconds.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One row of the timing table: label, milliseconds, GFLOP/s when the step runs the layer, a note.
fn row(label: &str, d: Duration, flops: Option<f64>, note: &str) {
    let rate = flops.map(|f| format!("{:.2}", f / d.as_secs_f64() / 1e9)).unwrap_or_default();
    let line = format!("{label:<36} {:>12.3} {rate:>9}  {note}", ms(d));
    println!("{}", line.trim_end());
}

/// Prints one line of comparison and says whether every element is within tolerance (NaN must
/// agree, infinities must be equal).
fn compare(what: &str, shape: &[usize], gpu: &[f32], oracle: &[f32], atol: f32, rtol: f32) -> bool {
    if gpu.len() != oracle.len() {
        println!("{what}: {} elements on the GPU, {} in the oracle  FAIL", gpu.len(), oracle.len());
        return false;
    }
    let (mut max_abs, mut max_rel, mut bad) = (0.0f32, 0.0f32, 0usize);
    let mut first_bad = None;
    for (i, (&g, &r)) in gpu.iter().zip(oracle).enumerate() {
        let ok = if g.is_nan() || r.is_nan() {
            g.is_nan() && r.is_nan()
        } else if g.is_infinite() || r.is_infinite() {
            g == r
        } else {
            let diff = (g - r).abs();
            max_abs = max_abs.max(diff);
            if r.abs() >= REL_FLOOR {
                max_rel = max_rel.max(diff / r.abs());
            }
            diff <= atol + rtol * r.abs()
        };
        if !ok {
            bad += 1;
            first_bad.get_or_insert((i, g, r));
        }
    }
    let verdict = if bad == 0 { "PASS" } else { "FAIL" };
    println!(
        "{what:<7} {shape:?}: max abs err {max_abs:.3e}, max rel err {max_rel:.3e} (|oracle| >= {REL_FLOOR:e}), {bad} of {} out of tolerance  {verdict}",
        gpu.len()
    );
    if let Some((i, g, r)) = first_bad {
        println!("        first at flat index {i}: gpu {g} vs oracle {r}");
    }
    bad == 0
}
