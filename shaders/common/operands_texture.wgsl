// A matmul's operands A (m x k) and B (k x n) as read-only rgba32float storage textures of k / 4 x m
// and n / 4 x k texels (A packed by pack_texture.wgsl, B the weight's texture): `load_a(row, c4)` is
// columns 4 c4 .. 4 c4 + 3 of A's row `row`, `load_b` the same of B. On CPU adapters an image load is
// one gather where a storage-buffer load is a loop over the SIMD lanes, and it skips the per-lane mip
// level arithmetic of a sampled texture's fetch.
@group(0) @binding(1) var a: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var b: texture_storage_2d<rgba32float, read>;

fn load_a(row: u32, c4: u32) -> vec4<f32> {
    return textureLoad(a, vec2<u32>(c4, row));
}

fn load_b(row: u32, c4: u32) -> vec4<f32> {
    return textureLoad(b, vec2<u32>(c4, row));
}
