//! An application that owns its wgpu device and keeps its data on the GPU: two residual attention
//! blocks, `z1 = x + attn(x)` then `z2 = z1 + attn(z1)`, where `attn` is gqa's layer and the residual
//! add is the application's own WGSL compute pass. Everything is recorded into one command encoder,
//! submitted once, and read back once.
//!
//! ```sh
//! cargo run --release --example embed
//! ```

use gqa::core::{CallOptions, GqaConfig, HostTensor, LayerDims};
use gqa::gpu::{GpuContext, GpuTensor, GqaLayer, TensorArgs};
use wgpu::util::DeviceExt;

/// The application's kernel: `out = a + b`, elementwise.
const RESIDUAL_ADD: &str = r"
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    if (id.x < arrayLength(&out)) {
        out[id.x] = a[id.x] + b[id.x];
    }
}
";

/// (B, T, D) of the example.
const SHAPE: [usize; 3] = [2, 6, 16];

/// What [`run`] computed.
pub struct Embedded {
    /// `z2` read back from the GPU.
    pub gpu: HostTensor,
    /// `z2` computed with the CPU oracle.
    pub oracle: HostTensor,
}

/// The application's residual-add pass.
struct ResidualAdd {
    pipeline: wgpu::ComputePipeline,
}

impl ResidualAdd {
    fn new(device: &wgpu::Device) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("residual add"),
            source: wgpu::ShaderSource::Wgsl(RESIDUAL_ADD.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("residual add"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        Self { pipeline }
    }

    /// Records `out = a + b` over `elems` f32.
    fn encode(
        &self,
        device: &wgpu::Device,
        encoder: &mut wgpu::CommandEncoder,
        [a, b, out]: [&wgpu::Buffer; 3],
        elems: u32,
    ) {
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("residual add"),
            layout: &self.pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: a.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: b.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 2, resource: out.as_entire_binding() },
            ],
        });
        let mut pass = encoder
            .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("residual add"), timestamp_writes: None });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(elems.div_ceil(64), 1, 1);
    }
}

/// Runs the two blocks on the application's `device` and `queue` (of the adapter `info`).
pub fn run(
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
) -> Result<Embedded, Box<dyn std::error::Error>> {
    // The layer, on the application's device: pipelines compiled, weights uploaded once.
    let ctx = GpuContext::from_device(device.clone(), queue.clone(), info)?;
    let config = GqaConfig::new(8, 4, 2);
    let dims = LayerDims { query_dim: SHAPE[2], key_dim: SHAPE[2], value_dim: SHAPE[2] };
    let weights = gqa::reference::initialize_weights(&config, dims, 7)?;
    let layer = GqaLayer::new(&ctx, &config, &weights)?;
    let options = CallOptions { use_causal_mask: true, ..Default::default() };

    // The application's buffers: f32 row-major from offset 0, with STORAGE (the layer binds them)
    // and COPY_SRC/COPY_DST (needed when a plan splits the batch, and for reading back).
    let elems: usize = SHAPE.iter().product();
    let x_host: Vec<f32> = (0..elems).map(|i| ((i * 7 % 23) as f32 - 11.0) / 11.0).collect();
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let x_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("app x"),
        contents: bytemuck::cast_slice(&x_host),
        usage,
    });
    let new_buf = |label| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (elems * 4) as u64,
            usage,
            mapped_at_creation: false,
        })
    };
    let x = GpuTensor::from_buffer(&ctx, x_buf, SHAPE)?;
    let attn = GpuTensor::from_buffer(&ctx, new_buf("app attention out"), SHAPE)?;
    let z1 = GpuTensor::from_buffer(&ctx, new_buf("app z1"), SHAPE)?;
    let z2 = GpuTensor::from_buffer(&ctx, new_buf("app z2"), SHAPE)?;
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("app readback"),
        size: (elems * 4) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });

    // One encoder: attention, add, attention, add, copy out.
    let add = ResidualAdd::new(&device);
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("app frame") });
    layer.encode_forward(&mut encoder, &TensorArgs::new(&x, &x).output(&attn), &options)?;
    add.encode(&device, &mut encoder, [x.buffer(), attn.buffer(), z1.buffer()], elems as u32);
    layer.encode_forward(&mut encoder, &TensorArgs::new(&z1, &z1).output(&attn), &options)?;
    add.encode(&device, &mut encoder, [z1.buffer(), attn.buffer(), z2.buffer()], elems as u32);
    encoder.copy_buffer_to_buffer(z2.buffer(), 0, &staging, 0, (elems * 4) as u64);
    queue.submit([encoder.finish()]);
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(e.into());
    }

    // The one read back.
    let (tx, rx) = std::sync::mpsc::channel();
    staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    device.poll(wgpu::PollType::wait_indefinitely())?;
    rx.recv()??;
    let gpu: Vec<f32> = bytemuck::cast_slice(&staging.slice(..).get_mapped_range()?).to_vec();
    staging.unmap();

    // The same on the CPU.
    let x_host = HostTensor::new(SHAPE, x_host)?;
    let residual = |x: &HostTensor| -> Result<HostTensor, Box<dyn std::error::Error>> {
        let y = gqa::reference::forward(&config, &weights, x, x, None, &options)?.output;
        Ok(HostTensor::new(SHAPE, x.data().iter().zip(y.data()).map(|(a, b)| a + b).collect())?)
    };
    let oracle = residual(&residual(&x_host)?)?;
    Ok(Embedded { gpu: HostTensor::new(SHAPE, gpu)?, oracle })
}

#[allow(dead_code, reason = "tests/api_examples.rs includes this file and calls `run`")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The application's own device, with the adapter's limits.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))?;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("my application"),
        required_limits: adapter.limits(),
        ..Default::default()
    }))?;
    println!("adapter: {:?} ({:?})", adapter.get_info().name, adapter.get_info().backend);
    let Embedded { gpu, oracle } = run(device, queue, adapter.get_info())?;
    let worst = gpu.data().iter().zip(oracle.data()).map(|(g, w)| (g - w).abs()).fold(0.0, f32::max);
    println!("z2 {:?}, first values {:?}", gpu.shape(), &gpu.data()[..4]);
    println!("max |gpu - oracle| = {worst:e}");
    Ok(())
}
