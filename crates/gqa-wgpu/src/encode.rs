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

/// Records `plan` into `encoder`. Weights come from `weights`; inputs and optional outputs from
/// `inputs`; everything else is allocated here from the plan's sizes.
pub(crate) fn record(
    ctx: &GpuContext,
    weights: &HashMap<BufferId, wgpu::Buffer>,
    encoder: &mut wgpu::CommandEncoder,
    inputs: &GpuInputs<'_>,
    options: &CallOptions,
    plan: Plan,
) -> Result<EncodedForward, GpuError> {
    ctx.check_alive(OP)?;
    let device = &ctx.device;
    let mut owned: HashMap<BufferId, wgpu::Buffer> = HashMap::new();
    let mut borrowed: HashMap<BufferId, &wgpu::Buffer> = HashMap::new();

    for spec in &plan.buffers {
        let caller = match spec.id {
            BufferId::Query => Some(inputs.query),
            BufferId::Value => Some(inputs.value),
            BufferId::Key => inputs.key.map(|k| k.0),
            BufferId::Output => inputs.output,
            id if Some(id) == plan.scores_buffer() => inputs.scores,
            _ => None,
        };
        if let Some(buf) = caller {
            check_caller_buffer(&plan, spec.id, buf, spec.bytes)?;
            borrowed.insert(spec.id, buf);
            continue;
        }
        let buf = match (spec.id, spec.role) {
            (BufferId::Masks, _) => upload(
                device,
                &ctx.queue,
                "gqa masks",
                bytemuck::cast_slice(&pack_masks(&plan.problem, options)),
                wgpu::BufferUsages::STORAGE,
            ),
            (id, BufferRole::Weight) => {
                let buf = weights.get(&id).ok_or_else(|| GpuError::Buffer {
                    op: OP.into(),
                    buffer: id.to_string(),
                    problem: "the plan needs a weight the layer does not have".into(),
                })?;
                borrowed.insert(id, buf);
                continue;
            }
            (id, BufferRole::Input) => {
                return Err(GpuError::Buffer { op: OP.into(), buffer: id.to_string(), problem: "not provided".into() });
            }
            (id, role) => device.create_buffer(&wgpu::BufferDescriptor {
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
        owned.insert(spec.id, buf);
    }
    let lookup = |id: BufferId| -> Result<&wgpu::Buffer, GpuError> {
        borrowed.get(&id).copied().or_else(|| owned.get(&id)).ok_or_else(|| GpuError::Buffer {
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
        bytes[i * stride..i * stride + std::mem::size_of::<Params>()].copy_from_slice(bytemuck::bytes_of(&pass.params));
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

    // Consecutive dispatches share one compute pass; copies go between passes.
    let mut groups = bind_groups.iter();
    let mut steps = plan.steps.iter().peekable();
    while let Some(step) = steps.next() {
        match step {
            Step::Copy(c) => {
                encoder.copy_buffer_to_buffer(lookup(c.src)?, c.src_offset, lookup(c.dst)?, c.dst_offset, c.bytes);
            }
            Step::Dispatch(first) => {
                let mut cpass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("gqa forward"),
                    timestamp_writes: None,
                });
                let mut pass = first;
                loop {
                    let bg = groups.next().expect("one bind group per dispatch");
                    cpass.set_pipeline(&ctx.pipelines.get(pass.kernel).pipeline);
                    cpass.set_bind_group(0, bg, &[]);
                    let [x, y, z] = pass.workgroups;
                    cpass.dispatch_workgroups(x, y, z);
                    match steps.peek() {
                        Some(Step::Dispatch(next)) => {
                            pass = next;
                            steps.next();
                        }
                        _ => break,
                    }
                }
            }
        }
    }

    let output = lookup(BufferId::Output)?.clone();
    let scores = match plan.scores_buffer() {
        Some(id) => Some(lookup(id)?.clone()),
        None => None,
    };
    Ok(EncodedForward { plan, output, scores })
}
