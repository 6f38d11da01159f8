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

// Whether the lane's subgroup shares phase 1's query fetches: never in this form.
fn q_sharing(ids: LaneIds, io: u32) -> bool {
    return false;
}

// The item (of the lane's 8) whose query row the lane fetches for its subgroup: none in this form.
fn q_item(ids: LaneIds) -> u32 {
    return 0u;
}

// Phase 1's logits of 8 query rows and 4 key rows: common/dots8x4.wgsl.
fn logits8x4(
    share: bool, mine: vec2<u32>,
    q0: vec2<u32>, q1: vec2<u32>, q2: vec2<u32>, q3: vec2<u32>,
    q4: vec2<u32>, q5: vec2<u32>, q6: vec2<u32>, q7: vec2<u32>,
    k0_at: vec2<u32>, k1_at: vec2<u32>, k2_at: vec2<u32>, k3_at: vec2<u32>,
    h4n: u32,
) -> Dots8x4 {
    return dots8x4(q0, q1, q2, q3, q4, q5, q6, q7, k0_at, k1_at, k2_at, k3_at, h4n);
}
