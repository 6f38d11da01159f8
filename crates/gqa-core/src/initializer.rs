//! Keras weight initializers as data (sampling lives in gqa-ref).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

use crate::error::GqaError;
use crate::keras_object::{Identifier, envelope, f64_field, identifier, seed_field};

/// Which fan a variance-scaling initializer divides by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanMode {
    /// `fan_in`.
    FanIn,
    /// `fan_out`.
    FanOut,
    /// `(fan_in + fan_out) / 2`.
    FanAvg,
}

/// The distribution a variance-scaling initializer draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    /// Normal truncated at two standard deviations, stddev corrected by 0.87962566103423978 (Keras).
    TruncatedNormal,
    /// Plain normal.
    UntruncatedNormal,
    /// Uniform in `[-limit, limit]`, `limit = sqrt(3 * scale / n)`.
    Uniform,
}

/// A Keras initializer with its parameters.
///
/// The named variance-scaling initializers (`glorot_uniform` ...) are kept under their own names so that
/// they serialise back exactly as Keras writes them.
#[derive(Debug, Clone, PartialEq)]
pub enum Initializer {
    /// `GlorotUniform`: variance scaling 1, fan_avg, uniform.
    GlorotUniform {
        /// Optional seed.
        seed: Option<u64>,
    },
    /// `GlorotNormal`: variance scaling 1, fan_avg, truncated normal.
    GlorotNormal {
        /// Optional seed.
        seed: Option<u64>,
    },
    /// `HeUniform`: variance scaling 2, fan_in, uniform.
    HeUniform {
        /// Optional seed.
        seed: Option<u64>,
    },
    /// `HeNormal`: variance scaling 2, fan_in, truncated normal.
    HeNormal {
        /// Optional seed.
        seed: Option<u64>,
    },
    /// `LecunUniform`: variance scaling 1, fan_in, uniform.
    LecunUniform {
        /// Optional seed.
        seed: Option<u64>,
    },
    /// `LecunNormal`: variance scaling 1, fan_in, truncated normal.
    LecunNormal {
        /// Optional seed.
        seed: Option<u64>,
    },
    /// `VarianceScaling` with explicit parameters.
    VarianceScaling {
        /// The scale (> 0).
        scale: f64,
        /// Which fan to use.
        mode: FanMode,
        /// Which distribution.
        distribution: Distribution,
        /// Optional seed.
        seed: Option<u64>,
    },
    /// `RandomUniform(minval, maxval)`.
    RandomUniform {
        /// Lower bound (default -0.05).
        minval: f64,
        /// Upper bound (default 0.05).
        maxval: f64,
        /// Optional seed.
        seed: Option<u64>,
    },
    /// `RandomNormal(mean, stddev)`.
    RandomNormal {
        /// Mean (default 0).
        mean: f64,
        /// Standard deviation (default 0.05).
        stddev: f64,
        /// Optional seed.
        seed: Option<u64>,
    },
    /// `TruncatedNormal(mean, stddev)`: normal redrawn outside two standard deviations.
    TruncatedNormal {
        /// Mean (default 0).
        mean: f64,
        /// Standard deviation (default 0.05).
        stddev: f64,
        /// Optional seed.
        seed: Option<u64>,
    },
    /// `Zeros`.
    Zeros,
    /// `Ones`.
    Ones,
    /// `Constant(value)`.
    Constant {
        /// The value (default 0).
        value: f64,
    },
}

const KNOWN: &str = "glorot_uniform, glorot_normal, he_uniform, he_normal, lecun_uniform, lecun_normal, \
variance_scaling, random_uniform, random_normal, truncated_normal, zeros, ones, constant";

impl Initializer {
    /// The variance-scaling parameters `(scale, mode, distribution)` of this initializer, if it is one.
    pub fn variance_scaling(&self) -> Option<(f64, FanMode, Distribution)> {
        use Distribution::*;
        use FanMode::*;
        Some(match *self {
            Self::GlorotUniform { .. } => (1.0, FanAvg, Uniform),
            Self::GlorotNormal { .. } => (1.0, FanAvg, TruncatedNormal),
            Self::HeUniform { .. } => (2.0, FanIn, Uniform),
            Self::HeNormal { .. } => (2.0, FanIn, TruncatedNormal),
            Self::LecunUniform { .. } => (1.0, FanIn, Uniform),
            Self::LecunNormal { .. } => (1.0, FanIn, TruncatedNormal),
            Self::VarianceScaling { scale, mode, distribution, .. } => (scale, mode, distribution),
            _ => return None,
        })
    }

    /// The initializer's own seed, if any.
    pub fn seed(&self) -> Option<u64> {
        match *self {
            Self::GlorotUniform { seed }
            | Self::GlorotNormal { seed }
            | Self::HeUniform { seed }
            | Self::HeNormal { seed }
            | Self::LecunUniform { seed }
            | Self::LecunNormal { seed }
            | Self::VarianceScaling { seed, .. }
            | Self::RandomUniform { seed, .. }
            | Self::RandomNormal { seed, .. }
            | Self::TruncatedNormal { seed, .. } => seed,
            Self::Zeros | Self::Ones | Self::Constant { .. } => None,
        }
    }

    /// Reads an initializer from a Keras string (`"he_normal"`) or serialised object.
    pub fn from_keras(value: &Value) -> Result<Self, GqaError> {
        let (name, config) = match identifier("initializer", value)? {
            Identifier::Name(s) => (normalise(s), None),
            Identifier::Object { class_name, config } => (normalise(class_name), Some(config)),
        };
        let empty = serde_json::Map::new();
        let c = config.unwrap_or(&empty);
        let owner = name.as_str();
        let seed = seed_field(c, owner)?;
        let init = match owner {
            "glorotuniform" => Self::GlorotUniform { seed },
            "glorotnormal" => Self::GlorotNormal { seed },
            "heuniform" => Self::HeUniform { seed },
            "henormal" => Self::HeNormal { seed },
            "lecununiform" => Self::LecunUniform { seed },
            "lecunnormal" => Self::LecunNormal { seed },
            "variancescaling" => Self::VarianceScaling {
                scale: f64_field(c, owner, "scale", 1.0)?,
                mode: match c.get("mode").and_then(Value::as_str).unwrap_or("fan_in") {
                    "fan_in" => FanMode::FanIn,
                    "fan_out" => FanMode::FanOut,
                    "fan_avg" => FanMode::FanAvg,
                    other => {
                        return Err(GqaError::Json(format!("VarianceScaling.mode: unknown mode {other:?}")));
                    }
                },
                distribution: match c.get("distribution").and_then(Value::as_str).unwrap_or("truncated_normal") {
                    "truncated_normal" => Distribution::TruncatedNormal,
                    "untruncated_normal" | "normal" => Distribution::UntruncatedNormal,
                    "uniform" => Distribution::Uniform,
                    other => {
                        return Err(GqaError::Json(format!(
                            "VarianceScaling.distribution: unknown distribution {other:?}"
                        )));
                    }
                },
                seed,
            },
            "randomuniform" | "uniform" => Self::RandomUniform {
                minval: f64_field(c, owner, "minval", -0.05)?,
                maxval: f64_field(c, owner, "maxval", 0.05)?,
                seed,
            },
            "randomnormal" | "normal" => Self::RandomNormal {
                mean: f64_field(c, owner, "mean", 0.0)?,
                stddev: f64_field(c, owner, "stddev", 0.05)?,
                seed,
            },
            "truncatednormal" => Self::TruncatedNormal {
                mean: f64_field(c, owner, "mean", 0.0)?,
                stddev: f64_field(c, owner, "stddev", 0.05)?,
                seed,
            },
            "zeros" | "zero" => Self::Zeros,
            "ones" | "one" => Self::Ones,
            "constant" => Self::Constant { value: f64_field(c, owner, "value", 0.0)? },
            _ => {
                let shown = match identifier("initializer", value)? {
                    Identifier::Name(s) => s.to_string(),
                    Identifier::Object { class_name, .. } => class_name.to_string(),
                };
                return Err(GqaError::UnknownKerasObject {
                    kind: "initializer",
                    name: shown,
                    hint: format!("supported: {KNOWN}"),
                });
            }
        };
        init.validate()?;
        Ok(init)
    }

    /// Checks the parameters are finite and in their domain.
    pub fn validate(&self) -> Result<(), GqaError> {
        let bad = |what: &str, reason: &str| {
            Err(GqaError::InvalidConfigValue { what: what.to_string(), reason: reason.to_string() })
        };
        match *self {
            Self::VarianceScaling { scale, .. } if !(scale.is_finite() && scale > 0.0) => {
                bad("VarianceScaling.scale", "must be finite and > 0")
            }
            Self::RandomUniform { minval, maxval, .. }
                if !(minval.is_finite() && maxval.is_finite() && minval <= maxval) =>
            {
                bad("RandomUniform", "minval and maxval must be finite with minval <= maxval")
            }
            Self::RandomNormal { mean, stddev, .. } | Self::TruncatedNormal { mean, stddev, .. }
                if !(mean.is_finite() && stddev.is_finite() && stddev >= 0.0) =>
            {
                bad("normal initializer", "mean and stddev must be finite with stddev >= 0")
            }
            Self::Constant { value } if !value.is_finite() => bad("Constant.value", "must be finite"),
            _ => Ok(()),
        }
    }

    /// The Keras envelope for this initializer, exactly as Keras 3 `get_config` writes it.
    pub fn to_keras(&self) -> Value {
        let m = "keras.initializers";
        let named = |class: &str, seed: Option<u64>| {
            envelope(m, class, json!({"seed": seed, "input_axes": null, "output_axes": null}))
        };
        match *self {
            Self::GlorotUniform { seed } => named("GlorotUniform", seed),
            Self::GlorotNormal { seed } => named("GlorotNormal", seed),
            Self::HeUniform { seed } => named("HeUniform", seed),
            Self::HeNormal { seed } => named("HeNormal", seed),
            Self::LecunUniform { seed } => named("LecunUniform", seed),
            Self::LecunNormal { seed } => named("LecunNormal", seed),
            Self::VarianceScaling { scale, mode, distribution, seed } => envelope(
                m,
                "VarianceScaling",
                json!({
                    "scale": scale,
                    "mode": match mode { FanMode::FanIn => "fan_in", FanMode::FanOut => "fan_out", FanMode::FanAvg => "fan_avg" },
                    "distribution": match distribution {
                        Distribution::TruncatedNormal => "truncated_normal",
                        Distribution::UntruncatedNormal => "untruncated_normal",
                        Distribution::Uniform => "uniform",
                    },
                    "seed": seed, "input_axes": null, "output_axes": null,
                }),
            ),
            Self::RandomUniform { minval, maxval, seed } => {
                envelope(m, "RandomUniform", json!({"minval": minval, "maxval": maxval, "seed": seed}))
            }
            Self::RandomNormal { mean, stddev, seed } => {
                envelope(m, "RandomNormal", json!({"mean": mean, "stddev": stddev, "seed": seed}))
            }
            Self::TruncatedNormal { mean, stddev, seed } => {
                envelope(m, "TruncatedNormal", json!({"mean": mean, "stddev": stddev, "seed": seed}))
            }
            Self::Zeros => envelope(m, "Zeros", json!({})),
            Self::Ones => envelope(m, "Ones", json!({})),
            Self::Constant { value } => envelope(m, "Constant", json!({"value": value})),
        }
    }
}

/// Lower-cases and strips underscores so `"glorot_uniform"` and `"GlorotUniform"` meet.
fn normalise(name: &str) -> String {
    name.chars().filter(|c| *c != '_').flat_map(char::to_lowercase).collect()
}

impl Serialize for Initializer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_keras().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Initializer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Self::from_keras(&v).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_objects_meet() {
        let a = Initializer::from_keras(&json!("he_normal")).unwrap();
        let b = Initializer::from_keras(&Initializer::HeNormal { seed: None }.to_keras()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, Initializer::HeNormal { seed: None });
    }

    #[test]
    fn every_variant_round_trips() {
        let all = [
            Initializer::GlorotUniform { seed: Some(3) },
            Initializer::GlorotNormal { seed: None },
            Initializer::HeUniform { seed: None },
            Initializer::HeNormal { seed: Some(1) },
            Initializer::LecunUniform { seed: None },
            Initializer::LecunNormal { seed: None },
            Initializer::VarianceScaling {
                scale: 0.5,
                mode: FanMode::FanOut,
                distribution: Distribution::Uniform,
                seed: None,
            },
            Initializer::RandomUniform { minval: -1.0, maxval: 2.0, seed: Some(9) },
            Initializer::RandomNormal { mean: 0.5, stddev: 0.1, seed: None },
            Initializer::TruncatedNormal { mean: 0.0, stddev: 0.2, seed: None },
            Initializer::Zeros,
            Initializer::Ones,
            Initializer::Constant { value: 0.25 },
        ];
        for init in all {
            assert_eq!(Initializer::from_keras(&init.to_keras()).unwrap(), init);
        }
    }

    #[test]
    fn unknown_names_are_errors() {
        let err = Initializer::from_keras(&json!("orthogonal")).unwrap_err();
        assert!(err.to_string().contains("orthogonal"), "{err}");
        let err = Initializer::from_keras(&json!({"class_name": "Identity", "config": {}})).unwrap_err();
        assert!(err.to_string().contains("Identity"), "{err}");
    }
}
