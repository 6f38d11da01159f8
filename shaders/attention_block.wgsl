// Fused attention for CPU adapters (and any other): the structure of attention_decode.wgsl, over all
// S keys with an online softmax, writing the attention output directly like attention_fused.wgsl in
// whole mode (same bindings, same semantics), f32 only.
//
// One workgroup per (block of BLOCK = 16 consecutive (query, head-in-group) items t * R + r = workgroup
// x, b local to the batch chunk and kv group g = workgroup z). Items past T * R compute a copy of the
// last item and are never stored. The keys are taken in chunks of CHUNK; per chunk three phases, each
// with every lane busy and no dynamically indexed private array (software drivers keep those in
// scratch memory):
//   1. lanes over (group of 4 keys, group of 8 items) pairs: each lane reads its four K rows and
//      eight query rows as vec4s (32 named accumulators, common/dots8x4.wgsl; the 8 lanes of a SIMD
//      group share the queries, and on CPU drivers fetches shared by the lanes are the cheap ones);
//      the scaled logits go to workgroup memory `sc`, one vec4 per (key, group of 4 items).
//   2. per item, 4 lanes over the chunk's keys: the sentinel in place of the masked keys' logits
//      (the masks are evaluated here only: one call site instead of one per logit of phase 1 keeps
//      LLVM's compile of the kernel short), the chunk's maximum of the visible logits, a NaN flag
//      and a visible flag; the new running max m_new = max(m_run, chunk max), p = exp(logit - m_new)
//      in place of the logit (0 for masked keys) and the chunk's sum of p; one lane per item then
//      updates the running max and sum and publishes corr = exp(m_old - m_new).
//   3. lanes over pairs of the H / 4 vec4 columns and 64 / (H / 8) key groups: each lane's 2 x 16
//      item accumulators (named vec4s, kept across chunks) are scaled by corr, then accumulate p * V
//      over the lane's keys of the chunk; each V vec4 loaded serves all 16 items, whose p come as 4
//      vec4 loads from `sc` that serve both columns (on CPU drivers workgroup loads are per-lane
//      loops like storage loads: with one column per lane they took over half the kernel's time).
//      Under Keras' default-call policy the lane also sums V (for fully masked rows).
// Q, K and V are read through load_q / load_k / load_v (storage buffers, or textures in
// Kernel::AttentionBlockTex, where a texel fetch is one gather on CPU drivers); phase 3's
// probabilities through load_p4 (common/block_lanes.wgsl, or common/block_lanes_subgroup.wgsl in
// Kernel::AttentionBlockTexSubgroup: subgroup broadcasts in place of three of every four loads).
// At the end the key groups' accumulators are combined through workgroup memory, 4 items and one
// column of the pairs at a time, and the output is normalised (zeros or the plain average of V for
// fully masked rows, NaN for a row with a visible NaN logit) and multiplied by the gate when used.

// Bindings 1-3, Q (B, T, Nq, H), K and V (B, kv_stride >= S, Nkv, H): storage buffers
// (common/qkv_storage.wgsl, Kernel::AttentionBlock) or rgba32float textures
// (common/qkv_texture.wgsl, Kernel::AttentionBlockTex), read through load_q, load_k, load_v.
@group(0) @binding(4) var<storage, read> masks: array<u32>;
@group(0) @binding(5) var<storage, read> gate: array<vec4<f32>>; // (B, T, Nq, H), when use_gate
@group(0) @binding(6) var<storage, read_write> out: array<vec4<f32>>; // (B, T, Nq, H)

const WG: u32 = 64u;
const BLOCK: u32 = 16u;
const CHUNK: u32 = 128u;
const MASKED: f32 = -3.4e38;

// Logits, then probabilities of the chunk: sc[key * 4 + item / 4][item % 4].
var<workgroup> sc: array<vec4<f32>, 512>;
// The probabilities of the block's 16 items for one key, 4 items to a vec4 (phase 3's load_p4).
struct P4 {
    p0: vec4<f32>,
    p1: vec4<f32>,
    p2: vec4<f32>,
    p3: vec4<f32>,
}

// The probabilities of key j of the chunk, loaded by every lane: four workgroup loads.
fn load_p4_plain(j: u32) -> P4 {
    return P4(sc[j * 4u], sc[j * 4u + 1u], sc[j * 4u + 2u], sc[j * 4u + 3u]);
}

// Phase 2's per lane maxima, sums and flags (bit 0: a visible NaN logit, bit 1: a visible key).
var<workgroup> red_m: array<f32, 64>;
var<workgroup> red_l: array<f32, 64>;
var<workgroup> red_f: array<u32, 64>;
// Per item: the running max and sum, the flags so far, the chunk's correction factor.
var<workgroup> m_run: array<f32, 16>;
var<workgroup> l_run: array<f32, 16>;
var<workgroup> f_run: array<u32, 16>;
var<workgroup> corr: array<f32, 16>;

// The item of the block at position i (clamped to the last item of the kv group).
fn item_of(blk: u32, i: u32) -> u32 {
    return min(blk * BLOCK + i, params.t_len * params.group - 1u);
}

// The keys [x, y) the chunk loop visits for block `blk`: all S, or, under a causal or sliding-window
// mask, only those some item of the block may see (flash attention's causal skip: at T = S half the
// chunks on average). Outside them every logit of the block is masked, which leaves the running max,
// sum and flags as they are; what those keys still feed, scan_skipped_v reads: Keras multiplies
// their zero probabilities by V all the same (a NaN or infinite value makes the column NaN) and its
// policy for a row that sees no key averages V over every key.
fn block_keys(blk: u32) -> vec2<u32> {
    let f = params.mask_flags;
    let s_len = i32(params.s_len);
    let w = i32(params.window);
    let causal = (f & 16u) != 0u;
    let windowed = (f & 32u) != 0u;
    let first = i32(item_of(blk, 0u) / params.group) + params.causal_shift;
    let last = i32(item_of(blk, BLOCK - 1u) / params.group) + params.causal_shift;
    // Row pos sees keys [lo(pos), hi(pos)) under the causal and window parts, both nondecreasing in
    // pos, and consecutive rows' ranges overlap or touch (lo(pos + 1) <= hi(pos) for a window >= 1).
    // The union of the rows' ranges is [lo(first), hi(last)).
    var lo_first = 0;
    var hi_last = s_len;
    if causal {
        hi_last = min(hi_last, last + 1);
    }
    if windowed {
        lo_first = max(lo_first, first - w + 1);
        hi_last = min(hi_last, last + w);
    }
    let lo = clamp(lo_first, 0, s_len);
    let hi = clamp(hi_last, lo, s_len);
    return vec2<u32>(u32(lo), u32(hi));
}

// Per vec4 column of the kv head: bit c set where component c of some skipped key's V is NaN or
// infinite (scan_skipped_v); store_item makes those components NaN in every row that sees a key.
var<workgroup> v_bad: array<atomic<u32>, 64>;

// The components of v that are NaN or infinite, as bits 0-3, from the bits (fast-math folds float
// tests).
fn non_finite_bits(v: vec4<f32>) -> u32 {
    let inf = vec4<u32>(0x7f800000u);
    let nf = (bitcast<vec4<u32>>(v) & inf) == inf;
    return select(0u, 1u, nf.x) | select(0u, 2u, nf.y) | select(0u, 4u, nf.z) | select(0u, 8u, nf.w);
}

// What the skipped keys [k_from, k_to) of a lane's key group feed: its columns' non-finite bits, and,
// under Keras' policy, its V sums (for rows that see no key).
struct Skipped {
    bad_v: u32,
    bad_w: u32,
    vs: vec4<f32>,
    vt: vec4<f32>,
}

fn scan_skipped_v(acc: Skipped, k_from: u32, k_to: u32, kg: u32, kgroups: u32, kv_row: u32, v_col: u32, w_col: u32, sums: bool) -> Skipped {
    var r = acc;
    for (var j = k_from + (kg + kgroups - k_from % kgroups) % kgroups; j < k_to; j += kgroups) {
        let v = load_v(kv_row + j, v_col);
        let w = load_v(kv_row + j, w_col);
        r.bad_v |= non_finite_bits(v);
        r.bad_w |= non_finite_bits(w);
        if sums {
            r.vs += v;
            r.vt += w;
        }
    }
    return r;
}

// The vec4 index of item `it`'s row in (B, T, Nq, H) (common/items.wgsl's q_at, flattened).
fn row_of(b: u32, g: u32, it: u32) -> u32 {
    let q = q_at(b, g, it);
    return q.x * params.nq * (params.head_dim / 4u) + q.y;
}

// The scaled logits of four items (each dot product left as a vec4 of partial sums) as one vec4 of
// `sc`; phase 2 masks them.
fn scaled4(a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) -> vec4<f32> {
    let sums = vec4<f32>(a0.x + a0.y + a0.z + a0.w, a1.x + a1.y + a1.z + a1.w, a2.x + a2.y + a2.z + a2.w, a3.x + a3.y + a3.z + a3.w);
    return sums * params.scale;
}

// Combines the key groups' accumulators of items i0 .. i0 + 3 of the block for the lanes' column
// `half` of their pair and stores their outputs. Called in uniform control flow (it has barriers).
fn finish4(lid: u32, b: u32, g: u32, blk: u32, i0: u32, half: u32, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>, vs_in: vec4<f32>) {
    let h4n = params.head_dim / 4u;
    let pairs = (h4n + 1u) / 2u;
    let kgroups = WG / pairs;
    let cp = lid % pairs;
    let kg = lid / pairs;
    let col = 2u * cp + half;
    let s = combine_key_groups(Sums4(a0, a1, a2, a3, vs_in), kg, kgroups, cp, pairs);
    if kg == 0u && col < h4n {
        store_item(b, g, blk, i0, col, s.s0, s.vs);
        store_item(b, g, blk, i0 + 1u, col, s.s1, s.vs);
        store_item(b, g, blk, i0 + 2u, col, s.s2, s.vs);
        store_item(b, g, blk, i0 + 3u, col, s.s3, s.vs);
    }
}

// Normalises and stores column `col` (a vec4) of item i of the block, when the item exists.
fn store_item(b: u32, g: u32, blk: u32, i: u32, col: u32, acc: vec4<f32>, vs: vec4<f32>) {
    let it = blk * BLOCK + i;
    if it >= params.t_len * params.group {
        return;
    }
    let f = f_run[i];
    let nan = bitcast<f32>(0x7fc00000u);
    var o: vec4<f32>;
    if (f & 2u) == 0u && params.masked_rows == 1u {
        // A fully masked row under Keras' policy: the plain average of V over all S keys.
        o = vs / f32(params.s_len);
    } else if (f & 1u) != 0u {
        o = vec4<f32>(nan);
    } else {
        // A row that sees keys: its weighted sum. A fully masked row under the zeros policy: its
        // zero probabilities times V, 0 where every value is finite (acc sums 0 * V over the keys
        // the chunk loop visited).
        if (f & 2u) != 0u {
            o = acc * (1.0 / l_run[i]);
        } else {
            o = acc;
        }
        // A NaN or infinite V of a key the chunk loop skipped, times its zero probability.
        let bad = atomicLoad(&v_bad[col]);
        if (bad & 1u) != 0u {
            o.x = nan;
        }
        if (bad & 2u) != 0u {
            o.y = nan;
        }
        if (bad & 4u) != 0u {
            o.z = nan;
        }
        if (bad & 8u) != 0u {
            o.w = nan;
        }
    }
    let at = row_of(b, g, it) + col;
    if params.use_gate != 0u {
        o *= gate[at];
    }
    out[at] = o;
}

@compute @workgroup_size(64, 1, 1)
fn main(ids: LaneIds, @builtin(workgroup_id) wid: vec3<u32>) {
    let lid = ids.lid;
    let hd = params.head_dim;
    let h4n = hd / 4u;
    let nkv = params.nkv;
    let s_len = params.s_len;
    let blk = wid.x;
    let b = wid.z / nkv;
    let g = wid.z % nkv;
    let b_global = params.b_base + b;
    let keras_rows = params.masked_rows == 1u;

    if lid < BLOCK {
        m_run[lid] = MASKED;
        l_run[lid] = 0.0;
        f_run[lid] = 0u;
    }
    atomicStore(&v_bad[lid], 0u);

    // Phase 3's lane: columns 2 * cp and 2 * cp + 1 (clamped to the last column when H / 4 is odd;
    // that copy is never stored), key group `kg` of `kgroups`.
    let pairs = (h4n + 1u) / 2u;
    let kgroups = WG / pairs;
    let cp = lid % pairs;
    let kg = lid / pairs;
    let busy = kg < kgroups;
    // Whether the lane's subgroup shares phase 3's probability loads (common/block_lanes*.wgsl).
    let share = p_sharing(ids, kg, busy);
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    var a8 = vec4<f32>(0.0);
    var a9 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0);
    var a11 = vec4<f32>(0.0);
    var a12 = vec4<f32>(0.0);
    var a13 = vec4<f32>(0.0);
    var a14 = vec4<f32>(0.0);
    var a15 = vec4<f32>(0.0);
    var vs = vec4<f32>(0.0);
    var b0 = vec4<f32>(0.0);
    var b1 = vec4<f32>(0.0);
    var b2 = vec4<f32>(0.0);
    var b3 = vec4<f32>(0.0);
    var b4 = vec4<f32>(0.0);
    var b5 = vec4<f32>(0.0);
    var b6 = vec4<f32>(0.0);
    var b7 = vec4<f32>(0.0);
    var b8 = vec4<f32>(0.0);
    var b9 = vec4<f32>(0.0);
    var b10 = vec4<f32>(0.0);
    var b11 = vec4<f32>(0.0);
    var b12 = vec4<f32>(0.0);
    var b13 = vec4<f32>(0.0);
    var b14 = vec4<f32>(0.0);
    var b15 = vec4<f32>(0.0);
    var vt = vec4<f32>(0.0);

    // Phase 2's lane: item `my_item`, segment `seg` of 4.
    let segs = WG / BLOCK;
    let my_item = lid / segs;
    let seg = lid % segs;
    let my_quad = my_item / 4u;
    let my_comp = my_item % 4u;
    let my_it = item_of(blk, my_item);
    let my_head = g * params.group + my_it % params.group;
    let my_t = my_it / params.group;

    let keys = block_keys(blk);
    for (var s0 = keys.x; s0 < keys.y; s0 += CHUNK) {
        let n = min(CHUNK, keys.y - s0);
        // K/V of key s0 + j: row kv_row + j of load_k / load_v, columns from kv_col.
        let kv_row = b * params.kv_stride + s0;
        let kv_col = g * h4n;

        // Phase 1: logits, lanes over (4 keys, 8 items) pairs: the lanes of a SIMD group share their
        // 8 queries and differ in their keys.
        let quads = (n + 3u) / 4u;
        for (var w = lid; w < quads * 2u; w += WG) {
            let jq = w % quads;
            let io = w / quads;
            let j0 = 4u * jq;
            let k0_at = vec2<u32>(kv_row + min(j0 + 0u, n - 1u), kv_col);
            let k1_at = vec2<u32>(kv_row + min(j0 + 1u, n - 1u), kv_col);
            let k2_at = vec2<u32>(kv_row + min(j0 + 2u, n - 1u), kv_col);
            let k3_at = vec2<u32>(kv_row + min(j0 + 3u, n - 1u), kv_col);
            let it0 = item_of(blk, 8u * io);
            let it1 = item_of(blk, 8u * io + 1u);
            let it2 = item_of(blk, 8u * io + 2u);
            let it3 = item_of(blk, 8u * io + 3u);
            let it4 = item_of(blk, 8u * io + 4u);
            let it5 = item_of(blk, 8u * io + 5u);
            let it6 = item_of(blk, 8u * io + 6u);
            let it7 = item_of(blk, 8u * io + 7u);
            let d = dots8x4(
                q_at(b, g, it0), q_at(b, g, it1), q_at(b, g, it2), q_at(b, g, it3),
                q_at(b, g, it4), q_at(b, g, it5), q_at(b, g, it6), q_at(b, g, it7),
                k0_at, k1_at, k2_at, k3_at, h4n,
            );
            // Items 8 io .. 8 io + 3 are quad 2 io of sc, the next four quad 2 io + 1.
            let lo = j0 * 4u + 2u * io;
            sc[lo] = scaled4(d.c00, d.c10, d.c20, d.c30);
            sc[lo + 1u] = scaled4(d.c40, d.c50, d.c60, d.c70);
            if j0 + 1u < n {
                sc[lo + 4u] = scaled4(d.c01, d.c11, d.c21, d.c31);
                sc[lo + 5u] = scaled4(d.c41, d.c51, d.c61, d.c71);
            }
            if j0 + 2u < n {
                sc[lo + 8u] = scaled4(d.c02, d.c12, d.c22, d.c32);
                sc[lo + 9u] = scaled4(d.c42, d.c52, d.c62, d.c72);
            }
            if j0 + 3u < n {
                sc[lo + 12u] = scaled4(d.c03, d.c13, d.c23, d.c33);
                sc[lo + 13u] = scaled4(d.c43, d.c53, d.c63, d.c73);
            }
        }
        workgroupBarrier();

        // Phase 2: the masks (the sentinel in place of a masked key's logit: the one place that
        // evaluates them, which keeps the kernel small enough to compile fast), then the chunk's
        // softmax statistics per item, 4 lanes per item.
        var mx = MASKED;
        var flags = 0u;
        for (var j = seg; j < n; j += segs) {
            let seen = visible(b_global, my_head, my_t, s0 + j);
            let x = select(MASKED, sc[j * 4u + my_quad][my_comp], seen);
            // Only masked logits are written back: a workgroup store is a loop over the lanes on CPU
            // drivers, skipped when no lane of the SIMD group takes the branch.
            if !seen {
                sc[j * 4u + my_quad][my_comp] = MASKED;
            }
            if x > MASKED {
                mx = max(mx, x);
                flags |= 2u;
            }
            if is_nan(x) {
                flags |= 3u;
            }
        }
        red_m[lid] = mx;
        red_f[lid] = flags;
        workgroupBarrier();
        var m_new = m_run[my_item];
        for (var k = 0u; k < segs; k++) {
            m_new = max(m_new, red_m[my_item * segs + k]);
        }
        var sum = 0.0;
        for (var j = seg; j < n; j += segs) {
            let x = sc[j * 4u + my_quad][my_comp];
            let p = select(0.0, exp(x - m_new), x > MASKED);
            sc[j * 4u + my_quad][my_comp] = p;
            sum += p;
        }
        red_l[lid] = sum;
        workgroupBarrier();
        if lid < BLOCK {
            let m_old = m_run[lid];
            var m_c = m_old;
            var l_c = 0.0;
            var f_c = f_run[lid];
            for (var k = 0u; k < segs; k++) {
                m_c = max(m_c, red_m[lid * segs + k]);
                l_c += red_l[lid * segs + k];
                f_c |= red_f[lid * segs + k];
            }
            let cf = exp(m_old - m_c);
            corr[lid] = cf;
            l_run[lid] = l_run[lid] * cf + l_c;
            m_run[lid] = m_c;
            f_run[lid] = f_c;
        }
        workgroupBarrier();

        // Phase 3: rescale the accumulators, then add p * V over the lane's keys of the chunk.
        if busy {
            let f0 = vec4<f32>(corr[0], corr[1], corr[2], corr[3]);
            let f1 = vec4<f32>(corr[4], corr[5], corr[6], corr[7]);
            let f2 = vec4<f32>(corr[8], corr[9], corr[10], corr[11]);
            let f3 = vec4<f32>(corr[12], corr[13], corr[14], corr[15]);
            a0 *= f0.x;
            a1 *= f0.y;
            a2 *= f0.z;
            a3 *= f0.w;
            a4 *= f1.x;
            a5 *= f1.y;
            a6 *= f1.z;
            a7 *= f1.w;
            a8 *= f2.x;
            a9 *= f2.y;
            a10 *= f2.z;
            a11 *= f2.w;
            a12 *= f3.x;
            a13 *= f3.y;
            a14 *= f3.z;
            a15 *= f3.w;
            b0 *= f0.x;
            b1 *= f0.y;
            b2 *= f0.z;
            b3 *= f0.w;
            b4 *= f1.x;
            b5 *= f1.y;
            b6 *= f1.z;
            b7 *= f1.w;
            b8 *= f2.x;
            b9 *= f2.y;
            b10 *= f2.z;
            b11 *= f2.w;
            b12 *= f3.x;
            b13 *= f3.y;
            b14 *= f3.z;
            b15 *= f3.w;
            let v_col = kv_col + 2u * cp;
            let w_col = kv_col + min(2u * cp + 1u, h4n - 1u);
            for (var j = kg; j < n; j += kgroups) {
                let v = load_v(kv_row + j, v_col);
                let w = load_v(kv_row + j, w_col);
                let p = load_p4(j, share, ids);
                let p0 = p.p0;
                let p1 = p.p1;
                let p2 = p.p2;
                let p3 = p.p3;
                a0 = fma(vec4<f32>(p0.x), v, a0);
                b0 = fma(vec4<f32>(p0.x), w, b0);
                a1 = fma(vec4<f32>(p0.y), v, a1);
                b1 = fma(vec4<f32>(p0.y), w, b1);
                a2 = fma(vec4<f32>(p0.z), v, a2);
                b2 = fma(vec4<f32>(p0.z), w, b2);
                a3 = fma(vec4<f32>(p0.w), v, a3);
                b3 = fma(vec4<f32>(p0.w), w, b3);
                a4 = fma(vec4<f32>(p1.x), v, a4);
                b4 = fma(vec4<f32>(p1.x), w, b4);
                a5 = fma(vec4<f32>(p1.y), v, a5);
                b5 = fma(vec4<f32>(p1.y), w, b5);
                a6 = fma(vec4<f32>(p1.z), v, a6);
                b6 = fma(vec4<f32>(p1.z), w, b6);
                a7 = fma(vec4<f32>(p1.w), v, a7);
                b7 = fma(vec4<f32>(p1.w), w, b7);
                a8 = fma(vec4<f32>(p2.x), v, a8);
                b8 = fma(vec4<f32>(p2.x), w, b8);
                a9 = fma(vec4<f32>(p2.y), v, a9);
                b9 = fma(vec4<f32>(p2.y), w, b9);
                a10 = fma(vec4<f32>(p2.z), v, a10);
                b10 = fma(vec4<f32>(p2.z), w, b10);
                a11 = fma(vec4<f32>(p2.w), v, a11);
                b11 = fma(vec4<f32>(p2.w), w, b11);
                a12 = fma(vec4<f32>(p3.x), v, a12);
                b12 = fma(vec4<f32>(p3.x), w, b12);
                a13 = fma(vec4<f32>(p3.y), v, a13);
                b13 = fma(vec4<f32>(p3.y), w, b13);
                a14 = fma(vec4<f32>(p3.z), v, a14);
                b14 = fma(vec4<f32>(p3.z), w, b14);
                a15 = fma(vec4<f32>(p3.w), v, a15);
                b15 = fma(vec4<f32>(p3.w), w, b15);
                if keras_rows {
                    vs += v;
                    vt += w;
                }
            }
        }
        workgroupBarrier();
    }

    // The keys the chunk loop skipped: their V's non-finite components and, under Keras' policy,
    // their V sums (block_keys).
    workgroupBarrier();
    if busy && (keys.x > 0u || keys.y < s_len) {
        let kv_row = b * params.kv_stride;
        let v_col = g * h4n + 2u * cp;
        let w_col = g * h4n + min(2u * cp + 1u, h4n - 1u);
        var sk = Skipped(0u, 0u, vs, vt);
        sk = scan_skipped_v(sk, 0u, keys.x, kg, kgroups, kv_row, v_col, w_col, keras_rows);
        sk = scan_skipped_v(sk, keys.y, s_len, kg, kgroups, kv_row, v_col, w_col, keras_rows);
        vs = sk.vs;
        vt = sk.vt;
        if sk.bad_v != 0u {
            atomicOr(&v_bad[2u * cp], sk.bad_v);
        }
        if sk.bad_w != 0u && 2u * cp + 1u < h4n {
            atomicOr(&v_bad[2u * cp + 1u], sk.bad_w);
        }
    }
    workgroupBarrier();

    finish4(lid, b, g, blk, 0u, 0u, a0, a1, a2, a3, vs);
    finish4(lid, b, g, blk, 4u, 0u, a4, a5, a6, a7, vs);
    finish4(lid, b, g, blk, 8u, 0u, a8, a9, a10, a11, vs);
    finish4(lid, b, g, blk, 12u, 0u, a12, a13, a14, a15, vs);
    finish4(lid, b, g, blk, 0u, 1u, b0, b1, b2, b3, vt);
    finish4(lid, b, g, blk, 4u, 1u, b4, b5, b6, b7, vt);
    finish4(lid, b, g, blk, 8u, 1u, b8, b9, b10, b11, vt);
    finish4(lid, b, g, blk, 12u, 1u, b12, b13, b14, b15, vt);
}
