//! The block attention kernel (`attention_block`: blocks of 16 items, lanes over keys then
//! over H, an online softmax over key chunks) against the oracle on every adapter, forced on by the
//! tuning: query lengths 1 to 40, sources that are not multiples of the chunk, MQA/GQA/MHA, head
//! sizes 4 to 128, every mask kind, causal in both alignments, window, gate, both masked-row
//! policies with fully masked rows, NaN keys, batches, and the plan's choice of the kernel. Each
//! case runs every form: Q, K and V read from storage buffers (`attention_block`) and from
//! textures (`attention_block_tex`, what a tuning with textured projections takes), and, where
//! the device has subgroups, the texture form that shares phase 3's probability loads across a
//! subgroup (`attention_block_tex_subgroup`, what such a tuning takes where the subgroup sizes
//! are unknown or do not fit the head) and the kernel with one subgroup per block of 8 items
//! (`attention_subgroup`, what it takes where they fit).

mod common;

use common::{Case, adapter_name, adapters, random_mask};
use gqa::core::{BlockAttention, BlockLanes, Operands, kernels};
use gqa::core::{BufferId, CallOptions, CausalAlignment, GqaConfig, Kernel, Mask, MaskedRows, MatmulVariant, Tuning};
use gqa::gpu::GpuContext;

/// The adapter's tuning with the block kernel on for every query length.
fn block(ctx: &GpuContext) -> GpuContext {
    ctx.clone().with_tuning(Tuning { block_attention: true, split_decode: false, ..ctx.tuning() })
}

/// The block kernel's forms: Q, K and V in storage buffers or textures, and the subgroup
/// variants of the texture form.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Form {
    /// `attention_block`.
    Storage,
    /// `attention_block_tex`.
    Texture,
    /// `attention_block_tex_subgroup`: the subgroup sizes left unknown.
    TextureSubgroup,
    /// `attention_subgroup`: the device's subgroup sizes, where they fit the head.
    Subgroup,
}

/// [`block`] in `form`: the projections' operands in textures (the block kernel reads Q, K and V
/// from textures) or in storage buffers, and the subgroup variants on or off.
fn block_with(ctx: &GpuContext, form: Form) -> GpuContext {
    let textured = form != Form::Storage;
    let matmul = if textured { MatmulVariant::Textured } else { MatmulVariant::RegisterBlocked };
    let ctx = block(ctx);
    let device = ctx.tuning();
    let subgroups = matches!(form, Form::TextureSubgroup | Form::Subgroup);
    let subgroup_sizes = if form == Form::Subgroup { device.subgroup_sizes } else { [0, 0] };
    let tuning = Tuning { matmul, subgroups, subgroup_sizes, ..device };
    ctx.with_tuning(tuning)
}

/// The block kernel a form is expected to take for heads of `head_dim`.
fn expected(ctx: &GpuContext, form: Form, head_dim: usize) -> Kernel {
    match form {
        Form::Storage => {
            Kernel::BlockAttention(BlockAttention { operands: Operands::Storage, lanes: BlockLanes::Workgroup })
        }
        Form::Texture => {
            Kernel::BlockAttention(BlockAttention { operands: Operands::Texture, lanes: BlockLanes::Workgroup })
        }
        Form::TextureSubgroup => {
            Kernel::BlockAttention(BlockAttention { operands: Operands::Texture, lanes: BlockLanes::SharedLoads })
        }
        Form::Subgroup if kernels::block::subgroup_fits(head_dim, ctx.tuning().subgroup_sizes) => {
            Kernel::BlockAttention(BlockAttention { operands: Operands::Texture, lanes: BlockLanes::Subgroup })
        }
        Form::Subgroup => {
            Kernel::BlockAttention(BlockAttention { operands: Operands::Texture, lanes: BlockLanes::SharedLoads })
        }
    }
}

/// The forms to run on an adapter; the subgroup ones where the device has subgroups (its own
/// tuning says so).
fn forms(ctx: &GpuContext) -> Vec<Form> {
    let mut forms = vec![Form::Storage, Form::Texture];
    if ctx.tuning().subgroups {
        // Never skip the subgroup kernel silently: a device with subgroups reports their sizes
        // (lavapipe: 8), and they fit small heads.
        let sizes = ctx.tuning().subgroup_sizes;
        assert!(kernels::block::subgroup_fits(8, sizes), "{}: subgroup sizes {sizes:?}", adapter_name(ctx));
        forms.extend([Form::TextureSubgroup, Form::Subgroup]);
    }
    forms
}

fn uses_block(ctx: &GpuContext, c: &Case) -> bool {
    block_kernel(ctx, c).is_some()
}

/// The block kernel the plan of case `c` uses, if any.
fn block_kernel(ctx: &GpuContext, c: &Case) -> Option<Kernel> {
    let plan = c.plan(ctx);
    let kernel = plan.passes().map(|p| p.kernel).find(|k| k.is_block_attention());
    if kernel.is_some() {
        assert!(plan.buffer(BufferId::Probs).is_none(), "{}: no T x S buffer", c.name);
        for p in plan.passes() {
            if let Some(cap) = ctx.tuning().loop_iteration_cap {
                assert!(
                    p.kernel.loop_iterations(&p.params, ctx.tuning().subgroup_sizes) <= cap,
                    "{}: {} over the cap",
                    c.name,
                    p.label
                );
            }
        }
    }
    kernel
}

fn run(cases: Vec<Case>) {
    for base in adapters() {
        for form in forms(base) {
            let ctx = &block_with(base, form);
            for c in &cases {
                let kernel = block_kernel(ctx, c);
                let want = expected(ctx, form, c.config.head_dim);
                assert_eq!(kernel, Some(want), "{}: the plan must use the block kernel", c.name);
                let diff = c.check(ctx, 7);
                eprintln!("[{}] {} {:?}: ok, max |diff| {diff:.2e}", adapter_name(ctx), c.name, kernel.unwrap());
            }
        }
    }
}

#[test]
fn block_kernel_over_query_lengths_heads_and_groups() {
    let mut cases = Vec::new();
    // (H, Nq, Nkv): MHA, GQA R=2 and 4, MQA R=8.
    let shapes = [(4, 2, 2), (12, 4, 2), (64, 4, 1), (128, 8, 1), (8, 8, 2)];
    for (k, t) in [1usize, 2, 3, 5, 7, 13, 16, 17, 29, 33, 40].into_iter().enumerate() {
        let (h, nq, nkv) = shapes[k % shapes.len()];
        let s = [1usize, 9, 127, 129, 300, 260][k % 6];
        let mut c = Case::new(&format!("T={t} S={s} H={h} Nq={nq} Nkv={nkv}"), GqaConfig::new(h, nq, nkv));
        (c.t, c.s) = (t, s);
        c.batch = 1 + k % 2;
        cases.push(c);
    }
    run(cases);
}

#[test]
fn block_kernel_with_masks_causal_window_and_gate() {
    let mut cases = Vec::new();
    for align in [CausalAlignment::TopLeft, CausalAlignment::BottomRight] {
        for (t, s) in [(5, 140), (140, 5), (37, 37), (20, 300)] {
            let mut c = Case::new(&format!("causal {align:?} T={t} S={s}"), GqaConfig::new(8, 4, 2));
            (c.t, c.s) = (t, s);
            c.options.use_causal_mask = true;
            c.options.causal_alignment = align;
            cases.push(c);
        }
    }
    let mut cfg = GqaConfig::new(12, 4, 2);
    cfg.sliding_window = Some(4);
    cfg.use_gate = true;
    let mut c = Case::new("window + gate + every mask, key given", cfg);
    (c.t, c.s, c.dk) = (19, 150, Some(7));
    c.options.attention_mask = Some(random_mask(&[2, 4, 19, 150], 0.75, 1));
    c.options.query_mask = Some(random_mask(&[2, 19], 0.75, 2));
    c.options.value_mask = Some(random_mask(&[2, 150], 0.75, 3));
    c.options.key_mask = Some(random_mask(&[2, 150], 0.75, 4));
    cases.push(c);
    let mut cfg = GqaConfig::new(64, 8, 2);
    cfg.use_gate = true;
    let mut c = Case::new("gate, R=4, H=64", cfg);
    (c.t, c.s) = (18, 200);
    cases.push(c);
    // The chunk loop's key range (block_keys): causal and window cuts over several chunks, with rows
    // that see no key under either policy (Keras' averages V over all keys for them, so the range
    // is not cut there).
    for policy in [MaskedRows::Zeros, MaskedRows::KerasDefault] {
        let mut c = Case::new(&format!("causal T=S=300, {policy:?}"), GqaConfig::new(8, 4, 2));
        (c.t, c.s) = (300, 300);
        c.options.use_causal_mask = true;
        c.options.masked_rows = policy;
        cases.push(c);
        let mut c =
            Case::new(&format!("causal bottom-right T=150 S=20: blind rows, {policy:?}"), GqaConfig::new(8, 4, 2));
        (c.t, c.s) = (150, 20);
        c.options.use_causal_mask = true;
        c.options.causal_alignment = CausalAlignment::BottomRight;
        c.options.masked_rows = policy;
        cases.push(c);
        let mut cfg = GqaConfig::new(8, 4, 2);
        cfg.sliding_window = Some(5);
        let mut c = Case::new(&format!("window 5, T=S=290, {policy:?}"), cfg.clone());
        (c.t, c.s) = (290, 290);
        c.options.masked_rows = policy;
        cases.push(c);
        let mut c = Case::new(&format!("window 5, T=160 S=20: blind rows, {policy:?}"), cfg);
        (c.t, c.s) = (160, 20);
        c.options.masked_rows = policy;
        cases.push(c);
    }
    for policy in [MaskedRows::Zeros, MaskedRows::KerasDefault] {
        let mut c = Case::new(&format!("fully masked rows {policy:?}"), GqaConfig::new(8, 4, 2));
        (c.t, c.s) = (21, 133);
        let mut data = vec![true; 2 * 21 * 133];
        data[133..266].fill(false); // batch 0, query 1
        data[(21 + 20) * 133..].fill(false); // batch 1, query 20
        c.options.attention_mask = Some(Mask::new(vec![2, 21, 133], data).unwrap());
        c.options.masked_rows = policy;
        cases.push(c);
    }
    run(cases);
}

/// A NaN in the keys makes every row that sees it NaN, and no row that does not (the key masked
/// out for batch 1).
#[test]
fn block_kernel_propagates_nan_keys() {
    let cfg = GqaConfig::new(12, 8, 2);
    let (b, t, s, dq, dk, dv) = (2, 20, 300, 16, 10, 12);
    let w = common::random_weights(&cfg, gqa::core::LayerDims { query_dim: dq, key_dim: dk, value_dim: dv }, 4);
    let mut r = common::rng(9);
    let q = common::random_tensor(&[b, t, dq], &mut r);
    let v = common::random_tensor(&[b, s, dv], &mut r);
    let mut k = common::random_tensor(&[b, s, dk], &mut r);
    k.data_mut()[200 * dk + 3] = f32::NAN; // batch 0, key 200 (chunk 1)
    k.data_mut()[(s + 250) * dk] = f32::NAN; // batch 1, key 250, masked below
    let mut km = vec![true; b * s];
    km[s + 250] = false;
    let opts = CallOptions { key_mask: Some(Mask::new(vec![b, s], km).unwrap()), ..Default::default() };
    let want = gqa::reference::forward(&cfg, &w, &q, &v, Some(&k), &opts).unwrap();
    let per_b = t * dq;
    assert!(want.output.data()[..per_b].iter().all(|x| x.is_nan()), "batch 0 must be NaN");
    assert!(want.output.data()[per_b..].iter().all(|x| x.is_finite()), "batch 1 must be finite");
    for base in adapters() {
        let _gl = common::gl_guard(base);
        for form in forms(base) {
            let ctx = &block_with(base, form);
            let layer = gqa::gpu::GqaLayer::new(ctx, &cfg, &w).unwrap();
            let plan = layer.plan(&[b, t, dq], &[b, s, dv], Some(&[b, s, dk]), &opts).unwrap();
            let want_kernel = expected(ctx, form, cfg.head_dim);
            assert!(plan.passes().any(|p| p.kernel == want_kernel));
            let got = layer.forward(&q, &v, Some(&k), &opts).unwrap();
            common::assert_close(
                &format!("{}: NaN key, {want_kernel:?}", adapter_name(ctx)),
                got.output.data(),
                want.output.data(),
                common::F32,
            );
        }
    }
}

/// A NaN or an infinity in V past the causal horizon of some rows: the block kernels do not visit
/// those keys, yet Keras multiplies their zero probabilities by V (0 * NaN, 0 * inf), so every row
/// comes out NaN. The plan checks the values first (`check_values`, `v_finite`) and the
/// kernels scan the keys they skipped only where that check found a non-finite value: this fails if
/// the check missed one (or the kernels skipped the scan regardless).
#[test]
fn block_kernel_propagates_non_finite_values_past_the_causal_horizon() {
    let cfg = GqaConfig::new(8, 4, 2);
    let (b, t, s, d) = (2, 40, 300, 16);
    let w = common::random_weights(&cfg, gqa::core::LayerDims { query_dim: d, key_dim: d, value_dim: d }, 6);
    let mut r = common::rng(10);
    let q = common::random_tensor(&[b, t, d], &mut r);
    let mut v = common::random_tensor(&[b, s, d], &mut r);
    v.data_mut()[270 * d + 5] = f32::NAN; // batch 0, key 270: past every query's horizon
    v.data_mut()[(s + 290) * d] = f32::INFINITY; // batch 1, key 290
    let opts = CallOptions { use_causal_mask: true, ..Default::default() };
    let want = gqa::reference::forward(&cfg, &w, &q, &v, None, &opts).unwrap();
    assert!(want.output.data().iter().all(|x| x.is_nan()), "Keras makes every row NaN here");
    let finite = common::random_tensor(&[b, s, d], &mut r);
    let want_finite = gqa::reference::forward(&cfg, &w, &q, &finite, None, &opts).unwrap();
    for base in adapters() {
        let _gl = common::gl_guard(base);
        for form in forms(base) {
            let ctx = &block_with(base, form);
            let layer = gqa::gpu::GqaLayer::new(ctx, &cfg, &w).unwrap();
            let plan = layer.plan(&[b, t, d], &[b, s, d], None, &opts).unwrap();
            let want_kernel = expected(ctx, form, cfg.head_dim);
            assert!(plan.passes().any(|p| p.kernel == want_kernel));
            let check = plan.passes().find(|p| p.label == "check_values").expect("the values checked");
            assert_eq!(
                (check.kernel, check.params.values_unknown),
                (Kernel::CheckValues, 0),
                "a real check, not 'unknown'"
            );
            let name = adapter_name(ctx);
            let got = layer.forward(&q, &v, None, &opts).unwrap();
            common::assert_close(
                &format!("{name}: non-finite V, {want_kernel:?}"),
                got.output.data(),
                want.output.data(),
                common::F32,
            );
            // And the same layer with finite values right after (the check's words rewritten).
            let got = layer.forward(&q, &finite, None, &opts).unwrap();
            common::assert_close(
                &format!("{name}: finite V, {want_kernel:?}"),
                got.output.data(),
                want_finite.output.data(),
                common::F32,
            );
        }
    }
}

/// The plan takes the block kernel only where it applies: not with scores, dropout, a head size
/// that is not a multiple of 4, or the flag off; short queries keep the split path when it is on.
#[test]
fn block_kernel_applies_where_it_should() {
    let base = &adapters()[0];
    let ctx = &block(base);
    let mut c = Case::new("T=20 S=50", GqaConfig::new(8, 4, 2));
    (c.t, c.s) = (20, 50);
    assert!(uses_block(ctx, &c));
    let off = base.clone().with_tuning(Tuning { block_attention: false, ..base.tuning() });
    assert!(!uses_block(&off, &c), "flag off");
    let mut scores = c.clone();
    scores.options.return_attention_scores = true;
    assert!(!uses_block(ctx, &scores), "scores requested");
    let mut odd = Case::new("H=6", GqaConfig::new(6, 4, 2));
    (odd.t, odd.s) = (20, 50);
    assert!(!uses_block(ctx, &odd), "H not a multiple of 4");
    let split = base.clone().with_tuning(Tuning { block_attention: true, split_decode: true, ..base.tuning() });
    let mut short = c.clone();
    (short.t, short.s) = (1, 4096);
    assert!(!uses_block(&split, &short), "short queries over long sources: the split path");
    let mut long = c.clone();
    (long.t, long.s) = (20, 4096);
    assert!(uses_block(&split, &long));
    for form in forms(base) {
        let ctx = &block_with(base, form);
        assert_eq!(block_kernel(ctx, &c), Some(expected(ctx, form, 8)), "{form:?}");
    }
}
