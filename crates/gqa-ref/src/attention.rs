//! The attention core in f64 (SEMANTICS.md steps 4 to 8): logits, masked softmax, dropout and the
//! probability-weighted sum of values.
//!
//! Layouts, all row-major: `Q` (B, T, Nq, H); `K`, `V` (B, S, Nkv, H); logits and probabilities
//! (B, Nq, T, S); the attention output `O` (B, T, Nq, H).

use gqa_core::{DropoutSpec, MaskedRows, Problem, dropout};

/// The value Keras gives masked logits before the softmax (float32 and wider).
pub(crate) const MASKED_LOGIT: f64 = -1e9;

/// `L[b,u,t,s] = sum_h (Q[b,t,u,h] * scale) * K[b,s,u/R,h]`: the scale multiplies Q first, and
/// query head `u` reads kv head `u / R` (Keras' `repeat` order).
pub(crate) fn logits(p: &Problem, q: &[f64], k: &[f64]) -> Vec<f64> {
    let (nt, ns, nu, nkv, nh) = (p.target_len, p.source_len, p.num_query_heads, p.num_kv_heads, p.head_dim);
    let (r, scale) = (p.group_size(), p.scale());
    let mut out = Vec::with_capacity(p.batch * nu * nt * ns);
    let mut scaled = vec![0.0f64; nh];
    for b in 0..p.batch {
        for u in 0..nu {
            let g = u / r;
            for t in 0..nt {
                let q_row = &q[((b * nt + t) * nu + u) * nh..][..nh];
                for (d, &x) in scaled.iter_mut().zip(q_row) {
                    *d = x * scale;
                }
                for s in 0..ns {
                    let k_row = &k[((b * ns + s) * nkv + g) * nh..][..nh];
                    out.push(scaled.iter().zip(k_row).map(|(a, c)| a * c).sum());
                }
            }
        }
    }
    out
}

/// Turns logits (B, Nq, T, S) into probabilities in place, one row of S at a time.
///
/// Masked logits are replaced by -1e9, the softmax subtracts the row max, then masked
/// probabilities are set to exactly 0: a fully masked row is all zeros. With
/// [`MaskedRows::KerasDefault`] a fully masked row is instead uniform (1/S on every key), as in
/// Keras' plain call. `visible` has the logits' shape; an empty slice means no mask. NaN and
/// infinities in unmasked logits propagate (a NaN logit makes its row NaN).
pub(crate) fn masked_softmax(logits: &mut [f64], visible: &[bool], ns: usize, policy: MaskedRows) {
    for (row_i, row) in logits.chunks_exact_mut(ns).enumerate() {
        let row_visible = visible.get(row_i * ns..(row_i + 1) * ns);
        let is_visible = |s: usize| row_visible.is_none_or(|v| v[s]);
        if policy == MaskedRows::KerasDefault && (0..ns).all(|s| !is_visible(s)) {
            row.fill(1.0 / ns as f64);
            continue;
        }
        for (s, x) in row.iter_mut().enumerate() {
            if !is_visible(s) {
                *x = MASKED_LOGIT;
            }
        }
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut sum = 0.0;
        for x in row.iter_mut() {
            *x = (*x - max).exp();
            sum += *x;
        }
        for (s, x) in row.iter_mut().enumerate() {
            *x = if is_visible(s) { *x / sum } else { 0.0 };
        }
    }
}

/// Attention dropout: element `(b, u, t, s)` of `probs` (B, Nq, T, S) is kept iff
/// [`gqa_core::dropout::keep`] says so, and kept values are multiplied by `1 / (1 - rate)`
/// (computed in f64 from the f32 rate); dropped ones become 0.
pub(crate) fn apply_dropout(p: &Problem, spec: DropoutSpec, probs: &mut [f64]) {
    let scale = 1.0 / (1.0 - f64::from(spec.rate));
    let (nu, nt, ns) = (p.num_query_heads, p.target_len, p.source_len);
    for (i, x) in probs.iter_mut().enumerate() {
        let (s, rest) = (i % ns, i / ns);
        let (t, rest) = (rest % nt, rest / nt);
        let (u, b) = (rest % nu, rest / nu);
        let kept = dropout::keep(spec.seed, spec.rate, b as u32, u as u32, t as u32, s as u32);
        *x = if kept { *x * scale } else { 0.0 };
    }
}

/// `O[b,t,u,h] = sum_s P[b,u,t,s] * V[b,s,u/R,h]`, laid out (B, T, Nq, H). Zero probabilities are
/// multiplied too, so NaN or infinite values propagate as in Keras' einsum.
pub(crate) fn weighted_values(p: &Problem, probs: &[f64], v: &[f64]) -> Vec<f64> {
    let (nt, ns, nu, nkv, nh) = (p.target_len, p.source_len, p.num_query_heads, p.num_kv_heads, p.head_dim);
    let r = p.group_size();
    let mut out = vec![0.0f64; p.batch * nt * nu * nh];
    for b in 0..p.batch {
        for u in 0..nu {
            let g = u / r;
            for t in 0..nt {
                let p_row = &probs[((b * nu + u) * nt + t) * ns..][..ns];
                let o_row = &mut out[((b * nt + t) * nu + u) * nh..][..nh];
                for (s, &w) in p_row.iter().enumerate() {
                    let v_row = &v[((b * ns + s) * nkv + g) * nh..][..nh];
                    for (o, &x) in o_row.iter_mut().zip(v_row) {
                        *o += w * x;
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gqa_core::{CallOptions, GqaConfig};

    #[test]
    fn softmax_rows_partial_full_and_unmasked() {
        let mut x = vec![0.0, 1.0f64.ln(), 3.0f64.ln(), 5.0, 5.0, 5.0, 1.0, 2.0, 3.0];
        let visible = [true, true, true, false, false, false, true, false, true];
        masked_softmax(&mut x, &visible, 3, MaskedRows::Zeros);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-15;
        assert!(close(x[0], 0.2) && close(x[1], 0.2) && close(x[2], 0.6), "{x:?}");
        assert_eq!(&x[3..6], &[0.0; 3]);
        let e = 1.0 / (1.0 + 2.0f64.exp());
        assert!(close(x[6], e) && x[7] == 0.0 && close(x[8], 1.0 - e), "{x:?}");

        let mut y = vec![5.0, 5.0, 5.0, 0.0, 1.0, 2.0];
        masked_softmax(&mut y, &[false, false, false, true, false, true], 3, MaskedRows::KerasDefault);
        assert_eq!(&y[..3], &[1.0 / 3.0; 3]);
        assert_eq!(y[4], 0.0);

        let mut z = vec![1000.0, 0.0];
        masked_softmax(&mut z, &[], 2, MaskedRows::Zeros);
        assert_eq!(z, [1.0, 0.0]);
        let mut n = vec![f64::NAN, 0.0, 0.0, 0.0];
        masked_softmax(&mut n, &[true, true, true, true], 2, MaskedRows::Zeros);
        assert!(n[0].is_nan() && n[1].is_nan() && n[2] == 0.5);
    }

    #[test]
    fn dropout_keeps_the_right_elements_scaled() {
        let mut cfg = GqaConfig::new(2, 2, 1);
        cfg.dropout = 0.3;
        let o = CallOptions { training: true, dropout_seed: Some(11), ..Default::default() };
        let (nb, nu, nt, ns) = (2, 2, 16, 64);
        let p = Problem::new(&cfg, &[nb, nt, 4], &[nb, ns, 4], None, &o).unwrap();
        let spec = p.dropout.unwrap();
        assert_eq!(spec, DropoutSpec { rate: 0.3, seed: 11 });
        let n = nb * nu * nt * ns;
        let base: Vec<f64> = (0..n).map(|i| 1.0 + i as f64).collect();
        let mut probs = base.clone();
        apply_dropout(&p, spec, &mut probs);
        let scale = 1.0 / (1.0 - f64::from(0.3f32));
        let mut kept = 0usize;
        for (i, (&x, &orig)) in probs.iter().zip(&base).enumerate() {
            let (s, t, u, b) = (i % ns, i / ns % nt, i / ns / nt % nu, i / ns / nt / nu);
            let k = dropout::keep(11, 0.3, b as u32, u as u32, t as u32, s as u32);
            assert_eq!(x, if k { orig * scale } else { 0.0 });
            kept += usize::from(k);
        }
        // 4096 Bernoulli(0.7) draws: sd = sqrt(n * 0.21) ~ 29; allow 5 sd.
        let expected = 0.7 * n as f64;
        assert!((kept as f64 - expected).abs() < 5.0 * (n as f64 * 0.21).sqrt(), "{kept}");
        let mut again = base.clone();
        apply_dropout(&p, spec, &mut again);
        assert_eq!(again, probs);
        let mut other = base;
        apply_dropout(&p, DropoutSpec { rate: 0.3, seed: 12 }, &mut other);
        assert_ne!(other, probs);
    }
}
