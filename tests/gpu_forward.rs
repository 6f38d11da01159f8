//! GPU vs oracle on a named matrix of configs, shapes and masks, on every adapter found.

mod common;

use common::{Case, adapter_name, adapters, random_mask};
use gqa::core::{CausalAlignment, GqaConfig, Mask, MaskedRows};

/// Runs a case on every adapter, naming each in the output.
fn run(case: Case) {
    for (i, ctx) in adapters().iter().enumerate() {
        let diff = case.check(ctx, 17 + i as u64);
        eprintln!("[{}] {}: ok, max |diff| {diff:.2e}", adapter_name(ctx), case.name);
    }
}

fn with_scores(mut c: Case) -> Case {
    c.options.return_attention_scores = true;
    c
}

#[test]
fn mqa_single_kv_head() {
    run(with_scores(Case::new("mqa Nq=4 Nkv=1", GqaConfig::new(8, 4, 1))));
}

#[test]
fn mha_as_many_kv_heads_as_query_heads() {
    run(with_scores(Case::new("mha Nq=Nkv=4", GqaConfig::new(8, 4, 4))));
}

#[test]
fn gqa_group_sizes_2_4_8() {
    for (nq, nkv) in [(4, 2), (8, 2), (16, 2)] {
        run(with_scores(Case::new(&format!("gqa Nq={nq} Nkv={nkv} (R={})", nq / nkv), GqaConfig::new(8, nq, nkv))));
    }
}

#[test]
fn target_shorter_equal_longer_than_source() {
    for (t, s) in [(3, 9), (6, 6), (9, 3)] {
        let mut c = with_scores(Case::new(&format!("T={t} S={s}"), GqaConfig::new(8, 4, 2)));
        (c.t, c.s) = (t, s);
        run(c);
    }
}

#[test]
fn causal_top_left_and_bottom_right() {
    for align in [CausalAlignment::TopLeft, CausalAlignment::BottomRight] {
        for (t, s) in [(4, 9), (7, 7), (9, 4), (1, 6)] {
            let mut c = with_scores(Case::new(&format!("causal {align:?} T={t} S={s}"), GqaConfig::new(8, 4, 2)));
            (c.t, c.s) = (t, s);
            c.options.use_causal_mask = true;
            c.options.causal_alignment = align;
            run(c);
        }
    }
}

#[test]
fn attention_mask_every_broadcast_shape() {
    let (b, nq, t, s) = (2, 4, 5, 7);
    for shape in [vec![b, t, s], vec![t, s], vec![1, t, s], vec![b, nq, t, s], vec![b, 1, t, s], vec![1, nq, 1, s]] {
        let mut c = with_scores(Case::new(&format!("attention_mask {shape:?}"), GqaConfig::new(8, nq, 2)));
        c.options.attention_mask = Some(random_mask(&shape, 0.7, shape.len() as u64));
        run(c);
    }
}

#[test]
fn query_value_and_key_masks() {
    let mut c = with_scores(Case::new("query+value+key masks, key given", GqaConfig::new(8, 4, 2)));
    c.dk = Some(9);
    c.options.query_mask = Some(random_mask(&[2, 5], 0.7, 1));
    c.options.value_mask = Some(random_mask(&[2, 7], 0.7, 2));
    c.options.key_mask = Some(random_mask(&[2, 7], 0.7, 3));
    run(c);
    let mut c = with_scores(Case::new("every mask kind with causal", GqaConfig::new(8, 4, 2)));
    c.options.query_mask = Some(random_mask(&[2, 5], 0.8, 4));
    c.options.value_mask = Some(random_mask(&[2, 7], 0.8, 5));
    c.options.attention_mask = Some(random_mask(&[2, 5, 7], 0.8, 6));
    c.options.use_causal_mask = true;
    run(c);
}

#[test]
fn fully_masked_rows_under_both_policies() {
    for policy in [MaskedRows::Zeros, MaskedRows::KerasDefault] {
        let mut c = with_scores(Case::new(&format!("fully masked row, {policy:?}"), GqaConfig::new(8, 4, 2)));
        let mut data = vec![true; 2 * 5 * 7];
        data[7..14].fill(false); // batch 0, query 1: no visible key
        data[35 + 28..35 + 35].fill(false); // batch 1, query 4
        c.options.attention_mask = Some(Mask::new(vec![2, 5, 7], data).unwrap());
        c.options.masked_rows = policy;
        run(c);
        // A masked query (query_mask) masks its whole row too.
        let mut c = with_scores(Case::new(&format!("query_mask row, {policy:?}"), GqaConfig::new(8, 4, 2)));
        c.options.query_mask =
            Some(Mask::new(vec![2, 5], vec![true, false, true, true, true, true, true, true, true, false]).unwrap());
        c.options.masked_rows = policy;
        run(c);
    }
}

#[test]
fn different_query_key_value_dims() {
    let mut c = with_scores(Case::new("Dq=12 Dk=9 Dv=10", GqaConfig::new(8, 4, 2)));
    c.dk = Some(9);
    run(c);
}

#[test]
fn without_bias() {
    let mut cfg = GqaConfig::new(8, 4, 2);
    cfg.use_bias = false;
    run(with_scores(Case::new("use_bias=false", cfg)));
}

#[test]
fn with_gate() {
    let mut cfg = GqaConfig::new(8, 4, 2);
    cfg.use_gate = true;
    run(with_scores(Case::new("use_gate", cfg.clone())));
    cfg.use_bias = false;
    run(Case::new("use_gate without bias", cfg));
}

#[test]
fn sliding_window_alone_and_with_causal() {
    for (causal, align) in
        [(false, CausalAlignment::TopLeft), (true, CausalAlignment::TopLeft), (true, CausalAlignment::BottomRight)]
    {
        let mut cfg = GqaConfig::new(8, 4, 2);
        cfg.sliding_window = Some(3);
        let mut c = with_scores(Case::new(&format!("sliding_window=3 causal={causal} {align:?}"), cfg));
        (c.t, c.s) = (6, 9);
        c.options.use_causal_mask = causal;
        c.options.causal_alignment = align;
        run(c);
    }
}

#[test]
fn sizes_that_are_not_tile_multiples() {
    // Tiles are 64 wide: cross one boundary in T, S, H and the projections' dims.
    let mut c = with_scores(Case::new("H=5 T=67 S=70 Dq=65 Dv=66", GqaConfig::new(5, 6, 3)));
    (c.batch, c.t, c.s, c.dq, c.dv) = (1, 67, 70, 65, 66);
    c.options.use_causal_mask = true;
    run(c);
    let mut c = Case::new("H=67 (two head tiles) T=3 S=4", GqaConfig::new(67, 2, 1));
    (c.t, c.s, c.dq, c.dv) = (3, 4, 7, 3);
    run(c);
    let mut c = Case::new("head_dim=1, length-1 query", GqaConfig::new(1, 4, 2));
    (c.t, c.s) = (1, 5);
    run(c);
}

#[test]
fn batch_greater_than_one() {
    let mut c = with_scores(Case::new("B=3 with per-batch masks", GqaConfig::new(8, 4, 2)));
    c.batch = 3;
    c.options.value_mask = Some(random_mask(&[3, 7], 0.6, 9));
    c.options.attention_mask = Some(random_mask(&[3, 5, 7], 0.8, 10));
    run(c);
}

#[test]
fn every_matmul_variant_on_every_adapter() {
    use gqa::core::{MatmulVariant, Tuning};
    for variant in [MatmulVariant::Tiled, MatmulVariant::RegisterBlocked, MatmulVariant::Textured] {
        for ctx in adapters() {
            let forced = ctx.clone().with_tuning(Tuning { matmul: variant, ..ctx.tuning() });
            let mut cfg = GqaConfig::new(5, 6, 3);
            cfg.use_gate = true;
            let mut c = with_scores(Case::new(&format!("matmul {variant:?}: odd sizes, gate"), cfg));
            (c.batch, c.t, c.s, c.dq, c.dv, c.dk) = (2, 67, 70, 65, 66, Some(13));
            let diff = c.check(&forced, 4);
            let mut c = Case::new(&format!("matmul {variant:?}: no bias"), GqaConfig::new(8, 4, 2));
            c.config.use_bias = false;
            c.check(&forced, 5);
            eprintln!("[{}] {variant:?}: ok, max |diff| {diff:.2e}", adapter_name(ctx));
        }
    }
}
