//! The WGSL sources, composed from `shaders/`: each kernel is its own file, prefixed by the shared
//! snippets it uses (the params struct, the mask evaluation, the dropout hash) from a declared table.
//! The f16 kernels ([`Kernel::needs_shader_f16`]) start with `common/f16.wgsl` (`enable f16;`, which
//! must precede every declaration) and share their bodies through snippets too: the kernel file
//! declares the bindings whose storage type differs and the entry point.

use gqa_core::Kernel;

/// The shared snippet files, by name, in the order they are prepended.
pub const COMMON: [(&str, &str); 6] = [
    ("common/f16.wgsl", include_str!("../../../shaders/common/f16.wgsl")),
    ("common/params.wgsl", include_str!("../../../shaders/common/params.wgsl")),
    ("common/mask.wgsl", include_str!("../../../shaders/common/mask.wgsl")),
    ("common/dropout.wgsl", include_str!("../../../shaders/common/dropout.wgsl")),
    ("common/matmul_rb_f16.wgsl", include_str!("../../../shaders/common/matmul_rb_f16.wgsl")),
    ("common/attention_f16.wgsl", include_str!("../../../shaders/common/attention_f16.wgsl")),
];

/// The kernel file's own text.
pub fn kernel_file(kernel: Kernel) -> &'static str {
    match kernel {
        Kernel::MatmulBias => include_str!("../../../shaders/matmul_bias.wgsl"),
        Kernel::MatmulBiasRb => include_str!("../../../shaders/matmul_bias_rb.wgsl"),
        Kernel::MatmulBiasRb16 => include_str!("../../../shaders/matmul_bias_rb16.wgsl"),
        Kernel::MatmulBiasRows4 => include_str!("../../../shaders/matmul_bias_rows4.wgsl"),
        Kernel::QkGrouped => include_str!("../../../shaders/qk_grouped.wgsl"),
        Kernel::SoftmaxMasked => include_str!("../../../shaders/softmax_masked.wgsl"),
        Kernel::SoftmaxMaskedSubgroup => include_str!("../../../shaders/softmax_masked_subgroup.wgsl"),
        Kernel::PvGrouped => include_str!("../../../shaders/pv_grouped.wgsl"),
        Kernel::AttentionFused => include_str!("../../../shaders/attention_fused.wgsl"),
        Kernel::AttentionReduce => include_str!("../../../shaders/attention_reduce.wgsl"),
        Kernel::MatmulBiasF16 => include_str!("../../../shaders/matmul_bias_f16.wgsl"),
        Kernel::MatmulBiasF16ToF32 => include_str!("../../../shaders/matmul_bias_f16_to_f32.wgsl"),
        Kernel::QkGroupedF16 => include_str!("../../../shaders/qk_grouped_f16.wgsl"),
        Kernel::PvGroupedF16 => include_str!("../../../shaders/pv_grouped_f16.wgsl"),
        Kernel::AttentionFusedF16 => include_str!("../../../shaders/attention_fused_f16.wgsl"),
        Kernel::AttentionSplitF16 => include_str!("../../../shaders/attention_split_f16.wgsl"),
        Kernel::AttentionReduceF16 => include_str!("../../../shaders/attention_reduce_f16.wgsl"),
        Kernel::AttentionDecode => include_str!("../../../shaders/attention_decode.wgsl"),
    }
}

/// The shared snippets a kernel needs.
pub fn snippets(kernel: Kernel) -> &'static [&'static str] {
    match kernel {
        Kernel::MatmulBias
        | Kernel::MatmulBiasRb
        | Kernel::MatmulBiasRb16
        | Kernel::MatmulBiasRows4
        | Kernel::QkGrouped
        | Kernel::AttentionReduce => &["common/params.wgsl"],
        Kernel::SoftmaxMasked | Kernel::SoftmaxMaskedSubgroup | Kernel::AttentionFused | Kernel::AttentionDecode => {
            &["common/params.wgsl", "common/mask.wgsl"]
        }
        Kernel::PvGrouped => &["common/params.wgsl", "common/dropout.wgsl"],
        Kernel::MatmulBiasF16 | Kernel::MatmulBiasF16ToF32 => {
            &["common/f16.wgsl", "common/params.wgsl", "common/matmul_rb_f16.wgsl"]
        }
        Kernel::QkGroupedF16 | Kernel::AttentionReduceF16 => &["common/f16.wgsl", "common/params.wgsl"],
        Kernel::PvGroupedF16 => &["common/f16.wgsl", "common/params.wgsl", "common/dropout.wgsl"],
        Kernel::AttentionFusedF16 | Kernel::AttentionSplitF16 => {
            &["common/f16.wgsl", "common/params.wgsl", "common/mask.wgsl", "common/attention_f16.wgsl"]
        }
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
