//! Which keys a query row sees (SEMANTICS.md step 2), evaluated row by row inside the attention's
//! tiles: the causal mask and the sliding window as a key range per row, the explicit masks
//! (attention mask through its broadcast strides, value and key padding) per element. No
//! (B, Nq, T, S) array is built.

use gqa_core::{BroadcastStrides, Problem};

/// The masks of one call, ready to be asked per row.
pub(crate) struct Visibility<'a> {
    batch: usize,
    target_len: usize,
    source_len: usize,
    causal: bool,
    window: Option<usize>,
    shift: i64,
    query: Option<&'a [bool]>,
    attention: Option<(&'a [bool], BroadcastStrides)>,
    /// value AND key padding (B, S), when either is given.
    keys: Option<Vec<bool>>,
}

impl<'a> Visibility<'a> {
    /// The masks of `p` (validated by `Problem::new`: every mask fits).
    pub fn new(p: &'a Problem) -> Self {
        let values = &p.mask_values;
        let keys = match (&values.value, &values.key) {
            (None, None) => None,
            (v, k) => Some(
                (0..p.batch * p.source_len)
                    .map(|i| v.as_ref().is_none_or(|m| m.data()[i]) && k.as_ref().is_none_or(|m| m.data()[i]))
                    .collect(),
            ),
        };
        Self {
            batch: p.batch,
            target_len: p.target_len,
            source_len: p.source_len,
            causal: p.mask.causal.is_some(),
            window: p.mask.window,
            shift: p.mask.query_shift,
            query: values.query.as_ref().map(|m| m.data()),
            attention: values.attention.as_ref().zip(p.mask.attention).map(|(m, s)| (m.data(), s)),
            keys,
        }
    }

    /// The keys `[lo, hi)` row `t` of sequence `b` may see by the causal mask, the window and the
    /// query mask (an empty range when the query mask drops the row).
    pub fn range(&self, b: usize, t: usize) -> (usize, usize) {
        debug_assert!(b < self.batch && t < self.target_len);
        if self.query.is_some_and(|m| !m[b * self.target_len + t]) {
            return (0, 0);
        }
        let pos = t as i64 + self.shift;
        let s = self.source_len as i64;
        let mut hi = s;
        let mut lo = 0i64;
        if self.causal {
            hi = hi.min(pos + 1);
        }
        if let Some(w) = self.window {
            let w = w as i64;
            lo = lo.max(pos - w + 1);
            hi = hi.min(pos + w);
        }
        let (lo, hi) = (lo.clamp(0, s) as usize, hi.clamp(0, s) as usize);
        if lo < hi { (lo, hi) } else { (0, 0) }
    }

    /// Whether masks beyond the key ranges apply (attention, value or key masks).
    pub fn per_element(&self) -> bool {
        self.attention.is_some() || self.keys.is_some()
    }

    /// Sets to `-inf` the logits of row (b, u, t) over keys `s0..s0 + row.len()` that the row does
    /// not see: outside `range`, or hidden by an explicit mask. Returns how many it sees.
    pub fn apply(&self, b: usize, u: usize, t: usize, s0: usize, range: (usize, usize), row: &mut [f32]) -> usize {
        let n = row.len();
        let lo = range.0.clamp(s0, s0 + n) - s0;
        let hi = range.1.clamp(s0, s0 + n) - s0;
        let hi = hi.max(lo);
        row[..lo].fill(f32::NEG_INFINITY);
        row[hi..].fill(f32::NEG_INFINITY);
        if !self.per_element() {
            return hi - lo;
        }
        let mut seen = 0;
        let keys = self.keys.as_ref().map(|k| &k[b * self.source_len + s0..][..n]);
        let attention = self.attention.map(|(m, st)| (m, b * st.b + u * st.h + t * st.t, st.s));
        for (i, x) in row.iter_mut().enumerate().take(hi).skip(lo) {
            let visible = keys.is_none_or(|k| k[i]) && attention.is_none_or(|(m, at, ss)| m[at + (s0 + i) * ss]);
            if visible {
                seen += 1;
            } else {
                *x = f32::NEG_INFINITY;
            }
        }
        seen
    }
}
