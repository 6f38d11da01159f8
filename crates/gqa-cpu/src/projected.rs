//! The attention alone, on keys, values and queries an application projected itself: what the
//! layer runs between its projections, exposed for callers with their own projections (and to
//! time the attention apart from the GEMMs).

use gqa_core::{GqaError, HostTensor, Problem};

use crate::attention::{KvView, attend};

/// The attention's output (B, T, Nq, H) and, when the problem asks, the scores (B, Nq, T, S).
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionOutput {
    /// `O[b, t, u, :] = Σ_s P[b, u, t, s] · V[b, s, u / R, :]`, (B, T, Nq, H).
    pub output: HostTensor,
    /// The probabilities before dropout, (B, Nq, T, S), when `problem.return_scores`.
    pub scores: Option<HostTensor>,
}

/// The grouped attention of `problem` (its masks, alignment, window, masked-row policy, dropout
/// and scores) on projected `q` (B, T, Nq, H), `k` and `v` (B, S, Nkv, H), row-major f32: logits
/// `(Q · 1/√H) · K`, the masked softmax and the weighted sum of V, exactly as the layer computes
/// them (query head `u` reads kv head `u / R`). The problem's input feature sizes are not used.
///
/// ```
/// use gqa_core::{CallOptions, GqaConfig, Problem};
///
/// let config = GqaConfig::new(4, 2, 1); // H = 4, Nq = 2, Nkv = 1
/// let options = CallOptions::default().with_causal_mask(true);
/// let p = Problem::new(&config, &[1, 2, 1], &[1, 3, 1], None, &options)?;
/// let (q, kv) = (vec![0.5; 2 * 2 * 4], vec![1.0; 3 * 4]);
/// let out = gqa_cpu::attention(&p, &q, &kv, &kv)?;
/// assert_eq!(out.output.shape(), [1, 2, 2, 4]);
/// assert!(out.output.data().iter().all(|&x| (x - 1.0).abs() < 1e-6)); // every V row is 1
/// # Ok::<(), gqa_core::GqaError>(())
/// ```
pub fn attention(problem: &Problem, q: &[f32], k: &[f32], v: &[f32]) -> Result<AttentionOutput, GqaError> {
    let p = problem;
    let q_len = p.batch * p.target_len * p.num_query_heads * p.head_dim;
    let kv_len = p.batch * p.source_len * p.num_kv_heads * p.head_dim;
    for (name, got, want, shape) in [
        ("q", q.len(), q_len, "(B, T, Nq, H)"),
        ("k", k.len(), kv_len, "(B, S, Nkv, H)"),
        ("v", v.len(), kv_len, "(B, S, Nkv, H)"),
    ] {
        if got != want {
            return Err(GqaError::ShapeMismatch {
                op: "gqa_cpu::attention",
                detail: format!("{name} has {got} elements; {shape} of the problem needs {want}"),
            });
        }
    }
    let stride = p.source_len * p.num_kv_heads * p.head_dim;
    let attended = attend(p, q, KvView { data: k, batch_stride: stride }, KvView { data: v, batch_stride: stride });
    let shape = [p.batch, p.target_len, p.num_query_heads, p.head_dim];
    Ok(AttentionOutput {
        output: HostTensor::new(shape, attended.o)?,
        scores: attended.scores.map(|s| HostTensor::new(p.scores_shape(), s)).transpose()?,
    })
}
