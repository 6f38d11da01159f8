//! f16 storage with f32 accumulation (Keras' `mixed_float16`) against the f64 oracle at
//! atol = rtol = 5e-3, on every adapter with `SHADER_F16`; and the f32 fallback, at the f32
//! tolerance, where the device lacks it (GL llvmpipe, or a device opened without the feature).

mod common;

use common::{Case, F16, F32, adapter_name, adapters, f16_adapters, random_mask, random_weights};
use gqa::core::{BufferId, CallOptions, CausalAlignment, Dense, GqaConfig, Kernel, LayerDims, Precision, Tuning};
use gqa::core::{FusedOutput, Lanes, MatmulKernel, MatmulPrecision};
use gqa::gpu::{GpuContext, GqaLayer};

/// The contexts to run an f16 case on: each f16 adapter with its own tuning (separate attention
/// passes on CPU adapters) and with the fused attention kernel forced on.
fn f16_contexts() -> Vec<(String, GpuContext)> {
    let mut out = Vec::new();
    for ctx in f16_adapters() {
        let fused = ctx.clone().with_tuning(Tuning { fused_attention: true, ..ctx.tuning() });
        let unfused = ctx.clone().with_tuning(Tuning { fused_attention: false, ..ctx.tuning() });
        out.push((format!("{} unfused", adapter_name(ctx)), unfused));
        out.push((format!("{} fused", adapter_name(ctx)), fused));
    }
    out
}

/// Runs a case in f16 on every f16 context; the layer must really run in f16.
fn run(case: Case) {
    for (i, (name, ctx)) in f16_contexts().into_iter().enumerate() {
        let (diff, precision) = case.check_precision(&ctx, 29 + i as u64, Some(Precision::F16), F16);
        assert_eq!(precision, Precision::F16, "{} on {name}", case.name);
        eprintln!("[{name}] {} (f16): ok, max |diff| {diff:.2e}", case.name);
    }
}

fn with_scores(mut c: Case) -> Case {
    c.options.return_attention_scores = true;
    c
}

#[test]
fn f16_mqa_mha_and_gqa_r4() {
    run(with_scores(Case::new("mqa Nq=4 Nkv=1", GqaConfig::new(8, 4, 1))));
    run(with_scores(Case::new("mha Nq=Nkv=4", GqaConfig::new(8, 4, 4))));
    run(Case::new("gqa Nq=8 Nkv=2 (R=4)", GqaConfig::new(8, 8, 2)));
    let mut c = with_scores(Case::new("gqa R=4, no bias", GqaConfig::new(8, 8, 2)));
    c.config.use_bias = false;
    run(c);
}

#[test]
fn f16_masks_causal_and_t_ne_s() {
    let mut c =
        with_scores(Case::new("attention_mask (B,T,S) + query/value/key masks, key given", GqaConfig::new(8, 4, 2)));
    c.dk = Some(9);
    c.options.attention_mask = Some(random_mask(&[2, 5, 7], 0.7, 1));
    c.options.query_mask = Some(random_mask(&[2, 5], 0.8, 2));
    c.options.value_mask = Some(random_mask(&[2, 7], 0.8, 3));
    c.options.key_mask = Some(random_mask(&[2, 7], 0.8, 4));
    run(c);
    for align in [CausalAlignment::TopLeft, CausalAlignment::BottomRight] {
        for (t, s) in [(4, 9), (9, 4)] {
            let mut c = Case::new(&format!("causal {align:?} T={t} S={s}"), GqaConfig::new(8, 4, 2));
            (c.t, c.s) = (t, s);
            c.options.use_causal_mask = true;
            c.options.causal_alignment = align;
            run(c);
        }
    }
    let mut c = Case::new("sliding window 3, causal", GqaConfig::new(8, 4, 2));
    c.config.sliding_window = Some(3);
    c.options.use_causal_mask = true;
    run(c);
}

#[test]
fn f16_gate_batch_and_sizes_off_the_tiles() {
    let mut c = with_scores(Case::new("gate", GqaConfig::new(8, 4, 2)));
    c.config.use_gate = true;
    run(c);
    // B = 3, T and S past one 64-wide tile, dims and H not multiples of 4 (no fused kernel then).
    let mut c = Case::new("B=3 T=67 S=70 Dq=13 Dv=11 H=6", GqaConfig::new(6, 4, 2));
    (c.batch, c.t, c.s, c.dq, c.dv) = (3, 67, 70, 13, 11);
    c.options.use_causal_mask = true;
    run(c);
    let mut c = Case::new("B=2 T=65 S=66 H=12 gate", GqaConfig::new(12, 6, 3));
    (c.t, c.s) = (65, 66);
    c.config.use_gate = true;
    run(c);
}

#[test]
fn f16_decode_split_over_long_sources() {
    // T <= 16 and S >= 512: flash-decoding (attention_split_f16 + attention_reduce_f16).
    let mut c = Case::new("decode T=2 S=600, key mask", GqaConfig::new(8, 4, 1));
    (c.batch, c.t, c.s, c.dq, c.dv) = (1, 2, 600, 8, 8);
    c.options.key_mask = Some(random_mask(&[1, 600], 0.9, 5));
    for ctx in f16_adapters() {
        let split = ctx.clone().with_tuning(Tuning { split_decode: true, ..ctx.tuning() });
        let dims = c.dims();
        let layer =
            GqaLayer::with_precision(&split, &c.config, &random_weights(&c.config, dims, 1), Precision::F16).unwrap();
        let plan = layer.plan(&[1, 2, 8], &[1, 600, 8], None, &c.options).unwrap();
        let kernels: Vec<Kernel> = plan.passes().map(|p| p.kernel).collect();
        assert!(
            kernels.contains(&Kernel::FusedAttention { precision: Precision::F16, output: FusedOutput::Partials }),
            "{kernels:?}"
        );
        assert!(kernels.contains(&Kernel::ReduceSplits(Precision::F16)), "{kernels:?}");
        let (diff, _) = c.check_precision(&split, 41, Some(Precision::F16), F16);
        eprintln!("[{}] {} (f16): ok, max |diff| {diff:.2e}", adapter_name(ctx), c.name);
    }
}

#[test]
fn mixed_float16_policy_plans_f16_kernels_and_half_sized_buffers() {
    let mut config = GqaConfig::new(6, 4, 2);
    config.dtype = "mixed_float16".into();
    let dims = LayerDims { query_dim: 13, key_dim: 11, value_dim: 11 };
    let weights = random_weights(&config, dims, 3);
    for ctx in adapters() {
        let _gl = common::gl_guard(ctx);
        let layer = GqaLayer::new(ctx, &config, &weights).unwrap();
        let plan = layer.plan(&[1, 5, 13], &[1, 7, 11], None, &CallOptions::default()).unwrap();
        let spec = |id| *plan.buffer(id).unwrap();
        if ctx.supports_f16() {
            assert_eq!(layer.precision(), Precision::F16, "{}", adapter_name(ctx));
            assert_eq!(plan.tuning.precision, Precision::F16);
            assert!(plan.passes().all(|p| p.kernel.needs_shader_f16()
                || matches!(p.kernel, Kernel::Softmax(Lanes::Workgroup) | Kernel::Softmax(Lanes::Subgroup))));
            // 5 x 4 x 6 = 120 f16 = 240 bytes; the 4 x 6 = 24-element bias: 48 bytes; odd counts round up.
            assert_eq!((spec(BufferId::QueryProj).element_bytes, spec(BufferId::QueryProj).bytes), (2, 240));
            assert_eq!(spec(BufferId::Weight(Dense::Query)).bytes, 13 * 24 * 2);
            assert_eq!(spec(BufferId::Bias(Dense::Output)).bytes, 28, "13 f16 = 26 bytes, rounded to 28");
            assert_eq!(spec(BufferId::Output).bytes, 5 * 13 * 4, "the output stays f32");
            assert_eq!(spec(BufferId::Query).bytes, 5 * 13 * 4, "inputs stay f32");
            // With the fused kernel (H = 6 is not a multiple of 4: use H = 8 there).
            let mut c8 = config.clone();
            c8.head_dim = 8;
            let fused = ctx.clone().with_tuning(Tuning { fused_attention: true, ..ctx.tuning() });
            let l8 = GqaLayer::new(&fused, &c8, &random_weights(&c8, dims, 3)).unwrap();
            let p8 = l8.plan(&[1, 5, 13], &[1, 7, 11], None, &CallOptions::default()).unwrap();
            let kernels: Vec<Kernel> = p8.passes().map(|p| p.kernel).collect();
            assert_eq!(
                kernels,
                [
                    Kernel::Matmul(MatmulKernel::Blocked8x8(MatmulPrecision::F16)),
                    Kernel::Matmul(MatmulKernel::Blocked8x8(MatmulPrecision::F16)),
                    Kernel::Matmul(MatmulKernel::Blocked8x8(MatmulPrecision::F16)),
                    Kernel::FusedAttention { precision: Precision::F16, output: FusedOutput::Attention },
                    Kernel::Matmul(MatmulKernel::Blocked8x8(MatmulPrecision::F16ToF32))
                ]
            );
            // The f32 weights take twice the bytes on the device.
            let f32_layer = GqaLayer::with_precision(ctx, &config, &weights, Precision::F32).unwrap();
            assert!(layer.weight_bytes() * 2 <= f32_layer.weight_bytes() + 4 * 10);
        } else {
            assert_eq!(layer.precision(), Precision::F32, "{}: fallback", adapter_name(ctx));
            assert_eq!(plan.tuning.precision, Precision::F32);
            assert!(plan.passes().all(|p| !p.kernel.needs_shader_f16()));
            assert_eq!(spec(BufferId::QueryProj).bytes, 5 * 4 * 6 * 4);
        }
    }
}

#[test]
fn no_shader_f16_falls_back_to_f32_at_f32_tolerance() {
    let mut case = with_scores(Case::new("f16 asked, causal + mask", GqaConfig::new(8, 4, 2)));
    case.options.use_causal_mask = true;
    case.options.key_mask = Some(random_mask(&[2, 7], 0.8, 6));
    let mut checked = 0;
    // Adapters without the feature (GL llvmpipe).
    for ctx in adapters().iter().filter(|c| !c.supports_f16()) {
        let (diff, precision) = case.check_precision(ctx, 53, Some(Precision::F16), F32);
        assert_eq!(precision, Precision::F32, "{}", adapter_name(ctx));
        eprintln!("[{}] fallback: ok, max |diff| {diff:.2e}", adapter_name(ctx));
        checked += 1;
    }
    // Each adapter again through a device opened without SHADER_F16 (`from_device` with WebGPU's
    // defaults), so the fallback is exercised even where every adapter has f16.
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::VULKAN;
    let instance = wgpu::Instance::new(desc);
    for adapter in pollster::block_on(instance.enumerate_adapters(wgpu::Backends::VULKAN)) {
        let info = adapter.get_info();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("no f16"),
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .unwrap();
        let ctx = GpuContext::from_device(device, queue, info).unwrap();
        assert!(!ctx.supports_f16());
        // A context that asks for f16 by default falls back too.
        let ctx = ctx.clone().with_tuning(Tuning { precision: Precision::F16, ..ctx.tuning() });
        let (diff, precision) = case.check_precision(&ctx, 59, None, F32);
        assert_eq!(precision, Precision::F32);
        eprintln!("[{}] device without SHADER_F16: f32 fallback ok, max |diff| {diff:.2e}", adapter_name(&ctx));
        checked += 1;
    }
    assert!(checked > 0, "no adapter to check the fallback on");
}

#[test]
fn f32_stays_the_default() {
    let config = GqaConfig::new(8, 4, 2);
    let dims = LayerDims { query_dim: 12, key_dim: 10, value_dim: 10 };
    let weights = random_weights(&config, dims, 4);
    for ctx in adapters() {
        assert_eq!(ctx.tuning().precision, Precision::F32);
        let layer = GqaLayer::new(ctx, &config, &weights).unwrap();
        assert_eq!(layer.precision(), Precision::F32);
        let plan = layer.plan(&[1, 3, 12], &[1, 4, 10], None, &CallOptions::default()).unwrap();
        assert!(plan.passes().all(|p| !p.kernel.needs_shader_f16()));
    }
}
