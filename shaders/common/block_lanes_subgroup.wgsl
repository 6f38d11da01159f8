// attention_block's lane ids and phase 3's probability loads with subgroup operations
// (Kernel::AttentionBlockTexSubgroup, compiled only where the device has Features::SUBGROUP): the
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
