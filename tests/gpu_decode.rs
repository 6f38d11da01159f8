//! Flash-decoding (short queries over long sources: the fused kernel split over key ranges, then a
//! reduce) against the oracle: every mask kind, both causal alignments, window, gate, both masked-row
//! policies, ragged key counts, on every adapter; and the plan chooses it only where it applies.

mod common;

use common::{Case, adapter_name, adapters, random_mask};
use gqa::core::{BufferId, CausalAlignment, GqaConfig, Kernel, Mask, MaskedRows, Tuning};

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (t, s) in [(1, 512), (3, 700), (16, 1300)] {
        let mut c = Case::new(&format!("decode T={t} S={s}"), GqaConfig::new(8, 8, 2));
        (c.batch, c.t, c.s, c.dq, c.dv) = (2, t, s, 16, 12);
        c.options.use_causal_mask = true;
        c.options.causal_alignment = CausalAlignment::BottomRight;
        out.push(c);
    }
    let mut cfg = GqaConfig::new(16, 4, 1);
    cfg.use_gate = true;
    cfg.sliding_window = Some(300);
    let mut c = Case::new("decode: gate, window, value and attention masks, key given", cfg);
    (c.batch, c.t, c.s, c.dq, c.dv, c.dk) = (2, 2, 900, 16, 12, Some(10));
    c.options.use_causal_mask = true;
    c.options.causal_alignment = CausalAlignment::BottomRight;
    c.options.value_mask = Some(random_mask(&[2, 900], 0.8, 1));
    c.options.attention_mask = Some(random_mask(&[2, 2, 900], 0.9, 2));
    out.push(c);
    for policy in [MaskedRows::Zeros, MaskedRows::KerasDefault] {
        // Batch 1 sees no key at all; batch 0 only keys in the last split.
        let mut c = Case::new(&format!("decode: fully masked rows, {policy:?}"), GqaConfig::new(8, 4, 2));
        (c.batch, c.t, c.s) = (2, 1, 600);
        let mut vm = vec![false; 2 * 600];
        vm[590..600].fill(true);
        c.options.value_mask = Some(Mask::new(vec![2, 600], vm).unwrap());
        c.options.masked_rows = policy;
        out.push(c);
    }
    // Beyond Mesa llvmpipe's 65,535-iteration loop cap for the unfused passes: the splits keep every
    // loop short, so one query over 70,000 keys runs there too.
    let mut c = Case::new("decode: T=1 over S=70000", GqaConfig::new(8, 2, 1));
    (c.batch, c.t, c.s, c.dq, c.dv) = (1, 1, 70_000, 8, 8);
    out.push(c);
    out
}

#[test]
fn split_decode_matches_the_oracle() {
    for ctx in adapters() {
        let tuned = ctx.clone().with_tuning(Tuning { split_decode: true, ..ctx.tuning() });
        for c in cases() {
            let layer =
                gqa::gpu::GqaLayer::new(&tuned, &c.config, &common::random_weights(&c.config, c.dims(), 1)).unwrap();
            let key_shape = c.dk.map(|d| [c.batch, c.s, d]);
            let plan = layer
                .plan(&[c.batch, c.t, c.dq], &[c.batch, c.s, c.dv], key_shape.as_ref().map(|s| &s[..]), &c.options)
                .unwrap();
            assert!(plan.passes().any(|p| p.kernel == Kernel::AttentionReduce), "{}: decode path expected", c.name);
            assert!(plan.buffer(BufferId::Probs).is_none() && plan.buffer(BufferId::Partials).is_some(), "{}", c.name);
            let diff = c.check(&tuned, 11);
            eprintln!("[{}] {}: ok, max |diff| {diff:.2e}", adapter_name(ctx), c.name);
        }
    }
}

#[test]
fn decode_applies_only_to_short_queries_over_long_sources() {
    let ctx = &adapters()[0];
    let tuned = ctx.clone().with_tuning(Tuning { split_decode: true, fused_attention: false, ..ctx.tuning() });
    let cfg = GqaConfig::new(8, 4, 2);
    let layer =
        gqa::gpu::GqaLayer::new(&tuned, &cfg, &common::random_weights(&cfg, Case::new("", cfg.clone()).dims(), 1))
            .unwrap();
    let uses = |t: usize, s: usize, scores: bool| {
        let opts = gqa::core::CallOptions { return_attention_scores: scores, ..Default::default() };
        let plan = layer.plan(&[2, t, 12], &[2, s, 10], None, &opts).unwrap();
        plan.passes().any(|p| p.kernel == Kernel::AttentionReduce)
    };
    assert!(uses(1, 512, false));
    assert!(uses(16, 4096, false));
    assert!(!uses(17, 4096, false), "T > 16: not decode");
    // Short sources too when the fused kernel is off: the separate passes would waste their
    // 64-query tiles; with it on, the fused kernel takes them whole.
    assert!(uses(1, 300, false), "S < 2 splits, fused kernel off: still the decode path");
    let fused =
        layer.context().clone().with_tuning(Tuning { split_decode: true, fused_attention: true, ..ctx.tuning() });
    let layer_fused =
        gqa::gpu::GqaLayer::new(&fused, &cfg, &common::random_weights(&cfg, Case::new("", cfg.clone()).dims(), 1))
            .unwrap();
    let plan = layer_fused.plan(&[2, 1, 12], &[2, 300, 10], None, &Default::default()).unwrap();
    assert!(plan.passes().all(|p| p.kernel != Kernel::AttentionReduce), "S < 2 splits, fused kernel on: one pass");
    assert!(!uses(1, 4096, true), "scores requested: the unfused passes");
}

/// Products of few rows (B * T <= 16, sizes multiples of 4) take the rows-of-4 matmul under every
/// tuning: with and without bias, with the gate's sigmoid, row counts that are not multiples of 4.
#[test]
fn few_row_projections_use_the_rows4_matmul() {
    for ctx in adapters() {
        for (b, t, bias, gate) in [(1, 1, true, false), (3, 1, false, true), (2, 3, true, true), (1, 7, true, false)] {
            let cfg = GqaConfig { use_bias: bias, use_gate: gate, ..GqaConfig::new(8, 4, 2) };
            let mut c = Case::new(&format!("rows4: B={b} T={t} bias={bias} gate={gate}"), cfg);
            (c.batch, c.t, c.s, c.dq, c.dv) = (b, t, 5, 16, 8);
            c.options.use_causal_mask = true;
            c.options.causal_alignment = CausalAlignment::BottomRight;
            // The plan alone (no GPU work outside the harness's GL guard, which `check` takes).
            let problem = gqa::core::Problem::new(&c.config, &[b, t, 16], &[b, 5, 8], None, &c.options).unwrap();
            let plan = gqa::core::Plan::tuned(&problem, &ctx.limits(), ctx.tuning()).unwrap();
            let kernel = |label: &str| plan.passes().find(|p| p.label == label).map(|p| p.kernel);
            assert_eq!(kernel("project_query"), Some(Kernel::MatmulBiasRows4), "{}", c.name);
            assert_eq!(kernel("project_output"), Some(Kernel::MatmulBiasRows4), "{}", c.name);
            c.check(ctx, 3);
        }
    }
}
