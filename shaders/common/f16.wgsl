// f16 storage (gqa_core::Precision::F16, Keras' mixed_float16): first in every f16 kernel's module,
// since WGSL directives precede all declarations. Needs the device feature SHADER_F16.
// Convention of every f16 kernel: loads convert to f32 at once, all arithmetic is f32, stores round
// to f16 (round to nearest even).
enable f16;

// The storage type of the projected tensors in the kernels shared with f32 (common/store_f32.wgsl).
alias Elem = f16;
