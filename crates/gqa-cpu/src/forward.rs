//! The layer's forward pass in f32: the projections as GEMMs over every thread, the grouped flash
//! attention, the gate, the output projection.

use gqa_core::{ForwardOutput, GqaConfig, GqaError, HostTensor, Problem, Weights};

use crate::attention::{KvView, attend};
use crate::exp::exp;
use crate::matmul::dense;

/// A dense sub-layer of the layer's weights on `rows` rows of `x` (its kernel flattened to
/// (in, out): (D, N·H) for Q, K, V and the gate, (Nq·H, Dq) for the output).
pub(crate) fn project(x: &[f32], rows: usize, w: &gqa_core::DenseWeights) -> Vec<f32> {
    let in_dim = x.len().checked_div(rows).unwrap_or(0);
    dense(x, rows, w.kernel.data(), in_dim, w.bias.as_ref().map(HostTensor::data))
}

/// The raw gate (B·T rows of Nq·H) from the raw query, when the layer has one.
pub(crate) fn gate(config: &GqaConfig, weights: &Weights, query: &[f32], rows: usize) -> Option<Vec<f32>> {
    weights.gate.as_ref().filter(|_| config.use_gate).map(|g| project(query, rows, g))
}

/// Steps 4 to 9 on projected `q` (B, T, Nq, H) and the keys and values `k`, `v`: the attention, the
/// gate, the output projection.
pub(crate) fn finish(
    p: &Problem,
    weights: &Weights,
    q: &[f32],
    k: KvView<'_>,
    v: KvView<'_>,
    gate: Option<Vec<f32>>,
) -> Result<ForwardOutput, GqaError> {
    let attended = attend(p, q, k, v);
    let mut o = attended.o;
    if let Some(gate) = gate {
        for (x, g) in o.iter_mut().zip(gate) {
            *x *= 1.0 / (1.0 + exp(-g));
        }
    }
    let y = project(&o, p.batch * p.target_len, &weights.output);
    let scores = attended.scores.map(|s| HostTensor::new(p.scores_shape(), s)).transpose()?;
    Ok(ForwardOutput { output: HostTensor::new(p.output_shape(), y)?, scores })
}
