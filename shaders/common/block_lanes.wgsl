// attention_block's lane ids and phase 3's probability loads, in the portable form (no subgroups):
// common/block_lanes_subgroup.wgsl declares the same items with subgroup operations.

// The entry point's invocation ids.
struct LaneIds {
    @builtin(local_invocation_index) lid: u32,
}

// The probabilities of the block's 16 items for one key, 4 items to a vec4.
struct P4 {
    p0: vec4<f32>,
    p1: vec4<f32>,
    p2: vec4<f32>,
    p3: vec4<f32>,
}

// Whether the lane's subgroup shares its probability loads: never in this form.
fn p_sharing(ids: LaneIds, kg: u32, busy: bool) -> bool {
    return false;
}

// The probabilities of key j of the chunk: four workgroup loads.
fn load_p4(j: u32, share: bool, ids: LaneIds) -> P4 {
    return P4(sc[j * 4u], sc[j * 4u + 1u], sc[j * 4u + 2u], sc[j * 4u + 3u]);
}
