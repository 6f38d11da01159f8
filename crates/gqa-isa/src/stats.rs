//! What the compiler reports per kernel and per family.

use serde::{Deserialize, Serialize};

/// The statistics of one kernel compiled by RADV's compiler (ACO) for one family, as
/// `VK_KHR_pipeline_executable_properties` gives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelStats {
    /// The kernel's name ([`gqa_core::KernelSpec::name`]).
    pub kernel: String,
    /// Vector registers per lane ("VGPRs").
    pub vgprs: u64,
    /// Scalar registers ("SGPRs").
    pub sgprs: u64,
    /// Vector registers spilled to scratch memory ("Spilled VGPRs").
    pub spilled_vgprs: u64,
    /// Scalar registers spilled ("Spilled SGPRs").
    pub spilled_sgprs: u64,
    /// Scratch (private) memory per lane, bytes ("Scratch size"): spills and private arrays the
    /// compiler could not keep in registers.
    pub scratch_bytes: u64,
    /// Workgroup memory per workgroup, bytes ("LDS size").
    pub lds_bytes: u64,
    /// Waves that fit on one SIMD at once given the registers and workgroup memory ("Subgroups
    /// per SIMD"): the occupancy.
    pub waves_per_simd: u64,
    /// Instructions of the program ("Instructions").
    pub instructions: u64,
    /// Bytes of machine code ("Code size").
    pub code_bytes: u64,
    /// The wave size the driver compiled for (32 or 64).
    pub subgroup_size: u32,
}

/// Every kernel of the catalogue compiled for one family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyReport {
    /// The family (`RADV_FORCE_FAMILY`, e.g. `navi21`).
    pub family: String,
    /// The device's name as the driver gives it (e.g. `Null hardware (RADV NAVI21)`).
    pub device: String,
    /// The kernels, in the order of [`gqa_core::Kernel::ALL`].
    pub kernels: Vec<KernelStats>,
}
