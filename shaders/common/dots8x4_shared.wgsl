// common/dots8x4.wgsl's dot products with the 8 query rows shared through the subgroup (compiled only
// where the device has Features::SUBGROUP): lane l fetches query row l % 8 (`mine`) and the 8 are
// broadcast, one fetch of 8 distinct texels per step instead of 8 fetches of one texel each (on CPU
// drivers a fetch costs a whole gather however many lanes read its texel). The caller guarantees
// every lane of the subgroup active, at least 8 of them, lane l's `mine` being row l % 8, and all
// lanes walking the same h4n.
fn dots8x4_shared(mine: vec2<u32>, k0_at: vec2<u32>, k1_at: vec2<u32>, k2_at: vec2<u32>, k3_at: vec2<u32>, h4n: u32) -> Dots8x4 {
    var d = Dots8x4();
    for (var c = 0u; c < h4n; c++) {
        let m = load_q(mine.x, mine.y + c);
        d = fma8x4(
            d,
            subgroupBroadcast(m, 0u), subgroupBroadcast(m, 1u), subgroupBroadcast(m, 2u), subgroupBroadcast(m, 3u),
            subgroupBroadcast(m, 4u), subgroupBroadcast(m, 5u), subgroupBroadcast(m, 6u), subgroupBroadcast(m, 7u),
            load_k(k0_at.x, k0_at.y + c), load_k(k1_at.x, k1_at.y + c), load_k(k2_at.x, k2_at.y + c), load_k(k3_at.x, k3_at.y + c),
        );
    }
    return d;
}
