// The attention extensions' logit rules shared by the kernels that apply them: the soft cap
// `cap * tanh(x / cap)` on a scaled score (params.soft_cap; 0: none).
fn soft_capped(x: f32) -> f32 {
    if params.soft_cap == 0.0 {
        return x;
    }
    // tanh is 1 to f32 precision beyond 20 (and some tanh(x) = (e^x - e^-x) / (e^x + e^-x) overflow).
    return params.soft_cap * tanh(clamp(x / params.soft_cap, -20.0, 20.0));
}
