//! `GpuTensor`: a wgpu buffer with a shape and a dtype, the inputs and outputs of GPU-resident calls.

use gqa_core::{GqaError, HostTensor};

use crate::context::GpuContext;
use crate::error::GpuError;
use crate::error_scope::{Catch, scoped};
use crate::polling::Drive;
use crate::readback::submit_staged;
use crate::upload::upload;

/// The element type of a [`GpuTensor`]. The layer computes in f32 only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DType {
    /// 32-bit IEEE float, little-endian as WGSL's `f32`.
    #[default]
    F32,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            DType::F32 => 4,
        }
    }
}

/// A tensor on the GPU: a `wgpu::Buffer` holding the elements row-major (C order) from byte offset
/// 0, its shape and its dtype, and the context (device and queue) the buffer belongs to.
///
/// Layout and usages: element `[i, j, k]` of a (B, N, D) tensor is the f32 at byte
/// `4 * ((i * N + j) * D + k)`. The buffer may be larger than the tensor (the rest is ignored).
/// The layer binds tensors as storage buffers (`STORAGE`); a plan that splits the batch to fit the
/// device's limits copies inputs out (`COPY_SRC`) and outputs in (`COPY_DST`), and
/// [`GpuTensor::to_host`] copies out (`COPY_SRC`). On CPU adapters the inputs are packed into
/// textures by copies where they have `COPY_SRC`, else by a pass. Tensors made by this type's
/// constructors have [`GpuTensor::USAGE`], which covers all of these.
///
/// A tensor used by a layer must be made with the layer's context or a clone of it
/// ([`GpuTensor::is_on`]). Cloning is cheap: the clone shares the buffer.
///
/// ```no_run
/// use gqa_wgpu::{GpuContext, GpuTensor};
/// let ctx = GpuContext::new()?;
/// let x = GpuTensor::from_slice(&ctx, [1, 2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?;
/// assert_eq!(x.shape(), &[1, 2, 3]);
/// assert_eq!(x.to_host()?.data(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
/// # Ok::<(), gqa_wgpu::GpuError>(())
/// ```
#[derive(Clone)]
pub struct GpuTensor {
    ctx: GpuContext,
    buffer: wgpu::Buffer,
    shape: Vec<usize>,
    dtype: DType,
}

impl std::fmt::Debug for GpuTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuTensor")
            .field("shape", &self.shape)
            .field("dtype", &self.dtype)
            .field("buffer_size", &self.buffer.size())
            .field("usage", &self.buffer.usage())
            .finish()
    }
}

/// Elements of a shape, or an error when the product overflows.
fn elems(shape: &[usize]) -> Result<u64, GpuError> {
    shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64)).filter(|n| n.checked_mul(4).is_some()).ok_or_else(
        || GpuError::Buffer {
            op: "GpuTensor".into(),
            buffer: format!("{shape:?}"),
            problem: "the shape's element count overflows".into(),
        },
    )
}

/// Makes a tensor's buffer on a live device, under validation and out-of-memory scopes: errors
/// come back as values.
fn create_buffer(ctx: &GpuContext, op: &str, make: impl FnOnce() -> wgpu::Buffer) -> Result<wgpu::Buffer, GpuError> {
    ctx.check_alive(op)?;
    scoped(&ctx.device, op, Catch::ValidationAndOutOfMemory, || Ok(make()))
}

impl GpuTensor {
    /// The usages of tensors this type creates: everything the layer and [`GpuTensor::to_host`]
    /// can need of an input or output buffer.
    pub const USAGE: wgpu::BufferUsages =
        wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

    /// The usage every buffer given to [`GpuTensor::from_buffer`] needs: the layer binds its
    /// inputs and outputs as storage buffers.
    pub const REQUIRED_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE;

    /// Uploads a host tensor to a new buffer of [`GpuTensor::USAGE`] (written through the queue: it
    /// is on the GPU by the next submission).
    pub fn from_host(ctx: &GpuContext, tensor: &HostTensor) -> Result<Self, GpuError> {
        Self::from_slice(ctx, tensor.shape(), tensor.data())
    }

    /// Uploads row-major `data` of `shape` to a new buffer; errors when the lengths disagree.
    pub fn from_slice(ctx: &GpuContext, shape: impl Into<Vec<usize>>, data: &[f32]) -> Result<Self, GpuError> {
        let shape = shape.into();
        let n = elems(&shape)?;
        if n != data.len() as u64 {
            return Err(GqaError::DataLength {
                tensor: "GpuTensor".into(),
                expected: n as usize,
                got: data.len(),
                shape,
            }
            .into());
        }
        let buffer = create_buffer(ctx, "GpuTensor::from_slice", || {
            upload(&ctx.device, &ctx.queue, "gqa tensor", bytemuck::cast_slice(data), Self::USAGE)
        })?;
        Ok(Self { ctx: ctx.clone(), buffer, shape, dtype: DType::F32 })
    }

    /// A new tensor of zeros (wgpu zero-initialises new buffers), e.g. to receive outputs.
    pub fn zeros(ctx: &GpuContext, shape: impl Into<Vec<usize>>) -> Result<Self, GpuError> {
        let shape = shape.into();
        let bytes = elems(&shape)? * DType::F32.size();
        let buffer = create_buffer(ctx, "GpuTensor::zeros", || {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("gqa tensor"),
                size: crate::pool::pooled_size(bytes),
                usage: Self::USAGE,
                mapped_at_creation: false,
            })
        })?;
        Ok(Self { ctx: ctx.clone(), buffer, shape, dtype: DType::F32 })
    }

    /// Wraps a buffer the caller made on `ctx`'s device (which is not checked: wgpu cannot tell). Checks that it holds at least the
    /// shape's bytes (from offset 0) and has [`GpuTensor::REQUIRED_USAGE`]; the usages a particular
    /// plan needs besides (see the type's docs) are checked when a call uses it.
    pub fn from_buffer(ctx: &GpuContext, buffer: wgpu::Buffer, shape: impl Into<Vec<usize>>) -> Result<Self, GpuError> {
        let shape = shape.into();
        let bytes = elems(&shape)? * DType::F32.size();
        let problem = if buffer.size() < bytes {
            Some(format!("has {} bytes, a {shape:?} f32 tensor needs {bytes}", buffer.size()))
        } else if !buffer.usage().contains(Self::REQUIRED_USAGE) {
            Some(format!("needs usage {:?}, has {:?}", Self::REQUIRED_USAGE, buffer.usage()))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(GpuError::Buffer { op: "GpuTensor::from_buffer".into(), buffer: "buffer".into(), problem });
        }
        Ok(Self { ctx: ctx.clone(), buffer, shape, dtype: DType::F32 })
    }

    /// Wraps a buffer known to fit (made by the layer from the plan).
    pub(crate) fn wrap(ctx: &GpuContext, buffer: wgpu::Buffer, shape: Vec<usize>) -> Self {
        Self { ctx: ctx.clone(), buffer, shape, dtype: DType::F32 }
    }

    /// The buffer.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Gives up the tensor, returning its buffer.
    pub fn into_buffer(self) -> wgpu::Buffer {
        self.buffer
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes the elements take (the buffer may be larger).
    pub fn bytes(&self) -> u64 {
        self.len() as u64 * self.dtype.size()
    }

    /// The context the buffer belongs to.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Whether the tensor was made with `ctx` or a clone of it ([`GpuContext::same_as`]), as the
    /// layers of `ctx` require.
    pub fn is_on(&self, ctx: &GpuContext) -> bool {
        self.ctx.same_as(ctx)
    }

    /// Copies the tensor to the host: submits a copy after all work submitted so far (so it sees
    /// the results of every call submitted before), then blocks until it is read.
    pub fn to_host(&self) -> Result<HostTensor, GpuError> {
        pollster::block_on(self.read(Drive::Block))
    }

    /// Async form of [`GpuTensor::to_host`]: resolves when the copy is mapped, without blocking the
    /// executor's thread; the device is polled as the context's [`crate::AsyncPolling`] says.
    pub async fn to_host_async(&self) -> Result<HostTensor, GpuError> {
        self.read(Drive::Async).await
    }

    async fn read(&self, drive: Drive) -> Result<HostTensor, GpuError> {
        const OP: &str = "GpuTensor::to_host";
        self.ctx.check_alive(OP)?;
        if !self.buffer.usage().contains(wgpu::BufferUsages::COPY_SRC) {
            return Err(GpuError::Buffer {
                op: OP.into(),
                buffer: "tensor".into(),
                problem: format!("needs usage COPY_SRC to be read back, has {:?}", self.buffer.usage()),
            });
        }
        let staging = submit_staged(&self.ctx, OP, "gqa to_host", &[(&self.buffer, self.bytes())])?;
        let data = staging.read(&self.ctx, OP, drive).await?.into_iter().next().unwrap_or_default();
        Ok(HostTensor::new(self.shape.clone(), data)?)
    }
}
