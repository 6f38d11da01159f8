// append_head of cache_append.wgsl for f16 caches: the head's H values rounded to the nearest f16
// (ties to even, overflow to infinity, NaN quiet with the top mantissa bits kept, as the `half`
// crate rounds), in pairs per word, the first in the low half. Integer arithmetic on the bits, so
// that no driver's float-to-half conversion (whose rounding WGSL leaves open) is involved.

fn f16_bits(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    let sign = (b >> 16u) & 0x8000u;
    let a = b & 0x7fffffffu;
    if a >= 0x7f800000u {
        // Infinity, or NaN (quiet, the top of its mantissa kept).
        return sign | 0x7c00u | select(0u, 0x200u | (a & 0x7fffffu) >> 13u, a > 0x7f800000u);
    }
    if a >= 0x477ff000u {
        // 65520 and above round to infinity.
        return sign | 0x7c00u;
    }
    if a < 0x38800000u {
        // Below 2^-14: an f16 subnormal, m * 2^-24 with m = round(|x| * 2^24) (exact product).
        return sign | u32(round(bitcast<f32>(a) * 16777216.0));
    }
    // Normal: rebias the exponent (127 -> 15), round the 13 dropped mantissa bits to nearest even.
    let v = a - 0x38000000u;
    return sign | ((v + 0xfffu + ((v >> 13u) & 1u)) >> 13u);
}

fn append_head(is_k: bool, src: u32, row: u32, g: u32) {
    let h4 = params.head_dim / 4u;
    let dst = (row * params.nkv + g) * h4 * 2u;
    for (var c = 0u; c < h4; c++) {
        let v = load_proj(is_k, src + c);
        store_cache(is_k, dst + 2u * c, f16_bits(v.x) | (f16_bits(v.y) << 16u));
        store_cache(is_k, dst + 2u * c + 1u, f16_bits(v.z) | (f16_bits(v.w) << 16u));
    }
}
