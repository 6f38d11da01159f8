//! The WGSL sources, composed from `shaders/`: each kernel is its own file, prefixed by the shared
//! snippets it uses (the params struct, the mask evaluation, the dropout hash) from a declared table.
//! The f16 kernels ([`Kernel::needs_shader_f16`]) start with `common/f16.wgsl` (`enable f16;`, which
//! must precede every declaration, and declares `alias Elem = f16`). The logits, weighted values and
//! reduce and fused attention kernels are one file for both precisions, whose storage type is `Elem`
//! (`common/store_f32.wgsl` declares it f32; the fused attention's output type `Out` comes from
//! `common/out_storage.wgsl` or `common/out_partials.wgsl`); the f16 matmuls share their body through a
//! snippet: the kernel file declares the bindings whose storage type differs and the entry point. The
//! 16x16 and rows-of-4 matmuls are each one file over storage buffers or textures: their operands come
//! through `load_a` / `load_b` from `common/operands_storage.wgsl` or `common/operands_texture.wgsl`.

use gqa_core::Kernel;

/// The shared snippet files, by name, in the order they are prepended.
pub const COMMON: [(&str, &str); 23] = [
    ("common/f16.wgsl", include_str!("../shaders/common/f16.wgsl")),
    ("common/store_f32.wgsl", include_str!("../shaders/common/store_f32.wgsl")),
    ("common/params.wgsl", include_str!("../shaders/common/params.wgsl")),
    ("common/mask.wgsl", include_str!("../shaders/common/mask.wgsl")),
    ("common/dropout.wgsl", include_str!("../shaders/common/dropout.wgsl")),
    ("common/matmul_rb_f16.wgsl", include_str!("../shaders/common/matmul_rb_f16.wgsl")),
    ("common/out_storage.wgsl", include_str!("../shaders/common/out_storage.wgsl")),
    ("common/out_partials.wgsl", include_str!("../shaders/common/out_partials.wgsl")),
    ("common/qkv_storage.wgsl", include_str!("../shaders/common/qkv_storage.wgsl")),
    ("common/qkv_texture.wgsl", include_str!("../shaders/common/qkv_texture.wgsl")),
    ("common/dots4x4.wgsl", include_str!("../shaders/common/dots4x4.wgsl")),
    ("common/dots8x4.wgsl", include_str!("../shaders/common/dots8x4.wgsl")),
    ("common/dots8x4_shared.wgsl", include_str!("../shaders/common/dots8x4_shared.wgsl")),
    ("common/items.wgsl", include_str!("../shaders/common/items.wgsl")),
    ("common/block_softmax.wgsl", include_str!("../shaders/common/block_softmax.wgsl")),
    ("common/block_lanes.wgsl", include_str!("../shaders/common/block_lanes.wgsl")),
    ("common/block_lanes_subgroup.wgsl", include_str!("../shaders/common/block_lanes_subgroup.wgsl")),
    ("common/key_groups.wgsl", include_str!("../shaders/common/key_groups.wgsl")),
    ("common/nan.wgsl", include_str!("../shaders/common/nan.wgsl")),
    ("common/operands_storage.wgsl", include_str!("../shaders/common/operands_storage.wgsl")),
    ("common/operands_texture.wgsl", include_str!("../shaders/common/operands_texture.wgsl")),
    ("common/matmul_out.wgsl", include_str!("../shaders/common/matmul_out.wgsl")),
    ("common/v_flags.wgsl", include_str!("../shaders/common/v_flags.wgsl")),
];

/// The kernel file's own text.
pub fn kernel_file(kernel: Kernel) -> &'static str {
    match kernel {
        Kernel::MatmulBias => include_str!("../shaders/matmul_bias.wgsl"),
        Kernel::MatmulBiasRb => include_str!("../shaders/matmul_bias_rb.wgsl"),
        Kernel::MatmulBiasRb16 | Kernel::MatmulBiasTex => include_str!("../shaders/matmul_bias_rb16.wgsl"),
        Kernel::MatmulBiasTexSubgroup => include_str!("../shaders/matmul_bias_tex_subgroup.wgsl"),
        Kernel::MatmulBiasTexSubgroupRows8 => include_str!("../shaders/matmul_bias_tex_subgroup_r8.wgsl"),
        Kernel::MatmulBiasTexRows8 => include_str!("../shaders/matmul_bias_tex_r8.wgsl"),
        Kernel::MatmulBiasRows4 | Kernel::MatmulBiasRows4Tex => include_str!("../shaders/matmul_bias_rows4.wgsl"),
        Kernel::QkGrouped | Kernel::QkGroupedF16 => include_str!("../shaders/qk_grouped.wgsl"),
        Kernel::SoftmaxMasked => include_str!("../shaders/softmax_masked.wgsl"),
        Kernel::SoftmaxMaskedSubgroup => include_str!("../shaders/softmax_masked_subgroup.wgsl"),
        Kernel::PvGrouped | Kernel::PvGroupedF16 => include_str!("../shaders/pv_grouped.wgsl"),
        Kernel::AttentionFused | Kernel::AttentionFusedF16 | Kernel::AttentionSplitF16 => {
            include_str!("../shaders/attention_fused.wgsl")
        }
        Kernel::AttentionReduce | Kernel::AttentionReduceF16 => {
            include_str!("../shaders/attention_reduce.wgsl")
        }
        Kernel::MatmulBiasF16 => include_str!("../shaders/matmul_bias_f16.wgsl"),
        Kernel::MatmulBiasF16ToF32 => include_str!("../shaders/matmul_bias_f16_to_f32.wgsl"),
        Kernel::AttentionDecode | Kernel::AttentionDecodeTex => include_str!("../shaders/attention_decode.wgsl"),
        Kernel::AttentionBlock | Kernel::AttentionBlockTex | Kernel::AttentionBlockTexSubgroup => {
            include_str!("../shaders/attention_block.wgsl")
        }
        Kernel::AttentionSubgroup => include_str!("../shaders/attention_subgroup.wgsl"),
        Kernel::PackTexture => include_str!("../shaders/pack_texture.wgsl"),
        Kernel::VFinite => include_str!("../shaders/v_finite.wgsl"),
    }
}

/// The shared snippets a kernel needs.
pub fn snippets(kernel: Kernel) -> &'static [&'static str] {
    match kernel {
        Kernel::MatmulBias | Kernel::MatmulBiasRb | Kernel::PackTexture | Kernel::VFinite => &["common/params.wgsl"],
        Kernel::MatmulBiasRb16 | Kernel::MatmulBiasRows4 => {
            &["common/params.wgsl", "common/operands_storage.wgsl", "common/matmul_out.wgsl"]
        }
        Kernel::MatmulBiasTex
        | Kernel::MatmulBiasTexSubgroup
        | Kernel::MatmulBiasTexSubgroupRows8
        | Kernel::MatmulBiasTexRows8
        | Kernel::MatmulBiasRows4Tex => {
            &["common/params.wgsl", "common/operands_texture.wgsl", "common/matmul_out.wgsl"]
        }
        Kernel::QkGrouped => &["common/store_f32.wgsl", "common/params.wgsl"],
        Kernel::AttentionReduce => &["common/store_f32.wgsl", "common/params.wgsl", "common/nan.wgsl"],
        Kernel::SoftmaxMasked | Kernel::SoftmaxMaskedSubgroup => &["common/params.wgsl", "common/mask.wgsl"],
        Kernel::AttentionDecode => &[
            "common/params.wgsl",
            "common/qkv_storage.wgsl",
            "common/mask.wgsl",
            "common/nan.wgsl",
            "common/dots4x4.wgsl",
            "common/key_groups.wgsl",
            "common/items.wgsl",
        ],
        Kernel::AttentionDecodeTex => &[
            "common/params.wgsl",
            "common/qkv_texture.wgsl",
            "common/mask.wgsl",
            "common/nan.wgsl",
            "common/dots4x4.wgsl",
            "common/key_groups.wgsl",
            "common/items.wgsl",
        ],
        Kernel::AttentionBlock => &[
            "common/params.wgsl",
            "common/qkv_storage.wgsl",
            "common/block_lanes.wgsl",
            "common/mask.wgsl",
            "common/nan.wgsl",
            "common/dots8x4.wgsl",
            "common/items.wgsl",
            "common/block_softmax.wgsl",
            "common/v_flags.wgsl",
        ],
        Kernel::AttentionBlockTex => &[
            "common/params.wgsl",
            "common/qkv_texture.wgsl",
            "common/block_lanes.wgsl",
            "common/mask.wgsl",
            "common/nan.wgsl",
            "common/dots8x4.wgsl",
            "common/items.wgsl",
            "common/block_softmax.wgsl",
            "common/v_flags.wgsl",
        ],
        Kernel::AttentionBlockTexSubgroup => &[
            "common/params.wgsl",
            "common/qkv_texture.wgsl",
            "common/block_lanes_subgroup.wgsl",
            "common/mask.wgsl",
            "common/nan.wgsl",
            "common/dots8x4.wgsl",
            "common/dots8x4_shared.wgsl",
            "common/items.wgsl",
            "common/block_softmax.wgsl",
            "common/v_flags.wgsl",
        ],
        Kernel::AttentionSubgroup => &[
            "common/params.wgsl",
            "common/qkv_texture.wgsl",
            "common/mask.wgsl",
            "common/dots8x4.wgsl",
            "common/dots8x4_shared.wgsl",
            "common/items.wgsl",
            "common/block_softmax.wgsl",
            "common/v_flags.wgsl",
        ],
        Kernel::AttentionFused => &[
            "common/store_f32.wgsl",
            "common/out_storage.wgsl",
            "common/params.wgsl",
            "common/mask.wgsl",
            "common/nan.wgsl",
        ],
        Kernel::PvGrouped => &["common/store_f32.wgsl", "common/params.wgsl", "common/dropout.wgsl"],
        Kernel::MatmulBiasF16 | Kernel::MatmulBiasF16ToF32 => {
            &["common/f16.wgsl", "common/params.wgsl", "common/matmul_rb_f16.wgsl"]
        }
        Kernel::QkGroupedF16 => &["common/f16.wgsl", "common/params.wgsl"],
        Kernel::AttentionReduceF16 => &["common/f16.wgsl", "common/params.wgsl", "common/nan.wgsl"],
        Kernel::PvGroupedF16 => &["common/f16.wgsl", "common/params.wgsl", "common/dropout.wgsl"],
        Kernel::AttentionFusedF16 => {
            &["common/f16.wgsl", "common/out_storage.wgsl", "common/params.wgsl", "common/mask.wgsl", "common/nan.wgsl"]
        }
        Kernel::AttentionSplitF16 => &[
            "common/f16.wgsl",
            "common/out_partials.wgsl",
            "common/params.wgsl",
            "common/mask.wgsl",
            "common/nan.wgsl",
        ],
    }
}

/// The complete WGSL module of a kernel: its snippets, then its file.
pub fn source(kernel: Kernel) -> String {
    let mut out = String::new();
    for name in snippets(kernel) {
        let (file, text) = COMMON.iter().find(|(f, _)| f == name).expect("snippet table names a COMMON file");
        out.push_str(&format!("// ---- {file}\n{text}\n"));
    }
    out.push_str(&format!("// ---- {}\n{}", kernel.file_name(), kernel_file(kernel)));
    out
}
