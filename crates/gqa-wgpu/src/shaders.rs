//! The WGSL sources, composed from `shaders/`: each kernel is its own file, prefixed by the shared
//! snippets it uses (the params struct, the mask evaluation, the dropout hash), both named by the
//! kernel's spec ([`gqa_core::KernelSpec::file`] and [`gqa_core::KernelSpec::snippets`]). This
//! module only holds the text of every file under `shaders/`, by name ([`FILES`]).

use gqa_core::Kernel;

/// Every kernel file and shared snippet under `shaders/`, by the name the kernel specs use (the
/// probes of `roofline.rs` keep their own table).
pub const FILES: [(&str, &str); 43] = [
    ("attention_block.wgsl", include_str!("../shaders/attention_block.wgsl")),
    ("attention_decode.wgsl", include_str!("../shaders/attention_decode.wgsl")),
    ("attention_fused.wgsl", include_str!("../shaders/attention_fused.wgsl")),
    ("attention_reduce.wgsl", include_str!("../shaders/attention_reduce.wgsl")),
    ("attention_subgroup.wgsl", include_str!("../shaders/attention_subgroup.wgsl")),
    ("matmul_bias.wgsl", include_str!("../shaders/matmul_bias.wgsl")),
    ("matmul_bias_f16.wgsl", include_str!("../shaders/matmul_bias_f16.wgsl")),
    ("matmul_bias_f16_to_f32.wgsl", include_str!("../shaders/matmul_bias_f16_to_f32.wgsl")),
    ("matmul_bias_rb.wgsl", include_str!("../shaders/matmul_bias_rb.wgsl")),
    ("matmul_bias_rb16.wgsl", include_str!("../shaders/matmul_bias_rb16.wgsl")),
    ("matmul_bias_rows4.wgsl", include_str!("../shaders/matmul_bias_rows4.wgsl")),
    ("matmul_bias_tex_r8.wgsl", include_str!("../shaders/matmul_bias_tex_r8.wgsl")),
    ("matmul_bias_tex_subgroup.wgsl", include_str!("../shaders/matmul_bias_tex_subgroup.wgsl")),
    ("matmul_bias_tex_subgroup_r8.wgsl", include_str!("../shaders/matmul_bias_tex_subgroup_r8.wgsl")),
    ("pack_texture.wgsl", include_str!("../shaders/pack_texture.wgsl")),
    ("pv_grouped.wgsl", include_str!("../shaders/pv_grouped.wgsl")),
    ("qk_grouped.wgsl", include_str!("../shaders/qk_grouped.wgsl")),
    ("softmax_masked.wgsl", include_str!("../shaders/softmax_masked.wgsl")),
    ("softmax_masked_subgroup.wgsl", include_str!("../shaders/softmax_masked_subgroup.wgsl")),
    ("v_finite.wgsl", include_str!("../shaders/v_finite.wgsl")),
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

/// The text of the file under `shaders/` named `name` (a kernel spec's file or snippet), if there is
/// one.
pub fn file(name: &str) -> Option<&'static str> {
    FILES.iter().find(|(f, _)| *f == name).map(|(_, text)| *text)
}

/// The complete WGSL module of a kernel: its spec's snippets, then its file, each after a line
/// naming it. A file the spec names that is not in [`FILES`] (a test checks that none is missing)
/// leaves only its naming line, so that the module fails to compile with a clear error.
pub fn source(kernel: Kernel) -> String {
    let spec = kernel.spec();
    let mut out = String::new();
    for name in spec.snippets {
        out.push_str(&format!("// ---- {name}\n{}\n", file(name).unwrap_or_default()));
    }
    out.push_str(&format!("// ---- {}\n{}", spec.file, file(spec.file).unwrap_or_default()));
    out
}
