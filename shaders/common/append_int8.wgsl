// append_head of cache_append.wgsl for int8 caches: the head's scale s, the smallest power of two
// >= 2^-126 with 127 * s >= max |x| (NaN when the head holds a non-finite value), and its values
// q = round(x / s) (ties to even) as signed bytes, four per word, the first in the lowest byte;
// magnitudes below f32's smallest normal count as 0. Every step is exact in f32 (s is a power of
// two), so every device stores the bits gqa_core::CacheStorage::encode_token stores. The token's
// row: Nkv * H / 4 words of bytes, then the Nkv scales.

const MIN_NORMAL: f32 = 1.17549435e-38;

// |v| with magnitudes below f32's smallest normal as 0 (whether or not the driver flushes them).
fn flushed_abs(v: vec4<f32>) -> vec4<f32> {
    let a = abs(v);
    return select(a, vec4<f32>(0.0), a < vec4<f32>(MIN_NORMAL));
}

fn append_head(is_k: bool, src: u32, row: u32, g: u32) {
    let h4 = params.head_dim / 4u;
    let words = params.nkv * (h4 + 1u);
    var amax = 0.0;
    var finite = true;
    for (var c = 0u; c < h4; c++) {
        let v = load_proj(is_k, src + c);
        let bits = bitcast<vec4<u32>>(v) & vec4<u32>(0x7f800000u);
        finite = finite && !any(bits == vec4<u32>(0x7f800000u));
        let a = flushed_abs(v);
        amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
    }
    // The scale's exponent e: amax = m * 2^ex, m in [0.5, 1); 2^(ex - 7) covers m <= 127/128 (a
    // mantissa field <= 0x7e0000), else 2^(ex - 6); at least 2^-126 (also for amax = 0).
    let ab = bitcast<u32>(amax);
    let ex = i32(ab >> 23u) - 126;
    let e = max(select(ex - 6, ex - 7, (ab & 0x7fffffu) <= 0x7e0000u), -126);
    let scale_bits = select(0x7fc00000u, u32(e + 127) << 23u, finite);
    let inv = bitcast<f32>(u32(127 - e) << 23u);
    for (var c = 0u; c < h4; c++) {
        let v = load_proj(is_k, src + c);
        let small = abs(v) < vec4<f32>(MIN_NORMAL);
        let q = select(clamp(round(v * inv), vec4<f32>(-127.0), vec4<f32>(127.0)), vec4<f32>(0.0), small);
        let qi = select(vec4<i32>(q), vec4<i32>(0), vec4<bool>(!finite));
        let bytes = bitcast<vec4<u32>>(qi) & vec4<u32>(0xffu);
        store_cache(is_k, row * words + g * h4 + c, bytes.x | (bytes.y << 8u) | (bytes.z << 16u) | (bytes.w << 24u));
    }
    store_cache(is_k, row * words + params.nkv * h4 + g, scale_bits);
}
