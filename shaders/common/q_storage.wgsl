// Q of attention_decode and attention_block as a storage buffer: load_q takes a row (b * T + t)
// and a vec4 column (head * H / 4 + c) of the (B * T, Nq * H / 4) matrix. K and V come from one of
// common/kv_f32.wgsl, common/kv_f16.wgsl or common/kv_int8.wgsl (common/qkv_texture.wgsl declares
// all three over textures).
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;    // (B, T, Nq, H)

fn load_q(row: u32, col: u32) -> vec4<f32> {
    return q[row * (params.nq * (params.head_dim / 4u)) + col];
}
