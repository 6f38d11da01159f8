//! Helpers of the `api_*` tests: a small layer with its inputs and oracle output, contexts on fresh
//! devices (for buffer counts no other test disturbs), and wgpu's buffer counter.

#![allow(dead_code, reason = "each test binary uses a different part")]

use gqa::core::{CallOptions, GqaConfig, HostTensor, LayerDims, Weights};
use gqa::gpu::GpuContext;

use crate::common::{adapter_name, adapters, random_tensor, random_weights, rng};

/// A layer and one call: Nq=4, Nkv=2, H=8, Dq=12, Dk=9, Dv=10, B=2, T=6, S=9, a gate, causal.
pub struct Small {
    /// The config.
    pub config: GqaConfig,
    /// The weights.
    pub weights: Weights,
    /// Query (B, T, Dq).
    pub query: HostTensor,
    /// Value (B, S, Dv).
    pub value: HostTensor,
    /// Key (B, S, Dk).
    pub key: HostTensor,
    /// The call's options (scores requested).
    pub options: CallOptions,
}

impl Small {
    /// The case, seeded.
    pub fn new(seed: u64) -> Self {
        let mut config = GqaConfig::new(8, 4, 2);
        config.use_gate = true;
        let dims = LayerDims { query_dim: 12, key_dim: 9, value_dim: 10 };
        let weights = random_weights(&config, dims, seed);
        let mut r = rng(seed + 1);
        let (b, t, s) = (2, 6, 9);
        let query = random_tensor(&[b, t, 12], &mut r);
        let value = random_tensor(&[b, s, 10], &mut r);
        let key = random_tensor(&[b, s, 9], &mut r);
        let options = CallOptions { use_causal_mask: true, return_attention_scores: true, ..Default::default() };
        Self { config, weights, query, value, key, options }
    }

    /// The oracle's output and scores.
    pub fn oracle(&self) -> gqa::core::ForwardOutput {
        gqa::reference::forward(&self.config, &self.weights, &self.query, &self.value, Some(&self.key), &self.options)
            .unwrap()
    }
}

/// One context per adapter of [`adapters`], each on a device of its own.
pub fn fresh_contexts() -> Vec<GpuContext> {
    adapters()
        .iter()
        .map(|known| {
            let backend = wgpu::Backends::from(known.adapter_info().backend);
            GpuContext::all_adapters(backend)
                .into_iter()
                .filter_map(Result::ok)
                .find(|c| c.adapter_info().name == known.adapter_info().name)
                .unwrap_or_else(|| panic!("{}: cannot open a second device", adapter_name(known)))
        })
        .collect()
}

/// Live buffers of the device, as wgpu-hal counts them (wgpu's `counters` feature).
pub fn hal_buffers(ctx: &GpuContext) -> isize {
    ctx.device().get_internal_counters().hal.buffers.read()
}

/// Waits until the device is idle (so that wgpu has freed the transient buffers of finished work).
pub fn settle(ctx: &GpuContext) {
    ctx.device().poll(wgpu::PollType::wait_indefinitely()).unwrap();
}
