//! The kernel catalogue: every compute kernel the plans dispatch, each described by one
//! [`KernelSpec`] (its WGSL file and the snippets it is composed from, workgroup size, tile,
//! bindings, workgroup memory, required device features and loop-iteration model).
//!
//! A [`Kernel`] names a family and its variant axes as typed fields (operands from storage buffers
//! or textures, precision, lanes, ...); the family's file here turns those fields into the spec.
//! Each family's file also lists its kernels (`KERNELS`, every value its axes can take), and
//! [`Kernel::ALL`] is those lists one after the other. Which kernel a plan runs is decided in one
//! place only, the planner's selection stage (`plan/select.rs`).
//!
//! Adding a variant to a family: a value of its axes, its arm in the family's `spec` (name, file,
//! snippets, ...) and its entry in the family's `KERNELS`, all in the family's file (a test there
//! or here builds every value the axes can take, its exhaustive matches ask for a new one, and
//! checks that the lists hold them all); its WGSL file under `shaders/` (gqa-wgpu's build script
//! puts every file there in its table of WGSL texts); and the arm of the selector that picks it.

pub mod block;
pub mod check_values;
pub mod decode;
pub mod fused;
pub mod matmul;
pub mod pack_texture;
pub mod position;
mod precision;
pub mod quantized;
pub mod separate;
mod spec;
pub mod texture;

pub use block::{BlockAttention, BlockLanes};
pub use fused::FusedOutput;
pub use matmul::{BlockRows, MatmulKernel, MatmulPrecision};
pub use precision::Precision;
pub use quantized::{CacheAttention, CachePath};
pub use separate::Lanes;
pub use spec::{Access, Features, KernelSpec, WavesFloor};

use crate::params::Params;

/// Whether a kernel reads its matrix operands (a matmul's A and B, the attention's Q, K and V) from
/// storage buffers or from rgba32float storage textures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operands {
    /// `var<storage, read>` arrays: the portable form.
    Storage,
    /// `texture_storage_2d<rgba32float, read>` textures (one texel = 4 adjacent columns): for CPU
    /// adapters, where Mesa's llvmpipe turns a texel fetch into one gather but a storage-buffer
    /// load into a loop over the SIMD lanes.
    Texture,
}

/// A compute kernel: a family and its variant axes. [`Kernel::spec`] gives everything about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `C = A·B (+ bias) (sigmoid)`, the projections ([`matmul`]).
    Matmul(MatmulKernel),
    /// Grouped, scaled logits `L[b,u,t,s] = Σ_h Q[b,t,u,h]·scale·K[b,s,u/R,h]` over Q and K stored
    /// in the precision ([`separate`]): 64x64 (t, s) tiles. Unmasked: masking happens in the softmax.
    Logits(Precision),
    /// The masked softmax over each row of the logits, in place, its row reductions done by the
    /// workgroup or by subgroup operations ([`separate`]).
    Softmax(Lanes),
    /// `O[b,t,u,h] = Σ_s drop(P[b,u,t,s])·V[b,s,u/R,h] (·G)` over V and gate stored in the precision
    /// ([`separate`]): 64x64 (h, t) tiles.
    AttendValues(Precision),
    /// Logits, masks, online softmax and PV in one pass over K/V tiles in workgroup memory
    /// ([`fused`]): the whole attention of a call, or one split of its keys writing partial states.
    FusedAttention {
        /// Storage precision of Q, K, V, gate and attention output.
        precision: Precision,
        /// What the kernel writes.
        output: FusedOutput,
    },
    /// Combines the split partial states into the attention output ([`fused`]).
    ReduceSplits(Precision),
    /// The split pass of flash-decoding for few items per kv group, f32 ([`decode`]).
    DecodeAttention(Operands),
    /// Fused f32 attention over all keys in blocks of items, an online softmax over key chunks
    /// ([`block`]).
    BlockAttention(BlockAttention),
    /// Whether the projected values hold a NaN or an infinity ([`check_values`]).
    CheckValues,
    /// Copies a row-major f32 matrix into an rgba32float storage texture ([`pack_texture`]).
    PackTexture,
    /// The decode, block or fused attention over a quantized KV cache ([`quantized`]).
    CacheAttention(CacheAttention),
    /// A cached call's new keys and values quantized into the cache ([`quantized`]).
    AppendToCache(crate::cache_storage::Quantization),
    /// QK-norm and RoPE on projected queries or keys, in place ([`position`]).
    Position(Precision),
}

/// Each family's list of its kernels, kept in the family's file next to its spec.
const FAMILIES: [&[Kernel]; 9] = [
    matmul::KERNELS,
    separate::KERNELS,
    fused::KERNELS,
    decode::KERNELS,
    block::KERNELS,
    check_values::KERNELS,
    pack_texture::KERNELS,
    quantized::KERNELS,
    position::KERNELS,
];

/// How many kernels the families list together (the length of [`Kernel::ALL`]).
const KERNEL_COUNT: usize = {
    let mut n = 0;
    let mut f = 0;
    while f < FAMILIES.len() {
        n += FAMILIES[f].len();
        f += 1;
    }
    n
};

impl Kernel {
    /// Every kernel the type can name, each once: the families' lists ([`matmul::KERNELS`],
    /// [`separate::KERNELS`], ...) one after the other. The executor can compile each of them
    /// (`compile_all_kernels`) and the shader tests compile every one; a plan picks among them in
    /// its selection stage.
    pub const ALL: [Kernel; KERNEL_COUNT] = {
        let mut all = [Kernel::CheckValues; KERNEL_COUNT];
        let mut n = 0;
        let mut f = 0;
        while f < FAMILIES.len() {
            let mut i = 0;
            while i < FAMILIES[f].len() {
                all[n] = FAMILIES[f][i];
                n += 1;
                i += 1;
            }
            f += 1;
        }
        all
    };

    /// Everything about the kernel, from its family's file.
    pub fn spec(self) -> KernelSpec {
        match self {
            Kernel::Matmul(m) => m.spec(),
            Kernel::Logits(precision) => separate::logits(precision),
            Kernel::Softmax(lanes) => separate::softmax(lanes),
            Kernel::AttendValues(precision) => separate::attend_values(precision),
            Kernel::FusedAttention { precision, output } => fused::fused(precision, output),
            Kernel::ReduceSplits(precision) => fused::reduce(precision),
            Kernel::DecodeAttention(operands) => decode::spec(operands),
            Kernel::BlockAttention(b) => b.spec(),
            Kernel::CheckValues => check_values::SPEC,
            Kernel::PackTexture => pack_texture::SPEC,
            Kernel::CacheAttention(c) => c.spec(),
            Kernel::AppendToCache(q) => quantized::append(q),
            Kernel::Position(precision) => position::spec(precision),
        }
    }

    /// A short name for labels and logs ([`KernelSpec::name`]).
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The kernel's WGSL file under `shaders/` ([`KernelSpec::file`]).
    pub fn file_name(self) -> &'static str {
        self.spec().file
    }

    /// `@workgroup_size` declared in the WGSL ([`KernelSpec::workgroup_size`]).
    pub fn workgroup_size(self) -> [u32; 3] {
        self.spec().workgroup_size
    }

    /// Output elements per workgroup along (x, y) ([`KernelSpec::tile`]).
    pub fn tile(self) -> [u32; 2] {
        self.spec().tile
    }

    /// What the kernel binds at bindings 1.. ([`KernelSpec::bindings`]).
    pub fn bindings(self) -> &'static [Access] {
        self.spec().bindings
    }

    /// Bytes of workgroup memory the kernel declares ([`KernelSpec::workgroup_memory_bytes`]).
    pub fn workgroup_memory_bytes(self) -> u32 {
        self.spec().workgroup_memory_bytes
    }

    /// Whether the kernel stores f16 (`enable f16;`): it needs the device feature `SHADER_F16`.
    pub fn needs_shader_f16(self) -> bool {
        self.spec().features.shader_f16
    }

    /// Whether the kernel uses subgroup operations: it needs the device feature `SUBGROUP`.
    pub fn needs_subgroups(self) -> bool {
        self.spec().features.subgroups
    }

    /// The most loop iterations one invocation runs for a pass's parameters
    /// ([`KernelSpec::loop_iterations`]).
    pub fn loop_iterations(self, params: &Params, subgroup_sizes: [u32; 2]) -> u64 {
        (self.spec().loop_iterations)(params, subgroup_sizes)
    }

    /// How many storage buffers the kernel binds (what `max_storage_buffers_per_shader_stage`
    /// limits).
    pub fn storage_buffers(self) -> u32 {
        self.spec().storage_buffers()
    }

    /// How many storage textures the kernel binds (what `max_storage_textures_per_shader_stage`
    /// limits).
    pub fn storage_textures(self) -> u32 {
        self.spec().storage_textures()
    }

    /// Whether the kernel is a matmul (`C = A · B (+ bias)`, sizes in the pass's `m`, `n`, `k`).
    pub fn is_matmul(self) -> bool {
        matches!(self, Kernel::Matmul(_))
    }

    /// Whether the kernel is a matmul reading its operands from textures (A the packed input, B the
    /// weight's texture).
    pub fn reads_operand_textures(self) -> bool {
        matches!(self, Kernel::Matmul(m) if m.operands() == Operands::Texture)
    }

    /// Whether the kernel is one of the block attention's forms.
    pub fn is_block_attention(self) -> bool {
        matches!(
            self,
            Kernel::BlockAttention(_) | Kernel::CacheAttention(CacheAttention { path: CachePath::Block, .. })
        )
    }
}

/// Every value of each axis shared by several families, for the tests that check that the families
/// list every kernel the type can name. The matches name every value without a wildcard, so a value
/// added to an axis fails to compile here until it is listed.
#[cfg(test)]
pub(crate) mod axes {
    use super::*;

    pub(crate) fn operands() -> [Operands; 2] {
        match Operands::Storage {
            Operands::Storage | Operands::Texture => [Operands::Storage, Operands::Texture],
        }
    }

    pub(crate) fn precisions() -> [Precision; 2] {
        match Precision::F32 {
            Precision::F32 | Precision::F16 => [Precision::F32, Precision::F16],
        }
    }

    pub(crate) fn matmul_precisions() -> [MatmulPrecision; 3] {
        use MatmulPrecision::{F16, F16ToF32, F32};
        match F32 {
            F32 | F16 | F16ToF32 => [F32, F16, F16ToF32],
        }
    }

    pub(crate) fn block_rows() -> [BlockRows; 2] {
        match BlockRows::Sixteen {
            BlockRows::Sixteen | BlockRows::Eight => [BlockRows::Sixteen, BlockRows::Eight],
        }
    }

    pub(crate) fn lanes() -> [Lanes; 2] {
        match Lanes::Workgroup {
            Lanes::Workgroup | Lanes::Subgroup => [Lanes::Workgroup, Lanes::Subgroup],
        }
    }

    pub(crate) fn fused_outputs() -> [FusedOutput; 2] {
        match FusedOutput::Attention {
            FusedOutput::Attention | FusedOutput::Partials => [FusedOutput::Attention, FusedOutput::Partials],
        }
    }

    pub(crate) fn quantizations() -> [crate::cache_storage::Quantization; 2] {
        use crate::cache_storage::Quantization::{F16, Int8};
        match F16 {
            F16 | Int8 => [F16, Int8],
        }
    }

    pub(crate) fn block_lanes() -> [BlockLanes; 3] {
        use BlockLanes::{SharedLoads, Subgroup, Workgroup};
        match Workgroup {
            Workgroup | SharedLoads | Subgroup => [Workgroup, SharedLoads, Subgroup],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::axes::*;
    use super::*;

    /// Every kernel the type can name: each family with every combination of its axes' values (the
    /// matmuls' and the block attentions' from their own files). The match names every family
    /// without a wildcard, so a family added fails to compile here until it is listed.
    fn every_nameable_kernel() -> Vec<Kernel> {
        use Kernel::*;
        let mut all = vec![CheckValues, PackTexture];
        all.extend(matmul::tests::every_nameable().into_iter().map(Matmul));
        all.extend(block::tests::every_nameable().into_iter().map(BlockAttention));
        all.extend(quantized::tests::every_nameable().into_iter().map(CacheAttention));
        all.extend(quantizations().map(AppendToCache));
        all.extend(operands().map(DecodeAttention));
        all.extend(lanes().map(Softmax));
        for p in precisions() {
            all.extend([Logits(p), AttendValues(p), ReduceSplits(p), Position(p)]);
            all.extend(fused_outputs().map(|output| FusedAttention { precision: p, output }));
        }
        for k in &all {
            match k {
                Matmul(_)
                | Logits(_)
                | Softmax(_)
                | AttendValues(_)
                | FusedAttention { .. }
                | ReduceSplits(_)
                | DecodeAttention(_)
                | BlockAttention(_)
                | CheckValues
                | PackTexture
                | CacheAttention(_)
                | AppendToCache(_)
                | Position(_) => {}
            }
        }
        all
    }

    #[test]
    fn the_families_list_every_kernel_the_type_can_name() {
        let nameable = every_nameable_kernel();
        for k in &nameable {
            assert!(Kernel::ALL.contains(k), "{k:?} is in no family's KERNELS");
        }
        assert_eq!(Kernel::ALL.len(), nameable.len());
    }

    #[test]
    fn all_is_the_family_lists_in_order() {
        let listed: Vec<Kernel> = FAMILIES.iter().flat_map(|f| f.iter().copied()).collect();
        assert_eq!(listed, Kernel::ALL);
    }

    #[test]
    fn every_kernel_is_listed_once_with_its_own_name() {
        for (i, a) in Kernel::ALL.iter().enumerate() {
            for b in &Kernel::ALL[i + 1..] {
                assert_ne!(a, b);
                assert_ne!(a.name(), b.name(), "{a:?} and {b:?}");
            }
        }
    }

    #[test]
    fn a_spec_names_its_file_and_params_first() {
        for k in Kernel::ALL {
            let spec = k.spec();
            assert!(spec.file.ends_with(".wgsl") && !spec.file.contains('/'), "{}", spec.name);
            assert!(spec.snippets.contains(&"common/params.wgsl"), "{}", spec.name);
            assert!(spec.snippets.iter().all(|s| s.starts_with("common/")), "{}", spec.name);
            // The f16 kernels start with `enable f16;`.
            assert_eq!(spec.snippets.first() == Some(&"common/f16.wgsl"), spec.features.shader_f16, "{}", spec.name);
        }
    }
}
