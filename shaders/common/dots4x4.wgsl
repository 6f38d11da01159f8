// The logit micro-kernel of attention_decode (attention_block has common/dots8x4.wgsl): the 16 dot
// products of 4 query rows and 4 key rows (H / 4 vec4 each, read through load_q and load_k of
// common/q_storage.wgsl + common/kv_f32.wgsl or common/qkv_texture.wgsl), each accumulated as one f32 (as in
// common/dots8x4.wgsl: a quarter of the registers and of a CPU driver's masked loop stores that vec4
// partial sums took). Each K vec4 loaded serves four queries and each q vec4 four keys: on CPU
// drivers every storage load is a per-lane loop, so loads, not FMAs, bound it. The result is a
// struct of named fields (no array: software drivers keep dynamically indexed arrays in scratch
// memory).
struct Dots4x4 {
    c00: f32, c01: f32, c02: f32, c03: f32,
    c10: f32, c11: f32, c12: f32, c13: f32,
    c20: f32, c21: f32, c22: f32, c23: f32,
    c30: f32, c31: f32, c32: f32, c33: f32,
}

// Query rows q0..q3, key rows k0..k3, each a (row, first vec4 column) of load_q / load_k, h4n vec4s
// each: field cIJ is query I, key J.
fn dots4x4(
    q0: vec2<u32>, q1: vec2<u32>, q2: vec2<u32>, q3: vec2<u32>,
    k0_at: vec2<u32>, k1_at: vec2<u32>, k2_at: vec2<u32>, k3_at: vec2<u32>,
    h4n: u32,
) -> Dots4x4 {
    var d: Dots4x4;
    d.c00 = 0.0; d.c01 = 0.0; d.c02 = 0.0; d.c03 = 0.0;
    d.c10 = 0.0; d.c11 = 0.0; d.c12 = 0.0; d.c13 = 0.0;
    d.c20 = 0.0; d.c21 = 0.0; d.c22 = 0.0; d.c23 = 0.0;
    d.c30 = 0.0; d.c31 = 0.0; d.c32 = 0.0; d.c33 = 0.0;
    for (var c = 0u; c < h4n; c++) {
        let k0 = load_k(k0_at.x, k0_at.y + c);
        let k1 = load_k(k1_at.x, k1_at.y + c);
        let k2 = load_k(k2_at.x, k2_at.y + c);
        let k3 = load_k(k3_at.x, k3_at.y + c);
        let x0 = load_q(q0.x, q0.y + c);
        d.c00 += dot(x0, k0);
        d.c01 += dot(x0, k1);
        d.c02 += dot(x0, k2);
        d.c03 += dot(x0, k3);
        let x1 = load_q(q1.x, q1.y + c);
        d.c10 += dot(x1, k0);
        d.c11 += dot(x1, k1);
        d.c12 += dot(x1, k2);
        d.c13 += dot(x1, k3);
        let x2 = load_q(q2.x, q2.y + c);
        d.c20 += dot(x2, k0);
        d.c21 += dot(x2, k1);
        d.c22 += dot(x2, k2);
        d.c23 += dot(x2, k3);
        let x3 = load_q(q3.x, q3.y + c);
        d.c30 += dot(x3, k0);
        d.c31 += dot(x3, k1);
        d.c32 += dot(x3, k2);
        d.c33 += dot(x3, k3);
    }
    return d;
}
