// The masked softmax of softmax_masked.wgsl with its row reductions done by subgroup operations:
// the same semantics (Keras' replace-then-zero masking, the fully-masked-row policy, NaN
// propagation, the soft cap and the sinks), the same grid (one workgroup of 64 per (b, u, t) row), the same per-element work;
// only the max / any-visible / sum reductions differ. Compiled only where the device has
// wgpu::Features::SUBGROUP.
//
// WGSL spells this module's requirement `enable subgroups;`, but naga 30 rejects that directive as
// unimplemented (docs: WGPU-NOTES.md) and takes the subgroup builtins under its SUBGROUP capability
// instead; add the directive when naga accepts it.
//
// Correct for any subgroup size (1 to 128, dividing 64 or not, larger than the workgroup or not) and
// any placement of invocations in subgroups: nothing here assumes a size or a layout.
//   1. every invocation reduces its strided elements (as the baseline does);
//   2. subgroupMax / subgroupAdd reduce over the subgroup's active invocations (all of them: the
//      calls are in the workgroup's uniform control flow);
//   3. one elected invocation per subgroup (the one with the smallest subgroup_invocation_id, so no
//      assumption that id 0 is active) writes the subgroup's result to slot subgroup_id, and after
//      one barrier every invocation combines the num_subgroups (<= 64) slots in the same order, so
//      all invocations hold identical row results.
// Two barriers per row instead of the baseline's fifteen. Each reduction has its own slots, so no
// barrier is needed before a slot is reused.

@group(0) @binding(1) var<storage, read> masks: array<u32>;
@group(0) @binding(2) var<storage, read_write> probs: array<f32>; // (B, Nq, T, S)
// Each query head's sink logit (params.sinks = 1): one more term of every row's denominator.
@group(0) @binding(3) var<storage, read> sinks: array<f32>;

const WG: u32 = 64u;
const MASKED: f32 = -1.0e9;

// One slot per subgroup: at most 64 subgroups (subgroups of one invocation).
var<workgroup> sg_max: array<f32, 64>;
var<workgroup> sg_seen: array<u32, 64>;
var<workgroup> sg_sum: array<f32, 64>;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_invocation_id) sg_lane: u32,
    @builtin(subgroup_id) sg_id: u32,
    @builtin(num_subgroups) sg_count: u32,
) {
    let t = params.t_base + wid.x;
    let bu = params.bu_base + wid.y;
    let b = params.b_base + bu / params.nq;
    let u = bu % params.nq;
    let s_len = params.s_len;
    let row = (wid.y * params.t_count + wid.x) * s_len;
    let leader = sg_lane == subgroupMin(sg_lane);

    // Row maximum over the (replaced) logits, and whether any key is visible.
    var mx = MASKED;
    var any_visible = 0u;
    for (var s = lid; s < s_len; s += WG) {
        if visible(b, u, t, s) {
            mx = max(mx, soft_capped(probs[row + s]));
            any_visible = 1u;
        }
    }
    let sub_max = subgroupMax(mx);
    let sub_seen = subgroupMax(any_visible);
    if leader {
        sg_max[sg_id] = sub_max;
        sg_seen[sg_id] = sub_seen;
    }
    workgroupBarrier();
    var row_max = MASKED;
    var row_visible = 0u;
    for (var i = 0u; i < sg_count; i++) {
        row_max = max(row_max, sg_max[i]);
        row_visible = max(row_visible, sg_seen[i]);
    }
    if params.sinks == 1u {
        row_max = max(row_max, sinks[u]);
    }

    var sum = 0.0;
    for (var s = lid; s < s_len; s += WG) {
        if visible(b, u, t, s) {
            sum += exp(soft_capped(probs[row + s]) - row_max);
        }
    }
    let sub_sum = subgroupAdd(sum);
    if leader {
        sg_sum[sg_id] = sub_sum;
    }
    workgroupBarrier();
    var total = 0.0;
    if params.sinks == 1u {
        total = exp(sinks[u] - row_max);
    }
    for (var i = 0u; i < sg_count; i++) {
        total += sg_sum[i];
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
