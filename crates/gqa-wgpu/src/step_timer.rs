//! Timing a forward call, whole or step by step: [`StepTimer`] runs any range of a plan's steps as
//! one submission and times it with GPU timestamp queries where the device has
//! `Features::TIMESTAMP_QUERY` ([`GpuContext::new`](crate::GpuContext::new) requests it when the
//! adapter offers it), else with the wall clock around the submission and a wait for the device.
//! [`GqaLayer::profile`](crate::GqaLayer::profile) uses it for the per-step medians.
//! [`StepTimer::read_output`] reads back what the plan's output steps last wrote, so that a timed
//! run can be checked against the oracle;
//! [`GqaLayer::profile_with_outputs`](crate::GqaLayer::profile_with_outputs) hands over the output
//! of every profiling round.

use std::ops::Range;
use std::time::{Duration, Instant};

use gqa_core::{ForwardOutput, Plan, Step};

use crate::context::GpuContext;
use crate::encode::Recording;
use crate::error::GpuError;
use crate::error_scope::{Catch, scoped};
use crate::polling::Drive;
use crate::readback::{forward_output, result_sources, submit_staged};

/// How a [`StepTimer`] measures a range of steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// GPU timestamps written at the beginning of the range's first compute pass and at the end of
    /// its last (copies before the first or after the last dispatch are not covered): the device's
    /// time only.
    GpuTimestamps,
    /// Wall clock from encoding to the end of a wait for the device: includes encoding, one
    /// submission and the wait's overhead.
    WallClock,
}

/// The time of one step of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct StepTime {
    /// The step's label (`project_query`, `logits`, ..., `copy`).
    pub label: &'static str,
    /// Its workgroup counts (zeros for a copy).
    pub workgroups: [u32; 3],
    /// The median over the runs.
    pub median: Duration,
    /// How it was measured.
    pub timing: Timing,
    /// The step's FLOPs where they follow from its parameters alone (a matmul: `2 m n k`; see
    /// [`gqa_core::Pass::flops`]), else `None`.
    pub flops: Option<u64>,
    /// From [`GqaLayer::profile_against_roofline`](crate::GqaLayer::profile_against_roofline), for
    /// steps with a FLOP count: the median over the rounds of the step's GFLOP/s over the FMA
    /// probe's, the probe run just before the step in the same round (a shared machine's speed
    /// moves between a probe and a step taken apart). `None` otherwise.
    pub fma_share: Option<f64>,
}

/// The query set and buffers of the two timestamps around a timed range.
struct Timestamps {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// Nanoseconds per timestamp tick.
    period: f64,
}

/// A forward call made ready to time: inputs uploaded, buffers and bind groups made once (scratch
/// buffers are held from the pool until it is dropped). Any range of its plan's steps can then be
/// run and timed, as often as wanted, with [`StepTimer::time`].
///
/// A range reads whatever its input buffers hold: run the whole plan once first
/// (`time(0..plan().steps.len())`) when the values matter. The kernels' work does not depend on
/// the values, so timing a range alone (e.g. the attention without the projections before it) is
/// fair.
pub struct StepTimer {
    ctx: GpuContext,
    rec: Recording,
    timestamps: Option<Timestamps>,
    /// The plan's output buffer, and its scores buffer when the call returns scores (the timer's
    /// own, so that [`StepTimer::read_output`] can read them back).
    output: wgpu::Buffer,
    scores: Option<wgpu::Buffer>,
}

impl std::fmt::Debug for StepTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepTimer").field("steps", &self.rec.plan.steps.len()).field("timing", &self.timing()).finish()
    }
}

impl StepTimer {
    /// A timer of `rec`, whose plan writes its results into `output` and `scores` (the timer's
    /// own, to be read back), with a timestamp query set where the device has timestamps.
    pub(crate) fn new(ctx: &GpuContext, rec: Recording, output: wgpu::Buffer, scores: Option<wgpu::Buffer>) -> Self {
        let device = ctx.device();
        let timestamps = device.features().contains(wgpu::Features::TIMESTAMP_QUERY).then(|| {
            let buffer = |label, usage| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: 16,
                    usage,
                    mapped_at_creation: false,
                })
            };
            Timestamps {
                set: device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("gqa timer"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2,
                }),
                resolve: buffer("gqa timer resolve", wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC),
                readback: buffer("gqa timer readback", wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST),
                period: ctx.queue().get_timestamp_period() as f64,
            }
        });
        Self { ctx: ctx.clone(), rec, timestamps, output, scores }
    }

    /// Drops the timer without giving its scratch buffers back to the pool (the device rejected
    /// its making).
    pub(crate) fn discard(self) {
        self.rec.discard();
    }

    /// The plan whose steps are timed.
    pub fn plan(&self) -> &Plan {
        &self.rec.plan
    }

    /// Reads back the plan's output (and scores, when the call returns them) as they are now: what
    /// the steps that write them last wrote. After running every step (`time(0..plan().steps.len())`,
    /// or a range and then the steps after it) this is the call's result, to compare with the
    /// oracle. Waits for the device; nothing of it is timed.
    pub fn read_output(&self) -> Result<ForwardOutput, GpuError> {
        const OP: &str = "StepTimer::read_output";
        let plan = &self.rec.plan;
        let sources = result_sources(plan, Some(&self.output), self.scores.as_ref());
        let staging = submit_staged(&self.ctx, OP, OP, &sources)?;
        forward_output(&plan.problem, pollster::block_on(staging.read(&self.ctx, OP, Drive::Block))?)
    }

    /// How [`StepTimer::time`] measures on this device.
    pub fn timing(&self) -> Timing {
        if self.timestamps.is_some() { Timing::GpuTimestamps } else { Timing::WallClock }
    }

    /// Runs steps `range` of the plan (indices into `plan().steps`) as one submission, waits for
    /// the device, and returns the time they took (see [`StepTimer::timing`]). Should the device
    /// return unusable timestamps, the wall clock is returned: the end not after the start, or an
    /// interval under half the wall time (lavapipe wrote both timestamps of a pass before its
    /// dispatches had run in plans that bind textures: 0.1 ms for a 190 ms dispatch).
    pub fn time(&self, range: Range<usize>) -> Result<Duration, GpuError> {
        const OP: &str = "StepTimer::time";
        let steps = self.rec.plan.steps.len();
        if range.start > range.end || range.end > steps {
            return Err(GpuError::Unsupported {
                op: OP.into(),
                what: format!("step range {range:?} of a plan with {steps} steps"),
            });
        }
        let (device, queue) = (self.ctx.device(), self.ctx.queue());
        scoped(device, OP, Catch::Validation, || {
            let start = Instant::now();
            let mut encoder =
                device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("gqa timer") });
            let has_dispatch = self.rec.plan.steps[range.clone()].iter().any(|s| matches!(s, Step::Dispatch(_)));
            // Timestamps are written by the compute passes that do the work (an empty marker pass
            // around them was not ordered after the work on lavapipe); a range of copies alone is timed
            // by the wall clock.
            let timestamps = self.timestamps.as_ref().filter(|_| has_dispatch);
            self.rec.encode_timed(&mut encoder, range, timestamps.map(|ts| &ts.set));
            if let Some(ts) = timestamps {
                encoder.resolve_query_set(&ts.set, 0..2, &ts.resolve, 0);
                encoder.copy_buffer_to_buffer(&ts.resolve, 0, &ts.readback, 0, 16);
            }
            queue.submit([encoder.finish()]);
            let wait = || {
                device
                    .poll(wgpu::PollType::wait_indefinitely())
                    .map_err(|e| GpuError::Device { op: OP.into(), message: e.to_string() })
            };
            wait()?;
            let wall = start.elapsed();
            let mut elapsed = wall;
            if let Some(ts) = timestamps {
                let slice = ts.readback.slice(..);
                let (tx, rx) = std::sync::mpsc::channel();
                slice.map_async(wgpu::MapMode::Read, move |r| {
                    let _ = tx.send(r);
                });
                wait()?;
                rx.recv()
                    .map_err(|e| GpuError::Map { op: OP.into(), message: e.to_string() })?
                    .map_err(|e| GpuError::Map { op: OP.into(), message: e.to_string() })?;
                let view =
                    slice.get_mapped_range().map_err(|e| GpuError::Map { op: OP.into(), message: e.to_string() })?;
                let ticks: &[u64] = bytemuck::cast_slice(&view);
                let (t0, t1) = (ticks[0], ticks[1]);
                drop(view);
                ts.readback.unmap();
                let gpu = Duration::from_nanos((t1.saturating_sub(t0) as f64 * ts.period).round() as u64);
                if t1 > t0 && gpu * 2 >= wall {
                    elapsed = gpu;
                }
            }
            Ok(elapsed)
        })
    }
}
