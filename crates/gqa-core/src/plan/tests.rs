//! The planner's unit tests.

use super::emit::tiled;
use super::*;
use crate::kernels::texture::TextureShape;
use crate::kernels::{
    self, BlockAttention, BlockLanes, BlockRows, FusedOutput, Lanes, MatmulKernel, MatmulPrecision, Operands, Precision,
};
use crate::options::MaskedRows;
use crate::weights::Dense;
use crate::{CallOptions, GqaConfig, Mask};

/// A packing copy out of a buffer that cannot be a copy source becomes the pack pass that fills
/// the same texture; the other packings stay copies.
#[test]
fn packing_copies_become_passes_for_one_source() {
    let cfg = GqaConfig::new(16, 4, 2);
    let p = Problem::new(&cfg, &[2, 20, 64], &[2, 24, 128], None, &CallOptions::default()).unwrap();
    let plan = Plan::tuned(&p, &Limits::default(), Tuning::CPU).unwrap();
    let kind = |plan: &Plan, label: &str| match plan.steps.iter().find(|s| s.label() == label) {
        Some(Step::Copy(_)) => "copy",
        Some(Step::Dispatch(p)) if p.kernel == Kernel::PackTexture => "pass",
        _ => "none",
    };
    assert_eq!((kind(&plan, "pack_query"), kind(&plan, "pack_value")), ("copy", "copy"));
    let plan = plan.packing_by_passes_from(BufferId::Query);
    assert_eq!((kind(&plan, "pack_query"), kind(&plan, "pack_value")), ("pass", "copy"));
    let pass = plan.passes().find(|p| p.label == "pack_query").unwrap();
    assert_eq!(
        (pass.params.pack_rows, pass.params.pack_cols, pass.bindings.clone()),
        (40, 64, vec![BufferId::Query, BufferId::QueryTexture])
    );
    assert_eq!(pass.workgroups, tiled(Kernel::PackTexture, 64, 40, 1));
}

fn problem(cfg: &GqaConfig, b: usize, t: usize, s: usize, opts: &CallOptions) -> Problem {
    Problem::new(cfg, &[b, t, 16], &[b, s, 12], None, opts).unwrap()
}

/// A cached call's plan for `new` tokens per sequence over a cache of `cap` tokens holding
/// `past` each, with or without texture mirrors.
fn cached_plan(
    past: usize,
    new: usize,
    cap: usize,
    mirror: bool,
    limits: &Limits,
    tuning: Tuning,
) -> Result<Plan, GqaError> {
    let cfg = GqaConfig::new(8, 8, 2);
    let shape = crate::CacheShape::new(&cfg, 2, cap).unwrap();
    let update = CacheUpdate::new(shape, &[past; 2], &[new; 2], new, None).unwrap().with_texture_mirror(mirror);
    let (problem, _) = update.problem(&cfg, 16, 12, None).unwrap();
    Plan::cached(&problem, &update, limits, tuning)
}

/// The block attention's value check (`check_values`, Kernel::CheckValues): a real check of the
/// chunk's projected values where keys can be skipped and fully masked rows give zeros,
/// "unknown" (values_unknown = 1, nothing read) for such a cached call, no pass without a mask that skips or
/// under Keras' policy (the words are not consulted there); its words bound by the attention.
#[test]
fn block_plans_check_the_values_only_where_the_attention_may_skip_keys() {
    let cfg = GqaConfig::new(8, 4, 2);
    let check_of = |plan: &Plan| {
        let i = plan.passes().position(|p| p.label == "check_values").expect("a check");
        let passes: Vec<_> = plan.passes().collect();
        let attention = passes[i + 1];
        // The words at binding 7 (the sinks, or the masks in their place, at 8).
        assert!(attention.kernel.is_block_attention() && attention.bindings.get(6) == Some(&BufferId::VFlags));
        assert_eq!(passes[i].bindings, [BufferId::ValueProj, BufferId::VFlags]);
        (passes[i].params.check_vec4s, passes[i].params.values_unknown)
    };
    let causal = CallOptions { use_causal_mask: true, ..Default::default() };
    let plan = Plan::tuned(&problem(&cfg, 2, 20, 50, &causal), &Limits::default(), Tuning::CPU).unwrap();
    // B·S·Nkv·H / 4 vec4s: 2 x 50 x 2 x 8 / 4.
    assert_eq!(check_of(&plan), (400, 0));
    assert_eq!(plan.buffer(BufferId::VFlags).unwrap().bytes, 4 * kernels::check_values::FLAG_WORDS as u64);
    let windowed = GqaConfig { sliding_window: Some(8), ..cfg.clone() };
    let plan =
        Plan::tuned(&problem(&windowed, 2, 20, 50, &CallOptions::default()), &Limits::default(), Tuning::CPU).unwrap();
    assert_eq!(check_of(&plan), (400, 0));
    for opts in [CallOptions::default(), CallOptions { masked_rows: MaskedRows::KerasDefault, ..causal.clone() }] {
        let plan = Plan::tuned(&problem(&cfg, 2, 20, 50, &opts), &Limits::default(), Tuning::CPU).unwrap();
        assert!(plan.passes().any(|p| p.kernel.is_block_attention()), "{opts:?}");
        assert!(plan.passes().all(|p| p.kernel != Kernel::CheckValues), "{opts:?}");
    }
    // A uniform cached call is bottom-right causal: its words say "unknown".
    let plan = cached_plan(30, 20, 64, true, &Limits::default(), Tuning::CPU).unwrap();
    let i = plan.passes().position(|p| p.label == "check_values").expect("a check");
    assert_eq!(plan.passes().nth(i).map(|p| (p.params.check_vec4s, p.params.values_unknown)), Some((0, 1)));
    // No block attention, no check.
    let gpu = Plan::tuned(&problem(&cfg, 2, 20, 50, &causal), &Limits::default(), Tuning::GPU).unwrap();
    assert!(gpu.passes().all(|p| p.kernel != Kernel::CheckValues) && gpu.buffer(BufferId::VFlags).is_none());
}

#[test]
fn cached_plans_append_whole_rows_to_the_texture_mirrors_and_read_them() {
    let limits = Limits::default();
    let row = 2 * 8 * 4; // Nkv·H f32 per token: one texel row of the mirror
    for (new, subgroups, want) in [
        (1, false, Kernel::DecodeAttention(Operands::Texture)),
        (
            20,
            false,
            Kernel::BlockAttention(BlockAttention { operands: Operands::Texture, lanes: BlockLanes::Workgroup }),
        ),
        (
            20,
            true,
            Kernel::BlockAttention(BlockAttention { operands: Operands::Texture, lanes: BlockLanes::SharedLoads }),
        ),
    ] {
        let tuning = Tuning { subgroups, ..Tuning::CPU };
        let plan = cached_plan(30, new, 64, true, &limits, tuning).unwrap();
        for id in [BufferId::KeyCacheTexture, BufferId::ValueCacheTexture] {
            let spec = plan.buffer(id).unwrap();
            assert_eq!((spec.texture, spec.role), (Some(TextureShape::new(4, 128)), BufferRole::Cache));
        }
        // Each sequence's new rows land at its length, in the buffers and the mirrors alike.
        let appends: Vec<&CopySpec> = plan
            .steps
            .iter()
            .filter_map(|st| match st {
                Step::Copy(c) if c.dst == BufferId::KeyCacheTexture => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(appends.len(), 2);
        for (b, c) in appends.iter().enumerate() {
            assert_eq!((c.src, c.bytes), (BufferId::KeyProj, (new * row) as u64));
            assert_eq!(c.dst_offset, ((b * 64 + 30) * row) as u64);
            assert_eq!(c.src_offset % 16, 0);
        }
        let attention = plan.passes().find(|p| p.label.starts_with("attention_")).unwrap();
        assert_eq!(attention.kernel, want, "{new} new tokens, subgroups {subgroups}");
        // The attention core, between the input projections and the output projection: the
        // appends (keys and values of 2 sequences, to the buffers and the mirrors), the packed
        // queries, the attention passes (the block kernel's after its value check, "unknown"
        // for a cached call), the packing of the output projection's input.
        let core: Vec<&str> = plan.steps[plan.attention_steps().unwrap()].iter().map(Step::label).collect();
        let n = core.len();
        assert!(core[..8].iter().all(|l| *l == "copy") && core[8] == "pack_query_proj", "{core:?}");
        let block = want.is_block_attention();
        assert_eq!(core[9] == "check_values", block, "{core:?}");
        assert!(core[9 + block as usize..n - 1].iter().all(|l| l.starts_with("attention_")), "{core:?}");
        assert_eq!(core[n - 1], "pack_attention_output");
        assert_eq!(
            attention.bindings[..3],
            [BufferId::QueryProjTexture, BufferId::KeyCacheTexture, BufferId::ValueCacheTexture]
        );
    }
    // Without mirrors: no texture, the buffers' kernels.
    let plan = cached_plan(30, 1, 64, false, &limits, Tuning::CPU).unwrap();
    assert!(plan.buffer(BufferId::KeyCacheTexture).is_none());
    assert!(plan.passes().any(|p| p.kernel == Kernel::DecodeAttention(Operands::Storage)));
    // A mirror beyond the texture limit is an error naming it, not a silent fallback.
    let small = Limits { max_texture_dimension_2d: 100, ..limits };
    let err = cached_plan(30, 1, 64, true, &small, Tuning::CPU).unwrap_err();
    assert!(matches!(err, GqaError::LimitExceeded { limit: "max_texture_dimension_2d", .. }), "{err:?}");
}

#[test]
fn textured_plans_pack_each_input_once_and_list_every_texture() {
    let mut cfg = GqaConfig::new(8, 4, 2);
    cfg.use_gate = true;
    let tuning = Tuning { matmul: crate::MatmulVariant::Textured, ..Tuning::CPU };
    let opts = CallOptions::default();
    // 2 x 40 query rows and 2 x 50 key/value rows: every projection textured, the gate reading
    // the packed query, the key projection the packed value (no key given).
    let plan = Plan::tuned(&problem(&cfg, 2, 40, 50, &opts), &Limits::default(), tuning).unwrap();
    // Packed by copies (None: not a pass).
    let kernel = |s: &Step| if let Step::Dispatch(p) = s { Some(p.kernel) } else { None };
    let labels: Vec<_> = plan.steps.iter().map(|s| (s.label(), kernel(s))).collect();
    // One 128 x 128 tile would hold each product: the 8-row textured kernel.
    let tex = Some(Kernel::Matmul(MatmulKernel::blocked(BlockRows::Eight, Operands::Texture, false)));
    assert_eq!(
        labels[..6],
        [
            ("pack_query", None),
            ("project_query", tex),
            ("pack_value", None),
            ("project_key", tex),
            ("project_value", tex),
            ("project_gate", tex),
        ]
    );
    let shape = |id| plan.buffer(id).and_then(|b| b.texture);
    assert_eq!(shape(BufferId::QueryTexture), Some(TextureShape::new(4, 80)));
    assert_eq!(shape(BufferId::ValueTexture), Some(TextureShape::new(3, 100)));
    assert_eq!(shape(BufferId::WeightTexture(Dense::Key)), Some(TextureShape::new(4, 12)));
    assert_eq!(shape(BufferId::AttnOutTexture), Some(TextureShape::new(8, 80)));
    let weight_textures = plan.buffers.iter().filter(|b| b.texture.is_some() && b.role == BufferRole::Weight);
    assert_eq!(weight_textures.count(), 5, "every kernel, gate included");
    for d in Dense::ALL {
        assert!(plan.buffer(BufferId::Weight(d)).is_none(), "{d:?}: kept as its texture alone");
        assert!(plan.buffer(BufferId::Bias(d)).is_some(), "{d:?}: biases stay buffers");
    }
    let pack = plan.steps.iter().find(|s| s.label() == "pack_attention_output");
    let copy = CopySpec {
        label: "pack_attention_output",
        src: BufferId::AttnOut,
        src_offset: 0,
        dst: BufferId::AttnOutTexture,
        dst_offset: 0,
        bytes: 32 * 80 * 4,
    };
    assert_eq!(pack, Some(&Step::Copy(copy)), "32 columns, 80 rows, copied");

    // One query row takes the rows kernel's texture form; its input is packed like the others.
    let step = Plan::tuned(&problem(&cfg, 1, 1, 50, &opts), &Limits::default(), tuning).unwrap();
    let q = step.passes().find(|p| p.label == "project_query").unwrap();
    assert_eq!(q.kernel, Kernel::Matmul(MatmulKernel::Rows4(Operands::Texture)));
    assert_eq!(q.bindings[..2], [BufferId::QueryTexture, BufferId::WeightTexture(Dense::Query)]);
    assert_eq!(step.buffer(BufferId::QueryTexture).unwrap().texture, Some(TextureShape::new(4, 1)));
    assert!(step.buffer(BufferId::WeightTexture(Dense::Query)).is_some());

    // Textures beyond the device's limit: the buffer kernel, and no texture listed for it.
    let small = Limits { max_texture_dimension_2d: 60, ..Limits::default() };
    let plan = Plan::tuned(&problem(&cfg, 2, 40, 50, &opts), &small, tuning).unwrap();
    let kernel_of = |label| plan.passes().find(|p| p.label == label).unwrap().kernel;
    assert_eq!(
        kernel_of("project_query"),
        Kernel::Matmul(MatmulKernel::blocked(BlockRows::Sixteen, Operands::Storage, false)),
        "80 rows > 60"
    );
    assert_eq!(
        kernel_of("project_key"),
        Kernel::Matmul(MatmulKernel::blocked(BlockRows::Sixteen, Operands::Storage, false)),
        "100 rows > 60"
    );
    assert!(plan.buffer(BufferId::QueryTexture).is_none());
}

#[test]
fn buffers_and_passes_follow_the_problem() {
    let mut cfg = GqaConfig::new(8, 4, 2);
    cfg.use_gate = true;
    let opts = CallOptions { return_attention_scores: true, ..Default::default() };
    let plan = Plan::new(&problem(&cfg, 2, 5, 70, &opts), &Limits::default()).unwrap();
    let elems = |id| plan.buffer(id).unwrap().elems;
    assert_eq!(elems(BufferId::Query), 2 * 5 * 16);
    assert_eq!(elems(BufferId::Weight(Dense::Query)), 16 * 32);
    assert_eq!(elems(BufferId::Weight(Dense::Key)), 12 * 16);
    assert_eq!(elems(BufferId::Bias(Dense::Output)), 16);
    assert_eq!(elems(BufferId::Probs), 2 * 4 * 5 * 70);
    assert_eq!(elems(BufferId::Masks), 1);
    assert!(plan.buffer(BufferId::Key).is_none(), "no key given: value is bound instead");
    assert_eq!(plan.buffer(BufferId::Probs).unwrap().role, BufferRole::Output);
    let passes: Vec<&Pass> = plan.passes().collect();
    let labels: Vec<_> = passes.iter().map(|p| p.label).collect();
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
    let logits = passes[4];
    assert_eq!(logits.workgroups, [2, 1, 8], "S=70 needs two 64-wide tiles, B*Nq = 8");
    assert_eq!(passes[1].bindings[0], BufferId::Value);
    assert_eq!(plan.steps.len(), passes.len(), "nothing to split: no copies");
    let qkv = 2 * (10 * 16 * 32 + 2 * 140 * 12 * 16) + 2 * 10 * 16 * 32 + 2 * 10 * 32 * 16;
    assert_eq!(plan.flops(), (qkv + 2 * 2 * 2 * 4 * 5 * 70 * 8) as u64);
    // The five projections count 2 m n k each, and add up to the plan's projection FLOPs; the
    // attention's passes have no count of their own.
    let counted: Vec<_> = passes.iter().map(|p| p.flops()).collect();
    assert_eq!(counted[0], Some(2 * 10 * 16 * 32), "query: m = B T = 10, k = Dq = 16, n = Nq H = 32");
    assert!(counted[4..7].iter().all(Option::is_none), "{counted:?}");
    assert_eq!(counted.iter().flatten().sum::<u64>(), qkv as u64);
}

#[test]
fn f16_plans_halve_the_weights_and_intermediates_only() {
    let mut cfg = GqaConfig::new(6, 4, 2);
    cfg.use_gate = true;
    let opts = CallOptions { return_attention_scores: true, ..Default::default() };
    let p = problem(&cfg, 2, 5, 7, &opts);
    let tuning = Tuning { precision: Precision::F16, ..Tuning::CPU };
    let plan = Plan::tuned(&p, &Limits::default(), tuning).unwrap();
    // f16 plans take the register-blocked matmuls over buffers: the f32 plan to compare with
    // does too (the textured one keeps no kernel buffers).
    let buffers = Tuning { matmul: crate::MatmulVariant::RegisterBlocked, ..Tuning::CPU };
    let f32_plan = Plan::tuned(&p, &Limits::default(), buffers).unwrap();
    assert_eq!(plan.buffers.len(), f32_plan.buffers.len());
    assert_eq!(plan.tuning.precision, Precision::F16);
    for (b, f) in plan.buffers.iter().zip(&f32_plan.buffers) {
        assert_eq!((b.id, b.elems), (f.id, f.elems));
        let want = if b.id.follows_precision() { (b.elems * 2).next_multiple_of(4) } else { b.elems * 4 };
        assert_eq!(b.bytes, want, "{}", b.id);
        assert_eq!(b.element_bytes, if b.id.follows_precision() { 2 } else { 4 }, "{}", b.id);
    }
    assert_eq!(plan.buffer(BufferId::QueryProj).unwrap().bytes, 2 * 5 * 24 * 2);
    let kernels: Vec<Kernel> = plan.passes().map(|p| p.kernel).collect();
    let f16 = Kernel::Matmul(MatmulKernel::Blocked8x8(MatmulPrecision::F16));
    assert_eq!(
        kernels,
        [
            f16,
            f16,
            f16,
            f16,
            Kernel::Logits(Precision::F16),
            Kernel::Softmax(Lanes::Workgroup),
            Kernel::AttendValues(Precision::F16),
            Kernel::Matmul(MatmulKernel::Blocked8x8(MatmulPrecision::F16ToF32))
        ]
    );
    assert!(f32_plan.passes().all(|p| !p.kernel.needs_shader_f16()));
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
    assert_eq!(off, MaskOffsets { attention: 0, query: 12, value: 18, key: 18, bits: 26 });
    let plan = Plan::new(&p, &Limits::default()).unwrap();
    let words = plan.mask_words();
    assert_eq!(words, [((1 << 12) - 1) | (0xff << 18)], "attention ones, query zeros, key ones");
    let params = &plan.passes().next().unwrap().params;
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
    let one = Limits { max_compute_workgroups_per_dimension: 1, ..Limits::default() };
    let err = Plan::new(&p, &one).unwrap_err();
    assert!(err.to_string().contains("max_compute_workgroups_per_dimension is 1"), "{err}");
    let small_wg = Limits { max_compute_workgroup_storage_size: 4096, ..Limits::default() };
    let err = Plan::new(&p, &small_wg).unwrap_err();
    assert!(err.to_string().contains("max_compute_workgroup_storage_size"), "{err}");
    let few_inv = Limits { max_compute_invocations_per_workgroup: 128, ..Limits::default() };
    assert!(Plan::new(&p, &few_inv).is_err());
}

#[test]
fn small_limits_split_the_batch_and_the_attention() {
    let cfg = GqaConfig::new(8, 4, 2);
    let opts = CallOptions { return_attention_scores: true, ..Default::default() };
    let p = problem(&cfg, 3, 100, 100, &opts);
    // One batch element's projected queries (100 x 32 floats) fit, two do not.
    let limits = Limits { max_storage_buffer_binding_size: 100 * 32 * 4 + 4, ..Limits::default() };
    let plan = Plan::new(&p, &limits).unwrap();
    assert_eq!(plan.chunking, Chunking { batch_per_chunk: 1, rows_per_chunk: 1, queries_per_chunk: 32 });
    assert_eq!(plan.scores_buffer(), Some(BufferId::Scores));
    assert_eq!(plan.buffer(BufferId::Scores).unwrap().elems, 3 * 4 * 100 * 100);
    // Every score row is copied out exactly once, and every output batch element.
    let copies: Vec<CopySpec> =
        plan.steps.iter().filter_map(|s| if let Step::Copy(c) = s { Some(*c) } else { None }).collect();
    let scores: u64 = copies.iter().filter(|c| c.dst == BufferId::Scores).map(|c| c.bytes).sum();
    assert_eq!(scores, 3 * 4 * 100 * 100 * 4);
    let outputs: u64 = copies.iter().filter(|c| c.dst == BufferId::Output).map(|c| c.bytes).sum();
    assert_eq!(outputs, 3 * 100 * 16 * 4);
    let softmax_rows: u32 = plan
        .passes()
        .filter(|p| p.kernel == Kernel::Softmax(Lanes::Workgroup))
        .map(|p| p.workgroups[0] * p.workgroups[1])
        .sum();
    assert_eq!(softmax_rows, 3 * 4 * 100);
    // Each batch chunk repeats the projections: no single attention core.
    assert_eq!(plan.attention_steps(), None);
    // Grids over the limit split the query rows too.
    let grid = Limits { max_compute_workgroups_per_dimension: 50, ..Limits::default() };
    let plan = Plan::new(&p, &grid).unwrap();
    assert!(plan.passes().all(|p| p.workgroups.iter().all(|w| *w <= 50)));
    assert_eq!(plan.chunking.queries_per_chunk, 50);
}

#[test]
fn the_subgroup_softmax_only_when_the_tuning_allows() {
    let cfg = GqaConfig::new(8, 4, 2);
    let opts = CallOptions { return_attention_scores: true, ..Default::default() };
    let p = problem(&cfg, 2, 5, 70, &opts);
    let softmax = |tuning: Tuning| -> Vec<Kernel> {
        let plan = Plan::tuned(&p, &Limits::default(), tuning).unwrap();
        plan.passes().filter(|p| p.label == "softmax").map(|p| p.kernel).collect()
    };
    for base in [Tuning::CPU, Tuning::GPU] {
        assert!(!base.subgroups, "the baselines are the default");
        assert_eq!(softmax(base), [Kernel::Softmax(Lanes::Workgroup)]);
        assert_eq!(softmax(Tuning { subgroups: true, ..base }), [Kernel::Softmax(Lanes::Subgroup)]);
    }
    assert!(Kernel::Softmax(Lanes::Subgroup).needs_subgroups());
    assert_eq!(Kernel::ALL.iter().filter(|k| k.needs_subgroups()).count(), 9);
}

#[test]
fn the_subgroup_attention_where_the_subgroup_sizes_fit_the_head() {
    let texture = |lanes| Kernel::BlockAttention(BlockAttention { operands: Operands::Texture, lanes });
    let whole = texture(BlockLanes::Subgroup);
    let attention = |h: usize, t: usize, s: usize, tuning: Tuning| -> Kernel {
        let cfg = GqaConfig::new(h, 8, 2);
        let p = problem(&cfg, 1, t, s, &CallOptions::default());
        let plan = Plan::tuned(&p, &Limits::default(), tuning).unwrap();
        plan.passes().find(|p| p.label == "attention_block").unwrap().kernel
    };
    let cpu = |sizes: [u32; 2]| Tuning { subgroups: true, subgroup_sizes: sizes, ..Tuning::CPU };
    // lavapipe: 8 lanes, 4 columns each: heads up to 128.
    assert_eq!(attention(128, 40, 50, cpu([8, 8])), whole);
    assert_eq!(attention(132, 40, 50, cpu([8, 8])), texture(BlockLanes::SharedLoads));
    assert_eq!(attention(256, 40, 50, cpu([16, 16])), whole);
    assert_eq!(attention(128, 40, 50, cpu([4, 32])), texture(BlockLanes::SharedLoads));
    // Unknown sizes, sizes that are not powers of two or exceed the workgroup: the other form.
    for sizes in [[0, 0], [8, 128], [12, 12], [16, 8]] {
        assert_eq!(attention(64, 40, 50, cpu(sizes)), texture(BlockLanes::SharedLoads), "{sizes:?}");
    }
    assert_eq!(attention(64, 40, 50, Tuning::CPU), texture(BlockLanes::Workgroup));
    // Its loops within llvmpipe's cap at T = S = 8192 with 8 lanes, and past the cap beyond.
    let p = Params { s_len: 8192, head_dim: 128, ..Params::default() };
    assert!(whole.loop_iterations(&p, [8, 8]) <= 65_535);
    let far = Params { s_len: 40_000, ..p };
    assert!(whole.loop_iterations(&far, [8, 8]) > 65_535);
    assert_eq!(select::block_texture_lanes(cpu([8, 8]), &far), BlockLanes::SharedLoads);
    // The worst size from 4 to 64 when unknown.
    assert!(whole.loop_iterations(&p, [0, 0]) >= whole.loop_iterations(&p, [8, 8]));
}

#[test]
fn the_subgroup_matmul_only_in_place_of_the_textured_one() {
    use BlockRows::{Eight, Sixteen};
    use Operands::{Storage, Texture};
    let blocked = |rows, operands, subgroups| Kernel::Matmul(MatmulKernel::blocked(rows, operands, subgroups));
    let rows4 = Kernel::Matmul(MatmulKernel::Rows4(Texture));
    // The matmul a tuning picks for an m x k by k x n product.
    let matmul_kernel = |tuning: &Tuning, m, k, n, limits: &Limits| {
        Kernel::Matmul(ProjectionRoute::new(tuning, limits).kernel(Dense::Query, m, k, n))
    };
    let cfg = GqaConfig::new(8, 4, 2);
    let p = problem(&cfg, 2, 70, 50, &CallOptions::default());
    let kernel = |tuning: Tuning| -> Kernel {
        let plan = Plan::tuned(&p, &Limits::default(), tuning).unwrap();
        plan.passes().find(|p| p.label == "project_query").unwrap().kernel
    };
    assert_eq!(kernel(Tuning::CPU), blocked(Sixteen, Texture, false));
    assert_eq!(kernel(Tuning { subgroups: true, ..Tuning::CPU }), blocked(Sixteen, Texture, true));
    assert_eq!(kernel(Tuning { subgroups: true, ..Tuning::GPU }), Kernel::Matmul(MatmulKernel::Tiled));
    let buffers = Tuning { matmul: crate::MatmulVariant::RegisterBlocked, subgroups: true, ..Tuning::CPU };
    assert_eq!(kernel(buffers), blocked(Sixteen, Storage, false));
    assert!(
        blocked(Sixteen, Texture, true).needs_subgroups() && blocked(Sixteen, Texture, true).reads_operand_textures()
    );
    // By rows (B = 1, T rows; Nq·H = 256 output columns, two 128-column tiles): the rows-of-4
    // kernel up to 16, the 8-row kernel up to 64 (one 64-row tile), the 16-row one beyond; in
    // the subgroup form with subgroups, the texture form without.
    let cfg = GqaConfig::new(64, 4, 2);
    let subgroups = Tuning { subgroups: true, ..Tuning::CPU };
    for (t, with, without) in [
        (16, rows4, rows4),
        (17, blocked(Eight, Texture, true), blocked(Eight, Texture, false)),
        (64, blocked(Eight, Texture, true), blocked(Eight, Texture, false)),
        (65, blocked(Sixteen, Texture, true), blocked(Sixteen, Texture, false)),
    ] {
        let p = problem(&cfg, 1, t, 50, &CallOptions::default());
        let plan = Plan::tuned(&p, &Limits::default(), subgroups).unwrap();
        let pass = plan.passes().find(|p| p.label == "project_query").unwrap();
        assert_eq!(pass.kernel, with, "T = {t}");
        assert_eq!(pass.workgroups[1], t.div_ceil(pass.kernel.tile()[1] as usize) as u32, "T = {t}");
        let plan = Plan::tuned(&p, &Limits::default(), Tuning::CPU).unwrap();
        assert_eq!(plan.passes().find(|p| p.label == "project_query").unwrap().kernel, without, "T = {t}");
    }
    let rows8 = blocked(Eight, Texture, true);
    assert!(rows8.needs_subgroups() && rows8.reads_operand_textures() && rows8.tile() == [128, 64]);
    // Where one 128 x 128 tile would hold the product, the 8-row kernel's two tiles.
    let limits = Limits::default();
    assert_eq!(matmul_kernel(&subgroups, 128, 512, 128, &limits), rows8);
    assert_eq!(matmul_kernel(&subgroups, 128, 512, 256, &limits), blocked(Sixteen, Texture, true));
    assert_eq!(matmul_kernel(&subgroups, 129, 512, 128, &limits), blocked(Sixteen, Texture, true));
    let (plain, rows8) = (Tuning::CPU, blocked(Eight, Texture, false));
    assert!(!rows8.needs_subgroups() && rows8.reads_operand_textures() && rows8.tile() == [128, 64]);
    assert_eq!(matmul_kernel(&plain, 64, 512, 4096, &limits), rows8);
    assert_eq!(matmul_kernel(&plain, 128, 512, 128, &limits), rows8);
    assert_eq!(matmul_kernel(&plain, 128, 512, 256, &limits), blocked(Sixteen, Texture, false));
    // Over storage buffers (textures not chosen), neither 8-row kernel.
    let buffers = Tuning { matmul: crate::MatmulVariant::RegisterBlocked, ..Tuning::CPU };
    assert_eq!(matmul_kernel(&buffers, 64, 512, 4096, &limits), blocked(Sixteen, Storage, false));
}

/// The route a plan records names the kernels its attention passes dispatch, and what it needs:
/// probabilities only for the separate passes, partial states only for flash-decoding, the value
/// check's words only for the block attention, textures where it reads them.
#[test]
fn the_route_names_the_attention_the_passes_run() {
    let cfg = GqaConfig::new(8, 4, 2);
    let attention_kernels = |plan: &Plan| -> Vec<Kernel> {
        plan.passes().filter(|p| !p.kernel.is_matmul() && p.label != "check_values").map(|p| p.kernel).collect()
    };
    let plain = problem(&cfg, 2, 20, 50, &CallOptions::default());
    let fused = Plan::tuned(&plain, &Limits::default(), Tuning::GPU).unwrap();
    let kernel = Kernel::FusedAttention { precision: Precision::F32, output: FusedOutput::Attention };
    assert_eq!(fused.route.attention, AttentionRoute::Fused { kernel });
    assert_eq!(attention_kernels(&fused), [kernel]);
    assert!(!fused.route.attention.uses_probs() && fused.buffer(BufferId::Probs).is_none());

    let scores = CallOptions { return_attention_scores: true, ..Default::default() };
    let unfused = Plan::tuned(&problem(&cfg, 2, 20, 50, &scores), &Limits::default(), Tuning::GPU).unwrap();
    let AttentionRoute::Unfused { logits, softmax, attend_values } = unfused.route.attention else {
        panic!("{:?}", unfused.route.attention)
    };
    assert_eq!(attention_kernels(&unfused), [logits, softmax, attend_values]);
    assert!(unfused.route.attention.uses_probs() && unfused.buffer(BufferId::Probs).is_some());

    // Flash-decoding without the decode kernel: the fused file writing f32 partial states.
    let step = problem(&cfg, 2, 1, 600, &CallOptions::default());
    let no_decode = Tuning { decode_kernel: false, ..Tuning::GPU };
    let split = Plan::tuned(&step, &Limits::default(), no_decode).unwrap();
    let partials = Kernel::FusedAttention { precision: Precision::F32, output: FusedOutput::Partials };
    let reduce = Kernel::ReduceSplits(Precision::F32);
    assert_eq!(
        split.route.attention,
        AttentionRoute::Split { split_keys: kernels::fused::SPLIT_KEYS, splits: 3, kernel: partials, reduce }
    );
    assert_eq!(attention_kernels(&split), [partials, reduce]);
    assert_eq!(split.route.attention.splits(), Some(3));
    assert!(split.buffer(BufferId::Partials).is_some());

    // The CPU tuning: the block attention over the packed projections.
    let block = Plan::tuned(&plain, &Limits::default(), Tuning::CPU).unwrap();
    assert!(block.route.attention.is_block() && block.buffer(BufferId::VFlags).is_some());
    assert_eq!(block.route.attention.kv_textures(), Some([BufferId::KeyProjTexture, BufferId::ValueProjTexture]));
    assert_eq!(block.route.attention.splits(), None);

    // A cached step: the decode kernel over the cache's texture mirrors.
    let cached = cached_plan(30, 1, 64, true, &Limits::default(), Tuning::CPU).unwrap();
    let AttentionRoute::Decode { kernel, kv_textures, .. } = cached.route.attention else {
        panic!("{:?}", cached.route.attention)
    };
    assert_eq!(kernel, Kernel::DecodeAttention(Operands::Texture));
    assert_eq!(kv_textures, Some([BufferId::KeyCacheTexture, BufferId::ValueCacheTexture]));
    assert_eq!(attention_kernels(&cached)[0], kernel);
}

/// A cached call's plan carries the mask words of its problem: a ragged cache's per-sequence
/// attention mask, packed as the options that describe it would be.
#[test]
fn cached_plans_carry_their_mask_words() {
    let cfg = GqaConfig::new(8, 8, 2);
    let shape = crate::CacheShape::new(&cfg, 2, 64).unwrap();
    let update = CacheUpdate::new(shape, &[30, 10], &[2, 1], 2, None).unwrap();
    let (problem, options) = update.problem(&cfg, 16, 12, None).unwrap();
    let plan = Plan::cached(&problem, &update, &Limits::default(), Tuning::CPU).unwrap();
    let mask = options.attention_mask.expect("a ragged cache's mask");
    let words = plan.mask_words();
    assert_eq!(words.len(), MaskOffsets::of(&problem).words());
    for (i, &visible) in mask.data().iter().enumerate() {
        assert_eq!(words[i / 32] >> (i % 32) & 1 == 1, visible, "bit {i}");
    }
    assert!(mask.data().iter().any(|v| !v) && mask.data().iter().any(|v| *v));
    // Without masks: one word of zeros, to bind.
    let plain = Plan::new(
        &crate::Problem::new(&cfg, &[1, 3, 16], &[1, 4, 12], None, &CallOptions::default()).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(plain.mask_words(), [0]);
}

/// Short queries over long sources: the GPU tuning splits them with the fused kernel whatever the
/// items; the CPU tuning takes the decode kernel for at most 16 items per kv group and the block
/// attention beyond (not the fused kernel's split mode), or the split mode where the tuning asks
/// for no decode kernel or has no block attention.
#[test]
fn short_queries_split_on_gpus_and_take_the_block_attention_beyond_the_decode_kernel_on_cpus() {
    let cfg = GqaConfig::new(128, 32, 8);
    let opts = CallOptions::default();
    let partials = Kernel::FusedAttention { precision: Precision::F32, output: FusedOutput::Partials };
    let split_kernel =
        |tuning: Tuning, t: usize| match Plan::tuned(&problem(&cfg, 1, t, 4096, &opts), &Limits::default(), tuning)
            .unwrap()
            .route
            .attention
        {
            AttentionRoute::Split { kernel, .. } | AttentionRoute::Decode { kernel, .. } => Some(kernel),
            AttentionRoute::Block { .. } => None,
            other => panic!("T={t}: {other:?}"),
        };
    for t in [1, 4, 16] {
        assert_eq!(split_kernel(Tuning::GPU, t), Some(partials), "GPU, T={t}");
    }
    assert!(matches!(split_kernel(Tuning::CPU, 1), Some(Kernel::DecodeAttention(_))), "CPU, 4 items");
    assert!(matches!(split_kernel(Tuning::CPU, 4), Some(Kernel::DecodeAttention(_))), "CPU, 16 items");
    assert_eq!(split_kernel(Tuning::CPU, 16), None, "CPU, 64 items: the block attention");
    assert_eq!(split_kernel(Tuning { decode_kernel: false, ..Tuning::CPU }, 16), Some(partials));
    assert_eq!(split_kernel(Tuning { block_attention: false, ..Tuning::CPU }, 16), Some(partials));
}

/// Under a loop cap, a projection whose tiled matmul would loop past it (18 iterations per 16 of
/// k, measured on lavapipe) takes the storage-buffer register-blocked kernel (sizes multiples of
/// 4) or the 8x8 one; without a cap, the tiled one at any k; past every kernel's loops, the plan
/// is an error naming the cap.
#[test]
fn projections_past_the_loop_cap_give_way_to_register_blocking() {
    let capped = Tuning { loop_iteration_cap: Some(crate::LLVMPIPE_LOOP_CAP), ..Tuning::GPU };
    let limits = Limits::default();
    let kernel = |tuning: &Tuning, k| ProjectionRoute::new(tuning, &limits).kernel(Dense::Query, 17, k, 16);
    // 3,638 slices: 65,505 iterations; 3,640: 65,541.
    assert_eq!(kernel(&capped, 58_208), MatmulKernel::Tiled);
    assert_eq!(kernel(&capped, 58_240), MatmulKernel::blocked(BlockRows::Sixteen, Operands::Storage, false));
    assert_eq!(kernel(&capped, 58_241), MatmulKernel::Blocked8x8(crate::MatmulPrecision::F32));
    assert_eq!(kernel(&Tuning::GPU, 1 << 20), MatmulKernel::Tiled);
    let f16 = Tuning { precision: Precision::F16, ..capped };
    assert_eq!(kernel(&f16, 60_000), MatmulKernel::Blocked8x8(crate::MatmulPrecision::F16));
    // A whole plan: every pass within the cap.
    let cfg = GqaConfig::new(4, 4, 1);
    let wide = |d: usize| Problem::new(&cfg, &[1, 17, d], &[1, 5, 8], None, &CallOptions::default()).unwrap();
    let plan = Plan::tuned(&wide(60_000), &limits, capped).unwrap();
    for pass in plan.passes() {
        assert!(pass.kernel.loop_iterations(&pass.params, [0, 0]) <= crate::LLVMPIPE_LOOP_CAP, "{}", pass.label);
    }
    let query = plan.passes().find(|p| p.label == "project_query").unwrap();
    assert_eq!(query.kernel, Kernel::Matmul(MatmulKernel::blocked(BlockRows::Sixteen, Operands::Storage, false)));
    let err = Plan::tuned(&wide(300_000), &limits, capped).unwrap_err();
    assert!(err.to_string().contains("loop_iteration_cap"), "{err}");
}

/// A cached call of a layer computing in f16 copies its f16 key and value rows into an f16 cache
/// (the same words: `Nkv·H / 2` per token) and reads them with its own f16 kernels, under the CPU
/// tuning (separate passes) and the GPU tuning (fused, split decode); any other storage is refused.
#[test]
fn f16_cached_plans_copy_their_projections_into_an_f16_cache() {
    let cfg = GqaConfig::new(8, 8, 2);
    for base in [Tuning::CPU, Tuning::GPU] {
        let tuning = Tuning { precision: Precision::F16, ..base };
        for (past, new) in [(0, 5), (30, 1), (700, 1)] {
            let shape = crate::CacheShape::new(&cfg, 2, 1024).unwrap().with_storage(crate::CacheStorage::F16).unwrap();
            let update = CacheUpdate::new(shape, &[past; 2], &[new; 2], new, None).unwrap();
            let (problem, _) = update.problem(&cfg, 16, 12, None).unwrap();
            let plan = Plan::cached(&problem, &update, &Limits::default(), tuning).unwrap();
            let token = 2 * 8 * 2; // Nkv·H f16 values
            let copies: Vec<_> = plan
                .steps
                .iter()
                .filter_map(|s| match s {
                    Step::Copy(c) if matches!(c.dst, BufferId::KeyCache | BufferId::ValueCache) => Some(c),
                    _ => None,
                })
                .collect();
            assert_eq!(copies.len(), 4, "{base:?} past {past}: keys and values of 2 sequences");
            for (i, c) in copies.iter().enumerate() {
                let b = (i / 2) as u64;
                assert_eq!(c.bytes, (new * token) as u64, "{c:?}");
                assert_eq!(
                    (c.src_offset, c.dst_offset),
                    (b * (new * token) as u64, (b * 1024 + past as u64) * token as u64)
                );
            }
            for pass in plan.passes() {
                assert!(!matches!(pass.kernel, Kernel::AppendToCache(_) | Kernel::CacheAttention(_)), "{pass:?}");
                if pass.bindings.contains(&BufferId::KeyCache) {
                    assert!(pass.kernel.needs_shader_f16(), "{base:?}: {} reads the cache", pass.kernel.name());
                }
            }
            assert!(plan.passes().any(|p| p.bindings.contains(&BufferId::KeyCache)));
        }
        for storage in [crate::CacheStorage::F32, crate::CacheStorage::Int8] {
            let shape = crate::CacheShape::new(&cfg, 2, 64).unwrap().with_storage(storage).unwrap();
            let update = CacheUpdate::new(shape, &[3; 2], &[1; 2], 1, None).unwrap();
            let (problem, _) = update.problem(&cfg, 16, 12, None).unwrap();
            let err = Plan::cached(&problem, &update, &Limits::default(), tuning).unwrap_err();
            assert!(matches!(err, GqaError::IncompatibleOptions(ref m) if m.contains("needs an f32 layer")), "{err}");
        }
    }
}
