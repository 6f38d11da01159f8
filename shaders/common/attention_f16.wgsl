// The body of the f16 fused attention (attention_fused_f16.wgsl, attention_split_f16.wgsl), which
// mirrors attention_fused.wgsl step for step (see it for the algorithm and the split layout): Q, K, V
// and the gate stored as f16 and converted to f32 as loaded (the K/V tiles in workgroup memory are
// f32), the logits, the online softmax and the accumulation in f32. The kernel file that includes it
// declares binding 6 (`out`), `fn store_out(i: u32, x: f32)` and the entry point: f16 for the
// attention output, f32 for the split partial states.

@group(0) @binding(1) var<storage, read> q: array<f16>;        // (B, T, Nq, H)
@group(0) @binding(2) var<storage, read> kmat: array<f16>;     // (B, S, Nkv, H)
@group(0) @binding(3) var<storage, read> vmat: array<f16>;     // (B, S, Nkv, H)
@group(0) @binding(4) var<storage, read> masks: array<u32>;
@group(0) @binding(5) var<storage, read> gate: array<f16>;     // (B, T, Nq, H), when use_gate

const WG: u32 = 64u;
const TILE_FLOATS: u32 = 2048u; // 8 KiB: a K or V tile of TILE_FLOATS / H keys, as vec4s
const MAX_KEYS: u32 = 64u;

var<workgroup> tile: array<vec4<f32>, 512>;

fn attention_f16(lid: u32, wid: vec3<u32>) {
    let hd = params.head_dim;
    let nq = params.nq;
    let nkv = params.nkv;
    let group = params.group;
    let t_len = params.t_len;
    let s_len = params.s_len;
    let b = wid.z / nkv;
    let g = wid.z % nkv;
    let item = wid.x * WG + lid;
    let live = item < t_len * group;
    let t = min(item / group, t_len - 1u);
    let u = g * group + item % group;
    let b_global = params.b_base + b;
    let keys = min(TILE_FLOATS / hd, MAX_KEYS);
    let split = params.split_keys > 0u;
    let s_begin = select(0u, wid.y * params.split_keys, split);
    let s_end = select(s_len, min(s_len, s_begin + params.split_keys), split);
    let keras_rows = params.masked_rows == 1u;

    var qv: array<vec4<f32>, 64>;
    var acc: array<vec4<f32>, 64>;
    // The sum of V over the keys, for a fully masked row under Keras' default-call policy.
    var vsum: array<vec4<f32>, 64>;
    let h4 = hd / 4u;
    var sc: array<f32, MAX_KEYS>;
    let q_at = ((b * t_len + t) * nq + u) * hd;
    for (var h = 0u; h < h4; h++) {
        qv[h] = vec4<f32>(vec4<f16>(q[q_at + 4u * h], q[q_at + 4u * h + 1u], q[q_at + 4u * h + 2u], q[q_at + 4u * h + 3u])) * params.scale;
        acc[h] = vec4<f32>(0.0);
        vsum[h] = vec4<f32>(0.0);
    }
    var m = -3.4e38;
    var l = 0.0;
    var seen = false;
    var nan_logit = false;

    for (var s0 = s_begin; s0 < s_end; s0 += keys) {
        let n = min(keys, s_end - s0);
        // Stage K[s0 .. s0 + n) of kv head g.
        for (var e = lid; e < n * h4; e += WG) {
            let j = e / h4;
            let at = ((b * params.kv_stride + s0 + j) * nkv + g) * hd + 4u * (e % h4);
            tile[e] = vec4<f32>(vec4<f16>(kmat[at], kmat[at + 1u], kmat[at + 2u], kmat[at + 3u]));
        }
        workgroupBarrier();
        var tile_max = -3.4e38;
        for (var j = 0u; j < n; j++) {
            var x4 = vec4<f32>(0.0);
            for (var h = 0u; h < h4; h++) {
                x4 = fma(qv[h], tile[j * h4 + h], x4);
            }
            let x = x4.x + x4.y + x4.z + x4.w;
            let ok = live && visible(b_global, u, t, s0 + j);
            sc[j] = select(-3.4e38, x, ok);
            if ok {
                tile_max = max(tile_max, x);
                seen = true;
                // A NaN logit makes the row NaN, as in the oracle (max and > would skip it).
                nan_logit = nan_logit || (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; // not x != x: fast-math folds it
            }
        }
        workgroupBarrier();
        // Stage V[s0 .. s0 + n).
        for (var e = lid; e < n * h4; e += WG) {
            let j = e / h4;
            let at = ((b * params.kv_stride + s0 + j) * nkv + g) * hd + 4u * (e % h4);
            tile[e] = vec4<f32>(vec4<f16>(vmat[at], vmat[at + 1u], vmat[at + 2u], vmat[at + 3u]));
        }
        workgroupBarrier();
        if keras_rows {
            for (var j = 0u; j < n; j++) {
                for (var h = 0u; h < h4; h++) {
                    vsum[h] += tile[j * h4 + h];
                }
            }
        }
        if tile_max > -3.4e38 {
            let m_new = max(m, tile_max);
            let corr = exp(m - m_new);
            l *= corr;
            for (var h = 0u; h < h4; h++) {
                acc[h] *= corr;
            }
            for (var j = 0u; j < n; j++) {
                if sc[j] > -3.4e38 {
                    let p = exp(sc[j] - m_new);
                    l += p;
                    for (var h = 0u; h < h4; h++) {
                        acc[h] = fma(vec4<f32>(p), tile[j * h4 + h], acc[h]);
                    }
                }
            }
            m = m_new;
        }
        workgroupBarrier();
    }

    if !live {
        return;
    }
    if split {
        let item_count = t_len * group;
        let splits = (s_len + params.split_keys - 1u) / params.split_keys;
        let p_at = (((b * nkv + g) * splits + wid.y) * item_count + item) * (2u * hd + 2u);
        for (var h = 0u; h < hd; h++) {
            store_out(p_at + h, acc[h / 4u][h % 4u]);
            store_out(p_at + hd + h, vsum[h / 4u][h % 4u]);
        }
        store_out(p_at + 2u * hd, m);
        store_out(p_at + 2u * hd + 1u, select(l, bitcast<f32>(0x7fc00000u), nan_logit));
        return;
    }
    let o_at = ((b * t_len + t) * nq + u) * hd;
    if !seen {
        // A fully masked row: zeros, or the plain average of V over all S keys.
        for (var h = 0u; h < hd; h++) {
            var o = select(0.0, vsum[h / 4u][h % 4u] / f32(s_len), keras_rows);
            if params.use_gate != 0u {
                o *= f32(gate[o_at + h]);
            }
            store_out(o_at + h, o);
        }
        return;
    }
    let inv = select(1.0 / l, bitcast<f32>(0x7fc00000u), nan_logit);
    for (var h = 0u; h < hd; h++) {
        var o = acc[h / 4u][h % 4u] * inv;
        if params.use_gate != 0u {
            o *= f32(gate[o_at + h]);
        }
        store_out(o_at + h, o);
    }
}
