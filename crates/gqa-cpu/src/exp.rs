//! `e^x` for f32, written so that a loop over a slice compiles to SIMD (no call to libm per
//! element): the softmax takes one per logit, so this is on the attention's hot path.
//!
//! Plain multiplies and adds (no `mul_add`, no `round`): without FMA in the compile target those are
//! calls into libm, one per element.
//!
//! The classic reduction: `x = n·ln 2 + r` with `|r| <= ln 2 / 2` (ln 2 split in two parts so that
//! `r` is exact), a degree-6 polynomial for `e^r`, and `2^n` built from the exponent bits (in two
//! halves, so that `n = 128` does not overflow the bits). Relative error within a few ulp over the
//! whole range (tested against f64); `-inf` and anything below the smallest normal's logarithm give
//! 0, `+inf` and anything above `ln f32::MAX` give `+inf`, NaN stays NaN.

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 = LN2_HI + LN2_LO, LN2_HI with few mantissa bits so that `n * LN2_HI` is exact.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Below this, e^x is under the smallest normal f32: 0.
const MIN_ARG: f32 = -87.336_55;
/// Above this, e^x overflows f32: +inf.
const MAX_ARG: f32 = 88.722_84;
/// 1.5·2^23: adding and subtracting it rounds an f32 of magnitude below 2^22 to an integer.
const ROUNDER: f32 = 12_582_912.0;
/// Taylor-like minimax coefficients of (e^r - 1 - r) / r² on |r| <= ln 2 / 2, highest first.
const POLY: [f32; 6] = [1.987_569_1e-4, 1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5];

/// `e^x`.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    let xc = x.clamp(MIN_ARG, MAX_ARG);
    // Round to nearest by adding and subtracting 1.5·2^23 (exact for |x·log2 e| < 2^22): no call.
    let n = (xc * LOG2_E + ROUNDER) - ROUNDER;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let mut p = POLY[0];
    for c in &POLY[1..] {
        p = p * r + c;
    }
    let e_r = (p * r * r + r) + 1.0;
    // 2^n as 2^(n/2) · 2^(n - n/2): each half is a normal number for n in [-126, 128].
    let n = n as i32;
    let half = n >> 1;
    let scale = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    let y = e_r * scale(half) * scale(n - half);
    if x.is_nan() {
        x
    } else if x < MIN_ARG {
        0.0
    } else if x > MAX_ARG {
        f32::INFINITY
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_to_f64_over_the_range_and_exact_at_the_edges() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.5 {
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            worst = worst.max(((got - want) / want).abs());
            x += 0.001_37;
        }
        assert!(worst < 4.0 * f64::from(f32::EPSILON), "relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-1e9), 0.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(88.7).is_finite() && exp(88.7) > 3.0e38);
    }
}
