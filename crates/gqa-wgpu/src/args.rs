//! The GPU buffers of one call: raw wgpu buffers ([`GpuInputs`]) or GPU tensors ([`TensorArgs`]),
//! and what recording a call gives back ([`EncodedForward`]).

use gqa_core::{GqaError, Plan};

use crate::context::GpuContext;
use crate::error::GpuError;
use crate::tensor::GpuTensor;

/// The caller's GPU buffers for [`crate::GqaLayer::encode_forward`], as raw wgpu buffers.
///
/// Layout: row-major f32 starting at byte offset 0 (a buffer may be longer than its tensor).
/// Usages: inputs need `STORAGE` when the plan binds them directly and `COPY_SRC` when it splits the
/// batch (see [`gqa_core::Chunking`]; on CPU adapters an input with `COPY_SRC` is packed into its
/// texture by a copy, one without it by a pass); outputs (`output` (B, T, Dq), `scores` (B, Nq, T, S)) need
/// `STORAGE`, or `COPY_DST` when split. Giving all of `STORAGE | COPY_SRC | COPY_DST`
/// ([`GpuTensor::USAGE`]) always works. The buffers must belong to the layer's device (wgpu cannot
/// check this for buffers of another `wgpu::Instance`; [`TensorArgs`] is checked).
#[derive(Debug, Clone, Copy)]
pub struct GpuInputs<'a> {
    /// Query (B, T, Dq).
    pub query: &'a wgpu::Buffer,
    /// Its shape.
    pub query_shape: [usize; 3],
    /// Value (B, S, Dv).
    pub value: &'a wgpu::Buffer,
    /// Its shape.
    pub value_shape: [usize; 3],
    /// Key (B, S, Dk) and its shape, when it differs from value.
    pub key: Option<(&'a wgpu::Buffer, [usize; 3])>,
    /// Where to write the output; a new buffer is made when `None`.
    pub output: Option<&'a wgpu::Buffer>,
    /// Where to write the scores (when requested); a new buffer is made when `None`.
    pub scores: Option<&'a wgpu::Buffer>,
}

/// The GPU tensors of one call for [`crate::GqaLayer::encode_forward`] and
/// [`crate::GqaLayer::forward_tensors`]: the inputs and, optionally, tensors to write the results
/// into (so repeated calls allocate nothing; otherwise new output buffers are made per call).
///
/// ```no_run
/// # use gqa_wgpu::{GpuTensor, TensorArgs};
/// # fn f(x: &GpuTensor, out: &GpuTensor) {
/// let self_attention = TensorArgs::new(x, x).output(out);
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TensorArgs<'a> {
    /// Query (B, T, Dq).
    pub query: &'a GpuTensor,
    /// Value (B, S, Dv).
    pub value: &'a GpuTensor,
    /// Key (B, S, Dk); the value is used as key when `None` (as in Keras).
    pub key: Option<&'a GpuTensor>,
    /// Where to write the output (B, T, Dq).
    pub output: Option<&'a GpuTensor>,
    /// Where to write the scores (B, Nq, T, S), when requested.
    pub scores: Option<&'a GpuTensor>,
}

impl<'a> TensorArgs<'a> {
    /// Query and value; no key, new outputs.
    pub fn new(query: &'a GpuTensor, value: &'a GpuTensor) -> Self {
        Self { query, value, key: None, output: None, scores: None }
    }

    /// With a key.
    pub fn key(mut self, key: &'a GpuTensor) -> Self {
        self.key = Some(key);
        self
    }

    /// Writing the output into `output`.
    pub fn output(mut self, output: &'a GpuTensor) -> Self {
        self.output = Some(output);
        self
    }

    /// Writing the scores into `scores`.
    pub fn scores(mut self, scores: &'a GpuTensor) -> Self {
        self.scores = Some(scores);
        self
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::GpuInputs<'_> {}
    impl Sealed for super::TensorArgs<'_> {}
}

/// What [`crate::GqaLayer::encode_forward`] accepts: [`GpuInputs`] (raw buffers) or
/// [`TensorArgs`] (GPU tensors). Sealed.
pub trait ForwardArgs: sealed::Sealed {
    /// The raw buffers and shapes, after checking what can be checked before planning: the rank of
    /// each tensor and that it was made with `ctx` (or a clone).
    fn gpu_inputs(&self, ctx: &GpuContext) -> Result<GpuInputs<'_>, GpuError>;
}

impl ForwardArgs for GpuInputs<'_> {
    fn gpu_inputs(&self, _ctx: &GpuContext) -> Result<GpuInputs<'_>, GpuError> {
        Ok(*self)
    }
}

impl ForwardArgs for TensorArgs<'_> {
    fn gpu_inputs(&self, ctx: &GpuContext) -> Result<GpuInputs<'_>, GpuError> {
        const OP: &str = "GqaLayer::encode_forward";
        let tensors = [
            ("query", Some(self.query)),
            ("value", Some(self.value)),
            ("key", self.key),
            ("output", self.output),
            ("scores", self.scores),
        ];
        for (name, t) in tensors {
            if let Some(t) = t.filter(|t| !t.is_on(ctx)) {
                return Err(GpuError::Buffer {
                    op: OP.into(),
                    buffer: name.into(),
                    problem: format!(
                        "was made with another context ({}) than the layer's: tensors must be made with the \
                         layer's GpuContext or a clone of it",
                        t.context().describe()
                    ),
                });
            }
        }
        let rank3 = |name: &str, t: &GpuTensor| -> Result<[usize; 3], GqaError> {
            <[usize; 3]>::try_from(t.shape()).map_err(|_| GqaError::Rank {
                op: OP,
                tensor: name.into(),
                expected: 3,
                got: t.shape().to_vec(),
            })
        };
        let key = match self.key {
            Some(k) => Some((k.buffer(), rank3("key", k)?)),
            None => None,
        };
        Ok(GpuInputs {
            query: self.query.buffer(),
            query_shape: rank3("query", self.query)?,
            value: self.value.buffer(),
            value_shape: rank3("value", self.value)?,
            key,
            output: self.output.map(GpuTensor::buffer),
            scores: self.scores.map(GpuTensor::buffer),
        })
    }
}

/// What [`crate::GqaLayer::encode_forward`] recorded: the plan it follows and the tensors that will
/// hold the results once the caller submits the encoder (the caller's when given, new otherwise).
#[derive(Debug, Clone)]
pub struct EncodedForward {
    /// The plan recorded.
    pub plan: Plan,
    /// The output (B, T, Dq).
    pub output: GpuTensor,
    /// The scores (B, Nq, T, S), when requested.
    pub scores: Option<GpuTensor>,
}

/// A validated shape as three dims (the plan checks ranks first; a wrong rank never gets here).
pub(crate) fn dims3(s: &[usize]) -> [usize; 3] {
    [s.first().copied().unwrap_or(0), s.get(1).copied().unwrap_or(0), s.get(2).copied().unwrap_or(0)]
}
