//! The planner's fourth stage: the steps of every batch chunk, in order (input copies, the
//! projections with the packing of their inputs, a cached call's appends, the attention of the
//! route, the output projection, the output copy). The attention's steps are in
//! [`super::attention`], one function per route.

use super::attention;
use super::buffers::{dense_matrix, texture_spec};
use super::chunk::Chunking;
use super::positions;
use super::resources::{BufferId, BufferRole, BufferSpec, ExtensionWeight};
use super::select::Route;
use super::steps::{CopySpec, Pass, Step};
use crate::extensions::{NormScale, RopeLayout};
use crate::kernels::{Kernel, Operands, Precision};
use crate::kv_cache::CacheUpdate;
use crate::params::{Params, matmul_flags, position_flags};
use crate::problem::Problem;
use crate::weights::Dense;

/// The steps, and the textures they pack inputs into (each once, with the rows of the first chunk
/// that packs it).
pub(crate) struct Emitted {
    pub(crate) steps: Vec<Step>,
    pub(crate) packed: Vec<BufferSpec>,
}

/// What every step of one batch chunk needs.
pub(crate) struct ChunkCall<'a> {
    pub(crate) p: &'a Problem,
    pub(crate) chunking: &'a Chunking,
    /// First batch element of the chunk.
    pub(crate) b0: usize,
    /// Batch elements in the chunk.
    pub(crate) nbc: usize,
    /// The params every pass of the chunk starts from.
    pub(crate) params: Params,
    /// Where the attention reads K and V: the projections, or a cached call's cache.
    pub(crate) kv: [BufferId; 2],
    /// Rows of key and value the chunk projects.
    pub(crate) rows_s: usize,
    /// The storage precision of the projected tensors.
    pub(crate) precision: Precision,
}

impl ChunkCall<'_> {
    /// The gate, or (bound in its place when unused) the values.
    pub(crate) fn gate_or_v(&self) -> BufferId {
        if self.p.use_gate { BufferId::GateProj } else { self.kv[1] }
    }

    /// Workgroups along z of the attention passes: one per (b, kv group).
    pub(crate) fn groups(&self) -> u32 {
        (self.nbc * self.p.num_kv_heads) as u32
    }

    /// Q, K, V, masks, gate (or V) as the fused kernels bind them.
    pub(crate) fn qkv(&self) -> [BufferId; 5] {
        [BufferId::QueryProj, self.kv[0], self.kv[1], BufferId::Masks, self.gate_or_v()]
    }
}

/// The steps of `p` along `route`, starting each pass from `base`.
pub(crate) fn steps(
    p: &Problem,
    route: &Route,
    chunking: &Chunking,
    cache: Option<&CacheUpdate>,
    base: Params,
) -> Emitted {
    let (t, s) = (p.target_len as u64, p.source_len as u64);
    let s_in = if cache.is_some() { p.target_len } else { p.source_len };
    let split_batch = chunking.splits_batch(p);
    let kv = match cache {
        Some(_) => [BufferId::KeyCache, BufferId::ValueCache],
        None => [BufferId::KeyProj, BufferId::ValueProj],
    };
    let mut steps = Vec::new();
    let mut textures: Vec<BufferSpec> = Vec::new();
    let (qin, kin, vin, out) = if split_batch {
        (BufferId::QueryChunk, BufferId::KeyChunk, BufferId::ValueChunk, BufferId::OutputChunk)
    } else {
        (BufferId::Query, BufferId::Key, BufferId::Value, BufferId::Output)
    };
    let kin = if p.key_given { kin } else { vin };
    for b0 in (0..p.batch).step_by(chunking.batch_per_chunk) {
        let nbc = chunking.batch_per_chunk.min(p.batch - b0);
        if split_batch {
            let (b0, nbc) = (b0 as u64, nbc as u64);
            let inputs =
                [(BufferId::Query, qin, t * p.query_dim as u64), (BufferId::Value, vin, s * p.value_dim as u64)];
            for (src, dst, per_b) in inputs {
                steps.push(copy(src, b0 * per_b * 4, dst, 0, nbc * per_b * 4));
            }
            if p.key_given {
                let per_b = s * p.key_dim as u64;
                steps.push(copy(BufferId::Key, b0 * per_b * 4, kin, 0, nbc * per_b * 4));
            }
        }
        let call = ChunkCall {
            p,
            chunking,
            b0,
            nbc,
            params: Params { b_base: b0 as u32, ..base },
            kv,
            rows_s: nbc * s_in,
            precision: route.projections.precision(),
        };
        let rows_t = nbc * p.target_len;
        let mut packed = Vec::new();
        let mut project = |steps: &mut Vec<Step>, label, d, io: [BufferId; 2], rows| {
            matmul(&call, route, Projection { label, d, io, rows }, steps, &mut packed);
        };
        project(&mut steps, "project_query", Dense::Query, [qin, BufferId::QueryProj], rows_t);
        project(&mut steps, "project_key", Dense::Key, [kin, BufferId::KeyProj], call.rows_s);
        project(&mut steps, "project_value", Dense::Value, [vin, BufferId::ValueProj], call.rows_s);
        if let Some(l) = positions::layout(p, cache) {
            let (nq, nkv) = (p.num_query_heads, p.num_kv_heads);
            let chunk = b0 as u32 * l.batch_rows;
            let query = Positional { rows: rows_t, heads: nq, len: l.query_len, base: l.query_base + chunk };
            position(&mut steps, &call, "position_query", [BufferId::QueryProj, query_norm(p)], query);
            let key = Positional { rows: call.rows_s, heads: nkv, len: l.key_len, base: l.key_base + chunk };
            position(&mut steps, &call, "position_key", [BufferId::KeyProj, key_norm(p)], key);
        }
        if p.use_gate {
            project(&mut steps, "project_gate", Dense::Gate, [qin, BufferId::GateProj], rows_t);
        }
        if let Some(c) = cache {
            append_to_cache(&mut steps, c, t, call.params, call.precision);
        }
        let attention_packed = attention::emit(&call, &route.attention, cache.is_some(), &mut steps);
        project(&mut steps, "project_output", Dense::Output, [BufferId::AttnOut, out], rows_t);
        for spec in packed.into_iter().chain(attention_packed) {
            if !textures.iter().any(|t| t.id == spec.id) {
                textures.push(spec);
            }
        }
        if split_batch {
            let per_b = t * p.query_dim as u64 * 4;
            steps.push(copy(out, 0, BufferId::Output, b0 as u64 * per_b, nbc as u64 * per_b));
        }
    }
    Emitted { steps, packed: textures }
}

/// The rows one positional pass covers: `rows` rows of `heads` heads, `len` rows per sequence, the
/// table row of each sequence's first row.
struct Positional {
    rows: usize,
    heads: usize,
    len: u32,
    base: u32,
}

/// The query norm's scale, or (bound in its place without a norm) the rotary table.
fn query_norm(p: &Problem) -> BufferId {
    if p.extensions.qk_norm.is_some() {
        BufferId::ExtensionWeight(ExtensionWeight::QueryNorm)
    } else {
        BufferId::RopeTable
    }
}

/// The key norm's scale, or the rotary table.
fn key_norm(p: &Problem) -> BufferId {
    if p.extensions.qk_norm.is_some() {
        BufferId::ExtensionWeight(ExtensionWeight::KeyNorm)
    } else {
        BufferId::RopeTable
    }
}

/// Pushes the positional pass (QK-norm, RoPE) over `io[0]` in place, reading `io[1]`'s norm scale:
/// one workgroup per (head, row), the rows spread over y and z within the dispatch limit.
fn position(steps: &mut Vec<Step>, call: &ChunkCall<'_>, label: &'static str, io: [BufferId; 2], rows: Positional) {
    let p = call.p;
    let ext = &p.extensions;
    let mut flags = 0;
    if let Some(norm) = &ext.qk_norm {
        flags |= position_flags::NORM;
        if norm.form == NormScale::OnePlusScale {
            flags |= position_flags::ONE_PLUS_SCALE;
        }
    }
    if ext.rope.as_ref().is_some_and(|r| r.layout == RopeLayout::Interleaved) {
        flags |= position_flags::INTERLEAVED;
    }
    let kernel = Kernel::Position(call.precision);
    let params = Params {
        position_rows: rows.rows as u32,
        position_heads: rows.heads as u32,
        position_len: rows.len,
        rope_row_base: rows.base,
        rope_half: ext.rope.as_ref().map_or(0, |r| r.rotary_dim / 2) as u32,
        position_flags: flags,
        norm_epsilon: ext.qk_norm.map_or(0.0, |n| n.epsilon as f32),
        ..call.params
    };
    let y = rows.rows.clamp(1, u16::MAX as usize);
    steps.push(Step::Dispatch(Pass {
        label,
        kernel,
        workgroups: [rows.heads as u32, y as u32, rows.rows.div_ceil(y) as u32],
        params,
        bindings: vec![io[0], BufferId::RopeTable, io[1]],
    }));
}

/// A plain copy of `bytes` between buffers.
pub(crate) fn copy(src: BufferId, src_offset: u64, dst: BufferId, dst_offset: u64, bytes: u64) -> Step {
    Step::Copy(CopySpec { label: "copy", src, src_offset, dst, dst_offset, bytes })
}

/// A cached call's appends: each sequence's new tokens' keys and values at their slots (at its
/// length in a linear cache; wrapping in a ring): copies to the cache's buffers and (where it keeps
/// them) its texture mirrors when the cache stores the projections' own `precision`, or the
/// quantizing pass of a quantized cache.
fn append_to_cache(steps: &mut Vec<Step>, c: &CacheUpdate, t: u64, base: Params, precision: Precision) {
    if let Some(storage) = c.shape.storage.quantized_for(precision) {
        // A quantized cache: one pass per run quantizes its keys and values into their slots.
        let kernel = Kernel::AppendToCache(storage);
        for (b, row, slot, n) in c.appends() {
            let params = Params {
                append_rows: n as u32,
                append_src_row: (b as u64 * t + row as u64) as u32,
                append_dst_row: (b * c.shape.capacity + slot) as u32,
                ..base
            };
            let invocations = 2 * (n * c.shape.num_kv_heads) as u64;
            steps.push(Step::Dispatch(Pass {
                label: "append_to_cache",
                kernel,
                workgroups: tiled(kernel, invocations, 1, 1),
                params,
                bindings: vec![BufferId::KeyProj, BufferId::ValueProj, BufferId::KeyCache, BufferId::ValueCache],
            }));
        }
        return;
    }
    // A token's keys in the projection's rows and in the cache: the same words (f32, or f16 pairs).
    let token = c.shape.token_words() * 4;
    let mirrors: &[(BufferId, BufferId)] = if c.texture_mirror {
        &[(BufferId::KeyProj, BufferId::KeyCacheTexture), (BufferId::ValueProj, BufferId::ValueCacheTexture)]
    } else {
        &[]
    };
    for (b, row, slot, n) in c.appends() {
        for &(src, dst) in
            [(BufferId::KeyProj, BufferId::KeyCache), (BufferId::ValueProj, BufferId::ValueCache)].iter().chain(mirrors)
        {
            let (from, to) = ((b as u64 * t + row as u64) * token, (b * c.shape.capacity + slot) as u64 * token);
            steps.push(copy(src, from, dst, to, n as u64 * token));
        }
    }
}

/// One projection: `io[1] = io[0] · weight(d) (+ bias) (sigmoid for the gate)` over `rows` rows.
struct Projection {
    label: &'static str,
    d: Dense,
    io: [BufferId; 2],
    rows: usize,
}

/// The texture a textured matmul reads `input` from, and the packing copy's label.
fn input_texture(input: BufferId) -> (BufferId, &'static str) {
    match input {
        BufferId::Query | BufferId::QueryChunk => (BufferId::QueryTexture, "pack_query"),
        BufferId::Key | BufferId::KeyChunk => (BufferId::KeyTexture, "pack_key"),
        BufferId::Value | BufferId::ValueChunk => (BufferId::ValueTexture, "pack_value"),
        _ => (BufferId::AttnOutTexture, "pack_attention_output"),
    }
}

/// Pushes a projection's steps: the matmul the route picks, preceded for the texture kernels by the
/// packing of its input into a texture (once per input per batch chunk: `packed` lists the
/// textures of this chunk, with their specs).
fn matmul(call: &ChunkCall<'_>, route: &Route, pr: Projection, steps: &mut Vec<Step>, packed: &mut Vec<BufferSpec>) {
    let p = call.p;
    let (d, rows) = (pr.d, pr.rows);
    let [input, out] = pr.io;
    let (k, n) = dense_matrix(p, d);
    let matmul = route.projections.kernel(d, rows as u64, k, n);
    let kernel = Kernel::Matmul(matmul);
    let mut flags = 0;
    if p.use_bias {
        flags |= matmul_flags::BIAS;
    }
    if d == Dense::Gate {
        flags |= matmul_flags::SIGMOID;
    }
    let params = Params { m: rows as u32, n: n as u32, k: k as u32, matmul_flags: flags, ..call.params };
    let bias = if p.use_bias { BufferId::Bias(d) } else { BufferId::Weight(d) };
    let (a, b) = match matmul.operands() {
        Operands::Texture => {
            let (texture, label) = input_texture(input);
            if !packed.iter().any(|t| t.id == texture) {
                packed.push(pack(steps, label, [input, texture], k, rows as u64));
            }
            (texture, BufferId::WeightTexture(d))
        }
        Operands::Storage => (input, BufferId::Weight(d)),
    };
    steps.push(Step::Dispatch(Pass {
        label: pr.label,
        kernel,
        workgroups: tiled(kernel, n, rows as u64, 1),
        params,
        bindings: vec![a, b, bias, out],
    }));
}

/// Pushes the copy that packs `src`, a row-major `rows` x `cols` f32 matrix, into `texture` (one copy
/// command where the rows are a multiple of WebGPU's 256-byte copy row alignment, else one per row,
/// as the executor splits it); returns the texture's spec. A copy is the driver's own row copy, on
/// the CPU adapters several times faster than a [`Kernel::PackTexture`] pass even at one command per
/// row. The pass remains for a caller's buffer that cannot be a copy source
/// ([`super::Plan::packing_by_passes_from`]).
pub(crate) fn pack(
    steps: &mut Vec<Step>,
    label: &'static str,
    [src, texture]: [BufferId; 2],
    cols: u64,
    rows: u64,
) -> BufferSpec {
    let bytes = cols * rows * 4;
    steps.push(Step::Copy(CopySpec { label, src, src_offset: 0, dst: texture, dst_offset: 0, bytes }));
    texture_spec(texture, cols, rows, BufferRole::Scratch)
}

/// Workgroups covering an `x` by `y` output with `kernel`'s declared tile, `z` along z.
pub(crate) fn tiled(kernel: Kernel, x: u64, y: u64, z: u32) -> [u32; 3] {
    let [tx, ty] = kernel.tile();
    [tiles(x, tx as u64), tiles(y, ty as u64), z]
}

/// Tiles of `tile` covering `n`.
pub(crate) fn tiles(n: u64, tile: u64) -> u32 {
    n.div_ceil(tile).min(u32::MAX as u64) as u32
}
