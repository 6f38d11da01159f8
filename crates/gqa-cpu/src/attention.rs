//! The attention core in f32 (SEMANTICS.md steps 4 to 8), flash style: for one sequence, one kv
//! head and a tile of query rows, every query head of the kv group (R of them) and every row of
//! the tile form one block of `M = rows x R` queries that walks the keys in blocks; each K and V
//! block is read once for all of them (K and V are never repeated), through two matrix products
//! per block (`L = Q·Kᵀ`, `acc += P·V`) and an online softmax in between. Tiles run in parallel on
//! rayon's pool.
//!
//! Keras' semantics, exactly as `gqa_ref` computes them:
//! - masked logits get probability exactly 0; a row that sees no key is zeros, or under
//!   `MaskedRows::KerasDefault` the plain average of V over all S keys;
//! - dropout multiplies the normalized probabilities (the counter-based hash of `gqa_core::dropout`);
//! - masked probabilities still multiply V, so a NaN or an infinity in V reaches every row of its
//!   kv group: keys outside every row's causal or window range are skipped only where their V is
//!   finite;
//! - scores, when asked, are the probabilities before dropout (a second pass over the keys with the
//!   rows' final maximum and sum).

use gqa_core::{MaskedRows, Problem, dropout};
use rayon::prelude::*;

use crate::exp::exp;
use crate::mask::Visibility;
use crate::matmul::{Rows, Threads, product};
use crate::softmax;

/// Query rows (times the group's heads) per tile: M = max(1, TILE_QUERIES / R) rows x R heads.
const TILE_QUERIES: usize = 64;
/// Keys per block of the walk.
const KEY_BLOCK: usize = 256;

/// Projected keys or values (B, S, Nkv, H), sequence `b` starting at `b * batch_stride`: a call's
/// own projection (`batch_stride = S·Nkv·H`) or a KV cache (`capacity·Nkv·H`).
#[derive(Clone, Copy)]
pub(crate) struct KvView<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Elements from one sequence to the next.
    pub batch_stride: usize,
}

/// The attention's result: O (B, T, Nq, H) and the scores (B, Nq, T, S) when asked.
pub(crate) struct Attended {
    pub o: Vec<f32>,
    pub scores: Option<Vec<f32>>,
}

/// One tile: sequence `b`, kv head `g`, query rows `t0..t1`.
#[derive(Clone, Copy)]
struct Tile {
    b: usize,
    g: usize,
    t0: usize,
    t1: usize,
}

/// What a tile computes: its rows of O (M x H, row `(t - t0)·R + r`) and of the scores (M x S).
struct TileOut {
    o: Vec<f32>,
    scores: Option<Vec<f32>>,
}

/// Runs the attention of `p` on projected `q` (B, T, Nq, H), `k` and `v` (S keys each).
pub(crate) fn attend(p: &Problem, q: &[f32], k: KvView<'_>, v: KvView<'_>) -> Attended {
    let (nb, nt, nu, nkv, nh) = (p.batch, p.target_len, p.num_query_heads, p.num_kv_heads, p.head_dim);
    let r = p.group_size();
    let rows_per_tile = (TILE_QUERIES / r).clamp(1, nt.max(1));
    let tiles_per_kv = nt.div_ceil(rows_per_tile);
    let tiles: Vec<Tile> = (0..nb)
        .flat_map(|b| (0..nkv).flat_map(move |g| (0..tiles_per_kv).map(move |i| (b, g, i))))
        .map(|(b, g, i)| Tile { b, g, t0: i * rows_per_tile, t1: ((i + 1) * rows_per_tile).min(nt) })
        .collect();
    // Tiles keep every thread busy where there are enough; else each tile's keys are split too.
    let threads = rayon::current_num_threads();
    let key_splits = if tiles.len() >= threads { 1 } else { (2 * threads).div_ceil(tiles.len()) };
    let walk = Walk { p, vis: Visibility::new(p), q, k, v, key_splits };
    let outs: Vec<TileOut> = tiles.par_iter().map(|&tile| walk.tile(tile)).collect();

    let mut o = vec![0.0f32; nb * nt * nu * nh];
    let mut scores = p.return_scores.then(|| vec![0.0f32; nb * nu * nt * p.source_len]);
    for (tile, out) in tiles.iter().zip(outs) {
        for t in tile.t0..tile.t1 {
            for i in 0..r {
                let m = (t - tile.t0) * r + i;
                let u = tile.g * r + i;
                o[((tile.b * nt + t) * nu + u) * nh..][..nh].copy_from_slice(&out.o[m * nh..][..nh]);
                if let (Some(all), Some(mine)) = (scores.as_mut(), out.scores.as_ref()) {
                    let ns = p.source_len;
                    all[((tile.b * nu + u) * nt + t) * ns..][..ns].copy_from_slice(&mine[m * ns..][..ns]);
                }
            }
        }
    }
    Attended { o, scores }
}

/// The inputs every tile reads.
struct Walk<'a> {
    p: &'a Problem,
    vis: Visibility<'a>,
    q: &'a [f32],
    k: KvView<'a>,
    v: KvView<'a>,
    /// Parts each tile's keys are split into (at most one per block of keys).
    key_splits: usize,
}

/// The online softmax's state of a tile's rows after some of the keys: the outputs not yet
/// divided by the sums (M x H), each row's maximum and sum, and whether it saw a key.
struct Partial {
    acc: Vec<f32>,
    max: Vec<f32>,
    sum: Vec<f32>,
    seen: Vec<bool>,
}

impl Partial {
    /// The state after all the parts' keys: each part rescaled to the rows' overall maximum
    /// (a part whose row saw nothing weighs 0, times its `acc`: 0, or NaN from V, as in one walk).
    fn merge(parts: Vec<Partial>) -> Partial {
        let mut parts = parts.into_iter();
        let mut total = parts.next().expect("at least one part");
        let nh = total.acc.len() / total.max.len().max(1);
        for part in parts {
            for m in 0..total.max.len() {
                let new_max = total.max[m].max(part.max[m]);
                let (mine, theirs) = if new_max == f32::NEG_INFINITY {
                    (1.0, 1.0)
                } else {
                    (exp(total.max[m] - new_max), exp(part.max[m] - new_max))
                };
                for (a, x) in total.acc[m * nh..][..nh].iter_mut().zip(&part.acc[m * nh..][..nh]) {
                    *a = *a * mine + x * theirs;
                }
                total.sum[m] = total.sum[m] * mine + part.sum[m] * theirs;
                total.max[m] = new_max;
                total.seen[m] |= part.seen[m];
            }
        }
        total
    }
}

/// The running state of one query row of a tile.
#[derive(Clone, Copy)]
struct RowState {
    t: usize,
    u: usize,
    range: (usize, usize),
    seen: bool,
}

impl Walk<'_> {
    /// Key `s` of kv head `g` of sequence `b`: rows of H from there on are `Nkv·H` apart.
    fn at(&self, view: KvView<'_>, b: usize, s: usize, g: usize) -> usize {
        b * view.batch_stride + (s * self.p.num_kv_heads + g) * self.p.head_dim
    }

    /// Keys `s0..s1` of kv head `g` of sequence `b` as a matrix (s1 - s0) x H.
    fn block<'v>(&self, view: KvView<'v>, b: usize, g: usize, s0: usize, s1: usize) -> Rows<'v> {
        let stride = self.p.num_kv_heads * self.p.head_dim;
        Rows { data: &view.data[self.at(view, b, s0, g)..], rows: s1 - s0, cols: self.p.head_dim, stride }
    }

    /// Whether V of kv head `g` of sequence `b` is finite at every key outside `lo..hi`.
    fn finite_outside(&self, b: usize, g: usize, lo: usize, hi: usize) -> bool {
        let nh = self.p.head_dim;
        (0..lo).chain(hi..self.p.source_len).all(|s| {
            let at = self.at(self.v, b, s, g);
            self.v.data[at..at + nh].iter().all(|x| x.is_finite())
        })
    }

    fn tile(&self, tile: Tile) -> TileOut {
        let p = self.p;
        let (nt, nu, nh, ns) = (p.target_len, p.num_query_heads, p.head_dim, p.source_len);
        let r = p.group_size();
        let Tile { b, g, t0, t1 } = tile;
        let m_rows = (t1 - t0) * r;
        let scale = p.scale() as f32;

        // The tile's queries, scaled (Keras scales Q before the product).
        let mut qs = vec![0.0f32; m_rows * nh];
        let mut rows = Vec::with_capacity(m_rows);
        for t in t0..t1 {
            let range = self.vis.range(b, t);
            for i in 0..r {
                let u = g * r + i;
                let m = rows.len();
                let src = &self.q[((b * nt + t) * nu + u) * nh..][..nh];
                for (d, x) in qs[m * nh..][..nh].iter_mut().zip(src) {
                    *d = x * scale;
                }
                rows.push(RowState { t, u, range, seen: false });
            }
        }

        // The keys any row may see; the rest are skipped where their V is finite.
        let lo = rows.iter().filter(|x| x.range.0 < x.range.1).map(|x| x.range.0).min().unwrap_or(0);
        let hi = rows.iter().map(|x| x.range.1).max().unwrap_or(0).max(lo);
        let (lo, hi) = if self.finite_outside(b, g, lo, hi) { (lo, hi) } else { (0, ns) };

        // Split the keys over several tasks where the tiles alone leave threads idle (a decode
        // step of few sequences and kv heads), then merge the parts' running states.
        let blocks = (hi - lo).div_ceil(KEY_BLOCK);
        let parts = self.key_splits.min(blocks).max(1);
        let per_part = blocks.div_ceil(parts) * KEY_BLOCK;
        let walk = |i: usize| {
            let from = (lo + i * per_part).min(hi);
            self.walk(b, g, &qs, &rows, from, (from + per_part).min(hi))
        };
        let Partial { mut acc, max, sum, seen } = if parts == 1 {
            walk(0)
        } else {
            let partials: Vec<Partial> = (0..parts).into_par_iter().map(walk).collect();
            Partial::merge(partials)
        };
        for (row, seen) in rows.iter_mut().zip(seen) {
            row.seen = seen;
        }

        for (m, row) in rows.iter().enumerate() {
            let o = &mut acc[m * nh..][..nh];
            if row.seen {
                for x in o.iter_mut() {
                    *x /= sum[m];
                }
            } else if p.masked_rows == MaskedRows::KerasDefault {
                self.uniform_row(b, g, row, o);
            }
            // Else the zeros policy: acc holds the zero probabilities times V (0, or NaN from V).
        }
        let scores = p.return_scores.then(|| self.scores(tile, &qs, &rows, &max, &sum));
        TileOut { o: acc, scores }
    }

    /// The online softmax over keys `from..to` for the tile's rows: their unnormalized outputs,
    /// maxima, sums, and whether each saw a key.
    fn walk(&self, b: usize, g: usize, qs: &[f32], rows: &[RowState], from: usize, to: usize) -> Partial {
        let p = self.p;
        let (nh, m_rows) = (p.head_dim, rows.len());
        let mut part = Partial {
            acc: vec![0.0f32; m_rows * nh],
            max: vec![f32::NEG_INFINITY; m_rows],
            sum: vec![0.0f32; m_rows],
            seen: vec![false; m_rows],
        };
        let mut alpha = vec![1.0f32; m_rows];
        let mut logits = vec![0.0f32; m_rows * KEY_BLOCK.min((to - from).max(1))];
        let dropout = p.dropout.map(|d| (d, (1.0 / (1.0 - f64::from(d.rate))) as f32));
        let mut s0 = from;
        while s0 < to {
            let s1 = (s0 + KEY_BLOCK).min(to);
            let n = s1 - s0;
            let l = &mut logits[..m_rows * n];
            product(l, Rows::dense(qs, m_rows, nh), self.block(self.k, b, g, s0, s1), true, false, Threads::One);
            for ((row, x), seen) in rows.iter().zip(l.chunks_exact_mut(n)).zip(&mut part.seen) {
                *seen |= self.vis.apply(b, row.u, row.t, s0, row.range, x) > 0;
            }
            softmax::update(l, n, &mut part.max, &mut part.sum, &mut alpha);
            for (m, (row, x)) in rows.iter().zip(l.chunks_exact_mut(n)).enumerate() {
                if let Some((spec, keep_scale)) = dropout {
                    for (j, e) in x.iter_mut().enumerate() {
                        let (u, t, s) = (row.u as u32, row.t as u32, (s0 + j) as u32);
                        *e = if dropout::keep(spec.seed, spec.rate, b as u32, u, t, s) { *e * keep_scale } else { 0.0 };
                    }
                }
                if alpha[m] != 1.0 {
                    for a in &mut part.acc[m * nh..][..nh] {
                        *a *= alpha[m];
                    }
                }
            }
            product(
                &mut part.acc,
                Rows::dense(l, m_rows, n),
                self.block(self.v, b, g, s0, s1),
                false,
                true,
                Threads::One,
            );
            s0 = s1;
        }
        part
    }

    /// Keras' plain call on a row that sees no key: probabilities 1/S on every key (then dropout).
    fn uniform_row(&self, b: usize, g: usize, row: &RowState, o: &mut [f32]) {
        let ns = self.p.source_len;
        let w = 1.0 / ns as f32;
        let dropout = self.p.dropout.map(|d| (d, (1.0 / (1.0 - f64::from(d.rate))) as f32));
        o.fill(0.0);
        for s in 0..ns {
            let weight = match dropout {
                Some((spec, keep_scale)) => {
                    let kept = dropout::keep(spec.seed, spec.rate, b as u32, row.u as u32, row.t as u32, s as u32);
                    if kept { w * keep_scale } else { 0.0 }
                }
                None => w,
            };
            let at = self.at(self.v, b, s, g);
            let nh = o.len();
            for (x, v) in o.iter_mut().zip(&self.v.data[at..at + nh]) {
                *x += weight * v;
            }
        }
    }

    /// The tile's probabilities (M x S), before dropout, from the rows' final maximum and sum.
    fn scores(&self, tile: Tile, qs: &[f32], rows: &[RowState], max: &[f32], sum: &[f32]) -> Vec<f32> {
        let p = self.p;
        let (nh, ns) = (p.head_dim, p.source_len);
        let m_rows = rows.len();
        let mut out = vec![0.0f32; m_rows * ns];
        let mut logits = vec![0.0f32; m_rows * KEY_BLOCK.min(ns.max(1))];
        let mut s0 = 0;
        while s0 < ns {
            let s1 = (s0 + KEY_BLOCK).min(ns);
            let n = s1 - s0;
            let l = &mut logits[..m_rows * n];
            product(
                l,
                Rows::dense(qs, m_rows, nh),
                self.block(self.k, tile.b, tile.g, s0, s1),
                true,
                false,
                Threads::One,
            );
            for (m, (row, x)) in rows.iter().zip(l.chunks_exact_mut(n)).enumerate() {
                let dst = &mut out[m * ns + s0..][..n];
                if !row.seen {
                    let uniform = p.masked_rows == MaskedRows::KerasDefault;
                    dst.fill(if uniform { 1.0 / ns as f32 } else { 0.0 });
                    continue;
                }
                self.vis.apply(tile.b, row.u, row.t, s0, row.range, x);
                for (d, e) in dst.iter_mut().zip(x.iter()) {
                    *d = if *e == f32::NEG_INFINITY { 0.0 } else { exp(*e - max[m]) / sum[m] };
                }
            }
            s0 = s1;
        }
        out
    }
}
