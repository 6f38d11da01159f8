//! Timing a forward call, whole or step by step: [`StepTimer`] runs any range of a plan's steps as
//! one submission and times it with GPU timestamp queries where the device has
//! `Features::TIMESTAMP_QUERY` ([`GpuContext::new`](crate::GpuContext::new) requests it when the
//! adapter offers it), else with the wall clock around the submission and a wait for the device.
//! [`GqaLayer::profile`] uses it for the per-step medians. [`StepTimer::read_output`] reads back
//! what the plan's output steps last wrote, so that a timed run can be checked against the oracle;
//! [`GqaLayer::profile_with_outputs`] hands over the output of every profiling round.

use std::ops::Range;
use std::time::{Duration, Instant};

use gqa_core::{BufferId, CallOptions, ForwardOutput, HostTensor, Plan, Step};

use crate::context::GpuContext;
use crate::encode::{CacheBuffers, Recording};
use crate::error::GpuError;
use crate::error_scope::{Catch, scoped, scoped_or_discard};
use crate::kv_cache::KvCache;
use crate::layer::{GpuInputs, GqaLayer, dims3};
use crate::polling::Drive;
use crate::readback::submit_staged;
use crate::roofline;
use crate::tensor::GpuTensor;
use crate::upload::upload;

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
    /// From [`GqaLayer::profile_against_roofline`], for steps with a FLOP count: the median over the
    /// rounds of the step's GFLOP/s over the FMA probe's, the probe run just before the step in the
    /// same round (a shared machine's speed moves between a probe and a step taken apart). `None`
    /// otherwise.
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

impl GqaLayer {
    /// Prepares a call with these inputs for timing (see [`StepTimer`]): plans it, uploads the
    /// inputs, builds every buffer and bind group. Nothing runs yet.
    pub fn step_timer(
        &self,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        options: &CallOptions,
    ) -> Result<StepTimer, GpuError> {
        let plan = self.plan(query.shape(), value.shape(), key.map(HostTensor::shape), options)?;
        self.timer_for(plan, query, value, key, options, None)
    }

    /// [`GqaLayer::step_timer`] for a decoding step: a cached call appending all `T` rows of
    /// `query` (B, T, Dq) to every sequence of `cache`, each of which must hold a prefix. Timing it
    /// runs the step's work (the projections of the new tokens, the appends, the attention over the
    /// cache) but leaves the cache's lengths as they are, so every timed run writes the same slots.
    pub fn step_timer_cached(
        &self,
        cache: &KvCache,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
    ) -> Result<StepTimer, GpuError> {
        crate::kv_cache::check_prefix("step_timer_cached", cache)?;
        let t = query.shape().get(1).copied().unwrap_or(0);
        let (plan, options, _) = self.cached_plan(cache, t, key.is_some(), &vec![t; cache.batch()])?;
        self.timer_for(plan, query, value, key, &options, Some(cache.buffers()))
    }

    /// Uploads the inputs of `plan` and prepares its recording and timestamps.
    fn timer_for(
        &self,
        plan: Plan,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        options: &CallOptions,
        cache: Option<CacheBuffers<'_>>,
    ) -> Result<StepTimer, GpuError> {
        let ctx = self.context();
        let (device, queue) = (ctx.device(), ctx.queue());
        let work = || {
            let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
            let q = upload(device, queue, "gqa query", bytemuck::cast_slice(query.data()), usage);
            let v = upload(device, queue, "gqa value", bytemuck::cast_slice(value.data()), usage);
            let k = key.map(|k| upload(device, queue, "gqa key", bytemuck::cast_slice(k.data()), usage));
            // The outputs are the timer's own (made as the recording would make them), to be read back.
            let output_buffer = |id: BufferId| {
                plan.buffer(id).map(|spec| {
                    device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(&format!("gqa timer {id}")),
                        size: crate::pool::pooled_size(spec.bytes),
                        usage: GpuTensor::USAGE,
                        mapped_at_creation: false,
                    })
                })
            };
            let output = output_buffer(BufferId::Output).ok_or_else(|| GpuError::Buffer {
                op: "step_timer".into(),
                buffer: BufferId::Output.to_string(),
                problem: "the plan does not list it".into(),
            })?;
            let scores = plan.scores_buffer().and_then(output_buffer);
            let inputs = GpuInputs {
                query: &q,
                query_shape: dims3(query.shape()),
                value: &v,
                value_shape: dims3(value.shape()),
                key: k.as_ref().zip(key.map(|t| dims3(t.shape()))),
                output: Some(&output),
                scores: scores.as_ref(),
            };
            let rec = Recording::prepare(ctx, self.weight_store(), &inputs, cache, options, plan)?;
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
                    resolve: buffer(
                        "gqa timer resolve",
                        wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                    ),
                    readback: buffer("gqa timer readback", wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST),
                    period: queue.get_timestamp_period() as f64,
                }
            });
            Ok(StepTimer { ctx: ctx.clone(), rec, timestamps, output, scores })
        };
        scoped_or_discard(device, "step_timer", Catch::Validation, work, |timer| timer.rec.discard())
    }

    /// Times every step of a forward call: one warm-up call, then `runs` rounds in which each step
    /// is submitted on its own and waited for. Returns the median per step, in plan order, measured
    /// with GPU timestamps where the device has them (see [`StepTimer`]).
    pub fn profile(
        &self,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        options: &CallOptions,
        runs: usize,
    ) -> Result<Vec<StepTime>, GpuError> {
        profile_steps(&self.step_timer(query, value, key, options)?, runs, None, None)
    }

    /// [`GqaLayer::profile`], and for each step with a FLOP count (the matmuls) its share of the
    /// adapter's FMA roofline ([`StepTime::fma_share`]): in every round the FMA probe of `probes`
    /// (made on this layer's context) runs just before the step, and the share reported is the
    /// median of the rounds' own ratios.
    pub fn profile_against_roofline(
        &self,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        options: &CallOptions,
        runs: usize,
        probes: &roofline::Probes,
    ) -> Result<Vec<StepTime>, GpuError> {
        profile_steps(&self.step_timer(query, value, key, options)?, runs, Some(probes), None)
    }

    /// [`GqaLayer::profile`] (or, with `probes`, [`GqaLayer::profile_against_roofline`]) that also
    /// hands the output of every round to `round_output`, with the round's index: a round runs each
    /// step of the plan once, in order, so it computes the whole call, and its output (and scores,
    /// when the options ask for them) is read back after its last step, outside the timed steps.
    /// The caller can then check each round's output against the oracle, so that the per-step
    /// times come from runs whose results were compared.
    #[allow(clippy::too_many_arguments, reason = "the profile's arguments and the output callback")]
    pub fn profile_with_outputs(
        &self,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        options: &CallOptions,
        runs: usize,
        probes: Option<&roofline::Probes>,
        round_output: &mut dyn FnMut(usize, ForwardOutput),
    ) -> Result<Vec<StepTime>, GpuError> {
        profile_steps(&self.step_timer(query, value, key, options)?, runs, probes, Some(round_output))
    }
}

/// The rounds of [`GqaLayer::profile`], with the FMA probe before each counted step where `probes`
/// is given, and each round's output read back and handed to `round_output` where it is given.
fn profile_steps(
    timer: &StepTimer,
    runs: usize,
    probes: Option<&roofline::Probes>,
    mut round_output: Option<&mut dyn FnMut(usize, ForwardOutput)>,
) -> Result<Vec<StepTime>, GpuError> {
    let plan_steps = &timer.plan().steps;
    let flops: Vec<Option<u64>> = plan_steps
        .iter()
        .map(|step| match step {
            Step::Dispatch(pass) => pass.flops(),
            Step::Copy(_) => None,
        })
        .collect();
    timer.time(0..plan_steps.len())?;
    let mut times = vec![Vec::with_capacity(runs); plan_steps.len()];
    let mut shares = vec![Vec::with_capacity(runs); plan_steps.len()];
    for round in 0..runs.max(1) {
        for (i, t) in times.iter_mut().enumerate() {
            let probe = match (probes, flops[i]) {
                (Some(p), Some(_)) => Some(p.fma_gflops(1)?),
                _ => None,
            };
            let took = timer.time(i..i + 1)?;
            t.push(took);
            if let (Some(gflops), Some(f)) = (probe, flops[i]) {
                shares[i].push(f as f64 / took.as_secs_f64().max(1e-9) / 1e9 / gflops);
            }
        }
        if let Some(f) = round_output.as_mut() {
            f(round, timer.read_output()?);
        }
    }
    let timing = timer.timing();
    Ok(plan_steps
        .iter()
        .zip(times)
        .zip(shares)
        .zip(flops)
        .map(|(((step, mut t), mut share), flops)| {
            t.sort();
            share.sort_by(f64::total_cmp);
            let workgroups = match step {
                Step::Dispatch(p) => p.workgroups,
                Step::Copy(_) => [0; 3],
            };
            let fma_share = (!share.is_empty()).then(|| share[share.len() / 2]);
            StepTime { label: step.label(), workgroups, median: t[t.len() / 2], timing, flops, fma_share }
        })
        .collect())
}

impl StepTimer {
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
        let bytes = |id: BufferId| plan.buffer(id).map_or(0, |b| b.bytes);
        let mut sources = vec![(&self.output, bytes(BufferId::Output))];
        if let (Some(buf), Some(id)) = (&self.scores, plan.scores_buffer()) {
            sources.push((buf, bytes(id)));
        }
        let staging = submit_staged(&self.ctx, OP, OP, &sources)?;
        let mut read = pollster::block_on(staging.read(&self.ctx, OP, Drive::Block))?.into_iter();
        let output = HostTensor::new(plan.problem.output_shape(), read.next().unwrap_or_default())?;
        let scores = match read.next() {
            Some(data) if plan.problem.return_scores => Some(HostTensor::new(plan.problem.scores_shape(), data)?),
            _ => None,
        };
        Ok(ForwardOutput { output, scores })
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
        let steps = self.rec.plan.steps.len();
        if range.start > range.end || range.end > steps {
            return Err(GpuError::Unsupported {
                op: "StepTimer::time".into(),
                what: format!("step range {range:?} of a plan with {steps} steps"),
            });
        }
        let (device, queue) = (self.ctx.device(), self.ctx.queue());
        scoped(device, "StepTimer::time", Catch::Validation, || {
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
                    .map_err(|e| GpuError::Device { op: "StepTimer::time".into(), message: e.to_string() })
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
                    .map_err(|e| GpuError::Map { op: "StepTimer::time".into(), message: e.to_string() })?
                    .map_err(|e| GpuError::Map { op: "StepTimer::time".into(), message: e.to_string() })?;
                let view = slice
                    .get_mapped_range()
                    .map_err(|e| GpuError::Map { op: "StepTimer::time".into(), message: e.to_string() })?;
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
