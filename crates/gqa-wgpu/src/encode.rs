//! Recording a plan into a command encoder: buffers from the plan (the caller's, the weights, the
//! pool's), one bind group per pass, one compute pass per run of consecutive dispatches.

use std::collections::HashMap;

use gqa_core::{BufferId, BufferRole, Params, Plan, Step};

use crate::args::{EncodedForward, GpuInputs};
use crate::context::GpuContext;
use crate::error::GpuError;
use crate::error_scope::{Catch, scoped_or_discard};
use crate::matrix_texture::MatrixTexture;
use crate::pool::{Class, Leases};
use crate::tensor::GpuTensor;
use crate::weight_store::WeightStore;

const OP: &str = "encode_forward";

/// The usages the plan needs of a buffer: STORAGE where a pass binds it, COPY_SRC / COPY_DST where a
/// copy reads or writes it.
fn needed_usage(plan: &Plan, id: BufferId) -> wgpu::BufferUsages {
    let mut usage = wgpu::BufferUsages::empty();
    for step in &plan.steps {
        match step {
            Step::Dispatch(pass) if pass.bindings.contains(&id) => usage |= wgpu::BufferUsages::STORAGE,
            Step::Copy(c) if c.src == id => usage |= wgpu::BufferUsages::COPY_SRC,
            Step::Copy(c) if c.dst == id => usage |= wgpu::BufferUsages::COPY_DST,
            _ => {}
        }
    }
    usage
}

/// Checks a caller's buffer is big enough and has the usages the plan needs of it.
fn check_caller_buffer(plan: &Plan, id: BufferId, buf: &wgpu::Buffer, bytes: u64) -> Result<(), GpuError> {
    if buf.size() < bytes {
        return Err(GpuError::Buffer {
            op: OP.into(),
            buffer: id.to_string(),
            problem: format!("has {} bytes, the call needs {bytes}", buf.size()),
        });
    }
    let needed = needed_usage(plan, id);
    if !buf.usage().contains(needed) {
        return Err(GpuError::Buffer {
            op: OP.into(),
            buffer: id.to_string(),
            problem: format!(
                "needs usage {needed:?} for this plan (chunking: {:?}), has {:?}",
                plan.chunking,
                buf.usage()
            ),
        });
    }
    Ok(())
}

/// The KV cache's buffers, for a cached call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CacheBuffers<'a> {
    /// Projected keys (B, capacity, Nkv, H).
    pub(crate) keys: &'a wgpu::Buffer,
    /// Projected values (B, capacity, Nkv, H).
    pub(crate) values: &'a wgpu::Buffer,
    /// The keys' and values' texture mirrors, when the cache keeps them
    /// ([`gqa_core::CacheUpdate::texture_mirror`]).
    pub(crate) textures: Option<[&'a MatrixTexture; 2]>,
}

/// The usage of every pooled scratch buffer: one key for all, so any call can reuse any of them.
pub(crate) const SCRATCH_USAGE: wgpu::BufferUsages = GpuTensor::USAGE;

/// Bytes between two passes' params in the params uniform buffer.
pub(crate) fn params_stride(min_uniform_buffer_offset_alignment: u32) -> usize {
    let align = (min_uniform_buffer_offset_alignment as usize).max(1);
    std::mem::size_of::<Params>().div_ceil(align) * align
}

/// A plan made ready to encode: every buffer it touches (the caller's, the weights, the pool's) and
/// one bind group per dispatch. It can be encoded whole, or step by step (for profiling). The
/// scratch buffers go back to the pool when it is dropped: drop it once its work is recorded.
pub(crate) struct Recording {
    pub(crate) plan: Plan,
    buffers: HashMap<BufferId, wgpu::Buffer>,
    /// The textures copies write (a KV cache's texture mirrors, the textures a copy packs).
    textures: HashMap<BufferId, MatrixTexture>,
    /// For each step, the index of its bind group (dispatches only).
    groups: Vec<Option<usize>>,
    bind_groups: Vec<wgpu::BindGroup>,
    /// The pipeline of each dispatch, beside its bind group.
    pipelines: Vec<wgpu::ComputePipeline>,
    /// The scratch buffers taken from the pool.
    leases: Leases,
}

impl Recording {
    /// Finds what the plan needs and builds the bind groups. Weights come from `weights`; inputs
    /// and optional outputs from `inputs`; a cached call's keys and values from `cache`; params and
    /// masks are constants of the pool; scratch buffers are taken from the pool; outputs not given
    /// are new buffers (they leave with the results).
    pub(crate) fn prepare(
        ctx: &GpuContext,
        weights: &WeightStore,
        inputs: &GpuInputs<'_>,
        cache: Option<CacheBuffers<'_>>,
        plan: Plan,
    ) -> Result<Self, GpuError> {
        ctx.check_alive(OP)?;
        let device = &ctx.device;
        let mut leases = Leases::new(ctx.pool.clone(), Class::Gpu);
        let mut buffers: HashMap<BufferId, wgpu::Buffer> = HashMap::new();
        let mut textures: HashMap<BufferId, wgpu::TextureView> = HashMap::new();
        let mut copy_textures: HashMap<BufferId, MatrixTexture> = HashMap::new();
        for spec in &plan.buffers {
            if let Some(shape) = spec.texture {
                let texture = match spec.role {
                    BufferRole::Cache => {
                        let mirrors = cache.and_then(|c| c.textures).ok_or_else(|| GpuError::Buffer {
                            op: OP.into(),
                            buffer: spec.id.to_string(),
                            problem: "the plan needs the KV cache's texture mirror and the cache has none".into(),
                        })?;
                        let texture = mirrors[usize::from(spec.id == BufferId::ValueCacheTexture)];
                        let has = texture.shape();
                        if has != shape {
                            return Err(GpuError::Buffer {
                                op: OP.into(),
                                buffer: spec.id.to_string(),
                                problem: format!(
                                    "is {} x {} texels, the plan needs {} x {}",
                                    has.width, has.height, shape.width, shape.height
                                ),
                            });
                        }
                        copy_textures.insert(spec.id, texture.clone());
                        texture.clone()
                    }
                    BufferRole::Weight => weights
                        .textures
                        .get(&spec.id)
                        .ok_or_else(|| GpuError::Buffer {
                            op: OP.into(),
                            buffer: spec.id.to_string(),
                            problem: "the plan needs a weight texture the layer does not have".into(),
                        })?
                        .clone(),
                    _ => {
                        // Packed by a copy, or by Kernel::PackTexture (Plan::packing_by_passes_from).
                        let usage = wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_DST;
                        let texture = MatrixTexture::create(device, &format!("gqa {}", spec.id), shape, usage);
                        copy_textures.insert(spec.id, texture.clone());
                        texture
                    }
                };
                let view = texture.view();
                textures.insert(spec.id, view);
                continue;
            }
            let caller = match spec.id {
                BufferId::Query => Some(inputs.query),
                BufferId::Value => Some(inputs.value),
                BufferId::Key => inputs.key.map(|k| k.0),
                BufferId::Output => inputs.output,
                BufferId::KeyCache => cache.map(|c| c.keys),
                BufferId::ValueCache => cache.map(|c| c.values),
                id if Some(id) == plan.scores_buffer() => inputs.scores,
                _ => None,
            };
            let buf = match (caller, spec.id, spec.role) {
                (Some(buf), id, _) => {
                    check_caller_buffer(&plan, id, buf, spec.bytes)?;
                    buf.clone()
                }
                (None, BufferId::Masks, _) => ctx.pool.constant(
                    device,
                    &ctx.queue,
                    wgpu::BufferUsages::STORAGE,
                    bytemuck::cast_slice(plan.mask_words()),
                    "gqa masks",
                ),
                (None, BufferId::RopeTable, _) => ctx.pool.constant(
                    device,
                    &ctx.queue,
                    wgpu::BufferUsages::STORAGE,
                    bytemuck::cast_slice(plan.rope_table()),
                    "gqa rotary table",
                ),
                (None, id, BufferRole::Weight) => {
                    weights.buffer(device, &ctx.queue, id).ok_or_else(|| GpuError::Buffer {
                        op: OP.into(),
                        buffer: id.to_string(),
                        problem: "the plan needs a weight the layer does not have".into(),
                    })?
                }
                (None, id, BufferRole::Input | BufferRole::Cache) => {
                    return Err(GpuError::Buffer {
                        op: OP.into(),
                        buffer: id.to_string(),
                        problem: "not provided".into(),
                    });
                }
                (None, id, BufferRole::Output) => device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("gqa {id}")),
                    size: crate::pool::pooled_size(spec.bytes),
                    usage: GpuTensor::USAGE,
                    mapped_at_creation: false,
                }),
                (None, id, _) => leases.take(device, SCRATCH_USAGE, spec.bytes, &format!("gqa {id}")),
            };
            buffers.insert(spec.id, buf);
        }
        let lookup = |id: BufferId| -> Result<&wgpu::Buffer, GpuError> {
            buffers.get(&id).ok_or_else(|| GpuError::Buffer {
                op: OP.into(),
                buffer: id.to_string(),
                problem: "a pass binds a buffer the plan does not list".into(),
            })
        };

        // All passes' params in one uniform buffer, each at an aligned offset.
        let stride = params_stride(device.limits().min_uniform_buffer_offset_alignment);
        let passes: Vec<&gqa_core::Pass> = plan.passes().collect();
        let mut bytes = vec![0u8; stride * passes.len().max(1)];
        for (i, pass) in passes.iter().enumerate() {
            bytes[i * stride..i * stride + std::mem::size_of::<Params>()]
                .copy_from_slice(bytemuck::bytes_of(&pass.params));
        }
        let params_buf = ctx.pool.constant(device, &ctx.queue, wgpu::BufferUsages::UNIFORM, &bytes, "gqa params");

        // The plan's kernels not compiled yet, compiled together (on parallel threads).
        ctx.pipelines.prepare(passes.iter().map(|p| p.kernel))?;
        let mut bind_groups = Vec::with_capacity(passes.len());
        let mut pipelines = Vec::with_capacity(passes.len());
        for (i, pass) in passes.iter().enumerate() {
            let kp = ctx.pipelines.get(pass.kernel)?;
            pipelines.push(kp.pipeline.clone());
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &params_buf,
                    offset: (i * stride) as u64,
                    size: wgpu::BufferSize::new(std::mem::size_of::<Params>() as u64),
                }),
            }];
            for (j, (id, access)) in pass.bindings.iter().zip(pass.kernel.bindings()).enumerate() {
                let resource = if access.is_storage_buffer() {
                    let size = plan.buffer(*id).map(|s| s.bytes.max(4));
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: lookup(*id)?,
                        offset: 0,
                        size: size.and_then(wgpu::BufferSize::new),
                    })
                } else {
                    wgpu::BindingResource::TextureView(textures.get(id).ok_or_else(|| GpuError::Buffer {
                        op: OP.into(),
                        buffer: id.to_string(),
                        problem: "a pass binds a texture the plan does not list".into(),
                    })?)
                };
                entries.push(wgpu::BindGroupEntry { binding: j as u32 + 1, resource });
            }
            bind_groups.push(device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(pass.label),
                layout: &kp.layout,
                entries: &entries,
            }));
        }
        let mut next = 0;
        let groups = plan
            .steps
            .iter()
            .map(|s| match s {
                Step::Dispatch(_) => {
                    next += 1;
                    Some(next - 1)
                }
                Step::Copy(_) => None,
            })
            .collect();
        Ok(Self { plan, buffers, textures: copy_textures, groups, bind_groups, pipelines, leases })
    }

    /// Keeps the scratch buffers out of the pool (after an error, when they may be invalid).
    pub(crate) fn discard(self) {
        self.leases.discard();
    }

    /// Encodes steps `range` of the plan: consecutive dispatches share one compute pass; copies go
    /// between passes.
    pub(crate) fn encode(&self, encoder: &mut wgpu::CommandEncoder, range: std::ops::Range<usize>) {
        self.encode_timed(encoder, range, None);
    }

    /// [`Recording::encode`], writing timestamp 0 at the beginning of the first compute pass and 1 at
    /// the end of the last into `timestamps`, when given (the range must hold a dispatch).
    pub(crate) fn encode_timed(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        range: std::ops::Range<usize>,
        timestamps: Option<&wgpu::QuerySet>,
    ) {
        let is_dispatch = |i: usize| matches!(self.plan.steps[i], Step::Dispatch(_));
        let first = range.clone().find(|&i| is_dispatch(i));
        let last = range.clone().rev().find(|&i| is_dispatch(i));
        let mut i = range.start;
        while i < range.end {
            match &self.plan.steps[i] {
                Step::Copy(c) => {
                    match self.textures.get(&c.dst) {
                        Some(texture) => {
                            let row_bytes = texture.row_bytes() as u64;
                            let rows = (c.dst_offset / row_bytes) as u32..((c.dst_offset + c.bytes) / row_bytes) as u32;
                            texture.copy_rows(encoder, &self.buffers[&c.src], c.src_offset, rows);
                        }
                        None => encoder.copy_buffer_to_buffer(
                            &self.buffers[&c.src],
                            c.src_offset,
                            &self.buffers[&c.dst],
                            c.dst_offset,
                            c.bytes,
                        ),
                    }
                    i += 1;
                }
                Step::Dispatch(_) => {
                    let end = (i..range.end).find(|&j| !is_dispatch(j)).unwrap_or(range.end);
                    let holds = |step: Option<usize>| step.is_some_and(|s| (i..end).contains(&s));
                    // Only the passes that hold the range's first or last dispatch write a timestamp
                    // (a pass between two copies may hold neither, and may then write none).
                    let ends = holds(first) || holds(last);
                    let timestamp_writes =
                        timestamps.filter(|_| ends).map(|query_set| wgpu::ComputePassTimestampWrites {
                            query_set,
                            beginning_of_pass_write_index: holds(first).then_some(0),
                            end_of_pass_write_index: holds(last).then_some(1),
                        });
                    let mut cpass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("gqa forward"),
                        timestamp_writes,
                    });
                    while i < end {
                        let (Step::Dispatch(pass), Some(g)) = (&self.plan.steps[i], self.groups[i]) else { break };
                        cpass.set_pipeline(&self.pipelines[g]);
                        cpass.set_bind_group(0, &self.bind_groups[g], &[]);
                        let [x, y, z] = pass.workgroups;
                        cpass.dispatch_workgroups(x, y, z);
                        i += 1;
                    }
                }
            }
        }
    }

    /// The output tensor, and the scores tensor when requested; the scratch buffers go back to the
    /// pool.
    pub(crate) fn into_encoded(self, ctx: &GpuContext) -> Result<EncodedForward, GpuError> {
        let Recording { plan, buffers, leases, .. } = self;
        drop(leases);
        let tensor = |id: BufferId, shape: Vec<usize>| {
            buffers.get(&id).map(|b| GpuTensor::wrap(ctx, b.clone(), shape)).ok_or_else(|| GpuError::Buffer {
                op: OP.into(),
                buffer: id.to_string(),
                problem: "the plan does not list it".into(),
            })
        };
        let output = tensor(BufferId::Output, plan.problem.output_shape().to_vec())?;
        let scores = match plan.scores_buffer() {
            Some(id) => Some(tensor(id, plan.problem.scores_shape().to_vec())?),
            None => None,
        };
        Ok(EncodedForward { plan, output, scores })
    }
}

/// Records `plan` into `encoder` (see [`Recording::prepare`]). Errors creating the bind groups are
/// returned as values; errors in the recorded commands surface at the caller's submit.
pub(crate) fn record(
    ctx: &GpuContext,
    weights: &WeightStore,
    encoder: &mut wgpu::CommandEncoder,
    inputs: &GpuInputs<'_>,
    cache: Option<CacheBuffers<'_>>,
    plan: Plan,
) -> Result<EncodedForward, GpuError> {
    let prepare = || Recording::prepare(ctx, weights, inputs, cache, plan);
    let rec = scoped_or_discard(&ctx.device, OP, Catch::ValidationAndOutOfMemory, prepare, Recording::discard)?;
    rec.encode(encoder, 0..rec.plan.steps.len());
    rec.into_encoded(ctx)
}
