//! `gqa`: run a Keras `GroupQueryAttention` layer saved by Keras (`.keras`, `.weights.h5` + config
//! JSON, or safetensors by Keras paths) on any GPU wgpu reaches, or on the CPU oracle; list the
//! adapters; export a layer to safetensors (see `docs/KERAS.md`); time a sweep (`gqa bench`) or one
//! random layer (`gqa demo`, what `scripts/demo.sh` runs), every output checked against the oracle.
//!
//! Exit status, the same for every subcommand ([`error::EXIT_STATUS_HELP`], printed by `gqa --help`):
//! 0 success, 1 a checked output out of tolerance, 2 bad flags or an invalid layer, problem or
//! inputs, 3 no adapter or a GPU error, 4 a file could not be read or written.

/// Prints a line of the human-readable report: on stdout, or on stderr when the command prints
/// JSON on stdout (`gqa demo --json`).
macro_rules! say {
    ($($arg:tt)*) => {
        if crate::demo::TEXT_TO_STDERR.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!($($arg)*)
        } else {
            println!($($arg)*)
        }
    };
}

mod args;
mod backend;
mod bench;
mod bench_decode;
mod bench_decode_report;
mod bench_forward;
mod bench_positions;
mod cpu_layer;
mod cpu_probe;
mod demo;
mod demo_cpu;
mod demo_report;
mod error;
mod info;
mod kernels;
mod kernels_isa;
mod layer_info;
mod meta;
mod plot;
mod run;
mod run_kerashub;
mod timed;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::error::CliError;

fn main() -> ExitCode {
    // Before any thread: keeps Mesa's Vulkan layer quiet when XDG_RUNTIME_DIR is unset.
    gqa_wgpu::quiet_mesa_runtime_dir();
    let cli = Cli::parse();
    if let Command::IsaWorker = cli.command {
        // `gqa kernels --isa` reads the error from stderr and reports it itself.
        return match kernels_isa::worker() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    match dispatch(&cli.command) {
        Ok(status) => status,
        Err(e) => {
            let name = cli.command.name();
            eprintln!("error: gqa {name}: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                // Transparent and `{source}` messages already include their cause; print only new text.
                if !e.to_string().contains(&s.to_string()) {
                    eprintln!("  caused by: {s}");
                }
                source = s.source();
            }
            eprintln!("  help: {}", e.hint(name));
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs the command: the exit status, or the error to print.
fn dispatch(command: &Command) -> Result<ExitCode, CliError> {
    match command {
        Command::Run(args) => run::run(args)?,
        Command::Info(args) => info::info(args)?,
        Command::Kernels(args) => kernels::kernels(args)?,
        Command::IsaWorker => kernels_isa::worker()?,
        Command::Bench(args) => bench::bench(args)?,
        Command::Demo(args) => return demo::demo(args),
        Command::Export(args) => {
            let layer = run::load(&args.layer)?;
            gqa_io::export_safetensors(&layer, &args.output)?;
            println!(
                "wrote {}: layer {} ({} weights, config and build_config in the metadata)",
                args.output.display(),
                layer.config.name,
                layer.weights.named().len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
