//! Problems split into chunks (forced by small plan limits on small data) give the oracle's results:
//! batch chunks moved by copies, attention split over (b, u) rows and over queries, scores gathered.

mod common;

use common::{Case, adapter_name, adapters};
use gqa::core::{CausalAlignment, Chunking, GqaConfig, Limits, Mask};

fn limits(binding: u64, workgroups: u32) -> Limits {
    Limits {
        max_storage_buffer_binding_size: binding,
        max_compute_workgroups_per_dimension: workgroups,
        ..Limits::default()
    }
}

fn case(name: &str) -> Case {
    let mut cfg = GqaConfig::new(8, 4, 2);
    cfg.use_gate = true;
    cfg.sliding_window = Some(30);
    cfg.dropout = 0.2;
    let mut c = Case::new(name, cfg);
    (c.batch, c.t, c.s, c.dq, c.dv, c.dk) = (3, 70, 90, 12, 10, Some(9));
    c.options.return_attention_scores = true;
    c.options.training = true;
    c.options.use_causal_mask = true;
    c.options.causal_alignment = CausalAlignment::BottomRight;
    c.options.value_mask = Some(Mask::new(vec![3, 90], (0..270).map(|i| i % 7 != 3).collect()).unwrap());
    c.options.attention_mask =
        Some(Mask::new(vec![3, 70, 90], (0..3 * 70 * 90).map(|i| i % 11 != 0).collect()).unwrap());
    c
}

#[test]
fn chunked_plans_match_the_oracle() {
    // (binding bytes, workgroups per dim, expected chunking)
    let settings = [
        // Projected queries of one batch element (70 x 32 floats = 8960 bytes) fit, two do not;
        // 90-key score rows of 360 bytes: 25 queries per attention chunk.
        (9024, 65_535, Chunking { batch_per_chunk: 1, rows_per_chunk: 1, queries_per_chunk: 25 }),
        // Two batch elements per chunk (the last chunk has one); 49 queries per attention chunk.
        (17_920, 65_535, Chunking { batch_per_chunk: 2, rows_per_chunk: 1, queries_per_chunk: 49 }),
        // The whole batch; two whole (b, u) rows of 70 x 90 scores per attention chunk.
        (50_400, 65_535, Chunking { batch_per_chunk: 3, rows_per_chunk: 2, queries_per_chunk: 70 }),
        // No binding pressure, but at most 3 workgroups per dimension: 2 x 90 rows of keys need 3
        // projection workgroups; softmax rows along x split the queries 3 at a time.
        (128 << 20, 3, Chunking { batch_per_chunk: 2, rows_per_chunk: 1, queries_per_chunk: 3 }),
    ];
    for (binding, wg, expected) in settings {
        for ctx in adapters() {
            let small = ctx.clone().with_plan_limits(limits(binding, wg));
            let c = case(&format!("chunked binding={binding} workgroups={wg}"));
            let plan = c.plan(&small);
            assert_eq!(plan.chunking, expected, "{}", c.name);
            let diff = c.check(&small, 3);
            eprintln!(
                "[{}] {}: {:?}, {} steps, max |diff| {diff:.2e}",
                adapter_name(ctx),
                c.name,
                plan.chunking,
                plan.steps.len()
            );
        }
    }
}
