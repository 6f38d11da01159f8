// The logit micro-kernel of attention_block: the 32 dot products of 8 query rows and 4 key rows (H / 4
// vec4 each, read through load_q and load_k of common/qkv_storage.wgsl or common/qkv_texture.wgsl),
// each left as a vec4 of partial sums. On CPU drivers a fetch costs by the distinct addresses the
// SIMD lanes read: the block's lanes share their queries and differ in their keys, so each key vec4
// loaded serving 8 queries (dots4x4.wgsl: 4) halves the costly fetches per FMA. Named fields, no
// array (software drivers keep dynamically indexed arrays in scratch memory).
struct Dots8x4 {
    c00: vec4<f32>, c01: vec4<f32>, c02: vec4<f32>, c03: vec4<f32>,
    c10: vec4<f32>, c11: vec4<f32>, c12: vec4<f32>, c13: vec4<f32>,
    c20: vec4<f32>, c21: vec4<f32>, c22: vec4<f32>, c23: vec4<f32>,
    c30: vec4<f32>, c31: vec4<f32>, c32: vec4<f32>, c33: vec4<f32>,
    c40: vec4<f32>, c41: vec4<f32>, c42: vec4<f32>, c43: vec4<f32>,
    c50: vec4<f32>, c51: vec4<f32>, c52: vec4<f32>, c53: vec4<f32>,
    c60: vec4<f32>, c61: vec4<f32>, c62: vec4<f32>, c63: vec4<f32>,
    c70: vec4<f32>, c71: vec4<f32>, c72: vec4<f32>, c73: vec4<f32>,
}

// One step of the dot products: field cIJ += xI * kJ, for one vec4 column of 8 query rows and 4 key
// rows.
fn fma8x4(d: Dots8x4, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>, x4: vec4<f32>, x5: vec4<f32>, x6: vec4<f32>, x7: vec4<f32>, k0: vec4<f32>, k1: vec4<f32>, k2: vec4<f32>, k3: vec4<f32>) -> Dots8x4 {
    var r = d;
    r.c00 = fma(x0, k0, r.c00);
    r.c01 = fma(x0, k1, r.c01);
    r.c02 = fma(x0, k2, r.c02);
    r.c03 = fma(x0, k3, r.c03);
    r.c10 = fma(x1, k0, r.c10);
    r.c11 = fma(x1, k1, r.c11);
    r.c12 = fma(x1, k2, r.c12);
    r.c13 = fma(x1, k3, r.c13);
    r.c20 = fma(x2, k0, r.c20);
    r.c21 = fma(x2, k1, r.c21);
    r.c22 = fma(x2, k2, r.c22);
    r.c23 = fma(x2, k3, r.c23);
    r.c30 = fma(x3, k0, r.c30);
    r.c31 = fma(x3, k1, r.c31);
    r.c32 = fma(x3, k2, r.c32);
    r.c33 = fma(x3, k3, r.c33);
    r.c40 = fma(x4, k0, r.c40);
    r.c41 = fma(x4, k1, r.c41);
    r.c42 = fma(x4, k2, r.c42);
    r.c43 = fma(x4, k3, r.c43);
    r.c50 = fma(x5, k0, r.c50);
    r.c51 = fma(x5, k1, r.c51);
    r.c52 = fma(x5, k2, r.c52);
    r.c53 = fma(x5, k3, r.c53);
    r.c60 = fma(x6, k0, r.c60);
    r.c61 = fma(x6, k1, r.c61);
    r.c62 = fma(x6, k2, r.c62);
    r.c63 = fma(x6, k3, r.c63);
    r.c70 = fma(x7, k0, r.c70);
    r.c71 = fma(x7, k1, r.c71);
    r.c72 = fma(x7, k2, r.c72);
    r.c73 = fma(x7, k3, r.c73);
    return r;
}

// Query rows q[0..8], key rows k0..k3, each a (row, first vec4 column) of load_q / load_k, h4n vec4s
// each: field cIJ is query I, key J. (common/block_lanes_subgroup.wgsl's logits8x4 has the same loop
// with the queries shared through the subgroup.)
fn dots8x4(
    q0: vec2<u32>, q1: vec2<u32>, q2: vec2<u32>, q3: vec2<u32>,
    q4: vec2<u32>, q5: vec2<u32>, q6: vec2<u32>, q7: vec2<u32>,
    k0_at: vec2<u32>, k1_at: vec2<u32>, k2_at: vec2<u32>, k3_at: vec2<u32>,
    h4n: u32,
) -> Dots8x4 {
    var d = Dots8x4();
    for (var c = 0u; c < h4n; c++) {
        d = fma8x4(
            d,
            load_q(q0.x, q0.y + c), load_q(q1.x, q1.y + c), load_q(q2.x, q2.y + c), load_q(q3.x, q3.y + c),
            load_q(q4.x, q4.y + c), load_q(q5.x, q5.y + c), load_q(q6.x, q6.y + c), load_q(q7.x, q7.y + c),
            load_k(k0_at.x, k0_at.y + c), load_k(k1_at.x, k1_at.y + c), load_k(k2_at.x, k2_at.y + c), load_k(k3_at.x, k3_at.y + c),
        );
    }
    return d;
}
