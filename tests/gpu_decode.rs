//! Flash-decoding (short queries over long sources: a split pass over key ranges, then a reduce)
//! against the oracle: every mask kind, both causal alignments, window, gate, both masked-row
//! policies, ragged key counts, NaN keys, on every adapter; the split pass is the decode kernel
//! (`attention_decode`) for at most 16 items per kv group and the fused kernel in split mode beyond;
//! and the plan chooses the path only where it applies.

mod common;

use common::{Case, adapter_name, adapters, random_mask};
use gqa::core::{BufferId, CallOptions, CausalAlignment, GqaConfig, Kernel, Mask, MaskedRows, Tuning};
use gqa::core::{FusedOutput, MatmulKernel, Operands, Precision, kernels};

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
        // The block attention off: with it, calls of more items than the decode kernel takes run
        // there instead of in the fused kernel's split mode.
        let tuned = ctx.clone().with_tuning(Tuning { split_decode: true, block_attention: false, ..ctx.tuning() });
        for c in cases() {
            let plan = c.plan(&tuned);
            assert!(
                plan.passes().any(|p| p.kernel == Kernel::ReduceSplits(Precision::F32)),
                "{}: decode path expected",
                c.name
            );
            assert!(plan.buffer(BufferId::Probs).is_none() && plan.buffer(BufferId::Partials).is_some(), "{}", c.name);
            let diff = c.check(&tuned, 11);
            eprintln!("[{}] {}: ok, max |diff| {diff:.2e}", adapter_name(ctx), c.name);
        }
    }
}

/// The split pass a plan for `c` uses, on `ctx`.
fn split_kernel(ctx: &gqa::gpu::GpuContext, c: &Case) -> Option<Kernel> {
    let plan = c.plan(ctx);
    assert!(
        plan.passes().any(|p| p.kernel == Kernel::ReduceSplits(Precision::F32)),
        "{}: decode path expected",
        c.name
    );
    plan.passes().find(|p| p.label == "attention_split").map(|p| p.kernel)
}

/// The decode kernel across T = 1..16 and R = 1, 2, 4, 8 (items T·R up to 16, and the fused
/// kernel's split mode beyond), H not a multiple of 32 (nor of 8) and H = 128, 256, S not a multiple of the split,
/// every mask kind, gate, both masked-row policies with fully masked rows, B > 1.
fn kernel_cases() -> Vec<Case> {
    let mut out = Vec::new();
    // (T, R, H, S): items 1..16 take the decode kernel (512 keys per split up to 4 items, 256 up to
    // 8, 128 up to 16); 24 and 32 items the fused kernel in split mode.
    let shapes = [
        (1, 1, 12, 1100),
        (5, 1, 20, 700),
        (16, 1, 36, 390),
        (1, 2, 4, 530),
        (3, 2, 12, 900),
        (8, 2, 8, 300),
        (1, 4, 20, 1500),
        (2, 4, 36, 777),
        (4, 4, 12, 650),
        (1, 8, 12, 1030),
        (2, 8, 20, 513),
        (3, 8, 12, 600),
        (4, 8, 4, 520),
        // A real decoding step's H (four key groups in phase 3), and H = 256 with 16 items (two).
        (1, 4, 128, 1200),
        (2, 8, 256, 700),
    ];
    for (i, &(t, r, h, s)) in shapes.iter().enumerate() {
        let nkv = if i.is_multiple_of(2) { 2 } else { 1 };
        let mut cfg = GqaConfig::new(h, r * nkv, nkv);
        cfg.use_gate = i.is_multiple_of(3);
        if i % 4 == 1 {
            cfg.sliding_window = Some(200 + 37 * i);
        }
        let mut c = Case::new(&format!("decode kernel: T={t} R={r} H={h} S={s} Nkv={nkv}"), cfg);
        (c.batch, c.t, c.s, c.dq, c.dv) = (2, t, s, 16, 12);
        c.options.use_causal_mask = i.is_multiple_of(2);
        c.options.causal_alignment = CausalAlignment::BottomRight;
        match i % 4 {
            0 => c.options.value_mask = Some(random_mask(&[2, s], 0.7, i as u64)),
            1 => c.options.attention_mask = Some(random_mask(&[2, t, s], 0.8, i as u64)),
            2 => {
                c.dk = Some(10);
                c.options.key_mask = Some(random_mask(&[2, s], 0.6, i as u64));
            }
            _ => c.options.query_mask = Some(random_mask(&[2, t], 0.7, i as u64)),
        }
        c.options.masked_rows = if i.is_multiple_of(2) { MaskedRows::KerasDefault } else { MaskedRows::Zeros };
        out.push(c);
    }
    for policy in [MaskedRows::Zeros, MaskedRows::KerasDefault] {
        // Batch 1 sees no key at all; batch 0 sees keys in the last split only, and for query 0 no
        // key (an attention mask row of zeros).
        let mut c = Case::new(&format!("decode kernel: fully masked rows, {policy:?}"), GqaConfig::new(12, 8, 2));
        (c.batch, c.t, c.s) = (2, 3, 1000);
        let mut vm = vec![false; 2 * 1000];
        vm[990..1000].fill(true);
        c.options.value_mask = Some(Mask::new(vec![2, 1000], vm).unwrap());
        let mut am = vec![true; 2 * 3 * 1000];
        am[..1000].fill(false);
        c.options.attention_mask = Some(Mask::new(vec![2, 3, 1000], am).unwrap());
        c.options.masked_rows = policy;
        out.push(c);
    }
    out
}

#[test]
fn decode_kernel_matches_the_oracle() {
    for ctx in adapters() {
        // The block attention off: the calls of more than 16 items test the fused kernel's split mode.
        let ctx = &ctx.clone().with_tuning(Tuning { block_attention: false, ..ctx.tuning() });
        for c in kernel_cases() {
            let items = c.t * c.config.num_query_heads / c.config.num_key_value_heads;
            let want = if items <= kernels::decode::MAX_ITEMS {
                Kernel::DecodeAttention(Operands::Storage)
            } else {
                Kernel::FusedAttention { precision: Precision::F32, output: FusedOutput::Partials }
            };
            assert_eq!(split_kernel(ctx, &c), Some(want), "{}: {items} items", c.name);
            let diff = c.check(ctx, 5);
            eprintln!("[{}] {}: ok, max |diff| {diff:.2e}", adapter_name(ctx), c.name);
        }
    }
}

/// The decode kernel and the fused kernel in split mode compute the same thing: the tuning flag
/// switches between them.
#[test]
fn decode_kernel_flag_selects_the_split_pass() {
    let ctx = &adapters()[0];
    let mut c = Case::new("T=1 R=4", GqaConfig::new(8, 8, 2));
    (c.t, c.s) = (1, 2000);
    assert_eq!(split_kernel(ctx, &c), Some(Kernel::DecodeAttention(Operands::Storage)));
    let off = ctx.clone().with_tuning(Tuning { decode_kernel: false, ..ctx.tuning() });
    assert_eq!(
        split_kernel(&off, &c),
        Some(Kernel::FusedAttention { precision: Precision::F32, output: FusedOutput::Partials })
    );
    c.check(&off, 2);
}

/// A NaN in the keys makes every row that sees it NaN, and no row that does not (the key masked
/// out for batch 1), in the decode kernel and in the fused kernel's split mode as in the oracle.
#[test]
fn decode_kernel_propagates_nan_keys() {
    let cfg = GqaConfig::new(12, 8, 2);
    let (b, t, s, dq, dk, dv) = (2, 2, 1200, 16, 10, 12);
    let w = common::random_weights(&cfg, gqa::core::LayerDims { query_dim: dq, key_dim: dk, value_dim: dv }, 4);
    let mut r = common::rng(9);
    let q = common::random_tensor(&[b, t, dq], &mut r);
    let v = common::random_tensor(&[b, s, dv], &mut r);
    let mut k = common::random_tensor(&[b, s, dk], &mut r);
    k.data_mut()[700 * dk + 3] = f32::NAN; // batch 0, key 700 (split 1)
    k.data_mut()[(s + 1100) * dk] = f32::NAN; // batch 1, key 1100, masked below
    let mut km = vec![true; b * s];
    km[s + 1100] = false;
    let opts = CallOptions { key_mask: Some(Mask::new(vec![b, s], km).unwrap()), ..Default::default() };
    let want = gqa::reference::forward(&cfg, &w, &q, &v, Some(&k), &opts).unwrap();
    let per_b = t * dq;
    assert!(want.output.data()[..per_b].iter().all(|x| x.is_nan()), "batch 0 must be NaN");
    assert!(want.output.data()[per_b..].iter().all(|x| x.is_finite()), "batch 1 must be finite");
    for (ctx, decode_kernel) in adapters().iter().flat_map(|c| [(c, true), (c, false)]) {
        let _gl = common::gl_guard(ctx);
        let ctx = &ctx.clone().with_tuning(Tuning { decode_kernel, ..ctx.tuning() });
        let layer = gqa::gpu::GqaLayer::new(ctx, &cfg, &w).unwrap();
        let plan = layer.plan(&[b, t, dq], &[b, s, dv], Some(&[b, s, dk]), &opts).unwrap();
        let split = if decode_kernel {
            Kernel::DecodeAttention(Operands::Storage)
        } else {
            Kernel::FusedAttention { precision: Precision::F32, output: FusedOutput::Partials }
        };
        assert!(plan.passes().any(|p| p.label == "attention_split" && p.kernel == split));
        let got = layer.forward(&q, &v, Some(&k), &opts).unwrap();
        common::assert_close(
            &format!("{}: NaN key, split pass {}", adapter_name(ctx), split.name()),
            got.output.data(),
            want.output.data(),
            common::F32,
        );
    }
}

#[test]
fn decode_applies_only_to_short_queries_over_long_sources() {
    let ctx = &adapters()[0];
    let _gl = common::gl_guard(ctx);
    let tuned = ctx.clone().with_tuning(Tuning {
        split_decode: true,
        fused_attention: false,
        block_attention: false,
        ..ctx.tuning()
    });
    let cfg = GqaConfig::new(8, 4, 2);
    let layer =
        gqa::gpu::GqaLayer::new(&tuned, &cfg, &common::random_weights(&cfg, Case::new("", cfg.clone()).dims(), 1))
            .unwrap();
    let uses = |t: usize, s: usize, scores: bool| {
        let opts = gqa::core::CallOptions { return_attention_scores: scores, ..Default::default() };
        let plan = layer.plan(&[2, t, 12], &[2, s, 10], None, &opts).unwrap();
        plan.passes().any(|p| p.kernel == Kernel::ReduceSplits(Precision::F32))
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
    assert!(
        plan.passes().all(|p| p.kernel != Kernel::ReduceSplits(Precision::F32)),
        "S < 2 splits, fused kernel on: one pass"
    );
    assert!(!uses(1, 4096, true), "scores requested: the unfused passes");
}

/// Products of few rows (B * T <= 16, sizes multiples of 4) take the rows-of-4 matmul under every
/// tuning (its texture form under the textured one): with and without bias, with the gate's sigmoid,
/// row counts that are not multiples of 4.
#[test]
fn few_row_projections_use_the_rows4_matmul() {
    use gqa::core::MatmulVariant;
    for ctx in adapters() {
        let variants = [
            (MatmulVariant::Textured, Kernel::Matmul(MatmulKernel::Rows4(Operands::Texture))),
            (MatmulVariant::RegisterBlocked, Kernel::Matmul(MatmulKernel::Rows4(Operands::Storage))),
            (MatmulVariant::Tiled, Kernel::Matmul(MatmulKernel::Rows4(Operands::Storage))),
        ];
        for (variant, want) in variants {
            let ctx = ctx.clone().with_tuning(Tuning { matmul: variant, ..ctx.tuning() });
            for (b, t, bias, gate) in
                [(1, 1, true, false), (3, 1, false, true), (2, 3, true, true), (1, 7, true, false)]
            {
                let cfg = GqaConfig { use_bias: bias, use_gate: gate, ..GqaConfig::new(8, 4, 2) };
                let mut c = Case::new(&format!("rows4 {variant:?}: B={b} T={t} bias={bias} gate={gate}"), cfg);
                (c.batch, c.t, c.s, c.dq, c.dv) = (b, t, 5, 16, 8);
                c.options.use_causal_mask = true;
                c.options.causal_alignment = CausalAlignment::BottomRight;
                // The plan alone (no GPU work outside the harness's GL guard, which `check` takes).
                let problem = gqa::core::Problem::new(&c.config, &[b, t, 16], &[b, 5, 8], None, &c.options).unwrap();
                let plan = gqa::core::Plan::tuned(&problem, &ctx.limits(), ctx.tuning()).unwrap();
                let kernel = |label: &str| plan.passes().find(|p| p.label == label).map(|p| p.kernel);
                for label in ["project_query", "project_key", "project_value", "project_output"] {
                    assert_eq!(kernel(label), Some(want), "{}: {label}", c.name);
                }
                c.check(&ctx, 3);
            }
        }
    }
}
