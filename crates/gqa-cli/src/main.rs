//! `gqa`: run a Keras `GroupQueryAttention` layer saved by Keras (`.keras`, `.weights.h5` + config
//! JSON, or safetensors by Keras paths) on any GPU wgpu reaches, or on the CPU oracle; list the
//! adapters; export a layer to safetensors (see `docs/KERAS.md`); time a sweep (`gqa bench`) or one
//! random layer (`gqa demo`, what `scripts/demo.sh` runs), every output checked against the oracle.
//!
//! Exit status: 0 success, 1 an error (printed to stderr), 2 bad flags. `gqa demo` has its own:
//! 0 pass, 1 an output out of tolerance, 2 bad flags or an invalid layer, 3 no adapter or a GPU error.

mod args;
mod backend;
mod bench;
mod bench_decode;
mod demo;
mod demo_report;
mod error;
mod info;
mod plot;
mod run;
mod timed;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::error::CliError;

fn main() -> ExitCode {
    // Before any thread: keeps Mesa's Vulkan layer quiet when XDG_RUNTIME_DIR is unset.
    gqa_wgpu::quiet_mesa_runtime_dir();
    let cli = Cli::parse();
    match dispatch(&cli.command) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                // Transparent and `{source}` messages already include their cause; print only new text.
                if !e.to_string().contains(&s.to_string()) {
                    eprintln!("  caused by: {s}");
                }
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

/// Runs the command: the exit status, or the error to print.
fn dispatch(command: &Command) -> Result<ExitCode, CliError> {
    match command {
        Command::Run(args) => run::run(args)?,
        Command::Info => info::info()?,
        Command::Bench(args) => bench::bench(args)?,
        // The demo prints its own errors and has its own exit statuses.
        Command::Demo(args) => return Ok(demo::demo(args)),
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
