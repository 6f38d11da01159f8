//! Introspection before running (memory by role from the plan, adapter, backend and kernel
//! variants), logging through the `log` crate, and no printing from the library crates.

mod api_common;
mod common;

use std::sync::Mutex;

use api_common::{Small, fresh_contexts};
use common::{adapter_name, adapters};
use gqa::core::{BufferId, Limits};
use gqa::gpu::{GqaLayer, MemoryReport};

#[test]
fn describe_call_names_the_adapter_variants_and_memory() {
    let case = Small::new(81);
    for ctx in adapters() {
        let name = adapter_name(ctx);
        let layer = GqaLayer::new(ctx, &case.config, &case.weights).unwrap();
        let (q, v, k) = (case.query.shape(), case.value.shape(), Some(case.key.shape()));
        let d = layer.describe_call(q, v, k, &case.options).unwrap();
        let plan = layer.plan(q, v, k, &case.options).unwrap();
        assert_eq!(d.backend, ctx.adapter_info().backend, "{name}");
        assert_eq!(d.device_type, ctx.adapter_info().device_type, "{name}");
        assert_eq!(d.tuning, ctx.tuning(), "{name}: the variants chosen for the adapter");
        assert_eq!(d.adapter, ctx.describe(), "{name}");
        assert_eq!(d.dispatches.len(), plan.passes().count(), "{name}");
        // The query projection comes first (after the packing of its input, under a textured tuning).
        let first = d.dispatches.iter().find(|(label, ..)| *label != "pack_query").map(|(label, ..)| *label);
        assert_eq!(first, Some("project_query"), "{name}");
        assert_eq!(d.flops, plan.flops(), "{name}");
        let m = d.memory;
        assert_eq!(m, layer.memory(q, v, k, &case.options).unwrap(), "{name}");
        assert_eq!(m.weights, layer.weight_bytes(), "{name}");
        assert_eq!(m.inputs, (q.iter().product::<usize>() + v.iter().product::<usize>() + 2 * 9 * 9) as u64 * 4);
        assert_eq!(m.outputs, (2 * 6 * 12 + 2 * 4 * 6 * 9) * 4, "{name}: output and scores");
        assert_eq!(m.masks, 4, "{name}: no mask tensor: one word");
        assert_eq!(m.staging, m.outputs, "{name}");
        assert_eq!(m.gpu_call(), m.masks + m.params + m.scratch + m.textures, "{name}");
        let text = d.to_string();
        assert!(text.contains(&ctx.adapter_info().name) && text.contains("dispatches"), "{text}");
        eprintln!("[{name}]\n{text}");
        // Bad shapes are errors, not panics.
        assert!(layer.memory(&[2, 6], v, k, &case.options).is_err());
    }
}

#[test]
fn memory_reports_need_no_gpu() {
    let case = Small::new(82);
    let problem =
        gqa::core::Problem::new(&case.config, case.query.shape(), case.value.shape(), None, &Default::default())
            .unwrap();
    let plan = gqa::core::Plan::new(&problem, &Limits::webgpu_default()).unwrap();
    let m = MemoryReport::of(&plan, 256);
    assert_eq!(m.params, 256 * plan.passes().count() as u64);
    assert_eq!(m.scratch, plan.bytes_of(gqa::core::BufferRole::Scratch));
    assert_eq!(m.masks, plan.buffer(BufferId::Masks).unwrap().bytes);
}

/// Every log record of this test binary.
static RECORDS: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        RECORDS.lock().unwrap().push((record.level(), record.args().to_string()));
    }

    fn flush(&self) {}
}

#[test]
fn the_library_logs_its_choices_and_calls() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Debug);
    let case = Small::new(83);
    let ctx = fresh_contexts().remove(0);
    let layer = GqaLayer::new(&ctx, &case.config, &case.weights).unwrap();
    layer.forward(&case.query, &case.value, Some(&case.key), &case.options).unwrap();
    let records = RECORDS.lock().unwrap().clone();
    let has = |level: log::Level, text: &str| records.iter().any(|(l, m)| *l == level && m.contains(text));
    let adapter = &ctx.adapter_info().name;
    assert!(has(log::Level::Info, &format!("gqa: using {adapter}")), "the adapter chosen: {records:#?}");
    assert!(has(log::Level::Info, "kernel variants"), "the variants: {records:#?}");
    assert!(has(log::Level::Debug, "gqa forward: B=2 T=6 S=9"), "the plan: {records:#?}");
    assert!(has(log::Level::Debug, "results read back after"), "the timings: {records:#?}");
}

#[test]
fn library_crates_never_print() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for krate in ["gqa-core", "gqa-ref", "gqa-wgpu", "gqa-io"] {
        let mut dirs = vec![root.join("crates").join(krate).join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (n, line) in text.lines().enumerate() {
                        let code = line.trim_start();
                        let printing =
                            ["println!", "eprintln!", "print!", "eprint!", "dbg!"].iter().any(|m| code.contains(m));
                        if printing && !code.starts_with("//") {
                            found.push(format!("{}:{}: {}", path.display(), n + 1, code));
                        }
                    }
                }
            }
        }
    }
    assert!(found.is_empty(), "library code prints (use the log crate): {found:#?}");
}
