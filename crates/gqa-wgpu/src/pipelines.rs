//! One compute pipeline and bind group layout per kernel, compiled on first use, once per device;
//! several kernels at once are compiled on parallel threads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use gqa_core::{Access, Kernel, Params};

use crate::error::GpuError;
use crate::error_scope::{Catch, scoped};
use crate::matrix_texture::TEXTURE_FORMAT;
use crate::shaders;

/// A kernel's compiled pipeline and the layout of its bind group.
pub(crate) struct KernelPipeline {
    pub(crate) layout: wgpu::BindGroupLayout,
    pub(crate) pipeline: wgpu::ComputePipeline,
}

/// A supported kernel's pipeline, once compiled. Each kernel has its own lock, so that threads
/// compiling different kernels do not wait for each other (a compile holds only its kernel's lock).
type Slot = Mutex<Option<Arc<KernelPipeline>>>;

/// The kernels' pipelines on one device: the kernels the device can run are known when it is
/// opened, each is compiled the first time a plan uses it (a context compiles the few kernels its
/// tuning picks, not all of them: on lavapipe, compiling every kernel one after the other takes
/// over a second), and kept. The drivers compile shaders on the calling thread, so the kernels of
/// [`Pipelines::prepare`] and [`Pipelines::compile_all`] are spread over threads (lavapipe, 2
/// cores: two threads take about half the time of one).
pub(crate) struct Pipelines {
    device: wgpu::Device,
    /// One slot per kernel the device's limits and features allow.
    slots: HashMap<Kernel, Slot>,
}

impl Pipelines {
    /// The kernels the device's limits and features allow (a kernel that needs more storage buffers
    /// or workgroup memory than the device offers is left out: plans, checked against the same
    /// limits, never use it; the f16 kernels need `SHADER_F16`; the subgroup variants need
    /// `Features::SUBGROUP`, and plans use them only when the context's tuning says so). Nothing is
    /// compiled yet.
    pub(crate) fn new(device: &wgpu::Device) -> Self {
        let limits = device.limits();
        let f16 = device.features().contains(wgpu::Features::SHADER_F16);
        if !f16 {
            log::info!("gqa: the device has no SHADER_F16: f16 kernels left out, f16 layers run in f32");
        }
        let subgroups = device.features().contains(wgpu::Features::SUBGROUP);
        let fits = |k: &Kernel| {
            k.storage_buffers() <= limits.max_storage_buffers_per_shader_stage
                && k.storage_textures() <= limits.max_storage_textures_per_shader_stage
                && k.workgroup_memory_bytes() <= limits.max_compute_workgroup_storage_size
                && k.workgroup_size().iter().product::<u32>() <= limits.max_compute_invocations_per_workgroup
        };
        let slots = Kernel::ALL
            .iter()
            .filter(|k| f16 || !k.needs_shader_f16())
            .filter(|k| {
                if k.needs_subgroups() && !subgroups {
                    log::debug!("gqa: kernel {} needs Features::SUBGROUP; left out", k.name());
                    return false;
                }
                let ok = fits(k);
                if !ok {
                    log::info!("gqa: kernel {} does not fit this device's limits; left out", k.name());
                }
                ok
            })
            .map(|&k| (k, Mutex::new(None)))
            .collect();
        Self { device: device.clone(), slots }
    }

    /// The kernel's pipeline, compiled now if this is its first use. An error when the device's
    /// limits or features (`SHADER_F16` for an f16 kernel, `SUBGROUP` for a subgroup one) leave it
    /// out (plans made with `GpuContext::limits`, `GpuContext::tuning` and a layer's resolved
    /// precision never ask for one; a plan made for other limits, or a tuning forced with
    /// `with_tuning`, may), or when the device rejects the shader (a validation error, as a value).
    pub(crate) fn get(&self, kernel: Kernel) -> Result<Arc<KernelPipeline>, GpuError> {
        let Some(slot) = self.slots.get(&kernel) else {
            return Err(GpuError::Unsupported {
                op: "encode_forward".into(),
                what: if kernel.needs_shader_f16() {
                    format!("kernel {} (it needs the device feature SHADER_F16)", kernel.name())
                } else if kernel.needs_subgroups() {
                    format!("kernel {} (it needs Features::SUBGROUP, which this device lacks)", kernel.name())
                } else {
                    format!("kernel {} (it needs more than this device's limits)", kernel.name())
                },
            });
        };
        // A panic elsewhere while the lock was held leaves the slot as it was: still usable.
        let mut compiled = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(kp) = compiled.as_ref() {
            return Ok(kp.clone());
        }
        let start = std::time::Instant::now();
        // Error scopes are per thread in wgpu: this one sees only this thread's compile.
        let op = format!("compile kernel {}", kernel.name());
        let kp = scoped(&self.device, &op, Catch::Validation, || Ok(Arc::new(build(&self.device, kernel))))?;
        log::debug!("gqa: kernel {} compiled in {:?}", kernel.name(), start.elapsed());
        *compiled = Some(kp.clone());
        Ok(kp)
    }

    /// Whether the device can run the kernel (its limits and features allow it; compiled or not).
    pub(crate) fn has(&self, kernel: Kernel) -> bool {
        self.slots.contains_key(&kernel)
    }

    /// How many kernels are compiled (each at most once per device).
    pub(crate) fn compiled_count(&self) -> usize {
        self.slots.values().filter(|slot| slot.lock().unwrap_or_else(|e| e.into_inner()).is_some()).count()
    }

    /// Compiles every kernel the device can run that is not compiled yet.
    pub(crate) fn compile_all(&self) -> Result<(), GpuError> {
        self.prepare(Kernel::ALL.iter().copied().filter(|k| self.has(*k)))
    }

    /// Compiles the kernels (those not compiled yet) on up to one thread per core, the longest
    /// sources first so that no thread is left with a long compile at the end; the first error, in
    /// the kernels' order, when the device rejects one.
    pub(crate) fn prepare(&self, kernels: impl IntoIterator<Item = Kernel>) -> Result<(), GpuError> {
        let mut todo: Vec<Kernel> = Vec::new();
        for k in kernels {
            let pending = match self.slots.get(&k) {
                Some(slot) => slot.lock().unwrap_or_else(|e| e.into_inner()).is_none(),
                // Unsupported: get() names the reason.
                None => true,
            };
            if pending && !todo.contains(&k) {
                todo.push(k);
            }
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(todo.len());
        if threads <= 1 {
            return todo.into_iter().try_for_each(|k| self.get(k).map(drop));
        }
        let mut by_size: Vec<(usize, Kernel)> = todo.iter().enumerate().map(|(i, &k)| (i, k)).collect();
        by_size.sort_by_key(|&(_, k)| std::cmp::Reverse(shaders::source(k).len()));
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<(usize, GpuError)>> = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    while let Some(&(i, k)) = by_size.get(next.fetch_add(1, Ordering::Relaxed)) {
                        if let Err(e) = self.get(k) {
                            results.lock().unwrap_or_else(|e| e.into_inner()).push((i, e));
                        }
                    }
                });
            }
        });
        let mut errors = results.into_inner().unwrap_or_else(|e| e.into_inner());
        errors.sort_by_key(|&(i, _)| i);
        match errors.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }
}

/// The bind group layout entries of a kernel, from the one declaration in gqa-core.
fn layout_entries(kernel: Kernel) -> Vec<wgpu::BindGroupLayoutEntry> {
    let mut entries = vec![wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: wgpu::BufferSize::new(std::mem::size_of::<Params>() as u64),
        },
        count: None,
    }];
    for (i, access) in kernel.bindings().iter().enumerate() {
        let ty = match access {
            Access::Read | Access::ReadWrite => wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: *access == Access::Read },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            Access::Texture => wgpu::BindingType::StorageTexture {
                access: wgpu::StorageTextureAccess::ReadOnly,
                format: TEXTURE_FORMAT,
                view_dimension: wgpu::TextureViewDimension::D2,
            },
            Access::TextureWrite => wgpu::BindingType::StorageTexture {
                access: wgpu::StorageTextureAccess::WriteOnly,
                format: TEXTURE_FORMAT,
                view_dimension: wgpu::TextureViewDimension::D2,
            },
        };
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: i as u32 + 1,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty,
            count: None,
        });
    }
    entries
}

fn build(device: &wgpu::Device, kernel: Kernel) -> KernelPipeline {
    let source = shaders::source(kernel);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(kernel.name()),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(kernel.name()),
        entries: &layout_entries(kernel),
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(kernel.name()),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(kernel.name()),
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some("main"),
        compilation_options: wgpu::PipelineCompilationOptions {
            // Every kernel writes its workgroup memory before reading it.
            zero_initialize_workgroup_memory: false,
            ..Default::default()
        },
        cache: None,
    });
    KernelPipeline { layout, pipeline }
}
