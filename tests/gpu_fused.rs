//! The fused attention path (no scores, no dropout) against the oracle, with everything that reaches
//! it: masks of every kind, causal in both alignments, window, gate, both masked-row policies, MQA to
//! MHA, sizes that are not tile multiples, batch chunks; and the same cases with it turned off.

mod common;

use common::{Case, adapter_name, adapters, random_mask};
use gqa::core::{BufferId, CausalAlignment, GqaConfig, Kernel, Mask, MaskedRows, Tuning};
use gqa::core::{FusedOutput, Precision};

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (nq, nkv) in [(4, 1), (4, 4), (8, 2), (6, 3)] {
        out.push(Case::new(&format!("Nq={nq} Nkv={nkv}"), GqaConfig::new(8, nq, nkv)));
    }
    for align in [CausalAlignment::TopLeft, CausalAlignment::BottomRight] {
        for (t, s) in [(5, 70), (70, 5), (33, 33)] {
            let mut c = Case::new(&format!("causal {align:?} T={t} S={s}"), GqaConfig::new(8, 4, 2));
            (c.t, c.s) = (t, s);
            c.options.use_causal_mask = true;
            c.options.causal_alignment = align;
            out.push(c);
        }
    }
    let mut cfg = GqaConfig::new(12, 4, 2);
    cfg.sliding_window = Some(4);
    cfg.use_gate = true;
    let mut c = Case::new("window + gate + masks, key given", cfg);
    (c.t, c.s, c.dk) = (9, 80, Some(7));
    c.options.attention_mask = Some(random_mask(&[2, 4, 9, 80], 0.75, 1));
    c.options.query_mask = Some(random_mask(&[2, 9], 0.75, 2));
    c.options.value_mask = Some(random_mask(&[2, 80], 0.75, 3));
    c.options.key_mask = Some(random_mask(&[2, 80], 0.75, 4));
    out.push(c);
    for policy in [MaskedRows::Zeros, MaskedRows::KerasDefault] {
        let mut c = Case::new(&format!("fully masked rows {policy:?}"), GqaConfig::new(8, 4, 2));
        let mut data = vec![true; 2 * 5 * 7];
        data[7..14].fill(false);
        data[63..70].fill(false);
        c.options.attention_mask = Some(Mask::new(vec![2, 5, 7], data).unwrap());
        c.options.masked_rows = policy;
        out.push(c);
    }
    let mut c = Case::new("H=200 (large head), T=3", GqaConfig::new(200, 2, 1));
    (c.t, c.s) = (3, 21);
    out.push(c);
    let mut c = Case::new("H=1, T=1", GqaConfig::new(1, 4, 2));
    (c.t, c.s) = (1, 9);
    out.push(c);
    out
}

#[test]
fn fused_attention_matches_the_oracle_and_the_unfused_path() {
    for ctx in adapters() {
        for fused in [true, false] {
            // Split decode and the block kernel off: this compares the fused kernel in one pass with
            // the separate passes.
            let tuned = ctx.clone().with_tuning(Tuning {
                fused_attention: fused,
                split_decode: false,
                block_attention: false,
                ..ctx.tuning()
            });
            for c in cases() {
                let plan = c.plan(&tuned);
                // The fused kernel holds H as vec4s: other head sizes take the unfused path.
                let expected = fused && c.config.head_dim % 4 == 0;
                assert_eq!(
                    plan.passes().any(|p| p.kernel
                        == Kernel::FusedAttention { precision: Precision::F32, output: FusedOutput::Attention }),
                    expected,
                    "{}",
                    c.name
                );
                assert_eq!(plan.buffer(BufferId::Probs).is_none(), expected, "{}: no T x S buffer when fused", c.name);
                let diff = c.check(&tuned, 7);
                eprintln!("[{}] fused={fused} {}: ok, max |diff| {diff:.2e}", adapter_name(ctx), c.name);
            }
        }
    }
}

#[test]
fn long_sequences_plan_no_scores_buffer() {
    // T = S = 8192 with 32 query heads: the fused plan never allocates a T x S buffer.
    let ctx = &adapters()[0];
    let _gl = common::gl_guard(ctx);
    // A GPU's plan: no loop cap (the plan is only inspected, never run here).
    let tuned = ctx.clone().with_tuning(Tuning::GPU).with_loop_iteration_cap(None);
    let cfg = GqaConfig::new(128, 32, 8);
    let dims = gqa::core::LayerDims { query_dim: 64, key_dim: 64, value_dim: 64 };
    let layer = gqa::gpu::GqaLayer::new(&tuned, &cfg, &common::random_weights(&cfg, dims, 1)).unwrap();
    let plan = layer.plan(&[1, 8192, 64], &[1, 8192, 64], None, &Default::default()).unwrap();
    let largest = plan.buffers.iter().map(|b| b.elems).max().unwrap();
    assert!(largest < 8192 * 8192, "largest buffer {largest} elements");
    assert!(plan.buffer(BufferId::Probs).is_none());
}

/// Mesa's llvmpipe ends any loop after 65,535 iterations per invocation (silently: results were
/// wrong beyond S * H of about 30,000 before the plans knew). On CPU adapters plans keep every kernel
/// under the cap: the fused kernel gives way to the unfused passes, and what no variant can run is an
/// error naming the cap.
#[test]
fn llvmpipe_loop_cap_regression() {
    for ctx in adapters() {
        let mut c = Case::new("fused beyond the loop cap: H=64, S=2100", GqaConfig::new(64, 2, 1));
        (c.batch, c.t, c.s, c.dq, c.dv) = (1, 3, 2100, 8, 8);
        let (plan, beyond) = {
            let _gl = common::gl_guard(ctx);
            let layer =
                gqa::gpu::GqaLayer::new(ctx, &c.config, &common::random_weights(&c.config, c.dims(), 1)).unwrap();
            (
                layer.plan(&[1, 3, 8], &[1, 2100, 8], None, &c.options).unwrap(),
                layer.plan(&[1, 17, 8], &[1, 70_000, 8], None, &c.options),
            )
        };
        if ctx.tuning().loop_iteration_cap.is_some() {
            // Not in one pass over all keys (the split decode path, with short loops, may run).
            assert!(
                plan.passes().all(|p| p.kernel
                    != Kernel::FusedAttention { precision: Precision::F32, output: FusedOutput::Attention }
                    || p.params.split_keys > 0),
                "{}: must not run the whole fused pass",
                c.name
            );
            for p in plan.passes() {
                assert!(
                    p.kernel.loop_iterations(&p.params, ctx.tuning().subgroup_sizes) <= 65_535,
                    "{}: {} over the cap",
                    c.name,
                    p.label
                );
            }
            // 17 queries (too many for the decode path) over 70,000 keys: no variant fits the cap.
            let err = beyond.unwrap_err();
            assert!(err.to_string().contains("loop_iteration_cap"), "{err}");
        }
        let diff = c.check(ctx, 3);
        eprintln!("[{}] {}: ok, max |diff| {diff:.2e}", adapter_name(ctx), c.name);
    }
}
