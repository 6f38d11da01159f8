//! The plan: every buffer and every dispatch of a forward call, as plain data, checked against
//! device limits. gqa-wgpu executes it without re-deriving any size.
//!
//! [`Plan::tuned`] and [`Plan::cached`] run the planner's stages in order, each in its own file:
//!
//! 1. [`chunk`] (`chunk.rs`): how many batch elements, (b, u) rows and queries go in one chunk.
//! 2. [`select`] (`select.rs`): which kernels run the projections and the attention, as a typed [`Route`]
//!    (the only code that names kernel variants).
//! 3. `buffers.rs`: every buffer and texture, sized from the problem, the chunking and the route.
//! 4. `emit.rs`: the steps of every batch chunk (the attention's in `attention.rs`, one function
//!    per route), each pass's params from `params.rs`.
//! 5. `check.rs`: the plan against the device's limits and the tuning's loop cap.
//!
//! The packed mask words ([`Plan::mask_words`]) are computed with the plan from the problem's
//! masks ([`masks`], `masks.rs`).

mod attention;
mod buffers;
mod check;
pub mod chunk;
mod emit;
pub mod masks;
mod params;
mod positions;
pub mod resources;
pub mod select;
#[cfg(test)]
mod select_tests;
pub mod steps;
#[cfg(test)]
mod tests;

pub use chunk::Chunking;
pub use masks::MaskOffsets;
pub use resources::{BufferId, BufferRole, BufferSpec, ExtensionWeight};
pub use select::{AttentionRoute, ProjectionRoute, Route, ValueCheck};
pub use steps::{CopySpec, Pass, Step};

use crate::error::GqaError;
use crate::kernels::Kernel;
use crate::kv_cache::CacheUpdate;
use crate::limits::Limits;
use crate::params::Params;
use crate::problem::Problem;
use crate::tuning::Tuning;

/// Every buffer and step of one forward call.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The problem planned.
    pub problem: Problem,
    /// The buffers, each once.
    pub buffers: Vec<BufferSpec>,
    /// The steps (dispatches and copies), in order.
    pub steps: Vec<Step>,
    /// The packed mask layout.
    pub mask_offsets: MaskOffsets,
    /// How the problem is split.
    pub chunking: Chunking,
    /// The adapter's tuning the plan was made under.
    pub tuning: Tuning,
    /// For a cached call, what it appends to the KV cache (see [`Plan::cached`]).
    pub cache: Option<CacheUpdate>,
    /// The kernels that run the projections and the attention.
    pub route: Route,
    /// The packed mask words ([`Plan::mask_words`]).
    mask_words: Vec<u32>,
    /// The rotary table ([`Plan::rope_table`]).
    rope_table: Vec<f32>,
}

impl Plan {
    /// Plans the unfused forward pass for `limits`: when a buffer would exceed one storage binding
    /// or a dispatch too many workgroups, the batch and then the attention rows are split into
    /// chunks run one after the other, with the same result as the unsplit computation.
    pub fn new(problem: &Problem, limits: &Limits) -> Result<Self, GqaError> {
        Self::tuned(problem, limits, Tuning::default())
    }

    /// [`Plan::new`] with the kernel variants of `tuning`.
    pub fn tuned(problem: &Problem, limits: &Limits, tuning: Tuning) -> Result<Self, GqaError> {
        Self::build(problem, limits, tuning, None)
    }

    /// This plan with each packing copy out of `src` (the copies that fill the packed textures) replaced by the
    /// [`Kernel::PackTexture`] pass that fills the same texture: for a caller's buffer that cannot be
    /// a copy source (a buffer made without `COPY_SRC`), which a pass can still bind. Copies that
    /// are not packings (batch chunks, KV cache appends) are left as they are.
    pub fn packing_by_passes_from(mut self, src: BufferId) -> Self {
        let buffers = &self.buffers;
        for step in &mut self.steps {
            let Step::Copy(c) = *step else { continue };
            if c.src != src || c.src_offset != 0 || c.dst_offset != 0 {
                continue;
            }
            let packed = buffers.iter().find(|b| b.id == c.dst && b.role == BufferRole::Scratch);
            let Some(shape) = packed.and_then(|b| b.texture) else { continue };
            let cols = shape.width as u64 * 4;
            let rows = c.bytes / (cols * 4);
            let kernel = Kernel::PackTexture;
            *step = Step::Dispatch(Pass {
                label: c.label,
                kernel,
                workgroups: emit::tiled(kernel, cols, rows, 1),
                params: Params { pack_rows: rows as u32, pack_cols: cols as u32, ..Params::default() },
                bindings: vec![c.src, c.dst],
            });
        }
        self
    }

    /// A cached call (a KV-cache prefill or step; `problem` from [`CacheUpdate::problem`]): the
    /// projections run over the call's `T` new tokens only, their keys and values are copied (into
    /// the cache of the tuning's precision, [`crate::CacheStorage::native`]) or quantized by
    /// [`crate::Kernel::AppendToCache`] (into an f16 or int8 cache of an f32 call) into
    /// [`BufferId::KeyCache`] / [`BufferId::ValueCache`] at each sequence's slots, and the
    /// attention reads the cache (`kv_stride` = capacity) over the longest sequence's keys.
    pub fn cached(problem: &Problem, update: &CacheUpdate, limits: &Limits, tuning: Tuning) -> Result<Self, GqaError> {
        if problem.target_len != update.target_len || problem.source_len != update.source_len() {
            return Err(GqaError::ShapeMismatch {
                op: "Plan::cached",
                detail: format!(
                    "the problem has T={}, S={}; the cache update T={}, S={}",
                    problem.target_len,
                    problem.source_len,
                    update.target_len,
                    update.source_len()
                ),
            });
        }
        update.shape.check_heads("Plan::cached", problem.num_kv_heads, problem.head_dim)?;
        if problem.batch != update.shape.batch {
            return Err(GqaError::CacheMismatch {
                op: "Plan::cached",
                what: "batch",
                cache: update.shape.batch,
                call: problem.batch,
            });
        }
        update.shape.storage.check_precision("Plan::cached", tuning.precision)?;
        if problem.return_scores || problem.dropout.is_some() {
            return Err(GqaError::IncompatibleOptions(
                "a cached call returns no scores and runs no dropout (inference only)".into(),
            ));
        }

        Self::build(problem, limits, tuning, Some(update))
    }

    fn build(
        problem: &Problem,
        limits: &Limits,
        tuning: Tuning,
        cache: Option<&CacheUpdate>,
    ) -> Result<Self, GqaError> {
        let p = problem;
        let chunking = chunk::choose(p, limits, cache)?;
        let route = select::route(p, limits, tuning, &chunking, cache);
        if let Some(c) = cache.filter(|c| c.shape.storage.quantized_for(tuning.precision).is_some())
            && route.attention.uses_probs()
        {
            return Err(GqaError::IncompatibleOptions(format!(
                "Plan::cached: an {} KV cache is read by the fused, block and decode attentions only, which need \
                 head_dim a multiple of 4 up to {} and the device's storage buffers and workgroup memory; \
                 use an f32 cache for this layer (head_dim {})",
                c.shape.storage,
                crate::kernels::fused::MAX_HEAD_DIM,
                p.head_dim
            )));
        }
        let listed = buffers::list(p, limits, tuning, &chunking, &route, cache)?;
        let mask_offsets = MaskOffsets::of(p);
        let base = Params {
            kv_stride: cache.map_or(p.source_len, |c| c.shape.capacity) as u32,
            ..params::shared(p, &mask_offsets)
        };
        let emitted = emit::steps(p, &route, &chunking, cache, base);
        let mut buffers = listed.buffers;
        let mut textures = listed.textures;
        for spec in emitted.packed {
            if !textures.iter().any(|t| t.id == spec.id) {
                textures.push(spec);
            }
        }
        buffers.extend(textures);
        let mut plan = Self {
            problem: p.clone(),
            buffers,
            steps: emitted.steps,
            mask_offsets,
            chunking,
            tuning,
            cache: cache.cloned(),
            route,
            mask_words: masks::pack(p),
            rope_table: positions::table(p, cache),
        };
        // A weight kept as a texture is a buffer too only where a pass binds it (a call too tall
        // for the textures): the layer uploads it as its texture alone and makes the buffer from it
        // when a plan needs one.
        let bound = plan.bound();
        let textured: Vec<BufferId> = plan
            .buffers
            .iter()
            .filter_map(|b| match b.id {
                BufferId::WeightTexture(d) => Some(BufferId::Weight(d)),
                _ => None,
            })
            .collect();
        plan.buffers.retain(|b| !textured.contains(&b.id) || bound.contains(&b.id));
        check::against_limits(&plan, limits)?;
        Ok(plan)
    }

    /// The packed mask words, what [`BufferId::Masks`] holds: every mask part of the problem as
    /// bits (1 = attend) at the offsets of [`Plan::mask_offsets`], 32 to a word, at least one word.
    pub fn mask_words(&self) -> &[u32] {
        &self.mask_words
    }

    /// The rotary table, what [`BufferId::RopeTable`] holds: `(m·cos, m·sin)` (f32) of every
    /// rotated pair, one row per position the call uses (a cached call: per new token of each
    /// sequence, at `past + i`); one zero without RoPE.
    pub fn rope_table(&self) -> &[f32] {
        &self.rope_table
    }

    /// The steps of the attention core: after the last input projection, before the output
    /// projection (a cached call's appends, the packing of the projections, the attention passes,
    /// and under the textured tuning the packing of the output projection's input).
    /// `None` when the plan splits the batch (each chunk repeats the projections).
    pub fn attention_steps(&self) -> Option<std::ops::Range<usize>> {
        let mut outputs = self.steps.iter().enumerate().filter(|(_, s)| s.label() == "project_output");
        let (end, _) = outputs.next()?;
        if outputs.next().is_some() {
            return None;
        }
        let start = self.steps[..end].iter().rposition(|s| s.label().starts_with("project_"))? + 1;
        Some(start..end)
    }

    /// The buffers and textures some dispatch binds.
    fn bound(&self) -> std::collections::HashSet<BufferId> {
        self.passes().flat_map(|p| p.bindings.iter().copied()).collect()
    }

    /// The dispatches, in order.
    pub fn passes(&self) -> impl Iterator<Item = &Pass> {
        self.steps.iter().filter_map(|s| match s {
            Step::Dispatch(p) => Some(p),
            Step::Copy(_) => None,
        })
    }

    /// The spec of a buffer, if the plan has it.
    pub fn buffer(&self, id: BufferId) -> Option<&BufferSpec> {
        self.buffers.iter().find(|b| b.id == id)
    }

    /// The buffer that holds all the scores after the plan ran, when they were requested.
    pub fn scores_buffer(&self) -> Option<BufferId> {
        match (self.problem.return_scores, self.buffer(BufferId::Scores)) {
            (false, _) => None,
            (true, Some(_)) => Some(BufferId::Scores),
            (true, None) => Some(BufferId::Probs),
        }
    }

    /// Total bytes of the buffers with a role.
    pub fn bytes_of(&self, role: BufferRole) -> u64 {
        self.buffers.iter().filter(|b| b.role == role).map(|b| b.bytes).sum()
    }

    /// Floating-point operations of the forward pass (multiply-add = 2), for throughput figures.
    pub fn flops(&self) -> u64 {
        let p = &self.problem;
        let (b, t, s) = (p.batch as u64, p.target_len as u64, p.source_len as u64);
        // A cached call projects only its new tokens' keys and values.
        let s_in = if self.cache.is_some() { t } else { s };
        let heads = (p.num_query_heads * p.head_dim) as u64;
        let kv = (p.num_kv_heads * p.head_dim) as u64;
        let gate = if p.use_gate { 2 * b * t * p.query_dim as u64 * heads } else { 0 };
        let projections = 2 * b * t * p.query_dim as u64 * heads
            + 2 * b * s_in * (p.key_dim + p.value_dim) as u64 * kv
            + 2 * b * t * heads * p.query_dim as u64
            + gate;
        projections + 4 * b * t * s * heads
    }
}
