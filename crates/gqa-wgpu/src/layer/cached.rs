//! Decoding with a [`KvCache`]: prefill a prompt, then step token by token, on host data
//! ([`GqaLayer::prefill`], [`GqaLayer::step`]) or recorded over GPU tensors
//! ([`GqaLayer::encode_step`]); [`GqaLayer::plan_cached`] shows the plan of such a call.

use gqa_core::{CacheUpdate, GqaError, HostTensor, Plan};

use super::GqaLayer;
use super::host_call::HostCall;
use crate::args::{EncodedForward, ForwardArgs};
use crate::error::GpuError;
use crate::kv_cache::KvCache;
use crate::polling::Drive;

impl GqaLayer {
    /// An empty [`KvCache`] for this layer: `batch` sequences of up to `capacity` tokens.
    pub fn new_cache(&self, batch: usize, capacity: usize) -> Result<KvCache, GpuError> {
        KvCache::new(self, batch, capacity)
    }

    /// Runs the layer over a prompt and appends its keys and values to `cache`: query (B, P, Dq),
    /// value (B, P, Dv), key (B, P, Dk) or `None` (value used as key). Causal: prompt token `i` sees
    /// the cached prefix and prompt tokens `<= i` (on an empty cache, exactly a causal call of the
    /// layer). `lengths` gives each sequence's prompt length when the prompts are right-padded to P
    /// (ragged); only those tokens are appended (the padded rows' outputs are computed but
    /// meaningless). `None`: all P. Returns the output (B, P, Dq).
    ///
    /// On a cache that already holds tokens this appends a chunk (chunked prefill).
    pub fn prefill(
        &self,
        cache: &mut KvCache,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        lengths: Option<&[usize]>,
    ) -> Result<HostTensor, GpuError> {
        const OP: &str = "GqaLayer::prefill";
        let t = self.cached_call_len(OP, cache, query.shape(), value.shape(), key.map(HostTensor::shape))?;
        let new = match lengths {
            Some(l) if l.len() != cache.batch() => {
                return Err(
                    GqaError::CacheMismatch { op: OP, what: "batch", cache: cache.batch(), call: l.len() }.into()
                );
            }
            Some(l) => l.to_vec(),
            None => vec![t; cache.batch()],
        };
        self.run_cached(OP, cache, query, value, key, &new)
    }

    /// One decoding step: `T >= 1` new tokens per sequence (query (B, T, Dq), value (B, T, Dv), key
    /// (B, T, Dk) or `None`). Projects only the new tokens' keys and values, appends them, and
    /// attends with bottom-right causal alignment over each sequence's cached prefix plus the new
    /// tokens (and the layer's sliding window, when set). Returns the output (B, T, Dq): row `i` of
    /// sequence `b` equals the row `lengths()[b] + i` of one causal call over the whole sequence.
    ///
    /// Every sequence must already hold a prefix ([`GqaError::CacheEmpty`] otherwise: run
    /// [`GqaLayer::prefill`] first).
    pub fn step(
        &self,
        cache: &mut KvCache,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
    ) -> Result<HostTensor, GpuError> {
        const OP: &str = "GqaLayer::step";
        let t = self.cached_call_len(OP, cache, query.shape(), value.shape(), key.map(HostTensor::shape))?;
        cache.check_prefix(OP)?;
        self.run_cached(OP, cache, query, value, key, &vec![t; cache.batch()])
    }

    /// [`GqaLayer::step`] recorded into the caller's encoder over GPU tensors ([`TensorArgs`](crate::TensorArgs) or raw
    /// [`GpuInputs`](crate::GpuInputs): query (B, T, Dq), value (B, T, Dv), optional key; the output
    /// goes into `output` when given, else a new tensor). Nothing is submitted or read back, so a
    /// decoding loop can keep its data on the GPU and batch steps with its own passes.
    ///
    /// The cache's lengths advance when the step is recorded, so several steps (whose inputs are
    /// already on the GPU) can be recorded into one encoder: the queue runs them in order. If the
    /// encoder is dropped unsubmitted, roll the cache back with [`KvCache::truncate_each`].
    pub fn encode_step<A: ForwardArgs + ?Sized>(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        cache: &mut KvCache,
        args: &A,
    ) -> Result<EncodedForward, GpuError> {
        const OP: &str = "GqaLayer::encode_step";
        let inputs = args.gpu_inputs(&self.ctx)?;
        let key_shape = inputs.key.as_ref().map(|k| &k.1[..]);
        let t = self.cached_call_len(OP, cache, &inputs.query_shape, &inputs.value_shape, key_shape)?;
        cache.check_prefix(OP)?;
        let (plan, update) = self.cached_plan(cache, t, inputs.key.is_some(), &vec![t; cache.batch()])?;
        let buffers = Some(cache.buffers());
        let encoded = crate::encode::record(&self.ctx, self.weight_store(), encoder, &inputs, buffers, plan)?;
        cache.set_lengths(update.lengths_after());
        Ok(encoded)
    }

    /// The plan of a cached call appending `new[b]` of the `T` rows of `query_shape` (B, T, Dq) to
    /// each sequence of `cache` (nothing is run).
    pub fn plan_cached(
        &self,
        cache: &KvCache,
        query_shape: &[usize],
        key_given: bool,
        new: &[usize],
    ) -> Result<Plan, GpuError> {
        let t = query_shape.get(1).copied().unwrap_or(0);
        Ok(self.cached_plan(cache, t, key_given, new)?.0)
    }

    /// The plan of a cached call (its masks packed in the plan) and its update of the cache.
    pub(crate) fn cached_plan(
        &self,
        cache: &KvCache,
        t: usize,
        key_given: bool,
        new: &[usize],
    ) -> Result<(Plan, CacheUpdate), GpuError> {
        self.plan_cache_update(cache.shape(), cache.has_texture_mirrors(), cache.lengths(), t, key_given, new)
    }

    /// The plan of a cached call on a cache of `shape` (with texture mirrors when `mirror`) whose
    /// sequences hold `past` tokens, and its update of the cache.
    pub(crate) fn plan_cache_update(
        &self,
        shape: gqa_core::CacheShape,
        mirror: bool,
        past: &[usize],
        t: usize,
        key_given: bool,
        new: &[usize],
    ) -> Result<(Plan, CacheUpdate), GpuError> {
        let window = self.decoding_config().sliding_window;
        let update = CacheUpdate::new(shape, past, new, t, window)?.with_texture_mirror(mirror);
        let dims = self.dims();
        let key_dim = key_given.then_some(dims.key_dim);
        let (problem, _) =
            update.extended_problem(self.config(), self.extensions(), dims.query_dim, dims.value_dim, key_dim)?;
        let plan = Plan::cached(&problem, &update, &self.ctx.limits(), self.tuning())?;
        Ok((plan, update))
    }

    /// Checks the call's shapes against the cache and the layer; returns T.
    fn cached_call_len(
        &self,
        op: &'static str,
        cache: &KvCache,
        query: &[usize],
        value: &[usize],
        key: Option<&[usize]>,
    ) -> Result<usize, GpuError> {
        if !cache.belongs_to(&self.ctx) {
            return Err(GpuError::Buffer {
                op: op.into(),
                buffer: "KV cache".into(),
                problem: "was made with another context than the layer's".into(),
            });
        }
        cache.shape().check_heads(op, self.config().num_key_value_heads, self.config().head_dim)?;
        let dims = self.dims();
        let mut expected = vec![("query", query, dims.query_dim), ("value", value, dims.value_dim)];
        if let Some(k) = key {
            expected.push(("key", k, dims.key_dim));
        }
        let t = query.get(1).copied().unwrap_or(0);
        for (name, shape, feature) in expected {
            let want = [cache.batch(), t, feature];
            if shape.len() == 3 && shape[0] != cache.batch() {
                return Err(GqaError::CacheMismatch { op, what: "batch", cache: cache.batch(), call: shape[0] }.into());
            }
            if shape != want {
                return Err(GqaError::ShapeMismatch {
                    op,
                    detail: format!("{name} has shape {shape:?}, the call needs {want:?} (B, T new tokens, features)"),
                }
                .into());
            }
        }
        if t == 0 {
            return Err(GqaError::ZeroSize { what: format!("{op}: new tokens") }.into());
        }
        Ok(t)
    }

    fn run_cached(
        &self,
        op: &'static str,
        cache: &mut KvCache,
        query: &HostTensor,
        value: &HostTensor,
        key: Option<&HostTensor>,
        new: &[usize],
    ) -> Result<HostTensor, GpuError> {
        let (plan, update) = self.cached_plan(cache, query.shape()[1], key.is_some(), new)?;
        let call = HostCall { query, value, key, cache: Some(cache.buffers()) };
        let out = pollster::block_on(self.run_planned(op, &call, plan, Drive::Block))?;
        cache.set_lengths(update.lengths_after());
        Ok(out.output)
    }
}
