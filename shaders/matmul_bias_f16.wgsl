// The f16 projections (Q, K, V, gate): C[m, n] = A[m, k] · B[k, n] (+ bias[n]) (then sigmoid).
// A is the layer's f32 input, rounded to f16 as it is loaded (Keras casts its inputs to the compute
// dtype); B and bias are the f16 weights; the product accumulates in f32 (common/matmul_rb_f16.wgsl)
// and C, the projected heads, is stored as f16.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f16>;

fn load_a(i: u32) -> f32 {
    return f32(f16(a[i]));
}

fn store_c(i: u32, x: f32) {
    c[i] = f16(x);
}

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    matmul_rb_f16(gid);
}
