// The fused attention's output binding holds flash-decoding partial states, always f32.
alias Out = f32;
