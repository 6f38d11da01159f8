//! The attention layers of KerasHub's GQA decoders (keras-hub 0.32.0) as a [`GqaConfig`] plus
//! [`AttentionExtensions`]: [`KerasHubClass`] names them, [`KerasHubConfig::from_json`] reads a
//! layer's config JSON (its `get_config()`, or for the classes whose `get_config()` is broken the
//! `Layer` base config plus every constructor argument) and the input's hidden size.
//!
//! | class | RoPE | QK-norm | scale | soft cap | sinks | window (layer) | biases |
//! |---|---|---|---|---|---|---|---|
//! | `LlamaAttention` | plain or Llama 3 | - | 1/√H | - | - | - (decoder mask) | - |
//! | `CachedMistralAttention` | linear | - | 1/√H | - | - | - (decoder mask) | - |
//! | `Qwen3Attention` | linear | `scale` | 1/√H | - | - | symmetric | - |
//! | `GptOssAttention` | YaRN, 2⌊H/2⌋ rotated | - | 1/√H | - | yes | lookback (W + 1 keys) | yes |
//! | `CachedGemmaAttention` | plain, interleaved | - | 1/√H or 1/√(D // Nq) | yes | - | symmetric | - |
//! | `CachedGemma3Attention` | linear | `1 + scale` | 1/√H or 1/√(D // Nq) | yes | - | symmetric or centred | - |
//!
//! ```
//! use gqa_core::kerashub::{KerasHubClass, KerasHubConfig};
//!
//! let json = r#"{"name": "attn", "num_query_heads": 8, "num_key_value_heads": 2,
//!               "head_dim": 16, "rope_max_wavelength": 1000000, "layer_norm_epsilon": 1e-6,
//!               "sliding_window_size": 4096}"#;
//! let layer = KerasHubConfig::from_json(KerasHubClass::Qwen3, json, 64)?;
//! assert_eq!(layer.config.head_dim, 16);
//! assert!(layer.extensions.qk_norm.is_some() && layer.extensions.rope.is_some());
//! # Ok::<(), gqa_core::GqaError>(())
//! ```

mod call;
mod config;

pub use call::{CallShape, KerasHubCache, KerasHubCall, KerasHubOutput};
pub use config::KerasHubConfig;

/// A KerasHub attention class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KerasHubClass {
    /// `LlamaAttention` (Llama 2 and 3).
    Llama,
    /// `CachedMistralAttention`.
    Mistral,
    /// `Qwen3Attention`.
    Qwen3,
    /// `GptOssAttention`.
    GptOss,
    /// `CachedGemmaAttention` (Gemma 1 and 2).
    Gemma,
    /// `CachedGemma3Attention`.
    Gemma3,
}

/// How a class passes its KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheForm {
    /// One tensor (B, 2, S, Nkv, H): `[:, 0]` keys, `[:, 1]` values.
    Stacked,
    /// A tuple (keys, values) of (B, S, Nkv, H) each (Gemma 3).
    Tuple,
}

/// How a class's Q/K/V kernels are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelLayout {
    /// (D, N, H), as Keras' `GroupQueryAttention`.
    InputFirst,
    /// (N, D, H) (the Gemma family's einsum `btd,ndh->btnh`).
    HeadsFirst,
}

impl KerasHubClass {
    /// Every class.
    pub const ALL: [KerasHubClass; 6] = [
        KerasHubClass::Llama,
        KerasHubClass::Mistral,
        KerasHubClass::Qwen3,
        KerasHubClass::GptOss,
        KerasHubClass::Gemma,
        KerasHubClass::Gemma3,
    ];

    /// The Python class name.
    pub fn class_name(self) -> &'static str {
        match self {
            KerasHubClass::Llama => "LlamaAttention",
            KerasHubClass::Mistral => "CachedMistralAttention",
            KerasHubClass::Qwen3 => "Qwen3Attention",
            KerasHubClass::GptOss => "GptOssAttention",
            KerasHubClass::Gemma => "CachedGemmaAttention",
            KerasHubClass::Gemma3 => "CachedGemma3Attention",
        }
    }

    /// The class of a Python class name (with or without a `keras_hub>` registration prefix);
    /// `None` for any other name.
    pub fn from_class_name(name: &str) -> Option<Self> {
        let bare = name.rsplit('>').next().unwrap_or(name);
        Self::ALL.into_iter().find(|c| c.class_name() == bare)
    }

    /// The name of the call's input argument: `hidden_states`, or `x` for the Gemma family.
    pub fn input_name(self) -> &'static str {
        match self {
            KerasHubClass::Gemma | KerasHubClass::Gemma3 => "x",
            _ => "hidden_states",
        }
    }

    /// How the class passes its cache.
    pub fn cache_form(self) -> CacheForm {
        match self {
            KerasHubClass::Gemma3 => CacheForm::Tuple,
            _ => CacheForm::Stacked,
        }
    }

    /// The layout of the Q/K/V kernels.
    pub fn kernel_layout(self) -> KernelLayout {
        match self {
            KerasHubClass::Gemma | KerasHubClass::Gemma3 => KernelLayout::HeadsFirst,
            _ => KernelLayout::InputFirst,
        }
    }

    /// The sub-layer names of the query and key norms' `scale` weights, when the class has them.
    pub fn norm_layer_names(self) -> Option<(&'static str, &'static str)> {
        match self {
            KerasHubClass::Qwen3 => Some(("query_dense_layernorm", "key_dense_layernorm")),
            KerasHubClass::Gemma3 => Some(("query_norm", "key_norm")),
            _ => None,
        }
    }

    /// Whether the class takes Keras' fused `dot_product_attention` on JAX (and torch), where a
    /// fully masked query row averages all S value slots ([`crate::MaskedRows::KerasDefault`]);
    /// the other classes give such a row zero weights on every backend.
    pub fn fused_on_jax(self) -> bool {
        matches!(self, KerasHubClass::Llama | KerasHubClass::Mistral | KerasHubClass::Qwen3)
    }
}

impl std::fmt::Display for KerasHubClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.class_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_round_trip() {
        for c in KerasHubClass::ALL {
            assert_eq!(KerasHubClass::from_class_name(c.class_name()), Some(c));
        }
        assert_eq!(KerasHubClass::from_class_name("keras_hub>LlamaAttention"), Some(KerasHubClass::Llama));
        assert_eq!(KerasHubClass::from_class_name("GroupQueryAttention"), None);
    }
}
