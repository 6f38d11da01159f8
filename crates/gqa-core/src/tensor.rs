//! Host tensors: row-major f32 data with a shape, and boolean masks; slicing them along an axis
//! (a batch's sequences, a time window) and joining them back.

use std::ops::{Bound, RangeBounds};

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

    /// The indices `range` of axis `axis`, every other axis whole: a new tensor whose shape has
    /// `range.len()` at `axis`. Errors ([`GqaError::Slice`]) when the axis is past the rank or the
    /// range past the axis' length (or reversed); an empty range gives an empty tensor.
    ///
    /// ```
    /// # use gqa_core::HostTensor;
    /// let x = HostTensor::new([2, 3, 1], vec![0.0, 1.0, 2.0, 10.0, 11.0, 12.0])?;
    /// assert_eq!(x.slice_axis(1, 1..)?.data(), [1.0, 2.0, 11.0, 12.0]);
    /// assert!(x.slice_axis(1, 2..4).is_err());
    /// # Ok::<(), gqa_core::GqaError>(())
    /// ```
    pub fn slice_axis(&self, axis: usize, range: impl RangeBounds<usize>) -> Result<Self, GqaError> {
        let (shape, data) = slice("HostTensor::slice_axis", &self.shape, &self.data, axis, range)?;
        Ok(Self { shape, data })
    }

    /// The rows `range` of the leading axis: sequences of a batch of (B, T, D) inputs or outputs.
    ///
    /// ```
    /// # use gqa_core::HostTensor;
    /// let batch = HostTensor::new([3, 2, 2], (0..12).map(|i| i as f32).collect())?;
    /// let second = batch.rows(1..2)?;
    /// assert_eq!((second.shape(), second.data()), (&[1, 2, 2][..], &[4.0, 5.0, 6.0, 7.0][..]));
    /// # Ok::<(), gqa_core::GqaError>(())
    /// ```
    pub fn rows(&self, range: impl RangeBounds<usize>) -> Result<Self, GqaError> {
        let (shape, data) = slice("HostTensor::rows", &self.shape, &self.data, 0, range)?;
        Ok(Self { shape, data })
    }

    /// The time steps `range` (axis 1) of every sequence of a (B, T, ...) tensor: a prompt, a
    /// decoding step's tokens, a window of outputs.
    ///
    /// ```
    /// # use gqa_core::HostTensor;
    /// let tokens = HostTensor::new([2, 4, 1], (0..8).map(|i| i as f32).collect())?;
    /// assert_eq!(tokens.time_slice(3..4)?.data(), [3.0, 7.0]); // the last token of each sequence
    /// # Ok::<(), gqa_core::GqaError>(())
    /// ```
    pub fn time_slice(&self, range: impl RangeBounds<usize>) -> Result<Self, GqaError> {
        let (shape, data) = slice("HostTensor::time_slice", &self.shape, &self.data, 1, range)?;
        Ok(Self { shape, data })
    }

    /// Joins tensors along `axis` (the inverse of slicing): every other axis must agree. Errors
    /// ([`GqaError::ShapeMismatch`]) on no tensor, different ranks, an axis past the rank or
    /// disagreeing sizes.
    ///
    /// ```
    /// # use gqa_core::HostTensor;
    /// let x = HostTensor::new([2, 3, 1], (0..6).map(|i| i as f32).collect())?;
    /// let parts = [x.time_slice(..1)?, x.time_slice(1..)?];
    /// assert_eq!(HostTensor::concat(&parts, 1)?, x);
    /// # Ok::<(), gqa_core::GqaError>(())
    /// ```
    pub fn concat(tensors: &[HostTensor], axis: usize) -> Result<Self, GqaError> {
        const OP: &str = "HostTensor::concat";
        let mismatch = |detail: String| GqaError::ShapeMismatch { op: OP, detail };
        let first = tensors.first().ok_or_else(|| mismatch("no tensor to join".into()))?;
        if axis >= first.shape.len() {
            return Err(mismatch(format!("axis {axis} is past the rank of shape {:?}", first.shape)));
        }
        for t in tensors {
            let same_rank = t.shape.len() == first.shape.len();
            let others_agree =
                same_rank && t.shape.iter().zip(&first.shape).enumerate().all(|(i, (a, b))| i == axis || a == b);
            if !others_agree {
                return Err(mismatch(format!("shapes {:?} and {:?} differ outside axis {axis}", first.shape, t.shape)));
            }
        }
        let outer: usize = first.shape[..axis].iter().product();
        let inner: usize = first.shape[axis + 1..].iter().product();
        let mut shape = first.shape.clone();
        shape[axis] = tensors.iter().map(|t| t.shape[axis]).sum();
        let mut data = Vec::with_capacity(shape.iter().product());
        for o in 0..outer {
            for t in tensors {
                let run = t.shape[axis] * inner;
                data.extend_from_slice(&t.data[o * run..(o + 1) * run]);
            }
        }
        Ok(Self { shape, data })
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

    /// The indices `range` of axis `axis`, as [`HostTensor::slice_axis`] (e.g. a `query_mask`'s
    /// time window: axis 1).
    pub fn slice_axis(&self, axis: usize, range: impl RangeBounds<usize>) -> Result<Self, GqaError> {
        let (shape, data) = slice("Mask::slice_axis", &self.shape, &self.data, axis, range)?;
        Ok(Self { shape, data })
    }

    /// The rows `range` of the leading axis (a batch's sequences), as [`HostTensor::rows`].
    pub fn rows(&self, range: impl RangeBounds<usize>) -> Result<Self, GqaError> {
        let (shape, data) = slice("Mask::rows", &self.shape, &self.data, 0, range)?;
        Ok(Self { shape, data })
    }
}

/// The indices `range` of `axis` of row-major `data` of `shape`: the new shape and data.
fn slice<T: Copy>(
    op: &'static str,
    shape: &[usize],
    data: &[T],
    axis: usize,
    range: impl RangeBounds<usize>,
) -> Result<(Vec<usize>, Vec<T>), GqaError> {
    let len = shape.get(axis).copied().unwrap_or(0);
    let start = match range.start_bound() {
        Bound::Included(&s) => Some(s),
        Bound::Excluded(&s) => s.checked_add(1),
        Bound::Unbounded => Some(0),
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.checked_add(1),
        Bound::Excluded(&e) => Some(e),
        Bound::Unbounded => Some(len),
    };
    let (start, end) = match (start, end) {
        (Some(s), Some(e)) if axis < shape.len() && s <= e && e <= len => (s, e),
        (s, e) => {
            let (start, end) = (s.unwrap_or(usize::MAX), e.unwrap_or(usize::MAX));
            return Err(GqaError::Slice { op, shape: shape.to_vec(), axis, start, end });
        }
    };
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out = Vec::with_capacity(outer * (end - start) * inner);
    for o in 0..outer {
        let at = (o * len + start) * inner;
        out.extend_from_slice(&data[at..at + (end - start) * inner]);
    }
    let mut new_shape = shape.to_vec();
    new_shape[axis] = end - start;
    Ok((new_shape, out))
}
