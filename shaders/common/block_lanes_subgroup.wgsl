// attention_block's lane ids and phase 3's probability loads with subgroup operations
// (kernel attention_block_tex_subgroup, compiled only where the device has Features::SUBGROUP): the
// same items as common/block_lanes.wgsl. In phase 3 the lanes of one key group read the same four
// vec4s of `sc` for each key; on CPU drivers every workgroup load is a loop over the SIMD lanes, so
// where a subgroup's lanes all share a key group, each lane loads one of the four and takes the
// others by broadcast (a register shuffle there): a quarter of the loads.
//
// Nothing assumes a subgroup size or a layout: sharing needs at least 4 lanes, every lane of the
// subgroup active, and every lane in the same key group, checked at run time (subgroup by
// subgroup); otherwise the lanes load as common/block_lanes.wgsl does.

// The entry point's invocation ids.
struct LaneIds {
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
    @builtin(subgroup_size) sg_size: u32,
}

// Whether the lane's subgroup shares its probability loads (the same answer for all its lanes).
// Called in uniform control flow, every invocation of the workgroup active: a subgroup with fewer
// active lanes than its size (larger than the workgroup) does not share, so lanes 0 to 3 exist
// whenever it does.
fn p_sharing(ids: LaneIds, kg: u32, busy: bool) -> bool {
    let full = subgroupAdd(1u) == ids.sg_size;
    let same = subgroupAll(busy && kg == subgroupBroadcastFirst(kg));
    return ids.sg_size >= 4u && full && same;
}

// The probabilities of key j of the chunk. `share` is uniform over the subgroup and, when set, its
// lanes walk the same keys together, so the broadcasts see every lane. With 8 lanes or more, lane l
// (of the first 8) loads the two floats of items 2 l and 2 l + 1 and the 16 are broadcast as 8 pairs:
// the loads' cost on CPU drivers goes by the floats each lane loads, 2 instead of 4.
fn load_p4(j: u32, share: bool, ids: LaneIds) -> P4 {
    if share && ids.sg_size >= 8u {
        let l = ids.sg_lane & 7u;
        let q = j * 4u + (l >> 1u);
        let c = 2u * (l & 1u);
        let mine = vec2<f32>(sc[q][c], sc[q][c + 1u]);
        return P4(
            vec4<f32>(subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u)),
            vec4<f32>(subgroupBroadcast(mine, 2u), subgroupBroadcast(mine, 3u)),
            vec4<f32>(subgroupBroadcast(mine, 4u), subgroupBroadcast(mine, 5u)),
            vec4<f32>(subgroupBroadcast(mine, 6u), subgroupBroadcast(mine, 7u)),
        );
    }
    if share {
        let mine = sc[j * 4u + (ids.sg_lane & 3u)];
        return P4(subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u), subgroupBroadcast(mine, 2u), subgroupBroadcast(mine, 3u));
    }
    return load_p4_plain(j);
}

// Whether the lane's subgroup shares phase 1's query fetches (the same answer for all its lanes): at
// least 8 lanes, all active, all over the same 8 items (io). Called in uniform control flow, every
// invocation of the workgroup active.
fn q_sharing(ids: LaneIds, io: u32) -> bool {
    let full = subgroupAdd(1u) == ids.sg_size;
    let same = subgroupAll(io == subgroupBroadcastFirst(io));
    return ids.sg_size >= 8u && full && same;
}

// The item (of the lane's 8) whose query row the lane fetches for its subgroup.
fn q_item(ids: LaneIds) -> u32 {
    return ids.sg_lane & 7u;
}

// Phase 1's logits of 8 query rows and 4 key rows. Where the subgroup shares them (`share`, uniform
// over it; every lane active), common/dots8x4_shared.wgsl: 0.77x the kernel's time at T=S=512 on
// lavapipe. The test stays outside the loop: a per-step branch between the two loads was slower
// than either. Otherwise common/dots8x4.wgsl.
fn logits8x4(
    share: bool, mine: vec2<u32>,
    q0: vec2<u32>, q1: vec2<u32>, q2: vec2<u32>, q3: vec2<u32>,
    q4: vec2<u32>, q5: vec2<u32>, q6: vec2<u32>, q7: vec2<u32>,
    k0_at: vec2<u32>, k1_at: vec2<u32>, k2_at: vec2<u32>, k3_at: vec2<u32>,
    h4n: u32,
) -> Dots8x4 {
    if share {
        return dots8x4_shared(mine, k0_at, k1_at, k2_at, k3_at, h4n);
    }
    return dots8x4(q0, q1, q2, q3, q4, q5, q6, q7, k0_at, k1_at, k2_at, k3_at, h4n);
}
