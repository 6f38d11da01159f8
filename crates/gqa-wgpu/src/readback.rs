//! Reading GPU buffers back to the host.

use crate::error::GpuError;

/// Copies `sources` (each `bytes` long) into one staging buffer, submits, waits and returns each as f32.
pub(crate) async fn read_f32(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    op: &str,
    sources: &[(&wgpu::Buffer, u64)],
) -> Result<Vec<Vec<f32>>, GpuError> {
    let total: u64 = sources.iter().map(|(_, n)| n).sum();
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("gqa readback"),
        size: total.max(4),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("gqa readback") });
    let mut at = 0;
    for (buf, bytes) in sources {
        encoder.copy_buffer_to_buffer(buf, 0, &staging, at, *bytes);
        at += bytes;
    }
    queue.submit([encoder.finish()]);
    let slice = staging.slice(..);
    let (tx, rx) = futures::channel::oneshot::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| GpuError::Device { op: op.into(), message: e.to_string() })?;
    rx.await
        .map_err(|_| GpuError::Map { op: op.into(), message: "the map callback was dropped".into() })?
        .map_err(|e| GpuError::Map { op: op.into(), message: e.to_string() })?;
    let view = slice.get_mapped_range().map_err(|e| GpuError::Map { op: op.into(), message: e.to_string() })?;
    let all: &[f32] = bytemuck::cast_slice(&view);
    let mut out = Vec::with_capacity(sources.len());
    let mut at = 0;
    for (_, bytes) in sources {
        let n = (*bytes / 4) as usize;
        out.push(all[at..at + n].to_vec());
        at += n;
    }
    drop(view);
    staging.unmap();
    Ok(out)
}
