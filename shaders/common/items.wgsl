// The (query, head-in-group) items of attention_decode and attention_block: item `it` of kv group g
// is query t = it / R of head g * R + it % R (R = params.group).

// Item `it`'s query as (row, first vec4 column) of load_q (common/q_storage.wgsl + common/kv_f32.wgsl or
// common/qkv_texture.wgsl): row b * T + t, column (g * R + it % R) * H / 4.
fn q_at(b: u32, g: u32, it: u32) -> vec2<u32> {
    let t = it / params.group;
    let u = g * params.group + it % params.group;
    return vec2<u32>(b * params.t_len + t, u * (params.head_dim / 4u));
}
