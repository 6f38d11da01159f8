//! Robustness: pipelines within WebGPU's default and downlevel limits, NaN propagation, a lost
//! device, a bounded fuzz over configs, shapes and masks, and a soak test (ignored by default).

mod common;

use common::{Case, adapter_name, adapters, random_tensor, random_weights, rng};
use gqa::core::{CallOptions, GqaConfig, LayerDims, Mask, Tuning};
use gqa::gpu::{GpuContext, GpuError, GqaLayer};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// A device on the same adapter as `ctx`, created with `limits` instead of the adapter's own.
fn device_with_limits(ctx: &GpuContext, limits: wgpu::Limits) -> GpuContext {
    let backends = wgpu::Backends::from(ctx.adapter_info().backend);
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    let instance = wgpu::Instance::new(desc);
    let adapters = pollster::block_on(instance.enumerate_adapters(backends));
    let adapter = adapters.into_iter().find(|a| a.get_info() == *ctx.adapter_info()).expect("the same adapter again");
    let (device, queue) = pollster::block_on(
        adapter.request_device(&wgpu::DeviceDescriptor { required_limits: limits, ..Default::default() }),
    )
    .expect("a device with lower limits");
    GpuContext::from_device(device, queue, adapter.get_info()).expect("pipelines build within the limits")
}

/// Opening a context compiles nothing; every kernel the device supports compiles when asked (the
/// f16 ones need SHADER_F16 and the subgroup ones SUBGROUP: GL llvmpipe has neither), and a kernel
/// it does not support is an error naming the missing feature.
#[test]
fn every_supported_kernel_compiles_and_the_others_are_errors() {
    for ctx in adapters() {
        let _gl = common::gl_guard(ctx);
        ctx.compile_all_kernels().unwrap_or_else(|e| panic!("{}: {e}", adapter_name(ctx)));
        if !ctx.tuning().subgroups {
            // The separate passes, so the plan takes the subgroup softmax.
            let tuning = Tuning {
                subgroups: true,
                block_attention: false,
                fused_attention: false,
                split_decode: false,
                ..ctx.tuning()
            };
            let forced = ctx.clone().with_tuning(tuning);
            let c = Case::new("subgroups forced on a device without them", GqaConfig::new(8, 4, 2));
            let layer = GqaLayer::new(&forced, &c.config, &random_weights(&c.config, c.dims(), 3)).unwrap();
            let mut r = rng(3);
            let (q, v) = (random_tensor(&[c.batch, c.t, c.dq], &mut r), random_tensor(&[c.batch, c.s, c.dv], &mut r));
            let opts = CallOptions { use_causal_mask: true, ..Default::default() };
            let err = layer.forward(&q, &v, None, &opts).unwrap_err();
            assert!(matches!(&err, GpuError::Unsupported { what, .. } if what.contains("SUBGROUP")), "{err:?}");
        }
    }
}

/// A new context on the same adapter as `ctx` (same features and limits), with nothing compiled.
fn fresh_context(ctx: &GpuContext) -> GpuContext {
    GpuContext::all_adapters(wgpu::Backends::from(ctx.adapter_info().backend))
        .into_iter()
        .filter_map(Result::ok)
        .find(|c| c.adapter_info() == ctx.adapter_info())
        .expect("the same adapter again")
}

/// Kernels compile on parallel threads, each under its own lock: on a fresh context, two threads
/// compiling every kernel and a third calling the layer at the same time all finish without an
/// error (and without a deadlock), and the call matches the oracle.
#[test]
fn kernels_compile_on_parallel_threads_beside_a_call() {
    for ctx in adapters() {
        // Held by this thread for the compiling threads and the call alike.
        let _gl = common::gl_guard(ctx);
        let fresh = fresh_context(ctx);
        let mut c = Case::new("a call while every kernel compiles", GqaConfig::new(8, 4, 2));
        c.options.use_causal_mask = true;
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| fresh.compile_all_kernels().unwrap_or_else(|e| panic!("{}: {e}", adapter_name(ctx))));
            }
            s.spawn(|| c.check_guard_held(&fresh, 11));
        });
        // Everything is compiled now: asking again compiles nothing and still succeeds.
        fresh.compile_all_kernels().unwrap_or_else(|e| panic!("{}: {e}", adapter_name(ctx)));
    }
}

#[test]
fn every_pipeline_fits_webgpu_default_and_downlevel_limits() {
    for ctx in adapters() {
        for (name, limits) in [
            ("Limits::default()", wgpu::Limits::default()),
            ("Limits::downlevel_defaults()", wgpu::Limits::downlevel_defaults()),
        ] {
            let small = device_with_limits(ctx, limits);
            // Kernels compile at their first use: compile them all, so each is checked under the
            // limits, not only those this case runs.
            small.compile_all_kernels().unwrap_or_else(|e| panic!("{}: {name}: {e}", adapter_name(ctx)));
            let mut c = Case::new(&format!("forward under {name}"), GqaConfig::new(8, 4, 2));
            c.options.return_attention_scores = true;
            c.options.use_causal_mask = true;
            c.check(&small, 5);
            eprintln!("[{}] pipelines built and ran under {name}", adapter_name(ctx));
        }
    }
}

#[test]
fn nan_and_inf_in_data_propagate_like_the_oracle() {
    let cfg = GqaConfig::new(4, 4, 2);
    let dims = LayerDims { query_dim: 6, key_dim: 6, value_dim: 6 };
    let w = random_weights(&cfg, dims, 2);
    let mut r = rng(3);
    let mut q = random_tensor(&[2, 5, 6], &mut r);
    let mut v = random_tensor(&[2, 7, 6], &mut r);
    q.data_mut()[6 + 2] = f32::NAN; // batch 0, query 1
    v.data_mut()[7 * 6 + 3 * 6] = f32::INFINITY; // batch 1, key 3
    // Batch 1's query 0 cannot see key 3, so only the other rows meet the infinity.
    let mut mask = vec![true; 2 * 5 * 7];
    mask[35 + 3] = false;
    let opts = CallOptions {
        attention_mask: Some(Mask::new(vec![2, 5, 7], mask).unwrap()),
        return_attention_scores: true,
        ..Default::default()
    };
    let want = gqa::reference::forward(&cfg, &w, &q, &v, None, &opts).unwrap();
    let nan_rows = want.output.data().iter().filter(|x| x.is_nan()).count();
    assert!(nan_rows > 0, "the case must produce NaN");
    for ctx in adapters() {
        let got = GqaLayer::new(ctx, &cfg, &w).unwrap().forward(&q, &v, None, &opts).unwrap();
        let name = adapter_name(ctx);
        common::assert_close(
            &format!("{name}: output with NaN/Inf"),
            got.output.data(),
            want.output.data(),
            common::F32,
        );
        common::assert_close(
            &format!("{name}: scores with NaN"),
            got.scores.unwrap().data(),
            want.scores.as_ref().unwrap().data(),
            common::F32,
        );
    }
}

#[test]
fn a_lost_device_gives_errors_and_a_new_context_works() {
    for ctx in adapters() {
        let fresh = device_with_limits(ctx, ctx.device().limits());
        let c = Case::new("before loss", GqaConfig::new(4, 2, 1));
        let w = random_weights(&c.config, c.dims(), 1);
        let layer = GqaLayer::new(&fresh, &c.config, &w).unwrap();
        let mut r = rng(1);
        let q = random_tensor(&[2, 5, 12], &mut r);
        let v = random_tensor(&[2, 7, 10], &mut r);
        layer.forward(&q, &v, None, &CallOptions::default()).unwrap();
        fresh.device().destroy();
        for _ in 0..2 {
            let err = layer.forward(&q, &v, None, &CallOptions::default()).unwrap_err();
            assert!(
                matches!(err, GpuError::DeviceLost { .. } | GpuError::Validation { .. } | GpuError::Device { .. }),
                "{err:?}"
            );
            eprintln!("[{}] after destroy: {}", adapter_name(ctx), err.to_string().replace('\n', " "));
        }
        // Rebuilding on a new device works.
        let again = device_with_limits(ctx, ctx.device().limits());
        c.check(&again, 2);
    }
}

/// Number of fuzz cases per adapter: `GQA_FUZZ_CASES` (default 300). Run longer with e.g.
/// `GQA_FUZZ_CASES=20000 cargo test --release --test gpu_robust fuzz -- --nocapture`.
fn fuzz_cases() -> u32 {
    std::env::var("GQA_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
}

#[test]
fn fuzz_configs_shapes_and_masks_against_the_oracle() {
    let strategy = (
        1usize..6,
        1usize..4,
        1usize..4,
        1usize..3,
        1usize..9,
        1usize..9,
        1usize..7,
        any::<u8>(),
        proptest::option::of(1usize..4),
        any::<u64>(),
    );
    for ctx in adapters() {
        let mut runner = Config { cases: fuzz_cases(), failure_persistence: None, ..Config::default() };
        runner.rng_seed = proptest::test_runner::RngSeed::Fixed(7);
        let mut runner = TestRunner::new(runner);
        runner
            .run(&strategy, |(h, nkv, r, b, t, s, d, flags, window, seed)| {
                let mut cfg = GqaConfig::new(h, nkv * r, nkv);
                cfg.use_bias = flags & 1 != 0;
                cfg.use_gate = flags & 2 != 0;
                cfg.sliding_window = window;
                let mut c = Case::new("fuzz", cfg);
                (c.batch, c.t, c.s, c.dq, c.dv) = (b, t, s, d, d + 1);
                let mut mr = rng(seed);
                let mut bits =
                    |n: usize| -> Vec<bool> { (0..n).map(|_| rand::Rng::random_bool(&mut mr, 0.7)).collect() };
                if flags & 4 != 0 {
                    c.options.attention_mask = Some(Mask::new(vec![b, t, s], bits(b * t * s)).unwrap());
                }
                if flags & 8 != 0 {
                    c.options.value_mask = Some(Mask::new(vec![b, s], bits(b * s)).unwrap());
                }
                c.options.use_causal_mask = flags & 16 != 0;
                c.options.return_attention_scores = flags & 32 != 0;
                if flags & 64 != 0 {
                    c.options.causal_alignment = gqa::core::CausalAlignment::BottomRight;
                }
                c.name = format!("fuzz {c:?}");
                c.check(ctx, seed);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("[{}] {e}", adapter_name(ctx)));
        eprintln!("[{}] fuzz: {} cases passed", adapter_name(ctx), fuzz_cases());
    }
}

/// Calls in the soak test: `GQA_SOAK_CALLS` (default 2000).
fn soak_calls() -> usize {
    std::env::var("GQA_SOAK_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
}

#[test]
#[ignore = "soak test: thousands of calls; CI runs it with a bounded GQA_SOAK_CALLS"]
fn soak_many_calls_of_varying_shapes_stay_correct_and_bounded() {
    for ctx in adapters() {
        let cfg = GqaConfig::new(8, 4, 2);
        let dims = LayerDims { query_dim: 16, key_dim: 12, value_dim: 12 };
        let w = random_weights(&cfg, dims, 9);
        let layer = GqaLayer::new(ctx, &cfg, &w).unwrap();
        let buffers = || ctx.device().get_internal_counters().hal.buffers.read();
        let mut peak_after_warmup = 0;
        let start = buffers();
        for i in 0..soak_calls() {
            let (b, t, s) = (1 + i % 3, 1 + i % 17, 1 + (i * 7) % 23);
            let mut r = rng(i as u64);
            let q = random_tensor(&[b, t, 16], &mut r);
            let v = random_tensor(&[b, s, 12], &mut r);
            let k = random_tensor(&[b, s, 12], &mut r);
            let opts =
                CallOptions { use_causal_mask: i % 2 == 0, return_attention_scores: i % 5 == 0, ..Default::default() };
            let got = layer.forward(&q, &v, Some(&k), &opts).unwrap();
            if i % 50 == 0 {
                let want = gqa::reference::forward(&cfg, &w, &q, &v, Some(&k), &opts).unwrap();
                common::assert_close(&format!("soak call {i}"), got.output.data(), want.output.data(), common::F32);
            }
            if i == 100 {
                peak_after_warmup = buffers();
            }
            if i > 100 {
                assert!(
                    buffers() <= peak_after_warmup + 64,
                    "call {i}: live buffers grew from {peak_after_warmup} to {}",
                    buffers()
                );
            }
        }
        eprintln!("[{}] soak: {} calls, live buffers {start} -> {}", adapter_name(ctx), soak_calls(), buffers());
    }
}

/// Every attention path a call can take, as tunings of the adapter's own: the separate passes, the
/// fused kernel whole and split, the block kernel (with the adapter's subgroup sizes: on lavapipe
/// `attention_subgroup`; and without them: `attention_block_tex_subgroup` where the
/// device has subgroups) and the decode kernel.
fn attention_paths(base: Tuning) -> [(&'static str, Tuning); 6] {
    let block = Tuning { fused_attention: false, split_decode: false, block_attention: true, ..base };
    [
        ("separate passes", Tuning { fused_attention: false, split_decode: false, block_attention: false, ..base }),
        ("fused", Tuning { fused_attention: true, split_decode: false, block_attention: false, ..base }),
        ("block", block),
        ("block, subgroup sizes unknown", Tuning { subgroup_sizes: [0, 0], ..block }),
        ("split, decode kernel", Tuning { split_decode: true, decode_kernel: true, ..base }),
        ("split, fused kernel", Tuning { split_decode: true, decode_kernel: false, ..base }),
    ]
}

/// A NaN in a masked value reaches the row on every attention path, as in Keras and the oracle
/// (zero probabilities multiply it too): the separate passes, the fused kernel whole and split, the
/// block kernel and the decode kernel, including a split that sees no key at all.
#[test]
fn nan_in_masked_values_reaches_the_row_on_every_path() {
    let cfg = GqaConfig::new(8, 4, 2);
    let dims = LayerDims { query_dim: 8, key_dim: 8, value_dim: 8 };
    let w = random_weights(&cfg, dims, 2);
    let mut r = rng(3);
    for (t, s) in [(6, 6), (1, 600), (2, 40)] {
        let q = random_tensor(&[1, t, 8], &mut r);
        let mut v = random_tensor(&[1, s, 8], &mut r);
        v.data_mut()[(s - 1) * 8 + 2] = f32::NAN; // the last key: causally masked for every query but the last
        let opts = CallOptions { use_causal_mask: true, ..Default::default() };
        let want = gqa::reference::forward(&cfg, &w, &q, &v, None, &opts).unwrap();
        assert!(want.output.data().iter().all(|x| x.is_nan()), "the oracle's rows all meet the NaN");
        for ctx in adapters() {
            let _gl = common::gl_guard(ctx);
            let paths = attention_paths(ctx.tuning());
            for (name, tuning) in paths {
                let layer = GqaLayer::new(&ctx.clone().with_tuning(tuning), &cfg, &w).unwrap();
                let got = layer.forward(&q, &v, None, &opts).unwrap();
                common::assert_close(
                    &format!("{}: T={t} S={s} {name}", adapter_name(ctx)),
                    got.output.data(),
                    want.output.data(),
                    common::F32,
                );
            }
        }
    }
}

/// An infinite value in the V of a key that a row does not see makes that row's columns NaN
/// (its zero probability times infinity, as in Keras and the oracle) on every attention path, also
/// where the block kernel skips the key's chunk under the causal mask (`block_keys`,
/// `scan_skipped_v`); the row that sees it gets the infinity. Both alignments, both masked-row
/// policies (T > S bottom-right leaves rows that see no key, whose zeros-policy output is 0 x V).
#[test]
fn infinite_values_of_unseen_keys_reach_the_rows_on_every_path() {
    use gqa::core::{CausalAlignment, MaskedRows};
    let cfg = GqaConfig::new(8, 4, 2);
    let dims = LayerDims { query_dim: 8, key_dim: 8, value_dim: 8 };
    let w = random_weights(&cfg, dims, 5);
    let mut r = rng(6);
    for (t, s) in [(1, 600), (40, 300), (300, 20)] {
        let q = random_tensor(&[1, t, 8], &mut r);
        let mut v = random_tensor(&[1, s, 8], &mut r);
        v.data_mut()[(s - 1) * 8 + 5] = f32::INFINITY; // the last key
        for align in [CausalAlignment::TopLeft, CausalAlignment::BottomRight] {
            for policy in [MaskedRows::Zeros, MaskedRows::KerasDefault] {
                let opts = CallOptions {
                    use_causal_mask: true,
                    causal_alignment: align,
                    masked_rows: policy,
                    ..Default::default()
                };
                let want = gqa::reference::forward(&cfg, &w, &q, &v, None, &opts).unwrap();
                assert!(want.output.data().iter().any(|x| x.is_nan()), "T={t} S={s}: some row meets 0 * inf");
                for ctx in adapters() {
                    let _gl = common::gl_guard(ctx);
                    for (name, tuning) in attention_paths(ctx.tuning()) {
                        let layer = GqaLayer::new(&ctx.clone().with_tuning(tuning), &cfg, &w).unwrap();
                        let got = layer.forward(&q, &v, None, &opts).unwrap();
                        common::assert_close(
                            &format!("{}: T={t} S={s} {align:?} {policy:?} {name}", adapter_name(ctx)),
                            got.output.data(),
                            want.output.data(),
                            common::F32,
                        );
                    }
                }
            }
        }
    }
}
