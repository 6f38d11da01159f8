//! Creating buffers with contents without `create_buffer_init`, whose mapping panics on a lost
//! device: the buffer is created empty and filled through the queue, so every failure is an error
//! captured by the caller's error scope.

/// A buffer of `usage | COPY_DST` holding `contents` (at least 4 bytes, so it can be bound).
pub(crate) fn upload(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    label: &str,
    contents: &[u8],
    usage: wgpu::BufferUsages,
) -> wgpu::Buffer {
    let size = (contents.len() as u64).max(4).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage: usage | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    if !contents.is_empty() {
        queue.write_buffer(&buffer, 0, contents);
    }
    buffer
}
