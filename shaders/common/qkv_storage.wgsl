// Q, K and V of attention_decode and attention_block as storage buffers (the portable form): load_q,
// load_k and load_v take a row and a vec4 column of the (rows, heads * H / 4) matrix, i.e. Q's row
// b * T + t and K/V's row b * kv_stride + s, column head * H / 4 + c (a flat vec4 offset is row 0's
// column). common/qkv_texture.wgsl declares the same functions over textures.
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;    // (B, T, Nq, H)
@group(0) @binding(2) var<storage, read> kmat: array<vec4<f32>>; // (B, kv_stride >= S, Nkv, H)
@group(0) @binding(3) var<storage, read> vmat: array<vec4<f32>>; // (B, kv_stride >= S, Nkv, H)

fn load_q(row: u32, col: u32) -> vec4<f32> {
    return q[row * (params.nq * (params.head_dim / 4u)) + col];
}

fn load_k(row: u32, col: u32) -> vec4<f32> {
    return kmat[row * (params.nkv * (params.head_dim / 4u)) + col];
}

fn load_v(row: u32, col: u32) -> vec4<f32> {
    return vmat[row * (params.nkv * (params.head_dim / 4u)) + col];
}
