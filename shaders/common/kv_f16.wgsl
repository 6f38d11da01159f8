// K and V of a KV cache stored as f16 (gqa_core::CacheStorage::F16): each token's Nkv * H values as
// f16 pairs in 32-bit words, the first in the low half. The same load_k / load_v as
// common/kv_f32.wgsl (row b * kv_stride + s, vec4 column kv head * H / 4 + c); each vec4 is one
// vec2<u32> load, converted exactly with integer arithmetic: no device feature is needed
// (unpack2x16float needs SHADER_F16 on Mesa's Vulkan drivers), and f16 subnormals go through an
// exact f32 product, not f32 subnormals that a driver may flush.
@group(0) @binding(2) var<storage, read> kmat: array<vec2<u32>>; // (B, kv_stride >= S, Nkv, H / 4)
@group(0) @binding(3) var<storage, read> vmat: array<vec2<u32>>; // (B, kv_stride >= S, Nkv, H / 4)

fn unpack_f16x4(w: vec2<u32>) -> vec4<f32> {
    let h = vec4<u32>(w.x & 0xffffu, w.x >> 16u, w.y & 0xffffu, w.y >> 16u);
    let e = (h >> vec4<u32>(10u)) & vec4<u32>(0x1fu);
    let m = h & vec4<u32>(0x3ffu);
    let sign = (h & vec4<u32>(0x8000u)) << vec4<u32>(16u);
    // Normal: rebias the exponent (15 -> 127); 31: infinity or NaN; 0: m * 2^-24 (or zero).
    let normal = sign | ((e + vec4<u32>(112u)) << vec4<u32>(23u)) | (m << vec4<u32>(13u));
    let special = sign | vec4<u32>(0x7f800000u) | (m << vec4<u32>(13u));
    let bits = select(normal, special, e == vec4<u32>(31u));
    let small = sign | bitcast<vec4<u32>>(vec4<f32>(m) * 5.9604645e-8);
    return bitcast<vec4<f32>>(select(bits, small, e == vec4<u32>(0u)));
}

fn load_k(row: u32, col: u32) -> vec4<f32> {
    return unpack_f16x4(kmat[row * (params.nkv * (params.head_dim / 4u)) + col]);
}

fn load_v(row: u32, col: u32) -> vec4<f32> {
    return unpack_f16x4(vmat[row * (params.nkv * (params.head_dim / 4u)) + col]);
}
