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
//      group share the queries; in kernel attention_block_tex_subgroup each lane fetches one of the
//      8 query rows and the subgroup broadcasts them, common/block_lanes_subgroup.wgsl's logits8x4),
//      and keeps the 32 scaled logits in registers, the sentinel MASKED in place of masked keys
//      (the masks are evaluated here, in one loop with one call site of `visible`, which keeps
//      LLVM's compile of the kernel short); it stores per item the maximum of its visible logits
//      (NaN if one is NaN) to `part_m`.
//   2. one lane per item folds the 32 lanes' maxima into the running max m_new and the flags (a
//      visible key, a visible NaN) and publishes corr = exp(m_old - m_new); every lane then turns its
//      logits into p = exp(logit - m_new) (0 for masked keys), stores them to workgroup memory `sc`
//      for phase 3, and its per-item sums of p to `part_m`, which one lane per item adds to the
//      running sum. Phase 2 used to take the logits from `sc` with 4 lanes per item: on CPU
//      drivers every workgroup access is a per-lane loop, and those loads and stores cost as much
//      as phase 3's FMAs.
//   3. lanes over pairs of the H / 4 vec4 columns and 64 / (H / 8) key groups: each lane's 2 x 16
//      item accumulators (named vec4s, kept across chunks) are scaled by corr, then accumulate p * V
//      over the lane's keys of the chunk; each V vec4 loaded serves all 16 items, whose p come as 4
//      vec4 loads from `sc` that serve both columns (on CPU drivers workgroup loads are per-lane
//      loops like storage loads: with one column per lane they took over half the kernel's time).
//      Under Keras' default-call policy the lane also sums V (for fully masked rows).
// Q, K and V are read through load_q / load_k / load_v (storage buffers, or textures in
// kernel attention_block_tex, where a texel fetch is one gather on CPU drivers); phase 3's
// probabilities through load_p4 (common/block_lanes.wgsl, or common/block_lanes_subgroup.wgsl in
// kernel attention_block_tex_subgroup: subgroup broadcasts in place of three of every four loads).
// At the end the key groups' accumulators are combined through `sc`, 4 items and both columns of the
// pairs at a time (finish8), and the output is normalised (zeros or the plain average of V for
// fully masked rows, NaN for a row with a visible NaN logit) and multiplied by the gate when used.

// Bindings 1-3, Q (B, T, Nq, H), K and V (B, kv_stride >= S, Nkv, H): storage buffers
// (common/q_storage.wgsl + common/kv_f32.wgsl, kernel attention_block) or rgba32float textures
// (common/qkv_texture.wgsl, kernel attention_block_tex), read through load_q, load_k, load_v.
@group(0) @binding(4) var<storage, read> masks: array<u32>;
@group(0) @binding(5) var<storage, read> gate: array<vec4<f32>>; // (B, T, Nq, H), when use_gate
@group(0) @binding(6) var<storage, read_write> out: array<vec4<f32>>; // (B, T, Nq, H)
// Binding 7: the words of Kernel::CheckValues (common/v_flags.wgsl).

const WG: u32 = 64u;
const BLOCK: u32 = 16u;
const CHUNK: u32 = 128u;

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

// The lanes that share an item in phase 1 (CHUNK / 4 key quads), and their per-item partials: the
// maximum of the visible logits of the lane's 4 keys (MASKED if none, NaN if one is NaN), then the
// sum of their probabilities; part_m[item * LANES_PER_ITEM + key quad].
const LANES_PER_ITEM: u32 = 32u;
var<workgroup> part_m: array<f32, 512>;

// Stores a lane's partials for items 8 io .. 8 io + 3 (lo) and 8 io + 4 .. 8 io + 7 (hi).
fn store_partials(io: u32, jq: u32, lo: vec4<f32>, hi: vec4<f32>) {
    let at = 8u * io * LANES_PER_ITEM + jq;
    part_m[at] = lo.x;
    part_m[at + LANES_PER_ITEM] = lo.y;
    part_m[at + 2u * LANES_PER_ITEM] = lo.z;
    part_m[at + 3u * LANES_PER_ITEM] = lo.w;
    part_m[at + 4u * LANES_PER_ITEM] = hi.x;
    part_m[at + 5u * LANES_PER_ITEM] = hi.y;
    part_m[at + 6u * LANES_PER_ITEM] = hi.z;
    part_m[at + 7u * LANES_PER_ITEM] = hi.w;
}

// The positions and heads of phase 1's lane's 8 items (8 io .. 8 io + 7 of the block).
fn lane_items(g: u32, blk: u32, io: u32) -> LaneItems {
    let i_lo = vec4<u32>(item_of(blk, 8u * io), item_of(blk, 8u * io + 1u), item_of(blk, 8u * io + 2u), item_of(blk, 8u * io + 3u));
    let i_hi = vec4<u32>(item_of(blk, 8u * io + 4u), item_of(blk, 8u * io + 5u), item_of(blk, 8u * io + 6u), item_of(blk, 8u * io + 7u));
    return items_at(g, i_lo, i_hi);
}

// Per item: the running max and sum, the flags so far, the chunk's correction factor.
var<workgroup> m_run: array<f32, 16>;
var<workgroup> l_run: array<f32, 16>;
var<workgroup> f_run: array<u32, 16>;
var<workgroup> corr: array<f32, 16>;

// The item of the block at position i (clamped to the last item of the kv group).
fn item_of(blk: u32, i: u32) -> u32 {
    return min(blk * BLOCK + i, params.t_len * params.group - 1u);
}

// The keys [x, y) the chunk loop visits for block `blk` (common/block_softmax.wgsl's keys_seen):
// outside them every logit of the block is masked; what those keys still feed, scan_skipped_v reads.
fn block_keys(blk: u32) -> vec2<u32> {
    return keys_seen(item_of(blk, 0u) / params.group, item_of(blk, BLOCK - 1u) / params.group);
}

// Per vec4 column of the kv head: bit c set where component c of some skipped key's V is NaN or
// infinite (scan_skipped_v); store_item makes those components NaN in every row that sees a key.
var<workgroup> v_bad: array<atomic<u32>, 64>;

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

// After the chunk loop, phase 3's key groups' accumulators are combined through `sc`: lanes of key
// groups 1 .. kgroups - 1 store, key group 0 adds. 8 vec4 per lane (4 items, both columns of the
// pair) need (kgroups - 1) * pairs * 8 <= 504 vec4 of sc's 512 for every H. Each round costs two
// barriers, and on CPU drivers a barrier is a switch through every SIMD group of the workgroup.

// The key groups' sums of items i0 .. i0 + 3 of the block (sums[0..4]: the pair's first column,
// sums[4..8]: its second), stored by key group 0's lanes. Called in uniform control flow (it has barriers).
fn finish8(lid: u32, b: u32, g: u32, blk: u32, i0: u32, sums: array<vec4<f32>, 8>, vs: vec4<f32>, vt: vec4<f32>) {
    let h4n = params.head_dim / 4u;
    let pairs = (h4n + 1u) / 2u;
    let kgroups = WG / pairs;
    let cp = lid % pairs;
    let kg = lid / pairs;
    var x = sums;
    if kgroups > 1u {
        if kg > 0u && kg < kgroups {
            let at = ((kg - 1u) * pairs + cp) * 8u;
            sc[at] = x[0];
            sc[at + 1u] = x[1];
            sc[at + 2u] = x[2];
            sc[at + 3u] = x[3];
            sc[at + 4u] = x[4];
            sc[at + 5u] = x[5];
            sc[at + 6u] = x[6];
            sc[at + 7u] = x[7];
        }
        workgroupBarrier();
        if kg == 0u {
            for (var k = 1u; k < kgroups; k++) {
                let at = ((k - 1u) * pairs + cp) * 8u;
                x[0] += sc[at];
                x[1] += sc[at + 1u];
                x[2] += sc[at + 2u];
                x[3] += sc[at + 3u];
                x[4] += sc[at + 4u];
                x[5] += sc[at + 5u];
                x[6] += sc[at + 6u];
                x[7] += sc[at + 7u];
            }
        }
        workgroupBarrier();
    }
    if kg == 0u {
        let col = 2u * cp;
        // One store_item call site (its finish inlined once, not eight times): x[e] is item
        // i0 + e % 4 of column col + e / 4; the pair's second column only where it exists.
        let n = select(4u, 8u, col + 1u < h4n);
        for (var e = 0u; e < n; e++) {
            store_item(b, g, blk, i0 + e % 4u, col + e / 4u, x[e], select(vs, vt, e >= 4u));
        }
    }
}

// The key groups' V sums of the lane's two columns (Keras' policy for rows that see no key), valid
// in key group 0's lanes. Called in uniform control flow.
fn combine_v_sums(lid: u32, vs: vec4<f32>, vt: vec4<f32>) -> array<vec4<f32>, 2> {
    let pairs = (params.head_dim / 4u + 1u) / 2u;
    let kgroups = WG / pairs;
    let cp = lid % pairs;
    let kg = lid / pairs;
    var x = array<vec4<f32>, 2>(vs, vt);
    if kgroups > 1u {
        if kg > 0u && kg < kgroups {
            let at = ((kg - 1u) * pairs + cp) * 2u;
            sc[at] = vs;
            sc[at + 1u] = vt;
        }
        workgroupBarrier();
        if kg == 0u {
            for (var k = 1u; k < kgroups; k++) {
                let at = ((k - 1u) * pairs + cp) * 2u;
                x[0] += sc[at];
                x[1] += sc[at + 1u];
            }
        }
        workgroupBarrier();
    }
    return x;
}

// Normalises and stores column `col` (a vec4) of item i of the block, when the item exists.
fn store_item(b: u32, g: u32, blk: u32, i: u32, col: u32, acc: vec4<f32>, vs: vec4<f32>) {
    let it = blk * BLOCK + i;
    if it >= params.t_len * params.group {
        return;
    }
    // Flags bit 1: the row saw a key; bit 0: a visible logit was NaN (common/block_softmax.wgsl's
    // finish, with the skipped keys' non-finite V components of the column).
    let f = f_run[i];
    let l = with_sink(l_run[i], m_run[i], g * params.group + it % params.group);
    var o = finish(acc, vs, l, (f & 2u) != 0u, (f & 1u) != 0u, atomicLoad(&v_bad[col]));
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

    // Phase 1's lane: key quad jq of the chunk (keys 4 jq .. 4 jq + 3), items 8 io .. 8 io + 7.
    let jq = lid % LANES_PER_ITEM;
    let io = lid / LANES_PER_ITEM;
    let items = lane_items(g, blk, io);
    let q0 = q_at(b, g, item_of(blk, 8u * io));
    let q1 = q_at(b, g, item_of(blk, 8u * io + 1u));
    let q2 = q_at(b, g, item_of(blk, 8u * io + 2u));
    let q3 = q_at(b, g, item_of(blk, 8u * io + 3u));
    let q4 = q_at(b, g, item_of(blk, 8u * io + 4u));
    let q5 = q_at(b, g, item_of(blk, 8u * io + 5u));
    let q6 = q_at(b, g, item_of(blk, 8u * io + 6u));
    let q7 = q_at(b, g, item_of(blk, 8u * io + 7u));
    // Whether the lane's subgroup shares the query fetches (common/block_lanes*.wgsl), and the row
    // this lane fetches for it.
    let q_share = q_sharing(ids, io);
    let q_mine = q_at(b, g, item_of(blk, 8u * io + q_item(ids)));

    let keys = block_keys(blk);
    for (var s0 = keys.x; s0 < keys.y; s0 += CHUNK) {
        let n = min(CHUNK, keys.y - s0);
        // K/V of key s0 + j: row kv_row + j of load_k / load_v, columns from kv_col.
        let kv_row = b * params.kv_stride + s0;
        let kv_col = g * h4n;

        // Phase 1: logits, lanes over (4 keys, 8 items) pairs: the lanes of a SIMD group share their
        // 8 queries and differ in their keys. The lane keeps its 32 logits (8 vec4, 4 items each)
        // in registers through phase 2.
        let in_chunk = 4u * jq < n;
        let j0 = 4u * jq;
        // Every lane computes its dot products, also past the chunk's end (its keys clamped to the
        // last one, masked below), so that a subgroup sharing its queries has every lane active.
        let k0_at = vec2<u32>(kv_row + min(j0 + 0u, n - 1u), kv_col);
        let k1_at = vec2<u32>(kv_row + min(j0 + 1u, n - 1u), kv_col);
        let k2_at = vec2<u32>(kv_row + min(j0 + 2u, n - 1u), kv_col);
        let k3_at = vec2<u32>(kv_row + min(j0 + 3u, n - 1u), kv_col);
        let d = logits8x4(q_share, q_mine, q0, q1, q2, q3, q4, q5, q6, q7, k0_at, k1_at, k2_at, k3_at, h4n);
        var y = all_masked();
        if in_chunk {
            // The masks (and the keys past the chunk's end) as a sentinel in place of the logit.
            y = masked_logits(d, visible_bits(b_global, items, s0, j0, n));
        }
        // Items 8 io .. 8 io + 3 (y0, y2, y4, y6: the lane's 4 keys) and 8 io + 4 .. 8 io + 7.
        store_partials(io, jq, lane_max(y.y0, y.y2, y.y4, y.y6), lane_max(y.y1, y.y3, y.y5, y.y7));
        workgroupBarrier();

        // Phase 2: per item, one lane folds the 32 lanes' maxima and flags into the running max
        // and flags and publishes corr = exp(m_old - m_new); then every lane turns its logits into
        // p = exp(logit - m_new) (0 for masked keys) and stores them in `sc` for phase 3, and its
        // per-item sums of p, which one lane per item adds to the running sum.
        if lid < BLOCK {
            let m_old = m_run[lid];
            var m_c = m_old;
            var f_c = f_run[lid];
            for (var k = 0u; k < LANES_PER_ITEM; k++) {
                let x = part_m[lid * LANES_PER_ITEM + k];
                if is_nan(x) {
                    f_c |= 3u;
                } else if x > MASKED {
                    m_c = max(m_c, x);
                    f_c |= 2u;
                }
            }
            corr[lid] = exp(m_old - m_c);
            m_run[lid] = m_c;
            f_run[lid] = f_c;
        }
        workgroupBarrier();
        let m_lo = vec4<f32>(m_run[8u * io], m_run[8u * io + 1u], m_run[8u * io + 2u], m_run[8u * io + 3u]);
        let m_hi = vec4<f32>(m_run[8u * io + 4u], m_run[8u * io + 5u], m_run[8u * io + 6u], m_run[8u * io + 7u]);
        let p = lane_probs(y, m_lo, m_hi);
        if in_chunk {
            // Items 8 io .. 8 io + 3 of key j are vec4 j * 4 + 2 io of sc, the next four the one after.
            let lo = j0 * 4u + 2u * io;
            sc[lo] = p.y0;
            sc[lo + 1u] = p.y1;
            if j0 + 1u < n {
                sc[lo + 4u] = p.y2;
                sc[lo + 5u] = p.y3;
            }
            if j0 + 2u < n {
                sc[lo + 8u] = p.y4;
                sc[lo + 9u] = p.y5;
            }
            if j0 + 3u < n {
                sc[lo + 12u] = p.y6;
                sc[lo + 13u] = p.y7;
            }
        }
        store_partials(io, jq, p.y0 + p.y2 + p.y4 + p.y6, p.y1 + p.y3 + p.y5 + p.y7);
        workgroupBarrier();
        if lid < BLOCK {
            var l_c = 0.0;
            for (var k = 0u; k < LANES_PER_ITEM; k++) {
                l_c += part_m[lid * LANES_PER_ITEM + k];
            }
            l_run[lid] = l_run[lid] * corr[lid] + l_c;
        }

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
    // Not at all where Kernel::CheckValues found every value finite and the policy gives zeros
    // (common/v_flags.wgsl): the scan would find nothing and sum nothing used.
    if busy && (keys.x > 0u || keys.y < s_len) && (keras_rows || !values_all_finite()) {
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

    // The V sums only matter under Keras' policy (a uniform branch: its barriers are allowed).
    if keras_rows {
        let v2 = combine_v_sums(lid, vs, vt);
        vs = v2[0];
        vt = v2[1];
    }
    // One finish8 call site in a loop over the block's quads of items that exist (the bound is
    // uniform: the block's row count): four inlined copies made this kernel's compile 1.6x longer.
    let quads = (min(BLOCK, params.t_len * params.group - blk * BLOCK) + 3u) / 4u;
    for (var qd = 0u; qd < quads; qd++) {
        var x: array<vec4<f32>, 8>;
        switch qd {
            case 0u: { x = array<vec4<f32>, 8>(a0, a1, a2, a3, b0, b1, b2, b3); }
            case 1u: { x = array<vec4<f32>, 8>(a4, a5, a6, a7, b4, b5, b6, b7); }
            case 2u: { x = array<vec4<f32>, 8>(a8, a9, a10, a11, b8, b9, b10, b11); }
            default: { x = array<vec4<f32>, 8>(a12, a13, a14, a15, b12, b13, b14, b15); }
        }
        finish8(lid, b, g, blk, 4u * qd, x, vs, vt);
    }
}
