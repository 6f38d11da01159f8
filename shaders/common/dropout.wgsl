// Counter-based dropout: the twin of gqa_core::dropout (same mixer, same order, same f32 compare).
fn mix32(x_in: u32) -> u32 {
    var x = x_in;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

fn dropout_keep(b: u32, u: u32, t: u32, s: u32) -> bool {
    var h = mix32(params.seed_lo ^ 0x9e3779b9u);
    h = mix32(h ^ params.seed_hi);
    h = mix32(h ^ b);
    h = mix32(h ^ u);
    h = mix32(h ^ t);
    h = mix32(h ^ s);
    return f32(h >> 8u) * (1.0 / 16777216.0) >= params.dropout_rate;
}
