//! Keras weight regularizers as data (the penalty is computed in gqa-ref).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

use crate::error::GqaError;
use crate::keras_object::{Identifier, envelope, f64_field, identifier};

/// A Keras regularizer: `L1 = l1·Σ|w|`, `L2 = l2·Σw²`, `L1L2` = both.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Regularizer {
    /// `L1(l1)`; the string `"l1"` means `l1 = 0.01`.
    L1 {
        /// The factor.
        l1: f64,
    },
    /// `L2(l2)`; the string `"l2"` means `l2 = 0.01`.
    L2 {
        /// The factor.
        l2: f64,
    },
    /// `L1L2(l1, l2)`; the string `"l1_l2"` means both 0 (Keras 3's defaults).
    L1L2 {
        /// The L1 factor.
        l1: f64,
        /// The L2 factor.
        l2: f64,
    },
}

impl Regularizer {
    /// The `(l1, l2)` factors.
    pub fn factors(&self) -> (f64, f64) {
        match *self {
            Self::L1 { l1 } => (l1, 0.0),
            Self::L2 { l2 } => (0.0, l2),
            Self::L1L2 { l1, l2 } => (l1, l2),
        }
    }

    /// Reads a regularizer from a Keras string or serialised object.
    pub fn from_keras(value: &Value) -> Result<Self, GqaError> {
        let empty = serde_json::Map::new();
        let (name, c) = match identifier("regularizer", value)? {
            Identifier::Name(s) => (s.to_string(), &empty),
            Identifier::Object { class_name, config } => (class_name.to_string(), config),
        };
        let r = match name.to_ascii_lowercase().replace('_', "").as_str() {
            "l1" => Self::L1 { l1: f64_field(c, "L1", "l1", 0.01)? },
            "l2" => Self::L2 { l2: f64_field(c, "L2", "l2", 0.01)? },
            "l1l2" => Self::L1L2 { l1: f64_field(c, "L1L2", "l1", 0.0)?, l2: f64_field(c, "L1L2", "l2", 0.0)? },
            _ => {
                return Err(GqaError::UnknownKerasObject {
                    kind: "regularizer",
                    name,
                    hint: "supported: l1, l2, l1_l2 (L1, L2, L1L2)".into(),
                });
            }
        };
        let (l1, l2) = r.factors();
        if !(l1.is_finite() && l2.is_finite() && l1 >= 0.0 && l2 >= 0.0) {
            return Err(GqaError::InvalidConfigValue {
                what: format!("regularizer {name}"),
                reason: format!("factors must be finite and >= 0, got l1={l1}, l2={l2}"),
            });
        }
        Ok(r)
    }

    /// The Keras envelope, as `get_config` writes it.
    pub fn to_keras(&self) -> Value {
        let m = "keras.regularizers";
        match *self {
            Self::L1 { l1 } => envelope(m, "L1", json!({"l1": l1})),
            Self::L2 { l2 } => envelope(m, "L2", json!({"l2": l2})),
            Self::L1L2 { l1, l2 } => envelope(m, "L1L2", json!({"l1": l1, "l2": l2})),
        }
    }
}

impl Serialize for Regularizer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_keras().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Regularizer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::from_keras(&Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_use_keras_defaults() {
        assert_eq!(Regularizer::from_keras(&json!("l2")).unwrap(), Regularizer::L2 { l2: 0.01 });
        assert_eq!(Regularizer::from_keras(&json!("l1")).unwrap(), Regularizer::L1 { l1: 0.01 });
        assert_eq!(Regularizer::from_keras(&json!("l1_l2")).unwrap(), Regularizer::L1L2 { l1: 0.0, l2: 0.0 });
    }

    #[test]
    fn round_trip_and_errors() {
        for r in [Regularizer::L1 { l1: 0.5 }, Regularizer::L2 { l2: 1e-4 }, Regularizer::L1L2 { l1: 1e-5, l2: 1e-4 }] {
            assert_eq!(Regularizer::from_keras(&r.to_keras()).unwrap(), r);
        }
        assert!(Regularizer::from_keras(&json!("orthogonal_regularizer")).is_err());
        assert!(Regularizer::from_keras(&json!({"class_name": "L2", "config": {"l2": -1.0}})).is_err());
    }
}
