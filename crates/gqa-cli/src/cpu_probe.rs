//! The CPU's FMA peak, measured: every thread of rayon's pool (the CPU layer's threads) runs a loop
//! of f32 multiply-adds on independent accumulators (more than the FMA units' latency times their
//! count, so that the loop is bound by their throughput, not by a dependency chain), vectorized by
//! the compiler for the widest instruction set the machine has (AVX-512 or AVX2 with FMA, detected
//! at run time on x86-64; the build's own elsewhere). `gqa bench --backend cpu` reports each row's
//! GFLOP/s as a share of it.

use std::hint::black_box;
use std::time::Instant;

/// Rounds per thread in one measurement: 2^21 rounds of 256 AVX-512 lanes (1.1 GFLOP) take about
/// 10 ms on a core that does 32 f32 FLOPs a cycle at 3.5 GHz; the AVX2 loop does 96 lanes a round.
const ITERATIONS: usize = 1 << 21;

/// `iterations` rounds of `acc = acc * x + y` on `N` independent accumulators; returns their sum
/// (so that nothing is optimised away). Each round is N multiply-adds: 2N FLOPs.
#[inline(always)]
fn fma_loop<const N: usize>(iterations: usize, x: f32, y: f32) -> f32 {
    let mut acc = [0.0f32; N];
    for (i, a) in acc.iter_mut().enumerate() {
        *a = i as f32 * 1e-3;
    }
    for _ in 0..iterations {
        for a in &mut acc {
            *a = a.mul_add(x, y);
        }
    }
    acc.iter().sum()
}

/// The loop for AVX-512: 16 zmm accumulators.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn fma_avx512(iterations: usize, x: f32, y: f32) -> f32 {
    fma_loop::<256>(iterations, x, y)
}

/// The loop for AVX2 with FMA: 12 ymm accumulators (of 16 registers).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_avx2(iterations: usize, x: f32, y: f32) -> f32 {
    fma_loop::<96>(iterations, x, y)
}

/// One thread's loop, with the widest instruction set this CPU has; returns (result, FLOPs).
fn one_thread(iterations: usize, x: f32, y: f32) -> (f32, f64) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has the features the function is compiled for (checked just above).
            return (unsafe { fma_avx512(iterations, x, y) }, 2.0 * 256.0 * iterations as f64);
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: as above.
            return (unsafe { fma_avx2(iterations, x, y) }, 2.0 * 96.0 * iterations as f64);
        }
        // Without hardware FMA, `mul_add` is a library call: a multiply and an add instead.
        let r = mul_add_loop::<48>(iterations, x, y);
        (r, 2.0 * 48.0 * iterations as f64)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // AArch64 and others: FMA is part of the baseline instruction set.
        (fma_loop::<64>(iterations, x, y), 2.0 * 64.0 * iterations as f64)
    }
}

/// [`fma_loop`] as a separate multiply and add (for x86-64 CPUs without FMA).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn mul_add_loop<const N: usize>(iterations: usize, x: f32, y: f32) -> f32 {
    let mut acc = [0.0f32; N];
    for (i, a) in acc.iter_mut().enumerate() {
        *a = i as f32 * 1e-3;
    }
    for _ in 0..iterations {
        for a in &mut acc {
            *a = *a * x + y;
        }
    }
    acc.iter().sum()
}

/// The instruction set the probe runs with on this CPU (`avx512f+fma`, `avx2+fma`, ...).
pub fn isa() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma") {
            return "avx512f+fma";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return "avx2+fma";
        }
        "sse2 (no fma)"
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH
    }
}

/// One measurement: the loop on every thread of rayon's pool at once, GFLOP/s over all of them.
fn measure_once(iterations: usize) -> f64 {
    // Values that keep the accumulators finite and bounded (|acc| stays below 2), read through
    // black_box so that the loop cannot be folded.
    let (x, y) = (black_box(0.5f32), black_box(0.25f32));
    let started = Instant::now();
    let per_thread = rayon::broadcast(|_| {
        let (r, flops) = one_thread(iterations, x, y);
        black_box(r);
        flops
    });
    let took = started.elapsed().as_secs_f64();
    per_thread.iter().sum::<f64>() / took / 1e9
}

/// The FMA peak of rayon's pool in GFLOP/s: the median of `rounds` measurements (after one
/// untimed round that wakes the threads and the clocks).
pub fn fma_peak_gflops(rounds: usize) -> f64 {
    measure_once(ITERATIONS / 4);
    let mut all: Vec<f64> = (0..rounds.max(1)).map(|_| measure_once(ITERATIONS)).collect();
    all.sort_by(f64::total_cmp);
    all[all.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_computes_what_it_says() {
        // acc <- acc * 0.5 + 0.25 converges to 0.5 from any start.
        let (r, flops) = one_thread(64, 0.5, 0.25);
        let lanes = flops / (2.0 * 64.0);
        assert!(lanes >= 48.0 && (f64::from(r) / lanes - 0.5).abs() < 1e-3, "{r} over {lanes} lanes");
        assert!(fma_peak_gflops(1) > 0.0 && !isa().is_empty());
    }
}
