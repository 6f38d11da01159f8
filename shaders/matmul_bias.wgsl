// C[m, n] = A[m, k] · B[k, n] (+ bias[n]) (then sigmoid), all row-major f32.
// 64x64 tile of C per workgroup of 16x16; each invocation owns 4x4 outputs strided by 16, so a row of
// invocations writes contiguous columns. K is staged through workgroup memory 16 at a time.
// Every tile element is written on every step (zeros outside), so workgroup memory need not be zeroed.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const TILE: u32 = 64u;
const BK: u32 = 16u;

var<workgroup> a_tile: array<f32, 1024>; // [kk][row]
var<workgroup> b_tile: array<f32, 1024>; // [kk][col]

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let m = params.m;
    let n = params.n;
    let k = params.k;
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let flat = lid.y * 16u + lid.x;

    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            acc[i][j] = 0.0;
        }
    }

    for (var k0 = 0u; k0 < k; k0 += BK) {
        for (var r = 0u; r < 4u; r++) {
            let e = flat + 256u * r;
            // A: 64 rows x 16 k, read along k.
            let ar = e / BK;
            let ak = e % BK;
            var av = 0.0;
            if row0 + ar < m && k0 + ak < k {
                av = a[(row0 + ar) * k + k0 + ak];
            }
            a_tile[ak * TILE + ar] = av;
            // B: 16 k x 64 cols, read along n.
            let bk = e / TILE;
            let bc = e % TILE;
            var bv = 0.0;
            if k0 + bk < k && col0 + bc < n {
                bv = b[(k0 + bk) * n + col0 + bc];
            }
            b_tile[bk * TILE + bc] = bv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = a_tile[kk * TILE + lid.y + 16u * i];
                bv[i] = b_tile[kk * TILE + lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i][j] = fma(av[i], bv[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x + 16u * j;
            if row < m && col < n {
                var v = acc[i][j];
                if (params.matmul_flags & 1u) != 0u {
                    v += bias[col];
                }
                if (params.matmul_flags & 2u) != 0u {
                    v = 1.0 / (1.0 + exp(-v));
                }
                c[row * n + col] = v;
            }
        }
    }
}
