// C[m, n] = A[m, k] · B[k, n] (+ bias[n]) (then sigmoid), row-major f32: register-blocked, no
// workgroup memory. Each invocation owns an 8 x 8 block of C (rows 8y.., columns 8x..) in sixteen
// vec4 accumulators; each loaded value of A is reused 8 times and of B 8 times.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let m = params.m;
    let n = params.n;
    let k = params.k;
    let row0 = gid.y * 8u;
    let col0 = gid.x * 8u;
    // Out-of-range rows and columns read a clamped (valid) element; they are never stored.
    var ra: array<u32, 8>;
    for (var i = 0u; i < 8u; i++) {
        ra[i] = min(row0 + i, m - 1u) * k;
    }
    let c0 = min(col0, n - 1u);
    let c1 = min(col0 + 1u, n - 1u);
    let c2 = min(col0 + 2u, n - 1u);
    let c3 = min(col0 + 3u, n - 1u);
    let c4 = min(col0 + 4u, n - 1u);
    let c5 = min(col0 + 5u, n - 1u);
    let c6 = min(col0 + 6u, n - 1u);
    let c7 = min(col0 + 7u, n - 1u);
    var lo: array<vec4<f32>, 8>;
    var hi: array<vec4<f32>, 8>;
    for (var i = 0u; i < 8u; i++) {
        lo[i] = vec4<f32>(0.0);
        hi[i] = vec4<f32>(0.0);
    }
    for (var kk = 0u; kk < k; kk++) {
        let rb = kk * n;
        let bl = vec4<f32>(b[rb + c0], b[rb + c1], b[rb + c2], b[rb + c3]);
        let bh = vec4<f32>(b[rb + c4], b[rb + c5], b[rb + c6], b[rb + c7]);
        for (var i = 0u; i < 8u; i++) {
            let av = vec4<f32>(a[ra[i] + kk]);
            lo[i] = fma(av, bl, lo[i]);
            hi[i] = fma(av, bh, hi[i]);
        }
    }
    for (var i = 0u; i < 8u; i++) {
        let row = row0 + i;
        if row < m {
            store4(row, col0, lo[i]);
            store4(row, col0 + 4u, hi[i]);
        }
    }
}

fn store4(row: u32, col: u32, v: vec4<f32>) {
    for (var j = 0u; j < 4u; j++) {
        if col + j < params.n {
            var x = v[j];
            if (params.matmul_flags & 1u) != 0u {
                x += bias[col + j];
            }
            if (params.matmul_flags & 2u) != 0u {
                x = 1.0 / (1.0 + exp(-x));
            }
            c[row * params.n + col + j] = x;
        }
    }
}
