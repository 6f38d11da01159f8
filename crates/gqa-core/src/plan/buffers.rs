//! The planner's third stage: every buffer and texture a plan's steps touch, sized from the
//! problem, the chunking and the route (the textures the steps pack their inputs into are listed
//! by the emitting stage, which knows their rows).

use super::chunk::Chunking;
use super::masks::MaskOffsets;
use super::resources::{BufferId, BufferRole, BufferSpec, ExtensionWeight};
use super::select::Route;
use crate::error::GqaError;
use crate::kernels::check_values;
use crate::kernels::texture::TextureShape;
use crate::kv_cache::CacheUpdate;
use crate::limits::Limits;
use crate::problem::Problem;
use crate::tuning::{Tuning, cache_texture_fits};
use crate::weights::Dense;

/// The buffers, and the textures the layer or the cache holds (weights kept as textures, a KV
/// cache's mirrors), in the order the plan lists them.
pub(crate) struct Listed {
    pub(crate) buffers: Vec<BufferSpec>,
    pub(crate) textures: Vec<BufferSpec>,
}

/// Lists the buffers of `p`. An error where a KV cache's texture mirror would not fit the device.
pub(crate) fn list(
    p: &Problem,
    limits: &Limits,
    tuning: Tuning,
    chunking: &Chunking,
    route: &Route,
    cache: Option<&CacheUpdate>,
) -> Result<Listed, GqaError> {
    let mut buffers = Vec::new();
    let mut textures = Vec::new();
    let mut add = |id: BufferId, elems: u64, role| {
        let element_bytes = if id.follows_precision() { tuning.precision.element_bytes() } else { 4 };
        let bytes = (elems * element_bytes).next_multiple_of(4);
        buffers.push(BufferSpec { id, elems, element_bytes, bytes, role, texture: None })
    };
    let (t, s) = (p.target_len as u64, p.source_len as u64);
    // Rows of key and value the call projects: the new tokens of a cached call, else all S.
    let s_in = if cache.is_some() { t } else { s };
    let (nq, nkv, h) = (p.num_query_heads as u64, p.num_kv_heads as u64, p.head_dim as u64);
    let nb = chunking.batch_per_chunk as u64;
    let split_batch = chunking.splits_batch(p);
    let b_all = p.batch as u64;
    add(BufferId::Query, b_all * t * p.query_dim as u64, BufferRole::Input);
    if p.key_given {
        add(BufferId::Key, b_all * s_in * p.key_dim as u64, BufferRole::Input);
    }
    add(BufferId::Value, b_all * s_in * p.value_dim as u64, BufferRole::Input);
    add(BufferId::Masks, MaskOffsets::of(p).words() as u64, BufferRole::Input);
    let ext = &p.extensions;
    if ext.rope.is_some() || ext.qk_norm.is_some() {
        let table = super::positions::table(p, cache).len() as u64;
        add(BufferId::RopeTable, table, BufferRole::Input);
    }
    if ext.qk_norm.is_some() {
        add(BufferId::ExtensionWeight(ExtensionWeight::QueryNorm), h, BufferRole::Weight);
        add(BufferId::ExtensionWeight(ExtensionWeight::KeyNorm), h, BufferRole::Weight);
    }
    if ext.sinks {
        add(BufferId::ExtensionWeight(ExtensionWeight::Sinks), nq, BufferRole::Weight);
    }
    for d in Dense::ALL {
        if d == Dense::Gate && !p.use_gate {
            continue;
        }
        let (rows, cols) = dense_matrix(p, d);
        add(BufferId::Weight(d), rows * cols, BufferRole::Weight);
        if tuning.keeps_weight_texture(rows, cols, limits) {
            textures.push(texture_spec(BufferId::WeightTexture(d), cols, rows, BufferRole::Weight));
        }
        if p.use_bias {
            add(BufferId::Bias(d), cols, BufferRole::Weight);
        }
    }
    if split_batch {
        add(BufferId::QueryChunk, nb * t * p.query_dim as u64, BufferRole::Scratch);
        if p.key_given {
            add(BufferId::KeyChunk, nb * s * p.key_dim as u64, BufferRole::Scratch);
        }
        add(BufferId::ValueChunk, nb * s * p.value_dim as u64, BufferRole::Scratch);
    }
    add(BufferId::QueryProj, nb * t * nq * h, BufferRole::Scratch);
    add(BufferId::KeyProj, nb * s_in * nkv * h, BufferRole::Scratch);
    add(BufferId::ValueProj, nb * s_in * nkv * h, BufferRole::Scratch);
    if let Some(c) = cache {
        add(BufferId::KeyCache, c.shape.words(), BufferRole::Cache);
        add(BufferId::ValueCache, c.shape.words(), BufferRole::Cache);
        if c.texture_mirror {
            if !cache_texture_fits(&c.shape, limits) {
                return Err(GqaError::LimitExceeded {
                    kernel: "KV cache texture".into(),
                    limit: "max_texture_dimension_2d",
                    allowed: limits.max_texture_dimension_2d as u64,
                    needed: ((c.shape.batch * c.shape.capacity) as u64).max(c.shape.token_elems() / 4),
                    detail: format!(
                        "the cache's texture mirror is {} x {} texels (Nkv·H / 4 x B·capacity; H a multiple of 4)",
                        c.shape.token_elems() / 4,
                        c.shape.batch * c.shape.capacity
                    ),
                });
            }
            let (cols, rows) = (c.shape.token_elems(), (c.shape.batch * c.shape.capacity) as u64);
            for id in [BufferId::KeyCacheTexture, BufferId::ValueCacheTexture] {
                textures.push(texture_spec(id, cols, rows, BufferRole::Cache));
            }
        }
    }
    if p.use_gate {
        add(BufferId::GateProj, nb * t * nq * h, BufferRole::Scratch);
    }
    let scores_in_probs = scores_in_probs(p, chunking);
    if route.attention.uses_probs() {
        let probs_elems = (chunking.rows_per_chunk * chunking.queries_per_chunk) as u64 * s;
        add(BufferId::Probs, probs_elems, if scores_in_probs { BufferRole::Output } else { BufferRole::Scratch });
    }
    if let Some(splits) = route.attention.splits() {
        let items = (p.target_len * p.group_size()) as u64;
        add(BufferId::Partials, nb * nkv * splits as u64 * items * (2 * h + 2), BufferRole::Scratch);
    }
    if p.return_scores && !scores_in_probs {
        add(BufferId::Scores, b_all * nq * t * s, BufferRole::Output);
    }
    add(BufferId::AttnOut, nb * t * nq * h, BufferRole::Scratch);
    if route.attention.is_block() {
        add(BufferId::VFlags, check_values::FLAG_WORDS as u64, BufferRole::Scratch);
    }
    if split_batch {
        add(BufferId::OutputChunk, nb * t * p.query_dim as u64, BufferRole::Scratch);
    }
    add(BufferId::Output, b_all * t * p.query_dim as u64, BufferRole::Output);
    Ok(Listed { buffers, textures })
}

/// Whether the probabilities buffer holds all the scores when they are requested (nothing is
/// split), so that no [`BufferId::Scores`] is needed.
pub(crate) fn scores_in_probs(p: &Problem, chunking: &Chunking) -> bool {
    p.return_scores && !chunking.splits_batch(p) && !chunking.splits_attention(p)
}

/// A dense sub-layer's weight as an `[in, out]` matrix: (rows, cols).
pub(crate) fn dense_matrix(p: &Problem, d: Dense) -> (u64, u64) {
    let (nq, nkv, h) = (p.num_query_heads as u64, p.num_kv_heads as u64, p.head_dim as u64);
    match d {
        Dense::Query | Dense::Gate => (p.query_dim as u64, nq * h),
        Dense::Key => (p.key_dim as u64, nkv * h),
        Dense::Value => (p.value_dim as u64, nkv * h),
        Dense::Output => (nq * h, p.query_dim as u64),
    }
}

/// The spec of a `rows` x `cols` f32 matrix kept as an rgba32float texture.
pub(crate) fn texture_spec(id: BufferId, cols: u64, rows: u64, role: BufferRole) -> BufferSpec {
    let shape = TextureShape::new((cols / 4) as u32, rows as u32);
    BufferSpec { id, elems: cols * rows, element_bytes: 4, bytes: shape.bytes(), role, texture: Some(shape) }
}
