//! The CPU layer's KV cache: the cached calls of `gqa_core::kv_cache` (prefill, chunks, steps,
//! ragged sequences, the sliding window) in f32, the attention reading the cache in place.

use gqa_core::{CacheContents, CacheShape, CacheUpdate, GqaConfig, GqaError, HostTensor};

use crate::attention::KvView;
use crate::forward::{finish, gate, project};
use crate::layer::CpuLayer;

const OP: &str = "gqa_cpu::KvCache";

/// Projected keys and values of `batch` sequences of up to `capacity` tokens, (B, capacity, Nkv, H)
/// f32 each, and each sequence's length.
#[derive(Debug, Clone, PartialEq)]
pub struct KvCache {
    shape: CacheShape,
    /// The layer's sliding window (what a ring may drop).
    window: Option<usize>,
    keys: Vec<f32>,
    values: Vec<f32>,
    lengths: Vec<usize>,
}

impl KvCache {
    /// An empty cache for `config`'s layer.
    pub fn new(config: &GqaConfig, batch: usize, capacity: usize) -> Result<Self, GqaError> {
        Self::with_shape(CacheShape::new(config, batch, capacity)?, config.sliding_window)
    }

    /// An empty ring cache for `config`'s windowed layer ([`CacheShape::ring`]): capacity
    /// `keep_first + W + chunk - 1`, calls append at most `chunk` tokens per sequence, the first
    /// `keep_first` tokens stay visible to every later token.
    pub fn new_ring(config: &GqaConfig, batch: usize, chunk: usize, keep_first: usize) -> Result<Self, GqaError> {
        Self::with_shape(CacheShape::ring(config, batch, chunk, keep_first)?, config.sliding_window)
    }

    fn with_shape(shape: CacheShape, window: Option<usize>) -> Result<Self, GqaError> {
        let n =
            usize::try_from(shape.elems()).map_err(|_| GqaError::ZeroSize { what: "KV cache (too large)".into() })?;
        Ok(Self { shape, window, keys: vec![0.0; n], values: vec![0.0; n], lengths: vec![0; shape.batch] })
    }

    /// The cache's shape.
    pub fn shape(&self) -> CacheShape {
        self.shape
    }

    /// Sequences.
    pub fn batch(&self) -> usize {
        self.shape.batch
    }

    /// Tokens each sequence can hold.
    pub fn capacity(&self) -> usize {
        self.shape.capacity
    }

    /// Tokens each sequence holds.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// Whether no sequence holds a token.
    pub fn is_empty(&self) -> bool {
        self.lengths.iter().all(|&l| l == 0)
    }

    /// Bytes the cache holds (keys and values, all of the capacity).
    pub fn bytes(&self) -> u64 {
        2 * self.shape.elems() * 4
    }

    /// Empties every sequence.
    pub fn reset(&mut self) {
        self.lengths.fill(0);
    }

    /// Keeps at most `len` tokens of every sequence (a ring refuses to roll back to tokens it has
    /// dropped; nothing changes then).
    pub fn truncate(&mut self, len: usize) -> Result<(), GqaError> {
        self.shape.truncate("gqa_cpu::KvCache::truncate", &mut self.lengths, len, self.window)
    }

    /// Truncates sequence `b` to `lengths[b]` tokens, each at most its current length (and, in a
    /// ring, no further back than the tokens it still holds).
    pub fn truncate_each(&mut self, lengths: &[usize]) -> Result<(), GqaError> {
        self.shape.truncate_each("gqa_cpu::KvCache::truncate_each", &mut self.lengths, lengths, self.window)
    }

    /// Makes the cache hold up to `capacity` tokens per sequence, keeping the held tokens.
    /// Shrinking below a held length is an error, and so is growing a ring (its capacity follows
    /// from its window and chunk).
    pub fn grow(&mut self, capacity: usize) -> Result<(), GqaError> {
        const OP: &str = "gqa_cpu::KvCache::grow";
        if self.shape.layout != gqa_core::CacheLayout::Linear {
            let detail = "a ring's capacity is fixed by its window and chunk: make a new ring".into();
            return Err(GqaError::CacheWindow { op: OP, detail });
        }
        if let Some((b, &have)) = self.lengths.iter().enumerate().find(|(_, l)| **l > capacity) {
            return Err(GqaError::CacheLength { op: OP, sequence: b, length: have, requested: capacity });
        }
        let contents = self.read()?;
        let shape = CacheShape { capacity, ..self.shape };
        let n =
            usize::try_from(shape.elems()).map_err(|_| GqaError::ZeroSize { what: "KV cache (too large)".into() })?;
        *self = Self {
            shape,
            window: self.window,
            keys: vec![0.0; n],
            values: vec![0.0; n],
            lengths: vec![0; shape.batch],
        };
        self.load(&contents)
    }

    /// The held tokens in order, keys and values (B, L, Nkv, H) with L the longest sequence (zeros
    /// past each sequence's tokens), as every implementation's cache reads them; a ring gives the
    /// tokens it still holds (its kept first tokens and its window).
    pub fn read(&self) -> Result<CacheContents, GqaError> {
        let n = self.shape.token_elems() as usize;
        CacheContents::gather(&self.shape, &self.lengths, |keys, b, slot, out| {
            let all = if keys { &self.keys } else { &self.values };
            out.copy_from_slice(&all[(b * self.shape.capacity + slot) * n..][..n]);
        })
    }

    /// Replaces the contents with `contents` (see [`CacheContents::check`]).
    pub fn load(&mut self, contents: &CacheContents) -> Result<(), GqaError> {
        let l = contents.check("gqa_cpu::KvCache::load", &self.shape)?;
        let token = self.shape.token_elems() as usize;
        for (b, &len) in contents.lengths.iter().enumerate() {
            let at = b * self.shape.capacity * token;
            for (src, dst) in [(&contents.keys, &mut self.keys), (&contents.values, &mut self.values)] {
                dst[at..at + len * token].copy_from_slice(&src.data()[b * l * token..][..len * token]);
            }
        }
        self.lengths.clone_from(&contents.lengths);
        Ok(())
    }

    /// Runs `layer` causally over a prompt (query (B, P, Dq), value, key or `None`) and appends it:
    /// the first `lengths[b]` rows of sequence `b`, or all P. On a cache holding tokens this appends
    /// a chunk. Returns the output (B, P, Dq).
    pub fn prefill(
        &mut self,
        layer: &CpuLayer,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        lengths: Option<&[usize]>,
    ) -> Result<HostTensor, GqaError> {
        let t = query.shape().get(1).copied().unwrap_or(0);
        let new = lengths.map_or_else(|| vec![t; self.shape.batch], <[usize]>::to_vec);
        self.call(layer, query, value, key, &new)
    }

    /// One decoding step of T new tokens per sequence; every sequence must hold a prefix.
    pub fn step(
        &mut self,
        layer: &CpuLayer,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
    ) -> Result<HostTensor, GqaError> {
        if let Some(b) = self.lengths.iter().position(|&l| l == 0) {
            return Err(GqaError::CacheEmpty { op: "gqa_cpu::KvCache::step", sequence: b });
        }
        let t = query.shape().get(1).copied().unwrap_or(0);
        self.call(layer, query, value, key, &vec![t; self.shape.batch])
    }

    fn call(
        &mut self,
        layer: &CpuLayer,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        new: &[usize],
    ) -> Result<HostTensor, GqaError> {
        let (config, weights) = (layer.config(), layer.weights());
        let (update, problem, _) =
            CacheUpdate::check_call(self.shape, OP, config, weights, &self.lengths, new, (query, value, key))?;
        let (b_len, t) = (self.shape.batch, update.target_len);

        // Project the new tokens and append the first new[b] of each sequence.
        let rows = b_len * t;
        let q = project(query.data(), rows, &weights.query);
        let k_new = project(key.unwrap_or(value).data(), rows, &weights.key);
        let v_new = project(value.data(), rows, &weights.value);
        let g = gate(config, weights, query.data(), rows);
        let token = self.shape.token_elems() as usize;
        for (b, row, slot, n) in update.appends() {
            let (at, from) = ((b * self.shape.capacity + slot) * token, (b * t + row) * token);
            self.keys[at..at + n * token].copy_from_slice(&k_new[from..][..n * token]);
            self.values[at..at + n * token].copy_from_slice(&v_new[from..][..n * token]);
        }

        // Attend over the held tokens in place: sequence b's keys start at b·capacity. Keys past a
        // sequence's length are masked by the update's mask (their V is whatever the cache holds:
        // zeros or older tokens, finite).
        let stride = self.shape.capacity * token;
        let out = finish(
            &problem,
            weights,
            &q,
            KvView { data: &self.keys, batch_stride: stride },
            KvView { data: &self.values, batch_stride: stride },
            g,
        )?;
        self.lengths = update.lengths_after();
        Ok(out.output)
    }
}
