// Roofline probe: arithmetic peak. Each invocation runs `iterations` rounds of 16 independent vec4
// chains, each chain stepping through 4 dependent `fma`s per round, then writes the chains' sum so
// nothing is optimised away. FLOPs = units * 64 invocations * iterations * 16 * 4 * 4 * 2.
//
// Why this shape: a CPU driver (Mesa lavapipe / llvmpipe) runs 8 invocations per SIMD batch, turns
// each vec4 op into 4 8-wide ops, and writes every variable assigned inside a loop through the
// loop's execution mask (a blend per assignment) plus the loop's own mask and counter work each
// round. With one `fma` per chain per round that overhead halves the FMA rate; with 4 chained
// `fma`s per assignment (intermediates stay in registers) and 64 independent 8-wide chains it is
// amortised and the rate reaches the FMA units' peak. On a GPU the 64 independent chains are ample
// instruction-level parallelism, and `roofline::measure` dispatches enough invocations to fill it.
//
// The work comes from a queue: a sample's dispatches share `units` units of work (one workgroup's
// chains each), and each workgroup takes units until none is left or it has taken `quota` of them.
// A driver that splits a dispatch's workgroups between its threads in fixed shares (Mesa's
// llvmpipe) then keeps every thread busy to the end: the probe measures what a balanced kernel can
// attain, not the slowest thread's share. The quota keeps a workgroup's loops under llvmpipe's cap
// of 65,535 iterations per invocation; one workgroup per unit is dispatched, so every unit is taken.

struct Probe {
    iterations: u32,
    elements: u32,
    // Units of work (64 invocations' chains each) in the sample, shared by its dispatches.
    units: u32,
    // The most units one workgroup takes: llvmpipe ends an invocation's loops after 65,535
    // iterations in all (roofline.rs, FMA_UNITS_PER_WORKGROUP, from gqa_core::LLVMPIPE_LOOP_CAP).
    quota: u32,
}

@group(0) @binding(0) var<uniform> probe: Probe;
@group(0) @binding(1) var<storage, read_write> sink: array<vec4<f32>>;
// Word 0: the units handed out so far (zeroed before each sample).
@group(0) @binding(2) var<storage, read_write> queue: array<atomic<u32>>;

var<workgroup> unit_next: u32;

// Four dependent multiply-adds: x <- x * a + b, four times (8 FLOPs per lane).
fn step4(x: vec4<f32>, a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    return fma(fma(fma(fma(x, a, b), a, b), a, b), a, b);
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(local_invocation_index) lid: u32) {
    for (var taken = 0u; taken < probe.quota; taken++) {
        // Every invocation has read the previous unit before invocation 0 replaces it.
        workgroupBarrier();
        if lid == 0u {
            unit_next = atomicAdd(&queue[0], 1u);
        }
        let unit = workgroupUniformLoad(&unit_next);
        if unit >= probe.units {
            break;
        }
        chains((unit % (arrayLength(&sink) / 64u)) * 64u + lid);
    }
}

// One invocation's 16 chains over `probe.iterations` rounds, summed into sink[index].
fn chains(index: u32) {
    let seed = f32(index) * 1.0e-7;
    let a = vec4<f32>(0.999999, 0.999998, 0.999997, 0.999996);
    let b = vec4<f32>(1.0e-7 + seed);
    var x0 = vec4<f32>(seed);
    var x1 = x0 + 0.1;
    var x2 = x0 + 0.2;
    var x3 = x0 + 0.3;
    var x4 = x0 + 0.4;
    var x5 = x0 + 0.5;
    var x6 = x0 + 0.6;
    var x7 = x0 + 0.7;
    var x8 = x0 + 0.8;
    var x9 = x0 + 0.9;
    var x10 = x0 + 1.0;
    var x11 = x0 + 1.1;
    var x12 = x0 + 1.2;
    var x13 = x0 + 1.3;
    var x14 = x0 + 1.4;
    var x15 = x0 + 1.5;
    for (var i = 0u; i < probe.iterations; i++) {
        x0 = step4(x0, a, b);
        x1 = step4(x1, a, b);
        x2 = step4(x2, a, b);
        x3 = step4(x3, a, b);
        x4 = step4(x4, a, b);
        x5 = step4(x5, a, b);
        x6 = step4(x6, a, b);
        x7 = step4(x7, a, b);
        x8 = step4(x8, a, b);
        x9 = step4(x9, a, b);
        x10 = step4(x10, a, b);
        x11 = step4(x11, a, b);
        x12 = step4(x12, a, b);
        x13 = step4(x13, a, b);
        x14 = step4(x14, a, b);
        x15 = step4(x15, a, b);
    }
    sink[index] = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7))
        + ((x8 + x9) + (x10 + x11)) + ((x12 + x13) + (x14 + x15));
}
