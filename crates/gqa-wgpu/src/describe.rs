//! Introspection: what a call will allocate (from its plan) and what it runs on, before running it.

use std::fmt;

use gqa_core::{BufferId, BufferRole, Chunking, Plan, Tuning};

use crate::encode::params_stride;
use crate::layer::GqaLayer;

/// The GPU memory of one call, in bytes, by role, from its plan.
///
/// ```
/// use gqa_core::{CallOptions, GqaConfig, Limits, Plan, Problem};
/// use gqa_wgpu::MemoryReport;
///
/// let config = GqaConfig::new(64, 8, 2); // head_dim, Nq, Nkv
/// let problem = Problem::new(&config, &[1, 128, 512], &[1, 128, 512], None, &CallOptions::default())?;
/// let plan = Plan::new(&problem, &Limits::webgpu_default())?;
/// let memory = MemoryReport::of(&plan, 256); // 256: the device's min_uniform_buffer_offset_alignment
/// assert_eq!(memory.inputs, 2 * 128 * 512 * 4); // query and value (key = value)
/// assert_eq!(memory.outputs, 128 * 512 * 4);
/// assert!(memory.scratch >= (128 * 512 + 2 * 128 * 128) * 4); // at least the projected Q, K, V
/// println!("{memory}");
/// # Ok::<(), gqa_core::GqaError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryReport {
    /// The weights (kernels and biases), uploaded once by [`GqaLayer::new`] and shared by every
    /// call.
    pub weights: u64,
    /// Query, key and value: host calls upload them into pooled buffers; GPU calls read the
    /// caller's.
    pub inputs: u64,
    /// The packed masks (one 4-byte word when there is none), a pooled constant.
    pub masks: u64,
    /// The params uniform of every dispatch, each at the device's uniform offset alignment, a
    /// pooled constant.
    pub params: u64,
    /// Intermediate buffers (projections, probabilities, batch-chunk buffers), pooled.
    pub scratch: u64,
    /// Intermediate textures (the packed operands of the textured kernels on CPU adapters), created
    /// for the call and freed after it: not pooled.
    pub textures: u64,
    /// The output, and the scores when requested: pooled for host calls, the caller's (or new) for
    /// GPU calls.
    pub outputs: u64,
    /// The readback staging buffer of host calls (the outputs' size), pooled.
    pub staging: u64,
}

impl MemoryReport {
    /// The memory of `plan` on a device whose `min_uniform_buffer_offset_alignment` is `alignment`.
    pub fn of(plan: &Plan, alignment: u32) -> Self {
        let masks = plan.buffer(BufferId::Masks).map_or(0, |b| b.bytes);
        let outputs = plan.bytes_of(BufferRole::Output);
        let textures: u64 =
            plan.buffers.iter().filter(|b| b.role == BufferRole::Scratch && b.texture.is_some()).map(|b| b.bytes).sum();
        Self {
            weights: plan.bytes_of(BufferRole::Weight),
            inputs: plan.bytes_of(BufferRole::Input) - masks,
            masks,
            params: (params_stride(alignment) * plan.passes().count().max(1)) as u64,
            scratch: plan.bytes_of(BufferRole::Scratch) - textures,
            textures,
            outputs,
            staging: outputs,
        }
    }

    /// What a host call ([`GqaLayer::forward`]) needs besides the weights.
    pub fn host_call(&self) -> u64 {
        self.inputs + self.masks + self.params + self.scratch + self.textures + self.outputs + self.staging
    }

    /// What of a call is taken from and given back to the context's pool: everything but the
    /// weights and the textures.
    pub fn pooled(&self) -> u64 {
        self.host_call() - self.textures
    }

    /// What a GPU call ([`GqaLayer::encode_forward`]) needs besides the weights and the caller's
    /// inputs and outputs.
    pub fn gpu_call(&self) -> u64 {
        self.masks + self.params + self.scratch + self.textures
    }
}

impl fmt::Display for MemoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "weights {}; per host call {} (inputs {}, scratch {}, textures {}, outputs {}, staging {}, masks and params {})",
            human(self.weights),
            human(self.host_call()),
            human(self.inputs),
            human(self.scratch),
            human(self.textures),
            human(self.outputs),
            human(self.staging),
            human(self.masks + self.params),
        )
    }
}

/// Bytes in B, KiB, MiB or GiB.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// What a call runs on and what it runs: the adapter and backend, the kernel variants, how the
/// problem is split, the dispatches and the memory (see [`GqaLayer::describe_call`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CallDescription {
    /// The adapter, one line (name, backend, device type, driver).
    pub adapter: String,
    /// The graphics API.
    pub backend: wgpu::Backend,
    /// The kind of device (a `Cpu` one is a software rasterizer such as lavapipe or llvmpipe).
    pub device_type: wgpu::DeviceType,
    /// The kernel variants chosen for this adapter.
    pub tuning: Tuning,
    /// How the problem is split to fit the device's limits.
    pub chunking: Chunking,
    /// The dispatches, by label and kernel name, in order.
    pub dispatches: Vec<(&'static str, &'static str)>,
    /// Buffer-to-buffer copies (chunked plans only).
    pub copies: usize,
    /// Floating-point operations.
    pub flops: u64,
    /// The memory.
    pub memory: MemoryReport,
}

impl fmt::Display for CallDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "adapter   {}", self.adapter)?;
        writeln!(f, "variants  {:?}", self.tuning)?;
        writeln!(
            f,
            "plan      {} dispatches, {} copies, {:.1} MFLOP, chunks {:?}",
            self.dispatches.len(),
            self.copies,
            self.flops as f64 / 1e6,
            self.chunking
        )?;
        write!(f, "memory    {}", self.memory)
    }
}

/// One line about a plan, for the logs.
pub(crate) fn plan_summary(plan: &Plan) -> String {
    let p = &plan.problem;
    format!(
        "B={} T={} S={} Nq={} Nkv={} H={}: {} dispatches, {} steps, {:.1} MFLOP, variants {:?}, chunks {:?}, {} bytes \
         besides weights",
        p.batch,
        p.target_len,
        p.source_len,
        p.num_query_heads,
        p.num_kv_heads,
        p.head_dim,
        plan.passes().count(),
        plan.steps.len(),
        plan.flops() as f64 / 1e6,
        plan.tuning,
        plan.chunking,
        GqaLayer::call_bytes(plan)
    )
}
