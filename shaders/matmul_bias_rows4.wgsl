// C[m, n] = A[m, k] · B[k, n] (+ bias[n]) (then sigmoid) for few rows: the projections of a decoding
// step, where m = B * T new tokens is small and the product is a matrix-vector one, bound by reading
// B (the weights) once. Each invocation owns 4 rows x 4 adjacent columns of C; adjacent invocations
// take adjacent columns, so together they stream each row of B contiguously, and every vec4 of B
// loaded serves 4 rows. Needs k and n multiples of 4 (vec4 loads); no workgroup memory, no barrier.
// Rows past m read a clamped (valid) row and are never stored. The operands A (m, k) and B (k, n) come
// through `load_a` / `load_b` from a snippet: common/operands_storage.wgsl (storage buffers) or
// common/operands_texture.wgsl (textures, for CPU adapters); the bias, C and `store` from
// common/matmul_out.wgsl.

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let m = params.m;
    let n4 = params.n / 4u;
    let k4 = params.k / 4u;
    let col = gid.x;
    let row0 = gid.y * 4u;
    if col >= n4 {
        return;
    }
    let r0 = min(row0, m - 1u);
    let r1 = min(row0 + 1u, m - 1u);
    let r2 = min(row0 + 2u, m - 1u);
    let r3 = min(row0 + 3u, m - 1u);
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    for (var kk = 0u; kk < k4; kk++) {
        // Rows 4kk .. 4kk + 3 of B at this invocation's columns.
        let b0 = load_b(4u * kk, col);
        let b1 = load_b(4u * kk + 1u, col);
        let b2 = load_b(4u * kk + 2u, col);
        let b3 = load_b(4u * kk + 3u, col);
        let a0 = load_a(r0, kk);
        c0 = fma(vec4<f32>(a0.x), b0, fma(vec4<f32>(a0.y), b1, fma(vec4<f32>(a0.z), b2, fma(vec4<f32>(a0.w), b3, c0))));
        let a1 = load_a(r1, kk);
        c1 = fma(vec4<f32>(a1.x), b0, fma(vec4<f32>(a1.y), b1, fma(vec4<f32>(a1.z), b2, fma(vec4<f32>(a1.w), b3, c1))));
        let a2 = load_a(r2, kk);
        c2 = fma(vec4<f32>(a2.x), b0, fma(vec4<f32>(a2.y), b1, fma(vec4<f32>(a2.z), b2, fma(vec4<f32>(a2.w), b3, c2))));
        let a3 = load_a(r3, kk);
        c3 = fma(vec4<f32>(a3.x), b0, fma(vec4<f32>(a3.y), b1, fma(vec4<f32>(a3.z), b2, fma(vec4<f32>(a3.w), b3, c3))));
    }
    store(row0, col, c0);
    store(row0 + 1u, col, c1);
    store(row0 + 2u, col, c2);
    store(row0 + 3u, col, c3);
}
