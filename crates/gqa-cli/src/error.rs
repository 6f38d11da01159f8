//! Errors of the `gqa` command and the exit status of each: every message says the operation, then
//! the problem, and [`CliError::hint`] says what to do.

use thiserror::Error;

/// The exit statuses of every subcommand, as `gqa --help` prints them.
pub const EXIT_STATUS_HELP: &str = "\
Exit status (every subcommand):
  0  success (with --no-oracle: the run finished, nothing was checked)
  1  a checked output (GPU or CPU layer) out of tolerance against the CPU oracle
  2  bad flags, or an invalid layer, problem or inputs
  3  no adapter (or a backend this build or OS does not offer), or a GPU error
     (kernels --isa: no Vulkan loader or Mesa RADV driver)
  4  a file could not be read or written (a file read but not a valid layer or inputs: 2)

Errors go to stderr as `error: gqa <command>: <operation>: <problem>`, then `  help: <what to do>`.";

/// What to do when `gqa kernels --isa` fails.
const ISA_HINT: &str = "install Mesa's RADV Vulkan driver and the Vulkan loader (Debian, Ubuntu: apt-get install \
mesa-vulkan-drivers libvulkan1; no AMD GPU is needed), and name families this Mesa knows (e.g. navi21, gfx1100, vega10)";

/// What can make a `gqa` command fail.
#[derive(Debug, Error)]
pub enum CliError {
    /// Reading or writing a layer, inputs or outputs.
    #[error("reading or writing a file: {0}")]
    Io(#[from] gqa_io::IoError),
    /// The inputs do not fit the layer (shapes, masks), checked by the oracle or the plan.
    #[error("checking the inputs {inputs}: {source}")]
    Inputs {
        /// The inputs file.
        inputs: String,
        /// What is wrong.
        #[source]
        source: gqa_core::GqaError,
    },
    /// An invalid layer or problem built from the flags.
    #[error("building the layer and problem: {0}")]
    Invalid(#[source] gqa_core::GqaError),
    /// The GPU path failed (no adapter, device, limits, or the inputs do not fit the layer).
    #[error("{context}: {source}")]
    Gpu {
        /// What was being done (`opening a Vulkan adapter`, `running on <adapter>` ...).
        context: String,
        /// The error.
        #[source]
        source: gqa_wgpu::GpuError,
    },
    /// Writing a report file.
    #[error("writing {path}: {message}")]
    Output {
        /// The file.
        path: String,
        /// Why it failed.
        message: String,
    },
    /// An output (the GPU's or the CPU layer's) out of tolerance against the oracle: its timings
    /// are not results.
    #[error(
        "checking against the oracle: output out of tolerance at {rows}: the timings of these rows come from wrong outputs"
    )]
    CheckFailed {
        /// Each failing row (`T=S=128`, `S=2048`) or call, and its first failing output.
        rows: String,
    },
    /// Flags that contradict each other or a value out of range that clap cannot check.
    #[error("reading the flags: {0}")]
    Flags(String),
    /// Compiling the kernels on Mesa RADV's null device (`gqa kernels --isa`).
    #[error("compiling the kernels on Mesa RADV's null device: {0}")]
    Isa(#[from] gqa_isa::IsaError),
    /// No adapter at all.
    #[error("finding a GPU adapter: none found")]
    NoAdapter {
        /// What to install.
        hint: &'static str,
    },
    /// `--backend` names a backend this build or operating system does not offer.
    #[error("opening a {backend} adapter: this build on {os} does not offer {backend} (it offers: {offered})")]
    UnsupportedBackend {
        /// The backend asked for.
        backend: String,
        /// The operating system.
        os: &'static str,
        /// The backends this build offers here, comma separated.
        offered: String,
    },
}

impl CliError {
    /// The exit status of this error (see [`EXIT_STATUS_HELP`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::CheckFailed { .. } => 1,
            CliError::Inputs { .. } | CliError::Invalid(_) | CliError::Flags(_) => 2,
            CliError::Isa(gqa_isa::IsaError::BadFamily(_)) => 2,
            CliError::Isa(gqa_isa::IsaError::Write(_)) => 4,
            CliError::Isa(_) => 3,
            CliError::Gpu { source: gqa_wgpu::GpuError::Invalid(_), .. } => 2,
            CliError::Gpu { .. } | CliError::NoAdapter { .. } | CliError::UnsupportedBackend { .. } => 3,
            CliError::Io(gqa_io::IoError::Io { .. }) | CliError::Output { .. } => 4,
            // The file was read, but it does not hold a valid layer or inputs.
            CliError::Io(_) => 2,
        }
    }

    /// What to do about it.
    pub fn hint(&self, command: &str) -> String {
        match self {
            CliError::CheckFailed { .. } => {
                "the layer gives wrong outputs on this backend (`CPU layer, ` names the CPU layer's): try another --backend (see `gqa info`), and report it with this output".into()
            }
            CliError::Inputs { .. } | CliError::Invalid(_) | CliError::Flags(_) => {
                format!("fix the flags or files named above; see `gqa {command} --help`")
            }
            CliError::Gpu { source: gqa_wgpu::GpuError::Invalid(_), .. } => {
                format!("fix the layer or inputs named above; see `gqa {command} --help`")
            }
            CliError::Gpu { .. } => "see `gqa info` for the adapters here, and try another --backend".into(),
            CliError::NoAdapter { hint } => (*hint).into(),
            CliError::Isa(gqa_isa::IsaError::BadFamily(_)) => {
                format!("pass RADV family names, e.g. --family navi21,gfx1100,vega10; see `gqa {command} --help`")
            }
            CliError::Isa(gqa_isa::IsaError::Write(_)) => "check where stdout goes".into(),
            CliError::Isa(_) => ISA_HINT.into(),
            CliError::UnsupportedBackend { offered, .. } => {
                format!("pass one of: --backend {offered} (or auto; or cpu for the CPU layer), see `gqa info`")
            }
            CliError::Io(gqa_io::IoError::Io { .. }) | CliError::Output { .. } => {
                "check the path and its permissions".into()
            }
            CliError::Io(_) => format!("check the file named above; see docs/KERAS.md and `gqa {command} --help`"),
        }
    }
}

impl From<gqa_core::GqaError> for CliError {
    fn from(e: gqa_core::GqaError) -> Self {
        CliError::Invalid(e)
    }
}
