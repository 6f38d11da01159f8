//! Forward-pass benches, named after their shapes: `layer/B1_T128_S128_Nq8_Nkv2_H64_Dq512` is one
//! full `GqaLayer::forward` on the best adapter (upload, every pass, read back: the read back
//! synchronises with the device inside the timed closure); `cpu/...` is the same call on the CPU
//! layer (`gqa::cpu::CpuLayer`, every thread of rayon's pool); `oracle/...` is the f64 CPU oracle.
//!
//! Throughput is reported as elements/s with one element per floating-point operation of the plan,
//! so criterion's `Gelem/s` reads as GFLOP/s. `WGPU_BACKEND=vulkan|gl` picks the adapter.
//! Sampling is small (software adapters are slow): `cargo bench --bench forward` takes a minute
//! or two on lavapipe; pass a filter (`cargo bench --bench forward -- layer/B1_T128`) for one bench.
//!
//! A timing counts only from a checked run: before timing each `layer/...` and `cpu/...` shape, one call's
//! output is compared with the f64 oracle's at that shape ([`gqa::reference::check`], f32
//! tolerance: atol 1e-5, rtol 1e-4; computed once per shape), and so is the output of the last
//! timed call after the timed iterations. A failing check panics with the shape and the comparison:
//! a benchmark of a wrong kernel gives no figure. (`oracle/...` times the oracle itself.)
//!
//! A machine with no adapter fails the GPU benches with the error naming what to install.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use gqa::core::{CallOptions, CausalAlignment, ForwardOutput, GqaConfig, HostTensor, LayerDims, Weights};
use gqa::gpu::{GpuContext, GqaLayer};
use gqa::reference::check::{Tolerance, compare_outputs};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// One benchmarked problem: a layer and its inputs.
#[derive(Debug, Clone, Copy)]
struct Shape {
    batch: usize,
    t: usize,
    s: usize,
    nq: usize,
    nkv: usize,
    h: usize,
    dq: usize,
}

impl Shape {
    fn name(&self) -> String {
        let Shape { batch, t, s, nq, nkv, h, dq } = *self;
        format!("B{batch}_T{t}_S{s}_Nq{nq}_Nkv{nkv}_H{h}_Dq{dq}")
    }

    /// The config, weights and (query, value) of this shape: Dv = Dq, key = value, causal.
    fn build(&self) -> (GqaConfig, Weights, HostTensor, HostTensor) {
        let config = GqaConfig::new(self.h, self.nq, self.nkv);
        let dims = LayerDims { query_dim: self.dq, key_dim: self.dq, value_dim: self.dq };
        let weights = gqa::reference::initialize_weights(&config, dims, 7).expect("bench weights");
        let mut rng = StdRng::seed_from_u64(7);
        let mut tensor = |shape: [usize; 3]| {
            let n = shape.iter().product();
            HostTensor::new(shape, (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()).expect("bench input")
        };
        let query = tensor([self.batch, self.t, self.dq]);
        let value = tensor([self.batch, self.s, self.dq]);
        (config, weights, query, value)
    }
}

/// Causal, bottom-right aligned: the same as Keras' top-left when T = S, and what a decode step
/// (T = 1 over S cached keys) means: the new query sees every key.
fn options() -> CallOptions {
    CallOptions { use_causal_mask: true, causal_alignment: CausalAlignment::BottomRight, ..Default::default() }
}

/// Shapes for the GPU: a short prefill, a longer one, and one decode step over a 512-key context.
const GPU_SHAPES: [Shape; 3] = [
    Shape { batch: 1, t: 128, s: 128, nq: 8, nkv: 2, h: 64, dq: 512 },
    Shape { batch: 1, t: 512, s: 512, nq: 8, nkv: 2, h: 64, dq: 512 },
    Shape { batch: 1, t: 1, s: 512, nq: 8, nkv: 2, h: 64, dq: 512 },
];

/// The oracle is single-threaded f64: a small shape only.
const ORACLE_SHAPES: [Shape; 1] = [Shape { batch: 1, t: 128, s: 128, nq: 8, nkv: 2, h: 64, dq: 512 }];

fn bench_layer(c: &mut Criterion) {
    let ctx = GpuContext::new().unwrap_or_else(|e| panic!("the GPU benches need an adapter: {e}"));
    eprintln!("[bench] adapter: {}", ctx.describe());
    let mut group = c.benchmark_group("layer");
    // Flat sampling: 10 samples of the same iteration count, not criterion's 1 + 2 + ... + 10
    // iterations, which would take minutes per shape on a software adapter.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for shape in GPU_SHAPES {
        let built = shape.build();
        let (config, weights, query, value) = &built;
        let layer = GqaLayer::new(&ctx, config, weights).expect("layer");
        let plan = layer.plan(query.shape(), value.shape(), None, &options()).expect("plan");
        let call = |q: &HostTensor, v: &HostTensor| layer.forward(q, v, None, &options()).expect("forward");
        bench_checked(&mut group, "layer", (&shape, &built), plan.flops(), call);
    }
    group.finish();
}

/// The CPU layer on the GPU's shapes, checked the same way.
fn bench_cpu(c: &mut Criterion) {
    let mut group = c.benchmark_group("cpu");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for shape in GPU_SHAPES {
        let built = shape.build();
        let (config, weights, query, value) = &built;
        let layer = gqa::cpu::CpuLayer::new(config.clone(), weights.clone()).expect("CPU layer");
        let problem = gqa::core::Problem::new(config, query.shape(), value.shape(), None, &options()).expect("problem");
        let plan = gqa::core::Plan::new(&problem, &gqa::core::Limits::webgpu_default()).expect("plan");
        let call = |q: &HostTensor, v: &HostTensor| layer.forward(q, v, None, &options()).expect("forward");
        bench_checked(&mut group, "cpu", (&shape, &built), plan.flops(), call);
    }
    group.finish();
}

/// Times `call` (a layer's forward) on `shape`'s inputs `built` in `group`: the oracle once and one
/// call checked against it before anything is timed (only when the bench runs, not when a filter
/// leaves it out), then the last timed call's output checked too.
fn bench_checked(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    family: &str,
    (shape, built): (&Shape, &(GqaConfig, Weights, HostTensor, HostTensor)),
    flops: u64,
    call: impl Fn(&HostTensor, &HostTensor) -> ForwardOutput,
) {
    let (config, weights, query, value) = built;
    group.throughput(Throughput::Elements(flops));
    let id = format!("{family}/{}", shape.name());
    let mut want = None;
    let mut last = None;
    group.bench_function(shape.name(), |b| {
        if want.is_none() {
            let oracle = gqa::reference::forward(config, weights, query, value, None, &options()).expect("oracle");
            check(&id, "before timing", &call(query, value), &oracle);
            want = Some(oracle);
        }
        // Keeping the output drops the previous one, as criterion drops what the routine returns.
        b.iter(|| last = Some(call(black_box(query), black_box(value))))
    });
    if let (Some(want), Some(last)) = (&want, &last) {
        check(&id, "of the last timed call", last, want);
    }
}

/// Compares an output (the GPU's or the CPU layer's) with the oracle's; panics, naming the bench, the shape and the comparison,
/// when it is out of tolerance: a benchmark of a wrong kernel must not produce a figure.
fn check(id: &str, when: &str, got: &ForwardOutput, want: &ForwardOutput) {
    let c = compare_outputs(got, want, Tolerance::F32);
    assert!(
        c.passed(),
        "{id}: the output {when} is out of tolerance against the oracle at this shape: {c}. A benchmark of a \
         wrong kernel gives no figure."
    );
    eprintln!("[bench] {id}: output {when} checked against the oracle: max abs err {:.2e}", c.max_abs());
}

/// The oracle itself, timed: it is the reference, so nothing is checked here.
fn bench_oracle(c: &mut Criterion) {
    let mut group = c.benchmark_group("oracle");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    for shape in ORACLE_SHAPES {
        let (config, weights, query, value) = shape.build();
        let options = options();
        let problem = gqa::core::Problem::new(&config, query.shape(), value.shape(), None, &options).expect("problem");
        let plan = gqa::core::Plan::new(&problem, &gqa::core::Limits::webgpu_default()).expect("plan");
        group.throughput(Throughput::Elements(plan.flops()));
        group.bench_function(shape.name(), |b| {
            b.iter(|| {
                gqa::reference::forward(&config, &weights, black_box(&query), black_box(&value), None, &options)
                    .expect("oracle")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_layer, bench_cpu, bench_oracle);
criterion_main!(benches);
