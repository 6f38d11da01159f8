//! Keras weight constraints as data (applied to weights in gqa-ref).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

use crate::error::GqaError;
use crate::keras_object::{Identifier, axis_field, axis_value, envelope, f64_field, identifier};

/// A Keras constraint. Axes refer to the weight as stored (e.g. a query kernel is `(Dq, Nq, H)`),
/// negative axes count from the end.
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    /// `MaxNorm(max_value=2, axis=0)`: rescales slices whose L2 norm exceeds `max_value`.
    MaxNorm {
        /// The largest norm allowed.
        max_value: f64,
        /// The axes the norm is taken over.
        axis: Vec<i64>,
    },
    /// `MinMaxNorm(min_value=0, max_value=1, rate=1, axis=0)`.
    MinMaxNorm {
        /// The smallest norm.
        min_value: f64,
        /// The largest norm.
        max_value: f64,
        /// How far to move towards the clipped norm (1 = all the way).
        rate: f64,
        /// The axes the norm is taken over.
        axis: Vec<i64>,
    },
    /// `NonNeg`: negative weights become 0.
    NonNeg,
    /// `UnitNorm(axis=0)`: slices divided by their L2 norm.
    UnitNorm {
        /// The axes the norm is taken over.
        axis: Vec<i64>,
    },
}

impl Constraint {
    /// Reads a constraint from a Keras string or serialised object.
    pub fn from_keras(value: &Value) -> Result<Self, GqaError> {
        let empty = serde_json::Map::new();
        let (name, c) = match identifier("constraint", value)? {
            Identifier::Name(s) => (s.to_string(), &empty),
            Identifier::Object { class_name, config } => (class_name.to_string(), config),
        };
        let k = match name.to_ascii_lowercase().replace('_', "").as_str() {
            "maxnorm" => Self::MaxNorm {
                max_value: f64_field(c, "MaxNorm", "max_value", 2.0)?,
                axis: axis_field(c, "MaxNorm", 0)?,
            },
            "minmaxnorm" => Self::MinMaxNorm {
                min_value: f64_field(c, "MinMaxNorm", "min_value", 0.0)?,
                max_value: f64_field(c, "MinMaxNorm", "max_value", 1.0)?,
                rate: f64_field(c, "MinMaxNorm", "rate", 1.0)?,
                axis: axis_field(c, "MinMaxNorm", 0)?,
            },
            "nonneg" => Self::NonNeg,
            "unitnorm" => Self::UnitNorm { axis: axis_field(c, "UnitNorm", 0)? },
            _ => {
                return Err(GqaError::UnknownKerasObject {
                    kind: "constraint",
                    name,
                    hint: "supported: max_norm, min_max_norm, non_neg, unit_norm".into(),
                });
            }
        };
        k.validate()?;
        Ok(k)
    }

    /// Checks the parameters are finite and consistent.
    pub fn validate(&self) -> Result<(), GqaError> {
        let ok = match *self {
            Self::MaxNorm { max_value, .. } => max_value.is_finite() && max_value >= 0.0,
            Self::MinMaxNorm { min_value, max_value, rate, .. } => {
                min_value.is_finite() && max_value.is_finite() && rate.is_finite() && min_value <= max_value
            }
            Self::NonNeg | Self::UnitNorm { .. } => true,
        };
        if ok {
            Ok(())
        } else {
            Err(GqaError::InvalidConfigValue {
                what: format!("constraint {self:?}"),
                reason: "values must be finite, max_value >= 0 and min_value <= max_value".into(),
            })
        }
    }

    /// The Keras envelope, as `get_config` writes it.
    pub fn to_keras(&self) -> Value {
        let m = "keras.constraints";
        match self {
            Self::MaxNorm { max_value, axis } => {
                envelope(m, "MaxNorm", json!({"max_value": max_value, "axis": axis_value(axis)}))
            }
            Self::MinMaxNorm { min_value, max_value, rate, axis } => envelope(
                m,
                "MinMaxNorm",
                json!({"min_value": min_value, "max_value": max_value, "rate": rate, "axis": axis_value(axis)}),
            ),
            Self::NonNeg => envelope(m, "NonNeg", json!({})),
            Self::UnitNorm { axis } => envelope(m, "UnitNorm", json!({"axis": axis_value(axis)})),
        }
    }
}

impl Serialize for Constraint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_keras().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Constraint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::from_keras(&Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for c in [
            Constraint::MaxNorm { max_value: 2.0, axis: vec![0] },
            Constraint::MinMaxNorm { min_value: 0.5, max_value: 1.5, rate: 0.5, axis: vec![0, 1] },
            Constraint::NonNeg,
            Constraint::UnitNorm { axis: vec![-1] },
        ] {
            assert_eq!(Constraint::from_keras(&c.to_keras()).unwrap(), c);
        }
        assert_eq!(Constraint::from_keras(&json!("non_neg")).unwrap(), Constraint::NonNeg);
        assert!(Constraint::from_keras(&json!("radial")).is_err());
    }
}
