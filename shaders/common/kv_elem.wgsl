// K and V of the fused kernel in its storage type `Elem` (f32, or f16 in the f16 kernels): the same
// load_k / load_v as common/kv_f32.wgsl (row b * kv_stride + s, vec4 column kv head * H / 4 + c),
// four scalar loads each, so that one file serves both precisions.
@group(0) @binding(2) var<storage, read> kmat: array<Elem>; // (B, kv_stride >= S, Nkv, H)
@group(0) @binding(3) var<storage, read> vmat: array<Elem>; // (B, kv_stride >= S, Nkv, H)

fn load_k(row: u32, col: u32) -> vec4<f32> {
    let at = (row * params.nkv * (params.head_dim / 4u) + col) * 4u;
    return vec4<f32>(vec4<Elem>(kmat[at], kmat[at + 1u], kmat[at + 2u], kmat[at + 3u]));
}

fn load_v(row: u32, col: u32) -> vec4<f32> {
    let at = (row * params.nkv * (params.head_dim / 4u) + col) * 4u;
    return vec4<f32>(vec4<Elem>(vmat[at], vmat[at + 1u], vmat[at + 2u], vmat[at + 3u]));
}
