//! Device-side benches at issue 4's shapes, one criterion group per part of the layer and one bench
//! per shape, named after it:
//!
//! - `projection/B{B}_T{T}_Nq{Nq}_H{H}_Dq{Dq}`: the query projection, a (B·T) x Dq x (Nq·H) matmul
//!   with bias (the largest of the four projections);
//! - `attention_fused/...` and `attention_unfused/B{B}_T{T}_S{S}_Nq{Nq}_Nkv{Nkv}_H{H}`: the attention
//!   core (everything between the projections and the output projection) with the fused kernel
//!   forced on, and as separate logits / softmax / PV passes; an adapter whose plans cannot fuse a
//!   shape (Mesa's loop cap on software adapters) skips that fused bench with a note;
//! - `decode/T1_S{S}_Nq32_Nkv8_H128`: the attention core of one decoding step (T = 1) over a KV cache
//!   of S keys (the append of the new token's K and V, then flash-decoding where it applies, over the
//!   cache's texture mirrors on CPU adapters); throughput in bytes of K and V;
//! - `layer/B{B}_T{T}_S{S}_Nq{Nq}_Nkv{Nkv}_H{H}_Dq{Dq}`: every step of the forward pass (inputs
//!   already on the device, nothing read back);
//! - `softmax_masked/...` and `softmax_masked_subgroup/B{B}_T{T}_S{S}_Nq{Nq}_Nkv{Nkv}_H{H}`: the
//!   masked softmax step alone, the workgroup-memory baseline and (where the device has
//!   `SUBGROUP`) the subgroup variant; throughput in scores per second.
//!
//! Each iteration is one submission of the timed steps, timed with GPU timestamp queries where the
//! device has `TIMESTAMP_QUERY`, else with the wall clock around the submission and a wait for the
//! device ([`gqa::gpu::StepTimer`]). Before timing, the steps up to the timed ones run once so they
//! read real data. FLOP throughput is reported as elements/s (criterion's `Gelem/s` reads as
//! GFLOP/s).
//!
//! `GQA_BENCH_SHAPES` picks the shapes: `all` (default: every shape of the issue; about half an hour
//! on a software adapter) or `small` (the B=4, Nq=8, Nkv=2, H=64, Dq=512, T=S=256 shape and the
//! S=1024 decode step: a few minutes). `WGPU_BACKEND=vulkan|gl` picks the adapter. See
//! docs/PERFORMANCE.md.

use std::ops::Range;
use std::time::Duration;

use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use gqa::core::{CacheContents, CallOptions, GqaConfig, HostTensor, Kernel, LayerDims, Tuning};
use gqa::gpu::{GpuContext, GqaLayer, StepTimer};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// A layer and a call: B, T, S, heads, head size, Dq (= Dk = Dv).
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

const fn shape(batch: usize, t: usize, s: usize, nq: usize, nkv: usize, h: usize, dq: usize) -> Shape {
    Shape { batch, t, s, nq, nkv, h, dq }
}

/// The large layer: B=1, Nq=32, Nkv=8, H=128, Dq=4096, T=S=512.
const LARGE: Shape = shape(1, 512, 512, 32, 8, 128, 4096);
/// The small layer: B=4, Nq=8, Nkv=2, H=64, Dq=512, T=S=256.
const SMALL: Shape = shape(4, 256, 256, 8, 2, 64, 512);
/// The attention core at T=S=2048 (the projections are not timed: a small Dq keeps them cheap).
const LONG: Shape = shape(1, 2048, 2048, 32, 8, 128, 64);

impl Shape {
    fn layer_name(&self) -> String {
        let Shape { batch, t, s, nq, nkv, h, dq } = *self;
        format!("B{batch}_T{t}_S{s}_Nq{nq}_Nkv{nkv}_H{h}_Dq{dq}")
    }

    fn attention_name(&self) -> String {
        let Shape { batch, t, s, nq, nkv, h, .. } = *self;
        format!("B{batch}_T{t}_S{s}_Nq{nq}_Nkv{nkv}_H{h}")
    }

    fn projection_name(&self) -> String {
        let Shape { batch, t, nq, h, dq, .. } = *self;
        format!("B{batch}_T{t}_Nq{nq}_H{h}_Dq{dq}")
    }

    /// A layer of this shape on `ctx` and its inputs (key = value).
    fn build(&self, ctx: &GpuContext) -> (GqaLayer, HostTensor, HostTensor) {
        let config = GqaConfig::new(self.h, self.nq, self.nkv);
        let dims = LayerDims { query_dim: self.dq, key_dim: self.dq, value_dim: self.dq };
        let weights = gqa::reference::initialize_weights(&config, dims, 7).expect("bench weights");
        let layer = GqaLayer::new(ctx, &config, &weights).expect("layer");
        let mut rng = StdRng::seed_from_u64(7);
        let mut tensor = |shape: [usize; 3]| {
            let n = shape.iter().product();
            HostTensor::new(shape, (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()).expect("bench input")
        };
        let query = tensor([self.batch, self.t, self.dq]);
        let value = tensor([self.batch, self.s, self.dq]);
        (layer, query, value)
    }

    /// Multiply-adds x 2 of QK^T and PV.
    fn attention_flops(&self) -> u64 {
        4 * (self.batch * self.t * self.s * self.nq * self.h) as u64
    }
}

/// Which shapes run (`GQA_BENCH_SHAPES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Set {
    Small,
    /// The attention core's shapes that compare the block kernel with the separate passes on CPU
    /// adapters: the small layer and the large layer's core (T=S=512).
    Block,
    All,
}

fn set() -> Set {
    match std::env::var("GQA_BENCH_SHAPES").as_deref() {
        Ok("small") => Set::Small,
        Ok("block") => Set::Block,
        Ok("all") | Ok("") | Err(_) => Set::All,
        Ok(other) => panic!("GQA_BENCH_SHAPES={other:?}: expected `small`, `block` or `all`"),
    }
}

/// No mask: every key of every row is computed, so the rates are the work the FLOP counts say (under
/// a causal mask the block kernel skips the hidden chunks and a rate over all T x S is nominal). A
/// decode step's query sees every key either way. Until session 6 these benches were causal.
fn options() -> CallOptions {
    CallOptions { use_causal_mask: false, ..Default::default() }
}

fn context() -> GpuContext {
    static CTX: std::sync::OnceLock<GpuContext> = std::sync::OnceLock::new();
    CTX.get_or_init(|| {
        let ctx = GpuContext::new().unwrap_or_else(|e| panic!("the GPU benches need an adapter: {e}"));
        eprintln!("[bench] adapter: {}; kernel variants {:?}", ctx.describe(), ctx.tuning());
        ctx
    })
    .clone()
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    // Flat sampling: 10 samples of the same iteration count (criterion's linear 1 + 2 + ... + 10
    // iterations would take far too long on a software adapter).
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group
}

/// The steps of the attention core ([`gqa::core::Plan::attention_steps`]).
fn attention_range(timer: &StepTimer) -> Range<usize> {
    timer.plan().attention_steps().expect("the bench shapes do not split the batch")
}

fn step_range(timer: &StepTimer, name: &str) -> Range<usize> {
    let i = timer.plan().steps.iter().position(|s| s.label() == name).expect("the step is planned");
    i..i + 1
}

/// Benches `range`: each iteration is one submission, timed by the timer. The first time it runs
/// (not at all when a filter leaves the bench out), the steps up to the end of `range` run once,
/// untimed, so the timed steps read real data.
fn bench_range(group: &mut BenchmarkGroup<'_, WallTime>, id: &str, timer: &StepTimer, range: Range<usize>) {
    let mut warmed = false;
    group.bench_function(id, |b| {
        if !warmed {
            timer.time(0..range.end).expect("warm-up run");
            warmed = true;
        }
        b.iter_custom(|iters| (0..iters).map(|_| timer.time(range.clone()).expect("timed run")).sum())
    });
}

fn timer(ctx: &GpuContext, shape: &Shape, tuning: Tuning) -> StepTimer {
    let ctx = ctx.clone().with_tuning(tuning);
    let (layer, query, value) = shape.build(&ctx);
    layer.step_timer(&query, &value, None, &options()).expect("step timer")
}

/// Projection and whole layer at the two layer shapes.
fn bench_projection_and_layer(c: &mut Criterion) {
    let ctx = context();
    let shapes: &[Shape] = match set() {
        Set::Small | Set::Block => &[SMALL],
        Set::All => &[SMALL, LARGE],
    };
    for shape in shapes {
        let timer = timer(&ctx, shape, ctx.tuning());
        let mut g = group(c, "projection");
        let (m, k, n) = (shape.batch * shape.t, shape.dq, shape.nq * shape.h);
        g.throughput(Throughput::Elements(2 * (m * k * n) as u64));
        bench_range(&mut g, &shape.projection_name(), &timer, step_range(&timer, "project_query"));
        g.finish();

        let mut g = group(c, "layer");
        g.throughput(Throughput::Elements(timer.plan().flops()));
        bench_range(&mut g, &shape.layer_name(), &timer, 0..timer.plan().steps.len());
        g.finish();
    }
}

/// The attention core: the fused kernel, the block kernel and the separate passes.
fn bench_attention(c: &mut Criterion) {
    let ctx = context();
    let shapes: &[Shape] = match set() {
        Set::Small => &[SMALL],
        Set::Block => &[SMALL, Shape { dq: 64, ..LARGE }],
        // The large layer's attention needs no Dq of 4096 either: only the core is timed.
        Set::All => &[SMALL, Shape { dq: 64, ..LARGE }, LONG],
    };
    for shape in shapes {
        for (name, kernel) in [
            ("attention_fused", Some(Kernel::AttentionFused)),
            ("attention_block", Some(Kernel::AttentionBlock)),
            ("attention_unfused", None),
        ] {
            let tuning = Tuning {
                fused_attention: kernel == Some(Kernel::AttentionFused),
                block_attention: kernel == Some(Kernel::AttentionBlock),
                split_decode: false,
                ..ctx.tuning()
            };
            let timer = timer(&ctx, shape, tuning);
            // The block kernel's texture and subgroup forms (CPU adapters) count as the block kernel.
            let planned = timer
                .plan()
                .passes()
                .find(|p| p.kernel == Kernel::AttentionFused || p.kernel.is_block_attention())
                .map(|p| if p.kernel.is_block_attention() { Kernel::AttentionBlock } else { p.kernel });
            if planned != kernel {
                eprintln!(
                    "[bench] {name}/{}: skipped, this adapter's plans do not take it for this shape (loop cap {:?})",
                    shape.attention_name(),
                    ctx.tuning().loop_iteration_cap
                );
                continue;
            }
            let mut g = group(c, name);
            g.throughput(Throughput::Elements(shape.attention_flops()));
            bench_range(&mut g, &shape.attention_name(), &timer, attention_range(&timer));
            g.finish();
        }
    }
}

/// The masked softmax alone (separate passes), the workgroup-memory baseline and, where the device
/// has subgroups, the subgroup variant: `softmax_masked/...` and `softmax_masked_subgroup/...`.
fn bench_softmax(c: &mut Criterion) {
    let ctx = context();
    let shapes: &[Shape] = match set() {
        Set::Small | Set::Block => &[SMALL],
        Set::All => &[SMALL, Shape { dq: 64, ..LARGE }],
    };
    let variants: &[bool] = if ctx.tuning().subgroups { &[false, true] } else { &[false] };
    for shape in shapes {
        for &subgroups in variants {
            let tuning = Tuning {
                fused_attention: false,
                block_attention: false,
                split_decode: false,
                subgroups,
                ..ctx.tuning()
            };
            let timer = timer(&ctx, shape, tuning);
            let kernel = tuning.softmax_kernel();
            let mut g = group(c, kernel.name());
            // One exp and a few comparisons and adds per score: counted as elements (scores) per second.
            g.throughput(Throughput::Elements((shape.batch * shape.nq * shape.t * shape.s) as u64));
            bench_range(&mut g, &shape.attention_name(), &timer, step_range(&timer, "softmax"));
            g.finish();
        }
    }
}

/// One decode step's attention core over S keys, as a decoding step runs it: a KV cache holding
/// S - 1 tokens (random projections loaded into it), one new token appended, then the attention over
/// all S keys (on CPU adapters over the cache's texture mirrors).
fn bench_decode(c: &mut Criterion) {
    let ctx = context();
    let sources: &[usize] = match set() {
        Set::Small | Set::Block => &[1024],
        Set::All => &[1024, 4096, 16384],
    };
    for &s in sources {
        let shape = shape(1, 1, s, 32, 8, 128, 64);
        let (layer, token, _) = shape.build(&ctx);
        let mut cache = layer.new_cache(1, s).expect("KV cache");
        let mut rng = StdRng::seed_from_u64(8);
        let mut held = || {
            let n = (s - 1) * shape.nkv * shape.h;
            let data = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            HostTensor::new([1, s - 1, shape.nkv, shape.h], data).expect("cached keys")
        };
        let contents = CacheContents { keys: held(), values: held(), lengths: vec![s - 1] };
        cache.load(&contents).expect("cache load");
        // Dq = Dk = Dv, so the token serves as query and value.
        let timer = layer.step_timer_cached(&cache, &token, &token, None).expect("step timer");
        let mut g = group(c, "decode");
        g.throughput(Throughput::Bytes(2 * (s * shape.nkv * shape.h * 4) as u64));
        let Shape { nq, nkv, h, .. } = shape;
        bench_range(&mut g, &format!("T1_S{s}_Nq{nq}_Nkv{nkv}_H{h}"), &timer, attention_range(&timer));
        g.finish();
    }
}

criterion_group!(benches, bench_projection_and_layer, bench_attention, bench_softmax, bench_decode);
criterion_main!(benches);
