//! The layer's weights in Keras' layout, and their shape checks.

use crate::config::GqaConfig;
use crate::error::GqaError;
use crate::tensor::HostTensor;

/// The input feature sizes a layer is built for: Dq, Dk, Dv (Keras' `build_config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerDims {
    /// Dq, the query's last dim (also the output's).
    pub query_dim: usize,
    /// Dk, the key's last dim (= Dv when no key is given).
    pub key_dim: usize,
    /// Dv, the value's last dim.
    pub value_dim: usize,
}

/// Which dense sub-layer a weight belongs to, in Keras' `layer.weights` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dense {
    /// `query`: (Dq, Nq, H) + (Nq, H).
    Query,
    /// `key`: (Dk, Nkv, H) + (Nkv, H).
    Key,
    /// `gate`: (Dq, Nq, H) + (Nq, H), only with `use_gate`.
    Gate,
    /// `value`: (Dv, Nkv, H) + (Nkv, H).
    Value,
    /// `attention_output`: (Nq, H, Dq) + (Dq,).
    Output,
}

impl Dense {
    /// All sub-layers in Keras' weight order.
    pub const ALL: [Dense; 5] = [Dense::Query, Dense::Key, Dense::Gate, Dense::Value, Dense::Output];

    /// Keras' name of the sub-layer in weight paths (`query`, ..., `attention_output`).
    pub fn keras_name(self) -> &'static str {
        match self {
            Dense::Query => "query",
            Dense::Key => "key",
            Dense::Gate => "gate",
            Dense::Value => "value",
            Dense::Output => "attention_output",
        }
    }

    /// Whether the config has this sub-layer.
    pub fn present(self, config: &GqaConfig) -> bool {
        self != Dense::Gate || config.use_gate
    }

    /// The kernel's shape as Keras stores it.
    pub fn kernel_shape(self, config: &GqaConfig, dims: LayerDims) -> Vec<usize> {
        let (nq, nkv, h) = (config.num_query_heads, config.num_key_value_heads, config.head_dim);
        match self {
            Dense::Query | Dense::Gate => vec![dims.query_dim, nq, h],
            Dense::Key => vec![dims.key_dim, nkv, h],
            Dense::Value => vec![dims.value_dim, nkv, h],
            Dense::Output => vec![nq, h, dims.query_dim],
        }
    }

    /// The bias's shape as Keras stores it.
    pub fn bias_shape(self, config: &GqaConfig, dims: LayerDims) -> Vec<usize> {
        let (nq, nkv, h) = (config.num_query_heads, config.num_key_value_heads, config.head_dim);
        match self {
            Dense::Query | Dense::Gate => vec![nq, h],
            Dense::Key | Dense::Value => vec![nkv, h],
            Dense::Output => vec![dims.query_dim],
        }
    }

    /// `(fan_in, fan_out)` of the kernel as Keras' initializers see it (SEMANTICS.md): the contracted
    /// input size and the output size.
    pub fn kernel_fans(self, config: &GqaConfig, dims: LayerDims) -> (usize, usize) {
        let s = self.kernel_shape(config, dims);
        match self {
            Dense::Output => (s[0] * s[1], s[2]),
            _ => (s[0], s[1] * s[2]),
        }
    }
}

/// One dense sub-layer's weights.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseWeights {
    /// The kernel, in Keras' shape.
    pub kernel: HostTensor,
    /// The bias, present iff `use_bias`.
    pub bias: Option<HostTensor>,
}

/// Every weight of the layer, in Keras' layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// `query` sub-layer.
    pub query: DenseWeights,
    /// `key` sub-layer.
    pub key: DenseWeights,
    /// `gate` sub-layer (only with `use_gate`).
    pub gate: Option<DenseWeights>,
    /// `value` sub-layer.
    pub value: DenseWeights,
    /// `attention_output` sub-layer.
    pub output: DenseWeights,
}

impl Weights {
    /// Every weight of the layer drawn from the config's Keras initializers, reproducibly for a
    /// `seed`: kernels from `config.kernel_initializer`, biases (only with `use_bias`) from
    /// `config.bias_initializer`, the gate only with `use_gate`, in Keras' layout.
    ///
    /// Kernel fans are [`Dense::kernel_fans`] (query/key/value/gate: fan_in = D, fan_out = N*H;
    /// output: fan_in = Nq*H, fan_out = Dq); bias fans are
    /// [`keras_fans`](crate::sampling::keras_fans) of the bias shape. Each weight draws from its own
    /// generator (the seed, the weight's slot and the initializer's own seed), so the gate's
    /// presence does not change the other weights. Errors on an invalid config or a zero dim.
    ///
    /// ```
    /// use gqa_core::{GqaConfig, LayerDims, Weights};
    /// let config = GqaConfig::new(4, 4, 2).with_gate(true);
    /// let dims = LayerDims { query_dim: 8, key_dim: 6, value_dim: 6 };
    /// let weights = Weights::random(&config, dims, 42)?;
    /// weights.validate(&config, dims)?;
    /// assert_eq!(weights, Weights::random(&config, dims, 42)?);
    /// # Ok::<(), gqa_core::GqaError>(())
    /// ```
    pub fn random(config: &GqaConfig, dims: LayerDims, seed: u64) -> Result<Self, GqaError> {
        crate::sampling::random_weights(config, dims, seed)
    }

    /// The weights of one sub-layer, if present.
    pub fn dense(&self, which: Dense) -> Option<&DenseWeights> {
        match which {
            Dense::Query => Some(&self.query),
            Dense::Key => Some(&self.key),
            Dense::Gate => self.gate.as_ref(),
            Dense::Value => Some(&self.value),
            Dense::Output => Some(&self.output),
        }
    }

    /// Mutable access to one sub-layer's weights, if present.
    pub fn dense_mut(&mut self, which: Dense) -> Option<&mut DenseWeights> {
        match which {
            Dense::Query => Some(&mut self.query),
            Dense::Key => Some(&mut self.key),
            Dense::Gate => self.gate.as_mut(),
            Dense::Value => Some(&mut self.value),
            Dense::Output => Some(&mut self.output),
        }
    }

    /// `(path, tensor)` for every weight, in Keras' `layer.weights` order; paths are relative to the
    /// layer (`query/kernel`, `query/bias`, ...).
    pub fn named(&self) -> Vec<(String, &HostTensor)> {
        let mut out = Vec::new();
        for which in Dense::ALL {
            if let Some(d) = self.dense(which) {
                out.push((format!("{}/kernel", which.keras_name()), &d.kernel));
                if let Some(b) = &d.bias {
                    out.push((format!("{}/bias", which.keras_name()), b));
                }
            }
        }
        out
    }

    /// Checks every weight is present with the shape the config and dims require, and nothing extra.
    pub fn validate(&self, config: &GqaConfig, dims: LayerDims) -> Result<(), GqaError> {
        for which in Dense::ALL {
            let name = which.keras_name();
            let kernel_shape = which.kernel_shape(config, dims);
            let d = match (self.dense(which), which.present(config)) {
                (Some(d), true) => d,
                (None, false) => continue,
                (None, true) => {
                    return Err(GqaError::Weight {
                        path: format!("{name}/kernel"),
                        expected: kernel_shape,
                        problem: "missing".into(),
                    });
                }
                (Some(_), false) => {
                    return Err(GqaError::Weight {
                        path: format!("{name}/kernel"),
                        expected: vec![],
                        problem: "unexpected: use_gate is false".into(),
                    });
                }
            };
            check(&format!("{name}/kernel"), &d.kernel, &kernel_shape)?;
            let bias_shape = which.bias_shape(config, dims);
            match (&d.bias, config.use_bias) {
                (Some(b), true) => check(&format!("{name}/bias"), b, &bias_shape)?,
                (None, false) => {}
                (None, true) => {
                    return Err(GqaError::Weight {
                        path: format!("{name}/bias"),
                        expected: bias_shape,
                        problem: "missing".into(),
                    });
                }
                (Some(_), false) => {
                    return Err(GqaError::Weight {
                        path: format!("{name}/bias"),
                        expected: vec![],
                        problem: "unexpected: use_bias is false".into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The dims (Dq, Dk, Dv) these weights were built for, read off the kernels' first axes.
    pub fn dims(&self) -> LayerDims {
        LayerDims {
            query_dim: self.query.kernel.shape().first().copied().unwrap_or(0),
            key_dim: self.key.kernel.shape().first().copied().unwrap_or(0),
            value_dim: self.value.kernel.shape().first().copied().unwrap_or(0),
        }
    }
}

fn check(path: &str, t: &HostTensor, expected: &[usize]) -> Result<(), GqaError> {
    if t.shape() != expected {
        return Err(GqaError::Weight {
            path: path.into(),
            expected: expected.to_vec(),
            problem: format!("got shape {:?}", t.shape()),
        });
    }
    Ok(())
}
