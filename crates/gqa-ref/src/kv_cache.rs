//! The oracle's KV cache: the cached calls of `gqa_core::kv_cache` on the CPU in f64, for timing the
//! oracle per decoding step (`gqa bench --decode`) and as a second reference for the GPU cache.
//!
//! A cached call projects its new tokens with the oracle's own dense step, stores the projected keys
//! and values (kept in f64; in a quantized cache ([`CacheShape::storage`]) rounded to f32 and then
//! quantized exactly as the GPU's append pass does, [`gqa_core::CacheStorage::round_trip`]), and runs the oracle's attention and output steps over the held
//! tokens, with the masks [`CacheUpdate::problem`] gives. Its results equal the rows of one causal
//! [`crate::forward()`] over each whole sequence.

use gqa_core::{CacheContents, CacheShape, CacheUpdate, GqaConfig, GqaError, HostTensor, Weights};

use crate::forward::{attend, dense};

/// Projected keys and values of `batch` sequences of up to `capacity` tokens, in f64.
#[derive(Debug, Clone, PartialEq)]
pub struct KvCache {
    shape: CacheShape,
    /// The layer's sliding window (what a ring may drop).
    window: Option<usize>,
    /// (B, capacity, Nkv, H).
    keys: Vec<f64>,
    /// (B, capacity, Nkv, H).
    values: Vec<f64>,
    lengths: Vec<usize>,
}

impl KvCache {
    /// An empty cache for `config`'s layer.
    pub fn new(config: &GqaConfig, batch: usize, capacity: usize) -> Result<Self, GqaError> {
        Ok(Self::with_shape(CacheShape::new(config, batch, capacity)?, config.sliding_window))
    }

    /// An empty ring cache for `config`'s windowed layer ([`CacheShape::ring`]): calls append at
    /// most `chunk` tokens, the first `keep_first` tokens stay visible.
    pub fn new_ring(config: &GqaConfig, batch: usize, chunk: usize, keep_first: usize) -> Result<Self, GqaError> {
        Ok(Self::with_shape(CacheShape::ring(config, batch, chunk, keep_first)?, config.sliding_window))
    }

    /// An empty cache of `shape` for `config`'s layer: any storage and layout (as
    /// `gqa_wgpu::KvCache::from_shape`).
    pub fn from_shape(config: &GqaConfig, shape: CacheShape) -> Result<Self, GqaError> {
        const OP: &str = "gqa_ref::KvCache::from_shape";
        shape.check_layer(OP, config)?;
        Ok(Self::with_shape(shape, config.sliding_window))
    }

    fn with_shape(shape: CacheShape, window: Option<usize>) -> Self {
        let n = usize::try_from(shape.elems()).unwrap_or(usize::MAX);
        Self { shape, window, keys: vec![0.0; n], values: vec![0.0; n], lengths: vec![0; shape.batch] }
    }

    /// The cache's shape (and layout).
    pub fn shape(&self) -> CacheShape {
        self.shape
    }

    /// Tokens each sequence holds.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// Keeps at most `len` tokens of every sequence (a ring refuses to roll back to tokens it
    /// dropped).
    pub fn truncate(&mut self, len: usize) -> Result<(), GqaError> {
        self.shape.truncate("gqa_ref::KvCache::truncate", &mut self.lengths, len, self.window)
    }

    /// The held tokens in order (keys and values rounded to f32), as `gqa_wgpu::KvCache::read`
    /// gives them; a ring gives the tokens it still holds (its kept first tokens and its window).
    pub fn read(&self) -> Result<CacheContents, GqaError> {
        let n = self.shape.token_elems() as usize;
        CacheContents::gather(&self.shape, &self.lengths, |keys, b, slot, out| {
            let all = if keys { &self.keys } else { &self.values };
            for (o, x) in out.iter_mut().zip(&all[(b * self.shape.capacity + slot) * n..][..n]) {
                *o = *x as f32;
            }
        })
    }

    /// Replaces the contents with `contents` (see [`CacheContents::check`]; quantized as stored).
    pub fn load(&mut self, contents: &CacheContents) -> Result<(), GqaError> {
        let l = contents.check("gqa_ref::KvCache::load", &self.shape)?;
        let token = self.shape.token_elems() as usize;
        let h = self.shape.head_dim;
        for (b, &len) in contents.lengths.iter().enumerate() {
            let at = b * self.shape.capacity * token;
            for (src, dst) in [(&contents.keys, &mut self.keys), (&contents.values, &mut self.values)] {
                let from = &src.data()[b * l * token..][..len * token];
                let stored = from.chunks(h).flat_map(|head| self.shape.storage.round_trip(head));
                for (d, x) in dst[at..at + len * token].iter_mut().zip(stored) {
                    *d = f64::from(x);
                }
            }
        }
        self.lengths.clone_from(&contents.lengths);
        Ok(())
    }

    /// Runs the layer over a prompt (query (B, P, Dq), value, key or `None`) and appends it: the
    /// first `lengths[b]` rows of sequence `b`, or all P. Returns the output (B, P, Dq).
    pub fn prefill(
        &mut self,
        config: &GqaConfig,
        weights: &Weights,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        lengths: Option<&[usize]>,
    ) -> Result<HostTensor, GqaError> {
        let t = query.shape().get(1).copied().unwrap_or(0);
        let new = lengths.map_or_else(|| vec![t; self.shape.batch], <[usize]>::to_vec);
        self.call(config, weights, query, value, key, &new)
    }

    /// One decoding step of T new tokens per sequence; every sequence must hold a prefix.
    pub fn step(
        &mut self,
        config: &GqaConfig,
        weights: &Weights,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
    ) -> Result<HostTensor, GqaError> {
        if let Some(b) = self.lengths.iter().position(|&l| l == 0) {
            return Err(GqaError::CacheEmpty { op: "gqa_ref::KvCache::step", sequence: b });
        }
        let t = query.shape().get(1).copied().unwrap_or(0);
        self.call(config, weights, query, value, key, &vec![t; self.shape.batch])
    }

    fn call(
        &mut self,
        config: &GqaConfig,
        weights: &Weights,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        new: &[usize],
    ) -> Result<HostTensor, GqaError> {
        let (update, problem, options) = CacheUpdate::check_call(
            self.shape,
            "gqa_ref::KvCache",
            config,
            weights,
            &self.lengths,
            new,
            (query, value, key),
        )?;
        let (b_len, t) = (self.shape.batch, update.target_len);

        // Project the new tokens and append the first new[b] of each sequence.
        let q = dense(query.data(), &weights.query);
        let k_new = dense(key.unwrap_or(value).data(), &weights.key);
        let v_new = dense(value.data(), &weights.value);
        let gate = weights.gate.as_ref().filter(|_| config.use_gate).map(|g| dense(query.data(), g));
        let token = self.shape.token_elems() as usize;
        for (b, row, slot, n) in update.appends() {
            let at = (b * self.shape.capacity + slot) * token;
            for (src, dst) in [(&k_new, &mut self.keys), (&v_new, &mut self.values)] {
                let new = &src[(b * t + row) * token..][..n * token];
                self.shape.storage.store(new, &mut dst[at..at + n * token], self.shape.head_dim);
            }
        }

        // The occupied slots as (B, S, Nkv, H) (zeros past a sequence's slots: masked there).
        let s = update.source_len();
        let mut k = vec![0.0; b_len * s * token];
        let mut v = vec![0.0; b_len * s * token];
        for (b, len) in update.lengths_after().into_iter().enumerate() {
            let len = self.shape.slots_used(len);
            let (from, to) = (b * self.shape.capacity * token, b * s * token);
            k[to..to + len * token].copy_from_slice(&self.keys[from..from + len * token]);
            v[to..to + len * token].copy_from_slice(&self.values[from..from + len * token]);
        }
        let out = attend(&problem, &options, weights, &q, &k, &v, gate)?;
        self.lengths = update.lengths_after();
        Ok(out.output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward;
    use gqa_core::{CallOptions, LayerDims};
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn tensor(shape: [usize; 3], rng: &mut StdRng) -> HostTensor {
        HostTensor::new(shape, (0..shape.iter().product()).map(|_| rng.random_range(-1.0..1.0)).collect()).unwrap()
    }

    /// Rows [from, to) along T.
    fn rows(x: &HostTensor, from: usize, to: usize) -> HostTensor {
        let (b_len, l, d) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let data = (0..b_len).flat_map(|b| x.data()[(b * l + from) * d..(b * l + to) * d].to_vec()).collect();
        HostTensor::new([b_len, to - from, d], data).unwrap()
    }

    #[test]
    fn steps_equal_one_causal_call() {
        for window in [None, Some(3)] {
            let config = GqaConfig { sliding_window: window, use_gate: true, ..GqaConfig::new(4, 4, 2) };
            let dims = LayerDims { query_dim: 6, key_dim: 5, value_dim: 5 };
            let weights = crate::initialize_weights(&config, dims, 1).unwrap();
            let mut rng = StdRng::seed_from_u64(2);
            let (q, v) = (tensor([2, 9, 6], &mut rng), tensor([2, 9, 5], &mut rng));
            let options = CallOptions { use_causal_mask: true, ..Default::default() };
            let want = forward(&config, &weights, &q, &v, None, &options).unwrap().output;
            let mut cache = KvCache::new(&config, 2, 12).unwrap();
            let mut got = cache.prefill(&config, &weights, &rows(&q, 0, 4), &rows(&v, 0, 4), None, None).unwrap();
            assert!(
                got.data().iter().zip(rows(&want, 0, 4).data()).all(|(a, b)| (a - b).abs() < 1e-6),
                "prefill {window:?}"
            );
            for (from, to) in [(4, 5), (5, 8), (8, 9)] {
                got = cache.step(&config, &weights, &rows(&q, from, to), &rows(&v, from, to), None).unwrap();
                let w = rows(&want, from, to);
                assert!(got.data().iter().zip(w.data()).all(|(a, b)| (a - b).abs() < 1e-6), "step {from} {window:?}");
            }
            assert_eq!(cache.lengths(), [9, 9]);
        }
    }

    #[test]
    fn errors() {
        let config = GqaConfig::new(4, 4, 2);
        let dims = LayerDims { query_dim: 6, key_dim: 6, value_dim: 6 };
        let weights = crate::initialize_weights(&config, dims, 1).unwrap();
        let x = HostTensor::new([1, 3, 6], vec![0.1; 18]).unwrap();
        let mut cache = KvCache::new(&config, 1, 4).unwrap();
        assert!(matches!(cache.step(&config, &weights, &x, &x, None), Err(GqaError::CacheEmpty { .. })));
        cache.prefill(&config, &weights, &x, &x, None, None).unwrap();
        assert!(matches!(cache.step(&config, &weights, &x, &x, None), Err(GqaError::CacheFull { .. })));
        cache.truncate(1).unwrap();
        assert_eq!(cache.lengths(), [1]);
        // Read and load round-trip; loading more than the capacity is refused.
        let contents = cache.read().unwrap();
        let mut other = KvCache::new(&config, 1, 4).unwrap();
        other.load(&contents).unwrap();
        assert_eq!(other.read().unwrap(), contents);
        let too_long = CacheContents { lengths: vec![2], ..contents };
        assert!(matches!(other.load(&too_long), Err(GqaError::CacheLength { .. })));
    }
}
