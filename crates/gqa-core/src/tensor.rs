//! Host tensors: row-major f32 data with a shape, and boolean masks.

use crate::error::GqaError;

/// A row-major (C order) f32 tensor on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl HostTensor {
    /// A tensor from a shape and its data; errors when the lengths disagree.
    pub fn new(shape: impl Into<Vec<usize>>, data: Vec<f32>) -> Result<Self, GqaError> {
        let shape = shape.into();
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(GqaError::DataLength { tensor: "tensor".into(), shape, expected, got: data.len() });
        }
        Ok(Self { shape, data })
    }

    /// A tensor of zeros.
    pub fn zeros(shape: impl Into<Vec<usize>>) -> Self {
        let shape = shape.into();
        let n = shape.iter().product();
        Self { shape, data: vec![0.0; n] }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The data, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The data, mutable (the shape stays).
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Consumes the tensor, returning its data.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// A boolean mask (true = attend) with a shape; Keras accepts bool or 0/1 numbers, any nonzero attends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    shape: Vec<usize>,
    data: Vec<bool>,
}

impl Mask {
    /// A mask from a shape and booleans.
    pub fn new(shape: impl Into<Vec<usize>>, data: Vec<bool>) -> Result<Self, GqaError> {
        let shape = shape.into();
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(GqaError::DataLength { tensor: "mask".into(), shape, expected, got: data.len() });
        }
        Ok(Self { shape, data })
    }

    /// A mask from numbers: nonzero attends (NaN counts as nonzero, as in numpy's `astype(bool)`).
    pub fn from_f32(shape: impl Into<Vec<usize>>, values: &[f32]) -> Result<Self, GqaError> {
        Self::new(shape, values.iter().map(|v| *v != 0.0).collect())
    }

    /// A mask from bytes: nonzero attends.
    pub fn from_u8(shape: impl Into<Vec<usize>>, values: &[u8]) -> Result<Self, GqaError> {
        Self::new(shape, values.iter().map(|v| *v != 0).collect())
    }

    /// A mask from integers: nonzero attends.
    pub fn from_i32(shape: impl Into<Vec<usize>>, values: &[i32]) -> Result<Self, GqaError> {
        Self::new(shape, values.iter().map(|v| *v != 0).collect())
    }

    /// A mask of one value.
    pub fn filled(shape: impl Into<Vec<usize>>, value: bool) -> Self {
        let shape = shape.into();
        let n = shape.iter().product();
        Self { shape, data: vec![value; n] }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The values, row-major.
    pub fn data(&self) -> &[bool] {
        &self.data
    }
}
