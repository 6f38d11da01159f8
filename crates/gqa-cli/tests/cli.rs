//! The `gqa` binary end to end: a layer saved by Keras through `gqa run`, compared with Keras' output
//! (the fixtures of `tests/fixtures/keras`); `gqa export`, `gqa info`, and errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gqa_io::TensorFile;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/keras").join(name)
}

fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gqa-cli-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gqa(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_gqa")).args(args).output().unwrap();
    eprintln!(
        "$ gqa {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `|got - want| <= 1e-5 + 1e-4 |want|` everywhere.
fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-5 + 1e-4 * w.abs(), "{what}[{i}]: {g} vs Keras {w}");
    }
}

fn tensor(file: &Path, name: &str) -> Vec<f32> {
    TensorFile::read(file).unwrap().f32(name, "").unwrap().into_data()
}

/// The `--backend` values of the adapters `gqa info` lists (every adapter of this machine).
fn backends() -> Vec<&'static str> {
    let info = String::from_utf8(gqa(&["info"]).stdout).unwrap();
    [("backend: Vulkan", "vulkan"), ("backend: Gl", "gl"), ("backend: Metal", "metal"), ("backend: Dx12", "dx12")]
        .into_iter()
        .filter(|(line, _)| info.contains(line))
        .map(|(_, flag)| flag)
        .collect()
}

/// Every adapter's backend, `--backend auto` and `--reference`, each against Keras' output.
#[test]
fn run_a_keras_file_on_every_backend_and_on_the_oracle() {
    let dir = scratch("run");
    let keras = fixture("keras_model.keras");
    let inputs = fixture("keras_model.safetensors");
    let mut runs: Vec<(String, Vec<&str>)> = vec![("auto".into(), vec![]), ("reference".into(), vec!["--reference"])];
    runs.extend(backends().into_iter().map(|b| (b.to_string(), vec!["--backend", b])));
    for (label, extra) in &runs {
        let out = dir.join(format!("{label}.safetensors"));
        let mut args = vec!["run", "--layer", s(&keras), "--layer-name", "attn_in_model", "--inputs", s(&inputs)];
        args.extend(["--output", s(&out), "--scores"]);
        args.extend(extra.iter().copied());
        let res = gqa(&args);
        assert!(res.status.success(), "{label}: exit {:?}", res.status);
        let stdout = String::from_utf8_lossy(&res.stdout);
        assert!(stdout.contains("time: forward"), "{label}: no time printed");
        assert!(stdout.contains("adapter: ") || stdout.contains("device: CPU reference"), "{label}: no device printed");
        assert_close(label, &tensor(&out, "output"), &tensor(&inputs, "output"));
        assert_close(label, &tensor(&out, "scores"), &tensor(&inputs, "scores"));
    }
}

#[test]
fn run_weights_h5_with_causal_and_keras_default_rows() {
    let dir = scratch("h5");
    let out = dir.join("out.safetensors");
    let inputs = fixture("keras_weights_h5.safetensors");
    let h5 = fixture("keras_weights_h5.weights.h5");
    let json = fixture("keras_weights_h5.model.json");
    let args = ["run", "--layer", s(&h5), "--config", s(&json), "--inputs", s(&inputs), "--output", s(&out)];
    let res = gqa(&[&args[..], &["--causal", "--masked-rows", "keras-default"]].concat());
    assert!(res.status.success());
    assert_close("h5", &tensor(&out, "output"), &tensor(&inputs, "output_default_call"));
    let meta = &TensorFile::read(&out).unwrap().metadata;
    let call: serde_json::Value = serde_json::from_str(&meta["call"]).unwrap();
    assert_eq!(call["use_causal_mask"], true);
    assert_eq!(call["masked_rows"], "keras-default");
}

#[test]
fn fully_masked_rows_follow_the_policy() {
    let dir = scratch("rows");
    let f = fixture("fully_masked_rows.safetensors");
    for (rows, want) in [("zeros", "output"), ("keras-default", "output_default_call")] {
        let out = dir.join(format!("{rows}.safetensors"));
        let res =
            gqa(&["run", "--layer", s(&f), "--inputs", s(&f), "--output", s(&out), "--causal", "--masked-rows", rows]);
        assert!(res.status.success());
        assert_close(rows, &tensor(&out, "output"), &tensor(&f, want));
    }
}

#[test]
fn export_then_run_the_export() {
    let dir = scratch("export");
    let exported = dir.join("layer.safetensors");
    let res = gqa(&[
        "export",
        "--layer",
        s(&fixture("keras_model.keras")),
        "--layer-name",
        "attn_in_model",
        "--output",
        s(&exported),
    ]);
    assert!(res.status.success());
    let out = dir.join("out.safetensors");
    let inputs = fixture("keras_model.safetensors");
    let res = gqa(&["run", "--layer", s(&exported), "--inputs", s(&inputs), "--output", s(&out), "--reference"]);
    assert!(res.status.success());
    assert_close("export", &tensor(&out, "output"), &tensor(&inputs, "output"));
}

#[test]
fn info_lists_adapters() {
    let res = gqa(&["info"]);
    assert!(res.status.success());
    let stdout = String::from_utf8_lossy(&res.stdout);
    for word in ["adapter 0:", "backend:", "shader-f16", "subgroups", "timestamps", "max_storage_buffer_binding_size"] {
        assert!(stdout.contains(word), "gqa info lacks {word:?}");
    }
}

#[test]
fn errors_go_to_stderr_with_a_nonzero_exit() {
    let dir = scratch("errors");
    let out = dir.join("out.safetensors");
    let f = fixture("mha.safetensors");
    // A missing layer file.
    let res = gqa(&["run", "--layer", "/nonexistent/x.safetensors", "--inputs", s(&f), "--output", s(&out)]);
    assert_eq!(res.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&res.stderr).contains("/nonexistent/x.safetensors"));
    assert!(res.stdout.is_empty() && !out.exists());
    // Inputs that do not fit the layer (another fixture's).
    let res =
        gqa(&["run", "--layer", s(&f), "--inputs", s(&fixture("odd_head_dims.safetensors")), "--output", s(&out)]);
    assert_eq!(res.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&res.stderr).contains("odd_head_dims.safetensors"));
    // .weights.h5 without --config.
    let res =
        gqa(&["run", "--layer", s(&fixture("keras_weights_h5.weights.h5")), "--inputs", s(&f), "--output", s(&out)]);
    assert_eq!(res.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&res.stderr).contains("config"));
    // Bad flags: --seed needs --training; an unknown backend.
    let res = gqa(&["run", "--layer", s(&f), "--inputs", s(&f), "--output", s(&out), "--seed", "3"]);
    assert_eq!(res.status.code(), Some(2));
    let res = gqa(&["run", "--layer", s(&f), "--inputs", s(&f), "--output", s(&out), "--backend", "cuda"]);
    assert_eq!(res.status.code(), Some(2));
}

/// `gqa bench` on every backend: the table as JSON, CSV and an SVG plot, with the oracle.
#[test]
fn bench_sweeps_and_writes_reports() {
    for backend in backends() {
        let dir = scratch(&format!("bench-{backend}"));
        let (csv, svg) = (dir.join("b.csv"), dir.join("b.svg"));
        let out = gqa(&[
            "bench",
            "--backend",
            backend,
            "--seq",
            "4,9",
            "--runs",
            "1",
            "--query-dim",
            "16",
            "--head-dim",
            "8",
            "--query-heads",
            "4",
            "--kv-heads",
            "2",
            "--causal",
            "--json",
            "--csv",
            s(&csv),
            "--svg",
            s(&svg),
        ]);
        assert!(out.status.success(), "gqa bench --backend {backend} failed");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let rows = doc["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        for row in rows {
            assert!(row["gpu_ms"].as_f64().unwrap() > 0.0 && row["oracle_ms"].as_f64().unwrap() > 0.0, "{row}");
            assert!(row["roofline_pct"].as_f64().unwrap() > 0.0, "{row}");
        }
        assert!(doc["roofline"]["fma_gflops"].as_f64().unwrap() > 0.0);
        let table = std::fs::read_to_string(&csv).unwrap();
        assert_eq!(table.lines().count(), 3, "{table}");
        assert!(table.starts_with("seq,gflop,gpu_ms,gpu_gflops,roofline_pct,oracle_ms,speedup"));
        let plot = std::fs::read_to_string(&svg).unwrap();
        assert!(plot.starts_with("<svg") && plot.contains("polyline"), "{plot}");
    }
    let bad = gqa(&["bench", "--query-heads", "6", "--kv-heads", "4", "--seq", "4"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("divisible"));
}
