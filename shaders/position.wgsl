// The positional prologue of a layer with attention extensions (gqa_core::kernels::position), in
// place on the projected queries or keys (rows, heads, H): each head RMS-normalized with its
// learned scale (position_flags bit 0; bit 1: times 1 + scale), then its first 2 rope_half features
// rotated as pairs (i, i + rope_half) by the rotary table's (cos, sin) of the row's position, stored
// as they are or interleaved (bit 2: out[2i] = y[i], out[2i + 1] = y[i + rope_half]); the features
// after them pass through normalized. Arithmetic in f32; the table holds cos and sin already scaled
// by the rope's magnitude, one row per position: row (r % position_len) + rope_row_base.
// One workgroup of 64 per (head, row): x = head, y + z * (workgroups along y) = row.

@group(0) @binding(1) var<storage, read_write> x: array<Elem>;
@group(0) @binding(2) var<storage, read> rope: array<f32>;
@group(0) @binding(3) var<storage, read> norm_scale: array<f32>;

const WG: u32 = 64u;

var<workgroup> head: array<f32, 256>;
var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row = wid.z * nwg.y + wid.y;
    if row >= params.position_rows {
        return;
    }
    let h_len = params.head_dim;
    let flags = params.position_flags;
    let base = (row * params.position_heads + wid.x) * h_len;
    for (var i = lid; i < h_len; i += WG) {
        head[i] = f32(x[base + i]);
    }
    workgroupBarrier();

    // The norm's 1 / sqrt(mean(x^2) + eps).
    var inv = 1.0;
    if (flags & 1u) != 0u {
        var sum = 0.0;
        for (var i = lid; i < h_len; i += WG) {
            sum += head[i] * head[i];
        }
        red[lid] = sum;
        workgroupBarrier();
        for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
            if lid < stride {
                red[lid] += red[lid + stride];
            }
            workgroupBarrier();
        }
        inv = 1.0 / sqrt(red[0] / f32(h_len) + params.norm_epsilon);
    }

    let half = params.rope_half;
    let table = ((row % params.position_len) + params.rope_row_base) * half;
    for (var i = lid; i < half; i += WG) {
        let x1 = normed(i, inv, flags);
        let x2 = normed(i + half, inv, flags);
        let c = rope[2u * (table + i)];
        let s = rope[2u * (table + i) + 1u];
        let y1 = x1 * c - x2 * s;
        let y2 = x2 * c + x1 * s;
        if (flags & 4u) != 0u {
            x[base + 2u * i] = Elem(y1);
            x[base + 2u * i + 1u] = Elem(y2);
        } else {
            x[base + i] = Elem(y1);
            x[base + i + half] = Elem(y2);
        }
    }
    for (var i = 2u * half + lid; i < h_len; i += WG) {
        x[base + i] = Elem(normed(i, inv, flags));
    }
}

// Feature i of the staged head, normalized with its scale when the norm is on.
fn normed(i: u32, inv: f32, flags: u32) -> f32 {
    if (flags & 1u) == 0u {
        return head[i];
    }
    var w = norm_scale[i];
    if (flags & 2u) != 0u {
        w += 1.0;
    }
    return head[i] * inv * w;
}
