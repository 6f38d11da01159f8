//! One kernel compiled on the RADV device, its statistics read back.

use ash::vk;
use gqa_core::Kernel;

use crate::device::RadvDevice;
use crate::error::IsaError;
use crate::stats::KernelStats;
use crate::{layout, spirv};

/// The Vulkan objects of one compiled kernel, destroyed when dropped.
struct Objects<'a> {
    device: &'a ash::Device,
    module: vk::ShaderModule,
    set_layout: vk::DescriptorSetLayout,
    pipeline_layout: vk::PipelineLayout,
    pipeline: vk::Pipeline,
}

impl Drop for Objects<'_> {
    fn drop(&mut self) {
        // SAFETY: each handle is null or was created from `device`, and nothing uses it any more.
        unsafe {
            self.device.destroy_pipeline(self.pipeline, None);
            self.device.destroy_pipeline_layout(self.pipeline_layout, None);
            self.device.destroy_descriptor_set_layout(self.set_layout, None);
            self.device.destroy_shader_module(self.module, None);
        }
    }
}

fn vulkan(call: &'static str, kernel: Kernel) -> impl FnOnce(vk::Result) -> IsaError {
    move |result| IsaError::Vulkan { call: format!("{call} ({})", kernel.name()), result }
}

impl RadvDevice {
    /// Compiles `kernel` (its WGSL as gqa-wgpu composes it, translated as wgpu would) into a
    /// compute pipeline with `CAPTURE_STATISTICS` and reads the compiler's statistics.
    pub fn compile(&self, kernel: Kernel) -> Result<KernelStats, IsaError> {
        let (module, info) = spirv::module(kernel)?;
        layout::check(kernel, &module)?;
        let words = spirv::spirv(kernel, &module, &info, &self.target)?;
        let device = &self.device;
        let mut objects = Objects {
            device,
            module: vk::ShaderModule::null(),
            set_layout: vk::DescriptorSetLayout::null(),
            pipeline_layout: vk::PipelineLayout::null(),
            pipeline: vk::Pipeline::null(),
        };
        // SAFETY (every call below): valid create infos, handles from this device.
        objects.module =
            unsafe { device.create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&words), None) }
                .map_err(vulkan("vkCreateShaderModule", kernel))?;
        let bindings: Vec<_> = layout::descriptor_types(kernel)
            .into_iter()
            .enumerate()
            .map(|(i, ty)| {
                vk::DescriptorSetLayoutBinding::default()
                    .binding(i as u32)
                    .descriptor_type(ty)
                    .descriptor_count(1)
                    .stage_flags(vk::ShaderStageFlags::COMPUTE)
            })
            .collect();
        objects.set_layout = unsafe {
            device.create_descriptor_set_layout(&vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings), None)
        }
        .map_err(vulkan("vkCreateDescriptorSetLayout", kernel))?;
        let set_layouts = [objects.set_layout];
        objects.pipeline_layout = unsafe {
            device.create_pipeline_layout(&vk::PipelineLayoutCreateInfo::default().set_layouts(&set_layouts), None)
        }
        .map_err(vulkan("vkCreatePipelineLayout", kernel))?;
        let stage_flags = if self.varying_subgroup_size {
            vk::PipelineShaderStageCreateFlags::ALLOW_VARYING_SUBGROUP_SIZE
        } else {
            vk::PipelineShaderStageCreateFlags::empty()
        };
        let stage = vk::PipelineShaderStageCreateInfo::default()
            .flags(stage_flags)
            .stage(vk::ShaderStageFlags::COMPUTE)
            .module(objects.module)
            .name(c"main");
        let create = vk::ComputePipelineCreateInfo::default()
            .flags(vk::PipelineCreateFlags::CAPTURE_STATISTICS_KHR)
            .stage(stage)
            .layout(objects.pipeline_layout);
        objects.pipeline = unsafe { device.create_compute_pipelines(vk::PipelineCache::null(), &[create], None) }
            .map_err(|(_, result)| vulkan("vkCreateComputePipelines", kernel)(result))?[0];
        let executables = unsafe {
            self.statistics
                .get_pipeline_executable_properties(&vk::PipelineInfoKHR::default().pipeline(objects.pipeline))
        }
        .map_err(vulkan("vkGetPipelineExecutablePropertiesKHR", kernel))?;
        let subgroup_size = executables.first().map_or(0, |e| e.subgroup_size);
        let statistics = unsafe {
            self.statistics.get_pipeline_executable_statistics(
                &vk::PipelineExecutableInfoKHR::default().pipeline(objects.pipeline).executable_index(0),
            )
        }
        .map_err(vulkan("vkGetPipelineExecutableStatisticsKHR", kernel))?;
        let value = |name: &'static str| {
            statistics
                .iter()
                .find(|s| s.name_as_c_str().is_ok_and(|n| n.to_bytes() == name.as_bytes()))
                .map(|s| {
                    // SAFETY: the union member read is the one `format` names.
                    unsafe {
                        match s.format {
                            vk::PipelineExecutableStatisticFormatKHR::BOOL32 => s.value.b32 as u64,
                            vk::PipelineExecutableStatisticFormatKHR::INT64 => s.value.i64.max(0) as u64,
                            vk::PipelineExecutableStatisticFormatKHR::FLOAT64 => s.value.f64.max(0.0) as u64,
                            _ => s.value.u64,
                        }
                    }
                })
                .ok_or(IsaError::MissingStatistic { kernel: kernel.name(), statistic: name })
        };
        Ok(KernelStats {
            kernel: kernel.name().to_string(),
            vgprs: value("VGPRs")?,
            sgprs: value("SGPRs")?,
            spilled_vgprs: value("Spilled VGPRs")?,
            spilled_sgprs: value("Spilled SGPRs")?,
            scratch_bytes: value("Scratch size")?,
            lds_bytes: value("LDS size")?,
            waves_per_simd: value("Subgroups per SIMD")?,
            instructions: value("Instructions")?,
            code_bytes: value("Code size")?,
            subgroup_size,
        })
    }
}
