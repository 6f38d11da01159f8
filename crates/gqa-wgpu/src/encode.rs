//! Recording a plan into a command encoder: buffers from the plan, one bind group per pass, one
//! compute pass with every dispatch.

use std::collections::HashMap;

use gqa_core::{BufferId, BufferRole, CallOptions, Params, Plan, Step, pack_masks};

use crate::context::GpuContext;
use crate::error::GpuError;
use crate::layer::{EncodedForward, GpuInputs};
use crate::upload::upload;

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

/// A plan made ready to encode: every buffer it touches (the caller's, the weights, new ones) and one
/// bind group per dispatch. It can be encoded whole, or step by step (for profiling).
pub(crate) struct Recording {
    pub(crate) plan: Plan,
    buffers: HashMap<BufferId, wgpu::Buffer>,
    /// For each step, the index of its bind group (dispatches only).
    groups: Vec<Option<usize>>,
    bind_groups: Vec<wgpu::BindGroup>,
}

impl Recording {
    /// Allocates what the plan needs and builds the bind groups. Weights come from `weights`; inputs
    /// and optional outputs from `inputs`; everything else is allocated from the plan's sizes.
    pub(crate) fn prepare(
        ctx: &GpuContext,
        weights: &HashMap<BufferId, wgpu::Buffer>,
        inputs: &GpuInputs<'_>,
        options: &CallOptions,
        plan: Plan,
    ) -> Result<Self, GpuError> {
        ctx.check_alive(OP)?;
        let device = &ctx.device;
        let mut buffers: HashMap<BufferId, wgpu::Buffer> = HashMap::new();
        for spec in &plan.buffers {
            let caller = match spec.id {
                BufferId::Query => Some(inputs.query),
                BufferId::Value => Some(inputs.value),
                BufferId::Key => inputs.key.map(|k| k.0),
                BufferId::Output => inputs.output,
                id if Some(id) == plan.scores_buffer() => inputs.scores,
                _ => None,
            };
            let buf = match (caller, spec.id, spec.role) {
                (Some(buf), id, _) => {
                    check_caller_buffer(&plan, id, buf, spec.bytes)?;
                    buf.clone()
                }
                (None, BufferId::Masks, _) => upload(
                    device,
                    &ctx.queue,
                    "gqa masks",
                    bytemuck::cast_slice(&pack_masks(&plan.problem, options)),
                    wgpu::BufferUsages::STORAGE,
                ),
                (None, id, BufferRole::Weight) => weights
                    .get(&id)
                    .ok_or_else(|| GpuError::Buffer {
                        op: OP.into(),
                        buffer: id.to_string(),
                        problem: "the plan needs a weight the layer does not have".into(),
                    })?
                    .clone(),
                (None, id, BufferRole::Input) => {
                    return Err(GpuError::Buffer {
                        op: OP.into(),
                        buffer: id.to_string(),
                        problem: "not provided".into(),
                    });
                }
                (None, id, role) => device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("gqa {id}")),
                    size: spec.bytes.max(4),
                    usage: if role == BufferRole::Output {
                        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST
                    } else {
                        wgpu::BufferUsages::STORAGE | needed_usage(&plan, id)
                    },
                    mapped_at_creation: false,
                }),
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
        let align = device.limits().min_uniform_buffer_offset_alignment as usize;
        let stride = std::mem::size_of::<Params>().div_ceil(align) * align;
        let passes: Vec<&gqa_core::Pass> = plan.passes().collect();
        let mut bytes = vec![0u8; stride * passes.len().max(1)];
        for (i, pass) in passes.iter().enumerate() {
            bytes[i * stride..i * stride + std::mem::size_of::<Params>()]
                .copy_from_slice(bytemuck::bytes_of(&pass.params));
        }
        let params_buf = upload(device, &ctx.queue, "gqa params", &bytes, wgpu::BufferUsages::UNIFORM);

        let mut bind_groups = Vec::with_capacity(passes.len());
        for (i, pass) in passes.iter().enumerate() {
            let kp = ctx.pipelines.get(pass.kernel);
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &params_buf,
                    offset: (i * stride) as u64,
                    size: wgpu::BufferSize::new(std::mem::size_of::<Params>() as u64),
                }),
            }];
            for (j, id) in pass.bindings.iter().enumerate() {
                let size = plan.buffer(*id).map(|s| s.bytes.max(4));
                entries.push(wgpu::BindGroupEntry {
                    binding: j as u32 + 1,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: lookup(*id)?,
                        offset: 0,
                        size: size.and_then(wgpu::BufferSize::new),
                    }),
                });
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
        Ok(Self { plan, buffers, groups, bind_groups })
    }

    /// Encodes steps `range` of the plan: consecutive dispatches share one compute pass; copies go
    /// between passes.
    pub(crate) fn encode(&self, ctx: &GpuContext, encoder: &mut wgpu::CommandEncoder, range: std::ops::Range<usize>) {
        let mut i = range.start;
        while i < range.end {
            match &self.plan.steps[i] {
                Step::Copy(c) => {
                    encoder.copy_buffer_to_buffer(
                        &self.buffers[&c.src],
                        c.src_offset,
                        &self.buffers[&c.dst],
                        c.dst_offset,
                        c.bytes,
                    );
                    i += 1;
                }
                Step::Dispatch(_) => {
                    let mut cpass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("gqa forward"),
                        timestamp_writes: None,
                    });
                    while i < range.end {
                        let (Step::Dispatch(pass), Some(g)) = (&self.plan.steps[i], self.groups[i]) else { break };
                        cpass.set_pipeline(&ctx.pipelines.get(pass.kernel).pipeline);
                        cpass.set_bind_group(0, &self.bind_groups[g], &[]);
                        let [x, y, z] = pass.workgroups;
                        cpass.dispatch_workgroups(x, y, z);
                        i += 1;
                    }
                }
            }
        }
    }

    /// The output buffer, and the scores buffer when requested.
    pub(crate) fn into_encoded(self) -> EncodedForward {
        let output = self.buffers[&BufferId::Output].clone();
        let scores = self.plan.scores_buffer().map(|id| self.buffers[&id].clone());
        EncodedForward { plan: self.plan, output, scores }
    }
}

/// Records `plan` into `encoder` (see [`Recording::prepare`]).
pub(crate) fn record(
    ctx: &GpuContext,
    weights: &HashMap<BufferId, wgpu::Buffer>,
    encoder: &mut wgpu::CommandEncoder,
    inputs: &GpuInputs<'_>,
    options: &CallOptions,
    plan: Plan,
) -> Result<EncodedForward, GpuError> {
    let rec = Recording::prepare(ctx, weights, inputs, options, plan)?;
    rec.encode(ctx, encoder, 0..rec.plan.steps.len());
    Ok(rec.into_encoded())
}
