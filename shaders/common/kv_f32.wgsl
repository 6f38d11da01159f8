// K and V of the attention kernels as f32 storage buffers (the portable form): load_k and load_v
// take a row (b * kv_stride + s) and a vec4 column (kv head * H / 4 + c) of the
// (B * kv_stride, Nkv * H / 4) matrix. common/kv_f16.wgsl and common/kv_int8.wgsl declare the same
// functions over a quantized KV cache.
@group(0) @binding(2) var<storage, read> kmat: array<vec4<f32>>; // (B, kv_stride >= S, Nkv, H)
@group(0) @binding(3) var<storage, read> vmat: array<vec4<f32>>; // (B, kv_stride >= S, Nkv, H)

fn load_k(row: u32, col: u32) -> vec4<f32> {
    return kmat[row * (params.nkv * (params.head_dim / 4u)) + col];
}

fn load_v(row: u32, col: u32) -> vec4<f32> {
    return vmat[row * (params.nkv * (params.head_dim / 4u)) + col];
}
