//! The subgroup variant of the masked softmax (`softmax_masked_subgroup.wgsl`) against the oracle on
//! every adapter whose device has `Features::SUBGROUP` (lavapipe: subgroups of 8), with the
//! workgroup-memory baseline run on the same cases beside it; and the choice itself: plans use the
//! subgroup kernel exactly where the device has the feature (GL llvmpipe has none), and a device
//! opened without it (`from_device`) gets the baseline.
//!
//! Every case forces the separate logits / softmax / PV passes (no fused kernel, no split decode) so
//! the softmax really runs; row lengths are chosen not to be multiples of 8, 32 or 64.

mod common;

use common::{Case, adapter_name, adapters, random_mask, random_tensor, random_weights, rng};
use gqa::core::Lanes;
use gqa::core::{CallOptions, GqaConfig, Kernel, LayerDims, Mask, MaskedRows, Plan, Problem, Tuning};
use gqa::gpu::{GpuContext, GpuError, GqaLayer};

/// Whether the adapter behind `ctx` offers subgroups (what `GpuContext::from_adapter` then
/// requests).
fn adapter_has_subgroups(ctx: &GpuContext) -> bool {
    ctx.device().features().contains(wgpu::Features::SUBGROUP)
}

/// The separate passes, with the subgroup variants on or off.
fn unfused(ctx: &GpuContext, subgroups: bool) -> GpuContext {
    let tuning =
        Tuning { fused_attention: false, split_decode: false, block_attention: false, subgroups, ..ctx.tuning() };
    ctx.clone().with_tuning(tuning)
}

fn softmax_kernels(ctx: &GpuContext, c: &Case) -> Vec<Kernel> {
    // The plan alone: no GPU work outside the harness's GL guard (which `check` takes).
    let problem = Problem::new(&c.config, &[c.batch, c.t, c.dq], &[c.batch, c.s, c.dv], None, &c.options).unwrap();
    let plan = Plan::tuned(&problem, &ctx.limits(), ctx.tuning()).unwrap();
    plan.passes().filter(|p| p.label == "softmax").map(|p| p.kernel).collect()
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    // Row lengths around and between the subgroup sizes that exist (1 .. 128) and the workgroup (64).
    for s in [1, 3, 7, 9, 31, 33, 63, 65, 100, 129, 255, 1000] {
        let mut c = Case::new(&format!("S={s}, random mask"), GqaConfig::new(8, 4, 2));
        (c.batch, c.t, c.s) = (2, 3, s);
        c.options.attention_mask = Some(random_mask(&[2, 3, s], 0.7, s as u64));
        c.options.return_attention_scores = s % 2 == 1;
        out.push(c);
    }
    for (t, s) in [(37, 37), (5, 71)] {
        let mut c = Case::new(&format!("causal T={t} S={s}, scores"), GqaConfig::new(8, 4, 2));
        (c.t, c.s) = (t, s);
        c.options.use_causal_mask = true;
        c.options.return_attention_scores = true;
        out.push(c);
    }
    let mut cfg = GqaConfig::new(8, 6, 3);
    cfg.sliding_window = Some(5);
    let mut c = Case::new("window + query/value/key masks, S=45", cfg);
    (c.t, c.s) = (6, 45);
    c.options.query_mask = Some(random_mask(&[2, 6], 0.8, 11));
    c.options.value_mask = Some(random_mask(&[2, 45], 0.8, 12));
    c.options.key_mask = Some(random_mask(&[2, 45], 0.8, 13));
    c.options.return_attention_scores = true;
    out.push(c);
    for policy in [MaskedRows::Zeros, MaskedRows::KerasDefault] {
        for s in [7, 70] {
            let mut c = Case::new(&format!("fully masked rows {policy:?}, S={s}"), GqaConfig::new(8, 4, 2));
            c.s = s;
            let mut data = vec![true; 2 * 5 * s];
            data[s..2 * s].fill(false); // batch 0, query 1
            data[9 * s..10 * s].fill(false); // batch 1, query 4
            c.options.attention_mask = Some(Mask::new(vec![2, 5, s], data).unwrap());
            c.options.masked_rows = policy;
            c.options.return_attention_scores = true;
            out.push(c);
        }
    }
    out
}

#[test]
fn subgroup_softmax_matches_the_oracle_on_every_adapter_with_subgroups() {
    let mut ran = 0;
    for ctx in adapters() {
        let has = adapter_has_subgroups(ctx);
        assert_eq!(ctx.tuning().subgroups, has, "{}: the tuning follows the device's features", adapter_name(ctx));
        let variants: &[bool] = if has { &[true, false] } else { &[false] };
        for &subgroups in variants {
            let tuned = unfused(ctx, subgroups);
            let want = if subgroups { Kernel::Softmax(Lanes::Subgroup) } else { Kernel::Softmax(Lanes::Workgroup) };
            for c in cases() {
                let kernels = softmax_kernels(&tuned, &c);
                assert!(!kernels.is_empty() && kernels.iter().all(|k| *k == want), "{}: {kernels:?}", c.name);
                let diff = c.check(&tuned, 3);
                eprintln!("[{}] subgroups={subgroups} {}: ok, max |diff| {diff:.2e}", adapter_name(ctx), c.name);
            }
        }
        if has {
            ran += 1;
            let info = ctx.adapter_info();
            eprintln!("[{}] subgroup sizes {}..{}", adapter_name(ctx), info.subgroup_min_size, info.subgroup_max_size);
        }
    }
    // Never pass by skipping: the software adapters CI installs (lavapipe) have subgroups.
    if ran == 0 && std::env::var("GQA_ALLOW_NO_SUBGROUPS").as_deref() != Ok("1") {
        panic!("no adapter with Features::SUBGROUP: the subgroup kernel was not run (set GQA_ALLOW_NO_SUBGROUPS=1)");
    }
}

/// NaN and infinity reach the softmax rows: each must come out as the oracle's (NaN rows NaN in the
/// visible keys, masked keys exactly 0), with both kernels.
#[test]
fn nan_and_inf_propagate_like_the_oracle() {
    let cfg = GqaConfig::new(4, 4, 2);
    let dims = LayerDims { query_dim: 6, key_dim: 6, value_dim: 6 };
    let w = random_weights(&cfg, dims, 2);
    let mut r = rng(3);
    let (t, s) = (5, 75);
    let mut q = random_tensor(&[2, t, 6], &mut r);
    let mut v = random_tensor(&[2, s, 6], &mut r);
    q.data_mut()[6 + 2] = f32::NAN; // batch 0, query 1: every logit of its rows is NaN
    v.data_mut()[s * 6 + 40 * 6 + 3] = f32::NAN; // batch 1, key 40: one NaN logit per row
    v.data_mut()[s * 6 + 3 * 6] = f32::INFINITY; // batch 1, key 3
    let mut mask = vec![true; 2 * t * s];
    mask[t * s + 3] = false; // batch 1, query 0 cannot see key 3
    mask[t * s + s + 40] = false; // batch 1, query 1 cannot see key 40
    let opts = CallOptions {
        attention_mask: Some(Mask::new(vec![2, t, s], mask).unwrap()),
        return_attention_scores: true,
        ..Default::default()
    };
    let want = gqa::reference::forward(&cfg, &w, &q, &v, None, &opts).unwrap();
    assert!(want.scores.as_ref().unwrap().data().iter().any(|x| x.is_nan()), "the case must produce NaN");
    for ctx in adapters() {
        let variants: &[bool] = if adapter_has_subgroups(ctx) { &[true, false] } else { &[false] };
        for &subgroups in variants {
            let tuned = unfused(ctx, subgroups);
            let _gl = common::gl_guard(&tuned);
            let got = GqaLayer::new(&tuned, &cfg, &w).unwrap().forward(&q, &v, None, &opts).unwrap();
            let name = format!("{} subgroups={subgroups}", adapter_name(ctx));
            common::assert_close(&format!("{name}: output"), got.output.data(), want.output.data(), common::F32);
            common::assert_close(
                &format!("{name}: scores"),
                got.scores.unwrap().data(),
                want.scores.as_ref().unwrap().data(),
                common::F32,
            );
        }
    }
}

/// A device opened without `Features::SUBGROUP` on an adapter that offers it (an application's own
/// device through `from_device`, or one with WebGPU's default or downlevel limits) compiles no
/// subgroup kernel and plans the baseline; forcing the variant there is an error, not a crash.
#[test]
fn devices_without_the_feature_get_the_baseline() {
    for ctx in adapters().iter().filter(|c| adapter_has_subgroups(c)) {
        let backends = wgpu::Backends::from(ctx.adapter_info().backend);
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let adapter = pollster::block_on(instance.enumerate_adapters(backends))
            .into_iter()
            .find(|a| a.get_info() == *ctx.adapter_info())
            .expect("the same adapter again");
        for limits in [wgpu::Limits::default(), wgpu::Limits::downlevel_defaults()] {
            let (device, queue) = pollster::block_on(
                adapter.request_device(&wgpu::DeviceDescriptor { required_limits: limits, ..Default::default() }),
            )
            .unwrap();
            let plain = GpuContext::from_device(device, queue, adapter.get_info()).unwrap();
            assert!(!plain.tuning().subgroups, "{}: no feature, no subgroup variant", adapter_name(ctx));
            let mut c = Case::new("baseline on a device without SUBGROUP", GqaConfig::new(8, 4, 2));
            c.options.return_attention_scores = true;
            assert_eq!(softmax_kernels(&plain, &c), [Kernel::Softmax(Lanes::Workgroup)]);
            c.check(&plain, 4);

            let forced = plain.clone().with_tuning(Tuning { subgroups: true, ..plain.tuning() });
            let w = random_weights(&c.config, c.dims(), 1);
            let mut r = rng(1);
            let q = random_tensor(&[2, 5, 12], &mut r);
            let v = random_tensor(&[2, 7, 10], &mut r);
            let err = GqaLayer::new(&forced, &c.config, &w).unwrap().forward(&q, &v, None, &c.options).unwrap_err();
            assert!(
                matches!(&err, GpuError::Unsupported { what, .. } if what.contains("SUBGROUP")),
                "{}: {err}",
                adapter_name(ctx)
            );
        }
    }
}
