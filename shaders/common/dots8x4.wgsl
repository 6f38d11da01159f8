// The logit micro-kernel of attention_block and attention_subgroup: the 32 dot products of 8 query rows
// and 4 key rows (H / 4 vec4 each, read through load_q and load_k of common/q_storage.wgsl + common/kv_f32.wgsl or
// common/qkv_texture.wgsl), each accumulated as one f32. On CPU drivers a fetch costs by the distinct
// addresses the SIMD lanes read: the block's lanes share their queries and differ in their keys, so
// each key vec4 loaded serving 8 queries (dots4x4.wgsl: 4) halves the costly fetches per FMA. A
// driver that runs 8 invocations per SIMD group holds each f32 in one vector register and each vec4
// in four, and blends and stores every variable assigned in a loop through the loop's mask: scalar
// accumulators (`dot` is 4 multiplies and 4 adds there, no shuffles) take a quarter of the registers
// and of those blends that vec4 partial sums did (lavapipe, attention_subgroup: 0.82-0.93 of the time
// at T=S=512 to 2048). Named fields, no array (software drivers keep dynamically indexed arrays in
// scratch memory).
struct Dots8x4 {
    c00: f32, c01: f32, c02: f32, c03: f32,
    c10: f32, c11: f32, c12: f32, c13: f32,
    c20: f32, c21: f32, c22: f32, c23: f32,
    c30: f32, c31: f32, c32: f32, c33: f32,
    c40: f32, c41: f32, c42: f32, c43: f32,
    c50: f32, c51: f32, c52: f32, c53: f32,
    c60: f32, c61: f32, c62: f32, c63: f32,
    c70: f32, c71: f32, c72: f32, c73: f32,
}

// One step of the dot products: field cIJ += dot(xI, kJ), for one vec4 column of 8 query rows and 4 key
// rows.
fn fma8x4(d: Dots8x4, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>, x4: vec4<f32>, x5: vec4<f32>, x6: vec4<f32>, x7: vec4<f32>, k0: vec4<f32>, k1: vec4<f32>, k2: vec4<f32>, k3: vec4<f32>) -> Dots8x4 {
    var r = d;
    r.c00 += dot(x0, k0);
    r.c01 += dot(x0, k1);
    r.c02 += dot(x0, k2);
    r.c03 += dot(x0, k3);
    r.c10 += dot(x1, k0);
    r.c11 += dot(x1, k1);
    r.c12 += dot(x1, k2);
    r.c13 += dot(x1, k3);
    r.c20 += dot(x2, k0);
    r.c21 += dot(x2, k1);
    r.c22 += dot(x2, k2);
    r.c23 += dot(x2, k3);
    r.c30 += dot(x3, k0);
    r.c31 += dot(x3, k1);
    r.c32 += dot(x3, k2);
    r.c33 += dot(x3, k3);
    r.c40 += dot(x4, k0);
    r.c41 += dot(x4, k1);
    r.c42 += dot(x4, k2);
    r.c43 += dot(x4, k3);
    r.c50 += dot(x5, k0);
    r.c51 += dot(x5, k1);
    r.c52 += dot(x5, k2);
    r.c53 += dot(x5, k3);
    r.c60 += dot(x6, k0);
    r.c61 += dot(x6, k1);
    r.c62 += dot(x6, k2);
    r.c63 += dot(x6, k3);
    r.c70 += dot(x7, k0);
    r.c71 += dot(x7, k1);
    r.c72 += dot(x7, k2);
    r.c73 += dot(x7, k3);
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
