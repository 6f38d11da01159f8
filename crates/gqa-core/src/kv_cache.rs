//! The KV cache of autoregressive decoding, as data: the cache's shape, and what one cached call
//! (a prefill or a step) appends and attends to.
//!
//! Keras' layer has no cache: every call projects K and V for the whole source. A cached call
//! projects only its own `T` new tokens, appends their K and V to the cache (projected, laid out
//! (B, capacity, Nkv, H)) and attends over the cached prefix plus the new tokens with bottom-right
//! causal alignment: new token `i` of sequence `b` sits at position `past[b] + i` and sees the keys
//! `j <= past[b] + i` (and, with a sliding window `W`, only those with `past[b] + i - j < W`). That
//! is exactly what one full causal call over the whole sequence computes for those rows.
//!
//! Sequences of one batch may hold different lengths ("ragged"), and may append different numbers
//! of tokens (`new[b] <= T`; the call's rows past `new[b]` are padding, computed but not appended).
//! When every sequence holds the same length and appends all `T` tokens, the call uses the kernels'
//! built-in causal mask and window; otherwise a (B, T, S) attention mask carries each sequence's
//! own causal offset, length and window.
//!
//! A ring cache ([`CacheLayout::Ring`]) for a windowed layer reuses the slots of tokens past the
//! window: its keys are its slots, and the mask says which token each slot holds and whether the
//! row sees it.

use crate::cache_storage::CacheStorage;
use crate::config::GqaConfig;
use crate::error::GqaError;
use crate::extensions::{AttentionExtensions, KeyBand, KeyWindow};
use crate::options::{CallOptions, CausalAlignment};
use crate::problem::Problem;
use crate::tensor::{HostTensor, Mask};

/// Where a cache keeps each token.
///
/// A linear cache keeps token `p` at slot `p` and every token appended. A ring cache serves a layer
/// with a sliding window `W`: a token older than the window is never seen again, so its slot is
/// reused. Tokens `0..keep_first` stay at slots `0..keep_first` and stay visible to every later
/// token (attention sinks, beside the window); token `p >= keep_first` goes to slot
/// `keep_first + (p - keep_first) mod (capacity - keep_first)`. Its capacity is
/// `keep_first + W + chunk - 1`, where `chunk` is the most tokens one call appends: a long
/// conversation runs in a cache of the window's size, each step attending over at most `capacity`
/// slots, with exactly the results of one causal call over the whole sequence under the window
/// (and the sinks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheLayout {
    /// Token `p` at slot `p`.
    #[default]
    Linear,
    /// A ring for a sliding-window layer, its first `keep_first` tokens kept.
    Ring {
        /// Tokens kept from the start of each sequence, visible to every later token.
        keep_first: usize,
    },
}

/// The fixed shape of a KV cache: K and V each (B, capacity, Nkv, H), where tokens go and how they
/// are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheShape {
    /// B: sequences.
    pub batch: usize,
    /// Tokens each sequence can hold.
    pub capacity: usize,
    /// Nkv.
    pub num_kv_heads: usize,
    /// H.
    pub head_dim: usize,
    /// Where tokens go: every token at its position, or a ring for a windowed layer.
    pub layout: CacheLayout,
    /// How keys and values are stored: f32, f16 or int8 ([`CacheStorage`]).
    pub storage: CacheStorage,
}

impl CacheShape {
    /// The shape of a linear cache for `config`'s layer, checked non-empty.
    pub fn new(config: &GqaConfig, batch: usize, capacity: usize) -> Result<Self, GqaError> {
        for (what, v) in [("KV cache batch", batch), ("KV cache capacity", capacity)] {
            if v == 0 {
                return Err(GqaError::ZeroSize { what: what.into() });
            }
        }
        Ok(Self {
            batch,
            capacity,
            num_kv_heads: config.num_key_value_heads,
            head_dim: config.head_dim,
            layout: CacheLayout::Linear,
            storage: CacheStorage::F32,
        })
    }

    /// The same shape storing its keys and values as `storage` (the quantized storages need H a
    /// multiple of 4).
    pub fn with_storage(self, storage: CacheStorage) -> Result<Self, GqaError> {
        storage.check_head_dim("CacheShape::with_storage", self.head_dim)?;
        Ok(Self { storage, ..self })
    }

    /// The shape of a ring cache for `config`'s layer, which must have a sliding window `W`:
    /// capacity `keep_first + W + chunk - 1`, where `chunk` (at least 1) is the most tokens a call
    /// may append (1 for token-by-token decoding; a longer prompt is prefilled in calls of at most
    /// `chunk` tokens).
    pub fn ring(config: &GqaConfig, batch: usize, chunk: usize, keep_first: usize) -> Result<Self, GqaError> {
        let Some(window) = config.sliding_window else {
            return Err(GqaError::CacheWindow {
                op: "KvCache (ring)",
                detail: "a ring cache needs a layer with a sliding_window: without one every token stays visible"
                    .into(),
            });
        };
        if chunk == 0 {
            return Err(GqaError::ZeroSize { what: "ring cache chunk".into() });
        }
        let shape = Self::new(config, batch, keep_first + window + chunk - 1)?;
        Ok(Self { layout: CacheLayout::Ring { keep_first }, ..shape })
    }

    /// The slot of token `position`.
    pub fn slot(&self, position: usize) -> usize {
        match self.layout {
            CacheLayout::Linear => position,
            CacheLayout::Ring { keep_first } if position < keep_first => position,
            CacheLayout::Ring { keep_first } => keep_first + (position - keep_first) % (self.capacity - keep_first),
        }
    }

    /// The tokens a sequence of `len` tokens still holds, in order, as (position, slot): all of
    /// them in a linear cache; in a ring, the first `keep_first` and the last `capacity -
    /// keep_first`.
    pub fn held(&self, len: usize) -> Vec<(usize, usize)> {
        let positions: Vec<usize> = match self.layout {
            CacheLayout::Linear => (0..len).collect(),
            CacheLayout::Ring { keep_first } => {
                let ring = self.capacity - keep_first;
                (0..len.min(keep_first)).chain(len.saturating_sub(ring).max(keep_first)..len).collect()
            }
        };
        positions.into_iter().map(|p| (p, self.slot(p))).collect()
    }

    /// The position slot `slot` holds in a sequence of `len` tokens, if it holds one.
    pub fn position_at(&self, slot: usize, len: usize) -> Option<usize> {
        match self.layout {
            CacheLayout::Linear => (slot < len).then_some(slot),
            CacheLayout::Ring { keep_first } if slot < keep_first => (slot < len).then_some(slot),
            CacheLayout::Ring { .. } if slot >= self.capacity => None,
            CacheLayout::Ring { keep_first } => {
                // Slot `slot` first holds token `slot`, then every `capacity - keep_first` later.
                let ring = self.capacity - keep_first;
                (slot < len).then(|| slot + (len - 1 - slot) / ring * ring)
            }
        }
    }

    /// Slots a sequence of `len` tokens occupies (the attention's keys): `len` in a linear cache,
    /// at most the capacity in a ring.
    pub fn slots_used(&self, len: usize) -> usize {
        match self.layout {
            CacheLayout::Linear => len,
            CacheLayout::Ring { .. } => len.min(self.capacity),
        }
    }

    /// Rolls each sequence of `lengths` back to at most `len` tokens (shorter ones are left as they
    /// are), after checking that a ring can (see [`CacheShape::check_roll_back`]); nothing changes
    /// on an error.
    pub fn truncate(
        &self,
        op: &'static str,
        lengths: &mut [usize],
        len: usize,
        window: Option<usize>,
    ) -> Result<(), GqaError> {
        let wanted: Vec<usize> = lengths.iter().map(|&l| l.min(len)).collect();
        self.truncate_each(op, lengths, &wanted, window)
    }

    /// Rolls sequence `b` back to `to[b]` tokens, each at most its current length, after checking
    /// that a ring can; nothing changes on an error.
    pub fn truncate_each(
        &self,
        op: &'static str,
        lengths: &mut [usize],
        to: &[usize],
        window: Option<usize>,
    ) -> Result<(), GqaError> {
        if to.len() != lengths.len() {
            return Err(GqaError::CacheMismatch { op, what: "batch", cache: lengths.len(), call: to.len() });
        }
        for (b, (&want, &have)) in to.iter().zip(lengths.iter()).enumerate() {
            if want > have {
                return Err(GqaError::CacheLength { op, sequence: b, length: have, requested: want });
            }
            self.check_roll_back(op, have, want, window)?;
        }
        lengths.copy_from_slice(to);
        Ok(())
    }

    /// Checks that a sequence holding `len` tokens can be rolled back to `to`: always in a linear
    /// cache; in a ring, only while every token a call at `to` would see is still held.
    pub fn check_roll_back(
        &self,
        op: &'static str,
        len: usize,
        to: usize,
        window: Option<usize>,
    ) -> Result<(), GqaError> {
        let (CacheLayout::Ring { keep_first }, Some(window)) = (self.layout, window) else {
            return Ok(());
        };
        let oldest_held = len.saturating_sub(self.capacity - keep_first).max(keep_first);
        let oldest_needed = (to + 1).saturating_sub(window).max(keep_first);
        if to >= len || oldest_needed >= oldest_held || oldest_needed >= to {
            return Ok(());
        }
        Err(GqaError::CacheWindow {
            op,
            detail: format!(
                "rolling a sequence of {len} tokens back to {to} needs token {oldest_needed}, which the ring (capacity \
                 {}, window {window}) dropped; it can roll back {} tokens",
                self.capacity,
                len - (oldest_held + window - 1).min(len)
            ),
        })
    }

    /// Values of one token's K (or V): Nkv * H.
    pub fn token_elems(&self) -> u64 {
        (self.num_kv_heads * self.head_dim) as u64
    }

    /// Values of the K (or the V) buffer: B * capacity * Nkv * H.
    pub fn elems(&self) -> u64 {
        (self.batch * self.capacity) as u64 * self.token_elems()
    }

    /// 32-bit words one token's keys (or values) take in the storage
    /// ([`CacheStorage::token_words`]).
    pub fn token_words(&self) -> u64 {
        self.storage.token_words(self.num_kv_heads, self.head_dim)
    }

    /// 32-bit words of the K (or the V) buffer: B * capacity tokens.
    pub fn words(&self) -> u64 {
        (self.batch * self.capacity) as u64 * self.token_words()
    }

    /// Bytes one token takes in the cache, its keys and its values together.
    pub fn bytes_per_token(&self) -> u64 {
        2 * 4 * self.token_words()
    }

    /// Checks that `config`'s layer can use a cache of this shape (what a cache made from a shape
    /// checks): its heads, H against the storage, and a ring's capacity against the layer's window
    /// (at least its kept first tokens and the window).
    pub fn check_layer(&self, op: &'static str, config: &GqaConfig) -> Result<(), GqaError> {
        self.check_heads(op, config.num_key_value_heads, config.head_dim)?;
        self.storage.check_head_dim(op, self.head_dim)?;
        if let CacheLayout::Ring { keep_first } = self.layout {
            let smallest = Self::ring(config, self.batch, 1, keep_first)?;
            if self.capacity < smallest.capacity {
                let detail = format!(
                    "a ring of capacity {} cannot hold the kept first {keep_first} tokens and the window {:?}; make it \
                     with CacheShape::ring",
                    self.capacity, config.sliding_window
                );
                return Err(GqaError::CacheWindow { op, detail });
            }
        }
        Ok(())
    }

    /// Checks that a layer with `num_kv_heads` kv heads of `head_dim` can use a cache of this shape.
    pub fn check_heads(&self, op: &'static str, num_kv_heads: usize, head_dim: usize) -> Result<(), GqaError> {
        let pairs = [("num_key_value_heads", self.num_kv_heads, num_kv_heads), ("head_dim", self.head_dim, head_dim)];
        for (what, cache, call) in pairs {
            if cache != call {
                return Err(GqaError::CacheMismatch { op, what, cache, call });
            }
        }
        Ok(())
    }
}

impl CacheContents {
    /// The held tokens of a cache of `shape` whose sequences hold `lengths` tokens, in order (a
    /// ring's kept first tokens and its window), as [`CacheContents`]: `token(keys, b, slot, out)`
    /// writes the `Nkv * H` values of sequence `b`'s slot `slot` of the keys (`keys` true) or the
    /// values into `out`. Each cache's `read` is this over its own storage.
    pub fn gather(
        shape: &CacheShape,
        lengths: &[usize],
        mut token: impl FnMut(bool, usize, usize, &mut [f32]),
    ) -> Result<Self, GqaError> {
        let held: Vec<Vec<(usize, usize)>> = lengths.iter().map(|&l| shape.held(l)).collect();
        let longest = held.iter().map(Vec::len).max().unwrap_or(0);
        let n = shape.token_elems() as usize;
        let mut gather = |keys: bool| {
            let mut out = vec![0.0f32; shape.batch * longest * n];
            for (b, slots) in held.iter().enumerate() {
                for (i, &(_, slot)) in slots.iter().enumerate() {
                    token(keys, b, slot, &mut out[(b * longest + i) * n..][..n]);
                }
            }
            HostTensor::new([shape.batch, longest, shape.num_kv_heads, shape.head_dim], out)
        };
        Ok(Self { keys: gather(true)?, values: gather(false)?, lengths: held.iter().map(Vec::len).collect() })
    }
}

/// A host copy of a cache's held tokens: what reading a cache gives and loading one takes.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheContents {
    /// Projected keys (B, L, Nkv, H), L at least the longest sequence; zeros past each sequence's
    /// length when read from a cache.
    pub keys: HostTensor,
    /// Projected values (B, L, Nkv, H), likewise.
    pub values: HostTensor,
    /// Each sequence's length.
    pub lengths: Vec<usize>,
}

impl CacheContents {
    /// Checks the contents fit a cache of `shape`: (B, L, Nkv, H) keys and values, one length per
    /// sequence, each at most L and the capacity. Returns L.
    pub fn check(&self, op: &'static str, shape: &CacheShape) -> Result<usize, GqaError> {
        if self.lengths.len() != shape.batch {
            return Err(GqaError::CacheMismatch { op, what: "batch", cache: shape.batch, call: self.lengths.len() });
        }
        let l = self.keys.shape().get(1).copied().unwrap_or(0);
        let want = [shape.batch, l, shape.num_kv_heads, shape.head_dim];
        for (name, t) in [("keys", &self.keys), ("values", &self.values)] {
            if t.shape() != want {
                return Err(GqaError::ShapeMismatch {
                    op,
                    detail: format!("{name} {:?} must be (B, L, Nkv, H) = {want:?}", t.shape()),
                });
            }
        }
        for (b, &len) in self.lengths.iter().enumerate() {
            if len > l.min(shape.capacity) {
                return Err(GqaError::CacheLength { op, sequence: b, length: l.min(shape.capacity), requested: len });
            }
        }
        Ok(l)
    }
}

/// One cached call: how many tokens each sequence holds before it and how many it appends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheUpdate {
    /// The cache's shape.
    pub shape: CacheShape,
    /// Tokens each sequence holds before the call.
    pub past: Vec<usize>,
    /// Tokens each sequence appends (the first `new[b]` rows of the call), each `<= target_len`.
    pub new: Vec<usize>,
    /// T: rows of the call's query, key and value.
    pub target_len: usize,
    /// The layer's sliding window.
    pub window: Option<usize>,
    /// The window of the layer's attention extensions, as a band around each token's position
    /// ([`CacheUpdate::extended_problem`]).
    pub band: Option<KeyBand>,
    /// Which of the `new[b]` rows are written (B·T, row-major; `None`: all): KerasHub's
    /// `cache_update_mask`, where a false row leaves its slot as it was ([`CacheUpdate::at_index`]).
    pub written: Option<Vec<bool>>,
    /// The attention reads every slot of the cache (KerasHub's cached calls), not each sequence's
    /// tokens ([`CacheUpdate::at_index`]).
    pub attends_every_slot: bool,
    /// Whether the cache keeps rgba32float texture mirrors of its keys and values (`Nkv·H / 4` x
    /// `B·capacity` texels each, [`crate::Tuning::keeps_cache_texture`]): the call then appends to
    /// them as well ([`crate::BufferId::KeyCacheTexture`], [`crate::BufferId::ValueCacheTexture`]),
    /// and its attention reads them where a texture kernel applies.
    pub texture_mirror: bool,
}

impl CacheUpdate {
    /// Checks the call against the cache: one entry per sequence, `new[b] <= target_len`, and room
    /// for every sequence's new tokens.
    pub fn new(
        shape: CacheShape,
        past: &[usize],
        new: &[usize],
        target_len: usize,
        window: Option<usize>,
    ) -> Result<Self, GqaError> {
        const OP: &str = "KvCache";
        for (what, len) in [("batch (cached lengths)", past.len()), ("batch (new lengths)", new.len())] {
            if len != shape.batch {
                return Err(GqaError::CacheMismatch { op: OP, what, cache: shape.batch, call: len });
            }
        }
        if target_len == 0 {
            return Err(GqaError::ZeroSize { what: "new tokens of a cached call".into() });
        }
        for (b, (&p, &n)) in past.iter().zip(new).enumerate() {
            if n > target_len {
                return Err(GqaError::CacheLength { op: OP, sequence: b, length: target_len, requested: n });
            }
            match (shape.layout, window) {
                (CacheLayout::Linear, _) if p + n > shape.capacity => {
                    return Err(GqaError::CacheFull { sequence: b, length: p, appending: n, capacity: shape.capacity });
                }
                (CacheLayout::Linear, _) => {}
                (CacheLayout::Ring { .. }, None) => {
                    return Err(GqaError::CacheWindow {
                        op: OP,
                        detail: "a ring cache serves a layer with a sliding_window; this layer has none".into(),
                    });
                }
                (CacheLayout::Ring { keep_first }, Some(w)) => {
                    // Appending n tokens overwrites the slots of the n oldest ring tokens: none of
                    // them may be in the window of the call's own rows.
                    let most = (shape.capacity - keep_first + 1).saturating_sub(w);
                    if n > most {
                        return Err(GqaError::CacheWindow {
                            op: OP,
                            detail: format!(
                                "sequence {b} appends {n} tokens in one call; the ring (capacity {}, window {w}) \
                                 takes at most {most}: append in calls of at most {most}, or make the ring for a \
                                 larger chunk",
                                shape.capacity
                            ),
                        });
                    }
                }
            }
        }
        Ok(Self {
            shape,
            past: past.to_vec(),
            new: new.to_vec(),
            target_len,
            window,
            band: None,
            written: None,
            attends_every_slot: false,
            texture_mirror: false,
        })
    }

    /// A call in KerasHub's form on a linear cache: the `T` new tokens of every sequence written at
    /// slots `[index, index + T)` (where `written`, B·T row-major, says so; all when `None`; none
    /// when `writes` is false: a call that only reads the cache), query row `t` at position
    /// `index + t`, and the attention over every slot of the cache, which the call's own mask
    /// restricts.
    pub fn at_index(
        shape: CacheShape,
        index: usize,
        target_len: usize,
        writes: bool,
        written: Option<&[bool]>,
    ) -> Result<Self, GqaError> {
        if shape.layout != CacheLayout::Linear {
            return Err(GqaError::CacheWindow {
                op: "CacheUpdate::at_index",
                detail: "a call at a cache index writes a linear cache".into(),
            });
        }
        if let Some(w) = written.filter(|w| w.len() != shape.batch * target_len) {
            return Err(GqaError::ShapeMismatch {
                op: "CacheUpdate::at_index",
                detail: format!("{} written flags for (B, T) = ({}, {target_len})", w.len(), shape.batch),
            });
        }
        let n = if writes { target_len } else { 0 };
        let update = Self::new(shape, &vec![index; shape.batch], &vec![n; shape.batch], target_len, None)?;
        Ok(Self { written: written.map(<[bool]>::to_vec), attends_every_slot: true, ..update })
    }

    /// The same update for a cache that keeps texture mirrors of its keys and values (see
    /// [`CacheUpdate::texture_mirror`]) when `on`.
    pub fn with_texture_mirror(self, on: bool) -> Self {
        Self { texture_mirror: on, ..self }
    }

    /// S of the attention: the most slots a sequence occupies after the call (its length in a
    /// linear cache; at most the capacity in a ring).
    pub fn source_len(&self) -> usize {
        if self.attends_every_slot {
            return self.shape.capacity;
        }
        self.lengths_after().into_iter().map(|l| self.shape.slots_used(l)).max().unwrap_or(0)
    }

    /// The call's appends as contiguous runs: (sequence, first row of the call, first slot, tokens).
    /// One run per sequence in a linear cache; in a ring, a new run wherever the slots wrap (and
    /// wherever a row is not [`CacheUpdate::written`]).
    pub fn appends(&self) -> Vec<(usize, usize, usize, usize)> {
        let mut runs: Vec<(usize, usize, usize, usize)> = Vec::new();
        for (b, (&past, &new)) in self.past.iter().zip(&self.new).enumerate() {
            for i in 0..new {
                if self.written.as_ref().is_some_and(|w| !w[b * self.target_len + i]) {
                    continue;
                }
                let slot = self.shape.slot(past + i);
                match runs.last_mut() {
                    Some((rb, row, first, n)) if *rb == b && *row + *n == i && *first + *n == slot => *n += 1,
                    _ => runs.push((b, i, slot, 1)),
                }
            }
        }
        runs
    }

    /// Each sequence's length after the call (a call in KerasHub's form: every slot).
    pub fn lengths_after(&self) -> Vec<usize> {
        if self.attends_every_slot {
            return vec![self.shape.capacity; self.shape.batch];
        }
        self.past.iter().zip(&self.new).map(|(p, n)| p + n).collect()
    }

    /// Whether every sequence holds the same length and appends all `T` tokens (then the kernels'
    /// own causal mask and window apply; no mask is uploaded).
    /// A ring cache qualifies only while no slot has been reused and it keeps no sinks.
    pub fn is_uniform(&self) -> bool {
        if self.attends_every_slot {
            return false;
        }
        let linear = match self.shape.layout {
            CacheLayout::Linear => true,
            CacheLayout::Ring { keep_first } => {
                keep_first == 0 && self.lengths_after().iter().all(|&l| l <= self.shape.capacity)
            }
        };
        linear && self.past.windows(2).all(|w| w[0] == w[1]) && self.new.iter().all(|&n| n == self.target_len)
    }

    /// Whether new token `i` of sequence `b` sees the key at slot `j` (in a linear cache, token
    /// `j`): the token the slot holds after the call is at or before the row's position, and within
    /// the window or one of a ring's kept first tokens.
    pub fn visible(&self, b: usize, i: usize, j: usize) -> bool {
        let pos = self.past[b] + i;
        let Some(key) = self.shape.position_at(j, self.past[b] + self.new[b]) else {
            return false;
        };
        let sink = matches!(self.shape.layout, CacheLayout::Ring { keep_first } if key < keep_first);
        let banded = self.band.is_none_or(|band| band.sees(pos as i64, key as i64));
        key <= pos && (sink || (self.window.is_none_or(|w| pos - key < w) && banded))
    }

    /// The (B, T, S) attention mask of a ragged call (see [`CacheUpdate::visible`]).
    pub fn attention_mask(&self) -> Mask {
        let (b_len, t, s) = (self.shape.batch, self.target_len, self.source_len());
        let mut data = Vec::with_capacity(b_len * t * s);
        for b in 0..b_len {
            for i in 0..t {
                data.extend((0..s).map(|j| self.visible(b, i, j)));
            }
        }
        Mask::new([b_len, t, s], data).expect("the shape is built from the data's own sizes")
    }

    /// Checks a cached call on the host (the oracle's and the CPU layer's caches) and gives its
    /// update, problem and options: query (B, T, Dq), value (B, T, Dv), key (B, T, Dk) or `None`,
    /// rank 3 with the cache's batch; `lengths` the sequences' held tokens, `new` the tokens each
    /// appends; the layer's heads and its weights against the call's feature sizes.
    #[allow(clippy::too_many_arguments, reason = "the call's parts, each checked here once")]
    pub fn check_call(
        shape: CacheShape,
        op: &'static str,
        config: &GqaConfig,
        weights: &crate::weights::Weights,
        lengths: &[usize],
        new: &[usize],
        (query, value, key): (&HostTensor, &HostTensor, Option<&HostTensor>),
    ) -> Result<(Self, Problem, CallOptions), GqaError> {
        shape.check_heads(op, config.num_key_value_heads, config.head_dim)?;
        let dims3 = |x: &HostTensor, name: &str| match *x.shape() {
            [a, b, c] => Ok([a, b, c]),
            _ => Err(GqaError::Rank { op, tensor: name.into(), expected: 3, got: x.shape().to_vec() }),
        };
        let [b_len, t, dq] = dims3(query, "query")?;
        let [_, _, dv] = dims3(value, "value")?;
        let dk = key.map(|k| dims3(k, "key")).transpose()?.map(|[_, _, d]| d);
        if b_len != shape.batch {
            return Err(GqaError::CacheMismatch { op, what: "batch", cache: shape.batch, call: b_len });
        }
        for (name, x) in [("value", Some(value)), ("key", key)] {
            if let Some(x) = x.filter(|x| x.shape()[..2] != [b_len, t]) {
                return Err(GqaError::ShapeMismatch {
                    op,
                    detail: format!("{name} {:?} must have the query's batch and length ({b_len}, {t})", x.shape()),
                });
            }
        }
        let update = CacheUpdate::new(shape, lengths, new, t, config.sliding_window)?;
        let (problem, options) = update.problem(config, dq, dv, dk)?;
        let dims = crate::weights::LayerDims { query_dim: dq, key_dim: dk.unwrap_or(dv), value_dim: dv };
        weights.validate(config, dims)?;
        Ok((update, problem, options))
    }

    /// [`CacheUpdate::problem`] for a layer with attention extensions: its window (a band around
    /// each token's position, which the kept first tokens of a ring pass as they pass the layer's
    /// own window) joins the causal mask, the other extensions go to the problem. RoPE and QK-norm
    /// then put new token `i` of sequence `b` at position `past[b] + i`. The bidirectional window
    /// (by row, uncached calls only) is refused.
    pub fn extended_problem(
        &self,
        config: &GqaConfig,
        extensions: &AttentionExtensions,
        query_dim: usize,
        value_dim: usize,
        key_dim: Option<usize>,
    ) -> Result<(Problem, CallOptions), GqaError> {
        if matches!(extensions.window, Some(KeyWindow::Centered(_))) {
            return Err(GqaError::IncompatibleOptions(
                "the bidirectional window counts by query row: it has no cached form".into(),
            ));
        }
        let update = Self { band: extensions.window.map(|w| w.band()), ..self.clone() };
        let (problem, options) = update.problem(config, query_dim, value_dim, key_dim)?;
        // Uniform calls: the kernels' band at the bottom-right positions; ragged ones: in the mask.
        let window = if update.is_uniform() { extensions.window } else { None };
        let problem = problem.with_extensions(&AttentionExtensions { window, ..extensions.clone() })?;
        Ok((problem, options))
    }

    /// The attention problem of the call and the options that carry its masks: query (B, T, Dq); K
    /// and V seen as (B, S, D) with S = [`CacheUpdate::source_len`]; bottom-right causal.
    pub fn problem(
        &self,
        config: &GqaConfig,
        query_dim: usize,
        value_dim: usize,
        key_dim: Option<usize>,
    ) -> Result<(Problem, CallOptions), GqaError> {
        let (b, t, s) = (self.shape.batch, self.target_len, self.source_len());
        let mut config = config.clone();
        let options = if self.is_uniform() {
            CallOptions { use_causal_mask: true, causal_alignment: CausalAlignment::BottomRight, ..Default::default() }
        } else {
            // Each sequence's own offset and window are in the mask; the config's window would apply
            // one shift to all.
            config.sliding_window = None;
            CallOptions { attention_mask: Some(self.attention_mask()), ..Default::default() }
        };
        let key_shape = key_dim.map(|d| [b, s, d]);
        let problem = Problem::new(
            &config,
            &[b, t, query_dim],
            &[b, s, value_dim],
            key_shape.as_ref().map(|k| &k[..]),
            &options,
        )?;
        Ok((problem, options))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> CacheShape {
        CacheShape::new(&GqaConfig::new(8, 4, 2), 2, 16).unwrap()
    }

    #[test]
    fn ring_slots_positions_and_appends() {
        let config = GqaConfig { sliding_window: Some(4), ..GqaConfig::new(8, 4, 2) };
        // keep_first 2, window 4, chunk 2: capacity 2 + 4 + 1 = 7, ring of 5 slots.
        let ring = CacheShape::ring(&config, 1, 2, 2).unwrap();
        assert_eq!((ring.capacity, ring.layout), (7, CacheLayout::Ring { keep_first: 2 }));
        let slots: Vec<usize> = (0..13).map(|p| ring.slot(p)).collect();
        assert_eq!(slots, [0, 1, 2, 3, 4, 5, 6, 2, 3, 4, 5, 6, 2]);
        // After 13 tokens: the sinks 0, 1 and the last 5 (8..13).
        assert_eq!(ring.held(13).iter().map(|h| h.0).collect::<Vec<_>>(), [0, 1, 8, 9, 10, 11, 12]);
        assert_eq!((0..7).map(|j| ring.position_at(j, 13)).collect::<Vec<_>>(), [0, 1, 12, 8, 9, 10, 11].map(Some));
        assert_eq!(ring.position_at(4, 3), None);
        assert_eq!(ring.slots_used(13), 7);
        // Two tokens at 11 and 12 wrap: two runs.
        let u = CacheUpdate::new(ring, &[11], &[2], 2, Some(4)).unwrap();
        assert_eq!(u.appends(), [(0, 0, 6, 1), (0, 1, 2, 1)]);
        assert!(!u.is_uniform());
        // Token 12 (row 1) sees the sinks and 9..12; token 11 (row 0) the sinks and 8..11, not 12.
        let seen =
            |i| (0..7).filter(|&j| u.visible(0, i, j)).map(|j| ring.position_at(j, 13).unwrap()).collect::<Vec<_>>();
        assert_eq!(seen(1), [0, 1, 12, 9, 10, 11]);
        assert_eq!(seen(0), [0, 1, 8, 9, 10, 11]);
        // A linear cache: one run, and the same visibility as before.
        let linear = CacheShape::new(&config, 1, 16).unwrap();
        let u = CacheUpdate::new(linear, &[11], &[2], 2, Some(4)).unwrap();
        assert_eq!(u.appends(), [(0, 0, 11, 2)]);
        assert_eq!((0..13).filter(|&j| u.visible(0, 1, j)).collect::<Vec<_>>(), [9, 10, 11, 12]);
    }

    #[test]
    fn ring_misuse_is_a_window_error() {
        let windowed = GqaConfig { sliding_window: Some(4), ..GqaConfig::new(8, 4, 2) };
        assert!(matches!(CacheShape::ring(&GqaConfig::new(8, 4, 2), 1, 1, 0), Err(GqaError::CacheWindow { .. })));
        assert!(CacheShape::ring(&windowed, 1, 0, 0).is_err());
        let ring = CacheShape::ring(&windowed, 1, 2, 0).unwrap();
        assert_eq!(ring.capacity, 5);
        // Three tokens in one call: more than the chunk it was made for.
        assert!(matches!(CacheUpdate::new(ring, &[20], &[3], 3, Some(4)), Err(GqaError::CacheWindow { .. })));
        assert!(CacheUpdate::new(ring, &[20], &[2], 2, Some(4)).is_ok());
        // Rolling back: it holds tokens 15..20; back to 18 the next token sees 15..18, held; back
        // to 17 it would need 14, dropped.
        let mut lengths = vec![20];
        assert!(ring.truncate("t", &mut lengths, 18, Some(4)).is_ok() && lengths == [18]);
        let mut lengths = vec![20];
        let err = ring.truncate("t", &mut lengths, 17, Some(4)).unwrap_err();
        assert!(matches!(err, GqaError::CacheWindow { .. }) && err.to_string().contains("token 14"), "{err}");
        assert_eq!(lengths, [20], "nothing changes on an error");
        // Short sequences roll back freely: nothing was dropped yet.
        let mut lengths = vec![4];
        assert!(ring.truncate("t", &mut lengths, 1, Some(4)).is_ok());
    }

    #[test]
    fn errors_name_the_problem() {
        let s = shape();
        assert!(matches!(
            CacheUpdate::new(s, &[10, 15], &[2, 2], 2, None),
            Err(GqaError::CacheFull { sequence: 1, length: 15, appending: 2, capacity: 16 })
        ));
        assert!(matches!(CacheUpdate::new(s, &[1], &[1], 1, None), Err(GqaError::CacheMismatch { .. })));
        assert!(matches!(CacheUpdate::new(s, &[1, 1], &[3, 1], 2, None), Err(GqaError::CacheLength { .. })));
        assert!(CacheShape::new(&GqaConfig::new(8, 4, 2), 0, 4).is_err());
        assert!(s.check_heads("t", 4, 8).is_err() && s.check_heads("t", 2, 8).is_ok());
    }

    #[test]
    fn uniform_calls_use_the_kernels_causal_mask() {
        let u = CacheUpdate::new(shape(), &[5, 5], &[3, 3], 3, Some(4)).unwrap();
        assert!(u.is_uniform());
        let (p, o) =
            u.problem(&GqaConfig { sliding_window: Some(4), ..GqaConfig::new(8, 4, 2) }, 12, 12, None).unwrap();
        assert_eq!((p.target_len, p.source_len, p.mask.query_shift), (3, 8, 5));
        assert!(o.attention_mask.is_none() && p.mask.window == Some(4));
    }

    /// A step over a long cache needs no binding of the prefix's inputs: only the cache is S long.
    #[test]
    fn long_cache_steps_fit_default_limits() {
        let config = GqaConfig::new(128, 32, 8);
        let shape = CacheShape::new(&config, 1, 32768).unwrap();
        let u = CacheUpdate::new(shape, &[32767], &[1], 1, None).unwrap();
        let (p, _) = u.problem(&config, 4096, 4096, None).unwrap();
        let limits = crate::Limits::webgpu_default();
        let plan = crate::Plan::cached(&p, &u, &limits, crate::Tuning::CPU).unwrap();
        assert!(!plan.chunking.splits_batch(&p));
        assert_eq!(plan.buffer(crate::BufferId::Value).unwrap().bytes, 4096 * 4);
        assert_eq!(plan.buffer(crate::BufferId::KeyCache).unwrap().bytes, 32768 * 1024 * 4);
        // One token more than the binding holds is refused, naming the limit.
        let shape = CacheShape::new(&config, 1, 32769).unwrap();
        let u = CacheUpdate::new(shape, &[32768], &[1], 1, None).unwrap();
        let (p, _) = u.problem(&config, 4096, 4096, None).unwrap();
        let err = crate::Plan::cached(&p, &u, &limits, crate::Tuning::CPU).unwrap_err();
        assert!(matches!(err, GqaError::LimitExceeded { limit: "max_storage_buffer_binding_size", .. }), "{err}");
    }

    #[test]
    fn ragged_mask_has_each_sequences_offset_and_window() {
        let u = CacheUpdate::new(shape(), &[2, 5], &[2, 1], 2, Some(3)).unwrap();
        assert!(!u.is_uniform());
        assert_eq!(u.source_len(), 6);
        assert_eq!(u.lengths_after(), vec![4, 6]);
        // Sequence 0, new token 1 sits at position 3: sees 1, 2, 3 (window 3), not 4 and 5.
        let row: Vec<bool> = (0..6).map(|j| u.visible(0, 1, j)).collect();
        assert_eq!(row, [false, true, true, true, false, false]);
        // Sequence 1 appends one token at 5; its padding row 1 sees only valid keys.
        assert_eq!((0..6).filter(|&j| u.visible(1, 0, j)).collect::<Vec<_>>(), [3, 4, 5]);
        assert!(!u.visible(1, 1, 6));
        let (p, o) =
            u.problem(&GqaConfig { sliding_window: Some(3), ..GqaConfig::new(8, 4, 2) }, 12, 12, None).unwrap();
        assert!(p.mask.window.is_none() && p.mask.causal.is_none());
        assert_eq!(o.attention_mask.unwrap().shape(), &[2, 2, 6]);
    }
}
