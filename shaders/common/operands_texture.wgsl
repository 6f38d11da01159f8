// A matmul's operands A (m x k) and B (k x n) as rgba32float textures of k / 4 x m and n / 4 x k
// texels (A packed by pack_texture.wgsl, B the weight's texture): `load_a(row, c4)` is columns
// 4 c4 .. 4 c4 + 3 of A's row `row`, `load_b` the same of B. On CPU adapters a texel fetch is one
// gather where a storage-buffer load is a loop over the SIMD lanes.
@group(0) @binding(1) var a: texture_2d<f32>;
@group(0) @binding(2) var b: texture_2d<f32>;

fn load_a(row: u32, c4: u32) -> vec4<f32> {
    return textureLoad(a, vec2<u32>(c4, row), 0);
}

fn load_b(row: u32, c4: u32) -> vec4<f32> {
    return textureLoad(b, vec2<u32>(c4, row), 0);
}
