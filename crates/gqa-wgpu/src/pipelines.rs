//! One compute pipeline and bind group layout per kernel, compiled once per device.

use std::collections::HashMap;

use gqa_core::{Access, Kernel, Params};

use crate::error::GpuError;
use crate::shaders;

/// The format of every texture a plan uses (4 f32 per texel).
pub(crate) const TEXTURE_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba32Float;

/// A kernel's compiled pipeline and the layout of its bind group.
pub(crate) struct KernelPipeline {
    pub(crate) layout: wgpu::BindGroupLayout,
    pub(crate) pipeline: wgpu::ComputePipeline,
}

/// Every kernel's pipeline.
pub(crate) struct Pipelines {
    by_kernel: HashMap<Kernel, KernelPipeline>,
}

impl Pipelines {
    /// Compiles every kernel the device's limits and features allow (a kernel that needs more
    /// storage buffers or workgroup memory than the device offers is left out; plans, checked against
    /// the same limits, never use it; the subgroup variants are compiled only where the device has
    /// `Features::SUBGROUP`, and plans use them only when the context's tuning says so). Validation
    /// errors (a shader the device rejects) come back as values.
    pub(crate) fn new(device: &wgpu::Device) -> Result<Self, GpuError> {
        let limits = device.limits();
        let f16 = device.features().contains(wgpu::Features::SHADER_F16);
        if !f16 {
            log::info!("gqa: the device has no SHADER_F16: f16 kernels not compiled, f16 layers run in f32");
        }
        let subgroups = device.features().contains(wgpu::Features::SUBGROUP);
        let fits = |k: &Kernel| {
            k.storage_buffers() <= limits.max_storage_buffers_per_shader_stage
                && k.storage_textures() <= limits.max_storage_textures_per_shader_stage
                && k.workgroup_memory_bytes() <= limits.max_compute_workgroup_storage_size
                && k.workgroup_size().iter().product::<u32>() <= limits.max_compute_invocations_per_workgroup
        };
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let by_kernel = Kernel::ALL
            .iter()
            .filter(|k| f16 || !k.needs_shader_f16())
            .filter(|k| {
                if k.needs_subgroups() && !subgroups {
                    log::debug!("gqa: kernel {} needs Features::SUBGROUP; not compiled", k.name());
                    return false;
                }
                let ok = fits(k);
                if !ok {
                    log::info!("gqa: kernel {} does not fit this device's limits; not compiled", k.name());
                }
                ok
            })
            .map(|&k| (k, build(device, k)))
            .collect();
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::from_wgpu("compile pipelines", e));
        }
        Ok(Self { by_kernel })
    }

    /// The compiled kernel, or an error when the device's limits or features (`SHADER_F16` for an f16
    /// kernel, `SUBGROUP` for a subgroup one) kept it from being compiled (plans made with
    /// `GpuContext::limits`, `GpuContext::tuning` and a layer's resolved precision never ask for one;
    /// a plan made for other limits, or a tuning forced with `with_tuning`, may).
    pub(crate) fn get(&self, kernel: Kernel) -> Result<&KernelPipeline, GpuError> {
        self.by_kernel.get(&kernel).ok_or_else(|| GpuError::Unsupported {
            op: "encode_forward".into(),
            what: if kernel.needs_shader_f16() {
                format!("kernel {} (it needs the device feature SHADER_F16)", kernel.name())
            } else if kernel.needs_subgroups() {
                format!("kernel {} (it needs Features::SUBGROUP, which this device lacks)", kernel.name())
            } else {
                format!("kernel {} (it needs more than this device's limits)", kernel.name())
            },
        })
    }

    /// Whether the kernel was compiled for this device.
    pub(crate) fn has(&self, kernel: Kernel) -> bool {
        self.by_kernel.contains_key(&kernel)
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
            Access::Texture => wgpu::BindingType::Texture {
                sample_type: wgpu::TextureSampleType::Float { filterable: false },
                view_dimension: wgpu::TextureViewDimension::D2,
                multisampled: false,
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
