//! `gqa kernels --isa`: every kernel of the catalogue compiled by AMD's shader compiler on Mesa
//! RADV's null device (no GPU, no wgpu adapter), per family ([`gqa_isa`]): registers, spills,
//! scratch and workgroup memory, waves per SIMD, instructions; with whether a GPU tuning can select
//! the kernel ([`gqa_core::plan::select::gpu_selectable`]) and the floor of waves its spec declares
//! ([`gqa_core::KernelSpec::waves_floor`]).
//!
//! Mesa reads the family from the environment (`RADV_FORCE_FAMILY`), so each family is compiled by
//! a worker process: this program again, with the hidden subcommand `isa-worker` ([`worker`]).

use gqa_core::Kernel;
use gqa_core::plan::select::gpu_selectable;
use gqa_isa::{Architecture, FamilyReport, KernelStats, Worker};
use serde_json::json;

use crate::error::CliError;

/// One row of the report: a kernel compiled for a family.
struct Row<'a> {
    family: &'a str,
    device: &'a str,
    stats: &'a KernelStats,
    gpu_tuning: bool,
    waves_floor: u32,
}

/// Compiles the catalogue for each of `families` (the defaults when empty) and prints the table,
/// or with `json` one object per kernel and family.
pub fn report(families: &[String], json: bool) -> Result<(), CliError> {
    let families: Vec<String> = if families.is_empty() {
        gqa_isa::DEFAULT_FAMILIES.iter().map(|f| f.to_string()).collect()
    } else {
        families.to_vec()
    };
    let program = std::env::current_exe().map_err(|e| CliError::Flags(format!("finding this program: {e}")))?;
    let worker = Worker { program, args: vec!["isa-worker".into()] };
    let reports = gqa_isa::report_families(&worker, &families)?;
    let gpu = gpu_selectable();
    let rows = rows(&reports, &gpu);
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|r| {
                let s = r.stats;
                json!({
                    "kernel": s.kernel,
                    "family": r.family,
                    "device": r.device,
                    "gpu_tuning": r.gpu_tuning,
                    "vgprs": s.vgprs,
                    "sgprs": s.sgprs,
                    "spilled_vgprs": s.spilled_vgprs,
                    "spilled_sgprs": s.spilled_sgprs,
                    "scratch_bytes": s.scratch_bytes,
                    "lds_bytes": s.lds_bytes,
                    "waves_per_simd": s.waves_per_simd,
                    "waves_floor": r.waves_floor,
                    "instructions": s.instructions,
                    "code_bytes": s.code_bytes,
                    "subgroup_size": s.subgroup_size,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list).expect("JSON values serialize"));
        return Ok(());
    }
    for report in &reports {
        println!("{}: {}", report.family, report.device);
    }
    println!(
        "{:<30} {:<8} {:>5} {:>5} {:>11} {:>8} {:>6} {:>5} {:>5} {:>6} {:>4}",
        "kernel", "family", "VGPRs", "SGPRs", "spills v/s", "scratch", "LDS", "waves", "floor", "instrs", "GPU"
    );
    for r in &rows {
        let s = r.stats;
        let below = if (s.waves_per_simd as u32) < r.waves_floor { "<" } else { "" };
        println!(
            "{:<30} {:<8} {:>5} {:>5} {:>11} {:>8} {:>6} {:>5} {:>5} {:>6} {:>4}",
            s.kernel,
            r.family,
            s.vgprs,
            s.sgprs,
            format!("{}/{}", s.spilled_vgprs, s.spilled_sgprs),
            s.scratch_bytes,
            s.lds_bytes,
            format!("{below}{}", s.waves_per_simd),
            r.waves_floor,
            s.instructions,
            if r.gpu_tuning { "yes" } else { "-" }
        );
    }
    println!(
        "waves: waves per SIMD (\"<\": below the floor the kernel's spec declares); GPU: a GPU tuning (Tuning::GPU, \
         f32 or f16, subgroups or not) can select the kernel"
    );
    Ok(())
}

/// The rows, kernel by kernel in catalogue order, each kernel's families together.
fn rows<'a>(reports: &'a [FamilyReport], gpu: &[Kernel]) -> Vec<Row<'a>> {
    let mut rows = Vec::new();
    for kernel in Kernel::ALL {
        for report in reports {
            let Some(stats) = report.kernels.iter().find(|s| s.kernel == kernel.name()) else { continue };
            rows.push(Row {
                family: &report.family,
                device: &report.device,
                stats,
                gpu_tuning: gpu.contains(&kernel),
                waves_floor: Architecture::of(&report.family).floor(kernel.spec().waves_floor),
            });
        }
    }
    rows
}

/// `gqa isa-worker`: compiles the catalogue for the family of this process's environment and
/// prints the report as JSON on stdout (an error goes to stderr, its bare message, for the parent).
pub fn worker() -> Result<(), gqa_isa::IsaError> {
    gqa_isa::write_family_report(&mut std::io::stdout().lock())
}
