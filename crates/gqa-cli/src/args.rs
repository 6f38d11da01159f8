//! The command line: `gqa run`, `gqa info`, `gqa kernels`, `gqa export`, `gqa bench`, `gqa demo`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use gqa_core::{CausalAlignment, MaskedRows};

/// Runs a Keras GroupQueryAttention layer on any GPU (wgpu), on the CPU (f32, every core), or on the
/// CPU oracle (f64).
#[derive(Debug, Parser)]
#[command(name = "gqa", version, about, long_about, after_help = crate::error::EXIT_STATUS_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a layer on inputs from a safetensors file and write the output (and scores).
    Run(RunArgs),
    /// List every adapter wgpu can see: backend, features, limits.
    Info(InfoArgs),
    /// List the kernel catalogue: each WGSL kernel's file, workgroup size, tile, features, and
    /// whether the adapter can run it; with --isa, AMD's compiler statistics of each (Mesa RADV,
    /// no GPU needed).
    Kernels(crate::kernels::KernelsArgs),
    /// `gqa kernels --isa`'s worker: compiles every kernel for the RADV family of its environment
    /// (RADV_FORCE_FAMILY) and prints the statistics as JSON on stdout.
    #[command(hide = true)]
    IsaWorker,
    /// Write a layer (from .keras, .weights.h5 + config, or safetensors) as safetensors by Keras paths.
    Export(ExportArgs),
    /// Sweep sequence lengths on one adapter, the CPU layer and the CPU oracle (or, with --backend cpu,
    /// the CPU layer alone): ms, GFLOP/s, % of roofline, the speed-up over the CPU layer, CSV, an
    /// SVG/PNG plot, JSON; every timed output is checked against the oracle (a row out of tolerance
    /// fails the command).
    Bench(crate::bench::BenchArgs),
    /// Runs Keras' GroupQueryAttention on the GPU (wgpu + WGSL) and checks it against the CPU oracle.
    ///
    /// With --backend cpu the same layer runs on the CPU layer (gqa-cpu, f32, every thread of
    /// rayon's pool) instead, timed and checked the same way; the GPU-only flags are then an error.
    ///
    /// Weights come from the layer's initializers (glorot_uniform kernels; biases uniform in [-0.1, 0.1]
    /// so that they matter), inputs are uniform in [-1, 1), all from --seed. WGPU_BACKEND=vulkan|gl|...
    /// (or --backend) narrows the adapter search.
    ///
    /// A timing counts only from a checked run: the oracle runs once, after the warm-up call, and every
    /// output the GPU gives is compared with it elementwise, |gpu - oracle| <= 1e-5 + 1e-4 * |oracle|
    /// (atol = rtol = 5e-3 for a layer in f16; NaN must agree): the warm-up's, each timed call's (and
    /// its scores with --scores) and, with --profile, each profiling round's. Any output out of
    /// tolerance fails the check, and the failing call is named. With --no-oracle nothing is compared:
    /// the table, the roofline lines and the per-step profile are marked UNCHECKED.
    ///
    /// Exit status: see `gqa --help` (0 check passed, or with --no-oracle the run finished and
    /// nothing was checked; 1 an output out of tolerance; 2 invalid flags or problem; 3 no adapter
    /// or a GPU error).
    Demo(crate::demo::DemoArgs),
}

/// Where the layer comes from.
#[derive(Debug, Args)]
pub struct LayerArgs {
    /// The layer: .safetensors (Keras paths, `config` metadata), .keras, or .weights.h5 with --config.
    #[arg(long, value_name = "FILE")]
    pub layer: PathBuf,
    /// The layer's config JSON (get_config() or model.to_json()); required with .weights.h5.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The layer's name, when the file holds several GroupQueryAttention layers.
    #[arg(long, value_name = "NAME")]
    pub layer_name: Option<String>,
    /// The KerasHub class of a bare config given with --config (e.g. CachedGemma3Attention); a
    /// serialized layer or model JSON names its own.
    #[arg(long, value_name = "CLASS", requires = "config")]
    pub class: Option<String>,
}

/// `gqa run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The layer.
    #[command(flatten)]
    pub layer: LayerArgs,
    /// Safetensors with `query`, `value`, optional `key`, `attention_mask`, `query_mask`,
    /// `value_mask`, `key_mask` (f32; masks bool/u8/i32/f32, nonzero attends); the call options in
    /// its metadata `call` (use_causal_mask, causal_alignment, masked_rows,
    /// return_attention_scores, training, seed) apply unless a flag overrides them.
    #[arg(long, value_name = "FILE")]
    pub inputs: PathBuf,
    /// Where to write `output` (and `scores`), f32 safetensors; metadata `call` records the options
    /// the call ran with.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Also write the attention scores (B, Nq, T, S). Each call option left unset is taken from
    /// the inputs file's metadata `call` when it records it (else its default); a flag given
    /// overrides the file, with a note on stderr when they differ.
    #[arg(long, overrides_with = "no_scores")]
    pub scores: bool,
    /// Do not return the scores, whatever the inputs file records.
    #[arg(long, overrides_with = "scores")]
    pub no_scores: bool,
    /// Apply a causal mask [default: the inputs file's use_causal_mask, else no].
    #[arg(long, overrides_with = "no_causal")]
    pub causal: bool,
    /// Apply no causal mask, whatever the inputs file records (the last of --causal/--no-causal wins).
    #[arg(long, overrides_with = "causal")]
    pub no_causal: bool,
    /// Where the causal diagonal sits when T != S [default: the inputs file's, else top-left (Keras)].
    #[arg(long, value_enum)]
    pub causal_alignment: Option<Alignment>,
    /// What a fully masked query row gives: zeros (the output bias), or Keras' plain-call uniform
    /// average [default: the inputs file's, else zeros].
    #[arg(long, value_enum)]
    pub masked_rows: Option<MaskedRowsArg>,
    /// Training mode: dropout applies when the layer's rate is > 0 [default: the inputs file's, else no].
    #[arg(long, overrides_with = "no_training")]
    pub training: bool,
    /// Inference mode, whatever the inputs file records.
    #[arg(long, overrides_with = "training")]
    pub no_training: bool,
    /// Dropout seed of this call (default: the inputs file's, else the layer's seed, or 0).
    #[arg(long, requires = "training", value_name = "N")]
    pub seed: Option<u64>,
    /// The GPU API to use (auto: the best adapter of all, or of WGPU_BACKEND when set), or cpu: the
    /// CPU layer (gqa-cpu, f32, every thread of rayon's pool), no GPU.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// Compute with the CPU oracle (f64, one thread) instead of the GPU.
    #[arg(long, conflicts_with = "backend")]
    pub reference: bool,
    /// Print the summary (layer, call options, adapter, times, what was written) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `gqa info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Print the adapters (or the layer) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Describe this layer instead of the adapters: its class (GroupQueryAttention or a KerasHub
    /// attention class), heads, sizes and attention options (.safetensors, .keras, or .weights.h5
    /// with --config).
    #[arg(long, value_name = "FILE")]
    pub layer: Option<PathBuf>,
    /// The layer's config JSON, for a .weights.h5 --layer.
    #[arg(long, value_name = "FILE", requires = "layer")]
    pub config: Option<PathBuf>,
    /// The layer's name, when the --layer file holds several GroupQueryAttention layers.
    #[arg(long, value_name = "NAME", requires = "layer")]
    pub layer_name: Option<String>,
    /// The KerasHub class of a bare config given with --config (e.g. CachedGemma3Attention).
    #[arg(long, value_name = "CLASS", requires = "config")]
    pub class: Option<String>,
}

/// `gqa export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The layer.
    #[command(flatten)]
    pub layer: LayerArgs,
    /// The safetensors file to write.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
}

/// `Some(true)` for `--x`, `Some(false)` for `--no-x`, `None` when neither was given.
pub fn either(yes: bool, no: bool) -> Option<bool> {
    match (yes, no) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

/// `--causal-alignment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Alignment {
    /// Query i sees keys j <= i (Keras, PyTorch is_causal).
    TopLeft,
    /// Query i sees keys j <= i + S - T (FlashAttention, KV caches).
    BottomRight,
}

impl From<Alignment> for CausalAlignment {
    fn from(a: Alignment) -> Self {
        match a {
            Alignment::TopLeft => CausalAlignment::TopLeft,
            Alignment::BottomRight => CausalAlignment::BottomRight,
        }
    }
}

/// `--masked-rows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MaskedRowsArg {
    /// All probabilities 0: the row is the output bias.
    Zeros,
    /// Uniform over all keys, as Keras' plain call does.
    KerasDefault,
}

impl From<MaskedRowsArg> for MaskedRows {
    fn from(m: MaskedRowsArg) -> Self {
        match m {
            MaskedRowsArg::Zeros => MaskedRows::Zeros,
            MaskedRowsArg::KerasDefault => MaskedRows::KerasDefault,
        }
    }
}

/// `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// Vulkan.
    Vulkan,
    /// OpenGL / OpenGL ES (EGL).
    Gl,
    /// Metal.
    Metal,
    /// Direct3D 12.
    Dx12,
    /// The best adapter of any backend (or of WGPU_BACKEND).
    Auto,
    /// No GPU: the CPU layer (gqa-cpu, f32, on every thread of rayon's pool; RAYON_NUM_THREADS
    /// sets how many).
    Cpu,
}

impl Command {
    /// The subcommand's name, for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Run(_) => "run",
            Command::Info(_) => "info",
            Command::Kernels(_) => "kernels",
            Command::IsaWorker => "isa-worker",
            Command::Export(_) => "export",
            Command::Bench(_) => "bench",
            Command::Demo(_) => "demo",
        }
    }
}

/// `--tuning` (`gqa demo`, `gqa bench`): the kernel set a run starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TuningFlag {
    /// The adapter's own.
    Auto,
    /// [`gqa_core::Tuning::GPU`]: tiled matmuls, the fused attention and its split decode.
    Gpu,
    /// [`gqa_core::Tuning::CPU`]: textured register-blocked matmuls, the block and decode attention.
    Cpu,
}

impl TuningFlag {
    /// The tuning to run with on an adapter whose own is `adapter`: what the device imposes or offers
    /// (the loop cap, subgroups and their sizes) stays the adapter's.
    pub fn apply(self, adapter: gqa_core::Tuning) -> gqa_core::Tuning {
        let base = match self {
            TuningFlag::Auto => adapter,
            TuningFlag::Gpu => gqa_core::Tuning::GPU,
            TuningFlag::Cpu => gqa_core::Tuning::CPU,
        };
        gqa_core::Tuning {
            loop_iteration_cap: adapter.loop_iteration_cap,
            subgroups: adapter.subgroups,
            subgroup_sizes: adapter.subgroup_sizes,
            precision: adapter.precision,
            ..base
        }
    }
}
