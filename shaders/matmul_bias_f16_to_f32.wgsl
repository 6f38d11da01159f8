// The f16 output projection: y[m, n] = A[m, k] · B[k, n] (+ bias[n]) with A the f16 attention output
// and B, bias the f16 weights; the product accumulates in f32 (common/matmul_rb_f16.wgsl) and the
// layer output is stored as f32 (what callers read back).

@group(0) @binding(1) var<storage, read> a: array<f16>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

fn load_a(i: u32) -> f32 {
    return f32(a[i]);
}

fn store_c(i: u32, x: f32) {
    c[i] = x;
}

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    matmul_rb_f16(gid);
}
