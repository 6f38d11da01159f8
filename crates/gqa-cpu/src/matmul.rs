//! Matrix products on f32 through faer: the projections (over every thread) and the attention's
//! tiles (one thread each, inside a task of the attention's own parallel loop).
//!
//! Operands are row-major slices with a row stride, so a tile of K or V is read in place from the
//! (B, S, Nkv, H) projection or the KV cache, never copied.

use faer::{Accum, MatMut, MatRef, Par};

/// A row-major matrix view: `rows` x `cols`, row `i` starting at `i * stride`.
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub stride: usize,
}

impl<'a> Rows<'a> {
    /// A dense matrix (stride = cols).
    pub fn dense(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self { data, rows, cols, stride: cols }
    }

    fn view(self) -> MatRef<'a, f32> {
        let len = if self.rows == 0 { 0 } else { (self.rows - 1) * self.stride + self.cols };
        MatRef::from_row_major_slice_with_stride(&self.data[..len], self.rows, self.cols, self.stride)
    }
}

/// Whether a product spreads over the thread pool or runs on the calling thread.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Threads {
    /// Every thread of rayon's current pool.
    All,
    /// The calling thread only (inside a parallel task).
    One,
}

impl Threads {
    fn par(self) -> Par {
        match self {
            Threads::All if rayon::current_num_threads() > 1 => Par::rayon(0),
            _ => Par::Seq,
        }
    }
}

/// `out (a.rows x b.cols, dense) (=|+=) a · b`; with `transpose_b`, `a · bᵀ` (then `b` is
/// `b.cols`-wide rows read as columns: `out` is `a.rows x b.rows`).
pub(crate) fn product(out: &mut [f32], a: Rows<'_>, b: Rows<'_>, transpose_b: bool, add: bool, threads: Threads) {
    let rhs = if transpose_b { b.view().transpose() } else { b.view() };
    let (m, n) = (a.rows, rhs.ncols());
    debug_assert_eq!(a.cols, rhs.nrows());
    let dst = MatMut::from_row_major_slice_mut(&mut out[..m * n], m, n);
    let accum = if add { Accum::Add } else { Accum::Replace };
    faer::linalg::matmul::matmul(dst, accum, a.view(), rhs, 1.0f32, threads.par());
}

/// A dense layer on `rows` rows of `x`: `x (rows, in) · kernel (in, out) + bias`, over every thread.
pub(crate) fn dense(x: &[f32], rows: usize, kernel: &[f32], in_dim: usize, bias: Option<&[f32]>) -> Vec<f32> {
    let out_dim = kernel.len().checked_div(in_dim).unwrap_or(0);
    let mut out = vec![0.0f32; rows * out_dim];
    if rows == 0 || out_dim == 0 {
        return out;
    }
    if in_dim > 0 {
        product(
            &mut out,
            Rows::dense(&x[..rows * in_dim], rows, in_dim),
            Rows::dense(kernel, in_dim, out_dim),
            false,
            false,
            Threads::All,
        );
    }
    if let Some(bias) = bias {
        for row in out.chunks_exact_mut(out_dim) {
            for (o, b) in row.iter_mut().zip(bias) {
                *o += b;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_plain_transposed_and_strided() {
        // a (2x3) · b (3x2).
        let a = [1.0, 2.0, 3.0, -1.0, 0.0, 0.5];
        let b = [1.0, 0.0, 0.0, 1.0, 2.0, -1.0];
        let mut out = [9.0f32; 4];
        product(&mut out, Rows::dense(&a, 2, 3), Rows::dense(&b, 3, 2), false, false, Threads::One);
        assert_eq!(out, [7.0, -1.0, 0.0, -0.5]);
        // Added to what is there.
        product(&mut out, Rows::dense(&a, 2, 3), Rows::dense(&b, 3, 2), false, true, Threads::All);
        assert_eq!(out, [14.0, -2.0, 0.0, -1.0]);
        // a · bᵀ with b's rows 3 apart in memory (a strided tile of a wider matrix).
        let bt = [1.0, 0.0, 2.0, 99.0, 0.0, 1.0, -1.0];
        let rows = Rows { data: &bt, rows: 2, cols: 3, stride: 4 };
        let mut out = [0.0f32; 4];
        product(&mut out, Rows::dense(&a, 2, 3), rows, true, false, Threads::One);
        assert_eq!(out, [7.0, -1.0, 0.0, -0.5]);
    }

    #[test]
    fn dense_adds_the_bias() {
        let y = dense(&[1.0, 2.0], 1, &[1.0, 2.0, 3.0, 4.0], 2, Some(&[0.5, -0.5]));
        assert_eq!(y, [7.5, 9.5]);
        assert_eq!(dense(&[], 0, &[1.0], 1, None), Vec::<f32>::new());
    }
}
