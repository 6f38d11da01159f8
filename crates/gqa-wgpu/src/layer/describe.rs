//! Introspection before running: the memory of a call ([`GqaLayer::memory`]) and what it runs on
//! ([`GqaLayer::describe_call`]), from its plan; nothing is allocated or run.

use gqa_core::{CallOptions, Step};

use super::GqaLayer;
use crate::describe::{CallDescription, MemoryReport};
use crate::error::GpuError;

impl GqaLayer {
    /// The memory a call with these shapes and options would use, from its plan; nothing is
    /// allocated. Errors as [`GqaLayer::plan`] does.
    pub fn memory(
        &self,
        query_shape: &[usize],
        value_shape: &[usize],
        key_shape: Option<&[usize]>,
        options: &CallOptions,
    ) -> Result<MemoryReport, GpuError> {
        let plan = self.plan(query_shape, value_shape, key_shape, options)?;
        Ok(MemoryReport::of(&plan, self.ctx.device.limits().min_uniform_buffer_offset_alignment))
    }

    /// The adapter, kernel variants, dispatches and memory of a call with these shapes and
    /// options; nothing is allocated or run.
    pub fn describe_call(
        &self,
        query_shape: &[usize],
        value_shape: &[usize],
        key_shape: Option<&[usize]>,
        options: &CallOptions,
    ) -> Result<CallDescription, GpuError> {
        let plan = self.plan(query_shape, value_shape, key_shape, options)?;
        let info = self.ctx.adapter_info();
        Ok(CallDescription {
            adapter: self.ctx.describe(),
            backend: info.backend,
            device_type: info.device_type,
            tuning: plan.tuning,
            chunking: plan.chunking,
            dispatches: plan.passes().map(|p| (p.label, p.kernel.name())).collect(),
            copies: plan.steps.iter().filter(|s| matches!(s, Step::Copy(_))).count(),
            flops: plan.flops(),
            memory: MemoryReport::of(&plan, self.ctx.device.limits().min_uniform_buffer_offset_alignment),
        })
    }
}
