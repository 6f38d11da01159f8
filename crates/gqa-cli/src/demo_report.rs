//! What `gqa demo` prints: the problem, the plan (every dispatch), the rows of the timing table,
//! the per-step profile and the checks.

use std::time::Duration;

use gqa_core::{CallOptions, ForwardOutput, GqaConfig, LayerDims, Limits, Plan, Step};
use gqa_wgpu::{GqaLayer, StepTime};

use crate::demo::DemoArgs;
use crate::timed::{Call, Checks, ms};

/// One line: the shapes (B, T, S, heads, dims) and every option that changes the call.
pub(crate) fn describe_problem(args: &DemoArgs, config: &GqaConfig, dims: LayerDims, options: &CallOptions) -> String {
    let mut s = format!(
        "B={} T={} S={} Nq={} Nkv={} (R={}) H={} Dq={} Dk={} Dv={}",
        args.batch,
        args.target_len,
        args.source_len,
        config.num_query_heads,
        config.num_key_value_heads,
        config.num_query_heads / config.num_key_value_heads,
        config.head_dim,
        dims.query_dim,
        dims.key_dim,
        dims.value_dim,
    );
    if options.use_causal_mask {
        s += &format!(", causal {:?}", options.causal_alignment);
    }
    if let Some(w) = config.sliding_window {
        s += &format!(", window {w}");
    }
    s += if config.use_bias { ", bias" } else { ", no bias" };
    if config.use_gate {
        s += ", gate";
    }
    if options.training {
        s += &format!(", dropout {}", config.dropout);
    }
    s += &format!(", masked rows {:?}", options.masked_rows);
    if options.return_attention_scores {
        s += ", scores";
    }
    s
}

/// The plan: its dispatches, FLOPs and memory, how it is split to fit the device, and whether it
/// fits WebGPU's default limits.
pub(crate) fn print_plan(plan: &Plan, layer: &GqaLayer) {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    say!(
        "plan      {} dispatches, {:.1} MFLOP, weights {:.2} MiB, per call {:.2} MiB",
        plan.passes().count(),
        plan.flops() as f64 / 1e6,
        mib(layer.weight_bytes()),
        mib(GqaLayer::call_bytes(plan)),
    );
    let c = plan.chunking;
    if c.splits_batch(&plan.problem) || c.splits_attention(&plan.problem) {
        say!(
            "          split to fit the device: {} batch element(s), {} (b, u) row(s), {} quer(ies) per chunk",
            c.batch_per_chunk,
            c.rows_per_chunk,
            c.queries_per_chunk
        );
    }
    const SHOWN: usize = 24;
    for step in plan.steps.iter().take(SHOWN) {
        match step {
            Step::Dispatch(pass) => {
                say!("          {:<16} {:<16} workgroups {:?}", pass.label, pass.kernel.name(), pass.workgroups)
            }
            Step::Copy(copy) => {
                say!("          {:<16} copy {} bytes {} -> {}", copy.label, copy.bytes, copy.src, copy.dst)
            }
        }
    }
    if plan.steps.len() > SHOWN {
        say!("          ... {} more steps", plan.steps.len() - SHOWN);
    }
    // The same problem against WebGPU's default limits, so users know whether it would run in a browser.
    if let Err(e) = Plan::new(&plan.problem, &Limits::webgpu_default()) {
        say!("          note: over WebGPU's default limits: {e}");
    }
}

/// One row of the timing table: label, milliseconds, GFLOP/s when the step runs the layer, a note.
pub(crate) fn row(label: &str, d: Duration, flops: Option<f64>, note: &str) {
    let rate = flops.map(|f| format!("{:.2}", f / d.as_secs_f64() / 1e9)).unwrap_or_default();
    let line = format!("{label:<36} {:>12.3} {rate:>9}  {note}", ms(d));
    say!("{}", line.trim_end());
}

/// One line per checked output of the calls `which` selects: the call, the output's shape and the
/// comparison (max absolute and relative errors).
pub(crate) fn print_checks(checks: &Checks<ForwardOutput>, which: impl Fn(Call) -> bool) {
    for (call, c) in checks.results.iter().filter(|(call, _)| which(*call)) {
        say!("  {:<16} {:?}: {c}", call.to_string(), checks.want.output.shape());
    }
}

/// `the warm-up, 5 timed run(s), 5 profile round(s)`.
pub(crate) fn what_was_checked(checks: &Checks<ForwardOutput>) -> String {
    let timed = checks.tally(|c| matches!(c, Call::Timed(_))).1;
    let rounds = checks.tally(|c| matches!(c, Call::ProfileRound(_))).1;
    let mut s = format!("the warm-up, {timed} timed run(s)");
    if rounds > 0 {
        s += &format!(", {rounds} profile round(s)");
    }
    s
}

/// `--profile`'s table: each step's workgroups, median time and, for the matmuls, GFLOP/s and the
/// share of the FMA probe.
pub(crate) fn print_profile(args: &DemoArgs, steps: &[StepTime], verdict: &str) {
    let timing = steps.first().map(|s| format!("{:?}", s.timing)).unwrap_or_default();
    say!("\nper step (each submitted alone, timed by {timing}; median of {}):", args.runs);
    say!("  {verdict}");
    if args.roofline {
        say!("  (matmuls: GFLOP/s, and the median of the rounds' shares of the FMA probe run just before the step)");
    }
    for step in steps {
        let rate = match (step.flops, step.fma_share) {
            (Some(f), Some(share)) => {
                format!(
                    "  {:>7.1} GFLOP/s  {:>5.1}% of the FMA probe",
                    f as f64 / step.median.as_secs_f64() / 1e9,
                    100.0 * share
                )
            }
            (Some(f), None) => format!("  {:>7.1} GFLOP/s", f as f64 / step.median.as_secs_f64() / 1e9),
            _ => String::new(),
        };
        say!("  {:<16} {:>14?} {:>12.3} ms{rate}", step.label, step.workgroups, ms(step.median));
    }
}
