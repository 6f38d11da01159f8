// One file for both precisions: `Elem` (common/store_f32.wgsl or common/f16.wgsl) is the storage
// type of Q and K; they are converted to f32 as loaded, and the products, sums and logits are f32.
// Grouped, scaled logits: L[b, u, t, s] = sum_h (Q[b, t, u, h] * scale) * K[b, s, u / R, h].
// The kv head is an index (u / R): K is never repeated. Masking happens in softmax_masked.
// Workgroup z = the (b, u) row within this attention chunk (bu = bu_base + z, b local to the batch chunk);
// a 64 (s) x 64 (t) tile of the chunk's t_count queries per workgroup, 4x4 per invocation strided by 16.
// The logits of the chunk are stored as (rows of the chunk, t_count, S).

@group(0) @binding(1) var<storage, read> q: array<Elem>;       // (B, T, Nq, H)
@group(0) @binding(2) var<storage, read> kmat: array<Elem>;    // (B, kv_stride >= S, Nkv, H)
@group(0) @binding(3) var<storage, read_write> logits: array<f32>; // (B, Nq, T, S)

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let t_len = params.t_len;
    let s_len = params.s_len;
    let hd = params.head_dim;
    let row = wid.z;
    let t_count = params.t_count;
    let bu = params.bu_base + row;
    let b = bu / params.nq;
    let u = bu % params.nq;
    let kv = u / params.group;

    var q_base: array<u32, 4>;
    var k_base: array<u32, 4>;
    for (var i = 0u; i < 4u; i++) {
        // Clamp out-of-range rows to a valid one; their results are never stored.
        let t = params.t_base + min(wid.y * 64u + lid.y + 16u * i, t_count - 1u);
        q_base[i] = ((b * t_len + t) * params.nq + u) * hd;
        let s = min(wid.x * 64u + lid.x + 16u * i, s_len - 1u);
        k_base[i] = ((b * params.kv_stride + s) * params.nkv + kv) * hd;
    }

    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            acc[i][j] = 0.0;
        }
    }
    for (var h = 0u; h < hd; h++) {
        var qv: array<f32, 4>;
        var kvv: array<f32, 4>;
        for (var i = 0u; i < 4u; i++) {
            qv[i] = f32(q[q_base[i] + h]) * params.scale;
            kvv[i] = f32(kmat[k_base[i] + h]);
        }
        for (var i = 0u; i < 4u; i++) {
            for (var j = 0u; j < 4u; j++) {
                acc[i][j] = fma(qv[i], kvv[j], acc[i][j]);
            }
        }
    }

    for (var i = 0u; i < 4u; i++) {
        let tc = wid.y * 64u + lid.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let s = wid.x * 64u + lid.x + 16u * j;
            if tc < t_count && s < s_len {
                logits[(row * t_count + tc) * s_len + s] = acc[i][j];
            }
        }
    }
}
