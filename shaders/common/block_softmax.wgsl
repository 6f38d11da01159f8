// The logits and online softmax of the block attention kernels (attention_block.wgsl,
// attention_subgroup.wgsl): lanes hold the scaled logits of 8 items and 4 keys in registers as 8
// vec4s (4 items each), the sentinel MASKED in place of masked keys; these helpers mask them, take
// their maxima and probabilities, and find the keys a block of items may see. Needs
// common/params.wgsl, common/mask.wgsl (`visible`), common/items.wgsl (`q_at`) and
// common/dots8x4.wgsl (`Dots8x4`).

// The logit standing for a masked key (below every finite logit of f32 data scaled by 1 / sqrt(H)).
const MASKED: f32 = -3.4e38;

// Per component: NaN where one of the four logits is NaN, else the largest visible one (MASKED if
// none). Masked logits hold MASKED; a NaN logit is visible (flags bit 0 and 1).
fn lane_max(a: vec4<f32>, b: vec4<f32>, c: vec4<f32>, d: vec4<f32>) -> vec4<f32> {
    let m = max(max(finite_or_masked(a), finite_or_masked(b)), max(finite_or_masked(c), finite_or_masked(d)));
    let nan = nan4(a) | nan4(b) | nan4(c) | nan4(d);
    return select(m, vec4<f32>(bitcast<f32>(0x7fc00000u)), nan);
}

// The visible logits of x, MASKED in place of the others and of NaNs.
fn finite_or_masked(x: vec4<f32>) -> vec4<f32> {
    return select(vec4<f32>(MASKED), x, x > vec4<f32>(MASKED));
}

// Which components of x are NaN, from the bits (fast-math folds float tests).
fn nan4(x: vec4<f32>) -> vec4<bool> {
    return (bitcast<vec4<u32>>(x) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
}

// The probabilities exp(y - m) of visible logits y, 0 for masked keys and NaN logits (whose row is
// NaN by its flag).
fn probs(y: vec4<f32>, m: vec4<f32>) -> vec4<f32> {
    return select(vec4<f32>(0.0), exp(y - m), y > vec4<f32>(MASKED));
}

// A lane's probabilities (Logits' layout) from its logits y and the running maxima of items 0-3
// (m_lo) and 4-7 (m_hi).
fn lane_probs(y: Logits, m_lo: vec4<f32>, m_hi: vec4<f32>) -> Logits {
    return Logits(
        probs(y.y0, m_lo), probs(y.y1, m_hi), probs(y.y2, m_lo), probs(y.y3, m_hi),
        probs(y.y4, m_lo), probs(y.y5, m_hi), probs(y.y6, m_lo), probs(y.y7, m_hi),
    );
}

// Bits shift .. shift + 3 of v as a vec4<bool>.
fn bits4(v: u32, shift: u32) -> vec4<bool> {
    let x = vec4<u32>(v >> shift) & vec4<u32>(1u, 2u, 4u, 8u);
    return x != vec4<u32>(0u);
}

// The components of b as bits 0-3.
fn bits_of(b: vec4<bool>) -> u32 {
    return select(0u, 1u, b.x) | select(0u, 2u, b.y) | select(0u, 4u, b.z) | select(0u, 8u, b.w);
}

// The query positions t and heads u of a lane's 8 items (the first four in lo, the next four in
// hi), computed once: the integer divisions by R run per lane on CPU drivers.
struct LaneItems {
    t_lo: vec4<u32>,
    t_hi: vec4<u32>,
    u_lo: vec4<u32>,
    u_hi: vec4<u32>,
}

// The positions and heads of items i_lo and i_hi of kv group g (common/items.wgsl's numbering).
fn items_at(g: u32, i_lo: vec4<u32>, i_hi: vec4<u32>) -> LaneItems {
    let r = params.group;
    return LaneItems(i_lo / r, i_hi / r, g * r + i_lo % r, g * r + i_hi % r);
}

// The visibility of a lane's 32 (key, item) pairs: bit 8 kk + i for key s0 + j0 + kk and item i of
// `items`, set where the key is among the n keys of the step (j0 + kk < n) and every mask part lets
// the item see it. The causal and window parts are vector compares per key; the mask buffers (rare)
// go through `visible` in a loop, one call site (a trip count known only at run time: LLVM unrolls
// a constant 32 into 32 copies). Called only for lanes with keys in the step (j0 < n).
fn visible_bits(b_global: u32, items: LaneItems, s0: u32, j0: u32, n: u32) -> u32 {
    let f = params.mask_flags;
    let keys = min(4u, n - j0);
    var vis = 0xffffffffu;
    if keys < 4u {
        vis = (1u << (8u * keys)) - 1u;
    }
    if (f & 48u) != 0u {
        let shift = vec4<i32>(params.causal_shift);
        let pos_lo = vec4<i32>(items.t_lo) + shift;
        let pos_hi = vec4<i32>(items.t_hi) + shift;
        let behind = vec4<i32>(i32(params.window_behind));
        let ahead = vec4<i32>(i32(params.window_ahead));
        for (var kk = 0u; kk < 4u; kk++) {
            let s = vec4<i32>(i32(s0 + j0 + kk));
            var lo = vec4<bool>(true);
            var hi = vec4<bool>(true);
            if (f & 16u) != 0u {
                lo = s <= pos_lo;
                hi = s <= pos_hi;
            }
            if (f & 32u) != 0u {
                lo = lo & (pos_lo - s <= behind) & (s - pos_lo <= ahead);
                hi = hi & (pos_hi - s <= behind) & (s - pos_hi <= ahead);
            }
            vis &= ~((~(bits_of(lo) | (bits_of(hi) << 4u)) & 0xffu) << (8u * kk));
        }
    }
    if (f & 15u) != 0u {
        for (var k = 0u; k < 8u * keys; k++) {
            let i = k % 8u;
            let t = select(items.t_lo[i % 4u], items.t_hi[i % 4u], i >= 4u);
            let u = select(items.u_lo[i % 4u], items.u_hi[i % 4u], i >= 4u);
            if !visible(b_global, u, t, s0 + j0 + k / 8u) {
                vis &= ~(1u << k);
            }
        }
    }
    return vis;
}

// A lane's 32 logits (or probabilities): key kk of the lane's 4, items 0-3 of its 8 in y(2 kk),
// items 4-7 in y(2 kk + 1).
struct Logits {
    y0: vec4<f32>,
    y1: vec4<f32>,
    y2: vec4<f32>,
    y3: vec4<f32>,
    y4: vec4<f32>,
    y5: vec4<f32>,
    y6: vec4<f32>,
    y7: vec4<f32>,
}

// The logits of a lane with no key in the step: all masked.
fn all_masked() -> Logits {
    let m = vec4<f32>(MASKED);
    return Logits(m, m, m, m, m, m, m, m);
}

// The scaled logits of the lane's dot products (field cIJ: item I, key J), MASKED where `vis`
// (visible_bits) has no bit.
fn masked_logits(d: Dots8x4, vis: u32) -> Logits {
    let m = vec4<f32>(MASKED);
    return Logits(
        select(m, scaled4(d.c00, d.c10, d.c20, d.c30), bits4(vis, 0u)),
        select(m, scaled4(d.c40, d.c50, d.c60, d.c70), bits4(vis, 4u)),
        select(m, scaled4(d.c01, d.c11, d.c21, d.c31), bits4(vis, 8u)),
        select(m, scaled4(d.c41, d.c51, d.c61, d.c71), bits4(vis, 12u)),
        select(m, scaled4(d.c02, d.c12, d.c22, d.c32), bits4(vis, 16u)),
        select(m, scaled4(d.c42, d.c52, d.c62, d.c72), bits4(vis, 20u)),
        select(m, scaled4(d.c03, d.c13, d.c23, d.c33), bits4(vis, 24u)),
        select(m, scaled4(d.c43, d.c53, d.c63, d.c73), bits4(vis, 28u)),
    );
}

// Each query head's sink logit (params.sinks = 1), for the block attentions (binding 8).
@group(0) @binding(8) var<storage, read> sinks: array<f32>;

// A row's softmax sum `l` (relative to its running max `m`) with query head u's sink logit added.
fn with_sink(l: f32, m: f32, u: u32) -> f32 {
    if params.sinks == 0u {
        return l;
    }
    return l + exp(sinks[u] - m);
}

// The scaled (and soft-capped) logits of four items (their dot products) as one vec4.
fn scaled4(a0: f32, a1: f32, a2: f32, a3: f32) -> vec4<f32> {
    let s = params.scale;
    if params.soft_cap == 0.0 {
        return vec4<f32>(a0, a1, a2, a3) * s;
    }
    return vec4<f32>(soft_capped(a0 * s), soft_capped(a1 * s), soft_capped(a2 * s), soft_capped(a3 * s));
}

// The keys [x, y) that the items with query positions first .. last (nondecreasing) may see: all S,
// or, under a causal or sliding-window mask, only those some of them may see (flash attention's
// causal skip: at T = S half the keys on average). Outside them every logit of the items is masked,
// which leaves the running max, sum and flags as they are; what those keys still feed, the kernels
// scan apart: Keras multiplies their zero probabilities by V all the same (a NaN or infinite value
// makes the column NaN) and its policy for a row that sees no key averages V over every key.
fn keys_seen(first_t: u32, last_t: u32) -> vec2<u32> {
    let f = params.mask_flags;
    let s_len = i32(params.s_len);
    let behind = i32(params.window_behind);
    let ahead = i32(params.window_ahead);
    let causal = (f & 16u) != 0u;
    let windowed = (f & 32u) != 0u;
    let first = i32(first_t) + params.causal_shift;
    let last = i32(last_t) + params.causal_shift;
    // Row pos sees keys [lo(pos), hi(pos)) under the causal and window parts, both nondecreasing in
    // pos, and consecutive rows' ranges overlap or touch (lo(pos + 1) <= hi(pos): behind + ahead >= 0).
    // The union of the rows' ranges is [lo(first), hi(last)).
    var lo_first = 0;
    var hi_last = s_len;
    if causal {
        hi_last = min(hi_last, last + 1);
    }
    if windowed {
        lo_first = max(lo_first, first - behind);
        hi_last = min(hi_last, last + ahead + 1);
    }
    let lo = clamp(lo_first, 0, s_len);
    let hi = clamp(hi_last, lo, s_len);
    return vec2<u32>(u32(lo), u32(hi));
}

// The components of v that are NaN or infinite, as bits 0-3, from the bits (fast-math folds float
// tests).
fn non_finite_bits(v: vec4<f32>) -> u32 {
    let inf = vec4<u32>(0x7f800000u);
    let nf = (bitcast<vec4<u32>>(v) & inf) == inf;
    return select(0u, 1u, nf.x) | select(0u, 2u, nf.y) | select(0u, 4u, nf.z) | select(0u, 8u, nf.w);
}

// One vec4 column of a row's output, as both block kernels finish it: acc normalised by the row's sum l, or, for a row that saw no key,
// the plain average of V (vs / S) under Keras' policy and acc (0 * V over the visited keys) under
// the zeros policy; NaN for a row with a visible NaN logit; NaN in the components that a skipped
// key's non-finite V makes NaN (bad, bits 0-3), in rows that see a key.
fn finish(acc: vec4<f32>, vs: vec4<f32>, l: f32, seen: bool, nan: bool, bad: u32) -> vec4<f32> {
    let qnan = bitcast<f32>(0x7fc00000u);
    if !seen && params.masked_rows == 1u {
        return vs / f32(params.s_len);
    }
    if nan {
        return vec4<f32>(qnan);
    }
    var o = acc;
    if seen {
        o = acc * (1.0 / l);
    }
    return select(o, vec4<f32>(qnan), bits4(bad, 0u));
}

// The vec4 index of item `it`'s row in (B, T, Nq, H) (common/items.wgsl's q_at, flattened).
fn row_of(b: u32, g: u32, it: u32) -> u32 {
    let q = q_at(b, g, it);
    return q.x * params.nq * (params.head_dim / 4u) + q.y;
}
