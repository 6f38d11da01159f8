// A cached call's append into a quantized KV cache (gqa_core::CacheStorage::F16 or Int8): rows
// append_src_row .. + append_rows of the projected keys and values (B * T, Nkv, H) f32 go to the
// cache rows append_dst_row .. + append_rows, stored by append_head of common/append_f16.wgsl or
// common/append_int8.wgsl, bit for bit as gqa_core::CacheStorage::encode_token stores them. One
// invocation per (row, kv head) of the keys, then of the values; H a multiple of 4.
@group(0) @binding(1) var<storage, read> kproj: array<vec4<f32>>;       // (B * T, Nkv, H)
@group(0) @binding(2) var<storage, read> vproj: array<vec4<f32>>;       // (B * T, Nkv, H)
@group(0) @binding(3) var<storage, read_write> kcache: array<u32>;      // (B * capacity, token words)
@group(0) @binding(4) var<storage, read_write> vcache: array<u32>;      // (B * capacity, token words)

fn load_proj(is_k: bool, at: u32) -> vec4<f32> {
    if is_k {
        return kproj[at];
    }
    return vproj[at];
}

fn store_cache(is_k: bool, at: u32, word: u32) {
    if is_k {
        kcache[at] = word;
    } else {
        vcache[at] = word;
    }
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let nkv = params.nkv;
    let heads = params.append_rows * nkv;
    if gid.x >= 2u * heads {
        return;
    }
    let is_k = gid.x < heads;
    let i = gid.x % heads;
    let r = i / nkv;
    let g = i % nkv;
    let src = ((params.append_src_row + r) * nkv + g) * (params.head_dim / 4u);
    append_head(is_k, src, params.append_dst_row + r, g);
}
