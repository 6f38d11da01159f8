//! The combined boolean mask of a call (SEMANTICS.md step 2), evaluated element by element.
//!
//! The attention mask is indexed from its own shape here rather than through
//! `Problem::mask.attention`'s strides, so the oracle checks those strides instead of trusting them.

use gqa_core::{CallOptions, GqaError, Mask, Problem};

/// Where an attention mask's axes sit on (B, Nq, T, S): its size along each (1 = broadcast).
struct Placed<'a> {
    mask: &'a Mask,
    dims: [usize; 4],
}

impl<'a> Placed<'a> {
    /// Places a rank 2 (T, S), rank 3 (B, T, S) or rank 4 (B, Nq, T, S) mask; each axis must be 1
    /// or the full size.
    fn new(mask: &'a Mask, full: [usize; 4]) -> Result<Self, GqaError> {
        let dims = match *mask.shape() {
            [t, s] => [1, 1, t, s],
            [b, t, s] => [b, 1, t, s],
            [b, h, t, s] => [b, h, t, s],
            _ => [0; 4],
        };
        if dims.iter().zip(full).any(|(&m, f)| m != 1 && m != f) {
            let [b, h, t, s] = full;
            return Err(GqaError::MaskBroadcast {
                mask: "attention_mask",
                shape: mask.shape().to_vec(),
                target: format!("(B={b}, Nq={h}, T={t}, S={s})"),
            });
        }
        Ok(Self { mask, dims })
    }

    /// The mask's value at `(b, u, t, s)` of the full shape.
    fn at(&self, coords: [usize; 4]) -> bool {
        let mut flat = 0;
        for (&dim, c) in self.dims.iter().zip(coords) {
            flat = flat * dim + if dim == 1 { 0 } else { c };
        }
        self.mask.data()[flat]
    }
}

/// The AND of every mask part of a call, as booleans (true = attend) of shape (B, Nq, T, S),
/// row-major.
///
/// Parts: `attention_mask` broadcast from its shape, `query_mask[b, t]`, `value_mask[b, s]`,
/// `key_mask[b, s]`, causal (`s <= t + shift`) and the sliding window (`|t + shift - s| < window`),
/// where `shift = problem.mask.query_shift` (0 for Keras' top-left alignment, S - T bottom-right).
/// Errors when a mask's shape does not fit the problem (a `Problem` built from the same options
/// has already checked that).
pub fn visibility(problem: &Problem, options: &CallOptions) -> Result<Vec<bool>, GqaError> {
    let (nb, nu, nt, ns) = (problem.batch, problem.num_query_heads, problem.target_len, problem.source_len);
    let attention = options.attention_mask.as_ref().map(|m| Placed::new(m, [nb, nu, nt, ns])).transpose()?;
    let query = checked(options.query_mask.as_ref(), "query_mask", [nb, nt])?;
    let value = checked(options.value_mask.as_ref(), "value_mask", [nb, ns])?;
    let key = checked(options.key_mask.as_ref(), "key_mask", [nb, ns])?;
    let shift = problem.mask.query_shift;
    let causal = options.use_causal_mask;
    let window = problem.mask.window;

    let mut out = Vec::with_capacity(nb * nu * nt * ns);
    for b in 0..nb {
        for u in 0..nu {
            for t in 0..nt {
                let query_ok = query.is_none_or(|m| m[b * nt + t]);
                for s in 0..ns {
                    let pos = t as i64 + shift;
                    let visible = query_ok
                        && value.is_none_or(|m| m[b * ns + s])
                        && key.is_none_or(|m| m[b * ns + s])
                        && (!causal || s as i64 <= pos)
                        && window.is_none_or(|w| (pos - s as i64).unsigned_abs() < w as u64)
                        && attention.as_ref().is_none_or(|a| a.at([b, u, t, s]));
                    out.push(visible);
                }
            }
        }
    }
    Ok(out)
}

/// The data of a (B, T) or (B, S) padding mask, after checking its shape.
fn checked<'a>(
    mask: Option<&'a Mask>,
    name: &'static str,
    expected: [usize; 2],
) -> Result<Option<&'a [bool]>, GqaError> {
    match mask {
        Some(m) if m.shape() != expected => {
            Err(GqaError::MaskBroadcast { mask: name, shape: m.shape().to_vec(), target: format!("{expected:?}") })
        }
        other => Ok(other.map(Mask::data)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gqa_core::{CausalAlignment, GqaConfig};

    /// The (T, S) pattern of head 0, batch 0, as strings of `1`/`.` per query row.
    fn pattern(config: &GqaConfig, t: usize, s: usize, options: &CallOptions) -> Vec<String> {
        let p = Problem::new(config, &[1, t, 2], &[1, s, 2], None, options).unwrap();
        let v = visibility(&p, options).unwrap();
        (0..t).map(|i| (0..s).map(|j| if v[i * s + j] { '1' } else { '.' }).collect()).collect()
    }

    fn causal(alignment: CausalAlignment) -> CallOptions {
        CallOptions { use_causal_mask: true, causal_alignment: alignment, ..Default::default() }
    }

    #[test]
    fn causal_top_left_is_keras() {
        let cfg = GqaConfig::new(2, 1, 1);
        let o = causal(CausalAlignment::TopLeft);
        assert_eq!(pattern(&cfg, 1, 4, &o), ["1..."]);
        assert_eq!(pattern(&cfg, 2, 4, &o), ["1...", "11.."]);
        assert_eq!(pattern(&cfg, 3, 3, &o), ["1..", "11.", "111"]);
        assert_eq!(pattern(&cfg, 4, 2, &o), ["1.", "11", "11", "11"]);
    }

    #[test]
    fn causal_bottom_right() {
        let cfg = GqaConfig::new(2, 1, 1);
        let o = causal(CausalAlignment::BottomRight);
        assert_eq!(pattern(&cfg, 1, 4, &o), ["1111"]);
        assert_eq!(pattern(&cfg, 2, 4, &o), ["111.", "1111"]);
        assert_eq!(pattern(&cfg, 4, 2, &o), ["..", "..", "1.", "11"]);
    }

    #[test]
    fn sliding_window_band_and_left_window() {
        let mut cfg = GqaConfig::new(2, 1, 1);
        cfg.sliding_window = Some(2);
        let none = CallOptions::default();
        assert_eq!(pattern(&cfg, 4, 4, &none), ["11..", "111.", ".111", "..11"]);
        let o = causal(CausalAlignment::TopLeft);
        assert_eq!(pattern(&cfg, 4, 4, &o), ["1...", "11..", ".11.", "..11"]);
        let o = causal(CausalAlignment::BottomRight);
        assert_eq!(pattern(&cfg, 2, 4, &o), [".11.", "..11"]);
        // The window alone follows the alignment too.
        let o = CallOptions { causal_alignment: CausalAlignment::BottomRight, ..Default::default() };
        assert_eq!(pattern(&cfg, 2, 4, &o), [".111", "..11"]);
    }

    #[test]
    fn padding_and_attention_masks_broadcast() {
        let cfg = GqaConfig::new(2, 2, 1);
        let o = CallOptions {
            query_mask: Some(Mask::new([2, 2], vec![true, false, true, true]).unwrap()),
            value_mask: Some(Mask::new([2, 3], vec![true, true, false, true, true, true]).unwrap()),
            key_mask: Some(Mask::new([2, 3], vec![true, true, true, false, true, true]).unwrap()),
            // Per (batch, head), broadcast over T: batch 1 head 1 drops key 2.
            attention_mask: Some(
                Mask::new([2, 2, 1, 3], [[true; 3], [true; 3], [true; 3], [true, true, false]].concat()).unwrap(),
            ),
            ..Default::default()
        };
        let p = Problem::new(&cfg, &[2, 2, 4], &[2, 3, 4], None, &o).unwrap();
        let v = visibility(&p, &o).unwrap();
        let at = |b: usize, u: usize, t: usize, s: usize| v[((b * 2 + u) * 2 + t) * 3 + s];
        for u in 0..2 {
            assert_eq!([at(0, u, 0, 0), at(0, u, 0, 1), at(0, u, 0, 2)], [true, true, false]);
            assert_eq!([at(0, u, 1, 0), at(0, u, 1, 1), at(0, u, 1, 2)], [false; 3]);
        }
        assert_eq!([at(1, 0, 1, 0), at(1, 0, 1, 1), at(1, 0, 1, 2)], [false, true, true]);
        assert_eq!([at(1, 1, 0, 0), at(1, 1, 0, 1), at(1, 1, 0, 2)], [false, true, false]);
    }

    #[test]
    fn rank2_attention_mask_and_bad_shapes() {
        let cfg = GqaConfig::new(2, 2, 1);
        let o =
            CallOptions { attention_mask: Some(Mask::new([1, 2], vec![false, true]).unwrap()), ..Default::default() };
        let p = Problem::new(&cfg, &[1, 3, 4], &[1, 2, 4], None, &o).unwrap();
        let v = visibility(&p, &o).unwrap();
        assert_eq!(v, [false, true].repeat(6));
        let bad = CallOptions { attention_mask: Some(Mask::filled([3, 3], true)), ..Default::default() };
        assert!(matches!(visibility(&p, &bad), Err(GqaError::MaskBroadcast { .. })));
        let bad = CallOptions { query_mask: Some(Mask::filled([1, 2], true)), ..Default::default() };
        assert!(visibility(&p, &bad).is_err());
    }
}
