// Masked softmax over each (b, u, t) row of the logits, in place, with Keras' semantics:
// masked logits replaced by -1e9, softmax over s, masked probabilities then set to exactly 0.
// A fully masked row is all zeros (masked_rows = 0) or uniform 1/S (masked_rows = 1, Keras' plain call).
// The attention extensions: the soft cap applies to each logit first (common/mask.wgsl), and the
// head's sink logit joins the row's max and denominator (not its probabilities).
// One workgroup of 64 per row: workgroup x = query within the chunk, y = (b, u) row within the chunk.
// Masks see global indices: batch b_base + b, query t_base + x.

@group(0) @binding(1) var<storage, read> masks: array<u32>;
@group(0) @binding(2) var<storage, read_write> probs: array<f32>; // (B, Nq, T, S)
// Each query head's sink logit (params.sinks = 1): one more term of every row's denominator.
@group(0) @binding(3) var<storage, read> sinks: array<f32>;

const WG: u32 = 64u;
const MASKED: f32 = -1.0e9;

var<workgroup> red: array<f32, 64>;
var<workgroup> seen: array<u32, 64>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let t = params.t_base + wid.x;
    let bu = params.bu_base + wid.y;
    let b = params.b_base + bu / params.nq;
    let u = bu % params.nq;
    let s_len = params.s_len;
    let row = (wid.y * params.t_count + wid.x) * s_len;

    // Row maximum over the (replaced) logits, and whether any key is visible.
    var mx = MASKED;
    var any_visible = 0u;
    for (var s = lid; s < s_len; s += WG) {
        if visible(b, u, t, s) {
            mx = max(mx, soft_capped(probs[row + s]));
            any_visible = 1u;
        }
    }
    red[lid] = mx;
    seen[lid] = any_visible;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if lid < stride {
            red[lid] = max(red[lid], red[lid + stride]);
            seen[lid] = max(seen[lid], seen[lid + stride]);
        }
        workgroupBarrier();
    }
    var row_max = red[0];
    let row_visible = seen[0];
    if params.sinks == 1u {
        row_max = max(row_max, sinks[u]);
    }
    workgroupBarrier();

    var sum = 0.0;
    for (var s = lid; s < s_len; s += WG) {
        if visible(b, u, t, s) {
            sum += exp(soft_capped(probs[row + s]) - row_max);
        }
    }
    red[lid] = sum;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if lid < stride {
            red[lid] += red[lid + stride];
        }
        workgroupBarrier();
    }
    var total = red[0];
    if params.sinks == 1u {
        total += exp(sinks[u] - row_max);
    }
    let inv = 1.0 / total;

    for (var s = lid; s < s_len; s += WG) {
        var p = 0.0;
        if row_visible == 0u {
            if params.masked_rows == 1u {
                p = 1.0 / f32(s_len);
            }
        } else if visible(b, u, t, s) {
            p = exp(soft_capped(probs[row + s]) - row_max) * inv;
        }
        probs[row + s] = p;
    }
}
