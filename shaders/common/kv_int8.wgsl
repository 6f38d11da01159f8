// K and V of a KV cache stored as int8 (gqa_core::CacheStorage::Int8): each token's row holds
// Nkv * H / 4 words of four signed bytes (the first in the lowest byte), then Nkv f32 scales, one
// per kv head (a power of two, or NaN for a head vector that held a non-finite value). The same
// load_k / load_v as common/kv_f32.wgsl (row b * kv_stride + s, vec4 column kv head * H / 4 + c):
// one word and the head's scale per vec4, q * scale exact in f32.
@group(0) @binding(2) var<storage, read> kmat: array<u32>; // (B, kv_stride >= S, Nkv * (H / 4 + 1))
@group(0) @binding(3) var<storage, read> vmat: array<u32>; // (B, kv_stride >= S, Nkv * (H / 4 + 1))

fn dequant_int8x4(w: u32, scale: u32) -> vec4<f32> {
    let x = bitcast<i32>(w);
    let q = vec4<i32>(extractBits(x, 0u, 8u), extractBits(x, 8u, 8u), extractBits(x, 16u, 8u), extractBits(x, 24u, 8u));
    return vec4<f32>(q) * bitcast<f32>(scale);
}

fn load_k(row: u32, col: u32) -> vec4<f32> {
    let h4 = params.head_dim / 4u;
    let at = row * (params.nkv * (h4 + 1u));
    return dequant_int8x4(kmat[at + col], kmat[at + params.nkv * h4 + col / h4]);
}

fn load_v(row: u32, col: u32) -> vec4<f32> {
    let h4 = params.head_dim / 4u;
    let at = row * (params.nkv * (h4 + 1u));
    return dequant_int8x4(vmat[at + col], vmat[at + params.nkv * h4 + col / h4]);
}
