// Flash-decoding for few queries: the split pass of the decode path when a kv group has at most 16
// (query, head-in-group) items t * R + r. It writes exactly the partial states of attention_fused in
// split mode, which attention_reduce.wgsl combines: partials[((b * Nkv + g) * splits + y) * T * R +
// item] of 2 * H + 2 floats: the unnormalised output, the sum of V over the split's keys, the running
// max and sum (NaN sum when a visible logit is NaN).
//
// One workgroup per (b local to the batch chunk, kv group g) = workgroup z and split y of
// params.split_keys keys (ceil(items / 4) * split_keys <= 512, chosen by the plan). Three phases, each with
// every lane busy and no dynamically indexed private array (software drivers keep those in scratch
// memory):
//   1. lanes parallel over groups of 4 keys: each lane reads its four K rows as vec4s and takes their
//      dot products with 4 query rows at a time (16 named accumulators), so K is read
//      ceil(items / 4) times and each query vec4 loaded serves four keys; the scaled logits, or a
//      sentinel for masked keys, go to workgroup memory `sc`, one vec4 per (key, 4 items).
//   2. per item, lanes split over the keys: the maximum of the visible logits and a NaN flag, then
//      p = exp(logit - max) in place of the logit (0 for masked keys) and the sum of p; workgroup
//      slots combine the lanes' parts.
//   3. lanes parallel over pairs of the H / 4 vec4 columns (adjacent lanes, adjacent pairs; the
//      lanes form 64 / ceil(H / 8) key groups whose sums are combined in workgroup memory): for 4
//      items at a time the output sum_key p * V[key] and the sum of V over the split's keys; one
//      workgroup load gives the 4 items' p for both columns (on CPU drivers each workgroup load is
//      a per-lane loop, like a storage load).
// Q, K and V are read through load_q / load_k / load_v: storage buffers (common/q_storage.wgsl + common/kv_f32.wgsl,
// kernel attention_decode) or rgba32float textures (common/qkv_texture.wgsl,
// kernel attention_decode_tex: the KV cache's texture mirrors, where a texel fetch is one gather on CPU
// drivers). The query rows are small and cache-resident: the 16 KiB of workgroup memory that WebGPU
// guarantees goes to the scores.
// Keras semantics as attention_fused: masked logits never contribute (replace-then-zero == softmax
// over visible keys); the reduce handles fully masked rows, the policy and the gate.

// Bindings 1-3, Q (B, T, Nq, H), K and V (B, kv_stride >= S, Nkv, H): common/q_storage.wgsl + common/kv_f32.wgsl or
// common/qkv_texture.wgsl.
@group(0) @binding(4) var<storage, read> masks: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;  // the partial states

const WG: u32 = 64u;
const MASKED: f32 = -3.4e38;

// Logits, then probabilities, 4 items to a vec4: sc[(item / 4) * split_keys + key][item % 4] (so
// phase 3 takes 4 items' probabilities in one workgroup load; split_keys * ceil(items / 4) <= 512).
var<workgroup> sc: array<vec4<f32>, 512>;
// Phase 2's per lane maxima, sums and NaN flags.
var<workgroup> red_m: array<f32, 64>;
var<workgroup> red_l: array<f32, 64>;
var<workgroup> red_nan: array<u32, 64>;

// Item i's scaled (and soft-capped) logit for key j of the split starting at s0 (the sentinel when masked; 0 for the
// padding items past T * R, which phase 2 skips and phase 3 never stores).
fn logit(b_global: u32, g: u32, s0: u32, i: u32, j: u32, a: f32) -> f32 {
    if i >= params.t_len * params.group {
        return 0.0;
    }
    let x = soft_capped(a * params.scale);
    let ok = visible(b_global, g * params.group + i % params.group, i / params.group, s0 + j);
    return select(MASKED, x, ok);
}

// Stores the logits of items i0 .. i0 + 3 for key j (their dot products a0 .. a3).
fn put_logits(b_global: u32, g: u32, s0: u32, i0: u32, j: u32, a0: f32, a1: f32, a2: f32, a3: f32) {
    sc[(i0 / 4u) * params.split_keys + j] = vec4<f32>(
        logit(b_global, g, s0, i0, j, a0),
        logit(b_global, g, s0, i0 + 1u, j, a1),
        logit(b_global, g, s0, i0 + 2u, j, a2),
        logit(b_global, g, s0, i0 + 3u, j, a3),
    );
}


// Stores vec4 column `col` of the partial outputs and of the V sum of items i0 .. i0 + 3 (those that
// exist) of the split whose first item's state is at p_first.
fn put_items(p_first: u32, i0: u32, col: u32, s: Sums4) {
    let items = params.t_len * params.group;
    let hd = params.head_dim;
    let stride = 2u * hd + 2u;
    put4((p_first + i0) * stride, 4u * col, s.s0);
    put4((p_first + i0) * stride, hd + 4u * col, s.vs);
    if i0 + 1u < items {
        put4((p_first + i0 + 1u) * stride, 4u * col, s.s1);
        put4((p_first + i0 + 1u) * stride, hd + 4u * col, s.vs);
    }
    if i0 + 2u < items {
        put4((p_first + i0 + 2u) * stride, 4u * col, s.s2);
        put4((p_first + i0 + 2u) * stride, hd + 4u * col, s.vs);
    }
    if i0 + 3u < items {
        put4((p_first + i0 + 3u) * stride, 4u * col, s.s3);
        put4((p_first + i0 + 3u) * stride, hd + 4u * col, s.vs);
    }
}

// Writes 4 floats of item i's partial state at float offset `at` (relative to the item's start).
fn put4(p_at: u32, at: u32, x: vec4<f32>) {
    out[p_at + at] = x.x;
    out[p_at + at + 1u] = x.y;
    out[p_at + at + 2u] = x.z;
    out[p_at + at + 3u] = x.w;
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let hd = params.head_dim;
    let h4n = hd / 4u;
    let nkv = params.nkv;
    let items = params.t_len * params.group;
    let split_keys = params.split_keys;
    let b = wid.z / nkv;
    let g = wid.z % nkv;
    let b_global = params.b_base + b;
    let s0 = wid.y * split_keys;
    let n = min(split_keys, params.s_len - s0);
    // K/V of key s0 + j: row kv_row + j of load_k / load_v, vec4 columns from kv_col.
    let kv_row = b * params.kv_stride + s0;
    let kv_col = g * h4n;
    let last = items - 1u;

    // Phase 1: logits, lanes over groups of 4 keys, 4 query rows at a time: each q vec4 loaded serves
    // four keys (on CPU drivers every storage load is a per-lane loop: loads, not FMAs, bound this).
    let quads = (n + 3u) / 4u;
    for (var jq = lid; jq < quads; jq += WG) {
        let j0 = 4u * jq;
        let k0_at = vec2<u32>(kv_row + min(j0 + 0u, n - 1u), kv_col);
        let k1_at = vec2<u32>(kv_row + min(j0 + 1u, n - 1u), kv_col);
        let k2_at = vec2<u32>(kv_row + min(j0 + 2u, n - 1u), kv_col);
        let k3_at = vec2<u32>(kv_row + min(j0 + 3u, n - 1u), kv_col);
        for (var i0 = 0u; i0 < items; i0 += 4u) {
            let q0 = q_at(b, g, i0);
            let q1 = q_at(b, g, min(i0 + 1u, last));
            let q2 = q_at(b, g, min(i0 + 2u, last));
            let q3 = q_at(b, g, min(i0 + 3u, last));
            let d = dots4x4(q0, q1, q2, q3, k0_at, k1_at, k2_at, k3_at, h4n);
            put_logits(b_global, g, s0, i0, j0, d.c00, d.c10, d.c20, d.c30);
            if j0 + 1u < n {
                put_logits(b_global, g, s0, i0, j0 + 1u, d.c01, d.c11, d.c21, d.c31);
            }
            if j0 + 2u < n {
                put_logits(b_global, g, s0, i0, j0 + 2u, d.c02, d.c12, d.c22, d.c32);
            }
            if j0 + 3u < n {
                put_logits(b_global, g, s0, i0, j0 + 3u, d.c03, d.c13, d.c23, d.c33);
            }
        }
    }
    workgroupBarrier();

    // Phase 2: per item, `segs` lanes over its keys (items rounded up to a power of two <= 16).
    let items_p2 = 1u << (32u - countLeadingZeros(last));
    let segs = WG / items_p2;
    let my_item = lid / segs;
    let seg = lid % segs;
    let live = my_item < items;
    let row = (min(my_item, last) / 4u) * split_keys;
    let comp = min(my_item, last) % 4u;
    var mx = MASKED;
    var nan_seen = false;
    if live {
        for (var j = seg; j < n; j += segs) {
            let x = sc[row + j][comp];
            if x > MASKED {
                mx = max(mx, x);
            }
            // A NaN logit makes the row NaN, as in the oracle (max and > skip it). Tested on the
            // bits: drivers compiling with fast-math may fold x != x to false.
            nan_seen = nan_seen || is_nan(x);
        }
    }
    red_m[lid] = mx;
    red_nan[lid] = select(0u, 1u, nan_seen);
    workgroupBarrier();
    var m_item = MASKED;
    for (var k = 0u; k < segs; k++) {
        m_item = max(m_item, red_m[min(my_item, last) * segs + k]);
    }
    var sum = 0.0;
    if live {
        for (var j = seg; j < n; j += segs) {
            let x = sc[row + j][comp];
            let p = select(0.0, exp(x - m_item), x > MASKED);
            sc[row + j][comp] = p;
            sum += p;
        }
    }
    red_l[lid] = sum;
    workgroupBarrier();

    // Phase 3: sum_key p * V[key], lanes over pairs of vec4 columns (2 cp and 2 cp + 1, the second
    // clamped to the last column when H / 4 is odd: that copy is never stored) and `kgroups` key
    // groups, so each probability load from `sc` serves both columns.
    let pairs = (h4n + 1u) / 2u;
    let kgroups = WG / pairs;
    let cp = lid % pairs;
    let kg = lid / pairs;
    let busy = kg < kgroups;
    let v_col = kv_col + 2u * cp;
    let w_col = kv_col + min(2u * cp + 1u, h4n - 1u);
    let splits = (params.s_len + split_keys - 1u) / split_keys;
    let p_first = ((b * nkv + g) * splits + wid.y) * items;
    for (var i0 = 0u; i0 < items; i0 += 4u) {
        let r = (i0 / 4u) * split_keys;
        var a0 = vec4<f32>(0.0);
        var a1 = vec4<f32>(0.0);
        var a2 = vec4<f32>(0.0);
        var a3 = vec4<f32>(0.0);
        var b0 = vec4<f32>(0.0);
        var b1 = vec4<f32>(0.0);
        var b2 = vec4<f32>(0.0);
        var b3 = vec4<f32>(0.0);
        var vs = vec4<f32>(0.0);
        var vt = vec4<f32>(0.0);
        if busy {
            for (var j = kg; j < n; j += kgroups) {
                let v = load_v(kv_row + j, v_col);
                let w = load_v(kv_row + j, w_col);
                let p = sc[r + j];
                a0 = fma(vec4<f32>(p.x), v, a0);
                b0 = fma(vec4<f32>(p.x), w, b0);
                a1 = fma(vec4<f32>(p.y), v, a1);
                b1 = fma(vec4<f32>(p.y), w, b1);
                a2 = fma(vec4<f32>(p.z), v, a2);
                b2 = fma(vec4<f32>(p.z), w, b2);
                a3 = fma(vec4<f32>(p.w), v, a3);
                b3 = fma(vec4<f32>(p.w), w, b3);
                vs += v;
                vt += w;
            }
        }
        // Combine the key groups' sums through workgroup memory, one column of the pair at a time.
        let sa = combine_key_groups(Sums4(a0, a1, a2, a3, vs), kg, kgroups, cp, pairs);
        if kg == 0u {
            put_items(p_first, i0, 2u * cp, sa);
        }
        let sb = combine_key_groups(Sums4(b0, b1, b2, b3, vt), kg, kgroups, cp, pairs);
        if kg == 0u && 2u * cp + 1u < h4n {
            put_items(p_first, i0, 2u * cp + 1u, sb);
        }
    }

    // The running max and sum of item lid.
    if lid < items {
        var m = MASKED;
        var l = 0.0;
        var nan_row = false;
        for (var k = 0u; k < segs; k++) {
            m = max(m, red_m[lid * segs + k]);
            l += red_l[lid * segs + k];
            nan_row = nan_row || red_nan[lid * segs + k] != 0u;
        }
        let at = (p_first + lid) * (2u * hd + 2u);
        out[at + 2u * hd] = m;
        out[at + 2u * hd + 1u] = select(l, bitcast<f32>(0x7fc00000u), nan_row);
    }
}
