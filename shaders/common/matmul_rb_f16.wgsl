// The register-blocked product of the f16 matmuls (see matmul_bias_rb.wgsl, which it mirrors):
// C[m, n] = A[m, k] · B[k, n] (+ bias[n]) (then sigmoid), B and bias stored as f16, every product
// accumulated in f32. Each invocation owns an 8 x 8 block of C in sixteen named vec4<f32> accumulators.
// The kernel file that includes it declares A (binding 1) and C (binding 4) in the storage type it
// needs, `fn load_a(i: u32) -> f32`, `fn store_c(i: u32, x: f32)` and the entry point.

@group(0) @binding(2) var<storage, read> b: array<f16>;
@group(0) @binding(3) var<storage, read> bias: array<f16>;

fn matmul_rb_f16(gid: vec3<u32>) {
    let m = params.m;
    let n = params.n;
    let k = params.k;
    let row0 = gid.y * 8u;
    let col0 = gid.x * 8u;
    // Out-of-range rows and columns read a clamped (valid) element; they are never stored.
    let r0 = min(row0 + 0u, m - 1u) * k;
    let r1 = min(row0 + 1u, m - 1u) * k;
    let r2 = min(row0 + 2u, m - 1u) * k;
    let r3 = min(row0 + 3u, m - 1u) * k;
    let r4 = min(row0 + 4u, m - 1u) * k;
    let r5 = min(row0 + 5u, m - 1u) * k;
    let r6 = min(row0 + 6u, m - 1u) * k;
    let r7 = min(row0 + 7u, m - 1u) * k;
    let cl = vec4<u32>(min(col0, n - 1u), min(col0 + 1u, n - 1u), min(col0 + 2u, n - 1u), min(col0 + 3u, n - 1u));
    let ch = vec4<u32>(min(col0 + 4u, n - 1u), min(col0 + 5u, n - 1u), min(col0 + 6u, n - 1u), min(col0 + 7u, n - 1u));
    var lo0 = vec4<f32>(0.0);
    var hi0 = vec4<f32>(0.0);
    var lo1 = vec4<f32>(0.0);
    var hi1 = vec4<f32>(0.0);
    var lo2 = vec4<f32>(0.0);
    var hi2 = vec4<f32>(0.0);
    var lo3 = vec4<f32>(0.0);
    var hi3 = vec4<f32>(0.0);
    var lo4 = vec4<f32>(0.0);
    var hi4 = vec4<f32>(0.0);
    var lo5 = vec4<f32>(0.0);
    var hi5 = vec4<f32>(0.0);
    var lo6 = vec4<f32>(0.0);
    var hi6 = vec4<f32>(0.0);
    var lo7 = vec4<f32>(0.0);
    var hi7 = vec4<f32>(0.0);
    for (var kk = 0u; kk < k; kk++) {
        let rb = vec4<u32>(kk * n);
        let il = rb + cl;
        let ih = rb + ch;
        let bl = vec4<f32>(vec4<f16>(b[il.x], b[il.y], b[il.z], b[il.w]));
        let bh = vec4<f32>(vec4<f16>(b[ih.x], b[ih.y], b[ih.z], b[ih.w]));
        let a0 = vec4<f32>(load_a(r0 + kk));
        lo0 = fma(a0, bl, lo0);
        hi0 = fma(a0, bh, hi0);
        let a1 = vec4<f32>(load_a(r1 + kk));
        lo1 = fma(a1, bl, lo1);
        hi1 = fma(a1, bh, hi1);
        let a2 = vec4<f32>(load_a(r2 + kk));
        lo2 = fma(a2, bl, lo2);
        hi2 = fma(a2, bh, hi2);
        let a3 = vec4<f32>(load_a(r3 + kk));
        lo3 = fma(a3, bl, lo3);
        hi3 = fma(a3, bh, hi3);
        let a4 = vec4<f32>(load_a(r4 + kk));
        lo4 = fma(a4, bl, lo4);
        hi4 = fma(a4, bh, hi4);
        let a5 = vec4<f32>(load_a(r5 + kk));
        lo5 = fma(a5, bl, lo5);
        hi5 = fma(a5, bh, hi5);
        let a6 = vec4<f32>(load_a(r6 + kk));
        lo6 = fma(a6, bl, lo6);
        hi6 = fma(a6, bh, hi6);
        let a7 = vec4<f32>(load_a(r7 + kk));
        lo7 = fma(a7, bl, lo7);
        hi7 = fma(a7, bh, hi7);
    }
    // A loop over the block's rows, each row's accumulators picked by a switch: one inlined
    // copy of store8_f16 instead of eight (a shorter compile; the stores run once per invocation).
    for (var r = 0u; r < 8u; r++) {
        var lo: vec4<f32>;
        var hi: vec4<f32>;
        switch r {
            case 0u: { lo = lo0; hi = hi0; }
            case 1u: { lo = lo1; hi = hi1; }
            case 2u: { lo = lo2; hi = hi2; }
            case 3u: { lo = lo3; hi = hi3; }
            case 4u: { lo = lo4; hi = hi4; }
            case 5u: { lo = lo5; hi = hi5; }
            case 6u: { lo = lo6; hi = hi6; }
            default: { lo = lo7; hi = hi7; }
        }
        store8_f16(row0 + r, col0, lo, hi);
    }
}

fn store8_f16(row: u32, col: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if row >= params.m {
        return;
    }
    for (var j = 0u; j < 8u; j++) {
        if col + j < params.n {
            var x = 0.0;
            if j < 4u {
                x = lo[j];
            } else {
                x = hi[j - 4u];
            }
            if (params.matmul_flags & 1u) != 0u {
                x += f32(bias[col + j]);
            }
            if (params.matmul_flags & 2u) != 0u {
                x = 1.0 / (1.0 + exp(-x));
            }
            store_c(row * params.n + col + j, x);
        }
    }
}
