// C[m, n] = A[m, k] · B[k, n] (+ bias[n]) (then sigmoid), all row-major f32.
// A 64x64 tile of C per workgroup of 16x16 invocations; invocation (x, y) owns rows 4y..4y+3 and
// columns 4x..4x+3 of the tile in four vec4 accumulators (registers, no indexed arrays: software
// drivers spill indexed arrays to memory). K is staged through workgroup memory 16 at a time, as
// vec4s: a_tile[kk][y] holds rows 4y..4y+3 at k0 + kk, b_tile[kk][x] columns 4x..4x+3.
// Every tile element is written on every step (zeros outside), so workgroup memory need not be zeroed.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const TILE: u32 = 64u;
const BK: u32 = 16u;

var<workgroup> a_tile: array<vec4<f32>, 256>; // [kk * 16 + row / 4]
var<workgroup> b_tile: array<vec4<f32>, 256>; // [kk * 16 + col / 4]

fn load_a(row: u32, col: u32) -> f32 {
    if row < params.m && col < params.k {
        return a[row * params.k + col];
    }
    return 0.0;
}

fn load_b(row: u32, col: u32) -> f32 {
    if row < params.k && col < params.n {
        return b[row * params.n + col];
    }
    return 0.0;
}

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let flat = lid.y * 16u + lid.x;
    // The element this invocation stages: A row ar (4 consecutive k), B row bk (4 consecutive columns).
    let ar = flat / 4u;
    let ak = (flat % 4u) * 4u;
    let bk = flat / 16u;
    let bc = (flat % 16u) * 4u;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);

    for (var k0 = 0u; k0 < params.k; k0 += BK) {
        let av = vec4<f32>(
            load_a(row0 + ar, k0 + ak),
            load_a(row0 + ar, k0 + ak + 1u),
            load_a(row0 + ar, k0 + ak + 2u),
            load_a(row0 + ar, k0 + ak + 3u),
        );
        // Scatter the 4 k values of row ar into a_tile[k][ar / 4].component(ar % 4).
        let comp = ar % 4u;
        let slot = ar / 4u;
        a_tile[(ak + 0u) * 16u + slot][comp] = av.x;
        a_tile[(ak + 1u) * 16u + slot][comp] = av.y;
        a_tile[(ak + 2u) * 16u + slot][comp] = av.z;
        a_tile[(ak + 3u) * 16u + slot][comp] = av.w;
        b_tile[bk * 16u + bc / 4u] = vec4<f32>(
            load_b(k0 + bk, col0 + bc),
            load_b(k0 + bk, col0 + bc + 1u),
            load_b(k0 + bk, col0 + bc + 2u),
            load_b(k0 + bk, col0 + bc + 3u),
        );
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let ra = a_tile[kk * 16u + lid.y];
            let rb = b_tile[kk * 16u + lid.x];
            acc0 = fma(vec4<f32>(ra.x), rb, acc0);
            acc1 = fma(vec4<f32>(ra.y), rb, acc1);
            acc2 = fma(vec4<f32>(ra.z), rb, acc2);
            acc3 = fma(vec4<f32>(ra.w), rb, acc3);
        }
        workgroupBarrier();
    }

    let row = row0 + lid.y * 4u;
    let col = col0 + lid.x * 4u;
    store_row(row, col, acc0);
    store_row(row + 1u, col, acc1);
    store_row(row + 2u, col, acc2);
    store_row(row + 3u, col, acc3);
}

fn store_row(row: u32, col: u32, v: vec4<f32>) {
    if row >= params.m {
        return;
    }
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
