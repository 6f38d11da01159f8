// Packs a row-major f32 matrix of params.pack_rows rows and params.pack_cols columns (a multiple of
// 4) into an rgba32float texture of pack_cols / 4 x pack_rows texels: texel (c, r) holds columns
// 4c..4c+3 of row r. The A operand of the textured matmuls, which read
// it with texel fetches (on CPU adapters a gather, where a storage-buffer load is a loop over lanes),
// where the input cannot be a copy source (plans pack with copies: Plan::packing_by_passes_from).
// Each invocation packs one texel column over ROWS rows: the grid's rows are those of the matmul's
// 128-row tiles, so the chunking that fits the matmul's grid fits this one.

@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var dst: texture_storage_2d<rgba32float, write>;

const ROWS: u32 = 128u;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let k4 = params.pack_cols / 4u;
    let col = gid.x;
    if col >= k4 {
        return;
    }
    let row0 = gid.y * ROWS;
    let rows = min(ROWS, params.pack_rows - min(row0, params.pack_rows));
    for (var r = 0u; r < rows; r++) {
        let row = row0 + r;
        textureStore(dst, vec2<u32>(col, row), src[row * k4 + col]);
    }
}
