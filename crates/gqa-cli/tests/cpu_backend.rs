//! `--backend cpu` end to end: `gqa run` on the CPU layer against the oracle and Keras, `gqa demo`
//! and `gqa bench` (whole calls and decode steps) on the CPU layer alone, and the CPU layer's
//! columns beside a GPU's in `gqa bench`.

mod common;

use common::{assert_close, fixture, gqa, json_of, s, scratch, tensor, text};
use gqa_io::TensorFile;
use serde_json::Value;

/// The small bench shape: B=1, Nq=4, Nkv=2, H=8, Dq=16.
const SMALL: [&str; 8] = ["--query-dim", "16", "--head-dim", "8", "--query-heads", "4", "--kv-heads", "2"];

/// `gqa run --backend cpu` writes what the oracle writes (and what Keras computed), scores
/// included, and names the CPU layer as its device.
#[test]
fn run_on_the_cpu_layer_matches_the_oracle() {
    let dir = scratch("run");
    let cases = [
        ("keras_model.keras", "keras_model.safetensors", Some("attn_in_model")),
        ("causal_t_gt_s.safetensors", "causal_t_gt_s.safetensors", None),
    ];
    for (layer, inputs, name) in cases {
        let (layer, inputs) = (fixture(layer), fixture(inputs));
        let mut base = vec!["run", "--layer", s(&layer), "--inputs", s(&inputs), "--scores"];
        if let Some(n) = name {
            base.extend(["--layer-name", n]);
        }
        let (cpu, oracle) = (dir.join("cpu.safetensors"), dir.join("oracle.safetensors"));
        let res = gqa(&[&base[..], &["--output", s(&cpu), "--backend", "cpu"]].concat());
        assert_eq!(res.status.code(), Some(0));
        let stdout = text(&res.stdout);
        assert!(stdout.contains("device: CPU layer (gqa-cpu, f32, ") && stdout.contains("time: forward"), "{stdout}");
        assert!(gqa(&[&base[..], &["--output", s(&oracle), "--reference"]].concat()).status.success());
        for t in ["output", "scores"] {
            assert_close(t, &tensor(&cpu, t), &tensor(&oracle, t));
        }
        assert_close("keras", &tensor(&cpu, "output"), &tensor(&inputs, "output"));
        assert!(TensorFile::read(&cpu).unwrap().metadata["device"].starts_with("CPU layer"));

        let doc = json_of(&[&base[..], &["--output", s(&cpu), "--backend", "cpu", "--json"]].concat());
        assert_eq!(doc["adapter_info"]["backend"], "cpu", "{doc}");
        assert_eq!(doc["precision"], "f32", "{doc}");
        assert!(doc["threads"].as_u64().unwrap() >= 1 && doc["forward_ms"].as_f64().unwrap() >= 0.0, "{doc}");
    }
}

/// `gqa demo --backend cpu`: the same report, every output checked; GPU-only flags are refused.
#[test]
fn demo_on_the_cpu_layer_checks_every_output() {
    let small = [
        "demo",
        "--backend",
        "cpu",
        "--batch",
        "1",
        "--target-len",
        "8",
        "--source-len",
        "12",
        "--query-heads",
        "4",
        "--kv-heads",
        "2",
        "--head-dim",
        "8",
        "--query-dim",
        "16",
        "--value-dim",
        "16",
        "--runs",
        "2",
    ];
    let out = gqa(&[&small[..], &["--scores"]].concat());
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("device    CPU layer (gqa-cpu, f32, "), "{stdout}");
    assert!(stdout.contains("checked: 2 of 2 outputs PASS"), "{stdout}");
    assert!(stdout.contains("oracle: CPU, f64, one thread"), "{stdout}");
    assert!(stdout.contains(": PASS (all 3 outputs: the warm-up, 2 timed run(s))"), "{stdout}");

    let doc = json_of(&[&small[..], &["--json"]].concat());
    assert_eq!((doc["check"].as_str(), doc["checked"].as_bool()), (Some("pass"), Some(true)), "{doc}");
    assert_eq!(doc["adapter_info"]["backend"], "cpu", "{doc}");
    assert!(doc["cpu_ms"].as_f64().unwrap() > 0.0 && doc["oracle_ms"].as_f64().unwrap() > 0.0, "{doc}");

    let out = gqa(&[&small[..], &["--no-oracle"]].concat());
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("UNCHECKED") && !text(&out.stdout).contains("PASS"));

    for extra in [&["--profile"][..], &["--roofline"], &["--f16"], &["--tuning", "gpu"], &["--list-adapters"]] {
        let out = gqa(&[&small[..], extra].concat());
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(extra[0]) && stderr.contains("not with --backend cpu"), "{stderr}");
    }
    let out = gqa(&["demo", "--backend", "cpu,vulkan"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `gqa bench --backend cpu`: the sweep on the CPU layer alone, each row checked, with its share of
/// the measured FMA peak; the CSV names the same figures.
#[test]
fn bench_on_the_cpu_layer_alone() {
    let dir = scratch("bench");
    let (csv, svg) = (dir.join("b.csv"), dir.join("b.svg"));
    let args = [&["bench", "--backend", "cpu", "--seq", "16,32", "--runs", "2", "--json"][..], &SMALL].concat();
    let doc = json_of(&[&args[..], &["--csv", s(&csv), "--svg", s(&svg)]].concat());
    assert_eq!(doc["checked"], true, "{doc}");
    assert_eq!(doc["adapter_info"]["backend"], "cpu", "{doc}");
    let peak = doc["fma_peak_gflops"].as_f64().unwrap();
    assert!(peak > 0.0, "{doc}");
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.iter().map(|r| r["s"].as_u64().unwrap()).collect::<Vec<_>>(), [16, 32]);
    for row in rows {
        assert_eq!((&row["checked"], &row["check"]), (&Value::Bool(true), &Value::from("pass")), "{row}");
        // The warm-up and the two timed calls.
        assert_eq!(row["checked_outputs"], 3, "{row}");
        assert!(row["ms"].as_f64().unwrap() > 0.0 && row["ms"] == row["cpu_ms"], "{row}");
        assert!(row["oracle_ms"].as_f64().unwrap() > 0.0, "{row}");
        let share = row["peak_share"].as_f64().unwrap();
        let want = 100.0 * row["cpu_gflops"].as_f64().unwrap() / peak;
        assert!(share > 0.0 && (share - want).abs() <= 1e-9 * want, "{row}");
        assert!(row.get("gpu_ms").is_none() && row.get("speedup_vs_cpu").is_none(), "{row}");
    }
    let file = std::fs::read_to_string(&csv).unwrap();
    let header = file.lines().find(|l| !l.starts_with('#')).unwrap();
    assert_eq!(
        header,
        "seq,gflop,cpu_ms,cpu_gflops,peak_share,oracle_ms,speedup_vs_oracle,check,checked,max_abs_err,out_of_tolerance"
    );
    assert!(file.lines().any(|l| l.starts_with("# adapter: CPU layer")), "{file}");
    assert!(std::fs::read_to_string(&svg).unwrap().contains("CPU layer"));

    // The table: the FMA peak above it and each row's share.
    let out = gqa(&[&["bench", "--backend", "cpu", "--seq", "16", "--runs", "1"][..], &SMALL].concat());
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("FMA peak ") && stdout.contains("% FMA peak"), "{stdout}");
    assert!(stdout.lines().last().unwrap().contains(" pass "), "{stdout}");
    // GPU-only flags.
    let out = gqa(&[&["bench", "--backend", "cpu", "--seq", "16", "--tuning", "gpu"][..], &SMALL].concat());
    assert_eq!(out.status.code(), Some(2));
}

/// `gqa bench` on a GPU times the CPU layer beside it: its ms, the GPU's speed-up over it and the
/// oracle's time in its own column, every output of both checked.
#[test]
fn bench_on_a_gpu_times_the_cpu_layer_beside_it() {
    let doc = json_of(&[&["bench", "--seq", "16,32", "--runs", "2", "--json"][..], &SMALL].concat());
    assert_eq!(doc["checked"], true, "{doc}");
    for row in doc["rows"].as_array().unwrap() {
        for key in ["s", "ms", "gpu_ms", "cpu_ms", "oracle_ms", "speedup_vs_cpu"] {
            assert!(row[key].as_f64().unwrap() > 0.0, "{key}: {row}");
        }
        let (gpu, cpu) = (row["gpu_ms"].as_f64().unwrap(), row["cpu_ms"].as_f64().unwrap());
        assert!((row["speedup_vs_cpu"].as_f64().unwrap() - cpu / gpu).abs() <= 1e-9 * cpu / gpu, "{row}");
        assert_eq!(row["ms"], row["gpu_ms"], "{row}");
        // The warm-up and two timed calls, on the GPU and on the CPU layer.
        assert_eq!((&row["checked"], &row["checked_outputs"]), (&Value::Bool(true), &Value::from(6)), "{row}");
    }
    let out = gqa(&[&["bench", "--seq", "16", "--runs", "1"][..], &SMALL].concat());
    let stdout = text(&out.stdout);
    let header = stdout.lines().find(|l| l.trim_start().starts_with("T=S")).expect("a table");
    assert!(header.contains("CPU ms") && header.contains("vs CPU") && header.contains("oracle ms"), "{header}");
}

/// `gqa bench --decode` on the CPU layer alone, and beside a GPU: every step checked against the
/// oracle's cache.
#[test]
fn bench_decode_on_the_cpu_layer() {
    let doc = json_of(
        &[&["bench", "--decode", "--backend", "cpu", "--seq", "64,100", "--runs", "2", "--json"][..], &SMALL].concat(),
    );
    assert_eq!(doc["checked"], true, "{doc}");
    assert!(doc["fit"]["cpu"]["r2"].is_number(), "{doc}");
    for row in doc["rows"].as_array().unwrap() {
        assert_eq!((&row["check"], &row["checked_outputs"]), (&Value::from("pass"), &Value::from(3)), "{row}");
        assert!(row["ms"].as_f64().unwrap() > 0.0 && row["ms"] == row["cpu_ms"], "{row}");
        assert!(row["s"].as_u64().unwrap() >= 64 && row.get("gpu_ms").is_none(), "{row}");
    }
    let doc = json_of(&[&["bench", "--decode", "--seq", "64", "--runs", "1", "--json"][..], &SMALL].concat());
    let row = &doc["rows"][0];
    assert!(row["speedup_vs_cpu"].as_f64().unwrap() > 0.0 && row["cpu_ms"].as_f64().unwrap() > 0.0, "{row}");
    // The GPU's warm-up, attention timer and timed step; the CPU layer's warm-up and timed step.
    assert_eq!((&row["check"], &row["checked_outputs"]), (&Value::from("pass"), &Value::from(5)), "{row}");
}

/// Commands that need a GPU adapter refuse `--backend cpu` as a flag error.
#[test]
fn gpu_commands_refuse_the_cpu_backend() {
    let out = gqa(&["kernels", "--backend", "cpu"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--backend cpu runs the CPU layer"), "{}", text(&out.stderr));
}
