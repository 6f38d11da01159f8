// Roofline probe: memory bandwidth. dst[i] = src[i] over `elements` vec4s, grid-strided so any size
// fits the dispatch limits. Bytes moved = 2 * elements * 16.

struct Probe {
    iterations: u32,
    elements: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> probe: Probe;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let stride = groups.x * 64u;
    for (var i = gid.x; i < probe.elements; i += stride) {
        dst[i] = src[i];
    }
}
