// Q, K and V of attention_block as read-only rgba32float storage textures (packed by pack_texture.wgsl,
// or the KV cache's mirrors): Q is (B * T) rows of Nq * H / 4 texels, K and V (B * kv_stride) rows of
// Nkv * H / 4 texels. On CPU adapters an image load is one gather where a storage-buffer load is a loop
// over the SIMD lanes, and it skips the per-lane mip level arithmetic of a sampled texture's fetch. Same
// functions as common/q_storage.wgsl + common/kv_f32.wgsl: row, then vec4 (texel) column.
@group(0) @binding(1) var q_tex: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var k_tex: texture_storage_2d<rgba32float, read>;
@group(0) @binding(3) var v_tex: texture_storage_2d<rgba32float, read>;

fn load_q(row: u32, col: u32) -> vec4<f32> {
    return textureLoad(q_tex, vec2<u32>(col, row));
}

fn load_k(row: u32, col: u32) -> vec4<f32> {
    return textureLoad(k_tex, vec2<u32>(col, row));
}

fn load_v(row: u32, col: u32) -> vec4<f32> {
    return textureLoad(v_tex, vec2<u32>(col, row));
}
