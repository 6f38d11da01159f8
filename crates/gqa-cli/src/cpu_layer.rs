//! `--backend cpu`: what the reports say about the CPU layer (`gqa_cpu::CpuLayer`, f32, on rayon's
//! pool), and the FLOPs of one of its calls.

use gqa_core::Problem;
use serde_json::{Value, json};

/// The `--backend` value that runs the CPU layer.
pub const FLAG: &str = "cpu";

/// The threads the CPU layer runs on (rayon's global pool: `RAYON_NUM_THREADS`, else every core).
pub fn threads() -> usize {
    rayon::current_num_threads()
}

/// One line naming the CPU layer: `CPU layer (gqa-cpu, f32, 8 threads, avx512f)`.
pub fn describe() -> String {
    let n = threads();
    format!("CPU layer (gqa-cpu, f32, {n} thread{}, {})", if n == 1 { "" } else { "s" }, gqa_cpu::vector_isa())
}

/// The CPU layer where a report has a GPU adapter's description (`adapter_info`): its name,
/// `backend: cpu`, the precision and the thread count.
pub fn info() -> Value {
    json!({
        "name": "gqa-cpu",
        "backend": FLAG,
        "device_type": "Cpu",
        "precision": "f32",
        "threads": threads(),
        "arch": std::env::consts::ARCH,
        "vector_isa": gqa_cpu::vector_isa(),
    })
}

/// Floating-point operations of one call (multiply-add = 2), counted as the GPU plan counts them:
/// the projections of the query rows and of `projected_keys` key/value rows per sequence, the gate,
/// the output projection and the full T x S attention.
pub fn flops(p: &Problem, projected_keys: usize) -> f64 {
    let (b, t, s) = (p.batch as f64, p.target_len as f64, p.source_len as f64);
    let heads = (p.num_query_heads * p.head_dim) as f64;
    let kv = (p.num_kv_heads * p.head_dim) as f64;
    let dq = p.query_dim as f64;
    let gate = if p.use_gate { 2.0 * b * t * dq * heads } else { 0.0 };
    let projections = 2.0 * b * t * dq * heads
        + 2.0 * b * projected_keys as f64 * (p.key_dim + p.value_dim) as f64 * kv
        + 2.0 * b * t * heads * dq
        + gate;
    projections + 4.0 * b * t * s * heads
}

#[cfg(test)]
mod tests {
    use gqa_core::{CallOptions, GqaConfig, Limits, Plan};

    use super::*;

    #[test]
    fn flops_match_the_gpu_plans_count() {
        let mut config = GqaConfig::new(8, 4, 2);
        config.use_gate = true;
        let options = CallOptions::default();
        let p = Problem::new(&config, &[2, 5, 16], &[2, 7, 12], Some(&[2, 7, 20]), &options).unwrap();
        let plan = Plan::new(&p, &Limits::webgpu_default()).unwrap();
        assert_eq!(flops(&p, 7), plan.flops() as f64);
        assert!(describe().starts_with("CPU layer (gqa-cpu, f32, ") && info()["threads"].as_u64().unwrap() >= 1);
    }
}
