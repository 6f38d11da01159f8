// Fused attention for CPU adapters with subgroups (kernel attention_subgroup, compiled only where the
// device has Features::SUBGROUP): attention_block.wgsl's math (the same bindings, semantics and
// register-held logits, common/block_softmax.wgsl) with each block of 8 items owned by one subgroup
// from start to end, so that nothing passes through workgroup memory and nothing waits at a barrier.
// On CPU drivers (lavapipe) a subgroup is one SIMD group of the CPU: a subgroup operation is a
// register shuffle, where a workgroup-memory access is a loop over the lanes and a barrier a switch
// through every SIMD group (attention_block spends most of its time on those there).
//
// A workgroup takes 8 blocks of 8 consecutive (query, head-in-group) items t * R + r of kv group
// g = workgroup z (batch row b local to the chunk), its subgroups one block at a time. Items past
// T * R compute a copy of the last item and are never stored. Per step over the keys (4 per lane:
// 4 * subgroup-size keys), with sz lanes:
//   1. logits: lane l takes keys 4 l .. 4 l + 3 of the step against the block's 8 queries
//      (common/dots8x4.wgsl; with 8 lanes or more the queries are shared through the subgroup,
//      common/dots8x4_shared.wgsl), masks them (visible_bits) and keeps the 32 logits in registers;
//   2. softmax: subgroupMax / subgroupOr over the lanes' per-item maxima and NaN flags, the running
//      max, corr = exp(m_old - m_new), the lane's probabilities in registers, subgroupAdd of their
//      per-item sums into the running sum;
//   3. p * V: lane l owns the vec4 columns l, l + sz, l + 2 sz, l + 3 sz of the kv head (32 named
//      accumulators, 8 items x 4 columns, rescaled by corr); for each key of the step it takes the
//      8 probabilities from the lane that computed them (subgroupShuffle of two vec4s) and its 4 V
//      vec4s. Each V vec4 loaded serves 8 items, each K vec4 8 queries.
// The heads fit when H / 4 <= 4 sz (H <= 128 with 8 lanes: the plan checks the adapter's smallest
// subgroup size); columns past H / 4 are computed on a copy and never stored. Every subgroup must be
// whole (the plan takes this kernel only where the largest subgroup size is at most the workgroup's
// 64 invocations, a power of two dividing it).
// The keys outside keys_seen (causal and window skip) still feed what Keras computes from them: each
// lane scans its columns of their V for non-finite values (which make the column NaN in rows that see
// a key) and, under Keras' masked-row policy, sums them (a fully masked row is the plain average of
// V). The output is normalised (zeros or that average for fully masked rows, NaN for a row with a
// visible NaN logit) and multiplied by the gate when used.

// Bindings 1-3, Q (B, T, Nq, H), K and V (B, kv_stride >= S, Nkv, H): rgba32float textures
// (common/qkv_texture.wgsl), read through load_q, load_k, load_v.
@group(0) @binding(4) var<storage, read> masks: array<u32>;
@group(0) @binding(5) var<storage, read> gate: array<vec4<f32>>; // (B, T, Nq, H), when use_gate
@group(0) @binding(6) var<storage, read_write> out: array<vec4<f32>>; // (B, T, Nq, H)
// Binding 7: the words of Kernel::CheckValues (common/v_flags.wgsl).

// Blocks of 8 items per workgroup (Kernel::SUBGROUP_BLOCKS), taken by its subgroups in turn.
const BLOCKS: u32 = 8u;

// The entry point's invocation ids.
struct SubgroupIds {
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) size: u32,
    @builtin(subgroup_id) sub: u32,
    @builtin(num_subgroups) subs: u32,
}

// A lane's weighted sums: aIC is item I of the block, column C of the lane's 4; sC the sum of column
// C of V over the keys (Keras' masked-row policy only).
struct Pv {
    a00: vec4<f32>, a01: vec4<f32>, a02: vec4<f32>, a03: vec4<f32>,
    a10: vec4<f32>, a11: vec4<f32>, a12: vec4<f32>, a13: vec4<f32>,
    a20: vec4<f32>, a21: vec4<f32>, a22: vec4<f32>, a23: vec4<f32>,
    a30: vec4<f32>, a31: vec4<f32>, a32: vec4<f32>, a33: vec4<f32>,
    a40: vec4<f32>, a41: vec4<f32>, a42: vec4<f32>, a43: vec4<f32>,
    a50: vec4<f32>, a51: vec4<f32>, a52: vec4<f32>, a53: vec4<f32>,
    a60: vec4<f32>, a61: vec4<f32>, a62: vec4<f32>, a63: vec4<f32>,
    a70: vec4<f32>, a71: vec4<f32>, a72: vec4<f32>, a73: vec4<f32>,
    s0: vec4<f32>, s1: vec4<f32>, s2: vec4<f32>, s3: vec4<f32>,
}

// The block's online softmax state, the same in every lane of the subgroup: per item (the first four
// in lo, the next four in hi) the running max and sum, whether it saw a key (a NaN logit counts) and
// whether a visible logit was NaN (1 or 0).
struct Rows {
    m_lo: vec4<f32>,
    m_hi: vec4<f32>,
    l_lo: vec4<f32>,
    l_hi: vec4<f32>,
    seen_lo: vec4<u32>,
    seen_hi: vec4<u32>,
    nan_lo: vec4<u32>,
    nan_hi: vec4<u32>,
}

// The sums scaled by the chunk's correction factors of items 0-3 (lo) and 4-7 (hi).
fn rescale(a: Pv, lo: vec4<f32>, hi: vec4<f32>) -> Pv {
    var r = a;
    r.a00 *= lo.x;
    r.a01 *= lo.x;
    r.a02 *= lo.x;
    r.a03 *= lo.x;
    r.a10 *= lo.y;
    r.a11 *= lo.y;
    r.a12 *= lo.y;
    r.a13 *= lo.y;
    r.a20 *= lo.z;
    r.a21 *= lo.z;
    r.a22 *= lo.z;
    r.a23 *= lo.z;
    r.a30 *= lo.w;
    r.a31 *= lo.w;
    r.a32 *= lo.w;
    r.a33 *= lo.w;
    r.a40 *= hi.x;
    r.a41 *= hi.x;
    r.a42 *= hi.x;
    r.a43 *= hi.x;
    r.a50 *= hi.y;
    r.a51 *= hi.y;
    r.a52 *= hi.y;
    r.a53 *= hi.y;
    r.a60 *= hi.z;
    r.a61 *= hi.z;
    r.a62 *= hi.z;
    r.a63 *= hi.z;
    r.a70 *= hi.w;
    r.a71 *= hi.w;
    r.a72 *= hi.w;
    r.a73 *= hi.w;
    return r;
}

// One key: row `row` of V at the lane's columns `cols` (of the kv head starting at kv_col), weighted
// by the probabilities of items 0-3 (p_lo) and 4-7 (p_hi); zeros in place of V where `live` is false
// (a key past the step's end, whose probabilities are 0: 0 x V would be NaN for a non-finite V).
fn pv_key(a: Pv, p_lo: vec4<f32>, p_hi: vec4<f32>, row: u32, kv_col: u32, cols: vec4<u32>, sums: bool, live: bool) -> Pv {
    var r = a;
    let zero = vec4<f32>(0.0);
    let v0 = select(zero, load_v(row, kv_col + cols.x), live);
    let v1 = select(zero, load_v(row, kv_col + cols.y), live);
    let v2 = select(zero, load_v(row, kv_col + cols.z), live);
    let v3 = select(zero, load_v(row, kv_col + cols.w), live);
    r.a00 = fma(vec4<f32>(p_lo.x), v0, r.a00);
    r.a01 = fma(vec4<f32>(p_lo.x), v1, r.a01);
    r.a02 = fma(vec4<f32>(p_lo.x), v2, r.a02);
    r.a03 = fma(vec4<f32>(p_lo.x), v3, r.a03);
    r.a10 = fma(vec4<f32>(p_lo.y), v0, r.a10);
    r.a11 = fma(vec4<f32>(p_lo.y), v1, r.a11);
    r.a12 = fma(vec4<f32>(p_lo.y), v2, r.a12);
    r.a13 = fma(vec4<f32>(p_lo.y), v3, r.a13);
    r.a20 = fma(vec4<f32>(p_lo.z), v0, r.a20);
    r.a21 = fma(vec4<f32>(p_lo.z), v1, r.a21);
    r.a22 = fma(vec4<f32>(p_lo.z), v2, r.a22);
    r.a23 = fma(vec4<f32>(p_lo.z), v3, r.a23);
    r.a30 = fma(vec4<f32>(p_lo.w), v0, r.a30);
    r.a31 = fma(vec4<f32>(p_lo.w), v1, r.a31);
    r.a32 = fma(vec4<f32>(p_lo.w), v2, r.a32);
    r.a33 = fma(vec4<f32>(p_lo.w), v3, r.a33);
    r.a40 = fma(vec4<f32>(p_hi.x), v0, r.a40);
    r.a41 = fma(vec4<f32>(p_hi.x), v1, r.a41);
    r.a42 = fma(vec4<f32>(p_hi.x), v2, r.a42);
    r.a43 = fma(vec4<f32>(p_hi.x), v3, r.a43);
    r.a50 = fma(vec4<f32>(p_hi.y), v0, r.a50);
    r.a51 = fma(vec4<f32>(p_hi.y), v1, r.a51);
    r.a52 = fma(vec4<f32>(p_hi.y), v2, r.a52);
    r.a53 = fma(vec4<f32>(p_hi.y), v3, r.a53);
    r.a60 = fma(vec4<f32>(p_hi.z), v0, r.a60);
    r.a61 = fma(vec4<f32>(p_hi.z), v1, r.a61);
    r.a62 = fma(vec4<f32>(p_hi.z), v2, r.a62);
    r.a63 = fma(vec4<f32>(p_hi.z), v3, r.a63);
    r.a70 = fma(vec4<f32>(p_hi.w), v0, r.a70);
    r.a71 = fma(vec4<f32>(p_hi.w), v1, r.a71);
    r.a72 = fma(vec4<f32>(p_hi.w), v2, r.a72);
    r.a73 = fma(vec4<f32>(p_hi.w), v3, r.a73);
    if sums {
        r.s0 += v0;
        r.s1 += v1;
        r.s2 += v2;
        r.s3 += v3;
    }
    return r;
}

// What the keys [k_from, k_to) outside the visited range feed in the lane's columns: bit c of
// component k of `bad` set where component c of some key's V in column k is NaN or infinite, and,
// when `sums`, the V sums s0-s3 of the lane's 4 columns (started from Pv's, so every key's). Only
// these: the 32 accumulators need not pass through the scan.
struct Skipped {
    bad: vec4<u32>,
    s0: vec4<f32>,
    s1: vec4<f32>,
    s2: vec4<f32>,
    s3: vec4<f32>,
}

fn scan_skipped(acc: Skipped, k_from: u32, k_to: u32, kv_row: u32, kv_col: u32, cols: vec4<u32>, sums: bool) -> Skipped {
    var r = acc;
    for (var j = k_from; j < k_to; j++) {
        let v0 = load_v(kv_row + j, kv_col + cols.x);
        let v1 = load_v(kv_row + j, kv_col + cols.y);
        let v2 = load_v(kv_row + j, kv_col + cols.z);
        let v3 = load_v(kv_row + j, kv_col + cols.w);
        r.bad |= vec4<u32>(non_finite_bits(v0), non_finite_bits(v1), non_finite_bits(v2), non_finite_bits(v3));
        if sums {
            r.s0 += v0;
            r.s1 += v1;
            r.s2 += v2;
            r.s3 += v3;
        }
    }
    return r;
}

// Stores item it's 4 columns of the lane (col_at, those inside the head; o: their sums), times the
// gate when used; item i (0-7) of the block for its softmax state. The caller skips items past T * R.
fn store_row(b: u32, g: u32, it: u32, i: u32, st: Rows, sk: Skipped, col_at: vec4<u32>, o: array<vec4<f32>, 4>) {
    let lo = i < 4u;
    let m = select(st.m_hi[i % 4u], st.m_lo[i % 4u], lo);
    let l = with_sink(select(st.l_hi[i % 4u], st.l_lo[i % 4u], lo), m, g * params.group + it % params.group);
    let seen = select(st.seen_hi[i % 4u], st.seen_lo[i % 4u], lo) != 0u;
    let nan = select(st.nan_hi[i % 4u], st.nan_lo[i % 4u], lo) != 0u;
    let row = row_of(b, g, it);
    let h4n = params.head_dim / 4u;
    let sums = array<vec4<f32>, 4>(sk.s0, sk.s1, sk.s2, sk.s3);
    // One call site of finish (four inlined copies cost compile time, not run time).
    for (var c = 0u; c < 4u; c++) {
        if col_at[c] < h4n {
            store_col(row + col_at[c], finish(o[c], sums[c], l, seen, nan, sk.bad[c]));
        }
    }
}

// Stores vec4 `at` of the output.
fn store_col(at: u32, o: vec4<f32>) {
    if params.use_gate != 0u {
        out[at] = o * gate[at];
    } else {
        out[at] = o;
    }
}

@compute @workgroup_size(64, 1, 1)
fn main(ids: SubgroupIds, @builtin(workgroup_id) wid: vec3<u32>) {
    let items = params.t_len * params.group;
    for (var o = ids.sub; o < BLOCKS; o += ids.subs) {
        let it0 = (wid.x * BLOCKS + o) * 8u;
        if it0 >= items {
            break;
        }
        block(ids, wid.z / params.nkv, wid.z % params.nkv, it0);
    }
}

// The block of items it0 .. it0 + 7 of kv group g, batch row b of the chunk: every lane of the
// subgroup, in uniform control flow.
fn block(ids: SubgroupIds, b: u32, g: u32, it0: u32) {
    let h4n = params.head_dim / 4u;
    let sz = ids.size;
    let lane = ids.lane;
    let last = params.t_len * params.group - 1u;
    let sums = params.masked_rows == 1u;
    let b_global = params.b_base + b;
    let kv_col = g * h4n;
    // Phase 3's columns of the lane, clamped to the last (those copies are never stored).
    let col_at = vec4<u32>(lane) + vec4<u32>(0u, sz, 2u * sz, 3u * sz);
    let cols = min(col_at, vec4<u32>(h4n - 1u));

    let i_lo = min(vec4<u32>(it0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(last));
    let i_hi = min(vec4<u32>(it0) + vec4<u32>(4u, 5u, 6u, 7u), vec4<u32>(last));
    let items = items_at(g, i_lo, i_hi);
    // The queries: each lane's own 8 rows, or, with 8 lanes or more, row lane % 8 to share.
    let share = sz >= 8u;
    let q0 = q_at(b, g, i_lo.x);
    let q1 = q_at(b, g, i_lo.y);
    let q2 = q_at(b, g, i_lo.z);
    let q3 = q_at(b, g, i_lo.w);
    let q4 = q_at(b, g, i_hi.x);
    let q5 = q_at(b, g, i_hi.y);
    let q6 = q_at(b, g, i_hi.z);
    let q7 = q_at(b, g, i_hi.w);
    let mine = q_at(b, g, min(it0 + (lane & 7u), last));

    var st = Rows(vec4<f32>(MASKED), vec4<f32>(MASKED), vec4<f32>(0.0), vec4<f32>(0.0), vec4<u32>(0u), vec4<u32>(0u), vec4<u32>(0u), vec4<u32>(0u));
    var a = Pv();
    let keys = keys_seen(items.t_lo.x, items.t_hi.w);
    let step = 4u * sz;
    let j0 = 4u * lane;
    for (var s0 = keys.x; s0 < keys.y; s0 += step) {
        let n = min(step, keys.y - s0);
        let kv_row = b * params.kv_stride + s0;
        // Phase 1: every lane computes its dot products, also past the step's end (its keys clamped
        // to the last one, masked below), so that the shared queries' broadcasts see every lane.
        let k0_at = vec2<u32>(kv_row + min(j0, n - 1u), kv_col);
        let k1_at = vec2<u32>(kv_row + min(j0 + 1u, n - 1u), kv_col);
        let k2_at = vec2<u32>(kv_row + min(j0 + 2u, n - 1u), kv_col);
        let k3_at = vec2<u32>(kv_row + min(j0 + 3u, n - 1u), kv_col);
        var d: Dots8x4;
        if share {
            d = dots8x4_shared(mine, k0_at, k1_at, k2_at, k3_at, h4n);
        } else {
            d = dots8x4(q0, q1, q2, q3, q4, q5, q6, q7, k0_at, k1_at, k2_at, k3_at, h4n);
        }
        // Key j0 + kk: items 0-3 in y(2 kk), items 4-7 in y(2 kk + 1).
        var y = all_masked();
        if j0 < n {
            y = masked_logits(d, visible_bits(b_global, items, s0, j0, n));
        }

        // Phase 2: the step's maxima and NaN flags over the subgroup, the running max and its
        // correction factor, the probabilities and their sums.
        let lo = lane_max(y.y0, y.y2, y.y4, y.y6);
        let hi = lane_max(y.y1, y.y3, y.y5, y.y7);
        let mx_lo = subgroupMax(finite_or_masked(lo));
        let mx_hi = subgroupMax(finite_or_masked(hi));
        let nan_lo = subgroupOr(select(vec4<u32>(0u), vec4<u32>(1u), nan4(lo)));
        let nan_hi = subgroupOr(select(vec4<u32>(0u), vec4<u32>(1u), nan4(hi)));
        st.nan_lo |= nan_lo;
        st.nan_hi |= nan_hi;
        st.seen_lo |= nan_lo | select(vec4<u32>(0u), vec4<u32>(1u), mx_lo > vec4<f32>(MASKED));
        st.seen_hi |= nan_hi | select(vec4<u32>(0u), vec4<u32>(1u), mx_hi > vec4<f32>(MASKED));
        let m_lo = max(st.m_lo, mx_lo);
        let m_hi = max(st.m_hi, mx_hi);
        let c_lo = exp(st.m_lo - m_lo);
        let c_hi = exp(st.m_hi - m_hi);
        st.m_lo = m_lo;
        st.m_hi = m_hi;
        let p = lane_probs(y, m_lo, m_hi);
        st.l_lo = st.l_lo * c_lo + subgroupAdd(p.y0 + p.y2 + p.y4 + p.y6);
        st.l_hi = st.l_hi * c_hi + subgroupAdd(p.y1 + p.y3 + p.y5 + p.y7);

        // Phase 3: key 4 k + kk of the step is lane k's key kk. Lane k's 4 keys go into one
        // assignment of the accumulators (a CPU driver blends and stores every assignment in a loop
        // through the loop's execution mask: 0.87-0.97 of the time against one per key), the keys
        // past the step's end read the last key's row and count as zeros.
        a = rescale(a, c_lo, c_hi);
        let last = kv_row + n - 1u;
        for (var k = 0u; 4u * k < n; k++) {
            let row = kv_row + 4u * k;
            let live1 = 4u * k + 1u < n;
            let live2 = 4u * k + 2u < n;
            let live3 = 4u * k + 3u < n;
            a = pv_key(
                pv_key(
                    pv_key(
                        pv_key(a, subgroupShuffle(p.y0, k), subgroupShuffle(p.y1, k), row, kv_col, cols, sums, true),
                        subgroupShuffle(p.y2, k), subgroupShuffle(p.y3, k), min(row + 1u, last), kv_col, cols, sums, live1,
                    ),
                    subgroupShuffle(p.y4, k), subgroupShuffle(p.y5, k), min(row + 2u, last), kv_col, cols, sums, live2,
                ),
                subgroupShuffle(p.y6, k), subgroupShuffle(p.y7, k), min(row + 3u, last), kv_col, cols, sums, live3,
            );
        }
    }

    // The keys the step loop skipped (keys_seen): scanned for non-finite values of V and, under
    // Keras' policy, their sums; not at all where Kernel::CheckValues found every value finite and the
    // policy gives zeros (common/v_flags.wgsl).
    var sk = Skipped(vec4<u32>(0u), a.s0, a.s1, a.s2, a.s3);
    if sums || !values_all_finite() {
        let kv_row = b * params.kv_stride;
        sk = scan_skipped(sk, 0u, keys.x, kv_row, kv_col, cols, sums);
        sk = scan_skipped(sk, keys.y, params.s_len, kv_row, kv_col, cols, sums);
    }

    // One store_row call site in a loop over the block's items that exist (eight inlined copies,
    // each with four of finish, made this kernel's compile 1.6x longer).
    if lane < h4n {
        let n = min(8u, params.t_len * params.group - it0);
        for (var i = 0u; i < n; i++) {
            var o: array<vec4<f32>, 4>;
            switch i {
                case 0u: { o = array<vec4<f32>, 4>(a.a00, a.a01, a.a02, a.a03); }
                case 1u: { o = array<vec4<f32>, 4>(a.a10, a.a11, a.a12, a.a13); }
                case 2u: { o = array<vec4<f32>, 4>(a.a20, a.a21, a.a22, a.a23); }
                case 3u: { o = array<vec4<f32>, 4>(a.a30, a.a31, a.a32, a.a33); }
                case 4u: { o = array<vec4<f32>, 4>(a.a40, a.a41, a.a42, a.a43); }
                case 5u: { o = array<vec4<f32>, 4>(a.a50, a.a51, a.a52, a.a53); }
                case 6u: { o = array<vec4<f32>, 4>(a.a60, a.a61, a.a62, a.a63); }
                default: { o = array<vec4<f32>, 4>(a.a70, a.a71, a.a72, a.a73); }
            }
            store_row(b, g, it0 + i, i, st, sk, col_at, o);
        }
    }
}
