// Whether x is a NaN, from its bits: drivers compiling with fast-math (lavapipe) fold x != x to false.
fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}
