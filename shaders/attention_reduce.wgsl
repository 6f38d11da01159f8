// One file for both precisions: `Elem` (common/store_f32.wgsl or common/f16.wgsl) is the storage
// type of the gate and the output; the partial states and all arithmetic are f32.
// Combines the split partial states of attention_fused in split mode (flash-decoding): per query and
// head, the running maxima and sums of the splits are merged, the unnormalised outputs rescaled and
// summed, then divided by the total sum (with the head's sink logit, params.sinks = 1). A row with no
// visible key in any split gives zeros, or the average of V over all S keys (masked_rows = 1); a
// NaN logit in any split makes the row NaN.
// Invocation = item t * R + r of kv group g; workgroup z = (b local to the batch chunk) * Nkv + g.

@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read> gate: array<Elem>;      // (B, T, Nq, H), when use_gate
@group(0) @binding(3) var<storage, read_write> out: array<Elem>; // (B, T, Nq, H)
// Each query head's sink logit (params.sinks = 1): one more term of a row's denominator.
@group(0) @binding(4) var<storage, read> sinks: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let hd = params.head_dim;
    let nkv = params.nkv;
    let group = params.group;
    let item_count = params.t_len * group;
    let item = wid.x * 64u + lid;
    if item >= item_count {
        return;
    }
    let b = wid.z / nkv;
    let g = wid.z % nkv;
    let t = item / group;
    let u = g * group + item % group;
    let splits = (params.s_len + params.split_keys - 1u) / params.split_keys;
    let stride = 2u * hd + 2u;
    let first = ((b * nkv + g) * splits * item_count + item) * stride;
    let step = item_count * stride;

    var m_all = -3.4e38;
    var nan_row = false;
    for (var sp = 0u; sp < splits; sp++) {
        let at = first + sp * step;
        let l = partials[at + 2u * hd + 1u];
        nan_row = nan_row || is_nan(l);
        if l > 0.0 {
            m_all = max(m_all, partials[at + 2u * hd]);
        }
    }
    var l_all = 0.0;
    for (var sp = 0u; sp < splits; sp++) {
        let at = first + sp * step;
        let l = partials[at + 2u * hd + 1u];
        if l > 0.0 {
            l_all += l * exp(partials[at + 2u * hd] - m_all);
        }
    }
    // The sink joins the denominator of a row that saw a key (a row that saw none gives zeros).
    if params.sinks == 1u && l_all > 0.0 {
        let m_sink = max(m_all, sinks[u]);
        l_all = l_all * exp(m_all - m_sink) + exp(sinks[u] - m_sink);
        m_all = m_sink;
    }
    let o_at = ((b * params.t_len + t) * params.nq + u) * hd;
    for (var h = 0u; h < hd; h++) {
        // Every split's output counts, weighted 0 where it saw no key: its sum of 0 * V is NaN where a
        // masked value is not finite, which reaches the row as in Keras.
        var o = 0.0;
        for (var sp = 0u; sp < splits; sp++) {
            let at = first + sp * step;
            let l = partials[at + 2u * hd + 1u];
            o += partials[at + h] * select(0.0, exp(partials[at + 2u * hd] - m_all), l > 0.0);
        }
        if l_all > 0.0 {
            o /= l_all;
        } else if params.masked_rows == 1u {
            o = 0.0;
            for (var sp = 0u; sp < splits; sp++) {
                o += partials[first + sp * step + hd + h];
            }
            o /= f32(params.s_len);
        }
        if nan_row {
            o = bitcast<f32>(0x7fc00000u);
        }
        if params.use_gate != 0u {
            o *= f32(gate[o_at + h]);
        }
        out[o_at + h] = Elem(o);
    }
}
