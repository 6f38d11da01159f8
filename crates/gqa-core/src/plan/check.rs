//! The planner's last stage: a plan checked against the device's limits and the tuning's loop cap,
//! each excess an error naming the limit.

use super::Plan;
use crate::error::GqaError;
use crate::limits::Limits;

/// Checks every pass's loops, buffers, grids and kernel resources against `limits`.
pub(crate) fn against_limits(plan: &Plan, limits: &Limits) -> Result<(), GqaError> {
    if let Some(cap) = plan.tuning.loop_iteration_cap {
        for pass in plan.passes() {
            let needed = pass.kernel.loop_iterations(&pass.params, plan.tuning.subgroup_sizes);
            if needed > cap {
                return Err(GqaError::LimitExceeded {
                    kernel: pass.label.to_string(),
                    limit: "loop_iteration_cap",
                    allowed: cap,
                    needed,
                    detail: format!(
                        "kernel {} would loop {needed} times per invocation; this adapter's driver (Mesa llvmpipe) \
                         stops loops after {cap}",
                        pass.kernel.name()
                    ),
                });
            }
        }
    }
    let bound = plan.bound();
    for buf in plan.buffers.iter().filter(|b| b.texture.is_none()) {
        let mut checks = vec![("max_buffer_size", limits.max_buffer_size)];
        if bound.contains(&buf.id) {
            checks.push(("max_storage_buffer_binding_size", limits.max_storage_buffer_binding_size));
        }
        for (limit, allowed) in checks {
            if buf.bytes > allowed {
                return Err(GqaError::LimitExceeded {
                    kernel: format!("buffer {}", buf.id),
                    limit,
                    allowed,
                    needed: buf.bytes,
                    detail: format!("{} elements of {} bytes", buf.elems, buf.element_bytes),
                });
            }
        }
    }
    for pass in plan.passes() {
        let k = pass.kernel;
        for (axis, count) in pass.workgroups.iter().enumerate() {
            if *count > limits.max_compute_workgroups_per_dimension {
                return Err(GqaError::LimitExceeded {
                    kernel: pass.label.to_string(),
                    limit: "max_compute_workgroups_per_dimension",
                    allowed: limits.max_compute_workgroups_per_dimension as u64,
                    needed: *count as u64,
                    detail: format!("workgroups along {} of {:?}", ["x", "y", "z"][axis], pass.workgroups),
                });
            }
        }
        let invocations: u32 = k.workgroup_size().iter().product();
        let checks = [
            ("max_compute_invocations_per_workgroup", limits.max_compute_invocations_per_workgroup, invocations),
            (
                "max_compute_workgroup_storage_size",
                limits.max_compute_workgroup_storage_size,
                k.workgroup_memory_bytes(),
            ),
            ("max_storage_buffers_per_shader_stage", limits.max_storage_buffers_per_shader_stage, k.storage_buffers()),
            (
                "max_storage_textures_per_shader_stage",
                limits.max_storage_textures_per_shader_stage,
                k.storage_textures(),
            ),
        ];
        for (limit, allowed, needed) in checks {
            if needed > allowed {
                return Err(GqaError::LimitExceeded {
                    kernel: pass.label.to_string(),
                    limit,
                    allowed: allowed as u64,
                    needed: needed as u64,
                    detail: format!("kernel {}", k.name()),
                });
            }
        }
    }
    Ok(())
}
