// The storage type of the projected tensors (Q, K, V, gate, attention output) in the f32 kernels that
// share their file with an f16 twin; common/f16.wgsl declares the same alias as f16.
alias Elem = f32;
