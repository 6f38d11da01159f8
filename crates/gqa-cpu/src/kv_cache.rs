//! The CPU layer's KV cache: the cached calls of `gqa_core::kv_cache` (prefill, chunks, steps,
//! ragged sequences, the sliding window) in f32, the attention reading the cache in place.

use gqa_core::{CacheContents, CacheShape, CacheUpdate, GqaConfig, GqaError, HostTensor, LayerDims};

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
        let held: Vec<Vec<(usize, usize)>> = self.lengths.iter().map(|&l| self.shape.held(l)).collect();
        let longest = held.iter().map(Vec::len).max().unwrap_or(0);
        let token = self.shape.token_elems() as usize;
        let trim = |all: &[f32]| {
            let mut out = vec![0.0f32; self.shape.batch * longest * token];
            for (b, slots) in held.iter().enumerate() {
                for (i, &(_, slot)) in slots.iter().enumerate() {
                    out[(b * longest + i) * token..][..token]
                        .copy_from_slice(&all[(b * self.shape.capacity + slot) * token..][..token]);
                }
            }
            HostTensor::new([self.shape.batch, longest, self.shape.num_kv_heads, self.shape.head_dim], out)
        };
        Ok(CacheContents {
            keys: trim(&self.keys)?,
            values: trim(&self.values)?,
            lengths: held.iter().map(Vec::len).collect(),
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
        self.shape.check_heads(OP, config.num_key_value_heads, config.head_dim)?;
        let [b_len, t, dq] = dims3(query, "query")?;
        let [_, _, dv] = dims3(value, "value")?;
        let dk = key.map(|k| dims3(k, "key")).transpose()?.map(|[_, _, d]| d);
        if b_len != self.shape.batch {
            return Err(GqaError::CacheMismatch { op: OP, what: "batch", cache: self.shape.batch, call: b_len });
        }
        for (name, x) in [("value", Some(value)), ("key", key)] {
            if let Some(x) = x.filter(|x| x.shape()[..2] != [b_len, t]) {
                return Err(GqaError::ShapeMismatch {
                    op: OP,
                    detail: format!("{name} {:?} must have the query's batch and length ({b_len}, {t})", x.shape()),
                });
            }
        }
        let update = CacheUpdate::new(self.shape, &self.lengths, new, t, config.sliding_window)?;
        let (problem, _) = update.problem(config, dq, dv, dk)?;
        weights.validate(config, LayerDims { query_dim: dq, key_dim: dk.unwrap_or(dv), value_dim: dv })?;

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

fn dims3(x: &HostTensor, name: &str) -> Result<[usize; 3], GqaError> {
    match *x.shape() {
        [a, b, c] => Ok([a, b, c]),
        _ => Err(GqaError::Rank { op: OP, tensor: name.into(), expected: 3, got: x.shape().to_vec() }),
    }
}
