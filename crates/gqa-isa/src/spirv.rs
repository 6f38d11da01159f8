//! A kernel's SPIR-V, as wgpu 30's Vulkan backend writes it: the WGSL composed by gqa-wgpu
//! ([`gqa_wgpu::shaders::source`]), parsed and validated by naga, written with the options of
//! wgpu-hal 30 (`vulkan/adapter.rs`, `naga_options`; `vulkan/device.rs`, `compile_stage`).

use gqa_core::Kernel;
use naga::back::spv;
use naga::proc::{BoundsCheckPolicies, BoundsCheckPolicy};

use crate::error::IsaError;

/// What wgpu-hal reads from the device to choose its SPIR-V options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpirvTarget {
    /// The device's Vulkan version (major, minor): SPIR-V 1.0, 1.3, 1.5 or 1.6 for Vulkan 1.0,
    /// 1.1, 1.2 or 1.3 and later.
    pub vulkan_version: (u32, u32),
    /// `robustBufferAccess2` (`VK_EXT_robustness2`): buffer accesses go unchecked by naga.
    pub robust_buffer_access2: bool,
    /// `robustImageAccess2`, or else `robustImageAccess`: image loads go unchecked by naga.
    pub robust_image_access: bool,
    /// `storageInputOutput16`, used with `SHADER_F16`.
    pub storage_input_output_16: bool,
    /// `shaderInt8`: wgpu-hal allows the `Int8` capability.
    pub shader_int8: bool,
    /// `shaderIntegerDotProduct`: wgpu-hal allows the dot-product capabilities.
    pub integer_dot_product: bool,
}

impl SpirvTarget {
    /// The SPIR-V version wgpu-hal writes for the device's Vulkan version.
    pub fn spirv_version(&self) -> (u8, u8) {
        match self.vulkan_version {
            (1, 0) => (1, 0),
            (1, 1) => (1, 3),
            (1, 2) => (1, 5),
            _ => (1, 6),
        }
    }

    /// wgpu-hal's options for a device with `SHADER_F16` and `SUBGROUP` (the features gqa-wgpu
    /// asks for where the adapter has them), and `zero_initialize_workgroup_memory: false` as
    /// gqa-wgpu's pipelines pass it (every kernel writes its workgroup memory before reading it),
    /// for a pipeline whose one bind group has `bindings` entries: wgpu-hal maps each WGSL
    /// `@binding` of a group to the next Vulkan binding in the layout's order, here the same
    /// numbers, all in set 0.
    pub fn options(&self, bindings: u32) -> spv::Options<'static> {
        use spv::Capability as C;
        let mut capabilities = vec![
            C::Shader,
            C::Matrix,
            C::Sampled1D,
            C::Image1D,
            C::ImageQuery,
            C::DerivativeControl,
            C::StorageImageExtendedFormats,
            C::SampledCubeArray,
            C::SampleRateShading,
            // SUBGROUP
            C::GroupNonUniform,
            C::GroupNonUniformVote,
            C::GroupNonUniformArithmetic,
            C::GroupNonUniformBallot,
            C::GroupNonUniformShuffle,
            C::GroupNonUniformShuffleRelative,
            C::GroupNonUniformQuad,
            // SHADER_F16
            C::Float16,
        ];
        if self.integer_dot_product {
            capabilities.extend([
                C::DotProductInputAllKHR,
                C::DotProductInput4x8BitKHR,
                C::DotProductInput4x8BitPackedKHR,
                C::DotProductKHR,
            ]);
        }
        if self.shader_int8 {
            capabilities.push(C::Int8);
        }
        let checked =
            |unchecked: bool| if unchecked { BoundsCheckPolicy::Unchecked } else { BoundsCheckPolicy::Restrict };
        spv::Options {
            lang_version: self.spirv_version(),
            // Not Qualcomm: varyings labelled; point size forced; no debug info.
            flags: spv::WriterFlags::LABEL_VARYINGS | spv::WriterFlags::FORCE_POINT_SIZE,
            capabilities: Some(capabilities.into_iter().collect()),
            bounds_check_policies: BoundsCheckPolicies {
                index: BoundsCheckPolicy::Restrict,
                buffer: checked(self.robust_buffer_access2),
                image_load: checked(self.robust_image_access),
                binding_array: BoundsCheckPolicy::Unchecked,
            },
            // gqa-wgpu's `zero_initialize_workgroup_memory: false`.
            zero_initialize_workgroup_memory: spv::ZeroInitializeWorkgroupMemoryMode::None,
            force_loop_bounding: true,
            ray_query_initialization_tracking: true,
            use_storage_input_output_16: self.storage_input_output_16,
            fake_missing_bindings: false,
            binding_map: (0..bindings)
                .map(|binding| {
                    let info = spv::BindingInfo { descriptor_set: 0, binding, binding_array_size: None };
                    (naga::ResourceBinding { group: 0, binding }, info)
                })
                .collect(),
            debug_info: None,
            task_dispatch_limits: None,
            mesh_shader_primitive_indices_clamp: true,
            trace_ray_argument_validation: true,
            emit_int_div_checks: true,
        }
    }
}

/// A kernel's module as naga reads it: the WGSL of [`gqa_wgpu::shaders::source`], parsed and
/// validated.
pub fn module(kernel: Kernel) -> Result<(naga::Module, naga::valid::ModuleInfo), IsaError> {
    let name = kernel.name();
    let source = gqa_wgpu::shaders::source(kernel);
    let module = naga::front::wgsl::parse_str(&source)
        .map_err(|e| IsaError::Wgsl { kernel: name, message: e.emit_to_string(&source) })?;
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
        .validate(&module)
        .map_err(|e| IsaError::Wgsl { kernel: name, message: e.emit_to_string(&source) })?;
    Ok((module, info))
}

/// The SPIR-V words of a kernel's entry point `main` for `target`.
pub fn spirv(
    kernel: Kernel,
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    target: &SpirvTarget,
) -> Result<Vec<u32>, IsaError> {
    let pipeline = spv::PipelineOptions { entry_point: "main".into(), shader_stage: naga::ShaderStage::Compute };
    let bindings = crate::layout::descriptor_types(kernel).len() as u32;
    spv::write_vec(module, info, &target.options(bindings), Some(&pipeline))
        .map_err(|e| IsaError::Spirv { kernel: kernel.name(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RADV: SpirvTarget = SpirvTarget {
        vulkan_version: (1, 3),
        robust_buffer_access2: true,
        robust_image_access: true,
        storage_input_output_16: true,
        shader_int8: true,
        integer_dot_product: true,
    };

    /// Every kernel of the catalogue translates, its resources where gqa-wgpu's layout puts them.
    #[test]
    fn every_kernel_translates_with_the_executors_layout() {
        for kernel in Kernel::ALL {
            let (module, info) = module(kernel).unwrap();
            crate::layout::check(kernel, &module).unwrap();
            let words = spirv(kernel, &module, &info, &RADV).unwrap();
            assert_eq!(words[0], 0x0723_0203, "{}: SPIR-V magic", kernel.name());
            assert_eq!(words[1], 0x0001_0600, "{}: SPIR-V 1.6 for Vulkan 1.3", kernel.name());
        }
    }

    /// The options wgpu-hal 30 sets on Vulkan, with gqa-wgpu's uninitialized workgroup memory.
    #[test]
    fn the_options_are_wgpus() {
        let o = RADV.options(3);
        assert_eq!(o.lang_version, (1, 6));
        assert_eq!(o.zero_initialize_workgroup_memory, spv::ZeroInitializeWorkgroupMemoryMode::None);
        assert!(o.force_loop_bounding && o.emit_int_div_checks && !o.fake_missing_bindings);
        assert_eq!(o.bounds_check_policies.index, BoundsCheckPolicy::Restrict);
        assert_eq!(o.bounds_check_policies.buffer, BoundsCheckPolicy::Unchecked);
        let fragile = SpirvTarget { robust_buffer_access2: false, robust_image_access: false, ..RADV };
        assert_eq!(fragile.options(3).bounds_check_policies.buffer, BoundsCheckPolicy::Restrict);
        assert_eq!(fragile.options(3).bounds_check_policies.image_load, BoundsCheckPolicy::Restrict);
        assert_eq!(o.binding_map.len(), 3);
        assert_eq!(SpirvTarget { vulkan_version: (1, 1), ..RADV }.spirv_version(), (1, 3));
        assert_eq!(SpirvTarget { vulkan_version: (1, 2), ..RADV }.spirv_version(), (1, 5));
    }

    /// A resource the catalogue does not declare is an error naming it.
    #[test]
    fn a_binding_outside_the_layout_is_named() {
        let kernel = Kernel::PackTexture;
        let (mut module, _) = module(kernel).unwrap();
        let (_, global) = module.global_variables.iter_mut().find(|(_, g)| g.binding.is_some()).unwrap();
        global.binding = Some(naga::ResourceBinding { group: 0, binding: 9 });
        let e = crate::layout::check(kernel, &module).unwrap_err();
        assert!(e.to_string().contains("@group(0) @binding(9)") && e.to_string().contains("absent"), "{e}");
    }
}
