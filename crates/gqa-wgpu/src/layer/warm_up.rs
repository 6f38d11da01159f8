//! Compiling up front the kernels a layer's calls will run ([`GqaLayer::warm_up`]), on the
//! calling thread or in the background ([`GqaLayer::warm_up_in_background`]).

use std::collections::BTreeMap;

use gqa_core::{CacheShape, CacheStorage, CallOptions, Kernel, Plan};

use super::GqaLayer;
use crate::context::GpuContext;
use crate::error::GpuError;

/// One kind of call an application will make of a layer, for [`GqaLayer::warm_up`].
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a few are made once, at start-up; boxing the options would only burden the callers"
)]
pub enum WarmCall {
    /// A forward call ([`GqaLayer::forward`], [`GqaLayer::forward_tensors`],
    /// [`GqaLayer::encode_forward`], ...) with these shapes and options, as [`GqaLayer::plan`]
    /// takes them.
    Forward {
        /// Query (B, T, Dq).
        query_shape: Vec<usize>,
        /// Value (B, S, Dv).
        value_shape: Vec<usize>,
        /// Key (B, S, Dk), or `None` when the value is used as key.
        key_shape: Option<Vec<usize>>,
        /// The call's options.
        options: CallOptions,
    },
    /// Decoding with a [`KvCache`](crate::KvCache) of `batch` sequences of up to `capacity` tokens:
    /// a [`GqaLayer::prefill`] of `prompt_len` tokens on the empty cache, then
    /// [`GqaLayer::step`]s of `step_len` tokens each until the cache is full. Every sequence holds
    /// the same length (the kernels of ragged prompts, whose masks are uploaded, may differ).
    Decode {
        /// Sequences of the cache.
        batch: usize,
        /// Tokens each sequence can hold.
        capacity: usize,
        /// Tokens of the prompt.
        prompt_len: usize,
        /// Tokens of each step (1 for token-by-token decoding).
        step_len: usize,
        /// Whether the calls pass a key (else the value is used as key).
        key_given: bool,
        /// How the cache stores keys and values (a quantized cache's calls run other kernels).
        storage: CacheStorage,
    },
}

impl WarmCall {
    /// A forward call with the value used as key.
    pub fn forward(query_shape: &[usize], value_shape: &[usize], options: CallOptions) -> Self {
        Self::Forward { query_shape: query_shape.to_vec(), value_shape: value_shape.to_vec(), key_shape: None, options }
    }

    /// Token-by-token decoding (value used as key) after a prompt of `prompt_len` tokens, over an
    /// f32 cache (for a layer in f16 precision, whose cache is f16, set `storage` to
    /// [`CacheStorage::F16`]).
    pub fn decode(batch: usize, capacity: usize, prompt_len: usize) -> Self {
        Self::Decode { batch, capacity, prompt_len, step_len: 1, key_given: false, storage: CacheStorage::F32 }
    }
}

/// A warm-up running on a thread of its own ([`GqaLayer::warm_up_in_background`]).
#[derive(Debug)]
pub struct WarmUpHandle {
    thread: std::thread::JoinHandle<Result<(), GpuError>>,
    kernels: Vec<Kernel>,
}

impl WarmUpHandle {
    /// The kernels being compiled (those of the calls, compiled before or not).
    pub fn kernels(&self) -> &[Kernel] {
        &self.kernels
    }

    /// Whether the compiles are over (then [`WarmUpHandle::join`] does not block).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits for the compiles; the first shader the device rejected, as for
    /// [`GqaLayer::warm_up`]. Calls made before the end are correct anyway: a kernel still
    /// compiling is waited for, one not started yet is compiled by the call.
    pub fn join(self) -> Result<Vec<Kernel>, GpuError> {
        match self.thread.join() {
            Ok(result) => result.map(|()| self.kernels),
            Err(_) => Err(GpuError::Device {
                op: "GqaLayer::warm_up_in_background".into(),
                message: "the thread compiling the kernels panicked".into(),
            }),
        }
    }
}

impl GqaLayer {
    /// Compiles now the kernels `calls` will run (and only those), so that the first real call
    /// compiles nothing: each call is planned as the layer would plan it (shapes checked against the
    /// weights, the plan tuned for this device), the plans' kernels are collected, and those not
    /// compiled yet are compiled on up to one thread per core. Returns the kernels the calls use,
    /// by name. Call it right after building the layer, before the first request (or use
    /// [`GqaLayer::warm_up_in_background`] to overlap the compiles with other start-up work).
    ///
    /// A call the layer cannot serve (shapes against the weights, options, limits) is the error
    /// its plan would give; a shader the device rejects is an error naming the kernel.
    pub fn warm_up(&self, calls: &[WarmCall]) -> Result<Vec<Kernel>, GpuError> {
        self.ctx.check_alive("GqaLayer::warm_up")?;
        let kernels = self.warm_up_kernels(calls)?;
        self.ctx.pipelines.prepare(kernels.iter().copied())?;
        Ok(kernels)
    }

    /// [`GqaLayer::warm_up`] on a thread of its own: the calls are planned now (an error here
    /// when one cannot be planned), the compiles run in the background; join the handle before the
    /// first request to be sure it compiles nothing.
    pub fn warm_up_in_background(&self, calls: &[WarmCall]) -> Result<WarmUpHandle, GpuError> {
        self.ctx.check_alive("GqaLayer::warm_up_in_background")?;
        let kernels = self.warm_up_kernels(calls)?;
        let ctx: GpuContext = self.ctx.clone();
        let todo = kernels.clone();
        let thread = std::thread::Builder::new()
            .name("gqa warm-up".into())
            .spawn(move || ctx.pipelines.prepare(todo))
            .map_err(|e| GpuError::Device {
                op: "GqaLayer::warm_up_in_background".into(),
                message: format!("no thread to compile on: {e}"),
            })?;
        Ok(WarmUpHandle { thread, kernels })
    }

    /// The distinct kernels of the calls' plans, ordered by name.
    pub fn warm_up_kernels(&self, calls: &[WarmCall]) -> Result<Vec<Kernel>, GpuError> {
        let mut kernels = BTreeMap::new();
        let mut add = |plan: &Plan| kernels.extend(plan.passes().map(|p| (p.kernel.name(), p.kernel)));
        for call in calls {
            match call {
                WarmCall::Forward { query_shape, value_shape, key_shape, options } => {
                    add(&self.plan(query_shape, value_shape, key_shape.as_deref(), options)?);
                }
                &WarmCall::Decode { batch, capacity, prompt_len, step_len, key_given, storage } => {
                    let shape = CacheShape::new(self.config(), batch, capacity)?.with_storage(storage)?;
                    for plan in self.decode_plans(shape, prompt_len, step_len, key_given)? {
                        add(&plan);
                    }
                }
            }
        }
        Ok(kernels.into_values().collect())
    }

    /// The plans of a prefill of `prompt_len` tokens and of every step of `step_len` tokens after
    /// it until the cache is full (plans choose kernels by the cached length, e.g. chunking long
    /// sequences, so every length is planned; planning runs on the CPU and allocates nothing).
    fn decode_plans(
        &self,
        shape: CacheShape,
        prompt_len: usize,
        step_len: usize,
        key_given: bool,
    ) -> Result<Vec<Plan>, GpuError> {
        let (batch, capacity) = (shape.batch, shape.capacity);
        let mirror = self.ctx.tuning().keeps_cache_texture(&shape, &self.ctx.limits());
        let mut plans = Vec::new();
        let mut past = 0;
        let mut t = prompt_len;
        loop {
            let (plan, _) = self.plan_cache_update(shape, mirror, &vec![past; batch], t, key_given, &vec![t; batch])?;
            plans.push(plan);
            past += t;
            t = step_len;
            if step_len == 0 || past + t > capacity {
                return Ok(plans);
            }
        }
    }
}
