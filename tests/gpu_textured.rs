//! The textured projections (`MatmulVariant::Textured`, the CPU adapters' default): each projection's
//! input packed into a texture once per chunk, the weights kept as textures, every product checked
//! against the oracle on both adapters, in both forms where the device has subgroups
//! (`matmul_bias_tex` and `matmul_bias_tex_subgroup`); and the fallbacks to the buffer
//! kernels where a texture would exceed the device's limits.

mod common;

use common::{Case, adapter_name, adapters};
use gqa::core::{BlockRows, MatmulKernel, MatmulPrecision, Operands};
use gqa::core::{BufferId, Dense, GqaConfig, Kernel, Limits, MatmulVariant, Plan, Step, TextureShape, Tuning};
use gqa::gpu::GpuContext;

/// The textured tuning on `ctx` in each form the device runs, with the matmul kernel it takes: the
/// plain one, and the subgroup one where the device has `SUBGROUP`.
fn textured_forms(ctx: &GpuContext) -> Vec<(GpuContext, Kernel)> {
    let form =
        |subgroups| ctx.clone().with_tuning(Tuning { matmul: MatmulVariant::Textured, subgroups, ..ctx.tuning() });
    let mut forms = vec![(
        form(false),
        Kernel::Matmul(MatmulKernel::Blocked {
            rows: BlockRows::Sixteen,
            operands: Operands::Texture,
            subgroups: false,
        }),
    )];
    if ctx.tuning().subgroups {
        forms.push((
            form(true),
            Kernel::Matmul(MatmulKernel::Blocked {
                rows: BlockRows::Sixteen,
                operands: Operands::Texture,
                subgroups: true,
            }),
        ));
    }
    forms
}

/// The form a matmul kernel belongs to: the 8-row kernels, which the forms take for 17 to 64 rows,
/// count as `matmul_bias_tex_subgroup` and `matmul_bias_tex`.
fn form_of(kernel: Kernel) -> Kernel {
    match kernel {
        Kernel::Matmul(MatmulKernel::Blocked {
            rows: BlockRows::Eight,
            operands: Operands::Texture,
            subgroups: true,
        }) => Kernel::Matmul(MatmulKernel::Blocked {
            rows: BlockRows::Sixteen,
            operands: Operands::Texture,
            subgroups: true,
        }),
        Kernel::Matmul(MatmulKernel::Blocked {
            rows: BlockRows::Eight,
            operands: Operands::Texture,
            subgroups: false,
        }) => Kernel::Matmul(MatmulKernel::Blocked {
            rows: BlockRows::Sixteen,
            operands: Operands::Texture,
            subgroups: false,
        }),
        k => k,
    }
}

/// The labels of the plan's passes that run `kernel` (a form: see [`form_of`]; for the packing, only
/// the matmuls' inputs: not the projections packed for the block attention, `pack_*_proj`).
fn labels_of(plan: &Plan, kernel: Kernel) -> Vec<&'static str> {
    plan.passes().filter(|p| form_of(p.kernel) == kernel && !p.label.ends_with("_proj")).map(|p| p.label).collect()
}

/// `ctx` planning with textures of at most `texels` per side.
fn with_texture_limit(ctx: &GpuContext, texels: u32) -> GpuContext {
    ctx.clone().with_plan_limits(Limits { max_texture_dimension_2d: texels, ..ctx.limits() })
}

/// The kernel of the plan's pass `label`.
fn kernel_of(plan: &Plan, label: &str) -> Kernel {
    plan.passes().find(|p| p.label == label).unwrap_or_else(|| panic!("no pass {label}")).kernel
}

#[test]
fn textured_projections_match_the_oracle() {
    for (ctx, tex) in adapters().iter().flat_map(textured_forms) {
        let name = format!("{} {}", adapter_name(&ctx), tex.name());

        // Rows (2 x 67, 2 x 70) and columns (72, 36, 20) that are not multiples of the 128 x 16
        // blocks; a gate and a separate key.
        let mut cfg = GqaConfig::new(12, 6, 3);
        cfg.use_gate = true;
        let mut c = Case::new("textured: odd sizes, gate, separate key", cfg);
        (c.batch, c.t, c.s, c.dq, c.dv, c.dk) = (2, 67, 70, 20, 28, Some(12));
        let plan = c.plan(&ctx);
        assert_eq!(
            labels_of(&plan, tex),
            ["project_query", "project_key", "project_value", "project_gate", "project_output"],
            "{name}"
        );
        assert_eq!(
            packed_inputs(&plan),
            ["pack_query", "pack_key", "pack_value", "pack_attention_output"],
            "{name}: the gate reads the packed query"
        );
        let texture = |id| plan.buffer(id).and_then(|b| b.texture);
        // Rows padded to 4 more than a multiple of 8 texels (an odd number of 64-byte lines).
        let shape = |width, row_texels, height| Some(TextureShape { width, height, row_texels });
        assert_eq!(texture(BufferId::QueryTexture), shape(5, 12, 134), "{name}");
        assert_eq!(texture(BufferId::WeightTexture(Dense::Gate)), shape(18, 20, 20));
        assert_eq!(texture(BufferId::WeightTexture(Dense::Output)), shape(5, 12, 72));
        assert!(plan.buffer(BufferId::Weight(Dense::Query)).is_none(), "{name}: kept as its texture alone");
        let diff = c.check(&ctx, 11);

        // No key: the key and value projections read the one packed value; no bias.
        // 40 query rows and 33 key rows: each form takes its 8-row kernel (64-row tiles).
        let mut c = Case::new("textured: key = value, no bias", GqaConfig::new(8, 4, 2));
        c.config.use_bias = false;
        (c.batch, c.t, c.s, c.dq, c.dv, c.dk) = (1, 40, 33, 16, 24, None);
        let plan = c.plan(&ctx);
        let rows8 = match tex {
            Kernel::Matmul(MatmulKernel::Blocked {
                rows: BlockRows::Sixteen,
                operands: Operands::Texture,
                subgroups: true,
            }) => Kernel::Matmul(MatmulKernel::Blocked {
                rows: BlockRows::Eight,
                operands: Operands::Texture,
                subgroups: true,
            }),
            _ => Kernel::Matmul(MatmulKernel::Blocked {
                rows: BlockRows::Eight,
                operands: Operands::Texture,
                subgroups: false,
            }),
        };
        for label in ["project_query", "project_key", "project_value", "project_output"] {
            assert_eq!(kernel_of(&plan, label), rows8, "{name}: {label}");
        }
        assert_eq!(packed_inputs(&plan), ["pack_query", "pack_value", "pack_attention_output"]);
        assert_eq!(labels_of(&plan, tex).len(), 4, "{name}");
        c.check(&ctx, 12);

        // Contracted sizes past the kernels' barriers (every 64 values of k, 16 steps): Dq = 264
        // (the query's k and the output's 66 vec4 columns, three column tiles), Dv = 136 (the key's
        // and value's k), Nq * H = 192 (the output's k); 2 x 45 rows.
        let mut c = Case::new("textured: long k", GqaConfig::new(24, 8, 2));
        (c.batch, c.t, c.s, c.dq, c.dv, c.dk) = (2, 45, 21, 264, 136, None);
        let plan = c.plan(&ctx);
        assert_eq!(labels_of(&plan, tex).len(), 4, "{name}");
        c.check(&ctx, 15);
        eprintln!("[{name}] textured projections: ok, max |diff| {diff:.2e}");
    }
}

#[test]
fn textures_beyond_the_limits_fall_back_to_buffers() {
    for (ctx, tex) in adapters().iter().flat_map(textured_forms) {
        let name = format!("{} {}", adapter_name(&ctx), tex.name());
        let capped = with_texture_limit(&ctx, 64);
        // 2 x 40 = 80 query rows exceed 64 texels: the query, gate and output projections take the
        // buffer kernel; 2 x 30 = 60 key/value rows fit. The query weight (80 x 32) is too tall for
        // a texture, so the layer keeps none for it (nor for the gate, which shares its shape).
        let mut cfg = GqaConfig::new(8, 4, 2);
        cfg.use_gate = true;
        let mut c = Case::new("textures over the limit", cfg);
        (c.batch, c.t, c.s, c.dq, c.dv, c.dk) = (2, 40, 30, 80, 24, None);
        let plan = c.plan(&capped);
        assert_eq!(labels_of(&plan, tex), ["project_key", "project_value"], "{name}");
        assert_eq!(
            labels_of(
                &plan,
                Kernel::Matmul(MatmulKernel::Blocked {
                    rows: BlockRows::Sixteen,
                    operands: Operands::Storage,
                    subgroups: false
                })
            ),
            ["project_query", "project_gate", "project_output"],
            "{name}"
        );
        assert!(plan.buffer(BufferId::WeightTexture(Dense::Query)).is_none(), "{name}");
        assert!(plan.buffer(BufferId::WeightTexture(Dense::Value)).is_some(), "{name}");
        // The output kernel (32 x 80) is kept as a texture, but 80 rows of a call are too tall for
        // the textured matmul: the plan binds its buffer too, which the layer makes from the
        // texture at the call (checked against the oracle below).
        assert!(plan.buffer(BufferId::WeightTexture(Dense::Output)).is_some(), "{name}");
        assert!(plan.buffer(BufferId::Weight(Dense::Output)).is_some(), "{name}");
        assert!(plan.buffer(BufferId::Weight(Dense::Value)).is_none(), "{name}");
        assert!(plan.buffer(BufferId::QueryTexture).is_none(), "{name}");
        let diff = c.check(&capped, 13);

        // Sizes that are not multiples of 4 (Dq = 18 is the query's contracted size and the output's
        // width, Dv = 10 the value's) take the scalar kernel.
        let mut c = Case::new("textured tuning, sizes not multiples of 4", GqaConfig::new(8, 4, 2));
        (c.batch, c.t, c.s, c.dq, c.dv, c.dk) = (1, 30, 20, 18, 10, None);
        let plan = c.plan(&ctx);
        assert!(labels_of(&plan, tex).is_empty(), "{name}");
        assert_eq!(labels_of(&plan, Kernel::Matmul(MatmulKernel::Blocked8x8(MatmulPrecision::F32))).len(), 4, "{name}");
        assert!(plan.buffer(BufferId::WeightTexture(Dense::Output)).is_none(), "{name}: 18 columns");
        c.check(&ctx, 14);
        eprintln!("[{name}] fallbacks: ok, max |diff| {diff:.2e}");
    }
}

/// The plan's packing steps in order, each with whether it is a copy (else a `Kernel::PackTexture`
/// pass).
fn packing(plan: &Plan) -> Vec<(&'static str, bool)> {
    plan.steps
        .iter()
        .filter(|s| s.label().starts_with("pack_"))
        .map(|s| (s.label(), matches!(s, Step::Copy(_))))
        .collect()
}

/// The labels of the plan's packings of the matmuls' inputs (not the projections packed for the
/// block attention, `pack_*_proj`), each checked to be a copy.
fn packed_inputs(plan: &Plan) -> Vec<&'static str> {
    let packs = packing(plan);
    assert!(packs.iter().all(|(_, by_copy)| *by_copy), "every packing a copy: {packs:?}");
    packs.into_iter().map(|(label, _)| label).filter(|l| !l.ends_with("_proj")).collect()
}

/// Every packed texture is filled by copies into its padded rows: one copy where the rows are a
/// multiple of 256 bytes, one per row elsewhere. Each plan is checked against the oracle (outputs
/// poisoned first), also with the batch split into chunks, where every chunk's copies fill the
/// textures again from the chunk's buffers.
#[test]
fn packing_copies_match_the_oracle() {
    for (ctx, tex) in adapters().iter().flat_map(textured_forms) {
        let name = format!("{} {}", adapter_name(&ctx), tex.name());
        // Dq = 64, Dv = 128 and Nq * H = 64 columns: 256-byte rows, one copy each. Nkv * H = 32
        // columns (128-byte rows) over 2 x 33 rows: one copy per row.
        let mut c = Case::new("packing: aligned rows", GqaConfig::new(16, 4, 2));
        (c.batch, c.t, c.s, c.dq, c.dv, c.dk) = (2, 40, 33, 64, 128, None);
        let plan = c.plan(&ctx);
        assert_eq!(packed_inputs(&plan), ["pack_query", "pack_value", "pack_attention_output"], "{name}");
        let diff = c.check(&ctx, 21);

        // The same with one batch element per chunk: 40 x 64 floats of queries (10,240 bytes) and
        // 33 x 128 of values (16,896) fit a 20,000-byte binding, two of either do not.
        let small = ctx.clone().with_plan_limits(Limits { max_storage_buffer_binding_size: 20_000, ..ctx.limits() });
        c.name = "packing: aligned rows, batch chunks".into();
        let plan = c.plan(&small);
        assert_eq!(plan.chunking.batch_per_chunk, 1, "{name}");
        let copies = packed_inputs(&plan).iter().filter(|l| **l == "pack_query").count();
        assert_eq!(copies, 2, "{name}: one packing copy of the query per chunk");
        c.check(&small, 22);

        // 2 x 67 query rows and 2 x 70 key rows of 20, 28 and 12 columns (none a multiple of 64):
        // one copy per row.
        let mut c = Case::new("packing: unaligned rows", GqaConfig::new(12, 6, 3));
        (c.batch, c.t, c.s, c.dq, c.dv, c.dk) = (2, 67, 70, 20, 28, Some(12));
        let plan = c.plan(&ctx);
        assert_eq!(packed_inputs(&plan), ["pack_query", "pack_key", "pack_value", "pack_attention_output"], "{name}");
        c.check(&ctx, 23);
        eprintln!("[{name}] packing copies: ok, max |diff| {diff:.2e}");
    }
}

/// A kernel kept as a texture whose rows are padded (Dq = 96: 24 texels, allocated 28) gives a call
/// too tall for the textured matmul the same buffer, made from the texture on the GPU: the copy takes
/// each row's 24 texels and leaves the padding (checked against the oracle).
#[test]
fn buffers_made_from_padded_textures_match_the_oracle() {
    for (ctx, tex) in adapters().iter().flat_map(textured_forms) {
        let name = format!("{} {}", adapter_name(&ctx), tex.name());
        let capped = with_texture_limit(&ctx, 64);
        // 2 x 40 = 80 rows of a call are too tall for the textured matmul; the output kernel (32 x
        // 96) fits a texture of 24 texels by 32 rows, allocated 28 wide.
        let mut c = Case::new("buffer from a padded texture", GqaConfig::new(8, 4, 2));
        (c.batch, c.t, c.s, c.dq, c.dv, c.dk) = (2, 40, 30, 96, 24, None);
        let plan = c.plan(&capped);
        let output = plan.buffer(BufferId::WeightTexture(Dense::Output)).and_then(|b| b.texture);
        assert_eq!(output, Some(TextureShape { width: 24, height: 32, row_texels: 28 }), "{name}");
        assert!(plan.buffer(BufferId::Weight(Dense::Output)).is_some(), "{name}: the call binds the buffer");
        let diff = c.check(&capped, 24);
        eprintln!("[{name}] buffer from a padded texture: ok, max |diff| {diff:.2e}");
    }
}
