//! What every `gqa` subcommand promises: the documented examples (README, `--help`) run at small
//! shapes and exit 0; `--json` parses and carries the report's metadata; one exit-status table and
//! one error format (`error: gqa <command>: <operation>: <problem>`, then `  help: ...`).

mod common;

use std::process::Output;

use common::{fixture, gqa, json_of, s, scratch, text};
use serde_json::Value;

/// A date as `YYYY-MM-DDTHH:MM:SSZ`.
fn assert_utc_date(v: &Value) {
    let d = v.as_str().unwrap_or_else(|| panic!("no date: {v}"));
    assert_eq!(d.len(), 20, "{d}");
    assert!(d.starts_with("20") && d.ends_with('Z') && d.as_bytes()[10] == b'T', "{d}");
}

/// The metadata every benchmark report carries.
fn assert_report_metadata(doc: &Value) {
    assert_utc_date(&doc["date"]);
    assert!(doc["adapter"].as_str().is_some_and(|a| !a.is_empty()), "{doc}");
    assert!(doc["adapter_info"]["driver"].is_string() && doc["adapter_info"]["backend"].is_string(), "{doc}");
    assert!(doc["shape"].is_object() && doc["options"].is_object(), "{doc}");
    assert!(doc["checked"].is_boolean(), "{doc}");
}

/// An error's exit status and its first stderr line's prefix, and a `help:` line.
fn assert_error(out: &Output, code: i32, prefix: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.starts_with(prefix), "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("  help: ")), "{stderr}");
}

const SMALL_DEMO: [&str; 18] = [
    "--batch",
    "1",
    "--target-len",
    "8",
    "--source-len",
    "8",
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

const SMALL_BENCH: [&str; 11] =
    ["--seq", "4,9", "--runs", "2", "--query-dim", "16", "--head-dim", "8", "--query-heads", "4", "--kv-heads"];

#[test]
fn help_documents_one_exit_status_table_and_every_subcommand() {
    let out = gqa(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for line in [
        "Exit status (every subcommand):",
        "  0  success",
        "  1  a checked",
        "  2  bad flags",
        "  3  no adapter",
        "  4  a file",
    ] {
        assert!(help.contains(line), "{line:?}: {help}");
    }
    for sub in ["run", "info", "kernels", "export", "bench", "demo"] {
        assert!(help.contains(&format!("  {sub} ")), "{sub}: {help}");
        assert_eq!(gqa(&[sub, "--help"]).status.code(), Some(0), "gqa {sub} --help");
    }
    assert_eq!(gqa(&["frobnicate"]).status.code(), Some(2), "an unknown subcommand is a bad flag");
}

#[test]
fn info_json_lists_every_adapter_with_its_driver() {
    let doc = json_of(&["info", "--json"]);
    assert_utc_date(&doc["date"]);
    let adapters = doc["adapters"].as_array().unwrap();
    assert!(!adapters.is_empty());
    for a in adapters {
        assert!(a["name"].is_string() && a["driver"].is_string() && a["backend"].is_string(), "{a}");
        assert!(a["features"]["shader_f16"].is_boolean(), "{a}");
        assert!(a["limits"]["max_storage_buffer_binding_size"].as_u64().unwrap() > 0, "{a}");
    }
}

#[test]
fn kernels_lists_the_whole_catalogue() {
    let out = gqa(&["kernels"]);
    assert_eq!(out.status.code(), Some(0));
    let table = text(&out.stdout);
    for k in gqa_core::Kernel::ALL {
        let spec = k.spec();
        assert!(table.lines().any(|l| l.starts_with(&format!("{} ", spec.name))), "{}: {table}", spec.name);
    }
    let doc = json_of(&["kernels", "--json"]);
    assert_utc_date(&doc["date"]);
    assert!(doc["adapter"]["driver"].is_string(), "{doc}");
    let kernels = doc["kernels"].as_array().unwrap();
    assert_eq!(kernels.len(), gqa_core::Kernel::ALL.len());
    for (k, row) in gqa_core::Kernel::ALL.iter().zip(kernels) {
        let spec = k.spec();
        assert_eq!(row["name"], spec.name);
        assert_eq!(row["file"], spec.file);
        assert_eq!(row["workgroup_size"], serde_json::json!(spec.workgroup_size));
        assert_eq!(row["tile"], serde_json::json!(spec.tile));
        assert!(row["features"].is_array() && row["runs_here"].is_boolean(), "{row}");
        assert_eq!(row["runs_here"].as_bool().unwrap(), row["why_not"].is_null(), "{row}");
    }
    // Every adapter runs the kernels that need no optional feature.
    assert!(kernels.iter().any(|r| r["runs_here"] == true));
}

/// README: `gqa run --layer model.keras --inputs in.safetensors --output out.safetensors --scores`,
/// and `gqa export`, with `--json` for the summary.
#[test]
fn run_and_export_examples_with_json() {
    let dir = scratch("run");
    let keras = fixture("keras_model.keras");
    let inputs = fixture("keras_model.safetensors");
    let out = dir.join("out.safetensors");
    let base = ["run", "--layer", s(&keras), "--layer-name", "attn_in_model", "--inputs", s(&inputs)];
    let res = gqa(&[&base[..], &["--output", s(&out), "--scores"]].concat());
    assert_eq!(res.status.code(), Some(0));
    assert!(text(&res.stdout).contains("wrote "));
    for extra in [&["--reference"][..], &[]] {
        let doc = json_of(&[&base[..], &["--output", s(&out), "--scores", "--json"], extra].concat());
        assert_utc_date(&doc["date"]);
        assert_eq!(doc["layer"]["name"], "attn_in_model", "{doc}");
        assert_eq!(doc["options"]["return_attention_scores"], true, "{doc}");
        assert!(doc["adapter"].is_string() && doc["shape"]["query"].is_array(), "{doc}");
        assert!(doc["forward_ms"].as_f64().unwrap() >= 0.0 && doc["scores_shape"].is_array(), "{doc}");
        assert_eq!(doc["checked"], false, "gqa run does not compare with the oracle");
    }
    let exported = dir.join("attn.safetensors");
    let res = gqa(&["export", "--layer", s(&keras), "--layer-name", "attn_in_model", "--output", s(&exported)]);
    assert_eq!(res.status.code(), Some(0));
    assert!(exported.exists());
}

#[test]
fn demo_json_carries_the_check_and_the_metadata() {
    let doc = json_of(&[&["demo"][..], &SMALL_DEMO, &["--json"]].concat());
    assert_report_metadata(&doc);
    assert_eq!(doc["check"], "pass", "{doc}");
    assert_eq!(doc["checked"], true, "{doc}");
    assert_eq!(doc["shape"]["target_len"], 8, "{doc}");
    assert!(doc["gpu_ms"].as_f64().unwrap() > 0.0 && doc["gpu_gflops"].as_f64().unwrap() > 0.0, "{doc}");
    let doc = json_of(&[&["demo"][..], &SMALL_DEMO, &["--json", "--no-oracle"]].concat());
    assert_eq!((doc["check"].as_str(), doc["checked"].as_bool()), (Some("unchecked"), Some(false)), "{doc}");
    // `--causal-alignment` as in `gqa run`, and the older `--alignment` still parses.
    for flag in ["--causal-alignment", "--alignment"] {
        let out = gqa(&[&["demo"][..], &SMALL_DEMO, &[flag, "bottom-right"]].concat());
        assert_eq!(out.status.code(), Some(0), "{flag}");
    }
}

#[test]
fn bench_reports_name_each_figure_once_and_carry_metadata() {
    let dir = scratch("bench");
    let small: Vec<&str> = [&SMALL_BENCH[..], &["2"]].concat();
    let doc = json_of(&[&["bench"][..], &small, &["--json", "--no-causal"]].concat());
    assert_report_metadata(&doc);
    assert_eq!(doc["options"]["mode"], "forward");
    for row in doc["rows"].as_array().unwrap() {
        for key in ["gpu_ms", "gpu_gflops", "roofline_pct", "check", "checked"] {
            assert!(!row[key].is_null(), "{key}: {row}");
        }
    }
    let csv = dir.join("decode.csv");
    let doc = json_of(&[&["bench", "--decode"][..], &small, &["--json", "--csv", s(&csv)]].concat());
    assert_report_metadata(&doc);
    assert_eq!(doc["options"]["mode"], "decode");
    assert_eq!(doc["checked"], true);
    let file = std::fs::read_to_string(&csv).unwrap();
    let header = file.lines().find(|l| !l.starts_with('#')).unwrap();
    let columns: Vec<&str> = header.split(',').collect();
    for row in doc["rows"].as_array().unwrap() {
        // The JSON and the CSV name the same figures the same way.
        for key in
            ["gpu_ms", "kv_gbps", "copy_roofline_pct", "gpu_gflops", "attention_kv_gbps", "attention_copy_roofline_pct"]
        {
            assert!(row[key].is_number(), "{key}: {row}");
            assert!(columns.contains(&key), "{key}: {header}");
        }
    }
    for key in ["date", "adapter", "adapter_info", "shape", "options", "checked"] {
        assert!(file.lines().any(|l| l.starts_with(&format!("# {key}: "))), "{key}: {file}");
    }
}

#[test]
fn every_error_has_one_format_and_its_exit_status() {
    let dir = scratch("errors");
    let out = dir.join("out.safetensors");
    let f = fixture("mha.safetensors");
    // 4: a file that cannot be read.
    let res = gqa(&["run", "--layer", "/nonexistent/x.safetensors", "--inputs", s(&f), "--output", s(&out)]);
    assert_error(&res, 4, "error: gqa run: reading or writing a file: /nonexistent/x.safetensors");
    let res = gqa(&["export", "--layer", "/nonexistent/x.safetensors", "--output", s(&out)]);
    assert_error(&res, 4, "error: gqa export: ");
    // 2: inputs that do not fit the layer; flags clap cannot check.
    let res =
        gqa(&["run", "--layer", s(&f), "--inputs", s(&fixture("odd_head_dims.safetensors")), "--output", s(&out)]);
    assert_error(&res, 2, "error: gqa run: ");
    let res = gqa(&["bench", "--decode", "--seq", "1"]);
    assert_error(&res, 2, "error: gqa bench: reading the flags: ");
    // Nq = 4 is not a multiple of Nkv = 3.
    let mut bad = SMALL_DEMO;
    assert_eq!(bad[8], "--kv-heads");
    bad[9] = "3";
    let res = gqa(&[&["demo"][..], &bad].concat());
    assert_error(&res, 2, "error: gqa demo: building the layer and problem: ");
    // 3: a backend this OS does not offer says so, names the ones it does, and suggests no install.
    #[cfg(not(any(target_os = "macos", target_os = "ios")))]
    for args in [
        vec!["run", "--layer", s(&f), "--inputs", s(&f), "--output", s(&out), "--backend", "metal"],
        vec!["bench", "--backend", "metal"],
        vec!["kernels", "--backend", "metal"],
        vec!["demo", "--backend", "metal"],
    ] {
        let res = gqa(&args);
        let sub = args[0];
        assert_error(&res, 3, &format!("error: gqa {sub}: opening a metal adapter: this build on "));
        let stderr = text(&res.stderr);
        assert!(stderr.contains("does not offer metal (it offers: ") && !stderr.contains("apt-get"), "{stderr}");
    }
}
