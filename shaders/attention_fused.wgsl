// One file for both precisions: Q, K, V and the gate are stored as `Elem` (common/store_f32.wgsl or
// common/f16.wgsl) and converted to f32 as loaded (the K/V tiles in workgroup memory are f32), the
// logits, online softmax and accumulation are f32; `out` holds `Out`: the attention output's storage
// type (common/out_storage.wgsl), or f32 for the split partial states of an f16 build
// (common/out_partials.wgsl; the f32 build writes either through one f32 binding).
// Fused attention for calls without scores or dropout: logits, masks, online softmax and PV in one
// pass over K/V tiles held in workgroup memory; the T x S scores are never stored.
//
// Split mode (params.split_keys > 0, flash-decoding for short queries over long sources): workgroup y
// takes keys [y * split_keys, (y + 1) * split_keys) only and writes, instead of the output, its
// partial state to `out` laid out as partials[((b * Nkv + g) * splits + y) * T * R + item] of
// 2 * H + 2 floats: the unnormalised output, the sum of V over its keys, the running max and sum.
// attention_reduce.wgsl combines the splits.
//
// Workgroup z = (b local to the batch chunk) * Nkv + g; its 64 invocations take 64 consecutive
// (query, head-in-group) items t * R + r of kv group g, so every query head that shares kv head g
// reads the same K/V tile: each tile is loaded once per group. Per item: q (scaled) and the running
// output live in private vec4 arrays (H <= 256, H a multiple of 4); per tile, the item's scores too.
// Keras semantics: masked logits never contribute (replace-then-zero == softmax over visible keys);
// a fully masked row gives zeros (masked_rows = 0) or the plain average of V over all S keys
// (masked_rows = 1, Keras' default call). Output: AttnOut (B, T, Nq, H), times the gate when used.

@group(0) @binding(1) var<storage, read> q: array<Elem>;        // (B, T, Nq, H)
@group(0) @binding(2) var<storage, read> kmat: array<Elem>;     // (B, kv_stride >= S, Nkv, H)
@group(0) @binding(3) var<storage, read> vmat: array<Elem>;     // (B, kv_stride >= S, Nkv, H)
@group(0) @binding(4) var<storage, read> masks: array<u32>;
@group(0) @binding(5) var<storage, read> gate: array<Elem>;     // (B, T, Nq, H), when use_gate
@group(0) @binding(6) var<storage, read_write> out: array<Out>; // (B, T, Nq, H), or the partials

const WG: u32 = 64u;
const TILE_FLOATS: u32 = 2048u; // 8 KiB: a K or V tile of TILE_FLOATS / H keys, as vec4s
const MAX_KEYS: u32 = 64u;

var<workgroup> tile: array<vec4<f32>, 512>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
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
        qv[h] = vec4<f32>(vec4<Elem>(q[q_at + 4u * h], q[q_at + 4u * h + 1u], q[q_at + 4u * h + 2u], q[q_at + 4u * h + 3u])) * params.scale;
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
            tile[e] = vec4<f32>(vec4<Elem>(kmat[at], kmat[at + 1u], kmat[at + 2u], kmat[at + 3u]));
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
                nan_logit = nan_logit || is_nan(x);
            }
        }
        workgroupBarrier();
        // Stage V[s0 .. s0 + n).
        for (var e = lid; e < n * h4; e += WG) {
            let j = e / h4;
            let at = ((b * params.kv_stride + s0 + j) * nkv + g) * hd + 4u * (e % h4);
            tile[e] = vec4<f32>(vec4<Elem>(vmat[at], vmat[at + 1u], vmat[at + 2u], vmat[at + 3u]));
        }
        workgroupBarrier();
        if keras_rows {
            for (var j = 0u; j < n; j++) {
                for (var h = 0u; h < h4; h++) {
                    vsum[h] += tile[j * h4 + h];
                }
            }
        }
        // Every key's value is multiplied in, masked ones by p = 0: a NaN or an infinity in a masked
        // value still reaches the row, as in Keras (its zero probabilities multiply too).
        let m_new = max(m, tile_max);
        let corr = exp(m - m_new);
        l *= corr;
        for (var h = 0u; h < h4; h++) {
            acc[h] *= corr;
        }
        for (var j = 0u; j < n; j++) {
            let p = select(0.0, exp(sc[j] - m_new), sc[j] > -3.4e38);
            l += p;
            for (var h = 0u; h < h4; h++) {
                acc[h] = fma(vec4<f32>(p), tile[j * h4 + h], acc[h]);
            }
        }
        m = m_new;
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
            out[p_at + h] = Out(acc[h / 4u][h % 4u]);
            out[p_at + hd + h] = Out(vsum[h / 4u][h % 4u]);
        }
        out[p_at + 2u * hd] = Out(m);
        out[p_at + 2u * hd + 1u] = Out(select(l, bitcast<f32>(0x7fc00000u), nan_logit));
        return;
    }
    let o_at = ((b * t_len + t) * nq + u) * hd;
    if !seen {
        // A fully masked row: zeros (the sum of 0 * V: NaN where a value is not finite), or the plain
        // average of V over all S keys.
        for (var h = 0u; h < hd; h++) {
            var o = select(acc[h / 4u][h % 4u], vsum[h / 4u][h % 4u] / f32(s_len), keras_rows);
            if params.use_gate != 0u {
                o *= f32(gate[o_at + h]);
            }
            out[o_at + h] = Out(o);
        }
        return;
    }
    let inv = select(1.0 / l, bitcast<f32>(0x7fc00000u), nan_logit);
    for (var h = 0u; h < hd; h++) {
        var o = acc[h / 4u][h % 4u] * inv;
        if params.use_gate != 0u {
            o *= f32(gate[o_at + h]);
        }
        out[o_at + h] = Out(o);
    }
}
