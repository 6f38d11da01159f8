//! Keras weight constraints, applied to weights as stored.

use gqa_core::{Constraint, GqaConfig, GqaError, HostTensor, Weights};

/// Keras' `backend.epsilon()`, added to norms before dividing.
pub const EPSILON: f64 = 1e-7;

/// Applies one constraint to a tensor in place, with Keras' formulas (in f64, rounded to f32):
///
/// - `MaxNorm`: `norms = sqrt(Σ w² over axis)`, `w *= clip(norms, 0, max_value) / (1e-7 + norms)`;
/// - `MinMaxNorm`: `w *= (rate·clip(norms, min, max) + (1 - rate)·norms) / (1e-7 + norms)`;
/// - `NonNeg`: `w *= (w >= 0)` (so negatives become 0, NaN stays NaN);
/// - `UnitNorm`: `w /= 1e-7 + norms`.
///
/// Axes refer to the tensor as stored; negative axes count from the end; an empty list takes each
/// element's own absolute value as its norm (numpy's `sum(axis=())`). An invalid constraint, an
/// axis out of range or a repeated axis is an error, and then the tensor is left unchanged.
pub fn apply_constraint(c: &Constraint, tensor: &mut HostTensor) -> Result<(), GqaError> {
    c.validate()?;
    let axis = match c {
        Constraint::NonNeg => {
            for w in tensor.data_mut() {
                *w *= if *w >= 0.0 { 1.0 } else { 0.0 };
            }
            return Ok(());
        }
        Constraint::MaxNorm { axis, .. } | Constraint::MinMaxNorm { axis, .. } | Constraint::UnitNorm { axis } => axis,
    };
    // The norm each slice should have (validated bounds, so `clamp` cannot panic).
    let desired = |n: f64| match *c {
        Constraint::MaxNorm { max_value, .. } => n.clamp(0.0, max_value),
        Constraint::MinMaxNorm { min_value, max_value, rate, .. } => {
            rate * n.clamp(min_value, max_value) + (1.0 - rate) * n
        }
        _ => 1.0,
    };
    let reduced = normalise_axes(tensor.shape(), axis)?;
    let groups = group_index(tensor.shape(), &reduced);
    let norms = slice_norms(tensor.shape(), tensor.data(), &reduced, &groups);
    for (w, g) in tensor.data_mut().iter_mut().zip(groups) {
        let n = norms[g];
        *w = (f64::from(*w) * (desired(n) / (EPSILON + n))) as f32;
    }
    Ok(())
}

/// Applies `kernel_constraint` to every kernel and `bias_constraint` to every bias present.
/// Stops at the first error (weights before it are already constrained).
pub fn apply_constraints(config: &GqaConfig, weights: &mut Weights) -> Result<(), GqaError> {
    for which in gqa_core::Dense::ALL {
        if let Some(d) = weights.dense_mut(which) {
            if let Some(c) = &config.kernel_constraint {
                apply_constraint(c, &mut d.kernel)?;
            }
            if let (Some(c), Some(b)) = (&config.bias_constraint, d.bias.as_mut()) {
                apply_constraint(c, b)?;
            }
        }
    }
    Ok(())
}

/// The axes as non-negative indices, checked: in range for the rank and not repeated.
fn normalise_axes(shape: &[usize], axis: &[i64]) -> Result<Vec<usize>, GqaError> {
    let rank = shape.len() as i64;
    let mut out = Vec::with_capacity(axis.len());
    for &a in axis {
        let i = if a < 0 { a + rank } else { a };
        if !(0..rank).contains(&i) {
            return Err(GqaError::InvalidConfigValue {
                what: format!("constraint axis {a}"),
                reason: format!("out of range for a weight of shape {shape:?}"),
            });
        }
        if out.contains(&(i as usize)) {
            return Err(GqaError::InvalidConfigValue {
                what: format!("constraint axis {axis:?}"),
                reason: format!("axis {a} is repeated"),
            });
        }
        out.push(i as usize);
    }
    Ok(out)
}

/// For each element (row-major), the index of its slice: its coordinates on the kept axes, flattened.
fn group_index(shape: &[usize], reduced: &[usize]) -> Vec<usize> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    for flat in 0..n {
        let (mut rest, mut group, mut group_stride) = (flat, 0, 1);
        for (axis, &dim) in shape.iter().enumerate().rev() {
            let coord = rest % dim;
            rest /= dim;
            if !reduced.contains(&axis) {
                group += coord * group_stride;
                group_stride *= dim;
            }
        }
        out.push(group);
    }
    out
}

/// `sqrt(Σ w²)` over the `reduced` axes, one norm per slice (`groups` from [`group_index`]).
fn slice_norms(shape: &[usize], data: &[f32], reduced: &[usize], groups: &[usize]) -> Vec<f64> {
    let slices: usize = shape.iter().enumerate().filter(|(a, _)| !reduced.contains(a)).map(|(_, &d)| d).product();
    let mut sums = vec![0.0f64; slices];
    for (&w, &g) in data.iter().zip(groups) {
        sums[g] += f64::from(w).powi(2);
    }
    sums.into_iter().map(f64::sqrt).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gqa_core::{DenseWeights, LayerDims};

    fn t(shape: &[usize], data: &[f32]) -> HostTensor {
        HostTensor::new(shape.to_vec(), data.to_vec()).unwrap()
    }

    fn close(a: &HostTensor, b: &[f32]) {
        for (x, y) in a.data().iter().zip(b) {
            assert!((x - y).abs() < 1e-6, "{:?} vs {b:?}", a.data());
        }
    }

    #[test]
    fn max_norm_along_axis_0() {
        // (2, 2): columns are the slices along axis 0: norms 5 and 0.5.
        let mut w = t(&[2, 2], &[3.0, 0.3, 4.0, 0.4]);
        let c = Constraint::MaxNorm { max_value: 2.0, axis: vec![0] };
        apply_constraint(&c, &mut w).unwrap();
        let k = 2.0 / (5.0 + 1e-7);
        let small = 0.5 / (0.5 + 1e-7);
        close(&w, &[3.0 * k, 0.3 * small, 4.0 * k, 0.4 * small]);
        // axis -1: rows (3, 0.3) and (4, 0.4).
        let mut w = t(&[2, 2], &[3.0, 0.0, 0.0, 1.0]);
        apply_constraint(&Constraint::MaxNorm { max_value: 2.0, axis: vec![-1] }, &mut w).unwrap();
        close(&w, &[2.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn max_norm_over_several_axes_of_a_kernel() {
        // (2, 2, 2) over axes [0, 2]: slice j = w[:, j, :].
        let data = [1.0, 1.0, 2.0, 0.0, 1.0, 1.0, 0.0, 2.0];
        let mut w = t(&[2, 2, 2], &data);
        apply_constraint(&Constraint::MaxNorm { max_value: 1.0, axis: vec![0, 2] }, &mut w).unwrap();
        // Slice 0: 1,1,1,1 -> norm 2; slice 1: 2,0,0,2 -> norm sqrt 8.
        let (a, b) = (1.0 / 2.0, 1.0 / 8.0f32.sqrt());
        close(&w, &[a, a, 2.0 * b, 0.0, a, a, 0.0, 2.0 * b]);
    }

    #[test]
    fn min_max_norm_with_rate() {
        let mut w = t(&[2, 2], &[3.0, 0.3, 4.0, 0.4]);
        let c = Constraint::MinMaxNorm { min_value: 1.0, max_value: 2.0, rate: 0.5, axis: vec![0] };
        apply_constraint(&c, &mut w).unwrap();
        // Column 0: norm 5 -> 0.5*2 + 0.5*5 = 3.5; column 1: norm 0.5 -> 0.5*1 + 0.5*0.5 = 0.75.
        close(&w, &[3.0 * 3.5 / 5.0, 0.3 * 0.75 / 0.5, 4.0 * 3.5 / 5.0, 0.4 * 0.75 / 0.5]);
    }

    #[test]
    fn non_neg_and_unit_norm() {
        let mut w = t(&[4], &[-1.0, 2.0, 0.0, f32::NAN]);
        apply_constraint(&Constraint::NonNeg, &mut w).unwrap();
        assert_eq!(&w.data()[..3], &[0.0, 2.0, 0.0]);
        assert!(w.data()[3].is_nan());
        let mut w = t(&[2, 2], &[3.0, 0.0, 4.0, 2.0]);
        apply_constraint(&Constraint::UnitNorm { axis: vec![0] }, &mut w).unwrap();
        close(&w, &[0.6, 0.0, 0.8, 1.0]);
        let mut w = t(&[2], &[-3.0, 0.5]);
        apply_constraint(&Constraint::UnitNorm { axis: vec![] }, &mut w).unwrap();
        close(&w, &[-1.0, 1.0]);
    }

    #[test]
    fn bad_axes_are_errors_and_leave_the_tensor() {
        let mut w = t(&[2, 2], &[3.0, 0.3, 4.0, 0.4]);
        for axis in [vec![2], vec![-3], vec![0, -2]] {
            let err = apply_constraint(&Constraint::UnitNorm { axis }, &mut w).unwrap_err();
            assert!(matches!(err, GqaError::InvalidConfigValue { .. }), "{err}");
        }
        let bad = Constraint::MaxNorm { max_value: -1.0, axis: vec![0] };
        assert!(apply_constraint(&bad, &mut w).is_err());
        assert_eq!(w.data(), &[3.0, 0.3, 4.0, 0.4]);
    }

    #[test]
    fn kernels_and_biases_get_their_own_constraint() {
        let mut cfg = GqaConfig::new(1, 1, 1);
        let dense = |k: &[usize], b: &[usize]| DenseWeights {
            kernel: HostTensor::new(k.to_vec(), vec![-3.0; k.iter().product()]).unwrap(),
            bias: Some(HostTensor::new(b.to_vec(), vec![-1.0; b.iter().product()]).unwrap()),
        };
        let mut w = Weights {
            query: dense(&[2, 1, 1], &[1, 1]),
            key: dense(&[2, 1, 1], &[1, 1]),
            gate: None,
            value: dense(&[2, 1, 1], &[1, 1]),
            output: dense(&[1, 1, 2], &[2]),
        };
        w.validate(&cfg, LayerDims { query_dim: 2, key_dim: 2, value_dim: 2 }).unwrap();
        cfg.kernel_constraint = Some(Constraint::UnitNorm { axis: vec![0] });
        cfg.bias_constraint = Some(Constraint::NonNeg);
        apply_constraints(&cfg, &mut w).unwrap();
        let s = -1.0 / 2.0f32.sqrt();
        close(&w.query.kernel, &[s, s]);
        // The output kernel (1, 1, 2) along axis 0 has slices of one element.
        close(&w.output.kernel, &[-1.0, -1.0]);
        for (path, t) in w.named() {
            if path.ends_with("bias") {
                assert!(t.data().iter().all(|&v| v == 0.0), "{path}");
            }
        }
    }
}
