//! The timing and checking core of `gqa demo` and `gqa bench`: one untimed warm-up call, the
//! oracle (once, after the warm-up, so that cold-start figures do not count it), then `runs` timed
//! calls, each preceded by an untimed step (a roofline probe). Every output the GPU gives goes
//! through a tamper hook (the tests perturb one there) and is compared with the oracle's
//! elementwise ([`gqa_ref::check`]): a timing counts only from a checked run.

use std::fmt;
use std::time::{Duration, Instant};

use gqa_core::{ForwardOutput, HostTensor};
use gqa_ref::check::{Comparison, OutputComparison, Tolerance, compare_outputs, compare_tensors};

/// Which GPU call an output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// The untimed first call (it compiles the kernels it uses).
    WarmUp,
    /// Timed call `i` (from 0).
    Timed(usize),
    /// Profiling round `i` (from 0): the plan's steps each submitted alone.
    ProfileRound(usize),
    /// The decode step's attention timer, after its timed runs (the rest of its plan run after them).
    AttentionTimer,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::WarmUp => write!(f, "the warm-up call"),
            Call::Timed(i) => write!(f, "timed call {}", i + 1),
            Call::ProfileRound(i) => write!(f, "profile round {}", i + 1),
            Call::AttentionTimer => write!(f, "the attention timer's run"),
        }
    }
}

/// A GPU output that can be compared with the oracle's.
pub(crate) trait Checkable {
    /// The result of one comparison, printable as one line.
    type Comparison: fmt::Display;
    /// Compares `self` (the GPU's) with `want` (the oracle's).
    fn compare(&self, want: &Self, tolerance: Tolerance) -> Self::Comparison;
    /// Whether every element of the comparison was within tolerance.
    fn passed(comparison: &Self::Comparison) -> bool;
}

impl Checkable for HostTensor {
    type Comparison = Comparison;

    fn compare(&self, want: &Self, tolerance: Tolerance) -> Comparison {
        compare_tensors(self, want, tolerance)
    }

    fn passed(comparison: &Comparison) -> bool {
        comparison.passed()
    }
}

/// The output and, when returned, the scores.
impl Checkable for ForwardOutput {
    type Comparison = OutputComparison;

    fn compare(&self, want: &Self, tolerance: Tolerance) -> OutputComparison {
        compare_outputs(self, want, tolerance)
    }

    fn passed(comparison: &OutputComparison) -> bool {
        comparison.passed()
    }
}

/// The oracle's output and every comparison made with it, in the order the calls ran.
pub(crate) struct Checks<T: Checkable> {
    /// The oracle's output.
    pub(crate) want: T,
    /// How long the oracle took.
    pub(crate) oracle_time: Duration,
    /// The tolerance of every comparison.
    pub(crate) tolerance: Tolerance,
    /// Each checked output.
    pub(crate) results: Vec<(Call, T::Comparison)>,
}

impl<T: Checkable> Checks<T> {
    /// No comparison yet.
    pub(crate) fn new(want: T, oracle_time: Duration, tolerance: Tolerance) -> Self {
        Self { want, oracle_time, tolerance, results: Vec::new() }
    }

    /// Compares `got` with the oracle's output and records it.
    pub(crate) fn check(&mut self, call: Call, got: &T) {
        self.results.push((call, got.compare(&self.want, self.tolerance)));
    }

    /// (passed, checked) over the calls `which` selects.
    pub(crate) fn tally(&self, which: impl Fn(Call) -> bool) -> (usize, usize) {
        let chosen = self.results.iter().filter(|(call, _)| which(*call));
        chosen.fold((0, 0), |(p, n), (_, c)| (p + usize::from(T::passed(c)), n + 1))
    }

    /// The calls whose output was out of tolerance, in the order they ran.
    pub(crate) fn failed(&self) -> Vec<Call> {
        self.results.iter().filter(|(_, c)| !T::passed(c)).map(|(call, _)| *call).collect()
    }
}

/// What [`timed_calls`] measured.
pub(crate) struct TimedCalls<T: Checkable, P> {
    /// The warm-up call's time.
    pub(crate) warmup: Duration,
    /// When the warm-up's output was there.
    pub(crate) warmed_up: Instant,
    /// Each timed call's time, in the order they ran.
    pub(crate) times: Vec<Duration>,
    /// What the untimed step before each timed call gave, in the same order.
    pub(crate) before: Vec<P>,
    /// The oracle's output and every comparison with it (`None` without the oracle: unchecked).
    pub(crate) checks: Option<Checks<T>>,
}

impl<T: Checkable, P> TimedCalls<T, P> {
    /// The timed calls' median.
    pub(crate) fn median(&self) -> Duration {
        let mut sorted = self.times.clone();
        sorted.sort();
        sorted[sorted.len() / 2]
    }
}

/// The calls one measurement makes; see the module's documentation for the order.
pub(crate) struct Calls<'a, T, P, E> {
    /// One GPU call, giving its output.
    pub(crate) call: &'a mut dyn FnMut() -> Result<T, E>,
    /// The oracle (run once, after the warm-up, timed), or `None` to check nothing.
    pub(crate) oracle: Option<&'a mut dyn FnMut() -> Result<T, E>>,
    /// The untimed step just before each timed call.
    pub(crate) before: &'a mut dyn FnMut() -> Result<P, E>,
    /// Applied to each GPU output before it is checked.
    pub(crate) tamper: &'a mut dyn FnMut(Call, &mut T),
}

/// Runs the warm-up, the oracle and `runs` timed calls (at least one), checking every output.
pub(crate) fn timed_calls<T: Checkable, P, E>(
    runs: usize,
    tolerance: Tolerance,
    calls: Calls<'_, T, P, E>,
) -> Result<TimedCalls<T, P>, E> {
    let Calls { call, oracle, before, tamper } = calls;
    let started = Instant::now();
    let mut first = call()?;
    let warmup = started.elapsed();
    let warmed_up = Instant::now();
    tamper(Call::WarmUp, &mut first);
    let mut checks = match oracle {
        None => None,
        Some(oracle) => {
            let started = Instant::now();
            let want = oracle()?;
            Some(Checks::new(want, started.elapsed(), tolerance))
        }
    };
    if let Some(c) = checks.as_mut() {
        c.check(Call::WarmUp, &first);
    }
    drop(first);
    let runs = runs.max(1);
    let (mut times, mut befores) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for i in 0..runs {
        befores.push(before()?);
        let started = Instant::now();
        let mut got = call()?;
        times.push(started.elapsed());
        tamper(Call::Timed(i), &mut got);
        if let Some(c) = checks.as_mut() {
            c.check(Call::Timed(i), &got);
        }
    }
    Ok(TimedCalls { warmup, warmed_up, times, before: befores, checks })
}

/// Milliseconds.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    //! The core on a fake call: the order of the calls, the tamper hook and the checks.

    use super::*;

    fn tensor(x: f32) -> HostTensor {
        HostTensor::new(vec![1, 2], vec![x, 1.0]).unwrap()
    }

    #[test]
    fn every_output_is_checked_and_a_tampered_one_fails() {
        let log = std::cell::RefCell::new(Vec::new());
        let mut call = || -> Result<HostTensor, ()> {
            log.borrow_mut().push("call");
            Ok(tensor(0.5))
        };
        let mut oracle = || -> Result<HostTensor, ()> {
            log.borrow_mut().push("oracle");
            Ok(tensor(0.5))
        };
        let mut probe = || -> Result<u32, ()> {
            log.borrow_mut().push("probe");
            Ok(7)
        };
        let mut tamper = |call: Call, out: &mut HostTensor| {
            if call == Call::Timed(1) {
                *out = tensor(0.6);
            }
        };
        let calls = Calls { call: &mut call, oracle: Some(&mut oracle), before: &mut probe, tamper: &mut tamper };
        let got = timed_calls(3, Tolerance::F32, calls).unwrap();
        assert_eq!(
            *log.borrow(),
            ["call", "oracle", "probe", "call", "probe", "call", "probe", "call"],
            "the oracle runs after the warm-up, a probe before each timed call"
        );
        assert_eq!((got.times.len(), &got.before[..]), (3, &[7; 3][..]));
        assert!(got.median() <= got.times.iter().copied().max().unwrap());
        let checks = got.checks.unwrap();
        assert_eq!(checks.tally(|_| true), (3, 4));
        assert_eq!(checks.tally(|c| c == Call::WarmUp), (1, 1));
        assert_eq!(checks.failed(), [Call::Timed(1)]);
    }

    #[test]
    fn without_the_oracle_nothing_is_checked() {
        let mut call = || -> Result<HostTensor, ()> { Ok(tensor(0.5)) };
        let calls = Calls { call: &mut call, oracle: None, before: &mut || Ok(()), tamper: &mut |_, _| {} };
        let got = timed_calls(0, Tolerance::F32, calls).unwrap();
        assert_eq!(got.times.len(), 1, "at least one timed call");
        assert!(got.checks.is_none());
    }

    #[test]
    fn calls_are_named() {
        let names = [Call::WarmUp, Call::Timed(1), Call::ProfileRound(0), Call::AttentionTimer].map(|c| c.to_string());
        assert_eq!(names, ["the warm-up call", "timed call 2", "profile round 1", "the attention timer's run"]);
    }
}
