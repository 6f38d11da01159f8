// One file for both precisions: `Elem` (common/store_f32.wgsl or common/f16.wgsl) is the storage
// type of V, the gate and the output; the probabilities and all arithmetic are f32.
// O[b, t, u, h] = sum_s drop(P[b, u, t, s]) * V[b, s, u / R, h], times the gate G[b, t, u, h] when used.
// Dropout (rate > 0) keeps an element iff dropout_keep(b, u, t, s) and scales it by 1 / (1 - rate);
// P itself (the scores) is left untouched. Workgroup z = the (b, u) row within this attention chunk
// (as in qk_grouped); a 64 (h) x 64 (t) tile per workgroup, 4x4 per invocation strided by 16.

@group(0) @binding(1) var<storage, read> probs: array<f32>;    // (B, Nq, T, S)
@group(0) @binding(2) var<storage, read> vmat: array<Elem>;     // (B, kv_stride >= S, Nkv, H)
@group(0) @binding(3) var<storage, read> gate: array<Elem>;     // (B, T, Nq, H), when use_gate
@group(0) @binding(4) var<storage, read_write> out: array<Elem>; // (B, T, Nq, H)

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let t_len = params.t_len;
    let s_len = params.s_len;
    let hd = params.head_dim;
    let row = wid.z;
    let t_count = params.t_count;
    let bu = params.bu_base + row;
    let b = bu / params.nq;
    let b_global = params.b_base + b;
    let u = bu % params.nq;
    let kv = u / params.group;
    let dropping = params.dropout_rate > 0.0;

    var p_row: array<u32, 4>;
    var t_idx: array<u32, 4>;
    var h_idx: array<u32, 4>;
    for (var i = 0u; i < 4u; i++) {
        let tc = min(wid.y * 64u + lid.y + 16u * i, t_count - 1u);
        t_idx[i] = params.t_base + tc;
        p_row[i] = (row * t_count + tc) * s_len;
        h_idx[i] = min(wid.x * 64u + lid.x + 16u * i, hd - 1u);
    }

    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            acc[i][j] = 0.0;
        }
    }
    for (var s = 0u; s < s_len; s++) {
        let v_base = ((b * params.kv_stride + s) * params.nkv + kv) * hd;
        var pv: array<f32, 4>;
        var vv: array<f32, 4>;
        for (var i = 0u; i < 4u; i++) {
            var p = probs[p_row[i] + s];
            if dropping {
                p = select(0.0, p * params.dropout_scale, dropout_keep(b_global, u, t_idx[i], s));
            }
            pv[i] = p;
            vv[i] = f32(vmat[v_base + h_idx[i]]);
        }
        for (var i = 0u; i < 4u; i++) {
            for (var j = 0u; j < 4u; j++) {
                acc[i][j] = fma(pv[i], vv[j], acc[i][j]);
            }
        }
    }

    for (var i = 0u; i < 4u; i++) {
        let tc = wid.y * 64u + lid.y + 16u * i;
        let t = params.t_base + tc;
        for (var j = 0u; j < 4u; j++) {
            let h = wid.x * 64u + lid.x + 16u * j;
            if tc < t_count && h < hd {
                let at = ((b * t_len + t) * params.nq + u) * hd + h;
                var o = acc[i][j];
                if params.use_gate != 0u {
                    o *= f32(gate[at]);
                }
                out[at] = Elem(o);
            }
        }
    }
}
