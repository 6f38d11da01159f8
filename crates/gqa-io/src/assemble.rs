//! Gathering a layer's weights from a file, whatever its format: every weight the config requires
//! must be there with its shape, and nothing the config does not have.

use std::collections::BTreeMap;

use gqa_core::{Dense, DenseWeights, GqaConfig, HostTensor, LayerDims, Weights};

use crate::error::{IoError, Result, shape_str};

/// A kernel or a bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Part {
    /// `kernel`.
    Kernel,
    /// `bias`.
    Bias,
}

impl Part {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Part::Kernel => "kernel",
            Part::Bias => "bias",
        }
    }
}

/// The Keras path of a weight relative to the layer: `query/kernel`, `attention_output/bias` ...
pub(crate) fn keras_path(dense: Dense, part: Part) -> String {
    format!("{}/{}", dense.keras_name(), part.name())
}

/// Where the weights come from.
pub(crate) trait WeightSource {
    /// The file, for messages.
    fn file(&self) -> &str;
    /// The weight's name in the file, for messages.
    fn describe(&self, dense: Dense, part: Part) -> String;
    /// Reads the weight; `None` when the file does not have it.
    fn fetch(&self, dense: Dense, part: Part) -> Result<Option<HostTensor>>;
    /// Names of tensors in the file that look like weights of this layer but are none of Keras'.
    fn strangers(&self) -> Vec<String>;
}

/// Dq, Dk, Dv as far as they are known.
#[derive(Debug, Clone, Copy, Default)]
struct KnownDims {
    query: Option<usize>,
    key: Option<usize>,
    value: Option<usize>,
}

impl KnownDims {
    fn from_weights(w: &BTreeMap<(Dense, Part), HostTensor>) -> Self {
        let axis = |d: Dense, p: Part, i: usize| w.get(&(d, p)).and_then(|t| t.shape().get(i).copied());
        Self {
            query: axis(Dense::Query, Part::Kernel, 0)
                .or_else(|| axis(Dense::Gate, Part::Kernel, 0))
                .or_else(|| axis(Dense::Output, Part::Kernel, 2))
                .or_else(|| axis(Dense::Output, Part::Bias, 0)),
            key: axis(Dense::Key, Part::Kernel, 0),
            value: axis(Dense::Value, Part::Kernel, 0),
        }
    }

    /// The shape a weight must have, as text: `[6, 4, 2]`, or `[Dk, 4, 2]` where Dk is unknown.
    fn expected(&self, config: &GqaConfig, dense: Dense, part: Part) -> (String, Option<Vec<usize>>) {
        let dims = LayerDims {
            query_dim: self.query.unwrap_or(0),
            key_dim: self.key.unwrap_or(0),
            value_dim: self.value.unwrap_or(0),
        };
        let shape = match part {
            Part::Kernel => dense.kernel_shape(config, dims),
            Part::Bias => dense.bias_shape(config, dims),
        };
        let (axis, known, symbol) = match (dense, part) {
            (Dense::Query | Dense::Gate, Part::Kernel) => (0, self.query, "Dq"),
            (Dense::Key, Part::Kernel) => (0, self.key, "Dk"),
            (Dense::Value, Part::Kernel) => (0, self.value, "Dv"),
            (Dense::Output, Part::Kernel) => (2, self.query, "Dq"),
            (Dense::Output, Part::Bias) => (0, self.query, "Dq"),
            _ => return (shape_str(&shape), Some(shape)),
        };
        if known.is_some() {
            return (shape_str(&shape), Some(shape));
        }
        let text: Vec<String> =
            shape.iter().enumerate().map(|(i, d)| if i == axis { symbol.into() } else { d.to_string() }).collect();
        (format!("[{}]", text.join(", ")), None)
    }
}

/// Reads every weight from `src`, checks presence and shapes against `config` (and `dims` when the
/// file says what the layer was built for), and returns the dims and the weights.
pub(crate) fn assemble(
    src: &dyn WeightSource,
    config: &GqaConfig,
    dims: Option<LayerDims>,
) -> Result<(LayerDims, Weights)> {
    let file = src.file().to_string();
    let mut found = BTreeMap::new();
    for dense in Dense::ALL {
        for part in [Part::Kernel, Part::Bias] {
            if let Some(t) = src.fetch(dense, part)? {
                let reason = if !dense.present(config) {
                    Some("the config has use_gate=false")
                } else if part == Part::Bias && !config.use_bias {
                    Some("the config has use_bias=false")
                } else {
                    None
                };
                if let Some(reason) = reason {
                    return Err(IoError::UnexpectedWeight {
                        file,
                        tensor: src.describe(dense, part),
                        reason: reason.into(),
                    });
                }
                found.insert((dense, part), t);
            }
        }
    }
    if let Some(name) = src.strangers().into_iter().next() {
        return Err(IoError::UnexpectedWeight {
            file,
            tensor: name,
            reason: "not a weight of GroupQueryAttention (query, key, gate, value, attention_output; kernel or bias)"
                .into(),
        });
    }
    let known = match dims {
        Some(d) => KnownDims { query: Some(d.query_dim), key: Some(d.key_dim), value: Some(d.value_dim) },
        None => KnownDims::from_weights(&found),
    };
    for dense in Dense::ALL.into_iter().filter(|d| d.present(config)) {
        let parts: &[Part] = if config.use_bias { &[Part::Kernel, Part::Bias] } else { &[Part::Kernel] };
        for &part in parts {
            let (expected, shape) = known.expected(config, dense, part);
            let tensor = src.describe(dense, part);
            match found.get(&(dense, part)) {
                None => return Err(IoError::MissingWeight { file, tensor, expected }),
                Some(t) if shape.as_deref() != Some(t.shape()) => {
                    return Err(IoError::WeightShape { file, tensor, expected, got: t.shape().to_vec() });
                }
                Some(_) => {}
            }
        }
    }
    let dims = LayerDims {
        query_dim: known.query.unwrap_or(0),
        key_dim: known.key.unwrap_or(0),
        value_dim: known.value.unwrap_or(0),
    };
    let mut take = |dense: Dense| {
        found
            .remove(&(dense, Part::Kernel))
            .map(|kernel| DenseWeights { kernel, bias: found.remove(&(dense, Part::Bias)) })
    };
    let missing = |dense: Dense| IoError::MissingWeight {
        file: file.clone(),
        tensor: src.describe(dense, Part::Kernel),
        expected: known.expected(config, dense, Part::Kernel).0,
    };
    let weights = Weights {
        query: take(Dense::Query).ok_or_else(|| missing(Dense::Query))?,
        key: take(Dense::Key).ok_or_else(|| missing(Dense::Key))?,
        gate: take(Dense::Gate),
        value: take(Dense::Value).ok_or_else(|| missing(Dense::Value))?,
        output: take(Dense::Output).ok_or_else(|| missing(Dense::Output))?,
    };
    // Everything was checked above; this is gqa-core's own check, kept as a safety net.
    weights.validate(config, dims).map_err(|e| IoError::Tensor {
        file: file.clone(),
        tensor: "weights".into(),
        source: Box::new(e),
    })?;
    Ok((dims, weights))
}
