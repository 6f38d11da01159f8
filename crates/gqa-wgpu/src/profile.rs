//! Per-step timing of a forward call: each step of the plan submitted alone and waited for, so the
//! wall clock of each includes the device's work (and one submission's overhead).

use std::time::{Duration, Instant};

use gqa_core::{CallOptions, HostTensor, Step};

use crate::encode::Recording;
use crate::error::GpuError;
use crate::layer::{GpuInputs, GqaLayer, dims3};
use crate::upload::upload;

/// The time of one step of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct StepTime {
    /// The step's label (`project_query`, `logits`, ..., `copy`).
    pub label: &'static str,
    /// Its workgroup counts (zeros for a copy).
    pub workgroups: [u32; 3],
    /// The median over the runs.
    pub median: Duration,
}

impl GqaLayer {
    /// Times every step of a forward call: one warm-up call, then `runs` rounds in which each step
    /// is submitted on its own and waited for. Returns the median per step, in plan order.
    pub fn profile(
        &self,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        options: &CallOptions,
        runs: usize,
    ) -> Result<Vec<StepTime>, GpuError> {
        let plan = self.plan(query.shape(), value.shape(), key.map(HostTensor::shape), options)?;
        let ctx = self.context();
        let (device, queue) = (ctx.device(), ctx.queue());
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let q = upload(device, queue, "gqa query", bytemuck::cast_slice(query.data()), usage);
        let v = upload(device, queue, "gqa value", bytemuck::cast_slice(value.data()), usage);
        let k = key.map(|k| upload(device, queue, "gqa key", bytemuck::cast_slice(k.data()), usage));
        let inputs = GpuInputs {
            query: &q,
            query_shape: dims3(query.shape()),
            value: &v,
            value_shape: dims3(value.shape()),
            key: k.as_ref().zip(key.map(|t| dims3(t.shape()))),
            output: None,
            scores: None,
        };
        let rec = Recording::prepare(ctx, self.weight_buffers(), &inputs, None, options, plan)?;
        let wait = || {
            device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| GpuError::Device { op: "profile".into(), message: e.to_string() })
        };
        let run = |range: std::ops::Range<usize>| -> Result<Duration, GpuError> {
            let start = Instant::now();
            let mut encoder =
                device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("gqa profile") });
            rec.encode(&mut encoder, range);
            queue.submit([encoder.finish()]);
            wait()?;
            Ok(start.elapsed())
        };
        run(0..rec.plan.steps.len())?;
        let mut times = vec![Vec::with_capacity(runs); rec.plan.steps.len()];
        for _ in 0..runs.max(1) {
            for (i, t) in times.iter_mut().enumerate() {
                t.push(run(i..i + 1)?);
            }
        }
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::from_wgpu("profile", e));
        }
        Ok(rec
            .plan
            .steps
            .iter()
            .zip(times)
            .map(|(step, mut t)| {
                t.sort();
                let (label, workgroups) = match step {
                    Step::Dispatch(p) => (p.label, p.workgroups),
                    Step::Copy(_) => ("copy", [0; 3]),
                };
                StepTime { label, workgroups, median: t[t.len() / 2] }
            })
            .collect())
    }
}
