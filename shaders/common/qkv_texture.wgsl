// Q, K and V of attention_block as rgba32float textures (packed by pack_texture.wgsl; on CPU adapters a
// texel fetch is one gather where a storage-buffer load is a loop over the SIMD lanes): Q is (B * T)
// rows of Nq * H / 4 texels, K and V (B * kv_stride) rows of Nkv * H / 4 texels. Same functions as
// common/qkv_storage.wgsl: row, then vec4 (texel) column.
@group(0) @binding(1) var q_tex: texture_2d<f32>;
@group(0) @binding(2) var k_tex: texture_2d<f32>;
@group(0) @binding(3) var v_tex: texture_2d<f32>;

fn load_q(row: u32, col: u32) -> vec4<f32> {
    return textureLoad(q_tex, vec2<u32>(col, row), 0);
}

fn load_k(row: u32, col: u32) -> vec4<f32> {
    return textureLoad(k_tex, vec2<u32>(col, row), 0);
}

fn load_v(row: u32, col: u32) -> vec4<f32> {
    return textureLoad(v_tex, vec2<u32>(col, row), 0);
}
