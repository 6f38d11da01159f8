//! The loop cap the plans are built around, measured on every adapter: a kernel counts how many
//! iterations its loops really run. Mesa's llvmpipe (lavapipe, GL llvmpipe) ends an invocation's
//! loops after 65,535 iterations *in all*: one counter per invocation, decremented by every
//! iteration of every loop and never reset, so two loops in a row, or nested loops, share it (this is
//! what `Kernel::loop_iterations` models, and why a workgroup that takes tile after tile from a queue
//! must count them all). Where an adapter truncates, its tuning must name a cap no larger than the
//! one measured; where none truncates (a GPU), nothing is asked of the tuning.

mod common;

use common::{adapter_name, adapters, gl_guard};
use gqa::gpu::GpuContext;

/// The probe: `counts[0]` the iterations one loop of `n` runs; `counts[1]` and `counts[2]` those of
/// two loops of `n` in a row; `counts[3]` the inner iterations of `n` outer x `inner` inner loops.
const SHADER: &str = r#"
struct Sizes { n: u32, inner: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> sizes: Sizes;
@group(0) @binding(1) var<storage, read_write> counts: array<u32>;

fn one(n: u32) -> u32 {
    var c = 0u;
    for (var i = 0u; i < n; i++) {
        c += 1u;
    }
    return c;
}

@compute @workgroup_size(1)
fn single() {
    counts[0] = one(sizes.n);
}

@compute @workgroup_size(1)
fn two_in_a_row() {
    counts[1] = one(sizes.n);
    counts[2] = one(sizes.n);
}

@compute @workgroup_size(1)
fn nested() {
    var c = 0u;
    for (var i = 0u; i < sizes.n; i++) {
        for (var j = 0u; j < sizes.inner; j++) {
            c += 1u;
        }
    }
    counts[3] = c;
}
"#;

/// Runs the three entry points with `n` and `inner`; returns the four counts.
fn run(ctx: &GpuContext, n: u32, inner: u32) -> [u32; 4] {
    use wgpu::util::DeviceExt;
    let device = ctx.device();
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("loop cap probe"),
        source: wgpu::ShaderSource::Wgsl(SHADER.into()),
    });
    let sizes = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("sizes"),
        contents: bytemuck::cast_slice(&[n, inner, 0, 0]),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let counts = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("counts"),
        size: 16,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size: 16,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    for entry in ["single", "two_in_a_row", "nested"] {
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        });
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(entry),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: sizes.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: counts.as_entire_binding() },
            ],
        });
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(1, 1, 1);
    }
    encoder.copy_buffer_to_buffer(&counts, 0, &readback, 0, 16);
    ctx.queue().submit([encoder.finish()]);
    readback.slice(..).map_async(wgpu::MapMode::Read, |r| r.expect("map"));
    device.poll(wgpu::PollType::wait_indefinitely()).expect("poll");
    let words: Vec<u32> = bytemuck::cast_slice(&readback.slice(..).get_mapped_range().expect("mapped")).to_vec();
    [words[0], words[1], words[2], words[3]]
}

#[test]
fn the_loop_cap_is_one_counter_per_invocation_and_the_tuning_knows_it() {
    for ctx in adapters() {
        let _gl = gl_guard(ctx);
        let name = adapter_name(ctx);
        // Well under any cap: everything runs.
        assert_eq!(run(ctx, 1000, 10), [1000, 1000, 1000, 10_000], "{name}");
        // One loop of 100,000; two of 40,000 (80,000 in all); 400 x 200 nested (80,400 in all).
        let [single, ..] = run(ctx, 100_000, 0);
        let [_, first, second, _] = run(ctx, 40_000, 0);
        let [.., nested] = run(ctx, 400, 200);
        eprintln!(
            "[{name}] one loop {single} of 100000; two loops {first} + {second} of 40000 each; nested {nested} of 80000"
        );
        match ctx.tuning().loop_iteration_cap {
            None => {
                assert_eq!(
                    (single, first, second, nested),
                    (100_000, 40_000, 40_000, 80_000),
                    "{name}: no cap is declared"
                );
            }
            Some(cap) => {
                if single < 100_000 {
                    // The cap, shared: the second loop gets what the first left, and the nested
                    // loops' inner iterations stop short of the total by the outer ones'.
                    assert!(cap <= single as u64, "{name}: the tuning's cap {cap} exceeds the driver's {single}");
                    assert_eq!(first, 40_000, "{name}");
                    assert!(second < 40_000 && (first + second) as u64 <= single as u64 + 1, "{name}: {second}");
                    assert!(nested < 80_000, "{name}: nested loops share the counter ({nested})");
                }
            }
        }
    }
}
