//! The dense projections of the layer (Keras `EinsumDense`), in f64.
//!
//! Every kernel of the layer, flattened, is a plain `[in, out]` matrix: the Q/K/V/gate kernels
//! `(D, N, H)` are `(D, N*H)` with column `u*H + h`, and the output kernel `(Nq, H, Dq)` is
//! `(Nq*H, Dq)` with row `u*H + h` (SEMANTICS.md). So one row-major matrix product covers them all.

/// Rows of `x` processed together, so each kernel row read from memory serves several rows.
const ROW_BLOCK: usize = 8;

/// `x (rows, in) · kernel (in, out) + bias (out)`, accumulated in f64.
///
/// `x` is any slice of `rows * in_dim` values that converts to f64 (the f32 inputs or the f64
/// intermediate `O`). Each output starts at its bias and adds `x[r, k] * kernel[k, j]` for k in
/// increasing order. The loops run in i-k-j order over blocks of rows, so the inner loop streams
/// one kernel row, reused for every row of the block. Callers guarantee the lengths (they come
/// from a validated `Problem` and validated `Weights`).
pub(crate) fn project<X: Copy + Into<f64>>(
    x: &[X],
    rows: usize,
    in_dim: usize,
    kernel: &[f32],
    bias: Option<&[f32]>,
) -> Vec<f64> {
    let out_dim = kernel.len().checked_div(in_dim).unwrap_or(0);
    let mut out = vec![0.0f64; rows * out_dim];
    if out_dim == 0 || in_dim == 0 {
        return out;
    }
    if let Some(bias) = bias {
        for out_row in out.chunks_exact_mut(out_dim) {
            for (o, &b) in out_row.iter_mut().zip(bias) {
                *o = f64::from(b);
            }
        }
    }
    let x_blocks = x.chunks(ROW_BLOCK * in_dim);
    for (x_block, out_block) in x_blocks.zip(out.chunks_mut(ROW_BLOCK * out_dim)) {
        for (k, w_row) in kernel.chunks_exact(out_dim).enumerate() {
            let rows = x_block.chunks_exact(in_dim).zip(out_block.chunks_exact_mut(out_dim));
            for (x_row, out_row) in rows {
                let xk: f64 = x_row[k].into();
                for (o, &w) in out_row.iter_mut().zip(w_row) {
                    *o += xk * f64::from(w);
                }
            }
        }
    }
    out
}

/// The logistic sigmoid `1 / (1 + e^-x)`.
pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_product_with_bias() {
        // x (2, 3) · w (3, 2) + b.
        let x = [1.0f32, 2.0, 3.0, -1.0, 0.0, 0.5];
        let w = [1.0f32, 0.0, 0.0, 1.0, 2.0, -1.0];
        let y = project(&x, 2, 3, &w, Some(&[10.0, 20.0]));
        assert_eq!(y, vec![1.0 + 6.0 + 10.0, 2.0 - 3.0 + 20.0, -1.0 + 1.0 + 10.0, -0.5 + 20.0]);
        let y = project(&x, 2, 3, &w, None);
        assert_eq!(y[0], 7.0);
    }

    #[test]
    fn sigmoid_values() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!((sigmoid(2.0) - 0.880_797_077_977_882_3).abs() < 1e-15);
        assert_eq!(sigmoid(f64::INFINITY), 1.0);
        assert_eq!(sigmoid(f64::NEG_INFINITY), 0.0);
    }
}
