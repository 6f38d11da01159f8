//! # gqa-isa
//!
//! What AMD's shader compiler makes of every gqa kernel, without an AMD GPU: Mesa's RADV Vulkan
//! driver has a null device (`RADV_FORCE_FAMILY=navi21`, `gfx1100`, `vega10`, ...) that creates
//! compute pipelines, and `VK_KHR_pipeline_executable_properties` gives the compiler's (ACO's)
//! statistics: registers, spills, scratch memory, workgroup memory, waves per SIMD, instructions.
//!
//! Each kernel of [`gqa_core::Kernel::ALL`] is composed exactly as gqa-wgpu composes it
//! ([`gqa_wgpu::shaders::source`]), translated to SPIR-V by naga with the options wgpu 30's Vulkan
//! backend uses ([`SpirvTarget::options`]), laid out as gqa-wgpu binds it ([`layout`]), and
//! compiled with raw Vulkan ([`ash`]; wgpu cannot open the null device). Only `libvulkan.so.1`
//! and RADV's driver are needed at run time (Debian: `libvulkan1`, `mesa-vulkan-drivers`); without
//! them the calls fail with [`IsaError::NoVulkanLoader`], [`IsaError::NoRadvDriver`] or
//! [`IsaError::NoRadvDevice`].
//!
//! Process model: Mesa reads `RADV_FORCE_FAMILY` ([`FAMILY_VAR`]) from the environment when an
//! instance enumerates its devices, and a multithreaded process cannot safely set its own
//! environment. [`RadvDevice::open`] and [`compile_all`] therefore compile for the family of the
//! current process's environment, and [`report_families`] runs one worker process per family (a
//! program given by the caller, e.g. `gqa` with a hidden subcommand calling
//! [`write_family_report`]), setting the family, the RADV driver manifest ([`radv_icd`]) and
//! `MESA_SHADER_CACHE_DISABLE` through [`std::process::Command::env`].

#![deny(missing_docs)]

mod compile;
mod device;
mod error;
pub mod family;
pub mod layout;
pub mod spirv;
mod stats;

pub use device::{FAMILY_VAR, RadvDevice};
pub use error::IsaError;
pub use family::{
    Architecture, DEFAULT_FAMILIES, ICD_VAR, Worker, compile_all, radv_icd, report_families, write_family_report,
};
pub use spirv::SpirvTarget;
pub use stats::{FamilyReport, KernelStats};
