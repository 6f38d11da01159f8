// Whether the projected values V hold a NaN or an infinity (Kernel::CheckValues), for the block
// attention: it skips its scan of the keys it does not visit (causal and window skip) where every
// word this kernel writes is 0 (and fully masked rows give zeros), since that scan only looks there
// for non-finite values of V, which make the output NaN in Keras (0 * NaN).
//
// Workgroup w (of gqa_core::kernels::check_values::FLAG_WORDS) reads vec4s w * 256 + lid, then
// every FLAG_WORDS * 256 further, of the first params.check_vec4s, and writes word w: 1 where one of
// them is not finite, else 0. With params.values_unknown = 1 it writes 1 ("unknown") without
// reading: a cached call, whose values are in the cache.

@group(0) @binding(1) var<storage, read> values: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> v_flags: array<u32>;

var<workgroup> bad: atomic<u32>;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    if lid == 0u {
        atomicStore(&bad, params.values_unknown);
    }
    workgroupBarrier();
    // Exponent bits all set: an infinity or a NaN (a bit test, which no fast-math folds away).
    var mine = vec4<u32>(0u);
    for (var i = wid.x * 256u + lid; i < params.check_vec4s; i += groups.x * 256u) {
        mine |= vec4<u32>((bitcast<vec4<u32>>(values[i]) & vec4<u32>(0x7f800000u)) == vec4<u32>(0x7f800000u));
    }
    if any(mine != vec4<u32>(0u)) {
        atomicOr(&bad, 1u);
    }
    workgroupBarrier();
    if lid == 0u {
        v_flags[wid.x] = atomicLoad(&bad);
    }
}
