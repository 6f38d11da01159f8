//! The forward pass of `GroupQueryAttention`, step by step as SEMANTICS.md writes it, in f64.

use gqa_core::{
    CallOptions, DenseWeights, ForwardOutput, GqaConfig, GqaError, HostTensor, LayerDims, Problem, Weights,
};

use crate::attention::{apply_dropout, logits, masked_softmax, weighted_values};
use crate::dense::{project, sigmoid};
use crate::mask::visibility;

/// Runs the layer on the CPU: the oracle every GPU result is compared with.
///
/// `query` is (B, T, Dq), `value` (B, S, Dv), `key` (B, S, Dk) or `None` (then `key = value`).
/// Everything is checked first (config, shapes, masks via [`Problem::new`], then the weights'
/// shapes), and errors come back as values. The computation then follows Keras exactly: projections
/// with bias, the optional sigmoid gate from the raw query, logits `(Q * scale) · K` with query head
/// `u` reading kv head `u / R`, the combined mask ([`crate::visibility`]), the masked softmax
/// (fully masked rows are zeros, or uniform with `MaskedRows::KerasDefault`), dropout when
/// training with a positive rate, the weighted sum of values, the gate, and the output projection.
/// All of it accumulates in f64; the results are rounded to f32 at the end.
///
/// NaN and infinities in the inputs or weights are not checked: they propagate as they would in
/// Keras (e.g. a NaN in a key makes every query row that reads it NaN, masked or not, because
/// masked probabilities still multiply the values).
pub fn forward(
    config: &GqaConfig,
    weights: &Weights,
    query: &HostTensor,
    value: &HostTensor,
    key: Option<&HostTensor>,
    options: &CallOptions,
) -> Result<ForwardOutput, GqaError> {
    let p = Problem::new(config, query.shape(), value.shape(), key.map(HostTensor::shape), options)?;
    weights.validate(config, LayerDims { query_dim: p.query_dim, key_dim: p.key_dim, value_dim: p.value_dim })?;
    let key = key.unwrap_or(value);

    // Step 3: projections (and the gate, from the raw query).
    let q = dense(query.data(), &weights.query);
    let k = dense(key.data(), &weights.key);
    let v = dense(value.data(), &weights.value);
    let gate = weights.gate.as_ref().filter(|_| config.use_gate).map(|g| dense(query.data(), g));
    attend(&p, options, weights, &q, &k, &v, gate)
}

/// Steps 4 to 9 on projected `q` (B, T, Nq, H), `k` and `v` (B, S, Nkv, H) and the raw gate
/// (B, T, Nq, H), shared by [`forward`] and the cached calls of [`crate::KvCache`].
pub(crate) fn attend(
    p: &Problem,
    options: &CallOptions,
    weights: &Weights,
    q: &[f64],
    k: &[f64],
    v: &[f64],
    gate: Option<Vec<f64>>,
) -> Result<ForwardOutput, GqaError> {
    // Steps 4 to 6: logits, mask, masked softmax.
    let mut probs = logits(p, q, k);
    let visible = if p.mask.any() { visibility(p, options)? } else { Vec::new() };
    masked_softmax(&mut probs, &visible, p.source_len, p.masked_rows);
    let scores = p.return_scores.then(|| HostTensor::new(p.scores_shape(), to_f32(&probs))).transpose()?;

    // Steps 7 and 8: dropout, weighted values, gate.
    if let Some(spec) = p.dropout {
        apply_dropout(p, spec, &mut probs);
    }
    let mut o = weighted_values(p, &probs, v);
    if let Some(gate) = gate {
        for (x, g) in o.iter_mut().zip(gate) {
            *x *= sigmoid(g);
        }
    }

    // Step 9: the output projection, (B*T, Nq*H) · (Nq*H, Dq).
    let rows = p.batch * p.target_len;
    let y = project(
        &o,
        rows,
        p.num_query_heads * p.head_dim,
        weights.output.kernel.data(),
        weights.output.bias.as_ref().map(HostTensor::data),
    );
    Ok(ForwardOutput { output: HostTensor::new(p.output_shape(), to_f32(&y))?, scores })
}

/// One dense sub-layer on a (B, L, D) input: `(B*L, D) · (D, N*H) + bias`.
pub(crate) fn dense(x: &[f32], w: &DenseWeights) -> Vec<f64> {
    let in_dim = w.kernel.shape().first().copied().unwrap_or(1);
    let rows = x.len().checked_div(in_dim).unwrap_or(0);
    project(x, rows, in_dim, w.kernel.data(), w.bias.as_ref().map(HostTensor::data))
}

fn to_f32(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
