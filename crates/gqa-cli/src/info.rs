//! `gqa info`: every adapter wgpu can see, with what matters to this layer (with `--layer`: the
//! layer instead, `layer_info.rs`).

use serde_json::json;

use crate::args::InfoArgs;
use crate::error::CliError;

/// What to install when there is no adapter.
const HINT: &str = "on Debian/Ubuntu without a GPU: apt-get install -y mesa-vulkan-drivers libvulkan1 \
libegl1 libegl-mesa0 libgl1-mesa-dri (Mesa's lavapipe and llvmpipe); with a GPU, its Vulkan driver";

/// Prints every adapter (as JSON with `--json`); errors when there is none.
pub fn info(args: &InfoArgs) -> Result<(), CliError> {
    if let Some(layer) = &args.layer {
        return crate::layer_info::describe(layer, args);
    }
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    if adapters.is_empty() {
        return Err(CliError::NoAdapter { hint: HINT });
    }
    if args.json {
        let list: Vec<_> = adapters.iter().map(|a| to_json(&a.get_info(), a.features(), &a.limits())).collect();
        let report = json!({"date": crate::meta::now_utc(), "adapters": list});
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON values serialize"));
        return Ok(());
    }
    for (i, a) in adapters.iter().enumerate() {
        print!("{}", describe(i, &a.get_info(), a.features(), &a.limits()));
    }
    Ok(())
}

/// One adapter's block of text.
pub fn describe(index: usize, info: &wgpu::AdapterInfo, features: wgpu::Features, l: &wgpu::Limits) -> String {
    let yes = |f: wgpu::Features| if features.contains(f) { "yes" } else { "no" };
    let mib = |b: u64| match b {
        0..1_048_576 => format!("{b} ({} KiB)", b / 1024),
        _ => format!("{b} ({} MiB)", b / 1_048_576),
    };
    let mut s = format!(
        "adapter {index}: {}\n  backend: {:?}, type: {:?}, driver: {} {}, vendor 0x{:04x} device 0x{:04x}\n",
        info.name, info.backend, info.device_type, info.driver, info.driver_info, info.vendor, info.device
    );
    s += &format!(
        "  features: shader-f16 {}, subgroups {} (sizes {}..{}), timestamps {}\n",
        yes(wgpu::Features::SHADER_F16),
        yes(wgpu::Features::SUBGROUP),
        info.subgroup_min_size,
        info.subgroup_max_size,
        yes(wgpu::Features::TIMESTAMP_QUERY)
    );
    s += "  limits:\n";
    for (name, value) in [
        ("max_storage_buffer_binding_size", mib(l.max_storage_buffer_binding_size)),
        ("max_buffer_size", mib(l.max_buffer_size)),
        ("max_uniform_buffer_binding_size", mib(l.max_uniform_buffer_binding_size)),
        ("max_storage_buffers_per_shader_stage", l.max_storage_buffers_per_shader_stage.to_string()),
        ("max_compute_workgroup_storage_size", l.max_compute_workgroup_storage_size.to_string()),
        ("max_compute_invocations_per_workgroup", l.max_compute_invocations_per_workgroup.to_string()),
        (
            "max_compute_workgroup_size (x, y, z)",
            format!(
                "{}, {}, {}",
                l.max_compute_workgroup_size_x, l.max_compute_workgroup_size_y, l.max_compute_workgroup_size_z
            ),
        ),
        ("max_compute_workgroups_per_dimension", l.max_compute_workgroups_per_dimension.to_string()),
    ] {
        s += &format!("    {name:<40} {value}\n");
    }
    s
}

/// One adapter as JSON: what [`describe`] prints.
pub fn to_json(info: &wgpu::AdapterInfo, features: wgpu::Features, l: &wgpu::Limits) -> serde_json::Value {
    let mut adapter = crate::meta::adapter(info);
    adapter["features"] = json!({
        "shader_f16": features.contains(wgpu::Features::SHADER_F16),
        "subgroups": features.contains(wgpu::Features::SUBGROUP),
        "subgroup_sizes": [info.subgroup_min_size, info.subgroup_max_size],
        "timestamps": features.contains(wgpu::Features::TIMESTAMP_QUERY),
    });
    adapter["limits"] = json!({
        "max_storage_buffer_binding_size": l.max_storage_buffer_binding_size,
        "max_buffer_size": l.max_buffer_size,
        "max_uniform_buffer_binding_size": l.max_uniform_buffer_binding_size,
        "max_storage_buffers_per_shader_stage": l.max_storage_buffers_per_shader_stage,
        "max_compute_workgroup_storage_size": l.max_compute_workgroup_storage_size,
        "max_compute_invocations_per_workgroup": l.max_compute_invocations_per_workgroup,
        "max_compute_workgroup_size": [
            l.max_compute_workgroup_size_x, l.max_compute_workgroup_size_y, l.max_compute_workgroup_size_z
        ],
        "max_compute_workgroups_per_dimension": l.max_compute_workgroups_per_dimension,
    });
    adapter
}
