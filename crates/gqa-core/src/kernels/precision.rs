//! The storage precision of the weights and intermediates.

/// The storage type of the weights and intermediates (accumulation is f32 in every kernel either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Precision {
    /// Everything in f32: the default.
    #[default]
    F32,
    /// Keras' `mixed_float16`: weights converted to f16 once on upload (the host keeps f32), inputs
    /// rounded to f16 as they are loaded, projected Q/K/V/gate and the attention output stored in f16;
    /// every product accumulated in f32, softmax and scores in f32, the layer output in f32. Needs
    /// the device feature `SHADER_F16`; where it is missing the f32 path runs instead.
    F16,
}

impl Precision {
    /// The precision Keras computes in under a dtype policy: [`Precision::F16`] for
    /// `mixed_float16` and `float16`, [`Precision::F32`] for anything else (`float32`,
    /// `mixed_bfloat16`, ...: bfloat16 has no WGSL type, so it runs in f32).
    pub fn for_dtype_policy(policy: &str) -> Self {
        match policy {
            "mixed_float16" | "float16" => Precision::F16,
            _ => Precision::F32,
        }
    }

    /// Bytes of one stored element of a weight or an intermediate.
    pub fn element_bytes(self) -> u64 {
        match self {
            Precision::F32 => 4,
            Precision::F16 => 2,
        }
    }
}
