//! The roofline probe: a WGSL FMA-throughput kernel and a WGSL copy kernel that give the adapter's
//! attainable GFLOP/s and GB/s, measured in the same process (and ideally the same run) as the
//! kernels they judge.
//!
//! The FMA probe keeps 64 independent vec4 `fma` chains per invocation and chains 4 `fma`s per
//! assignment, which is what a CPU driver needs to reach its FMA units' peak, and its workgroups take
//! their work from a queue, so a driver's fixed split of a dispatch between threads does not leave
//! one idle (see `shaders/probe_fma.wgsl`); the copy probe copies one vec4 per invocation through
//! storage buffers. [`Probes`] builds both once; [`measure`] builds and runs them.

use std::time::{Duration, Instant};

use crate::context::GpuContext;
use crate::error::GpuError;
use crate::error_scope::{Catch, scoped};
use crate::upload::upload;

/// The probe kernels' WGSL, by file name.
pub const PROBES: [(&str, &str); 2] = [
    ("probe_fma.wgsl", include_str!("../shaders/probe_fma.wgsl")),
    ("probe_copy.wgsl", include_str!("../shaders/probe_copy.wgsl")),
];

/// What the probe measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Roofline {
    /// Attainable f32 throughput, GFLOP/s (multiply-add = 2).
    pub gflops: f64,
    /// Attainable copy bandwidth, GB/s (bytes read + bytes written).
    pub gbps: f64,
}

impl Roofline {
    /// The attainable GFLOP/s of a kernel with `intensity` FLOP per byte moved:
    /// `min(peak, intensity * bandwidth)`.
    pub fn attainable(&self, intensity: f64) -> f64 {
        self.gflops.min(intensity * self.gbps)
    }
}

/// FMA probe workgroups (64 invocations each): 131072 invocations, enough to fill a large GPU.
const FMA_WORKGROUPS: u32 = 2048;
/// Rounds of the FMA probe's loop per dispatch (each round: 16 chains x 4 vec4 `fma`s).
const FMA_ITERATIONS: u32 = 64;
/// The most units of work one FMA probe workgroup takes from its queue: each unit is
/// [`FMA_ITERATIONS`] + 1 loop iterations (the exit included) and one of the queue loop, and Mesa's
/// llvmpipe ends an invocation's loops after [`gqa_core::LLVMPIPE_LOOP_CAP`] iterations in all (a
/// workgroup that ran half of a sample's 2,048 units would lose its last one unfinished). The bound
/// holds on every adapter (the driver's property, whatever the context's tuning says); a GPU's
/// workgroups take far fewer. Every workgroup takes at least one unit and a sample dispatches one
/// workgroup per unit, so the units a workgroup leaves are taken by the next.
const FMA_UNITS_PER_WORKGROUP: u32 = ((gqa_core::LLVMPIPE_LOOP_CAP - 1) / (FMA_ITERATIONS as u64 + 2)) as u32;
/// FLOPs per invocation per round: 16 chains x 4 dependent vec4 `fma`s x 4 lanes x 2.
const FMA_FLOPS_PER_ROUND: f64 = 16.0 * 4.0 * 4.0 * 2.0;
/// Bytes of each of the copy probe's two buffers (capped by the adapter's binding limit).
const COPY_BYTES: u64 = 32 << 20;
/// The copy probe's workgroup size (one vec4 per invocation).
const COPY_WORKGROUP: u64 = 256;
/// A timed sample should take at least this long, so that submission and wake-up overhead does
/// not count: where one dispatch is quicker (a fast GPU), a sample repeats it in one pass.
const TARGET_SAMPLE: Duration = Duration::from_millis(20);
/// The most dispatches one sample repeats.
const MAX_REPEATS: u32 = 1024;

fn pipeline(device: &wgpu::Device, name: &str, source: &str) -> wgpu::ComputePipeline {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(name),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    })
}

/// A probe kernel ready to dispatch: its pipeline, bind group and grid, and for the FMA probe the
/// queue its workgroups take their work from.
struct ProbeKernel {
    pipeline: wgpu::ComputePipeline,
    group: wgpu::BindGroup,
    workgroups: u32,
    /// The params uniform (whose third word is the sample's units of work) and the queue's
    /// counter (zeroed before each sample).
    queue: Option<(wgpu::Buffer, wgpu::Buffer)>,
}

/// Submits `repeats` copies of one dispatch in one pass and waits for the device: the wall time. A
/// queued kernel's dispatches share `workgroups * repeats` units of work.
fn sample(ctx: &GpuContext, k: &ProbeKernel, repeats: u32) -> Result<Duration, GpuError> {
    let device = ctx.device();
    let (pipeline, group, workgroups) = (&k.pipeline, &k.group, k.workgroups);
    let start = Instant::now();
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("gqa probe") });
    if let Some((params, counter)) = &k.queue {
        ctx.queue().write_buffer(params, 8, bytemuck::bytes_of(&(workgroups * repeats)));
        encoder.clear_buffer(counter, 0, None);
    }
    {
        let mut pass = encoder
            .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("gqa probe"), timestamp_writes: None });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, group, &[]);
        for _ in 0..repeats {
            pass.dispatch_workgroups(workgroups, 1, 1);
        }
    }
    ctx.queue().submit([encoder.finish()]);
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| GpuError::Device { op: "roofline".into(), message: e.to_string() })?;
    Ok(start.elapsed())
}

/// The median wall time of one dispatch over `runs` samples, after a warm-up that also picks how
/// many dispatches a sample repeats (one where a dispatch alone takes [`TARGET_SAMPLE`], as on
/// lavapipe; more on a fast GPU, where one dispatch is mostly overhead).
fn time(ctx: &GpuContext, k: &ProbeKernel, runs: usize) -> Result<Duration, GpuError> {
    let mut repeats = 1;
    for _ in 0..4 {
        let warm = sample(ctx, k, repeats)?;
        if warm >= TARGET_SAMPLE || repeats >= MAX_REPEATS {
            break;
        }
        let scale = (TARGET_SAMPLE.as_secs_f64() / warm.as_secs_f64().max(1e-6)).ceil();
        repeats = (repeats as f64 * scale).min(MAX_REPEATS as f64) as u32;
    }
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        samples.push(sample(ctx, k, repeats)? / repeats);
    }
    samples.sort();
    Ok(samples[samples.len() / 2])
}

/// The two probe kernels made ready to run: pipelines, buffers and bind groups built once, so that
/// a profile can run the FMA probe before every step it times without recompiling it.
pub struct Probes {
    ctx: GpuContext,
    fma: ProbeKernel,
    copy: ProbeKernel,
    copy_bytes: u64,
    // Held for the bind groups.
    _buffers: [wgpu::Buffer; 4],
}

impl std::fmt::Debug for Probes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probes").field("copy_bytes", &self.copy_bytes).finish()
    }
}

impl Probes {
    /// Compiles the probes and makes their buffers (the copy probe's two are 32 MiB each, or the
    /// adapter's binding limit).
    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        let device = ctx.device();
        scoped(device, "roofline", Catch::Validation, || {
            let fma = pipeline(device, PROBES[0].0, PROBES[0].1);
            let invocations = FMA_WORKGROUPS * 64;
            let fma_params = upload(
                device,
                ctx.queue(),
                "probe params",
                bytemuck::cast_slice(&[FMA_ITERATIONS, 0, 0, FMA_UNITS_PER_WORKGROUP]),
                wgpu::BufferUsages::UNIFORM,
            );
            let sink = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("probe sink"),
                size: invocations as u64 * 16,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            });
            let counter = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("probe queue"),
                size: 4,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let fma_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("probe fma"),
                layout: &fma.get_bind_group_layout(0),
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: fma_params.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 1, resource: sink.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 2, resource: counter.as_entire_binding() },
                ],
            });
            let fma = ProbeKernel {
                pipeline: fma,
                group: fma_group,
                workgroups: FMA_WORKGROUPS,
                queue: Some((fma_params, counter)),
            };

            let copy = pipeline(device, PROBES[1].0, PROBES[1].1);
            let limits = ctx.limits();
            let bytes = COPY_BYTES
                .min(limits.max_storage_buffer_binding_size / 16 * 16)
                .min(limits.max_compute_workgroups_per_dimension as u64 * COPY_WORKGROUP * 16);
            let elements = (bytes / 16) as u32;
            let copy_params = upload(
                device,
                ctx.queue(),
                "probe params",
                bytemuck::cast_slice(&[0, elements, 0, 0]),
                wgpu::BufferUsages::UNIFORM,
            );
            let buffer = |label| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: bytes,
                    usage: wgpu::BufferUsages::STORAGE,
                    mapped_at_creation: false,
                })
            };
            let (src, dst) = (buffer("probe src"), buffer("probe dst"));
            let copy_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("probe copy"),
                layout: &copy.get_bind_group_layout(0),
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: copy_params.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 1, resource: src.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 2, resource: dst.as_entire_binding() },
                ],
            });
            let copy = ProbeKernel {
                pipeline: copy,
                group: copy_group,
                workgroups: (elements as u64).div_ceil(COPY_WORKGROUP).max(1) as u32,
                queue: None,
            };
            Ok(Probes { ctx: ctx.clone(), fma, copy, copy_bytes: bytes, _buffers: [sink, copy_params, src, dst] })
        })
    }

    /// The FMA probe's GFLOP/s: the median of `runs` samples after a warm-up.
    pub fn fma_gflops(&self, runs: usize) -> Result<f64, GpuError> {
        let flops = (FMA_WORKGROUPS * 64) as f64 * FMA_ITERATIONS as f64 * FMA_FLOPS_PER_ROUND;
        let t = self.timed(&self.fma, runs)?;
        Ok(flops / t.as_secs_f64() / 1e9)
    }

    /// The copy probe's GB/s (bytes read + bytes written): the median of `runs` samples after a
    /// warm-up.
    pub fn copy_gbps(&self, runs: usize) -> Result<f64, GpuError> {
        let t = self.timed(&self.copy, runs)?;
        Ok(2.0 * self.copy_bytes as f64 / t.as_secs_f64() / 1e9)
    }

    /// Times `kernel` (see [`time`]) inside a validation error scope, so that a device error comes
    /// back as a value; the scope's error comes before the timing's own.
    fn timed(&self, kernel: &ProbeKernel, runs: usize) -> Result<Duration, GpuError> {
        scoped(self.ctx.device(), "roofline", Catch::Validation, || Ok(time(&self.ctx, kernel, runs.max(1))))?
    }

    /// Both probes, the FMA probe first.
    pub fn measure(&self, runs: usize) -> Result<Roofline, GpuError> {
        Ok(Roofline { gflops: self.fma_gflops(runs)?, gbps: self.copy_gbps(runs)? })
    }
}

/// Measures the adapter's FMA throughput and copy bandwidth (median of `runs` after a warm-up).
///
/// Each sample is one dispatch where that takes long enough to time by the wall clock (as on
/// lavapipe, ~0.5 s for the whole probe with `runs = 3`), or a pass of repeated dispatches on a
/// fast GPU; either way the work counted is the work the dispatches do. To measure repeatedly,
/// make the [`Probes`] once.
pub fn measure(ctx: &GpuContext, runs: usize) -> Result<Roofline, GpuError> {
    Probes::new(ctx)?.measure(runs)
}
