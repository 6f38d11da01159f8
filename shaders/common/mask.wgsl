// Whether query `t` of head `u`, batch `b` may attend to key `s`: the AND of every mask part
// (gqa_core::params::mask_flags). Needs a binding named `masks`: bits packed 32 to a u32 word,
// bit i at word i / 32, bit i % 32; 1 = attend.
// The masking stage also caps each scaled logit first (the attention extensions' soft cap
// `cap * tanh(x / cap)`, params.soft_cap; 0: none): every attention kernel calls this on its scaled
// logits before they meet the masks.
fn soft_capped(x: f32) -> f32 {
    if params.soft_cap == 0.0 {
        return x;
    }
    // tanh is 1 to f32 precision beyond 20 (and some tanh(x) = (e^x - e^-x) / (e^x + e^-x) overflow).
    return params.soft_cap * tanh(clamp(x / params.soft_cap, -20.0, 20.0));
}

fn mask_bit(i: u32) -> bool {
    return ((masks[i >> 5u] >> (i & 31u)) & 1u) != 0u;
}

fn visible(b: u32, u: u32, t: u32, s: u32) -> bool {
    let f = params.mask_flags;
    if (f & 1u) != 0u {
        let at = params.am_offset + b * params.am_stride_b + u * params.am_stride_h
            + t * params.am_stride_t + s * params.am_stride_s;
        if !mask_bit(at) {
            return false;
        }
    }
    if (f & 2u) != 0u && !mask_bit(params.qm_offset + b * params.t_len + t) {
        return false;
    }
    if (f & 4u) != 0u && !mask_bit(params.vm_offset + b * params.s_len + s) {
        return false;
    }
    if (f & 8u) != 0u && !mask_bit(params.km_offset + b * params.s_len + s) {
        return false;
    }
    let pos = i32(t) + params.causal_shift;
    if (f & 16u) != 0u && i32(s) > pos {
        return false;
    }
    if (f & 32u) != 0u && (pos - i32(s) > i32(params.window_behind) || i32(s) - pos > i32(params.window_ahead)) {
        return false;
    }
    return true;
}
