//! Errors of the `gqa` command: each says what failed and on which file.

use thiserror::Error;

/// What can make a `gqa` command fail.
#[derive(Debug, Error)]
pub enum CliError {
    /// Reading or writing a layer, inputs or outputs.
    #[error(transparent)]
    Io(#[from] gqa_io::IoError),
    /// The inputs do not fit the layer (shapes, masks), checked by the oracle or the plan.
    #[error("{inputs}: {source}")]
    Inputs {
        /// The inputs file.
        inputs: String,
        /// What is wrong.
        #[source]
        source: gqa_core::GqaError,
    },
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
    /// A benchmark's GPU output out of tolerance against the oracle: its timings are not results.
    #[error(
        "GPU output out of tolerance against the oracle at {rows}: the timings of these rows come from wrong outputs"
    )]
    CheckFailed {
        /// Each failing row (`T=S=128`, `S=2048`) and its first failing output.
        rows: String,
    },
    /// Flags that contradict each other or a value out of range that clap cannot check.
    #[error("bad flags: {0}")]
    Flags(String),
    /// No adapter at all (for `gqa info`).
    #[error("no GPU adapter found: {hint}")]
    NoAdapter {
        /// What to install.
        hint: &'static str,
    },
}
