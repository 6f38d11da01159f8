//! The GPU test harness: every adapter wgpu can see, random data, and elementwise comparison with
//! the oracle. A machine with no adapter fails the tests: it never passes by skipping.

#![allow(dead_code, reason = "each test binary uses a different part of the harness")]

pub mod cache_schedules;
pub mod gpu_tuning;

use std::sync::OnceLock;

use gqa::core::{CallOptions, ForwardOutput, GqaConfig, HostTensor, Initializer, LayerDims, Mask, Precision, Weights};
use gqa::gpu::GpuContext;
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Every adapter found, best first, shared by the tests of one binary. Fails when there is none,
/// or when a backend named in `GQA_REQUIRE_BACKENDS` (e.g. `vulkan,gl`, set by CI) is missing.
pub fn adapters() -> &'static [GpuContext] {
    static ALL: OnceLock<Vec<GpuContext>> = OnceLock::new();
    ALL.get_or_init(|| {
        let found: Vec<GpuContext> = GpuContext::all_adapters(wgpu::Backends::all())
            .into_iter()
            .filter_map(|c| c.map_err(|e| eprintln!("[harness] adapter failed to open: {e}")).ok())
            .collect();
        assert!(
            !found.is_empty(),
            "no GPU adapter found: GPU tests cannot run. On Debian/Ubuntu install Mesa's software drivers: \
             apt-get install -y mesa-vulkan-drivers libvulkan1 libegl1 libegl-mesa0 libgl1-mesa-dri"
        );
        for c in &found {
            eprintln!("[harness] adapter: {}", c.describe());
        }
        // CI names the backends it installed; each must really be there.
        for wanted in std::env::var("GQA_REQUIRE_BACKENDS").unwrap_or_default().split(',').filter(|s| !s.is_empty()) {
            assert!(
                found.iter().any(|c| format!("{:?}", c.adapter_info().backend).eq_ignore_ascii_case(wanted.trim())),
                "GQA_REQUIRE_BACKENDS names {wanted:?} but no such adapter was found (found: {:?})",
                found.iter().map(adapter_name).collect::<Vec<_>>()
            );
        }
        found
    })
}

/// The adapters with `SHADER_F16`. Fails when there is none (lavapipe has it) unless
/// `GQA_ALLOW_NO_F16=1`, so the f16 tests never pass by skipping unnoticed.
pub fn f16_adapters() -> Vec<&'static GpuContext> {
    let found: Vec<&GpuContext> = adapters().iter().filter(|c| c.supports_f16()).collect();
    if found.is_empty() {
        assert_eq!(
            std::env::var("GQA_ALLOW_NO_F16").as_deref(),
            Ok("1"),
            "no adapter with SHADER_F16 (Vulkan lavapipe has it: apt-get install -y mesa-vulkan-drivers libvulkan1); \
             set GQA_ALLOW_NO_F16=1 to accept"
        );
    }
    found
}

/// Serialises GL work across the test threads of a binary. wgpu's GL backend holds one context
/// lock while it waits for the device and panics when another thread waits for it more than 6 s,
/// which a slow software adapter under load reaches; Vulkan needs no such care.
pub fn gl_guard(ctx: &GpuContext) -> Option<std::sync::MutexGuard<'static, ()>> {
    static GL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    (ctx.adapter_info().backend == wgpu::Backend::Gl).then(|| GL.lock().unwrap_or_else(|e| e.into_inner()))
}

/// A short name for an adapter in test output: `llvmpipe (LLVM 15.0.6, 256 bits)/Vulkan`.
pub fn adapter_name(ctx: &GpuContext) -> String {
    let i = ctx.adapter_info();
    format!("{}/{:?}", i.name, i.backend)
}

/// Uniform random data in [-1, 1) with a shape.
pub fn random_tensor(shape: &[usize], rng: &mut StdRng) -> HostTensor {
    let n = shape.iter().product();
    HostTensor::new(shape.to_vec(), (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()).unwrap()
}

/// A random mask (true = attend with probability `p_true`), seeded.
pub fn random_mask(shape: &[usize], p_true: f64, seed: u64) -> Mask {
    let mut r = rng(seed);
    let n = shape.iter().product();
    Mask::new(shape.to_vec(), (0..n).map(|_| r.random_bool(p_true)).collect()).unwrap()
}

/// Random non-zero weights (kernels and biases both random) for a config, via the oracle's
/// initializers: kernels He-uniform scaled so logits are O(1), biases uniform in [-0.5, 0.5].
pub fn random_weights(config: &GqaConfig, dims: LayerDims, seed: u64) -> Weights {
    let mut c = config.clone();
    c.kernel_initializer = Initializer::VarianceScaling {
        scale: 3.0,
        mode: gqa::core::FanMode::FanIn,
        distribution: gqa::core::Distribution::Uniform,
        seed: None,
    };
    c.bias_initializer = Initializer::RandomUniform { minval: -0.5, maxval: 0.5, seed: None };
    gqa::reference::initialize_weights(&c, dims, seed).unwrap()
}

/// A seeded RNG.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Tolerance `|gpu - ref| <= atol + rtol * |ref|`, elementwise, NaN must agree.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    /// Absolute part.
    pub atol: f32,
    /// Relative part.
    pub rtol: f32,
}

/// The project's f32 tolerance.
pub const F32: Tolerance = Tolerance { atol: 1e-5, rtol: 1e-4 };

/// The f16 tolerance (f16 storage, f32 accumulation, against the f64 oracle): ONNX Runtime's for
/// its float16 GroupQueryAttention.
pub const F16: Tolerance = Tolerance { atol: 5e-3, rtol: 5e-3 };

/// Compares elementwise; the message names the case, the tensor, the first failing index and values.
pub fn assert_close(what: &str, gpu: &[f32], reference: &[f32], tol: Tolerance) {
    assert_eq!(gpu.len(), reference.len(), "{what}: lengths differ");
    let mut bad = 0;
    let mut first = None;
    let mut worst = 0.0f32;
    for (i, (&g, &r)) in gpu.iter().zip(reference).enumerate() {
        let ok = if r.is_nan() || g.is_nan() {
            r.is_nan() && g.is_nan()
        } else if r.is_infinite() || g.is_infinite() {
            r == g
        } else {
            (g - r).abs() <= tol.atol + tol.rtol * r.abs()
        };
        if !ok {
            bad += 1;
            first.get_or_insert((i, g, r));
        }
        if g.is_finite() && r.is_finite() {
            worst = worst.max((g - r).abs());
        }
    }
    if let Some((i, g, r)) = first {
        panic!(
            "{what}: {bad} of {} elements out of tolerance (atol {}, rtol {}); first at index {i}: gpu {g} vs oracle {r}; max |diff| {worst}",
            gpu.len(),
            tol.atol,
            tol.rtol
        );
    }
}

/// One forward call to check: a config, input shapes, options.
#[derive(Debug, Clone)]
pub struct Case {
    /// The case's name in messages.
    pub name: String,
    /// The layer.
    pub config: GqaConfig,
    /// B.
    pub batch: usize,
    /// T.
    pub t: usize,
    /// S.
    pub s: usize,
    /// Dq.
    pub dq: usize,
    /// Dv.
    pub dv: usize,
    /// Dk, when a separate key is given.
    pub dk: Option<usize>,
    /// The call's options.
    pub options: CallOptions,
    /// Elements of the value input set after the random draw, as (flat index into its (B, S, Dv)
    /// data, value): NaN and infinities, for both the layer and the oracle.
    pub value_overrides: Vec<(usize, f32)>,
}

impl Case {
    /// A case with B=2, T=5, S=7, Dq=12, Dv=10, no key, default options.
    pub fn new(name: &str, config: GqaConfig) -> Self {
        Self {
            name: name.into(),
            config,
            batch: 2,
            t: 5,
            s: 7,
            dq: 12,
            dv: 10,
            dk: None,
            options: CallOptions::default(),
            value_overrides: Vec::new(),
        }
    }

    /// The plan the case's call runs on `ctx`, from a layer built (with seed-1 weights) and dropped
    /// under the GL guard, which is released on return: [`Case::check`] takes it itself.
    pub fn plan(&self, ctx: &GpuContext) -> gqa::core::Plan {
        let _gl = gl_guard(ctx);
        let layer = gqa::gpu::GqaLayer::new(ctx, &self.config, &random_weights(&self.config, self.dims(), 1))
            .unwrap_or_else(|e| panic!("{}: layer: {e}", self.name));
        let key = self.dk.map(|dk| [self.batch, self.s, dk]);
        layer
            .plan(
                &[self.batch, self.t, self.dq],
                &[self.batch, self.s, self.dv],
                key.as_ref().map(|k| &k[..]),
                &self.options,
            )
            .unwrap_or_else(|e| panic!("{}: plan: {e}", self.name))
    }

    /// The dims the layer is built for.
    pub fn dims(&self) -> LayerDims {
        LayerDims { query_dim: self.dq, key_dim: self.dk.unwrap_or(self.dv), value_dim: self.dv }
    }

    /// Runs the case on `ctx` and on the oracle, compares output (and scores when requested).
    /// Returns the maximum absolute difference of the output.
    pub fn check(&self, ctx: &GpuContext, seed: u64) -> f32 {
        self.check_precision(ctx, seed, None, F32).0
    }

    /// [`Case::check`] for a caller that already holds [`gl_guard`] (the guard is not reentrant).
    pub fn check_guard_held(&self, ctx: &GpuContext, seed: u64) -> f32 {
        self.compare(ctx, seed, None, F32).0
    }

    /// [`Case::check`] for a layer made with [`gqa::gpu::GqaLayer::with_precision`] (or
    /// [`gqa::gpu::GqaLayer::new`] when `precision` is `None`), compared with tolerance `tol`.
    /// Returns the maximum absolute difference of the output and the precision the layer ran in.
    pub fn check_precision(
        &self,
        ctx: &GpuContext,
        seed: u64,
        precision: Option<Precision>,
        tol: Tolerance,
    ) -> (f32, Precision) {
        let _gl = gl_guard(ctx);
        self.compare(ctx, seed, precision, tol)
    }

    /// The comparison of [`Case::check_precision`], without taking the GL guard.
    fn compare(&self, ctx: &GpuContext, seed: u64, precision: Option<Precision>, tol: Tolerance) -> (f32, Precision) {
        let inputs = self.inputs(seed);
        let want = self.oracle(&inputs);
        self.compare_with(ctx, &inputs, &want, precision, tol)
    }

    /// The case's weights and inputs for `seed`, with [`Case::value_overrides`] applied.
    pub fn inputs(&self, seed: u64) -> Inputs {
        let mut r = rng(seed);
        let weights = random_weights(&self.config, self.dims(), seed);
        let query = random_tensor(&[self.batch, self.t, self.dq], &mut r);
        let mut value = random_tensor(&[self.batch, self.s, self.dv], &mut r);
        let key = self.dk.map(|dk| random_tensor(&[self.batch, self.s, dk], &mut r));
        for &(i, x) in &self.value_overrides {
            value.data_mut()[i] = x;
        }
        Inputs { weights, query, value, key }
    }

    /// The oracle's output (and scores when requested) for `inputs`.
    pub fn oracle(&self, inputs: &Inputs) -> ForwardOutput {
        let Inputs { weights, query, value, key } = inputs;
        gqa::reference::forward(&self.config, weights, query, value, key.as_ref(), &self.options)
            .unwrap_or_else(|e| panic!("{}: oracle failed: {e}", self.name))
    }

    /// Runs the case's call with `inputs` on `ctx` (taking [`gl_guard`]) and compares it with the
    /// oracle's `want` at `tol`, the output poisoned first; the layer made as in
    /// [`Case::check_precision`]. Returns the maximum absolute difference of the output and the
    /// precision the layer ran in.
    pub fn check_against(
        &self,
        ctx: &GpuContext,
        inputs: &Inputs,
        want: &ForwardOutput,
        precision: Option<Precision>,
        tol: Tolerance,
    ) -> (f32, Precision) {
        let _gl = gl_guard(ctx);
        self.compare_with(ctx, inputs, want, precision, tol)
    }

    fn compare_with(
        &self,
        ctx: &GpuContext,
        inputs: &Inputs,
        want: &ForwardOutput,
        precision: Option<Precision>,
        tol: Tolerance,
    ) -> (f32, Precision) {
        let Inputs { weights, query, value, key } = inputs;
        let mut layer = match precision {
            None => gqa::gpu::GqaLayer::new(ctx, &self.config, weights).unwrap(),
            Some(p) => gqa::gpu::GqaLayer::with_precision(ctx, &self.config, weights, p).unwrap(),
        };
        layer.set_poison_outputs(true);
        let got = layer
            .forward(query, value, key.as_ref(), &self.options)
            .unwrap_or_else(|e| panic!("{} on {}: {e}", self.name, adapter_name(ctx)));
        let label = format!("{} on {}", self.name, adapter_name(ctx));
        assert_eq!(got.output.shape(), want.output.shape(), "{label}");
        assert_close(&format!("{label}: output"), got.output.data(), want.output.data(), tol);
        match (&got.scores, &want.scores) {
            (Some(g), Some(w)) => {
                assert_eq!(g.shape(), w.shape(), "{label}: scores shape");
                assert_close(&format!("{label}: scores"), g.data(), w.data(), tol);
            }
            (None, None) => {}
            _ => panic!("{label}: scores present on one side only"),
        }
        let diff = got.output.data().iter().zip(want.output.data()).map(|(g, w)| (g - w).abs()).fold(0.0, f32::max);
        (diff, layer.precision())
    }
}

/// A case's weights and inputs ([`Case::inputs`]).
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The layer's weights.
    pub weights: Weights,
    /// Query (B, T, Dq).
    pub query: HostTensor,
    /// Value (B, S, Dv).
    pub value: HostTensor,
    /// Key (B, S, Dk), when given.
    pub key: Option<HostTensor>,
}
