//! KerasHub's attention layers in f64, step by step as their `call` computes (keras-hub 0.32.0,
//! the non-fused path; `SEMANTICS.md` and `KERASHUB.md` list the traps):
//!
//! 1. projections `x · W (+ b)`;
//! 2. QK-norm of every query and new key head (Qwen3, Gemma 3);
//! 3. RoPE of queries and new keys at positions `cache_update_index + t`
//!    ([`gqa_core::extensions::Rope`]: its angles are KerasHub's f32 ones);
//! 4. cached calls write the new keys and values at slots `[index, index + T)` (Gemma 3: only where
//!    `cache_update_mask` is true) and attend over all S slots;
//! 5. scores `scale · q·k` with query head `u` reading kv head `u / (Nq / Nkv)`, then the soft cap;
//! 6. visible keys: the attention mask AND the layer's window; masked logits are excluded from a
//!    softmax whose denominator also holds the head's sink (GPT-OSS);
//! 7. a query row with no visible key gets zero weights, or (with
//!    [`MaskedRows::KerasDefault`] on the classes that take JAX's fused path) `1/S` on every slot;
//! 8. the output `O · Wo (+ bo)`.
//!
//! ```
//! use gqa_core::kerashub::{KerasHubCall, KerasHubClass, KerasHubConfig};
//! use gqa_core::{ExtensionWeights, HostTensor, Mask};
//!
//! let json = r#"{"num_query_heads": 2, "num_key_value_heads": 1}"#;
//! let spec = KerasHubConfig::from_json(KerasHubClass::Llama, json, 8)?;
//! let dims = gqa_core::LayerDims { query_dim: 8, key_dim: 8, value_dim: 8 };
//! let weights = gqa_ref::initialize_weights(&spec.config, dims, 7)?;
//! let layer = gqa_ref::KerasHubLayer::new(spec, weights, ExtensionWeights::default())?;
//! let x = HostTensor::new([1, 3, 8], (0..24).map(|i| (i as f32 * 0.3).sin()).collect())?;
//! let causal = Mask::new([1, 3, 3], (0..9).map(|i| i % 3 <= i / 3).collect())?;
//! let out = layer.call(&KerasHubCall::new(&x).with_mask(&causal))?;
//! assert_eq!(out.output.shape(), [1, 3, 8]);
//! # Ok::<(), gqa_core::GqaError>(())
//! ```

use gqa_core::kerashub::{CallShape, KerasHubCache, KerasHubCall, KerasHubConfig, KerasHubOutput};
use gqa_core::{ExtensionWeights, GqaError, HostTensor, LayerDims, MaskedRows, Weights};

use crate::dense::project;
use crate::forward::dense;

/// A KerasHub attention layer with its weights: the dense ones in Keras' `GroupQueryAttention`
/// layout (Q/K/V kernels (D, N, H), the output kernel (Nq, H, D)) and the extensions' own.
#[derive(Debug, Clone)]
pub struct KerasHubLayer {
    spec: KerasHubConfig,
    weights: Weights,
    extra: ExtensionWeights,
}

impl KerasHubLayer {
    /// Checks the weights against the config (shapes, presence) and builds the layer.
    pub fn new(spec: KerasHubConfig, weights: Weights, extra: ExtensionWeights) -> Result<Self, GqaError> {
        let d = spec.hidden_dim;
        weights.validate(&spec.config, LayerDims { query_dim: d, key_dim: d, value_dim: d })?;
        extra.validate(&spec.extensions, &spec.config)?;
        Ok(Self { spec, weights, extra })
    }

    /// The config.
    pub fn spec(&self) -> &KerasHubConfig {
        &self.spec
    }

    /// The dense weights.
    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// The extensions' weights.
    pub fn extension_weights(&self) -> &ExtensionWeights {
        &self.extra
    }

    /// One call (see the [module](self)). Returns the output, and the updated cache when a cache
    /// was given.
    pub fn call(&self, call: &KerasHubCall) -> Result<KerasHubOutput, GqaError> {
        let shape = call.check(&self.spec)?;
        let cfg = &self.spec.config;
        let (nq, nkv, h) = (cfg.num_query_heads, cfg.num_key_value_heads, cfg.head_dim);
        let (b, t) = (shape.batch, shape.target_len);

        // Steps 1-3 on the new tokens.
        let x = call.input.data();
        let mut q = dense(x, &self.weights.query);
        self.position(&mut q, nq, &shape, self.extra.query_norm.as_ref());
        let mut k_new = dense(x, &self.weights.key);
        self.position(&mut k_new, nkv, &shape, self.extra.key_norm.as_ref());
        let v_new = dense(x, &self.weights.value);

        // Step 4: the keys and values attended, and the cache returned.
        let (k, v, cache) = match call.cache {
            None => (k_new, v_new, None),
            Some(cache) if !shape.writes => (widen(&cache.keys), widen(&cache.values), Some(cache.clone())),
            Some(cache) => {
                let (mut k, mut v) = (widen(&cache.keys), widen(&cache.values));
                let row = nkv * h;
                for bi in 0..b {
                    for ti in 0..t {
                        if call.cache_update_mask.is_some_and(|m| !m.data()[bi * t + ti]) {
                            continue;
                        }
                        let slot = (bi * shape.source_len + shape.start + ti) * row;
                        let new = (bi * t + ti) * row;
                        k[slot..slot + row].copy_from_slice(&k_new[new..new + row]);
                        v[slot..slot + row].copy_from_slice(&v_new[new..new + row]);
                    }
                }
                let updated = KerasHubCache {
                    keys: HostTensor::new(cache.keys.shape(), to_f32(&k))?,
                    values: HostTensor::new(cache.values.shape(), to_f32(&v))?,
                };
                (k, v, Some(updated))
            }
        };

        // Steps 5-7.
        let o = self.attend(call, &shape, &q, &k, &v);

        // Step 8.
        let y = project(
            &o,
            b * t,
            nq * h,
            self.weights.output.kernel.data(),
            self.weights.output.bias.as_ref().map(HostTensor::data),
        );
        let output = HostTensor::new([b, t, self.spec.hidden_dim], to_f32(&y))?;
        Ok(KerasHubOutput { output, cache })
    }

    /// Steps 2 and 3 on projected heads (B, T, N, H): the norm with `scale`, then RoPE at
    /// `start + t`.
    fn position(&self, x: &mut [f64], heads: usize, shape: &CallShape, scale: Option<&HostTensor>) {
        let ext = &self.spec.extensions;
        let h = self.spec.config.head_dim;
        for (row, token) in x.chunks_exact_mut(heads * h).enumerate() {
            let position = shape.start + row % shape.target_len;
            for head in token.chunks_exact_mut(h) {
                if let (Some(norm), Some(scale)) = (&ext.qk_norm, scale) {
                    norm.apply(head, scale.data());
                }
                if let Some(rope) = &ext.rope {
                    rope.rotate(head, position);
                }
            }
        }
    }

    /// Steps 5 to 7: `O` (B, T, Nq, H) from `q` (B, T, Nq, H) and `k`, `v` (B, S, Nkv, H).
    fn attend(&self, call: &KerasHubCall, shape: &CallShape, q: &[f64], k: &[f64], v: &[f64]) -> Vec<f64> {
        let cfg = &self.spec.config;
        let ext = &self.spec.extensions;
        let (nq, nkv, h) = (cfg.num_query_heads, cfg.num_key_value_heads, cfg.head_dim);
        let (b, t, s) = (shape.batch, shape.target_len, shape.source_len);
        let group = nq / nkv;
        let scale = ext.scale.value(h);
        let uniform = call.masked_rows == MaskedRows::KerasDefault && self.spec.class.fused_on_jax();
        let mut o = vec![0.0f64; b * t * nq * h];
        let mut weights = vec![0.0f64; s];
        for bi in 0..b {
            for ti in 0..t {
                let position = shape.start + ti;
                let visible: Vec<bool> = (0..s)
                    .map(|j| {
                        call.attention_mask.is_none_or(|m| m.data()[(bi * t + ti) * s + j])
                            && ext.window.is_none_or(|w| w.sees(ti, position, j))
                    })
                    .collect();
                for u in 0..nq {
                    let g = u / group;
                    let q_row = &q[((bi * t + ti) * nq + u) * h..][..h];
                    let sink = self.extra.sinks.as_ref().filter(|_| ext.sinks).map(|x| f64::from(x.data()[u]));
                    if !visible.contains(&true) {
                        weights.fill(if uniform { 1.0 / s as f64 } else { 0.0 });
                    } else {
                        for (j, w) in weights.iter_mut().enumerate() {
                            let k_row = &k[((bi * s + j) * nkv + g) * h..][..h];
                            let dot: f64 = q_row.iter().zip(k_row).map(|(a, c)| a * c).sum();
                            *w = if visible[j] { ext.cap(scale * dot) } else { f64::NEG_INFINITY };
                        }
                        let max = weights.iter().copied().chain(sink).fold(f64::NEG_INFINITY, f64::max);
                        let mut sum = sink.map_or(0.0, |x| (x - max).exp());
                        for w in weights.iter_mut() {
                            *w = (*w - max).exp();
                            sum += *w;
                        }
                        for w in weights.iter_mut() {
                            *w /= sum;
                        }
                    }
                    let o_row = &mut o[((bi * t + ti) * nq + u) * h..][..h];
                    for (j, &w) in weights.iter().enumerate() {
                        let v_row = &v[((bi * s + j) * nkv + g) * h..][..h];
                        for (a, &x) in o_row.iter_mut().zip(v_row) {
                            *a += w * x;
                        }
                    }
                }
            }
        }
        o
    }
}

fn widen(x: &HostTensor) -> Vec<f64> {
    x.data().iter().map(|&v| f64::from(v)).collect()
}

fn to_f32(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}
