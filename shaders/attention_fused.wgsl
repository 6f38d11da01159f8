// One file for both precisions: Q, K, V and the gate are stored as `Elem` (common/store_f32.wgsl or
// common/f16.wgsl) and converted to f32 as loaded; the logits, online softmax and accumulation are
// f32; `out` holds `Out`: the attention output's storage type (common/out_storage.wgsl), or f32 for
// the split partial states of an f16 build (common/out_partials.wgsl; the f32 build writes either
// through one f32 binding).
//
// Fused attention for calls without scores or dropout: logits, masks, online softmax and PV in one
// pass over tiles of 64 keys; the T x S scores are never stored. Shaped for GPUs: what one
// invocation keeps does not grow with the head size H (H is spread over the lanes), and the query
// heads of a kv group share every K and V row the workgroup reads.
//
// Workgroup (x, z): z = (b local to the batch chunk) * Nkv + g; x takes M consecutive
// (query, head-in-group) items t * R + r of kv group g, M = min(8, 4 * (256 / H)) (8 up to
// H = 128, 4 above): the scaled queries of the M items live in workgroup memory (M * H <= 1024
// floats). Per tile of 64 keys:
//   1. logits: lane j takes key j, reads its K row once and dots it with the M queries (read as
//      broadcasts from workgroup memory); the masked logits are marked, not stored;
//   2. online softmax: 8 lanes per item find the tile's maximum over their 8 keys each, combine
//      them, turn the logits into probabilities p in place and sum them; one lane per item
//      rescales the item's running sum;
//   3. PV: lane (row r, column c) owns the vec4 column c of H for up to 4 items (r, r + rows, ...,
//      rows = 256 / H lanes per column): it rescales their accumulators, then reads V row by row
//      (the lanes of a row read adjacent columns) and adds p * V.
// Per invocation: 8 logits, 4 accumulator vec4s and a vec4 of the V sum, whatever H.
//
// Split mode (params.split_keys > 0, flash-decoding for short queries over long sources):
// workgroup y takes keys [y * split_keys, (y + 1) * split_keys) only and writes, instead of the
// output, its partial state to `out` laid out as partials[((b * Nkv + g) * splits + y) * T * R +
// item] of 2 * H + 2 floats: the unnormalised output, the sum of V over its keys, the running max
// and sum. attention_reduce.wgsl combines the splits.
//
// Keras semantics: masked logits never contribute (replace-then-zero == softmax over visible
// keys), but every key's value is multiplied in, masked ones by p = 0, so that a NaN or an infinity
// in a masked value still reaches the row, as in Keras; a NaN logit makes the row NaN; a fully
// masked row gives zeros (masked_rows = 0: the sum of 0 * V) or the plain average of V over all S
// keys (masked_rows = 1, Keras' default call). Output: AttnOut (B, T, Nq, H), times the gate when
// used. H <= 256 and a multiple of 4.

@group(0) @binding(1) var<storage, read> q: array<Elem>;        // (B, T, Nq, H)
// Bindings 2 and 3, K and V (B, kv_stride >= S, Nkv, H): read through load_k / load_v of
// common/kv_elem.wgsl, or of common/kv_f16.wgsl / common/kv_int8.wgsl over a quantized KV cache.
@group(0) @binding(4) var<storage, read> masks: array<u32>;
@group(0) @binding(5) var<storage, read> gate: array<Elem>;     // (B, T, Nq, H), when use_gate
@group(0) @binding(6) var<storage, read_write> out: array<Out>; // (B, T, Nq, H), or the partials
// Each query head's sink logit (params.sinks = 1): one more term of a row's denominator (the whole
// pass only; in split mode attention_reduce.wgsl adds it).
@group(0) @binding(7) var<storage, read> sinks: array<f32>;

const WG: u32 = 64u;
// Keys per tile: one per lane in the logits step.
const KEYS: u32 = 64u;
// The most items per workgroup, and per lane in the PV step.
const ITEMS: u32 = 8u;
const ITEMS_PER_LANE: u32 = 4u;
// Lanes per item in the softmax step, and the keys each of them scans.
const SEG: u32 = 8u;
// The bits that mark a masked logit in `probs`: a NaN that no logit stores (their NaNs are stored
// as 0x7fc00000).
const MASKED: u32 = 0xffffffffu;
const LOWEST: f32 = -3.4e38;

// The M scaled queries, item i at [i * H / 4, (i + 1) * H / 4).
var<workgroup> q_tile: array<vec4<f32>, 256>;
// The tile's logits (bits; MASKED where masked), then its probabilities, item i at [i * 64, ...).
var<workgroup> probs: array<u32, 512>;
// Per lane of the softmax step: its keys' maximum logit, then the sum of their probabilities; and
// whether it saw a visible key (bit 0) or a NaN logit (bit 1).
var<workgroup> part: array<f32, 64>;
var<workgroup> part_flags: array<u32, 64>;
// Per item: the running max and sum, the factor that rescales its accumulators at this tile, and
// its flags (bit 0: a visible key seen, bit 1: a NaN logit).
var<workgroup> row_max: array<f32, 8>;
var<workgroup> row_sum: array<f32, 8>;
var<workgroup> row_corr: array<f32, 8>;
var<workgroup> row_flags: array<u32, 8>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let hd = params.head_dim;
    let h4 = hd / 4u;
    let nq = params.nq;
    let nkv = params.nkv;
    let group = params.group;
    let t_len = params.t_len;
    let s_len = params.s_len;
    let item_count = t_len * group;
    let b = wid.z / nkv;
    let g = wid.z % nkv;
    let b_global = params.b_base + b;
    let rows = 256u / hd;
    let m_items = min(ITEMS, ITEMS_PER_LANE * rows);
    let item0 = wid.x * m_items;
    let split = params.split_keys > 0u;
    let s_begin = select(0u, wid.y * params.split_keys, split);
    let s_end = select(s_len, min(s_len, s_begin + params.split_keys), split);
    let keras_rows = params.masked_rows == 1u;

    // Stage the scaled queries; items past the end read as zeros.
    for (var e = lid; e < m_items * h4; e += WG) {
        let item = item0 + e / h4;
        var v = vec4<f32>(0.0);
        if item < item_count {
            let t = item / group;
            let u = g * group + item % group;
            let at = ((b * t_len + t) * nq + u) * hd + 4u * (e % h4);
            v = vec4<f32>(vec4<Elem>(q[at], q[at + 1u], q[at + 2u], q[at + 3u])) * params.scale;
        }
        q_tile[e] = v;
    }
    if lid < ITEMS {
        row_max[lid] = LOWEST;
        row_sum[lid] = 0.0;
        row_flags[lid] = 0u;
    }

    // The PV step's lane: vec4 column `col` of the items row_lane, row_lane + rows, ...
    let col = lid % h4;
    let row_lane = lid / h4;
    let pv_lane = row_lane < rows;
    // The softmax step's lane: item `sm_item`, keys [sm_seg * SEG, sm_seg * SEG + SEG).
    let sm_item = lid / SEG;
    let sm_seg = lid % SEG;

    var acc: array<vec4<f32>, ITEMS_PER_LANE>;
    for (var k = 0u; k < ITEMS_PER_LANE; k++) {
        acc[k] = vec4<f32>(0.0);
    }
    // The sum of V over the keys, for a fully masked row under Keras' default-call policy.
    var vsum = vec4<f32>(0.0);
    workgroupBarrier();

    for (var s0 = s_begin; s0 < s_end; s0 += KEYS) {
        let n = min(KEYS, s_end - s0);

        // 1. Logits: lane j dots key s0 + j with every item's query.
        {
            let j = lid;
            let key = min(s0 + j, s_end - 1u);
            let k_row = b * params.kv_stride + key;
            var dots: array<f32, ITEMS>;
            for (var i = 0u; i < ITEMS; i++) {
                dots[i] = 0.0;
            }
            for (var c = 0u; c < h4; c++) {
                let kv = load_k(k_row, g * h4 + c);
                for (var i = 0u; i < ITEMS; i++) {
                    dots[i] += dot(q_tile[min(i, m_items - 1u) * h4 + c], kv);
                }
            }
            for (var i = 0u; i < ITEMS; i++) {
                let item = item0 + i;
                let t = item / group;
                let u = g * group + item % group;
                let ok = j < n && i < m_items && item < item_count && visible(b_global, u, t, s0 + j);
                let x = soft_capped(dots[i]);
                let bits = select(bitcast<u32>(x), 0x7fc00000u, is_nan(x));
                probs[i * KEYS + j] = select(MASKED, bits, ok);
            }
        }
        workgroupBarrier();

        // 2. Online softmax: this lane's keys' maximum and flags, then the row's.
        var seg_max = LOWEST;
        var seg_flags = 0u;
        for (var k = 0u; k < SEG; k++) {
            let bits = probs[sm_item * KEYS + sm_seg * SEG + k];
            if bits != MASKED {
                let x = bitcast<f32>(bits);
                seg_max = max(seg_max, x);
                seg_flags |= select(1u, 3u, is_nan(x));
            }
        }
        part[lid] = seg_max;
        part_flags[lid] = seg_flags;
        workgroupBarrier();
        var tile_max = LOWEST;
        var flags = 0u;
        for (var k = 0u; k < SEG; k++) {
            tile_max = max(tile_max, part[sm_item * SEG + k]);
            flags |= part_flags[sm_item * SEG + k];
        }
        let m_old = row_max[sm_item];
        let m_new = max(m_old, tile_max);
        var seg_sum = 0.0;
        for (var k = 0u; k < SEG; k++) {
            let at = sm_item * KEYS + sm_seg * SEG + k;
            let bits = probs[at];
            var p = 0.0;
            if bits != MASKED {
                let x = bitcast<f32>(bits);
                p = select(0.0, exp(x - m_new), x > LOWEST);
            }
            probs[at] = bitcast<u32>(p);
            seg_sum += p;
        }
        workgroupBarrier();
        part[lid] = seg_sum;
        workgroupBarrier();
        if sm_seg == 0u {
            var tile_sum = 0.0;
            for (var k = 0u; k < SEG; k++) {
                tile_sum += part[sm_item * SEG + k];
            }
            let corr = exp(m_old - m_new);
            row_corr[sm_item] = corr;
            row_sum[sm_item] = row_sum[sm_item] * corr + tile_sum;
            row_max[sm_item] = m_new;
            row_flags[sm_item] |= flags;
        }
        workgroupBarrier();

        // 3. PV over every key of the tile, masked ones by p = 0.
        if pv_lane {
            for (var k = 0u; k < ITEMS_PER_LANE; k++) {
                acc[k] *= row_corr[min(row_lane + k * rows, ITEMS - 1u)];
            }
            let v_row = b * params.kv_stride + s0;
            for (var j = 0u; j < n; j++) {
                let v = load_v(v_row + j, g * h4 + col);
                if keras_rows {
                    vsum += v;
                }
                for (var k = 0u; k < ITEMS_PER_LANE; k++) {
                    let i = min(row_lane + k * rows, ITEMS - 1u);
                    acc[k] = fma(vec4<f32>(bitcast<f32>(probs[i * KEYS + j])), v, acc[k]);
                }
            }
        }
        workgroupBarrier();
    }

    if !pv_lane {
        return;
    }
    let splits = (s_len + params.split_keys - 1u) / max(params.split_keys, 1u);
    for (var k = 0u; k < ITEMS_PER_LANE; k++) {
        let i = row_lane + k * rows;
        let item = item0 + i;
        if i >= m_items || item >= item_count {
            continue;
        }
        let flags = row_flags[i];
        let nan_row = (flags & 2u) != 0u;
        if split {
            let p_at = (((b * nkv + g) * splits + wid.y) * item_count + item) * (2u * hd + 2u);
            for (var e = 0u; e < 4u; e++) {
                out[p_at + 4u * col + e] = Out(acc[k][e]);
                out[p_at + hd + 4u * col + e] = Out(vsum[e]);
            }
            if col == 0u {
                out[p_at + 2u * hd] = Out(row_max[i]);
                out[p_at + 2u * hd + 1u] = Out(select(row_sum[i], bitcast<f32>(0x7fc00000u), nan_row));
            }
            continue;
        }
        let t = item / group;
        let u = g * group + item % group;
        let o_at = ((b * t_len + t) * nq + u) * hd + 4u * col;
        // A fully masked row: zeros (the sum of 0 * V: NaN where a value is not finite), or the
        // plain average of V over all S keys.
        var o = select(vsum / f32(s_len), acc[k], !keras_rows);
        if (flags & 1u) != 0u {
            var total = row_sum[i];
            if params.sinks == 1u {
                total += exp(sinks[u] - row_max[i]);
            }
            o = acc[k] * select(1.0 / total, bitcast<f32>(0x7fc00000u), nan_row);
        }
        for (var e = 0u; e < 4u; e++) {
            var x = o[e];
            if params.use_gate != 0u {
                x *= f32(gate[o_at + e]);
            }
            out[o_at + e] = Out(x);
        }
    }
}
