//! A call's inputs and outputs as safetensors files: `query`, `value`, optional `key` and masks in;
//! `output` and optional `scores` out.

use std::collections::BTreeMap;
use std::path::Path;

use gqa_core::{CallOptions, ForwardOutput, HostTensor, Mask};

use crate::call::CallRecord;
use crate::error::Result;
use crate::tensor_file::TensorFile;

/// What a call takes besides its options. Names in the file: `query`, `value`, `key`,
/// `attention_mask`, `query_mask`, `value_mask`, `key_mask`; other tensors are ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct CallInputs {
    /// Query (B, T, Dq).
    pub query: HostTensor,
    /// Value (B, S, Dv).
    pub value: HostTensor,
    /// Key (B, S, Dk), when given.
    pub key: Option<HostTensor>,
    /// Attention mask, nonzero = attend.
    pub attention_mask: Option<Mask>,
    /// Query padding mask (B, T).
    pub query_mask: Option<Mask>,
    /// Value padding mask (B, S).
    pub value_mask: Option<Mask>,
    /// Key padding mask (B, S).
    pub key_mask: Option<Mask>,
}

impl CallInputs {
    /// Reads the inputs from a safetensors file.
    pub fn read(path: &Path) -> Result<Self> {
        Self::from_tensor_file(&TensorFile::read(path)?)
    }

    /// Reads the inputs from a safetensors file, with the call options its metadata records
    /// ([`CallRecord`], `None` when it records none).
    pub fn read_with_call(path: &Path) -> Result<(Self, Option<CallRecord>)> {
        let tf = TensorFile::read(path)?;
        Ok((Self::from_tensor_file(&tf)?, CallRecord::from_tensor_file(&tf)?))
    }

    /// The inputs in a tensor file: `query` and `value` (float) are required; masks may be BOOL or any
    /// integer or float type.
    pub fn from_tensor_file(tf: &TensorFile) -> Result<Self> {
        Ok(Self {
            query: tf.f32("query", "the query (B, T, Dq), f32")?,
            value: tf.f32("value", "the value (B, S, Dv), f32")?,
            key: tf.f32_opt("key")?,
            attention_mask: tf.mask_opt("attention_mask")?,
            query_mask: tf.mask_opt("query_mask")?,
            value_mask: tf.mask_opt("value_mask")?,
            key_mask: tf.mask_opt("key_mask")?,
        })
    }

    /// Puts the masks into `options` (replacing any there).
    pub fn apply_masks(&self, options: &mut CallOptions) {
        options.attention_mask = self.attention_mask.clone();
        options.query_mask = self.query_mask.clone();
        options.value_mask = self.value_mask.clone();
        options.key_mask = self.key_mask.clone();
    }

    /// The inputs as a tensor file (masks as BOOL).
    pub fn to_tensor_file(&self, file: impl Into<String>) -> TensorFile {
        let mut tf = TensorFile::new(file);
        tf.insert_f32("query", &self.query);
        tf.insert_f32("value", &self.value);
        if let Some(k) = &self.key {
            tf.insert_f32("key", k);
        }
        for (name, m) in [
            ("attention_mask", &self.attention_mask),
            ("query_mask", &self.query_mask),
            ("value_mask", &self.value_mask),
            ("key_mask", &self.key_mask),
        ] {
            if let Some(m) = m {
                tf.insert_mask(name, m);
            }
        }
        tf
    }
}

/// A call's results as a tensor file: `output` and, when present, `scores` (f32), with `metadata`.
pub fn outputs_tensor_file(
    out: &ForwardOutput,
    metadata: BTreeMap<String, String>,
    file: impl Into<String>,
) -> TensorFile {
    let mut tf = TensorFile::new(file);
    tf.insert_f32("output", &out.output);
    if let Some(s) = &out.scores {
        tf.insert_f32("scores", s);
    }
    tf.metadata = metadata;
    tf
}

/// Writes a call's results (see [`outputs_tensor_file`]).
pub fn write_outputs(path: &Path, out: &ForwardOutput, metadata: BTreeMap<String, String>) -> Result<()> {
    outputs_tensor_file(out, metadata, path.display().to_string()).write(path)
}
