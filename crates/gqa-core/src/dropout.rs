//! The counter-based dropout decision shared by the oracle and the GPU (`shaders/common/dropout.wgsl`).
//!
//! `keep(seed, b, u, t, s)` hashes the element's coordinates with a stateless 32-bit mixer, so any
//! element's decision can be computed independently and identically in Rust and WGSL.

/// One round of the `lowbias32` integer mixer (Chris Wellons' hash-prospector constants).
pub const fn mix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// The 32-bit hash of a probability element `(b, u, t, s)` under a 64-bit seed.
pub const fn element_hash(seed: u64, b: u32, u: u32, t: u32, s: u32) -> u32 {
    let mut h = mix32(seed as u32 ^ 0x9e37_79b9);
    h = mix32(h ^ (seed >> 32) as u32);
    h = mix32(h ^ b);
    h = mix32(h ^ u);
    h = mix32(h ^ t);
    mix32(h ^ s)
}

/// A uniform number in [0, 1) from the top 24 bits of the hash; exact in f32.
pub fn element_uniform(seed: u64, b: u32, u: u32, t: u32, s: u32) -> f32 {
    (element_hash(seed, b, u, t, s) >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Whether element `(b, u, t, s)` is kept by dropout with `rate` (compared in f32, as on the GPU).
pub fn keep(seed: u64, rate: f32, b: u32, u: u32, t: u32, s: u32) -> bool {
    element_uniform(seed, b, u, t, s) >= rate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_spreads() {
        assert_eq!(element_hash(1, 0, 0, 0, 0), element_hash(1, 0, 0, 0, 0));
        assert_ne!(element_hash(1, 0, 0, 0, 0), element_hash(2, 0, 0, 0, 0));
        assert_ne!(element_hash(1, 0, 0, 0, 1), element_hash(1, 0, 0, 1, 0));
        let n = 100_000u32;
        let kept = (0..n).filter(|&s| keep(7, 0.3, 0, 1, 2, s)).count() as f64 / n as f64;
        assert!((kept - 0.7).abs() < 0.01, "{kept}");
    }
}
