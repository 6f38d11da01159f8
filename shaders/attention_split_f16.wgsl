// Fused attention in f16 storage, split mode (flash-decoding, common/attention_f16.wgsl with
// params.split_keys > 0): the partial states are stored as f32 for attention_reduce.wgsl (its f16 build).

@group(0) @binding(6) var<storage, read_write> out: array<f32>; // the partial states

fn store_out(i: u32, x: f32) {
    out[i] = x;
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    attention_f16(lid, wid);
}
