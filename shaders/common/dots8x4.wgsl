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

// Query rows q[0..8], key rows k0..k3, each a (row, first vec4 column) of load_q / load_k, h4n vec4s
// each: field cIJ is query I, key J.
fn dots8x4(
    q0: vec2<u32>, q1: vec2<u32>, q2: vec2<u32>, q3: vec2<u32>,
    q4: vec2<u32>, q5: vec2<u32>, q6: vec2<u32>, q7: vec2<u32>,
    k0_at: vec2<u32>, k1_at: vec2<u32>, k2_at: vec2<u32>, k3_at: vec2<u32>,
    h4n: u32,
) -> Dots8x4 {
    var d: Dots8x4;
    d.c00 = vec4<f32>(0.0); d.c01 = vec4<f32>(0.0); d.c02 = vec4<f32>(0.0); d.c03 = vec4<f32>(0.0);
    d.c10 = vec4<f32>(0.0); d.c11 = vec4<f32>(0.0); d.c12 = vec4<f32>(0.0); d.c13 = vec4<f32>(0.0);
    d.c20 = vec4<f32>(0.0); d.c21 = vec4<f32>(0.0); d.c22 = vec4<f32>(0.0); d.c23 = vec4<f32>(0.0);
    d.c30 = vec4<f32>(0.0); d.c31 = vec4<f32>(0.0); d.c32 = vec4<f32>(0.0); d.c33 = vec4<f32>(0.0);
    d.c40 = vec4<f32>(0.0); d.c41 = vec4<f32>(0.0); d.c42 = vec4<f32>(0.0); d.c43 = vec4<f32>(0.0);
    d.c50 = vec4<f32>(0.0); d.c51 = vec4<f32>(0.0); d.c52 = vec4<f32>(0.0); d.c53 = vec4<f32>(0.0);
    d.c60 = vec4<f32>(0.0); d.c61 = vec4<f32>(0.0); d.c62 = vec4<f32>(0.0); d.c63 = vec4<f32>(0.0);
    d.c70 = vec4<f32>(0.0); d.c71 = vec4<f32>(0.0); d.c72 = vec4<f32>(0.0); d.c73 = vec4<f32>(0.0);
    for (var c = 0u; c < h4n; c++) {
        let k0 = load_k(k0_at.x, k0_at.y + c);
        let k1 = load_k(k1_at.x, k1_at.y + c);
        let k2 = load_k(k2_at.x, k2_at.y + c);
        let k3 = load_k(k3_at.x, k3_at.y + c);
        let x0 = load_q(q0.x, q0.y + c);
        d.c00 = fma(x0, k0, d.c00);
        d.c01 = fma(x0, k1, d.c01);
        d.c02 = fma(x0, k2, d.c02);
        d.c03 = fma(x0, k3, d.c03);
        let x1 = load_q(q1.x, q1.y + c);
        d.c10 = fma(x1, k0, d.c10);
        d.c11 = fma(x1, k1, d.c11);
        d.c12 = fma(x1, k2, d.c12);
        d.c13 = fma(x1, k3, d.c13);
        let x2 = load_q(q2.x, q2.y + c);
        d.c20 = fma(x2, k0, d.c20);
        d.c21 = fma(x2, k1, d.c21);
        d.c22 = fma(x2, k2, d.c22);
        d.c23 = fma(x2, k3, d.c23);
        let x3 = load_q(q3.x, q3.y + c);
        d.c30 = fma(x3, k0, d.c30);
        d.c31 = fma(x3, k1, d.c31);
        d.c32 = fma(x3, k2, d.c32);
        d.c33 = fma(x3, k3, d.c33);
        let x4 = load_q(q4.x, q4.y + c);
        d.c40 = fma(x4, k0, d.c40);
        d.c41 = fma(x4, k1, d.c41);
        d.c42 = fma(x4, k2, d.c42);
        d.c43 = fma(x4, k3, d.c43);
        let x5 = load_q(q5.x, q5.y + c);
        d.c50 = fma(x5, k0, d.c50);
        d.c51 = fma(x5, k1, d.c51);
        d.c52 = fma(x5, k2, d.c52);
        d.c53 = fma(x5, k3, d.c53);
        let x6 = load_q(q6.x, q6.y + c);
        d.c60 = fma(x6, k0, d.c60);
        d.c61 = fma(x6, k1, d.c61);
        d.c62 = fma(x6, k2, d.c62);
        d.c63 = fma(x6, k3, d.c63);
        let x7 = load_q(q7.x, q7.y + c);
        d.c70 = fma(x7, k0, d.c70);
        d.c71 = fma(x7, k1, d.c71);
        d.c72 = fma(x7, k2, d.c72);
        d.c73 = fma(x7, k3, d.c73);
    }
    return d;
}
