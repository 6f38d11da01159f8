//! The plan: every buffer and every dispatch of a forward call, as plain data, checked against
//! device limits. gqa-wgpu executes it without re-deriving any size.

use std::fmt;

use crate::error::GqaError;
use crate::kernel::Kernel;
use crate::limits::Limits;
use crate::options::MaskedRows;
use crate::params::{Params, mask_flags, matmul_flags};
use crate::problem::Problem;
use crate::weights::Dense;

/// Names every buffer a forward call touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BufferId {
    /// Input query (B, T, Dq).
    Query,
    /// Input key (B, S, Dk), only when given.
    Key,
    /// Input value (B, S, Dv).
    Value,
    /// Every mask part packed as u32 0/1 words (see [`MaskOffsets`]); at least one word.
    Masks,
    /// A dense sub-layer's kernel, flattened to `[in, out]`.
    Kernel(Dense),
    /// A dense sub-layer's bias.
    Bias(Dense),
    /// Projected queries (B, T, Nq, H).
    QueryProj,
    /// Projected keys (B, S, Nkv, H).
    KeyProj,
    /// Projected values (B, S, Nkv, H).
    ValueProj,
    /// Sigmoid gate (B, T, Nq, H).
    GateProj,
    /// Logits, then probabilities in place (B, Nq, T, S): the scores.
    Probs,
    /// Attention output before the output projection (B, T, Nq, H).
    AttnOut,
    /// The layer output (B, T, Dq).
    Output,
}

impl fmt::Display for BufferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BufferId::Kernel(d) => write!(f, "{}/kernel", d.keras_name()),
            BufferId::Bias(d) => write!(f, "{}/bias", d.keras_name()),
            other => write!(f, "{other:?}"),
        }
    }
}

/// What a buffer holds, which decides its usages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferRole {
    /// Written from the host (or the caller's GPU data) before the passes.
    Input,
    /// Layer weights, uploaded once.
    Weight,
    /// Produced and consumed by the passes.
    Scratch,
    /// Read back after the passes (the output, and the scores when requested).
    Output,
}

/// One buffer: its name, element count (4-byte elements) and role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferSpec {
    /// Which buffer.
    pub id: BufferId,
    /// Number of 4-byte elements (f32 or u32).
    pub elems: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// Its role.
    pub role: BufferRole,
}

/// One dispatch.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    /// A label for debugging and logs (`project_query` ...).
    pub label: &'static str,
    /// The kernel.
    pub kernel: Kernel,
    /// Workgroup counts (x, y, z).
    pub workgroups: [u32; 3],
    /// The uniform parameters.
    pub params: Params,
    /// Storage bindings 1.. in order (binding 0 is the params uniform).
    pub bindings: Vec<BufferId>,
}

/// Word offsets of each mask part inside the packed mask buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MaskOffsets {
    /// Attention mask (its own shape, row-major).
    pub attention: usize,
    /// Query mask (B, T).
    pub query: usize,
    /// Value mask (B, S).
    pub value: usize,
    /// Key mask (B, S).
    pub key: usize,
    /// Total words (at least 1, so the buffer can be bound).
    pub total: usize,
}

impl MaskOffsets {
    /// The layout for a problem: attention, query, value, key, each present part in turn.
    pub fn of(problem: &Problem) -> Self {
        let m = &problem.mask;
        let attention = 0;
        let query = attention + m.attention_elems;
        let value = query + if m.query { problem.batch * problem.target_len } else { 0 };
        let key = value + if m.value { problem.batch * problem.source_len } else { 0 };
        let end = key + if m.key { problem.batch * problem.source_len } else { 0 };
        Self { attention, query, value, key, total: end.max(1) }
    }
}

/// Every buffer and dispatch of one forward call.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The problem planned.
    pub problem: Problem,
    /// The buffers, each once.
    pub buffers: Vec<BufferSpec>,
    /// The dispatches, in order.
    pub passes: Vec<Pass>,
    /// The packed mask layout.
    pub mask_offsets: MaskOffsets,
}

impl Plan {
    /// Plans the unfused forward pass and checks it against `limits`.
    pub fn new(problem: &Problem, limits: &Limits) -> Result<Self, GqaError> {
        let p = problem;
        let (b, t, s) = (p.batch as u64, p.target_len as u64, p.source_len as u64);
        let (nq, nkv, h) = (p.num_query_heads as u64, p.num_kv_heads as u64, p.head_dim as u64);
        let mask_offsets = MaskOffsets::of(p);

        let mut buffers = Vec::new();
        let mut add = |id, elems: u64, role| buffers.push(BufferSpec { id, elems, bytes: elems * 4, role });
        add(BufferId::Query, b * t * p.query_dim as u64, BufferRole::Input);
        if p.key_given {
            add(BufferId::Key, b * s * p.key_dim as u64, BufferRole::Input);
        }
        add(BufferId::Value, b * s * p.value_dim as u64, BufferRole::Input);
        add(BufferId::Masks, mask_offsets.total as u64, BufferRole::Input);
        for d in Dense::ALL {
            if d == Dense::Gate && !p.use_gate {
                continue;
            }
            let (rows, cols) = dense_matrix(p, d);
            add(BufferId::Kernel(d), rows * cols, BufferRole::Weight);
            if p.use_bias {
                add(BufferId::Bias(d), cols, BufferRole::Weight);
            }
        }
        add(BufferId::QueryProj, b * t * nq * h, BufferRole::Scratch);
        add(BufferId::KeyProj, b * s * nkv * h, BufferRole::Scratch);
        add(BufferId::ValueProj, b * s * nkv * h, BufferRole::Scratch);
        if p.use_gate {
            add(BufferId::GateProj, b * t * nq * h, BufferRole::Scratch);
        }
        let probs_role = if p.return_scores { BufferRole::Output } else { BufferRole::Scratch };
        add(BufferId::Probs, b * nq * t * s, probs_role);
        add(BufferId::AttnOut, b * t * nq * h, BufferRole::Scratch);
        add(BufferId::Output, b * t * p.query_dim as u64, BufferRole::Output);

        let base = attention_params(p, &mask_offsets);
        let mut passes = vec![
            matmul(p, "project_query", Dense::Query, BufferId::Query, BufferId::QueryProj, base),
            matmul(
                p,
                "project_key",
                Dense::Key,
                if p.key_given { BufferId::Key } else { BufferId::Value },
                BufferId::KeyProj,
                base,
            ),
            matmul(p, "project_value", Dense::Value, BufferId::Value, BufferId::ValueProj, base),
        ];
        if p.use_gate {
            passes.push(matmul(p, "project_gate", Dense::Gate, BufferId::Query, BufferId::GateProj, base));
        }
        let bh = (b * nq) as u32;
        passes.push(Pass {
            label: "logits",
            kernel: Kernel::QkGrouped,
            workgroups: [tiles(s, 64), tiles(t, 64), bh],
            params: base,
            bindings: vec![BufferId::QueryProj, BufferId::KeyProj, BufferId::Probs],
        });
        passes.push(Pass {
            label: "softmax",
            kernel: Kernel::SoftmaxMasked,
            workgroups: [t as u32, bh, 1],
            params: base,
            bindings: vec![BufferId::Masks, BufferId::Probs],
        });
        passes.push(Pass {
            label: "attend_values",
            kernel: Kernel::PvGrouped,
            workgroups: [tiles(h, 64), tiles(t, 64), bh],
            params: base,
            bindings: vec![
                BufferId::Probs,
                BufferId::ValueProj,
                if p.use_gate { BufferId::GateProj } else { BufferId::ValueProj },
                BufferId::AttnOut,
            ],
        });
        passes.push(matmul(p, "project_output", Dense::Output, BufferId::AttnOut, BufferId::Output, base));

        let plan = Self { problem: p.clone(), buffers, passes, mask_offsets };
        plan.check(limits)?;
        Ok(plan)
    }

    /// The spec of a buffer, if the plan has it.
    pub fn buffer(&self, id: BufferId) -> Option<&BufferSpec> {
        self.buffers.iter().find(|b| b.id == id)
    }

    /// Total bytes of the buffers with a role.
    pub fn bytes_of(&self, role: BufferRole) -> u64 {
        self.buffers.iter().filter(|b| b.role == role).map(|b| b.bytes).sum()
    }

    /// Floating-point operations of the forward pass (multiply-add = 2), for throughput figures.
    pub fn flops(&self) -> u64 {
        self.passes
            .iter()
            .map(|pass| {
                let q = &pass.params;
                match pass.kernel {
                    Kernel::MatmulBias => 2 * q.m as u64 * q.n as u64 * q.k as u64,
                    Kernel::QkGrouped | Kernel::PvGrouped => {
                        2 * (q.batch * q.nq) as u64 * q.t_len as u64 * q.s_len as u64 * q.head_dim as u64
                    }
                    Kernel::SoftmaxMasked => 0,
                }
            })
            .sum()
    }

    fn check(&self, limits: &Limits) -> Result<(), GqaError> {
        for buf in &self.buffers {
            for (limit, allowed) in [
                ("max_storage_buffer_binding_size", limits.max_storage_buffer_binding_size),
                ("max_buffer_size", limits.max_buffer_size),
            ] {
                if buf.bytes > allowed {
                    return Err(GqaError::LimitExceeded {
                        kernel: format!("buffer {}", buf.id),
                        limit,
                        allowed,
                        needed: buf.bytes,
                        detail: format!("{} f32 elements", buf.elems),
                    });
                }
            }
        }
        for pass in &self.passes {
            let k = pass.kernel;
            for (axis, count) in pass.workgroups.iter().enumerate() {
                if *count > limits.max_compute_workgroups_per_dimension {
                    return Err(GqaError::LimitExceeded {
                        kernel: pass.label.to_string(),
                        limit: "max_compute_workgroups_per_dimension",
                        allowed: limits.max_compute_workgroups_per_dimension as u64,
                        needed: *count as u64,
                        detail: format!("workgroups along {} of {:?}", ["x", "y", "z"][axis], pass.workgroups),
                    });
                }
            }
            let invocations: u32 = k.workgroup_size().iter().product();
            let checks = [
                ("max_compute_invocations_per_workgroup", limits.max_compute_invocations_per_workgroup, invocations),
                (
                    "max_compute_workgroup_storage_size",
                    limits.max_compute_workgroup_storage_size,
                    k.workgroup_memory_bytes(),
                ),
                (
                    "max_storage_buffers_per_shader_stage",
                    limits.max_storage_buffers_per_shader_stage,
                    k.storage_bindings().len() as u32,
                ),
            ];
            for (limit, allowed, needed) in checks {
                if needed > allowed {
                    return Err(GqaError::LimitExceeded {
                        kernel: pass.label.to_string(),
                        limit,
                        allowed: allowed as u64,
                        needed: needed as u64,
                        detail: format!("kernel {}", k.name()),
                    });
                }
            }
        }
        Ok(())
    }
}

fn tiles(n: u64, tile: u64) -> u32 {
    n.div_ceil(tile).min(u32::MAX as u64) as u32
}

/// A dense sub-layer's weight as an `[in, out]` matrix: (rows, cols).
fn dense_matrix(p: &Problem, d: Dense) -> (u64, u64) {
    let (nq, nkv, h) = (p.num_query_heads as u64, p.num_kv_heads as u64, p.head_dim as u64);
    match d {
        Dense::Query | Dense::Gate => (p.query_dim as u64, nq * h),
        Dense::Key => (p.key_dim as u64, nkv * h),
        Dense::Value => (p.value_dim as u64, nkv * h),
        Dense::Output => (nq * h, p.query_dim as u64),
    }
}

fn matmul(p: &Problem, label: &'static str, d: Dense, input: BufferId, out: BufferId, base: Params) -> Pass {
    let (k, n) = dense_matrix(p, d);
    let rows = match d {
        Dense::Key | Dense::Value => p.batch * p.source_len,
        _ => p.batch * p.target_len,
    } as u64;
    let mut flags = 0;
    if p.use_bias {
        flags |= matmul_flags::BIAS;
    }
    if d == Dense::Gate {
        flags |= matmul_flags::SIGMOID;
    }
    let params = Params { m: rows as u32, n: n as u32, k: k as u32, matmul_flags: flags, ..base };
    let bias = if p.use_bias { BufferId::Bias(d) } else { BufferId::Kernel(d) };
    Pass {
        label,
        kernel: Kernel::MatmulBias,
        workgroups: [tiles(n, 64), tiles(rows, 64), 1],
        params,
        bindings: vec![input, BufferId::Kernel(d), bias, out],
    }
}

/// The attention fields of [`Params`], shared by every pass of a problem.
fn attention_params(p: &Problem, offsets: &MaskOffsets) -> Params {
    let m = &p.mask;
    let mut flags = 0;
    let strides = m.attention.unwrap_or(crate::problem::BroadcastStrides { b: 0, h: 0, t: 0, s: 0 });
    if m.attention.is_some() {
        flags |= mask_flags::ATTENTION;
    }
    if m.query {
        flags |= mask_flags::QUERY;
    }
    if m.value {
        flags |= mask_flags::VALUE;
    }
    if m.key {
        flags |= mask_flags::KEY;
    }
    if m.causal.is_some() {
        flags |= mask_flags::CAUSAL;
    }
    if m.window.is_some() {
        flags |= mask_flags::WINDOW;
    }
    let (rate, scale, seed) = match p.dropout {
        Some(d) => (d.rate, 1.0 / (1.0 - d.rate), d.seed),
        None => (0.0, 1.0, 0),
    };
    Params {
        batch: p.batch as u32,
        t_len: p.target_len as u32,
        s_len: p.source_len as u32,
        nq: p.num_query_heads as u32,
        nkv: p.num_kv_heads as u32,
        head_dim: p.head_dim as u32,
        group: p.group_size() as u32,
        scale: p.scale() as f32,
        mask_flags: flags,
        causal_shift: m.query_shift.clamp(i32::MIN as i64, i32::MAX as i64) as i32,
        window: m.window.unwrap_or(0).min(i32::MAX as usize) as u32,
        am_stride_b: strides.b as u32,
        am_stride_h: strides.h as u32,
        am_stride_t: strides.t as u32,
        am_stride_s: strides.s as u32,
        am_offset: offsets.attention as u32,
        qm_offset: offsets.query as u32,
        vm_offset: offsets.value as u32,
        km_offset: offsets.key as u32,
        masked_rows: match p.masked_rows {
            MaskedRows::Zeros => 0,
            MaskedRows::KerasDefault => 1,
        },
        dropout_rate: rate,
        dropout_scale: scale,
        seed_lo: seed as u32,
        seed_hi: (seed >> 32) as u32,
        use_gate: p.use_gate as u32,
        ..Params::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CallOptions, GqaConfig, Mask};

    fn problem(cfg: &GqaConfig, b: usize, t: usize, s: usize, opts: &CallOptions) -> Problem {
        Problem::new(cfg, &[b, t, 16], &[b, s, 12], None, opts).unwrap()
    }

    #[test]
    fn buffers_and_passes_follow_the_problem() {
        let mut cfg = GqaConfig::new(8, 4, 2);
        cfg.use_gate = true;
        let opts = CallOptions { return_attention_scores: true, ..Default::default() };
        let plan = Plan::new(&problem(&cfg, 2, 5, 70, &opts), &Limits::default()).unwrap();
        let elems = |id| plan.buffer(id).unwrap().elems;
        assert_eq!(elems(BufferId::Query), 2 * 5 * 16);
        assert_eq!(elems(BufferId::Kernel(Dense::Query)), 16 * 32);
        assert_eq!(elems(BufferId::Kernel(Dense::Key)), 12 * 16);
        assert_eq!(elems(BufferId::Bias(Dense::Output)), 16);
        assert_eq!(elems(BufferId::Probs), 2 * 4 * 5 * 70);
        assert_eq!(elems(BufferId::Masks), 1);
        assert!(plan.buffer(BufferId::Key).is_none(), "no key given: value is bound instead");
        assert_eq!(plan.buffer(BufferId::Probs).unwrap().role, BufferRole::Output);
        let labels: Vec<_> = plan.passes.iter().map(|p| p.label).collect();
        assert_eq!(
            labels,
            [
                "project_query",
                "project_key",
                "project_value",
                "project_gate",
                "logits",
                "softmax",
                "attend_values",
                "project_output"
            ]
        );
        let logits = &plan.passes[4];
        assert_eq!(logits.workgroups, [2, 1, 8], "S=70 needs two 64-wide tiles, B*Nq = 8");
        assert_eq!(plan.passes[1].bindings[0], BufferId::Value);
        let qkv = 2 * (10 * 16 * 32 + 2 * 140 * 12 * 16) + 2 * 10 * 16 * 32 + 2 * 10 * 32 * 16;
        assert_eq!(plan.flops(), (qkv + 2 * 2 * 2 * 4 * 5 * 70 * 8) as u64);
    }

    #[test]
    fn masks_are_packed_at_their_offsets() {
        let cfg = GqaConfig::new(8, 4, 2);
        let opts = CallOptions {
            attention_mask: Some(Mask::filled(vec![3, 4], true)),
            query_mask: Some(Mask::filled(vec![2, 3], false)),
            key_mask: Some(Mask::filled(vec![2, 4], true)),
            ..Default::default()
        };
        let p = problem(&cfg, 2, 3, 4, &opts);
        let off = MaskOffsets::of(&p);
        assert_eq!(off, MaskOffsets { attention: 0, query: 12, value: 18, key: 18, total: 26 });
        let words = crate::pack_masks(&p, &opts);
        assert_eq!(words.len(), 26);
        assert!(words[..12].iter().all(|w| *w == 1) && words[12..18].iter().all(|w| *w == 0));
        assert!(words[18..].iter().all(|w| *w == 1));
        let plan = Plan::new(&p, &Limits::default()).unwrap();
        let params = &plan.passes[0].params;
        assert_eq!((params.qm_offset, params.km_offset), (12, 18));
        assert_eq!(
            params.mask_flags,
            crate::params::mask_flags::ATTENTION | crate::params::mask_flags::QUERY | crate::params::mask_flags::KEY
        );
    }

    #[test]
    fn limits_are_named_when_exceeded() {
        let cfg = GqaConfig::new(8, 4, 2);
        let p = problem(&cfg, 1, 100, 100, &CallOptions::default());
        let tiny = Limits { max_storage_buffer_binding_size: 1024, ..Limits::default() };
        let err = Plan::new(&p, &tiny).unwrap_err();
        assert!(matches!(err, GqaError::LimitExceeded { limit: "max_storage_buffer_binding_size", .. }), "{err}");
        let few = Limits { max_compute_workgroups_per_dimension: 50, ..Limits::default() };
        let err = Plan::new(&p, &few).unwrap_err();
        assert!(err.to_string().contains("max_compute_workgroups_per_dimension is 50"), "{err}");
        let small_wg = Limits { max_compute_workgroup_storage_size: 4096, ..Limits::default() };
        let err = Plan::new(&p, &small_wg).unwrap_err();
        assert!(err.to_string().contains("max_compute_workgroup_storage_size"), "{err}");
        let few_inv = Limits { max_compute_invocations_per_workgroup: 128, ..Limits::default() };
        assert!(Plan::new(&p, &few_inv).is_err());
    }
}
