//! Device-side benches at the headline shapes, one criterion group per part of the layer and one bench
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
//! device ([`gqa::gpu::StepTimer`]). FLOP throughput is reported as elements/s (criterion's
//! `Gelem/s` reads as GFLOP/s).
//!
//! A timing counts only from a checked run. The f64 oracle runs once per shape (in this process;
//! its output is shared by every bench at that shape), and each bench checks the timer's output
//! against it twice ([`gqa::reference::check`], f32 tolerance: atol 1e-5, rtol 1e-4): before
//! timing, the whole plan runs once (so that the timed steps also read real data) and its output is
//! read back and compared; after the timed iterations, the steps after the timed range run once,
//! untimed, carrying what the last timed iteration wrote to the output, which is read back and
//! compared. A failing check panics with the bench, the shape and the comparison. The masked
//! softmax works in place (its repeated runs leave probabilities of probabilities, which is not the
//! call's result), so after its timed iterations the whole plan runs again and is checked instead.
//!
//! `GQA_BENCH_SHAPES` picks the shapes: `all` (default: every shape of the issue; about half an hour
//! on a software adapter) or `small` (the B=4, Nq=8, Nkv=2, H=64, Dq=512, T=S=256 shape and the
//! S=1024 decode step: a few minutes). `WGPU_BACKEND=vulkan|gl` picks the adapter. See
//! docs/PERFORMANCE.md for how figures are taken and recorded.

use gqa::core::Lanes;
use gqa::core::{BlockAttention, BlockLanes, FusedOutput, Operands, Precision};
use std::ops::Range;
use std::time::Duration;

use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gqa::core::{CacheContents, CallOptions, ForwardOutput, GqaConfig, HostTensor, Kernel, LayerDims, Tuning, Weights};
use gqa::gpu::{GpuContext, GqaLayer, StepTimer};
use gqa::reference::check::{Tolerance, compare_outputs};
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

    /// The config, weights and inputs (query, value; key = value) of this shape, seeded.
    fn data(&self) -> (GqaConfig, Weights, HostTensor, HostTensor) {
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

    /// A layer of this shape on `ctx` and its inputs (key = value).
    fn build(&self, ctx: &GpuContext) -> (GqaLayer, HostTensor, HostTensor) {
        let (config, weights, query, value) = self.data();
        let layer = GqaLayer::new(ctx, &config, &weights).expect("layer");
        (layer, query, value)
    }

    /// The oracle's output of the call at this shape ([`options`]), computed once per process.
    fn oracle(&self) -> Arc<ForwardOutput> {
        oracle_once(&format!("forward {}", self.layer_name()), || {
            let (config, weights, query, value) = self.data();
            gqa::reference::forward(&config, &weights, &query, &value, None, &options()).expect("oracle")
        })
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
/// decode step's query sees every key either way.
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

/// The oracle's result named `key`, computed by `compute` the first time it is asked for in this
/// process (the f64 oracle takes seconds to a minute at the large shapes; several benches share a
/// shape), and only when a bench that needs it runs.
fn oracle_once(key: &str, compute: impl FnOnce() -> ForwardOutput) -> Arc<ForwardOutput> {
    static DONE: Mutex<Option<HashMap<String, Arc<ForwardOutput>>>> = Mutex::new(None);
    if let Some(done) = DONE.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_default().get(key) {
        return done.clone();
    }
    let started = std::time::Instant::now();
    let out = Arc::new(compute());
    eprintln!("[bench] oracle ({key}): {:.1} s", started.elapsed().as_secs_f64());
    DONE.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_default().insert(key.to_string(), out.clone());
    out
}

/// Reads back the timer's output and compares it with the oracle's; panics, naming the bench, the
/// shape and the comparison, when it is out of tolerance: a benchmark of a wrong kernel must not
/// produce a figure.
fn check(id: &str, when: &str, timer: &StepTimer, want: &ForwardOutput) {
    let got = timer.read_output().expect("reading back the output");
    let c = compare_outputs(&got, want, Tolerance::F32);
    assert!(
        c.passed(),
        "{id}: the GPU output {when} is out of tolerance against the oracle at this shape: {c}. A benchmark of a \
         wrong kernel gives no figure."
    );
    eprintln!("[bench] {id}: output {when} checked against the oracle: max abs err {:.2e}", c.max_abs());
}

/// What to run after the timed iterations before the output is read back and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// The steps after the timed range, carrying the last timed iteration's results to the output.
    RestOfPlan,
    /// The whole plan again: the timed range works in place, so its repeated runs do not leave the
    /// call's intermediate result (the masked softmax).
    WholePlan,
}

/// Benches `range`: each iteration is one submission, timed by the timer. The first time it runs
/// (not at all when a filter leaves the bench out), the whole plan runs once, untimed, so that the
/// timed steps read real data, and its output is checked against `oracle()`; after the timed
/// iterations the output is checked again (see [`After`]).
fn bench_range(
    (group, group_name): (&mut BenchmarkGroup<'_, WallTime>, &str),
    name: &str,
    timer: &StepTimer,
    range: Range<usize>,
    after: After,
    oracle: impl Fn() -> Arc<ForwardOutput>,
) {
    let all = 0..timer.plan().steps.len();
    let id = &format!("{group_name}/{name}");
    let mut want = None;
    group.bench_function(name, |b| {
        if want.is_none() {
            let oracle = oracle();
            timer.time(all.clone()).expect("warm-up run");
            check(id, "before timing (the whole plan run once)", timer, &oracle);
            want = Some(oracle);
        }
        b.iter_custom(|iters| (0..iters).map(|_| timer.time(range.clone()).expect("timed run")).sum())
    });
    if let Some(want) = want {
        match after {
            After::RestOfPlan => {
                timer.time(range.end..all.end).expect("the steps after the timed range");
                check(id, "after the timed iterations (the rest of the plan run once)", timer, &want);
            }
            After::WholePlan => {
                timer.time(all).expect("the whole plan");
                check(
                    id,
                    "after the timed iterations (the whole plan run again: the step works in place)",
                    timer,
                    &want,
                );
            }
        }
    }
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
        let range = step_range(&timer, "project_query");
        bench_range((&mut g, "projection"), &shape.projection_name(), &timer, range, After::RestOfPlan, || {
            shape.oracle()
        });
        g.finish();

        let mut g = group(c, "layer");
        g.throughput(Throughput::Elements(timer.plan().flops()));
        let range = 0..timer.plan().steps.len();
        bench_range((&mut g, "layer"), &shape.layer_name(), &timer, range, After::RestOfPlan, || shape.oracle());
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
            (
                "attention_fused",
                Some(Kernel::FusedAttention { precision: Precision::F32, output: FusedOutput::Attention }),
            ),
            (
                "attention_block",
                Some(Kernel::BlockAttention(BlockAttention {
                    operands: Operands::Storage,
                    lanes: BlockLanes::Workgroup,
                })),
            ),
            ("attention_unfused", None),
        ] {
            let tuning = Tuning {
                fused_attention: kernel
                    == Some(Kernel::FusedAttention { precision: Precision::F32, output: FusedOutput::Attention }),
                block_attention: kernel
                    == Some(Kernel::BlockAttention(BlockAttention {
                        operands: Operands::Storage,
                        lanes: BlockLanes::Workgroup,
                    })),
                split_decode: false,
                ..ctx.tuning()
            };
            let timer = timer(&ctx, shape, tuning);
            // The block kernel's texture and subgroup forms (CPU adapters) count as the block kernel.
            let planned = timer
                .plan()
                .passes()
                .find(|p| {
                    p.kernel == Kernel::FusedAttention { precision: Precision::F32, output: FusedOutput::Attention }
                        || p.kernel.is_block_attention()
                })
                .map(|p| {
                    if p.kernel.is_block_attention() {
                        Kernel::BlockAttention(BlockAttention {
                            operands: Operands::Storage,
                            lanes: BlockLanes::Workgroup,
                        })
                    } else {
                        p.kernel
                    }
                });
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
            let range = attention_range(&timer);
            bench_range((&mut g, name), &shape.attention_name(), &timer, range, After::RestOfPlan, || shape.oracle());
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
            let kernel = Kernel::Softmax(if subgroups { Lanes::Subgroup } else { Lanes::Workgroup });
            let mut g = group(c, kernel.name());
            // One exp and a few comparisons and adds per score: counted as elements (scores) per second.
            g.throughput(Throughput::Elements((shape.batch * shape.nq * shape.t * shape.s) as u64));
            let range = step_range(&timer, "softmax");
            bench_range((&mut g, kernel.name()), &shape.attention_name(), &timer, range, After::WholePlan, || {
                shape.oracle()
            });
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
        let name = format!("T1_S{s}_Nq{nq}_Nkv{nkv}_H{h}");
        // The oracle's own cache, loaded with the same tokens, takes the same step.
        let oracle = || {
            oracle_once(&format!("decode {name}"), || {
                let (config, weights, _, _) = shape.data();
                let mut cache = gqa::reference::KvCache::new(&config, 1, s).expect("oracle cache");
                cache.load(&contents).expect("oracle cache load");
                let output = cache.step(&config, &weights, &token, &token, None).expect("oracle step");
                ForwardOutput { output, scores: None }
            })
        };
        bench_range((&mut g, "decode"), &name, &timer, attention_range(&timer), After::RestOfPlan, oracle);
        g.finish();
    }
}

criterion_group!(benches, bench_projection_and_layer, bench_attention, bench_softmax, bench_decode);
criterion_main!(benches);
