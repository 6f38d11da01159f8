//! The oracle and the GPU (every adapter) against the real Keras layer: every fixture of
//! `tests/fixtures/keras`, elementwise with atol 1e-5, rtol 1e-4.
//!
//! - `output`: Keras with scores requested, our default `MaskedRows::Zeros`;
//! - `output_default_call`: Keras' plain call, our `MaskedRows::KerasDefault`;
//! - `scores`: the attention probabilities.

mod common;
mod keras_common;

use common::{F32, adapter_name, adapters, assert_close};
use gqa::core::{ForwardOutput, MaskedRows};
use gqa::gpu::GqaLayer;
use keras_common::Fixture;

/// Compares one run with Keras' tensors.
fn check(label: &str, f: &Fixture, zeros: &ForwardOutput, default: &ForwardOutput) {
    assert_eq!(zeros.output.shape(), f.output.shape(), "{label}: output shape");
    assert_close(&format!("{label}: output (zeros)"), zeros.output.data(), f.output.data(), F32);
    let scores = zeros.scores.as_ref().unwrap_or_else(|| panic!("{label}: no scores"));
    assert_eq!(scores.shape(), f.scores.shape(), "{label}: scores shape");
    assert_close(&format!("{label}: scores"), scores.data(), f.scores.data(), F32);
    assert_close(
        &format!("{label}: output_default_call (keras-default)"),
        default.output.data(),
        f.output_default_call.data(),
        F32,
    );
}

#[test]
fn there_are_at_least_16_fixtures() {
    let all = Fixture::all();
    assert!(all.len() >= 16, "only {} fixtures", all.len());
}

#[test]
fn oracle_matches_every_keras_fixture() {
    for f in Fixture::all() {
        let (l, i) = (&f.layer, &f.inputs);
        let run = |rows, scores| {
            gqa::reference::forward(&l.config, &l.weights, &i.query, &i.value, i.key.as_ref(), &f.options(rows, scores))
                .unwrap_or_else(|e| panic!("{}: oracle failed: {e}", f.name))
        };
        check(
            &format!("{} (oracle)", f.name),
            &f,
            &run(MaskedRows::Zeros, true),
            &run(MaskedRows::KerasDefault, false),
        );
        eprintln!("[oracle] {}: ok ({})", f.name, f.description);
    }
}

#[test]
fn gpu_matches_every_keras_fixture_on_every_adapter() {
    let all = Fixture::all();
    for ctx in adapters() {
        for f in &all {
            let label = format!("{} on {}", f.name, adapter_name(ctx));
            let mut layer = GqaLayer::new(ctx, &f.layer.config, &f.layer.weights)
                .unwrap_or_else(|e| panic!("{label}: cannot create the layer: {e}"));
            layer.set_poison_outputs(true);
            let i = &f.inputs;
            let run = |rows, scores| {
                layer
                    .forward(&i.query, &i.value, i.key.as_ref(), &f.options(rows, scores))
                    .unwrap_or_else(|e| panic!("{label}: {e}"))
            };
            check(&label, f, &run(MaskedRows::Zeros, true), &run(MaskedRows::KerasDefault, false));
            eprintln!("[{}] {}: ok", adapter_name(ctx), f.name);
        }
    }
}

/// The fixtures cover every feature the conformance suite relies on; this keeps a regenerated set honest.
#[test]
fn fixtures_cover_the_required_features() {
    let all = Fixture::all();
    let any = |what: &str, p: &dyn Fn(&Fixture) -> bool| {
        assert!(all.iter().any(p), "no fixture covers: {what}");
    };
    let c = |f: &Fixture| f.layer.config.clone();
    let (t, s) = (|f: &Fixture| f.inputs.query.shape()[1], |f: &Fixture| f.inputs.value.shape()[1]);
    any("GQA (1 < Nkv < Nq)", &|f| c(f).num_key_value_heads > 1 && c(f).num_key_value_heads < c(f).num_query_heads);
    any("MQA (Nkv = 1 < Nq)", &|f| c(f).num_key_value_heads == 1 && c(f).num_query_heads > 1);
    any("MHA (Nkv = Nq)", &|f| c(f).num_key_value_heads == c(f).num_query_heads);
    any("key given", &|f| f.inputs.key.is_some());
    any("key not given", &|f| f.inputs.key.is_none());
    any("Dq, Dk, Dv all different", &|f| {
        let d = f.layer.dims;
        d.query_dim != d.key_dim && d.key_dim != d.value_dim && d.query_dim != d.value_dim
    });
    any("no bias", &|f| !c(f).use_bias);
    any("causal with T < S", &|f| f.causal && t(f) < s(f));
    any("causal with T > S", &|f| f.causal && t(f) > s(f));
    for rank in [2, 3, 4] {
        any(&format!("attention_mask of rank {rank}"), &|f| {
            f.inputs.attention_mask.as_ref().is_some_and(|m| m.shape().len() == rank)
        });
    }
    any("query_mask", &|f| f.inputs.query_mask.is_some());
    any("value_mask", &|f| f.inputs.value_mask.is_some());
    any("key_mask", &|f| f.inputs.key_mask.is_some());
    any("fully masked rows (the two Keras paths differ)", &|f| f.output.data() != f.output_default_call.data());
    any("sliding_window without causal", &|f| c(f).sliding_window.is_some() && !f.causal);
    any("sliding_window with causal", &|f| c(f).sliding_window.is_some() && f.causal);
    any("use_gate", &|f| c(f).use_gate);
    any("B > 1", &|f| f.inputs.query.shape()[0] > 1);
    any("head_dim 1", &|f| c(f).head_dim == 1);
    any("odd head_dim > 1", &|f| c(f).head_dim > 1 && c(f).head_dim % 2 == 1);
    any("a length-1 query", &|f| t(f) == 1);
}
