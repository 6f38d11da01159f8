// Roofline probe: memory bandwidth through storage buffers. dst[i] = src[i], one vec4 per invocation
// over `elements` vec4s (the dispatch covers them; the last workgroup's spare invocations do
// nothing). Bytes moved = 2 * elements * 16.
//
// No grid-stride loop: on a CPU driver (Mesa lavapipe / llvmpipe) each storage access is a per-lane
// scalar loop, and a loop around it adds the loop's mask and counter work per element; one element
// per invocation measured ~1.7x the grid-stride loop's rate there, and several vec4s per invocation
// were slower still. On a GPU it is the usual fully coalesced copy.

struct Probe {
    iterations: u32,
    elements: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> probe: Probe;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x < probe.elements {
        dst[gid.x] = src[gid.x];
    }
}
