//! `gqa demo --backend cpu`: the demo's layer on the CPU layer (`gqa_cpu::CpuLayer`, f32, every
//! thread of rayon's pool) instead of a GPU, with the same report: the warm-up, the oracle (once,
//! after the warm-up, its time shown apart) and `--runs` timed calls through the core the GPU demo
//! uses ([`crate::timed`]), every output compared with the oracle's at f32 tolerances.

use std::time::Instant;

use gqa_core::{HostTensor, Problem};
use gqa_cpu::CpuLayer;
use gqa_ref::check::Tolerance;
use serde_json::json;

use crate::demo::{DemoArgs, Failure, Report, Setup, Tamper, UNCHECKED, Verdict, setup, verdict};
use crate::demo_report::{describe_problem, print_checks, row};
use crate::timed::{Call, Calls, ms, timed_calls};

/// The demo on the CPU layer; see the module's documentation.
pub(crate) fn run(args: &DemoArgs, tamper: Tamper<'_>, report: &mut Report) -> Result<Verdict, Failure> {
    let process = Instant::now();
    let setup = setup(args)?;
    let Setup { config, dims, options, query, value, key, weights } = &setup;
    let setup_time = process.elapsed();
    let described = crate::cpu_layer::describe();
    report.insert("adapter".into(), json!(described));
    report.insert("adapter_info".into(), crate::cpu_layer::info());

    let started = Instant::now();
    let layer = CpuLayer::new(config.clone(), weights.clone())?;
    let layer_time = started.elapsed();
    let problem = Problem::new(config, query.shape(), value.shape(), key.as_ref().map(HostTensor::shape), options)?;
    let flops = crate::cpu_layer::flops(&problem, problem.source_len);

    say!("device    {described}");
    say!("precision F32");
    say!("problem   {}", describe_problem(args, config, *dims, options));
    say!(
        "plan      the projections as GEMMs (faer) and a grouped flash attention, on {} thread(s); {:.1} MFLOP",
        crate::cpu_layer::threads(),
        flops / 1e6
    );
    say!();

    let mut warmup_output: Option<Vec<f32>> = None;
    let mut differ = Vec::new();
    let mut oracle = || Ok(gqa_ref::forward(config, weights, query, value, key.as_ref(), options)?);
    let timed = timed_calls(
        args.runs as usize,
        Tolerance::F32,
        Calls {
            call: &mut || -> Result<_, Failure> { Ok(layer.forward(query, value, key.as_ref(), options)?) },
            oracle: if args.no_oracle { None } else { Some(&mut oracle) },
            before: &mut || Ok(()),
            tamper: &mut |call, out| {
                tamper(call, out);
                match call {
                    Call::WarmUp => warmup_output = Some(out.output.data().to_vec()),
                    Call::Timed(i) if warmup_output.as_deref() != Some(out.output.data()) => differ.push(i + 1),
                    _ => {}
                }
            },
        },
    )?;
    let first_output = timed.warmed_up.duration_since(process);
    let median = timed.median();
    report.insert("threads".into(), json!(crate::cpu_layer::threads()));
    report.insert("warmup_ms".into(), json!(ms(timed.warmup)));
    report.insert("ms".into(), json!(ms(median)));
    report.insert("cpu_ms".into(), json!(ms(median)));
    report.insert("cpu_gflops".into(), json!(flops / median.as_secs_f64() / 1e9));
    report.insert("oracle_ms".into(), json!(timed.checks.as_ref().map(|c| ms(c.oracle_time))));
    let mut times = timed.times.clone();
    times.sort();
    let timed_verdict = match &timed.checks {
        None => "UNCHECKED".to_string(),
        Some(c) => {
            let (passed, total) = c.tally(|call| matches!(call, Call::Timed(_)));
            format!("checked: {passed} of {total} outputs {}", if passed == total { "PASS" } else { "FAIL" })
        }
    };

    if timed.checks.is_none() {
        say!("{UNCHECKED}");
    }
    say!("{:<36} {:>12} {:>9}", "step", "time (ms)", "GFLOP/s");
    row("setup: random weights, inputs (CPU)", setup_time, None, "");
    row("layer: weights checked and copied", layer_time, None, "");
    row("forward: first call", timed.warmup, Some(flops), "");
    row("cold start: main to first output", first_output, None, "the setup included");
    let spread = format!("min {:.3}, max {:.3}; {timed_verdict}", ms(times[0]), ms(times[times.len() - 1]));
    row(&format!("forward: median of {}", args.runs), median, Some(flops), &spread);
    if let Some(c) = &timed.checks {
        row("oracle: CPU, f64, one thread", c.oracle_time, Some(flops), "");
    }
    if !differ.is_empty() {
        say!("note: timed run(s) {differ:?} gave an output that differs bitwise from the warm-up's");
    }
    if let Some(c) = &timed.checks {
        say!("\ncheck: every output against the oracle, {}", c.tolerance);
        print_checks(c, |_| true);
    }
    Ok(verdict(timed.checks))
}
