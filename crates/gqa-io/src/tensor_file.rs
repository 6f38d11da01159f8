//! `TensorFile`: a safetensors file in memory — named tensors of any dtype, and string metadata.
//!
//! Reading goes through the `safetensors` crate (which validates the header and the offsets).
//! Writing is done here, with the header's keys in sorted order, so that writing the same tensors
//! twice gives the same bytes (the crate orders metadata by hash).

use std::collections::BTreeMap;
use std::path::Path;

use gqa_core::{HostTensor, Mask};
use safetensors::{Dtype as StDtype, SafeTensors};
use serde_json::{Map, Value, json};

use crate::error::{IoError, Result};

/// The element types a tensor file may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// One byte, 0 or 1.
    Bool,
    /// Unsigned 8-bit.
    U8,
    /// Signed 8-bit.
    I8,
    /// Unsigned 16-bit.
    U16,
    /// Signed 16-bit.
    I16,
    /// Unsigned 32-bit.
    U32,
    /// Signed 32-bit.
    I32,
    /// Unsigned 64-bit.
    U64,
    /// Signed 64-bit.
    I64,
    /// IEEE half.
    F16,
    /// bfloat16.
    BF16,
    /// IEEE single.
    F32,
    /// IEEE double.
    F64,
}

impl DType {
    /// The name safetensors uses (`F32`, `BOOL` ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "BOOL",
            DType::U8 => "U8",
            DType::I8 => "I8",
            DType::U16 => "U16",
            DType::I16 => "I16",
            DType::U32 => "U32",
            DType::I32 => "I32",
            DType::U64 => "U64",
            DType::I64 => "I64",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::F32 => "F32",
            DType::F64 => "F64",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 => 8,
        }
    }

    fn from_safetensors(d: StDtype) -> Option<Self> {
        Some(match d {
            StDtype::BOOL => DType::Bool,
            StDtype::U8 => DType::U8,
            StDtype::I8 => DType::I8,
            StDtype::U16 => DType::U16,
            StDtype::I16 => DType::I16,
            StDtype::U32 => DType::U32,
            StDtype::I32 => DType::I32,
            StDtype::U64 => DType::U64,
            StDtype::I64 => DType::I64,
            StDtype::F16 => DType::F16,
            StDtype::BF16 => DType::BF16,
            StDtype::F32 => DType::F32,
            StDtype::F64 => DType::F64,
            _ => return None,
        })
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The number of elements of a shape; `None` when it overflows.
pub(crate) fn elements(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// One tensor as stored: dtype, shape and little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTensor {
    dtype: DType,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// The dtypes [`StoredTensor::to_f32`] converts.
pub const FLOAT_DTYPES: &str = "F32 (or F16, BF16, F64, converted to f32)";
/// The dtypes [`StoredTensor::to_mask`] converts.
pub const MASK_DTYPES: &str = "BOOL, U8, I32 or F32 (any integer or float type; nonzero = attend)";

impl StoredTensor {
    /// A tensor from raw little-endian bytes; errors when the length does not fit the shape.
    pub fn from_bytes(dtype: DType, shape: Vec<usize>, bytes: Vec<u8>) -> std::result::Result<Self, String> {
        let fits = elements(&shape).and_then(|n| n.checked_mul(dtype.size())) == Some(bytes.len());
        if !fits {
            return Err(format!("{dtype} shape {shape:?} does not fit its {} bytes of data", bytes.len()));
        }
        Ok(Self { dtype, shape, bytes })
    }

    /// An f32 tensor.
    pub fn from_f32(t: &HostTensor) -> Self {
        let bytes = t.data().iter().flat_map(|v| v.to_le_bytes()).collect();
        Self { dtype: DType::F32, shape: t.shape().to_vec(), bytes }
    }

    /// A boolean mask (`BOOL`).
    pub fn from_mask(m: &Mask) -> Self {
        Self { dtype: DType::Bool, shape: m.shape().to_vec(), bytes: m.data().iter().map(|&b| u8::from(b)).collect() }
    }

    /// The dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The raw little-endian bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The values as f32, for float dtypes; `None` for others.
    fn floats(&self) -> Option<Vec<f32>> {
        let b = &self.bytes;
        Some(match self.dtype {
            DType::F32 => b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            DType::F64 => b
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
                .collect(),
            DType::F16 => b.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            DType::BF16 => b.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            _ => return None,
        })
    }

    /// The tensor as f32 (float dtypes only); `file` and `name` go into the error.
    pub fn to_f32(&self, file: &str, name: &str) -> Result<HostTensor> {
        let data = self.floats().ok_or_else(|| IoError::Dtype {
            file: file.into(),
            tensor: name.into(),
            dtype: self.dtype.to_string(),
            expected: FLOAT_DTYPES,
        })?;
        HostTensor::new(self.shape.clone(), data).map_err(|e| IoError::Tensor {
            file: file.into(),
            tensor: name.into(),
            source: Box::new(e),
        })
    }

    /// The tensor as a mask: nonzero attends (any dtype); `file` and `name` go into the error.
    pub fn to_mask(&self, file: &str, name: &str) -> Result<Mask> {
        let data: Vec<bool> = match self.floats() {
            Some(f) => f.iter().map(|v| *v != 0.0).collect(),
            None => self.bytes.chunks_exact(self.dtype.size()).map(|c| c.iter().any(|&b| b != 0)).collect(),
        };
        Mask::new(self.shape.clone(), data).map_err(|e| IoError::Tensor {
            file: file.into(),
            tensor: name.into(),
            source: Box::new(e),
        })
    }
}

/// A safetensors file in memory: tensors by name and string metadata, both in sorted order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TensorFile {
    /// The file's name, used in error messages.
    pub file: String,
    /// The `__metadata__` strings.
    pub metadata: BTreeMap<String, String>,
    /// The tensors by name.
    pub tensors: BTreeMap<String, StoredTensor>,
}

impl TensorFile {
    /// An empty file, named `file` in error messages.
    pub fn new(file: impl Into<String>) -> Self {
        Self { file: file.into(), ..Default::default() }
    }

    /// Reads a safetensors file.
    pub fn read(path: &Path) -> Result<Self> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| IoError::Io { file: file.clone(), source })?;
        Self::from_bytes(file, &bytes)
    }

    /// Reads only the `__metadata__` strings of a safetensors file (its header, not its tensors).
    pub fn read_metadata(path: &Path) -> Result<BTreeMap<String, String>> {
        use std::io::Read;
        let file = path.display().to_string();
        let io = |source| IoError::Io { file: file.clone(), source };
        let bad = |message: String| IoError::Format { file: file.clone(), format: "safetensors", message };
        let mut f = std::fs::File::open(path).map_err(io)?;
        let mut len = [0u8; 8];
        f.read_exact(&mut len).map_err(io)?;
        let len = u64::from_le_bytes(len);
        let size = f.metadata().map_err(io)?.len();
        if len > size.saturating_sub(8) {
            return Err(bad(format!("header of {len} bytes in a file of {size}")));
        }
        let mut header = vec![0u8; len as usize];
        f.read_exact(&mut header).map_err(io)?;
        let value: Value = serde_json::from_slice(&header).map_err(|e| bad(format!("header: {e}")))?;
        let metadata = value.get("__metadata__").and_then(Value::as_object).cloned().unwrap_or_default();
        metadata
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                other => Err(bad(format!("metadata {k:?} is {other}, not a string"))),
            })
            .collect()
    }

    /// Parses safetensors bytes; `file` names them in errors.
    pub fn from_bytes(file: impl Into<String>, bytes: &[u8]) -> Result<Self> {
        let file = file.into();
        let bad = |message: String| IoError::Format { file: file.clone(), format: "safetensors", message };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let metadata = header.metadata().clone().unwrap_or_default().into_iter().collect();
        let mut tensors = BTreeMap::new();
        for (name, view) in st.iter() {
            let dtype = DType::from_safetensors(view.dtype()).ok_or_else(|| IoError::Dtype {
                file: file.clone(),
                tensor: name.into(),
                dtype: view.dtype().to_string(),
                expected: "a float, integer or BOOL dtype",
            })?;
            let t = StoredTensor::from_bytes(dtype, view.shape().to_vec(), view.data().to_vec())
                .map_err(|m| bad(format!("tensor {name}: {m}")))?;
            tensors.insert(name.to_string(), t);
        }
        Ok(Self { file, metadata, tensors })
    }

    /// The file as safetensors bytes: header keys sorted, padded to 8 bytes, data in name order.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut header = Map::new();
        if !self.metadata.is_empty() {
            header.insert("__metadata__".into(), json!(self.metadata));
        }
        let mut offset = 0usize;
        for (name, t) in &self.tensors {
            let end = offset + t.bytes.len();
            header.insert(
                name.clone(),
                json!({ "dtype": t.dtype.name(), "shape": t.shape, "data_offsets": [offset, end] }),
            );
            offset = end;
        }
        let mut text = Value::Object(header).to_string().into_bytes();
        text.resize(text.len().next_multiple_of(8), b' ');
        let mut out = Vec::with_capacity(8 + text.len() + offset);
        out.extend_from_slice(&(text.len() as u64).to_le_bytes());
        out.extend_from_slice(&text);
        for t in self.tensors.values() {
            out.extend_from_slice(&t.bytes);
        }
        out
    }

    /// Writes the file.
    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_bytes()).map_err(|source| IoError::Io { file: path.display().to_string(), source })
    }

    /// The tensor named `name`, if present.
    pub fn get(&self, name: &str) -> Option<&StoredTensor> {
        self.tensors.get(name)
    }

    /// The tensor named `name` as f32; `hint` says what it is when it is missing.
    pub fn f32(&self, name: &str, hint: &str) -> Result<HostTensor> {
        self.get(name)
            .ok_or_else(|| IoError::MissingTensor { file: self.file.clone(), tensor: name.into(), hint: hint.into() })?
            .to_f32(&self.file, name)
    }

    /// The tensor named `name` as f32, or `None` when absent.
    pub fn f32_opt(&self, name: &str) -> Result<Option<HostTensor>> {
        self.get(name).map(|t| t.to_f32(&self.file, name)).transpose()
    }

    /// The tensor named `name` as a mask, or `None` when absent.
    pub fn mask_opt(&self, name: &str) -> Result<Option<Mask>> {
        self.get(name).map(|t| t.to_mask(&self.file, name)).transpose()
    }

    /// Adds (or replaces) an f32 tensor.
    pub fn insert_f32(&mut self, name: impl Into<String>, t: &HostTensor) {
        self.tensors.insert(name.into(), StoredTensor::from_f32(t));
    }

    /// Adds (or replaces) a mask as `BOOL`.
    pub fn insert_mask(&mut self, name: impl Into<String>, m: &Mask) {
        self.tensors.insert(name.into(), StoredTensor::from_mask(m));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_byte_stable_and_readable_by_the_crate() {
        let mut f = TensorFile::new("mem");
        f.metadata.insert("b".into(), "2".into());
        f.metadata.insert("a".into(), "1".into());
        f.insert_f32("x", &HostTensor::new([2, 3], vec![1.0, -2.0, 3.5, 0.0, 5.0, 6.0]).unwrap());
        f.insert_mask("m", &Mask::new([3], vec![true, false, true]).unwrap());
        let bytes = f.to_bytes();
        let back = TensorFile::from_bytes("mem", &bytes).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.to_bytes(), bytes);
        assert_eq!(back.f32("x", "").unwrap().data(), &[1.0, -2.0, 3.5, 0.0, 5.0, 6.0]);
        assert_eq!(back.mask_opt("m").unwrap().unwrap().data(), &[true, false, true]);
    }

    #[test]
    fn conversions_and_dtype_errors() {
        let halfs: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect();
        let t = StoredTensor::from_bytes(DType::F16, vec![2], halfs).unwrap();
        assert_eq!(t.to_f32("f", "h").unwrap().data(), &[1.5, -2.0]);
        let ints =
            StoredTensor::from_bytes(DType::I32, vec![3], [0i32, 7, -1].iter().flat_map(|v| v.to_le_bytes()).collect())
                .unwrap();
        assert_eq!(ints.to_mask("f", "m").unwrap().data(), &[false, true, true]);
        let err = ints.to_f32("f.safetensors", "query").unwrap_err().to_string();
        assert!(err.contains("f.safetensors") && err.contains("query") && err.contains("I32"), "{err}");
        assert!(StoredTensor::from_bytes(DType::F32, vec![2], vec![0; 7]).is_err());
        let err = TensorFile::from_bytes("junk.safetensors", b"not a file").unwrap_err().to_string();
        assert!(err.contains("junk.safetensors"), "{err}");
    }
}
