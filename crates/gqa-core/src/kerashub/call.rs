//! One call of a KerasHub attention layer, with KerasHub's arguments: the input, the (B, T, S)
//! attention mask, the cache with its `cache_update_index`, Gemma 3's `cache_update_mask`; and
//! its checks, shared by every implementation.

use super::{KerasHubClass, KerasHubConfig};
use crate::error::GqaError;
use crate::options::MaskedRows;
use crate::tensor::{HostTensor, Mask};

const OP: &str = "KerasHub attention call";

/// A KerasHub KV cache: keys and values (B, S, Nkv, H) each, S the capacity, in the layer's own
/// stored layout (rotated keys; Gemma 1/2's interleaved halves).
#[derive(Debug, Clone, PartialEq)]
pub struct KerasHubCache {
    /// Keys (B, S, Nkv, H).
    pub keys: HostTensor,
    /// Values (B, S, Nkv, H).
    pub values: HostTensor,
}

impl KerasHubCache {
    /// A cache of zeros, as KerasHub's `_build_cache` starts one.
    pub fn zeros(batch: usize, capacity: usize, num_kv_heads: usize, head_dim: usize) -> Self {
        let shape = [batch, capacity, num_kv_heads, head_dim];
        Self { keys: HostTensor::zeros(shape), values: HostTensor::zeros(shape) }
    }

    /// Splits the stacked form (B, 2, S, Nkv, H) of every class but Gemma 3.
    pub fn from_stacked(stacked: &HostTensor) -> Result<Self, GqaError> {
        let shape = stacked.shape();
        if shape.len() != 5 || shape[1] != 2 {
            return Err(GqaError::ShapeMismatch {
                op: OP,
                detail: format!("cache must be (B, 2, S, Nkv, H), got {shape:?}"),
            });
        }
        let part = shape[2..].iter().product::<usize>();
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        for b in stacked.data().chunks_exact(2 * part) {
            keys.extend_from_slice(&b[..part]);
            values.extend_from_slice(&b[part..]);
        }
        let one = [shape[0], shape[2], shape[3], shape[4]];
        Ok(Self { keys: HostTensor::new(one, keys)?, values: HostTensor::new(one, values)? })
    }

    /// The stacked form (B, 2, S, Nkv, H).
    pub fn to_stacked(&self) -> HostTensor {
        let shape = self.keys.shape();
        let part = shape[1..].iter().product::<usize>();
        let mut data = Vec::with_capacity(2 * self.keys.len());
        for (k, v) in self.keys.data().chunks_exact(part.max(1)).zip(self.values.data().chunks_exact(part.max(1))) {
            data.extend_from_slice(k);
            data.extend_from_slice(v);
        }
        HostTensor::new([shape[0], 2, shape[1], shape[2], shape[3]], data).expect("the stacked shape holds both halves")
    }

    /// B.
    pub fn batch(&self) -> usize {
        self.keys.shape()[0]
    }

    /// S, the slots of each sequence.
    pub fn capacity(&self) -> usize {
        self.keys.shape()[1]
    }
}

/// The arguments of one call (KerasHub's names), and the masked-row policy to follow.
#[derive(Debug, Clone, Copy)]
pub struct KerasHubCall<'a> {
    /// `hidden_states` / `x`: (B, T, D).
    pub input: &'a HostTensor,
    /// `attention_mask` (B, T, S), S = T uncached or the cache's capacity; `None`: every key.
    pub attention_mask: Option<&'a Mask>,
    /// `cache`.
    pub cache: Option<&'a KerasHubCache>,
    /// `cache_update_index`: the slot of the first new token, and the position of query row 0.
    pub cache_update_index: Option<usize>,
    /// `cache_update_mask` (B, T), Gemma 3: where false, the slot keeps its old keys and values.
    pub cache_update_mask: Option<&'a Mask>,
    /// What a query row with no visible key gives (see [`KerasHubClass::fused_on_jax`]).
    pub masked_rows: MaskedRows,
}

/// The sizes of a checked call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallShape {
    /// B.
    pub batch: usize,
    /// T, the new tokens.
    pub target_len: usize,
    /// S, the keys attended: T uncached, the cache's capacity cached.
    pub source_len: usize,
    /// The position of query row 0 (`cache_update_index`, or 0).
    pub start: usize,
    /// Whether the call writes its keys and values into the cache.
    pub writes: bool,
}

impl<'a> KerasHubCall<'a> {
    /// An uncached call on `input` with no mask.
    pub fn new(input: &'a HostTensor) -> Self {
        Self {
            input,
            attention_mask: None,
            cache: None,
            cache_update_index: None,
            cache_update_mask: None,
            masked_rows: MaskedRows::Zeros,
        }
    }

    /// Sets the attention mask.
    pub fn with_mask(mut self, mask: &'a Mask) -> Self {
        self.attention_mask = Some(mask);
        self
    }

    /// Sets the cache and the update index.
    pub fn with_cache(mut self, cache: &'a KerasHubCache, index: Option<usize>) -> Self {
        self.cache = Some(cache);
        self.cache_update_index = index;
        self
    }

    /// Sets Gemma 3's cache update mask.
    pub fn with_update_mask(mut self, mask: &'a Mask) -> Self {
        self.cache_update_mask = Some(mask);
        self
    }

    /// Sets the masked-row policy.
    pub fn with_masked_rows(mut self, policy: MaskedRows) -> Self {
        self.masked_rows = policy;
        self
    }

    /// Checks the arguments against the layer as KerasHub's `call` would accept them.
    pub fn check(&self, layer: &KerasHubConfig) -> Result<CallShape, GqaError> {
        let mismatch = |detail: String| GqaError::ShapeMismatch { op: OP, detail };
        let shape = self.input.shape();
        let name = layer.class.input_name();
        if shape.len() != 3 {
            return Err(GqaError::Rank { op: OP, tensor: name.into(), expected: 3, got: shape.to_vec() });
        }
        let (batch, target_len) = (shape[0], shape[1]);
        if batch == 0 || target_len == 0 {
            return Err(GqaError::ZeroSize { what: format!("batch and length of {name} {shape:?}") });
        }
        if shape[2] != layer.hidden_dim {
            return Err(mismatch(format!("{name} {shape:?} must have {} features", layer.hidden_dim)));
        }
        let gemma = matches!(layer.class, KerasHubClass::Gemma | KerasHubClass::Gemma3);
        let (nkv, h) = (layer.config.num_key_value_heads, layer.config.head_dim);
        let (source_len, writes) = match self.cache {
            None => {
                if self.cache_update_index.is_some() && !gemma {
                    return Err(GqaError::IncompatibleOptions(format!(
                        "{}: cache_update_index needs a cache",
                        layer.class
                    )));
                }
                (target_len, false)
            }
            Some(cache) => {
                let want = [batch, cache.capacity(), nkv, h];
                if cache.keys.shape() != want || cache.values.shape() != want {
                    return Err(mismatch(format!(
                        "cache keys {:?} and values {:?} must be (B, S, Nkv, H) = (.., .., {nkv}, {h}) with B = {batch}",
                        cache.keys.shape(),
                        cache.values.shape()
                    )));
                }
                (cache.capacity(), self.cache_update_index.is_some() || gemma)
            }
        };
        let start = self.cache_update_index.unwrap_or(0);
        if writes && start + target_len > source_len {
            return Err(GqaError::CacheFull {
                sequence: 0,
                length: start,
                appending: target_len,
                capacity: source_len,
            });
        }
        if let Some(mask) = self.attention_mask
            && mask.shape() != [batch, target_len, source_len]
        {
            return Err(mismatch(format!(
                "attention_mask {:?} must be (B, T, S) = {:?}",
                mask.shape(),
                [batch, target_len, source_len]
            )));
        }
        if let Some(mask) = self.cache_update_mask {
            if layer.class != KerasHubClass::Gemma3 || !writes {
                return Err(GqaError::IncompatibleOptions(format!(
                    "{}: cache_update_mask is an argument of CachedGemma3Attention's cached calls",
                    layer.class
                )));
            }
            if mask.shape() != [batch, target_len] {
                return Err(mismatch(format!("cache_update_mask {:?} must be (B, T)", mask.shape())));
            }
        }
        if matches!(layer.extensions.window, Some(crate::extensions::KeyWindow::Centered(_)))
            && source_len != target_len
        {
            return Err(GqaError::IncompatibleOptions(format!(
                "{}: the bidirectional window needs S == T (uncached calls), got T = {target_len}, S = {source_len}",
                layer.class
            )));
        }
        Ok(CallShape { batch, target_len, source_len, start, writes })
    }
}

impl KerasHubCall<'_> {
    /// The options of the same computation as a `GroupQueryAttention` call of the layer's
    /// [`KerasHubConfig::config`] with its extensions on `query = value = input` (uncached calls):
    /// the attention mask as given, no causal flag (KerasHub's decoders pass causality in the mask),
    /// query positions from 0, and the masked-row policy the class follows
    /// ([`KerasHubClass::fused_on_jax`]: the others give zero weights on every backend).
    pub fn forward_options(&self, class: KerasHubClass) -> crate::options::CallOptions {
        crate::options::CallOptions {
            attention_mask: self.attention_mask.cloned(),
            masked_rows: if class.fused_on_jax() { self.masked_rows } else { MaskedRows::Zeros },
            ..Default::default()
        }
    }
}

/// What a call returns: the output (B, T, D) and, for cached calls, the updated cache.
#[derive(Debug, Clone, PartialEq)]
pub struct KerasHubOutput {
    /// (B, T, D).
    pub output: HostTensor,
    /// The cache after the call (unchanged when it only read it).
    pub cache: Option<KerasHubCache>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacked_round_trip() {
        let stacked = HostTensor::new([2, 2, 3, 1, 2], (0..24).map(|i| i as f32).collect()).unwrap();
        let cache = KerasHubCache::from_stacked(&stacked).unwrap();
        assert_eq!(cache.keys.shape(), [2, 3, 1, 2]);
        assert_eq!(&cache.keys.data()[..6], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(&cache.values.data()[..6], &[6.0, 7.0, 8.0, 9.0, 10.0, 11.0]);
        assert_eq!(cache.to_stacked(), stacked);
        assert!(KerasHubCache::from_stacked(&HostTensor::zeros([2, 3, 3, 1, 2])).is_err());
    }

    #[test]
    fn call_checks() {
        let json = r#"{"num_query_heads": 2, "num_key_value_heads": 1}"#;
        let layer = KerasHubConfig::from_json(KerasHubClass::Llama, json, 8).unwrap();
        let x = HostTensor::zeros([1, 3, 8]);
        assert_eq!(
            KerasHubCall::new(&x).check(&layer).unwrap(),
            CallShape { batch: 1, target_len: 3, source_len: 3, start: 0, writes: false }
        );
        let mut index_only = KerasHubCall::new(&x);
        index_only.cache_update_index = Some(0);
        assert!(matches!(index_only.check(&layer), Err(GqaError::IncompatibleOptions(_))));
        let cache = KerasHubCache::zeros(1, 4, 1, 4);
        let shape = KerasHubCall::new(&x).with_cache(&cache, Some(1)).check(&layer).unwrap();
        assert_eq!((shape.source_len, shape.start, shape.writes), (4, 1, true));
        assert!(matches!(
            KerasHubCall::new(&x).with_cache(&cache, Some(2)).check(&layer),
            Err(GqaError::CacheFull { capacity: 4, length: 2, appending: 3, .. })
        ));
        let read_only = KerasHubCall::new(&x).with_cache(&cache, None).check(&layer).unwrap();
        assert!(!read_only.writes);
        let mask = Mask::filled([1, 3, 3], true);
        assert!(KerasHubCall::new(&x).with_cache(&cache, Some(0)).with_mask(&mask).check(&layer).is_err());
        let update = Mask::filled([1, 3], true);
        assert!(KerasHubCall::new(&x).with_cache(&cache, Some(0)).with_update_mask(&update).check(&layer).is_err());
        assert!(KerasHubCall::new(&HostTensor::zeros([1, 3, 7])).check(&layer).is_err());
    }
}
