//! Profiling the layer's calls: [`GqaLayer::step_timer`] (and its cached form) prepares a
//! [`StepTimer`] over a call's plan, [`GqaLayer::profile`] and its variants time every step over
//! rounds and report the medians.

use gqa_core::{BufferId, CallOptions, ForwardOutput, HostTensor, Plan, Step};

use super::GqaLayer;
use super::host_call::HostCall;
use crate::encode::Recording;
use crate::error::GpuError;
use crate::error_scope::{Catch, scoped_or_discard};
use crate::kv_cache::KvCache;
use crate::roofline;
use crate::step_timer::{StepTime, StepTimer};
use crate::tensor::GpuTensor;

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
        self.timer_for(plan, &HostCall { query, value, key, cache: None })
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
        cache.check_prefix("step_timer_cached")?;
        let t = query.shape().get(1).copied().unwrap_or(0);
        let (plan, _) = self.cached_plan(cache, t, key.is_some(), &vec![t; cache.batch()])?;
        self.timer_for(plan, &HostCall { query, value, key, cache: Some(cache.buffers()) })
    }

    /// Uploads the inputs of `call` (buffers of the timer's own) and prepares the recording of
    /// `plan` and its timestamps.
    fn timer_for(&self, plan: Plan, call: &HostCall<'_>) -> Result<StepTimer, GpuError> {
        let ctx = self.context();
        let device = ctx.device();
        let work = || {
            let uploaded = call.upload_inputs(ctx.queue(), |label, bytes| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: crate::pool::pooled_size(bytes),
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            });
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
            let inputs = call.gpu_inputs(&uploaded, Some(&output), scores.as_ref());
            let rec = Recording::prepare(ctx, self.weight_store(), &inputs, call.cache, plan)?;
            Ok(StepTimer::new(ctx, rec, output, scores))
        };
        scoped_or_discard(device, "step_timer", Catch::Validation, work, StepTimer::discard)
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
