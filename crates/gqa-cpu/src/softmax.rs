//! The online softmax's update of one block of logits, row by row: each row's new maximum, its
//! logits replaced by `e^(x - max)`, the sum of those, and the factor `alpha = e^(old max - new
//! max)` that rescales what the row accumulated before.
//!
//! The loops run over 16 independent lanes, so they compile to SIMD; on x86-64 the function is
//! compiled three times (AVX-512, AVX2 + FMA, the baseline SSE2) and the widest the CPU offers is
//! picked at run time.

use crate::exp::exp;

const LANES: usize = 16;

/// Updates the rows of `logits` (rows of `n`): masked logits are `-inf` on entry and become 0.
/// `max` and `sum` are the rows' running state; `alpha` receives each row's rescaling factor (1
/// where the row still has no finite maximum: nothing to rescale). NaN logits make their row's
/// sum NaN (the maximum ignores them), as the oracle's softmax does.
pub(crate) fn update(logits: &mut [f32], n: usize, max: &mut [f32], sum: &mut [f32], alpha: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, the only feature the function is compiled for.
            return unsafe { update_avx512(logits, n, max, sum, alpha) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { update_avx2(logits, n, max, sum, alpha) };
        }
    }
    update_rows(logits, n, max, sum, alpha);
}

/// The vector instructions [`update`] runs with on this CPU: `avx512f`, `avx2+fma` or `baseline`
/// (the target's default, SSE2 on x86-64).
pub(crate) fn vector_isa() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512f";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return "avx2+fma";
        }
    }
    "baseline"
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn update_avx512(logits: &mut [f32], n: usize, max: &mut [f32], sum: &mut [f32], alpha: &mut [f32]) {
    update_rows(logits, n, max, sum, alpha);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn update_avx2(logits: &mut [f32], n: usize, max: &mut [f32], sum: &mut [f32], alpha: &mut [f32]) {
    update_rows(logits, n, max, sum, alpha);
}

#[inline(always)]
fn update_rows(logits: &mut [f32], n: usize, max: &mut [f32], sum: &mut [f32], alpha: &mut [f32]) {
    for (((row, m), s), a) in logits.chunks_exact_mut(n).zip(max.iter_mut()).zip(sum.iter_mut()).zip(alpha.iter_mut()) {
        let new_max = m.max(row_max(row));
        if new_max == f32::NEG_INFINITY {
            row.fill(0.0);
            *a = 1.0;
            continue;
        }
        *a = exp(*m - new_max);
        *s = *s * *a + exp_and_sum(row, new_max);
        *m = new_max;
    }
}

/// The largest non-NaN element (`-inf` when there is none).
#[inline(always)]
fn row_max(row: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for (l, &x) in lanes.iter_mut().zip(c) {
            *l = if x > *l { x } else { *l };
        }
    }
    let tail = chunks.remainder().iter().fold(f32::NEG_INFINITY, |a, &x| if x > a { x } else { a });
    lanes.iter().fold(tail, |a, &x| if x > a { x } else { a })
}

/// Replaces each element by `e^(x - max)` and returns their sum.
#[inline(always)]
fn exp_and_sum(row: &mut [f32], max: f32) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for (l, x) in lanes.iter_mut().zip(c.iter_mut()) {
            *x = exp(*x - max);
            *l += *x;
        }
    }
    let mut total = 0.0;
    for x in chunks.into_remainder() {
        *x = exp(*x - max);
        total += *x;
    }
    total + lanes.iter().sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_update_like_a_two_pass_softmax() {
        // Two rows of 37 (off the lanes), in two blocks: the running result equals the softmax
        // of the whole row.
        let n = 37;
        let whole: Vec<f32> = (0..2 * 2 * n).map(|i| ((i * 7 % 23) as f32 - 11.0) * 0.3).collect();
        let (mut max, mut sum, mut alpha) = ([f32::NEG_INFINITY; 2], [0.0f32; 2], [0.0f32; 2]);
        for block in 0..2 {
            let mut l: Vec<f32> = (0..2).flat_map(|r| whole[(r * 2 + block) * n..][..n].to_vec()).collect();
            if block == 0 {
                l[3] = f32::NEG_INFINITY; // masked
            }
            update(&mut l, n, &mut max, &mut sum, &mut alpha);
            if block == 0 {
                assert_eq!(l[3], 0.0, "a masked logit's probability is exactly 0");
            }
        }
        for r in 0..2 {
            let row = &whole[r * 2 * n..][..2 * n];
            let want_max =
                row.iter().enumerate().filter(|&(i, _)| !(r == 0 && i == 3)).map(|(_, &x)| x).fold(f32::MIN, f32::max);
            let want_sum: f64 = row
                .iter()
                .enumerate()
                .filter(|&(i, _)| !(r == 0 && i == 3))
                .map(|(_, &x)| f64::from(x - want_max).exp())
                .sum();
            assert_eq!(max[r], want_max);
            assert!((f64::from(sum[r]) - want_sum).abs() < 1e-5 * want_sum, "{} {want_sum}", sum[r]);
        }
    }

    #[test]
    fn masked_rows_nan_and_infinity() {
        let mut l = vec![f32::NEG_INFINITY; 3];
        let (mut m, mut s, mut a) = ([f32::NEG_INFINITY], [0.0], [0.0]);
        update(&mut l, 3, &mut m, &mut s, &mut a);
        assert_eq!((l, m[0], s[0], a[0]), (vec![0.0; 3], f32::NEG_INFINITY, 0.0, 1.0));
        let mut l = vec![1.0, f32::NAN, 0.0];
        let (mut m, mut s, mut a) = ([f32::NEG_INFINITY], [0.0], [0.0]);
        update(&mut l, 3, &mut m, &mut s, &mut a);
        assert!(m[0] == 1.0 && s[0].is_nan() && l[1].is_nan());
        let mut l = vec![f32::INFINITY, 0.0];
        let (mut m, mut s, mut a) = ([0.0], [1.0], [0.0]);
        update(&mut l, 2, &mut m, &mut s, &mut a);
        assert!(s[0].is_nan() && a[0] == 0.0, "inf - inf is NaN, as in the oracle");
    }
}
