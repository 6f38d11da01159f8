//! The attention's steps for one batch chunk, one function per [`AttentionRoute`].

use super::buffers::scores_in_probs;
use super::emit::{ChunkCall, copy, pack, tiled, tiles};
use super::resources::{BufferId, BufferSpec, ExtensionWeight};
use super::select::{AttentionRoute, ValueCheck};
use super::steps::{Pass, Step};
use crate::kernels::{Kernel, check_values, fused};
use crate::params::Params;
use crate::problem::Problem;

/// Pushes the attention's steps of the chunk along `route`; returns the textures it packs the
/// projections into.
pub(crate) fn emit(
    call: &ChunkCall<'_>,
    route: &AttentionRoute,
    cached: bool,
    steps: &mut Vec<Step>,
) -> Vec<BufferSpec> {
    let packed = match route.kv_textures() {
        Some(_) => pack_projections(call, cached, steps),
        None => Vec::new(),
    };
    match *route {
        AttentionRoute::Unfused { logits, softmax, attend_values } => {
            unfused(call, [logits, softmax, attend_values], steps)
        }
        AttentionRoute::Fused { kernel } => fused(call, kernel, steps),
        AttentionRoute::Split { split_keys, splits, kernel, reduce } => {
            split(call, [split_keys, splits], kernel, reduce, steps)
        }
        AttentionRoute::Decode { split_keys, splits, kernel, reduce, kv_textures } => {
            decode(call, [split_keys, splits], kernel, reduce, kv_textures, steps)
        }
        AttentionRoute::Block { kernel, kv_textures, check_values } => {
            block(call, kernel, kv_textures, check_values, steps)
        }
    }
    packed
}

/// The projections packed for an attention that reads textures: the queries, and (without a
/// cache, whose mirrors hold them) the keys and values.
fn pack_projections(call: &ChunkCall<'_>, cached: bool, steps: &mut Vec<Step>) -> Vec<BufferSpec> {
    let p = call.p;
    let (nq, nkv, h) = (p.num_query_heads as u64, p.num_kv_heads as u64, p.head_dim as u64);
    let rows_t = (call.nbc * p.target_len) as u64;
    let rows_s = call.rows_s as u64;
    let mut projections = vec![(BufferId::QueryProj, BufferId::QueryProjTexture, "pack_query_proj", nq * h, rows_t)];
    if !cached {
        projections.extend([
            (BufferId::KeyProj, BufferId::KeyProjTexture, "pack_key_proj", nkv * h, rows_s),
            (BufferId::ValueProj, BufferId::ValueProjTexture, "pack_value_proj", nkv * h, rows_s),
        ]);
    }
    projections
        .into_iter()
        .map(|(src, texture, label, cols, rows)| pack(steps, label, [src, texture], cols, rows))
        .collect()
}

/// (query, head-in-group) items of the chunk's attention.
fn items(call: &ChunkCall<'_>) -> u64 {
    (call.p.target_len * call.p.group_size()) as u64
}

/// Workgroups along x of the fused kernel: its items per workgroup depend on H.
fn fused_tiles(call: &ChunkCall<'_>) -> u32 {
    tiles(items(call), fused::items_per_workgroup(call.p.head_dim) as u64)
}

/// The fused kernel over all S keys.
fn fused(call: &ChunkCall<'_>, kernel: Kernel, steps: &mut Vec<Step>) {
    steps.push(Step::Dispatch(Pass {
        label: "attention_fused",
        kernel,
        workgroups: [fused_tiles(call), 1, call.groups()],
        params: call.params,
        bindings: [&call.qkv()[..], &[BufferId::AttnOut, sinks(call.p)]].concat(),
    }));
}

/// The reduce of a flash-decoding route.
fn reduce_splits(call: &ChunkCall<'_>, reduce: Kernel, params: Params, steps: &mut Vec<Step>) {
    steps.push(Step::Dispatch(Pass {
        label: "attention_reduce",
        kernel: reduce,
        workgroups: [tiles(items(call), reduce.tile()[0] as u64), 1, call.groups()],
        params,
        bindings: vec![BufferId::Partials, call.gate_or_v(), BufferId::AttnOut, sinks(call.p)],
    }));
}

/// Flash-decoding with the fused kernel in split mode, then the reduce.
fn split(
    call: &ChunkCall<'_>,
    [split_keys, splits]: [usize; 2],
    kernel: Kernel,
    reduce: Kernel,
    steps: &mut Vec<Step>,
) {
    let params = Params { split_keys: split_keys as u32, ..call.params };
    steps.push(Step::Dispatch(Pass {
        label: "attention_split",
        kernel,
        workgroups: [fused_tiles(call), splits as u32, call.groups()],
        params,
        bindings: [&call.qkv()[..], &[BufferId::Partials, sinks(call.p)]].concat(),
    }));
    reduce_splits(call, reduce, params, steps);
}

/// Flash-decoding with the decode kernel (over a cache's texture mirrors where `kv_textures` says),
/// then the reduce.
fn decode(
    call: &ChunkCall<'_>,
    [split_keys, splits]: [usize; 2],
    kernel: Kernel,
    reduce: Kernel,
    kv_textures: Option<[BufferId; 2]>,
    steps: &mut Vec<Step>,
) {
    let params = Params { split_keys: split_keys as u32, ..call.params };
    let (q, [k, v]) = match kv_textures {
        Some(kv) => (BufferId::QueryProjTexture, kv),
        None => (BufferId::QueryProj, call.kv),
    };
    steps.push(Step::Dispatch(Pass {
        label: "attention_split",
        kernel,
        workgroups: [tiles(items(call), kernel.tile()[0] as u64), splits as u32, call.groups()],
        params,
        bindings: vec![q, k, v, BufferId::Masks, BufferId::Partials],
    }));
    reduce_splits(call, reduce, params, steps);
}

/// The block attention, after the value check where the route has one.
fn block(
    call: &ChunkCall<'_>,
    kernel: Kernel,
    kv_textures: Option<[BufferId; 2]>,
    check: Option<ValueCheck>,
    steps: &mut Vec<Step>,
) {
    let qkv = match kv_textures {
        None => call.qkv(),
        Some([k, v]) => [BufferId::QueryProjTexture, k, v, BufferId::Masks, call.gate_or_v()],
    };
    if let Some(check) = check {
        let p = call.p;
        let vec4s = match check {
            ValueCheck::Read => (call.nbc * p.source_len * p.num_kv_heads * p.head_dim / 4) as u32,
            ValueCheck::Unknown => 0,
        };
        steps.push(Step::Dispatch(Pass {
            label: "check_values",
            kernel: Kernel::CheckValues,
            workgroups: [check_values::FLAG_WORDS, 1, 1],
            params: Params { check_vec4s: vec4s, values_unknown: (check == ValueCheck::Unknown) as u32, ..call.params },
            bindings: vec![call.kv[1], BufferId::VFlags],
        }));
    }
    steps.push(Step::Dispatch(Pass {
        label: "attention_block",
        kernel,
        workgroups: [tiles(items(call), kernel.tile()[0] as u64), 1, call.groups()],
        params: call.params,
        bindings: [&qkv[..], &[BufferId::AttnOut, BufferId::VFlags, sinks(call.p)]].concat(),
    }));
}

/// The sink logits the softmax reads, or (bound in their place without sinks) the masks.
fn sinks(p: &Problem) -> BufferId {
    if p.extensions.sinks { BufferId::ExtensionWeight(ExtensionWeight::Sinks) } else { BufferId::Masks }
}

/// Logits, softmax and weighted values per attention chunk of (b, u) rows and queries, with the
/// chunk's scores copied out where they are requested and the probabilities cannot hold them all.
fn unfused(call: &ChunkCall<'_>, [logits, softmax, attend_values]: [Kernel; 3], steps: &mut Vec<Step>) {
    let (p, chunking) = (call.p, call.chunking);
    let (t, s, h) = (p.target_len as u64, p.source_len as u64, p.head_dim as u64);
    let copy_scores = p.return_scores && !scores_in_probs(p, chunking);
    let rows = call.nbc * p.num_query_heads;
    for bu0 in (0..rows).step_by(chunking.rows_per_chunk) {
        let n = chunking.rows_per_chunk.min(rows - bu0);
        for t0 in (0..p.target_len).step_by(chunking.queries_per_chunk) {
            let tc = chunking.queries_per_chunk.min(p.target_len - t0);
            let params = Params { bu_base: bu0 as u32, t_base: t0 as u32, t_count: tc as u32, ..call.params };
            let (n32, tc64) = (n as u32, tc as u64);
            steps.push(Step::Dispatch(Pass {
                label: "logits",
                kernel: logits,
                workgroups: tiled(logits, s, tc64, n32),
                params,
                bindings: vec![BufferId::QueryProj, call.kv[0], BufferId::Probs],
            }));
            steps.push(Step::Dispatch(Pass {
                label: "softmax",
                kernel: softmax,
                workgroups: [tc as u32, n32, 1],
                params,
                bindings: vec![BufferId::Masks, BufferId::Probs, sinks(p)],
            }));
            if copy_scores {
                let first_row = (call.b0 * p.num_query_heads + bu0) as u64;
                let at = (first_row * t + t0 as u64) * s * 4;
                steps.push(copy(BufferId::Probs, 0, BufferId::Scores, at, n as u64 * tc64 * s * 4));
            }
            steps.push(Step::Dispatch(Pass {
                label: "attend_values",
                kernel: attend_values,
                workgroups: tiled(attend_values, h, tc64, n32),
                params,
                bindings: vec![BufferId::Probs, call.kv[1], call.gate_or_v(), BufferId::AttnOut],
            }));
        }
    }
}
