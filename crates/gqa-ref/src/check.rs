//! The check every reported result goes through: a result compared element by element with the
//! oracle's at the same shape, `|got - want| <= atol + rtol * |want|`.
//!
//! A timing counts only from a checked run: `gqa demo`, `gqa bench` and the criterion benches
//! compare each timed output with [`forward`](crate::forward())'s through [`compare_outputs`]
//! (or [`compare`] / [`compare_tensors`] for one tensor), so that they all apply the same rule:
//!
//! - finite values pass when `|got - want| <= atol + rtol * |want|` ([`Tolerance::accepts`]);
//! - NaN must agree: a NaN passes only against a NaN;
//! - infinities must be equal (same sign);
//! - the shapes must be equal: when they differ nothing is compared and the comparison fails.
//!
//! ```
//! use gqa_ref::check::{Tolerance, compare};
//!
//! let oracle = [1.0, -2.0, f32::NAN];
//! let good = compare(&[1.000_01, -2.0, f32::NAN], &oracle, Tolerance::F32);
//! assert!(good.passed());
//! let bad = compare(&[1.0, -2.1, 0.0], &oracle, Tolerance::F32);
//! assert!(!bad.passed());
//! assert_eq!(bad.out_of_tolerance, 2);
//! assert_eq!(bad.first_bad.unwrap().index, 1);
//! ```

use std::fmt;

use gqa_core::{ForwardOutput, HostTensor, Precision};

/// Elements with `|want|` below this are left out of [`Comparison::max_rel`] (a relative error
/// near zero means little; the absolute part of the tolerance covers them).
pub const REL_FLOOR: f32 = 1e-3;

/// The elementwise tolerance `|got - want| <= atol + rtol * |want|`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// The absolute part.
    pub atol: f32,
    /// The relative part, a fraction of `|want|`.
    pub rtol: f32,
}

impl Tolerance {
    /// The project's tolerance for f32 layers: atol 1e-5, rtol 1e-4.
    pub const F32: Self = Self { atol: 1e-5, rtol: 1e-4 };

    /// The tolerance for layers that store in f16 and accumulate in f32, against the f64 oracle:
    /// atol = rtol = 5e-3 (ONNX Runtime's for its float16 GroupQueryAttention).
    pub const F16: Self = Self { atol: 5e-3, rtol: 5e-3 };

    /// The tolerance for a layer running in `precision` ([`Tolerance::F32`] or [`Tolerance::F16`]).
    pub fn for_precision(precision: Precision) -> Self {
        match precision {
            Precision::F32 => Self::F32,
            Precision::F16 => Self::F16,
        }
    }

    /// Whether `got` passes against the oracle's `want`: within `atol + rtol * |want|` when both
    /// are finite; NaN only against NaN; an infinity only against the same infinity.
    pub fn accepts(self, got: f32, want: f32) -> bool {
        if got.is_nan() || want.is_nan() {
            got.is_nan() && want.is_nan()
        } else if got.is_infinite() || want.is_infinite() {
            got == want
        } else {
            (got - want).abs() <= self.atol + self.rtol * want.abs()
        }
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "|got - oracle| <= {:e} + {:e} * |oracle|", self.atol, self.rtol)
    }
}

/// One element out of tolerance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mismatch {
    /// Its flat (row-major) index.
    pub index: usize,
    /// The value compared.
    pub got: f32,
    /// The oracle's value.
    pub want: f32,
}

/// The result of comparing one tensor with the oracle's.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The tolerance applied.
    pub tolerance: Tolerance,
    /// The shape of the tensor compared.
    pub got_shape: Vec<usize>,
    /// The shape of the oracle's tensor.
    pub want_shape: Vec<usize>,
    /// The number of elements compared (0 when the shapes differ).
    pub elements: usize,
    /// The number of elements out of tolerance. When the shapes differ nothing is compared and
    /// every element of the oracle's tensor counts as out of tolerance.
    pub out_of_tolerance: usize,
    /// The largest `|got - want|` over the elements where both are finite (0 when there is none).
    /// Non-finite disagreements are counted in `out_of_tolerance`, not here.
    pub max_abs: f32,
    /// The largest `|got - want| / |want|` over the finite elements with `|want| >= REL_FLOOR`.
    pub max_rel: f32,
    /// The first element out of tolerance, in flat order.
    pub first_bad: Option<Mismatch>,
}

impl Comparison {
    /// Whether the shapes are equal and every element is within tolerance.
    pub fn passed(&self) -> bool {
        self.shapes_match() && self.out_of_tolerance == 0
    }

    /// Whether the two tensors have the same shape.
    pub fn shapes_match(&self) -> bool {
        self.got_shape == self.want_shape
    }

    /// `PASS` or `FAIL`.
    pub fn verdict(&self) -> &'static str {
        if self.passed() { "PASS" } else { "FAIL" }
    }
}

impl fmt::Display for Comparison {
    /// One line: `max abs err 1.2e-6, max rel err 3.4e-5, 0 of 4096 out of tolerance: PASS`, with
    /// the first element out of tolerance when there is one, or the two shapes when they differ.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.shapes_match() {
            return write!(f, "shape {:?} against the oracle's {:?}: FAIL", self.got_shape, self.want_shape);
        }
        write!(
            f,
            "max abs err {:.3e}, max rel err {:.3e} (|oracle| >= {REL_FLOOR:e}), {} of {} out of tolerance: {}",
            self.max_abs,
            self.max_rel,
            self.out_of_tolerance,
            self.elements,
            self.verdict()
        )?;
        if let Some(m) = self.first_bad {
            write!(f, "; first at flat index {}: got {} vs oracle {}", m.index, m.got, m.want)?;
        }
        Ok(())
    }
}

/// Compares `got` with the oracle's `want` element by element (both flat; a length mismatch fails
/// as a shape mismatch).
pub fn compare(got: &[f32], want: &[f32], tolerance: Tolerance) -> Comparison {
    compare_shaped(got, &[got.len()], want, &[want.len()], tolerance)
}

/// Compares two tensors element by element; their shapes must be equal.
pub fn compare_tensors(got: &HostTensor, want: &HostTensor, tolerance: Tolerance) -> Comparison {
    compare_shaped(got.data(), got.shape(), want.data(), want.shape(), tolerance)
}

fn compare_shaped(
    got: &[f32],
    got_shape: &[usize],
    want: &[f32],
    want_shape: &[usize],
    tolerance: Tolerance,
) -> Comparison {
    let mut c = Comparison {
        tolerance,
        got_shape: got_shape.to_vec(),
        want_shape: want_shape.to_vec(),
        elements: 0,
        out_of_tolerance: 0,
        max_abs: 0.0,
        max_rel: 0.0,
        first_bad: None,
    };
    if !c.shapes_match() || got.len() != want.len() {
        c.out_of_tolerance = want.len();
        return c;
    }
    c.elements = got.len();
    for (index, (&g, &w)) in got.iter().zip(want).enumerate() {
        if g.is_finite() && w.is_finite() {
            let diff = (g - w).abs();
            c.max_abs = c.max_abs.max(diff);
            if w.abs() >= REL_FLOOR {
                c.max_rel = c.max_rel.max(diff / w.abs());
            }
        }
        if !tolerance.accepts(g, w) {
            c.out_of_tolerance += 1;
            c.first_bad.get_or_insert(Mismatch { index, got: g, want: w });
        }
    }
    c
}

/// How the attention scores of a call compared.
#[derive(Debug, Clone, PartialEq)]
pub enum ScoresComparison {
    /// Neither side has scores (none were requested).
    Neither,
    /// Both have scores, compared.
    Compared(Comparison),
    /// Only the result checked has scores.
    OnlyGot,
    /// Only the oracle has scores.
    OnlyWant,
}

/// A whole call's result (output and scores) compared with the oracle's.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputComparison {
    /// The output (B, T, Dq).
    pub output: Comparison,
    /// The scores (B, Nq, T, S), when either side has them.
    pub scores: ScoresComparison,
}

impl OutputComparison {
    /// Whether the output passed and the scores passed (or neither side has scores).
    pub fn passed(&self) -> bool {
        self.output.passed()
            && match &self.scores {
                ScoresComparison::Neither => true,
                ScoresComparison::Compared(c) => c.passed(),
                ScoresComparison::OnlyGot | ScoresComparison::OnlyWant => false,
            }
    }

    /// The largest finite `|got - want|` over the output and the scores.
    pub fn max_abs(&self) -> f32 {
        match &self.scores {
            ScoresComparison::Compared(c) => self.output.max_abs.max(c.max_abs),
            _ => self.output.max_abs,
        }
    }

    /// The largest relative error over the output and the scores (see [`Comparison::max_rel`]).
    pub fn max_rel(&self) -> f32 {
        match &self.scores {
            ScoresComparison::Compared(c) => self.output.max_rel.max(c.max_rel),
            _ => self.output.max_rel,
        }
    }

    /// The elements out of tolerance in the output and the scores together.
    pub fn out_of_tolerance(&self) -> usize {
        match &self.scores {
            ScoresComparison::Compared(c) => self.output.out_of_tolerance + c.out_of_tolerance,
            _ => self.output.out_of_tolerance,
        }
    }

    /// `PASS` or `FAIL`.
    pub fn verdict(&self) -> &'static str {
        if self.passed() { "PASS" } else { "FAIL" }
    }
}

impl fmt::Display for OutputComparison {
    /// `output: ...` and, when there are scores on either side, `; scores: ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "output {}", self.output)?;
        match &self.scores {
            ScoresComparison::Neither => Ok(()),
            ScoresComparison::Compared(c) => write!(f, "; scores {c}"),
            ScoresComparison::OnlyGot => write!(f, "; scores present but the oracle has none: FAIL"),
            ScoresComparison::OnlyWant => write!(f, "; scores missing (the oracle has them): FAIL"),
        }
    }
}

/// Compares a call's output (and scores) with the oracle's.
pub fn compare_outputs(got: &ForwardOutput, want: &ForwardOutput, tolerance: Tolerance) -> OutputComparison {
    let scores = match (&got.scores, &want.scores) {
        (None, None) => ScoresComparison::Neither,
        (Some(g), Some(w)) => ScoresComparison::Compared(compare_tensors(g, w, tolerance)),
        (Some(_), None) => ScoresComparison::OnlyGot,
        (None, Some(_)) => ScoresComparison::OnlyWant,
    };
    OutputComparison { output: compare_tensors(&got.output, &want.output, tolerance), scores }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(shape: &[usize], data: &[f32]) -> HostTensor {
        HostTensor::new(shape.to_vec(), data.to_vec()).unwrap()
    }

    #[test]
    fn equal_values_pass() {
        let c = compare(&[1.0, -2.0, 0.0, 3.5], &[1.0, -2.0, 0.0, 3.5], Tolerance::F32);
        assert!(c.passed(), "{c}");
        assert_eq!((c.elements, c.out_of_tolerance, c.max_abs, c.max_rel, c.first_bad), (4, 0, 0.0, 0.0, None));
        assert!(c.to_string().ends_with("0 of 4 out of tolerance: PASS"), "{c}");
    }

    #[test]
    fn the_tolerance_is_atol_plus_rtol_times_the_oracle() {
        let t = Tolerance { atol: 1e-3, rtol: 1e-2 };
        // At want = 10 the bound is 1e-3 + 0.1.
        assert!(t.accepts(10.1, 10.0));
        assert!(!t.accepts(10.102, 10.0));
        // Relative to the oracle's value, not to got's.
        assert!(t.accepts(0.0, 0.0009));
        assert!(!t.accepts(0.0011, 0.0));
        assert!(Tolerance::F32.accepts(1.0 + 1e-4, 1.0));
        assert!(!Tolerance::F32.accepts(1.0 + 2e-4, 1.0));
    }

    #[test]
    fn one_perturbed_element_fails_and_is_named() {
        let want: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut got = want.clone();
        got[42] += 1e-3;
        let c = compare(&got, &want, Tolerance::F32);
        assert!(!c.passed(), "{c}");
        assert_eq!(c.out_of_tolerance, 1);
        assert_eq!(c.first_bad, Some(Mismatch { index: 42, got: got[42], want: want[42] }));
        assert!((c.max_abs - 1e-3).abs() < 1e-6, "{}", c.max_abs);
        assert!(c.to_string().contains("FAIL") && c.to_string().contains("flat index 42"), "{c}");
        // Within tolerance the same perturbation passes.
        assert!(compare(&got, &want, Tolerance { atol: 2e-3, rtol: 0.0 }).passed());
    }

    #[test]
    fn nan_must_agree() {
        assert!(compare(&[f32::NAN, 1.0], &[f32::NAN, 1.0], Tolerance::F32).passed());
        let gpu_nan = compare(&[f32::NAN, 1.0], &[0.5, 1.0], Tolerance::F32);
        assert!(!gpu_nan.passed());
        assert_eq!(gpu_nan.out_of_tolerance, 1);
        assert_eq!(gpu_nan.first_bad.unwrap().index, 0);
        // NaN is not folded into the finite error figures.
        assert_eq!(gpu_nan.max_abs, 0.0);
        let oracle_nan = compare(&[0.5, 1.0], &[f32::NAN, 1.0], Tolerance::F32);
        assert!(!oracle_nan.passed());
        // A wide tolerance does not let NaN through.
        assert!(!compare(&[f32::NAN], &[0.0], Tolerance { atol: f32::MAX, rtol: 1.0 }).passed());
    }

    #[test]
    fn infinities_must_be_equal() {
        assert!(compare(&[f32::INFINITY], &[f32::INFINITY], Tolerance::F32).passed());
        assert!(!compare(&[f32::INFINITY], &[f32::NEG_INFINITY], Tolerance::F32).passed());
        assert!(!compare(&[f32::INFINITY], &[1e30], Tolerance { atol: f32::MAX, rtol: 1.0 }).passed());
        assert!(!compare(&[1e30], &[f32::INFINITY], Tolerance::F32).passed());
    }

    #[test]
    fn shapes_must_be_equal() {
        let c = compare(&[1.0, 2.0], &[1.0, 2.0, 3.0], Tolerance::F32);
        assert!(!c.passed());
        assert_eq!((c.elements, c.out_of_tolerance), (0, 3));
        assert!(c.to_string().contains("shape [2] against the oracle's [3]"), "{c}");
        let (a, b) = (tensor(&[2, 3], &[0.0; 6]), tensor(&[3, 2], &[0.0; 6]));
        let c = compare_tensors(&a, &b, Tolerance::F32);
        assert!(!c.passed() && !c.shapes_match(), "{c}");
        assert!(compare_tensors(&a, &a, Tolerance::F32).passed());
    }

    #[test]
    fn relative_error_ignores_oracle_values_near_zero() {
        let c = compare(&[1e-5, 2.0], &[1e-6, 2.0002], Tolerance::F32);
        assert!(c.passed(), "{c}");
        assert!((c.max_rel - 1e-4).abs() < 1e-5, "{}", c.max_rel);
    }

    #[test]
    fn outputs_compare_output_and_scores() {
        let out = |o: &[f32], s: Option<&[f32]>| ForwardOutput {
            output: tensor(&[1, 1, o.len()], o),
            scores: s.map(|s| tensor(&[1, 1, 1, s.len()], s)),
        };
        let want = out(&[1.0, 2.0], Some(&[0.25, 0.75]));
        assert!(compare_outputs(&want, &want, Tolerance::F32).passed());
        let bad_scores = compare_outputs(&out(&[1.0, 2.0], Some(&[0.25, 0.8])), &want, Tolerance::F32);
        assert!(!bad_scores.passed());
        assert!(bad_scores.output.passed());
        assert_eq!(bad_scores.out_of_tolerance(), 1);
        assert!((bad_scores.max_abs() - 0.05).abs() < 1e-6);
        assert!(bad_scores.to_string().contains("scores max abs err"), "{bad_scores}");
        let missing = compare_outputs(&out(&[1.0, 2.0], None), &want, Tolerance::F32);
        assert!(!missing.passed() && missing.scores == ScoresComparison::OnlyWant);
        let extra = compare_outputs(&want, &out(&[1.0, 2.0], None), Tolerance::F32);
        assert!(!extra.passed() && extra.scores == ScoresComparison::OnlyGot);
        let bad_output = compare_outputs(&out(&[1.0, 2.1], None), &out(&[1.0, 2.0], None), Tolerance::F32);
        assert!(!bad_output.passed() && bad_output.scores == ScoresComparison::Neither);
        assert_eq!(bad_output.verdict(), "FAIL");
    }

    #[test]
    fn tolerance_follows_the_precision() {
        assert_eq!(Tolerance::for_precision(Precision::F32), Tolerance::F32);
        assert_eq!(Tolerance::for_precision(Precision::F16), Tolerance::F16);
        assert!(Tolerance::F16.accepts(1.004, 1.0) && !Tolerance::F32.accepts(1.004, 1.0));
    }
}
