//! `GpuContext`: the device and queue the layer runs on, found by us or handed over by the caller.

use std::sync::Arc;

use crate::error::GpuError;
use crate::pipelines::Pipelines;
use crate::polling::AsyncPolling;
use crate::pool::{BufferPool, DEFAULT_POOL_BUDGET, DEFAULT_POOL_MAX_BUFFERS, PoolStats};

/// A wgpu device and queue, what is known of the adapter, and the kernels' pipelines.
///
/// Cloning is cheap (shared handles). Each kernel's pipeline is compiled the first time a call uses
/// it, once per context (the clones share them): opening a context compiles nothing, and the first
/// call pays for the few kernels it runs ([`GqaLayer::warm_up`](crate::GqaLayer::warm_up) compiles
/// those a layer's calls will run, [`GpuContext::compile_all_kernels`] every kernel, up front). The
/// clones share
/// one buffer pool (see [`GpuContext::pool_stats`]). `GpuContext` is `Send + Sync`: layers made on it
/// may be called from several threads at once.
#[derive(Clone)]
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    pub(crate) pipelines: Arc<Pipelines>,
    pub(crate) pool: Arc<BufferPool>,
    /// Shared by the clones of one context: what tensors are checked against (wgpu's own device
    /// comparison cannot tell apart devices of two `wgpu::Instance`s).
    identity: Arc<()>,
    async_polling: AsyncPolling,
    plan_limits: Option<gqa_core::Limits>,
    tuning: gqa_core::Tuning,
    /// The driver's loop cap ([`GpuContext::loop_iteration_cap`]): the tuning's cap is never looser.
    loop_iteration_cap: Option<u64>,
    lost: Arc<std::sync::Mutex<Option<String>>>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext").field("adapter", &self.info.name).field("backend", &self.info.backend).finish()
    }
}

/// How much an adapter is preferred: discrete > integrated > virtual > CPU, native APIs over GL.
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let device = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 4,
        wgpu::DeviceType::IntegratedGpu => 3,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 1,
        wgpu::DeviceType::Other => 0,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 2,
        wgpu::Backend::Gl => 1,
        _ => 0,
    };
    (device, backend)
}

/// What to install when no adapter is found, per platform.
const NO_ADAPTER_HINT: &str = "on Debian/Ubuntu without a GPU install Mesa's software drivers: \
`apt-get install -y mesa-vulkan-drivers libvulkan1` (Vulkan lavapipe) or \
`apt-get install -y libegl1 libegl-mesa0 libgl1-mesa-dri` (OpenGL llvmpipe); \
with a GPU, install its Vulkan driver";

impl GpuContext {
    /// Finds the best adapter of the backends in `WGPU_BACKEND` (all when unset) and opens a device
    /// with the adapter's own limits. Blocks; see [`GpuContext::new_async`].
    pub fn new() -> Result<Self, GpuError> {
        pollster::block_on(Self::new_async())
    }

    /// Async form of [`GpuContext::new`].
    pub async fn new_async() -> Result<Self, GpuError> {
        let desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        let backends = desc.backends;
        Self::best_of(wgpu::Instance::new(desc), backends).await
    }

    /// Finds the best adapter among `backends` (e.g. `wgpu::Backends::VULKAN`).
    pub fn with_backends(backends: wgpu::Backends) -> Result<Self, GpuError> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        pollster::block_on(Self::best_of(wgpu::Instance::new(desc), backends))
    }

    /// One context per adapter wgpu can see among `backends`, best first.
    pub fn all_adapters(backends: wgpu::Backends) -> Vec<Result<Self, GpuError>> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let mut adapters = pollster::block_on(instance.enumerate_adapters(backends));
        adapters.sort_by_key(|a| std::cmp::Reverse(rank(&a.get_info())));
        adapters.into_iter().map(|a| pollster::block_on(Self::from_adapter(&a))).collect()
    }

    async fn best_of(instance: wgpu::Instance, backends: wgpu::Backends) -> Result<Self, GpuError> {
        let adapters = instance.enumerate_adapters(backends).await;
        if log::log_enabled!(log::Level::Debug) {
            let names: Vec<String> = adapters
                .iter()
                .map(|a| a.get_info())
                .map(|i| format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type))
                .collect();
            log::debug!("gqa: adapters found for {backends:?} (the best by device type, then API, is used): {names:?}");
        }
        let best = adapters
            .into_iter()
            .max_by_key(|a| rank(&a.get_info()))
            .ok_or_else(|| GpuError::NoAdapter { backends: format!("{backends:?}"), hint: NO_ADAPTER_HINT.into() })?;
        Self::from_adapter(&best).await
    }

    /// Opens a device on `adapter` with the adapter's limits, and those of `Features::SHADER_F16` (for
    /// f16 layers: [`gqa_core::Precision::F16`]), `Features::SUBGROUP` (for the subgroup kernel
    /// variants) and `Features::TIMESTAMP_QUERY` (for [`StepTimer`](crate::StepTimer)) the adapter
    /// offers; no other optional feature.
    pub async fn from_adapter(adapter: &wgpu::Adapter) -> Result<Self, GpuError> {
        let info = adapter.get_info();
        let wanted = wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP | wgpu::Features::TIMESTAMP_QUERY;
        let required_features = adapter.features() & wanted;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("gqa"),
                required_features,
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::RequestDevice { adapter: info.name.clone(), message: e.to_string() })?;
        let ctx = Self::from_device(device, queue, info)?;
        let lost = ctx.lost.clone();
        ctx.device.set_device_lost_callback(move |reason, message| {
            log::warn!("gqa: device lost ({reason:?}): {message}");
            if let Ok(mut slot) = lost.lock() {
                *slot = Some(format!("{reason:?}: {message}"));
            }
        });
        Ok(ctx)
    }

    /// Wraps a device and queue the caller already has (bring your own GPU): the layer's pipelines
    /// are compiled on it (each at its first use), its weights and buffers are allocated on it, and its work goes to `queue`.
    /// `info` is reported by [`GpuContext::adapter_info`] and picks the kernel variants (register
    /// blocking when `info.device_type` is `Cpu`; the subgroup variants when the device was created
    /// with `Features::SUBGROUP`); the plan is checked against `device.limits()`. No feature is
    /// needed beyond WebGPU's defaults; f16 layers run in f16 only when the device was created with
    /// `SHADER_F16` (else in f32). The caller's device-lost callback is left alone:
    /// on a lost device, calls fail with wgpu's errors.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo) -> Result<Self, GpuError> {
        let pipelines = Arc::new(Pipelines::new(&device));
        log::info!(
            "gqa: using {} ({:?}, {:?}, {} {})",
            info.name,
            info.backend,
            info.device_type,
            info.driver,
            info.driver_info
        );
        let base = match info.device_type {
            wgpu::DeviceType::Cpu => gqa_core::Tuning::CPU,
            _ => gqa_core::Tuning::GPU,
        };
        // The device's features, not the adapter's: a device opened without SUBGROUP cannot run
        // the subgroup kernels even on an adapter that offers it.
        let subgroups = pipelines.has(gqa_core::Kernel::Softmax(gqa_core::Lanes::Subgroup));
        let subgroup_sizes = if subgroups { [info.subgroup_min_size, info.subgroup_max_size] } else { [0, 0] };
        let tuning = gqa_core::Tuning { subgroups, subgroup_sizes, ..base };
        log::info!("gqa: kernel variants {tuning:?}");
        Ok(Self {
            device,
            queue,
            info,
            pipelines,
            pool: Arc::new(BufferPool::new(DEFAULT_POOL_BUDGET, DEFAULT_POOL_MAX_BUFFERS)),
            identity: Arc::new(()),
            async_polling: AsyncPolling::default(),
            plan_limits: None,
            tuning,
            loop_iteration_cap: base.loop_iteration_cap,
            lost: Default::default(),
        })
    }

    /// `Err(DeviceLost)` once the device of a context made by [`GpuContext::new`] (or its siblings)
    /// was lost: build a new context and layer.
    pub fn check_alive(&self, op: &str) -> Result<(), GpuError> {
        match self.lost.lock().ok().and_then(|s| s.clone()) {
            Some(reason) => Err(GpuError::DeviceLost { op: op.into(), reason }),
            None => Ok(()),
        }
    }

    /// Whether `other` is this context or a clone of it (made by `clone`, [`GpuContext::with_tuning`]
    /// or [`GpuContext::with_plan_limits`]): then they share the device, the queue and the pool.
    /// Two contexts made by two calls of [`GpuContext::from_device`] on one device are not the same.
    pub fn same_as(&self, other: &GpuContext) -> bool {
        Arc::ptr_eq(&self.identity, &other.identity)
    }

    /// The adapter this context runs on.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// A one-line description: name, backend, device type, driver.
    pub fn describe(&self) -> String {
        let i = &self.info;
        format!("{} ({:?}, {:?}, {} {})", i.name, i.backend, i.device_type, i.driver, i.driver_info)
    }

    /// The device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// The limits plans are made for: the device's, lowered by [`GpuContext::with_plan_limits`].
    pub fn limits(&self) -> gqa_core::Limits {
        let device = core_limits(&self.device.limits());
        match self.plan_limits {
            None => device,
            Some(cap) => device.min(&cap),
        }
    }

    /// The kernel variants plans use on this adapter (register blocking on CPU adapters, workgroup
    /// tiles on GPUs; the subgroup variants where the device has `Features::SUBGROUP`). Its
    /// `precision` is the default storage precision of the layers made on this context
    /// ([`gqa_core::Precision::F32`] unless set with [`GpuContext::with_tuning`]); each layer
    /// resolves its own ([`crate::GqaLayer::precision`]).
    pub fn tuning(&self) -> gqa_core::Tuning {
        self.tuning
    }

    /// Compiles now every kernel the device can run (each is otherwise compiled at its first use):
    /// for an application that would rather pay the compile time up front than in its first calls,
    /// and to check that the device accepts every kernel. The kernels compile on parallel threads,
    /// one per core. A shader the device rejects comes back as an error naming the kernel.
    pub fn compile_all_kernels(&self) -> Result<(), GpuError> {
        self.check_alive("compile_all_kernels")?;
        self.pipelines.compile_all()
    }

    /// How many kernels' pipelines this context (and its clones) has compiled so far: each is
    /// compiled once, at its first use, by [`GpuContext::compile_all_kernels`] or by
    /// [`GqaLayer::warm_up`](crate::GqaLayer::warm_up). A count that does not grow over a call
    /// means the call compiled nothing.
    pub fn compiled_kernel_count(&self) -> usize {
        self.pipelines.compiled_count()
    }

    /// Whether the device has `SHADER_F16`, so that f16 layers run in f16.
    pub fn supports_f16(&self) -> bool {
        self.device.features().contains(wgpu::Features::SHADER_F16)
    }

    /// The precision a layer asking for `wanted` runs in here: `wanted`, except f16 on a device
    /// without `SHADER_F16`, which falls back to f32 (logged at `info`), never an error.
    pub fn resolve_precision(&self, wanted: gqa_core::Precision) -> gqa_core::Precision {
        use gqa_core::Precision;
        match wanted {
            Precision::F16 if !self.supports_f16() => {
                log::info!("gqa: f16 requested but {} has no SHADER_F16: running in f32", self.describe());
                Precision::F32
            }
            other => other,
        }
    }

    /// The same context with other kernel variants (for tests and experiments). Every variant runs
    /// on every adapter except the subgroup ones (`subgroups: true`), which need a device with
    /// `Features::SUBGROUP`: elsewhere calls fail with [`GpuError::Unsupported`]. The tuning's
    /// `loop_iteration_cap` is never looser than the driver's ([`GpuContext::loop_iteration_cap`]):
    /// a tuning without one, or with a larger one, keeps the driver's, so that forcing
    /// [`gqa_core::Tuning::GPU`] on Mesa's llvmpipe gives plans that stay within its cap (loops past it
    /// stop silently there) instead of wrong results. A smaller cap is kept as given.
    pub fn with_tuning(mut self, tuning: gqa_core::Tuning) -> Self {
        let loop_iteration_cap = match (tuning.loop_iteration_cap, self.loop_iteration_cap) {
            (Some(given), Some(driver)) => Some(given.min(driver)),
            (given, driver) => given.or(driver),
        };
        self.tuning = gqa_core::Tuning { loop_iteration_cap, ..tuning };
        self
    }

    /// The most loop iterations the driver runs per invocation before it stops a shader's loops
    /// early, as this context assumes: [`gqa_core::LLVMPIPE_LOOP_CAP`] on CPU adapters (Mesa's
    /// lavapipe and llvmpipe), `None` on GPUs, unless set with
    /// [`GpuContext::with_loop_iteration_cap`]. [`GpuContext::tuning`]'s cap is never looser.
    pub fn loop_iteration_cap(&self) -> Option<u64> {
        self.loop_iteration_cap
    }

    /// The same context, assuming the driver stops loops after `cap` iterations per invocation
    /// (`None`: never), for both the driver's cap ([`GpuContext::loop_iteration_cap`]) and the
    /// tuning's: for a CPU adapter known not to stop loops (the default assumes Mesa's cap on every
    /// CPU adapter), a GPU driver known to stop them, or planning for such a device. Plans on a
    /// driver that does stop loops, made with a looser cap than its own, give wrong results.
    pub fn with_loop_iteration_cap(mut self, cap: Option<u64>) -> Self {
        self.loop_iteration_cap = cap;
        self.tuning.loop_iteration_cap = cap;
        self
    }

    /// What the buffer pool shared by this context's clones and layers holds, and how many buffers
    /// it has created and reused: after a first call, repeated calls of the same shapes reuse every
    /// buffer they need, so `created` stops growing.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// Bounds the idle buffers the pool keeps: at most `bytes` (default [`DEFAULT_POOL_BUDGET`],
    /// 256 MiB) in at most `max_buffers` buffers (default [`DEFAULT_POOL_MAX_BUFFERS`]); least
    /// recently used buffers are dropped first when either is exceeded. `(0, 0)` keeps nothing:
    /// every call then allocates its buffers anew.
    pub fn set_pool_budget(&self, bytes: u64, max_buffers: usize) {
        self.pool.set_budget(bytes, max_buffers);
    }

    /// Drops every idle buffer of the pool (wgpu frees each once no submitted work uses it).
    pub fn clear_pool(&self) {
        self.pool.clear();
    }

    /// Who polls the device while an `async` call waits for its results (default
    /// [`AsyncPolling::Thread`]).
    pub fn async_polling(&self) -> AsyncPolling {
        self.async_polling
    }

    /// The same context (sharing device, queue and pool) with another [`AsyncPolling`] for the
    /// `async` calls of the layers made on it.
    pub fn with_async_polling(mut self, polling: AsyncPolling) -> Self {
        self.async_polling = polling;
        self
    }

    /// The same context, planning as if the device's limits were no higher than `cap` (e.g. to bound
    /// the memory of one call, or to exercise the chunking on small data).
    pub fn with_plan_limits(mut self, cap: gqa_core::Limits) -> Self {
        self.plan_limits = Some(cap);
        self
    }
}

/// Converts wgpu's limits to gqa-core's.
pub fn core_limits(l: &wgpu::Limits) -> gqa_core::Limits {
    gqa_core::Limits {
        max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
        max_buffer_size: l.max_buffer_size,
        max_uniform_buffer_binding_size: l.max_uniform_buffer_binding_size,
        max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
        max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
        max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
        max_storage_buffers_per_shader_stage: l.max_storage_buffers_per_shader_stage,
        max_storage_textures_per_shader_stage: l.max_storage_textures_per_shader_stage,
        max_texture_dimension_2d: l.max_texture_dimension_2d,
    }
}
