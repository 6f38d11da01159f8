//! What can make a compiler report fail.

use std::path::PathBuf;

use thiserror::Error;

/// Why a kernel could not be compiled on RADV's null device, or a report not be made.
#[derive(Debug, Error)]
pub enum IsaError {
    /// The Vulkan loader (`libvulkan.so.1`) could not be opened.
    #[error("loading the Vulkan loader (libvulkan.so.1): {0}")]
    NoVulkanLoader(String),
    /// No manifest of Mesa's RADV driver in the Vulkan loader's standard directories.
    #[error("finding Mesa's RADV driver: no radeon_icd*.json in {}", list_paths(searched))]
    NoRadvDriver {
        /// The directories searched.
        searched: Vec<PathBuf>,
    },
    /// The Vulkan instance shows no RADV device: RADV is not the driver loaded, or
    /// `RADV_FORCE_FAMILY` is unset or names a family this Mesa does not know.
    #[error(
        "opening RADV's null device for family {family:?}: no RADV physical device (the devices found: {})",
        if devices.is_empty() { "none".to_string() } else { devices.join(", ") }
    )]
    NoRadvDevice {
        /// `RADV_FORCE_FAMILY` as the process saw it (`None`: unset).
        family: Option<String>,
        /// The names of the physical devices the instance showed.
        devices: Vec<String>,
    },
    /// The RADV device lacks `VK_KHR_pipeline_executable_properties` (no statistics to read).
    #[error("opening {device}: it does not offer VK_KHR_pipeline_executable_properties")]
    NoStatistics {
        /// The device.
        device: String,
    },
    /// A Vulkan call failed.
    #[error("{call}: {result}")]
    Vulkan {
        /// The Vulkan function (and the kernel, where there is one).
        call: String,
        /// What it returned.
        result: ash::vk::Result,
    },
    /// A kernel's WGSL did not parse or validate with naga.
    #[error("translating {kernel} (WGSL): {message}")]
    Wgsl {
        /// The kernel's name.
        kernel: &'static str,
        /// naga's diagnostic.
        message: String,
    },
    /// naga could not write a kernel as SPIR-V.
    #[error("translating {kernel} to SPIR-V: {message}")]
    Spirv {
        /// The kernel's name.
        kernel: &'static str,
        /// naga's error.
        message: String,
    },
    /// A kernel's WGSL declares a binding its catalogue entry does not (or of another kind).
    #[error("laying out {kernel}'s bindings: {detail}")]
    Layout {
        /// The kernel's name.
        kernel: &'static str,
        /// What does not match.
        detail: String,
    },
    /// A statistic the report needs is missing from what the driver returned.
    #[error("reading {kernel}'s statistics: the driver gave no {statistic:?}")]
    MissingStatistic {
        /// The kernel's name.
        kernel: &'static str,
        /// The statistic's name as RADV spells it.
        statistic: &'static str,
    },
    /// A family name that is not a RADV family name (letters, digits and `_` only).
    #[error("reading the families: {0:?} is not a RADV family name (e.g. navi21, gfx1100, vega10)")]
    BadFamily(String),
    /// The worker process of a family could not be started.
    #[error("starting the worker for {family} ({program}): {source}")]
    Spawn {
        /// The family.
        family: String,
        /// The program run.
        program: String,
        /// Why it did not start.
        #[source]
        source: std::io::Error,
    },
    /// The worker process of a family failed.
    #[error("compiling for {family}: {message}")]
    Worker {
        /// The family.
        family: String,
        /// Its error output (or its exit status, when it printed none).
        message: String,
    },
    /// The worker of a family printed something that is not a report.
    #[error("reading the report of {family}'s worker: {message}")]
    WorkerOutput {
        /// The family.
        family: String,
        /// What is wrong with it.
        message: String,
    },
    /// Writing the report.
    #[error("writing the report: {0}")]
    Write(#[from] std::io::Error),
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}
