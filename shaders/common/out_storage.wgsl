// The fused attention's output binding holds the attention output, stored like the projected
// tensors (`Elem`).
alias Out = Elem;
