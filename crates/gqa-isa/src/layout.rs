//! A kernel's descriptor set, as gqa-wgpu lays it out (`pipelines.rs`, `layout_entries`): the
//! params uniform at binding 0, then the catalogue's bindings ([`gqa_core::KernelSpec::bindings`])
//! at 1.., all in group 0; checked against the resources the kernel's WGSL declares.

use ash::vk;
use gqa_core::{Access, Kernel};

use crate::error::IsaError;

/// The descriptor type of each binding of group 0, by binding number.
pub fn descriptor_types(kernel: Kernel) -> Vec<vk::DescriptorType> {
    let mut types = vec![vk::DescriptorType::UNIFORM_BUFFER];
    types.extend(kernel.bindings().iter().map(|access| match access {
        Access::Read | Access::ReadWrite => vk::DescriptorType::STORAGE_BUFFER,
        Access::Texture | Access::TextureWrite => vk::DescriptorType::STORAGE_IMAGE,
    }));
    types
}

/// Checks that every resource the module declares is in group 0 at a binding of
/// [`descriptor_types`], of the same kind.
pub fn check(kernel: Kernel, module: &naga::Module) -> Result<(), IsaError> {
    let types = descriptor_types(kernel);
    for (_, global) in module.global_variables.iter() {
        let Some(binding) = &global.binding else { continue };
        let declared = match global.space {
            naga::AddressSpace::Uniform => vk::DescriptorType::UNIFORM_BUFFER,
            naga::AddressSpace::Storage { .. } => vk::DescriptorType::STORAGE_BUFFER,
            naga::AddressSpace::Handle => match module.types[global.ty].inner {
                naga::TypeInner::Image { class: naga::ImageClass::Storage { .. }, .. } => {
                    vk::DescriptorType::STORAGE_IMAGE
                }
                naga::TypeInner::Image { .. } => vk::DescriptorType::SAMPLED_IMAGE,
                _ => vk::DescriptorType::SAMPLER,
            },
            _ => continue,
        };
        let expected = (binding.group == 0).then(|| types.get(binding.binding as usize)).flatten();
        if expected != Some(&declared) {
            return Err(IsaError::Layout {
                kernel: kernel.name(),
                detail: format!(
                    "@group({}) @binding({}) is {declared:?} in the WGSL, {} in the catalogue",
                    binding.group,
                    binding.binding,
                    expected.map_or("absent".to_string(), |t| format!("{t:?}"))
                ),
            });
        }
    }
    Ok(())
}
