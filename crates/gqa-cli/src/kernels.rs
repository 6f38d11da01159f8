//! `gqa kernels`: the kernel catalogue ([`gqa_core::Kernel::ALL`]) and whether the adapter runs each;
//! with `--isa`, what AMD's compiler makes of each instead ([`crate::kernels_isa`]).

use clap::Args;
use gqa_core::{Kernel, KernelSpec};
use serde_json::json;

use crate::args::Backend;
use crate::error::CliError;

/// `gqa kernels`.
#[derive(Debug, Args)]
pub struct KernelsArgs {
    /// The GPU API whose best adapter is asked which kernels it runs (auto: the best adapter; cpu is
    /// an error: the CPU layer runs no kernels).
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// Print the catalogue as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Compile every kernel with AMD's shader compiler on Mesa RADV's null device (no GPU, no
    /// wgpu adapter needed) and list per kernel and family its registers, spills, scratch and
    /// workgroup memory, waves per SIMD and instructions, whether a GPU tuning can select it, and
    /// its declared floor of waves.
    #[arg(long, conflicts_with = "backend")]
    pub isa: bool,
    /// With --isa: the RADV families (RADV_FORCE_FAMILY names), comma separated [default:
    /// navi21,gfx1100,vega10].
    #[arg(long, value_delimiter = ',', requires = "isa", value_name = "FAMILY,...")]
    pub family: Vec<String>,
}

/// Why `device` cannot run `spec`, or `None` when it can.
pub fn cannot_run(spec: &KernelSpec, features: wgpu::Features, limits: &wgpu::Limits) -> Option<String> {
    let [x, y, z] = spec.workgroup_size;
    if spec.features.shader_f16 && !features.contains(wgpu::Features::SHADER_F16) {
        return Some("no shader-f16".into());
    }
    if spec.features.subgroups && !features.contains(wgpu::Features::SUBGROUP) {
        return Some("no subgroups".into());
    }
    if spec.workgroup_memory_bytes > limits.max_compute_workgroup_storage_size {
        return Some(format!("{} B of workgroup memory", spec.workgroup_memory_bytes));
    }
    if x * y * z > limits.max_compute_invocations_per_workgroup {
        return Some(format!("{} invocations per workgroup", x * y * z));
    }
    if spec.storage_buffers() > limits.max_storage_buffers_per_shader_stage {
        return Some(format!("{} storage buffers", spec.storage_buffers()));
    }
    None
}

/// The features a kernel needs, as words.
fn features(spec: &KernelSpec) -> Vec<&'static str> {
    let mut f = Vec::new();
    if spec.features.shader_f16 {
        f.push("shader-f16");
    }
    if spec.features.subgroups {
        f.push("subgroups");
    }
    f
}

/// Prints the catalogue, each kernel with whether the adapter runs it.
pub fn kernels(args: &KernelsArgs) -> Result<(), CliError> {
    if args.isa {
        return crate::kernels_isa::report(&args.family, args.json);
    }
    let ctx = crate::backend::open(args.backend)?;
    let device_features = ctx.device().features();
    let limits = ctx.device().limits();
    let rows: Vec<_> = Kernel::ALL
        .iter()
        .map(|k| {
            let spec = k.spec();
            (spec, cannot_run(&spec, device_features, &limits))
        })
        .collect();
    if args.json {
        let list: Vec<_> = rows
            .iter()
            .map(|(spec, why)| {
                json!({
                    "name": spec.name,
                    "file": spec.file,
                    "workgroup_size": spec.workgroup_size,
                    "tile": spec.tile,
                    "workgroup_memory_bytes": spec.workgroup_memory_bytes,
                    "features": features(spec),
                    "runs_here": why.is_none(),
                    "why_not": why,
                })
            })
            .collect();
        let report = json!({
            "date": crate::meta::now_utc(),
            "adapter": crate::meta::adapter(ctx.adapter_info()),
            "kernels": list,
        });
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON values serialize"));
        return Ok(());
    }
    println!("adapter: {}", ctx.describe());
    println!("{:<32} {:<32} {:>12} {:>9} {:<22} runs here", "kernel", "file", "workgroup", "tile", "features");
    for (spec, why) in &rows {
        let [x, y, z] = spec.workgroup_size;
        let f = features(spec);
        println!(
            "{:<32} {:<32} {:>12} {:>9} {:<22} {}",
            spec.name,
            spec.file,
            format!("{x}x{y}x{z}"),
            format!("{}x{}", spec.tile[0], spec.tile[1]),
            if f.is_empty() { "-".to_string() } else { f.join(", ") },
            why.as_ref().map_or("yes".to_string(), |w| format!("no ({w})"))
        );
    }
    Ok(())
}
