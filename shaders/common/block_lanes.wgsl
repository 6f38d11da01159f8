// attention_block's lane ids and phase 3's probability loads, in the portable form (no subgroups):
// common/block_lanes_subgroup.wgsl declares the same items with subgroup operations.

// The entry point's invocation ids.
struct LaneIds {
    @builtin(local_invocation_index) lid: u32,
}

// Whether the lane's subgroup shares its probability loads: never in this form.
fn p_sharing(ids: LaneIds, kg: u32, busy: bool) -> bool {
    return false;
}

// The probabilities of key j of the chunk: four workgroup loads.
fn load_p4(j: u32, share: bool, ids: LaneIds) -> P4 {
    return load_p4_plain(j);
}
