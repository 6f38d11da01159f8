// Roofline probe: arithmetic peak. Each invocation runs `iterations` rounds of 8 independent vec4 FMA
// chains (enough independent work to fill a CPU driver's pipelines as well as a GPU's), then writes
// their sum so nothing is optimised away. FLOPs = invocations * iterations * 8 * 4 * 2.

struct Probe {
    iterations: u32,
    elements: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> probe: Probe;
@group(0) @binding(1) var<storage, read_write> sink: array<vec4<f32>>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let seed = f32(gid.x) * 1.0e-7;
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
    for (var i = 0u; i < probe.iterations; i++) {
        x0 = fma(x0, a, b);
        x1 = fma(x1, a, b);
        x2 = fma(x2, a, b);
        x3 = fma(x3, a, b);
        x4 = fma(x4, a, b);
        x5 = fma(x5, a, b);
        x6 = fma(x6, a, b);
        x7 = fma(x7, a, b);
    }
    sink[gid.x] = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7;
}
