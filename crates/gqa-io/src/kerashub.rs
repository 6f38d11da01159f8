//! KerasHub attention layers and their calls in safetensors files.
//!
//! - **Layer**: every weight under its Keras variable path (`w.path`, any layer-name prefix:
//!   `llama_attention/query/kernel`, `.../query_norm/scale`, `.../sinks`), metadata `class_name`
//!   (e.g. `LlamaAttention`; see [`KerasHubClass`]) and `config` (the layer's `get_config()`
//!   JSON, or the `Layer` base config plus every constructor argument where `get_config()` is
//!   broken); optionally `hidden_dim` (D; otherwise read from the query kernel's shape).
//!   The Gemma family's (N, D, H) kernels are transposed to (D, N, H) on loading.
//! - **Inputs**: tensors named as the call's arguments (`hidden_states` or `x`, `attention_mask`
//!   bool or integer (B, T, S), `cache` (B, 2, S, Nkv, H) or Gemma 3's `cache.0` / `cache.1`
//!   (B, S, Nkv, H), `cache_update_mask` (B, T)); metadata `call` holds the scalar arguments
//!   (`{}` uncached, `{"cache_update_index": k}` cached; see [`crate::CallRecord`]).
//! - **Outputs**: `output` (B, T, D), and for cached calls the updated `cache` (or `cache.0`,
//!   `cache.1`) in the layer's own layout. A file may hold several sets of outputs under prefixes
//!   (the fixtures keep KerasHub's as `expected.output`, ...).

use std::path::Path;

use gqa_core::kerashub::{CacheForm, KerasHubCache, KerasHubClass, KerasHubConfig, KernelLayout};
use gqa_core::{DenseWeights, ExtensionWeights, GqaError, HostTensor, Mask, Weights};

use crate::call::CallRecord;
use crate::error::{IoError, Result};
use crate::safetensors_layer::CONFIG_KEY;
use crate::tensor_file::TensorFile;

/// The metadata key naming the layer's class (absent: `GroupQueryAttention`).
pub const CLASS_KEY: &str = "class_name";
/// The metadata key holding the hidden size D (optional).
pub const HIDDEN_DIM_KEY: &str = "hidden_dim";

/// A KerasHub attention layer read from a file: its config and weights (the dense ones in
/// `GroupQueryAttention`'s layout).
#[derive(Debug, Clone)]
pub struct KerasHubLayerFile {
    /// The class, config, extensions and hidden size.
    pub spec: KerasHubConfig,
    /// Q/K/V kernels (D, N, H), output kernel (Nq, H, D), biases (GPT-OSS).
    pub weights: Weights,
    /// QK-norm scales, sinks.
    pub extra: ExtensionWeights,
}

/// The KerasHub class a file's metadata names, `None` when it names none (a
/// `GroupQueryAttention` layer) and an error when it names a class this crate does not know.
pub fn class_of(tf: &TensorFile) -> Result<Option<KerasHubClass>> {
    class_in(&tf.file, &tf.metadata)
}

/// [`class_of`] for a file on disk, reading only its header: `None` too for a file that is not
/// safetensors (by its extension).
pub fn class_of_file(path: &Path) -> Result<Option<KerasHubClass>> {
    if path.extension().is_none_or(|e| e != "safetensors") {
        return Ok(None);
    }
    class_in(&path.display().to_string(), &TensorFile::read_metadata(path)?)
}

fn class_in(file: &str, metadata: &std::collections::BTreeMap<String, String>) -> Result<Option<KerasHubClass>> {
    match metadata.get(CLASS_KEY).map(String::as_str) {
        None | Some("GroupQueryAttention" | "GroupedQueryAttention") => Ok(None),
        Some(name) => KerasHubClass::from_class_name(name).map(Some).ok_or_else(|| IoError::UnknownClass {
            file: file.to_string(),
            found: name.to_string(),
            expected: format!("supported: GroupQueryAttention, {}", supported()),
        }),
    }
}

/// The names of the KerasHub classes, for messages.
fn supported() -> String {
    KerasHubClass::ALL.map(KerasHubClass::class_name).join(", ")
}

/// Reads a KerasHub layer from a safetensors file (see the [module](self)).
pub fn load_kerashub_layer(path: &Path) -> Result<KerasHubLayerFile> {
    kerashub_layer_from_tensor_file(&TensorFile::read(path)?)
}

/// [`load_kerashub_layer`] on a file in memory.
pub fn kerashub_layer_from_tensor_file(tf: &TensorFile) -> Result<KerasHubLayerFile> {
    let file = tf.file.clone();
    let class = class_of(tf)?.ok_or_else(|| IoError::UnknownClass {
        file: file.clone(),
        found: tf.metadata.get(CLASS_KEY).cloned().unwrap_or_else(|| "none".into()),
        expected: format!("a KerasHub class in the metadata {CLASS_KEY:?}: {}", supported()),
    })?;
    let config_error = |e: GqaError| IoError::Config { file: file.clone(), source: Box::new(e) };
    let text = tf.metadata.get(CONFIG_KEY).ok_or_else(|| IoError::NoConfig {
        file: file.clone(),
        hint: format!("the safetensors metadata has no key {CONFIG_KEY:?} (the layer's config JSON)"),
    })?;
    let prefix = prefix(tf)?;
    let query = tf.f32(&format!("{prefix}query/kernel"), "the query kernel")?;
    let hidden_dim = match tf.metadata.get(HIDDEN_DIM_KEY) {
        Some(d) => d.trim().parse::<usize>().map_err(|e| IoError::Dims {
            file: file.clone(),
            message: format!("metadata {HIDDEN_DIM_KEY:?} = {d:?}: {e}"),
        })?,
        None => {
            let axis = match class.kernel_layout() {
                KernelLayout::InputFirst => 0,
                KernelLayout::HeadsFirst => 1,
            };
            *query.shape().get(axis).ok_or_else(|| IoError::Dims {
                file: file.clone(),
                message: format!("query kernel has shape {:?}, expected rank 3", query.shape()),
            })?
        }
    };
    let spec = KerasHubConfig::from_json(class, text, hidden_dim).map_err(config_error)?;
    let cfg = &spec.config;
    let (nq, nkv, h, d) = (cfg.num_query_heads, cfg.num_key_value_heads, cfg.head_dim, hidden_dim);

    let mut used = Vec::new();
    let mut take = |name: &str, expected: Vec<usize>| -> Result<HostTensor> {
        let full = format!("{prefix}{name}");
        let t = tf.get(&full).ok_or_else(|| IoError::MissingWeight {
            file: file.clone(),
            tensor: full.clone(),
            expected: format!("{expected:?}"),
        })?;
        if t.shape() != expected {
            return Err(IoError::WeightShape {
                file: file.clone(),
                tensor: full,
                expected: format!("{expected:?}"),
                got: t.shape().to_vec(),
            });
        }
        used.push(full.clone());
        t.to_f32(&file, &full)
    };
    let heads_first = class.kernel_layout() == KernelLayout::HeadsFirst;
    let mut projection = |name: &str, heads: usize| -> Result<DenseWeights> {
        let kernel = if heads_first {
            to_input_first(&take(&format!("{name}/kernel"), vec![heads, d, h])?)
        } else {
            take(&format!("{name}/kernel"), vec![d, heads, h])?
        };
        let bias = cfg.use_bias.then(|| take(&format!("{name}/bias"), vec![heads, h])).transpose()?;
        Ok(DenseWeights { kernel, bias })
    };
    let (q, k, v) = (projection("query", nq)?, projection("key", nkv)?, projection("value", nkv)?);
    let output = DenseWeights {
        kernel: take("attention_output/kernel", vec![nq, h, d])?,
        bias: cfg.use_bias.then(|| take("attention_output/bias", vec![d])).transpose()?,
    };
    let weights = Weights { query: q, key: k, gate: None, value: v, output };
    let (query_norm, key_norm) = match (spec.extensions.qk_norm.is_some(), class.norm_layer_names()) {
        (true, Some((qn, kn))) => {
            (Some(take(&format!("{qn}/scale"), vec![h])?), Some(take(&format!("{kn}/scale"), vec![h])?))
        }
        _ => (None, None),
    };
    let sinks = spec.extensions.sinks.then(|| take("sinks", vec![nq])).transpose()?;
    let extra = ExtensionWeights { query_norm, key_norm, sinks };
    if let Some(stranger) =
        tf.tensors.keys().find(|n| n.starts_with(prefix.as_str()) && n.contains('/') && !used.contains(n))
    {
        return Err(IoError::UnexpectedWeight {
            file,
            tensor: stranger.clone(),
            reason: format!("{class} with this config has no such weight"),
        });
    }
    let d3 = gqa_core::LayerDims { query_dim: d, key_dim: d, value_dim: d };
    weights.validate(cfg, d3).map_err(config_error)?;
    extra.validate(&spec.extensions, cfg).map_err(config_error)?;
    Ok(KerasHubLayerFile { spec, weights, extra })
}

/// The layer-name prefix of the weights: what precedes the one `query/kernel` tensor.
fn prefix(tf: &TensorFile) -> Result<String> {
    let found: Vec<&str> = tf
        .tensors
        .keys()
        .filter_map(|n| n.strip_suffix("query/kernel"))
        .filter(|p| p.is_empty() || p.ends_with('/'))
        .collect();
    match found[..] {
        [one] => Ok(one.to_string()),
        [] => Err(IoError::LayerNotFound {
            file: tf.file.clone(),
            wanted: None,
            found: vec![format!(
                "no tensor named <layer>/query/kernel; tensors: {:?}",
                tf.tensors.keys().collect::<Vec<_>>()
            )],
        }),
        _ => {
            Err(IoError::AmbiguousLayer { file: tf.file.clone(), found: found.iter().map(|p| p.to_string()).collect() })
        }
    }
}

/// (N, D, H) to (D, N, H).
fn to_input_first(kernel: &HostTensor) -> HostTensor {
    let (n, d, h) = (kernel.shape()[0], kernel.shape()[1], kernel.shape()[2]);
    let src = kernel.data();
    let mut out = vec![0.0f32; src.len()];
    for ni in 0..n {
        for di in 0..d {
            out[(di * n + ni) * h..][..h].copy_from_slice(&src[(ni * d + di) * h..][..h]);
        }
    }
    HostTensor::new([d, n, h], out).expect("a transpose keeps the element count")
}

/// The tensor arguments and the scalar arguments of one call, as read from an inputs file.
#[derive(Debug, Clone, PartialEq)]
pub struct KerasHubInputs {
    /// `hidden_states` / `x` (B, T, D).
    pub input: HostTensor,
    /// `attention_mask` (B, T, S).
    pub attention_mask: Option<Mask>,
    /// `cache`, or Gemma 3's `cache.0` and `cache.1`.
    pub cache: Option<KerasHubCache>,
    /// `cache_update_mask` (B, T).
    pub cache_update_mask: Option<Mask>,
    /// The file's `call` record (`cache_update_index`, and any options it holds).
    pub record: CallRecord,
}

impl KerasHubInputs {
    /// Reads the inputs of a call of `class` from a file.
    pub fn from_tensor_file(tf: &TensorFile, class: KerasHubClass) -> Result<Self> {
        let input = tf.f32(class.input_name(), &format!("the call's input ({} of {class})", class.input_name()))?;
        let cache = read_cache(tf, "", class)?;
        let record = CallRecord::from_tensor_file(tf)?.unwrap_or_default();
        Ok(Self {
            input,
            attention_mask: tf.mask_opt("attention_mask")?,
            cache,
            cache_update_mask: tf.mask_opt("cache_update_mask")?,
            record,
        })
    }
}

/// Reads the cache stored under `prefix` (`{prefix}cache`, or `{prefix}cache.0` and `.1`), if any.
pub fn read_cache(tf: &TensorFile, prefix: &str, class: KerasHubClass) -> Result<Option<KerasHubCache>> {
    let bad = |name: String, e: GqaError| IoError::Tensor { file: tf.file.clone(), tensor: name, source: Box::new(e) };
    match class.cache_form() {
        CacheForm::Stacked => {
            let name = format!("{prefix}cache");
            let Some(stacked) = tf.f32_opt(&name)? else { return Ok(None) };
            KerasHubCache::from_stacked(&stacked).map(Some).map_err(|e| bad(name, e))
        }
        CacheForm::Tuple => {
            let (kn, vn) = (format!("{prefix}cache.0"), format!("{prefix}cache.1"));
            match (tf.f32_opt(&kn)?, tf.f32_opt(&vn)?) {
                (None, None) => Ok(None),
                (Some(keys), Some(values)) => Ok(Some(KerasHubCache { keys, values })),
                _ => Err(IoError::MissingTensor {
                    file: tf.file.clone(),
                    tensor: format!("{kn} / {vn}"),
                    hint: format!("{class}'s cache is a tuple: both halves are needed"),
                }),
            }
        }
    }
}

/// Adds `output` and, when given, the cache in the class's form, under `prefix`.
pub fn insert_outputs(
    tf: &mut TensorFile,
    prefix: &str,
    class: KerasHubClass,
    output: &HostTensor,
    cache: Option<&KerasHubCache>,
) {
    tf.insert_f32(format!("{prefix}output"), output);
    if let Some(cache) = cache {
        match class.cache_form() {
            CacheForm::Stacked => tf.insert_f32(format!("{prefix}cache"), &cache.to_stacked()),
            CacheForm::Tuple => {
                tf.insert_f32(format!("{prefix}cache.0"), &cache.keys);
                tf.insert_f32(format!("{prefix}cache.1"), &cache.values);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_first_kernels_transpose() {
        // (N=2, D=3, H=1): element (n, d) = 10 n + d.
        let k = HostTensor::new([2, 3, 1], vec![0.0, 1.0, 2.0, 10.0, 11.0, 12.0]).unwrap();
        assert_eq!(to_input_first(&k).data(), [0.0, 10.0, 1.0, 11.0, 2.0, 12.0]);
    }

    #[test]
    fn classes_from_metadata() {
        let mut tf = TensorFile::new("f");
        assert_eq!(class_of(&tf).unwrap(), None);
        tf.metadata.insert(CLASS_KEY.into(), "CachedGemma3Attention".into());
        assert_eq!(class_of(&tf).unwrap(), Some(KerasHubClass::Gemma3));
        tf.metadata.insert(CLASS_KEY.into(), "PhiAttention".into());
        let e = class_of(&tf).unwrap_err().to_string();
        assert!(e.contains("PhiAttention") && e.contains("LlamaAttention"), "{e}");
    }
}
