// Fused attention in f16 storage (common/attention_f16.wgsl, with one pass over all S keys): the
// attention output (B, T, Nq, H) is stored as f16.

@group(0) @binding(6) var<storage, read_write> out: array<f16>; // (B, T, Nq, H)

fn store_out(i: u32, x: f32) {
    out[i] = f16(x);
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    attention_f16(lid, wid);
}
