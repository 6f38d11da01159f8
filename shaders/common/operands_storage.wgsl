// A matmul's operands A (m x k) and B (k x n) as row-major f32 storage buffers, read a vec4 at a time:
// `load_a(row, c4)` is columns 4 c4 .. 4 c4 + 3 of A's row `row`, `load_b` the same of B.
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;

fn load_a(row: u32, c4: u32) -> vec4<f32> {
    return a[row * (params.k / 4u) + c4];
}

fn load_b(row: u32, c4: u32) -> vec4<f32> {
    return b[row * (params.n / 4u) + c4];
}
