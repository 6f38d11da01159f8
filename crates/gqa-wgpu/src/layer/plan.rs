//! Planning a call of the layer: its shapes checked against the weights, and the plan tuned for
//! this device, before anything is allocated.

use gqa_core::{BufferRole, CallOptions, GqaError, Plan, Problem, Tuning};

use super::GqaLayer;
use crate::error::GpuError;

impl GqaLayer {
    /// The plan a call with these shapes and options would run (buffers, sizes, dispatches), checked
    /// against this device's limits. Nothing is allocated.
    pub fn plan(
        &self,
        query_shape: &[usize],
        value_shape: &[usize],
        key_shape: Option<&[usize]>,
        options: &CallOptions,
    ) -> Result<Plan, GpuError> {
        let problem = Problem::new(&self.config, query_shape, value_shape, key_shape, options)?
            .with_extensions(&self.extensions)?;
        self.check_dims(&problem)?;
        Ok(Plan::tuned(&problem, &self.ctx.limits(), self.tuning())?)
    }

    /// The context's kernel variants at the layer's precision: what the layer's plans are tuned
    /// with.
    pub(super) fn tuning(&self) -> Tuning {
        Tuning { precision: self.precision, ..self.ctx.tuning() }
    }

    fn check_dims(&self, p: &Problem) -> Result<(), GqaError> {
        let d = self.dims;
        let mismatch = |what: &str, got: usize, want: usize| GqaError::ShapeMismatch {
            op: "GqaLayer::forward",
            detail: format!("{what} has last dim {got}, the layer's weights were built for {want}"),
        };
        if p.query_dim != d.query_dim {
            return Err(mismatch("query", p.query_dim, d.query_dim));
        }
        if p.value_dim != d.value_dim {
            return Err(mismatch("value", p.value_dim, d.value_dim));
        }
        if p.key_dim != d.key_dim {
            let what = if p.key_given { "key" } else { "value (used as key: no key given)" };
            return Err(mismatch(what, p.key_dim, d.key_dim));
        }
        Ok(())
    }

    /// Bytes a call with this plan allocates besides the weights.
    pub fn call_bytes(plan: &Plan) -> u64 {
        plan.buffers.iter().filter(|b| b.role != BufferRole::Weight).map(|b| b.bytes).sum()
    }
}

/// Logs a plan's summary at debug level.
pub(super) fn log_plan(op: &str, plan: &Plan) {
    if log::log_enabled!(log::Level::Debug) {
        log::debug!("gqa {op}: {}", crate::describe::plan_summary(plan));
    }
}
