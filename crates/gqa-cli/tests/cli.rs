//! The `gqa` binary end to end: a layer saved by Keras through `gqa run`, compared with Keras' output
//! (the fixtures of `tests/fixtures/keras`); `gqa export`, `gqa info`, and errors.

mod common;

use common::{assert_close, backends, fixture, gqa, s, scratch, tensor};
use gqa_io::TensorFile;

/// A CSV report without its `# key: value` metadata lines.
fn csv_table(file: &str) -> String {
    file.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect()
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
    assert_eq!(res.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&res.stderr).contains("/nonexistent/x.safetensors"));
    assert!(res.stdout.is_empty() && !out.exists());
    // Inputs that do not fit the layer (another fixture's).
    let res =
        gqa(&["run", "--layer", s(&f), "--inputs", s(&fixture("odd_head_dims.safetensors")), "--output", s(&out)]);
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("odd_head_dims.safetensors"));
    // .weights.h5 without --config.
    let res =
        gqa(&["run", "--layer", s(&fixture("keras_weights_h5.weights.h5")), "--inputs", s(&f), "--output", s(&out)]);
    assert_eq!(res.status.code(), Some(2));
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
            assert_eq!(row["ms"], row["gpu_ms"], "{row}");
            assert!(row["roofline_pct"].as_f64().unwrap() > 0.0, "{row}");
            // Every timed output (and the warm-up's) was compared with the oracle and passed.
            assert_eq!(
                (&row["checked"], &row["check"]),
                (&serde_json::json!(true), &serde_json::json!("pass")),
                "{row}"
            );
            // The warm-up and the timed call, on the GPU and on the CPU layer beside it.
            assert_eq!(row["checked_outputs"], 4, "{row}");
            assert!(row["cpu_ms"].as_f64().unwrap() > 0.0 && row["speedup_vs_cpu"].as_f64().unwrap() > 0.0, "{row}");
            assert_eq!(row["out_of_tolerance"], 0, "{row}");
            assert!(row["max_abs_err"].as_f64().unwrap() < 1e-4, "{row}");
        }
        assert_eq!(doc["checked"], true);
        assert!(doc["roofline"]["fma_gflops"].as_f64().unwrap() > 0.0);
        let file = std::fs::read_to_string(&csv).unwrap();
        let table = csv_table(&file);
        for key in ["# date: ", "# adapter: ", "# adapter_info: ", "# shape: ", "# options: ", "# checked: true"] {
            assert!(file.lines().any(|l| l.starts_with(key)), "{key}: {file}");
        }
        assert_eq!(table.lines().count(), 3, "{table}");
        assert!(table.starts_with(
            "seq,gflop,gpu_ms,gpu_gflops,roofline_pct,cpu_ms,cpu_gflops,speedup_vs_cpu,oracle_ms,speedup_vs_oracle,check,checked,max_abs_err,out_of_tolerance\n"
        ));
        assert!(table.lines().skip(1).all(|l| l.contains(",pass,true,") && l.ends_with(",0")), "{table}");
        let plot = std::fs::read_to_string(&svg).unwrap();
        assert!(plot.starts_with("<svg") && plot.contains("polyline"), "{plot}");
    }
    let bad = gqa(&["bench", "--query-heads", "6", "--kv-heads", "4", "--seq", "4"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("divisible"));
}

/// The bench table's `check` column, and `--no-oracle`: rows `unchecked`, a warning on stderr and
/// above the table, never `pass`.
#[test]
fn bench_table_says_whether_each_row_was_checked() {
    let tiny = ["bench", "--seq", "4", "--runs", "1", "--query-dim", "16", "--head-dim", "8", "--query-heads", "4"];
    let checked = gqa(&[&tiny[..], &["--kv-heads", "2"]].concat());
    assert!(checked.status.success());
    let stdout = String::from_utf8_lossy(&checked.stdout);
    let header = stdout.lines().find(|l| l.trim_start().starts_with("T=S")).expect("a table");
    assert!(header.contains("check") && header.contains("max abs err") && header.contains("out of tol"), "{header}");
    assert!(stdout.lines().last().unwrap().contains(" pass "), "{stdout}");
    assert!(!stdout.contains("UNCHECKED"), "{stdout}");

    let unchecked = gqa(&[&tiny[..], &["--kv-heads", "2", "--no-oracle"]].concat());
    assert!(unchecked.status.success());
    let (stdout, stderr) = (String::from_utf8_lossy(&unchecked.stdout), String::from_utf8_lossy(&unchecked.stderr));
    assert!(stderr.contains("UNCHECKED"), "{stderr}");
    let warning = stdout.lines().position(|l| l.starts_with("UNCHECKED")).expect("the warning above the table");
    let table = stdout.lines().position(|l| l.trim_start().starts_with("T=S")).unwrap();
    assert!(warning < table, "{stdout}");
    assert!(stdout.lines().last().unwrap().contains(" unchecked "), "{stdout}");
    assert!(!stdout.contains(" pass "), "{stdout}");

    let json = gqa(&[&tiny[..], &["--kv-heads", "2", "--no-oracle", "--json"]].concat());
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["checked"], false);
    let row = &doc["rows"][0];
    assert_eq!((&row["checked"], &row["check"]), (&serde_json::json!(false), &serde_json::json!("unchecked")), "{row}");
    assert!(row["max_abs_err"].is_null() && row["out_of_tolerance"].is_null() && row["ms"].as_f64().unwrap() > 0.0);
    assert!(String::from_utf8_lossy(&json.stderr).contains("UNCHECKED"));
}

/// `gqa bench --decode` checks every step against the oracle's cache.
#[test]
fn bench_decode_rows_are_checked() {
    let out = gqa(&[
        "bench",
        "--decode",
        "--seq",
        "4,9",
        "--runs",
        "2",
        "--query-dim",
        "16",
        "--head-dim",
        "8",
        "--query-heads",
        "4",
        "--kv-heads",
        "2",
        "--json",
    ]);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for row in doc["rows"].as_array().unwrap() {
        assert_eq!(row["check"], "pass", "{row}");
        // The warm-up step, the attention timer's run and the two timed steps; the CPU layer's
        // warm-up step and two timed steps.
        assert_eq!(row["checked_outputs"], 7, "{row}");
        assert!(row["ms"].as_f64().unwrap() > 0.0, "{row}");
    }
    // f16 and int8 caches, linear and a ring of window 6: every row checked, the JSON's fields.
    for (cache, window) in [("f16", None), ("int8", None), ("int8", Some("6"))] {
        let mut args = vec!["bench", "--decode", "--seq", "4,9", "--runs", "2", "--cache", cache, "--json"];
        args.extend(["--query-dim", "16", "--head-dim", "8", "--query-heads", "4", "--kv-heads", "2"]);
        args.extend(window.iter().flat_map(|w| ["--window", *w]));
        let out = gqa(&args);
        assert!(out.status.success(), "{cache} {window:?}");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for row in doc["rows"].as_array().unwrap() {
            assert_eq!((&row["check"], &row["checked"], &row["cache"]), (&"pass".into(), &true.into(), &cache.into()));
            assert!(row["step_ms"].as_f64().unwrap() > 0.0 && row["attn_ms"].as_f64().unwrap() > 0.0, "{row}");
            // K and V of 2 heads of 8: f16 2 x 2 x 8 x 2 bytes, int8 2 x 2 x (8 + 4).
            assert_eq!(row["bytes_per_token"], if cache == "f16" { 64 } else { 48 }, "{row}");
            let keys = row["s"].as_u64().unwrap().min(if window.is_some() { 6 } else { u64::MAX });
            assert_eq!(row["keys"], keys, "{row}");
        }
    }
    let refused = gqa(&["bench", "--cache", "int8", "--seq", "4"]);
    assert_eq!(refused.status.code(), Some(2), "--cache without --decode");
    // A layer in f16 over its f16 cache (the auto adapter, lavapipe, has SHADER_F16), checked at 5e-3.
    let small = ["--query-dim", "16", "--head-dim", "8", "--query-heads", "4", "--kv-heads", "2"];
    let out = gqa(&[&["bench", "--decode", "--f16", "--seq", "4,9", "--runs", "2", "--json"][..], &small].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["options"]["f16"], true, "{doc}");
    for row in doc["rows"].as_array().unwrap() {
        assert_eq!((&row["check"], &row["checked"], &row["cache"]), (&"pass".into(), &true.into(), &"f16".into()));
        assert_eq!(row["bytes_per_token"], 64, "{row}");
    }
    let int8 = gqa(&[&["bench", "--decode", "--f16", "--cache", "int8", "--seq", "4"][..], &small].concat());
    assert!(!int8.status.success(), "an f16 layer takes an f16 cache only");
    assert!(
        String::from_utf8_lossy(&int8.stderr).contains("needs an f32 layer"),
        "{}",
        String::from_utf8_lossy(&int8.stderr)
    );
    for args in
        [&["bench", "--f16", "--seq", "4"][..], &["bench", "--decode", "--f16", "--backend", "cpu", "--seq", "4"]]
    {
        assert_eq!(gqa(args).status.code(), Some(2), "{args:?}");
    }
}

/// The call options an inputs file records (`call` metadata) apply without flags: a Keras fixture
/// made with `use_causal_mask=True` reproduces Keras' output on its own, on the GPU and the oracle.
#[test]
fn run_applies_the_inputs_files_call_options() {
    let dir = scratch("call");
    let f = fixture("causal_t_gt_s.safetensors");
    let meta = &TensorFile::read(&f).unwrap().metadata;
    assert_eq!(meta["call"], r#"{"use_causal_mask": true}"#, "the fixture records a causal call");
    for (label, extra) in [("gpu", &[][..]), ("reference", &["--reference"][..])] {
        let out = dir.join(format!("{label}.safetensors"));
        let res = gqa(&[&["run", "--layer", s(&f), "--inputs", s(&f), "--output", s(&out)][..], extra].concat());
        assert!(res.status.success(), "{label}");
        assert!(String::from_utf8_lossy(&res.stdout).contains("use_causal_mask=true (inputs file)"), "{label}");
        assert!(!String::from_utf8_lossy(&res.stderr).contains("note:"), "{label}: no flag, no override");
        assert_close(label, &tensor(&out, "output"), &tensor(&f, "output"));
        let call: serde_json::Value = serde_json::from_str(&TensorFile::read(&out).unwrap().metadata["call"]).unwrap();
        assert_eq!(call["use_causal_mask"], true, "{label}: the output records the call it ran");
    }
    // A flag equal to the file's value is no override.
    let res =
        gqa(&["run", "--layer", s(&f), "--inputs", s(&f), "--output", s(&dir.join("same.safetensors")), "--causal"]);
    assert!(res.status.success() && !String::from_utf8_lossy(&res.stderr).contains("note:"));
}

/// A flag overrides the file's option, says so on stderr, and runs the call the flag asks for.
#[test]
fn run_flags_override_the_inputs_files_call_options() {
    let dir = scratch("override");
    let f = fixture("causal_t_gt_s.safetensors");
    let (gpu, oracle) = (dir.join("gpu.safetensors"), dir.join("oracle.safetensors"));
    let args = ["run", "--layer", s(&f), "--inputs", s(&f), "--no-causal"];
    let res = gqa(&[&args[..], &["--output", s(&gpu)]].concat());
    assert!(res.status.success());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.contains("note: --no-causal overrides the inputs file's use_causal_mask: true"), "{stderr}");
    let res = gqa(&[&args[..], &["--output", s(&oracle), "--reference"]].concat());
    assert!(res.status.success());
    let got = tensor(&gpu, "output");
    assert_close("--no-causal", &got, &tensor(&oracle, "output"));
    let keras = tensor(&f, "output");
    assert!(got.iter().zip(&keras).any(|(g, k)| (g - k).abs() > 1e-3), "--no-causal ran the file's causal call");
}

/// Every option of the record applies: a file recording bottom-right alignment, Keras' masked-row
/// policy and scores gives what the same flags give.
#[test]
fn run_applies_every_recorded_option() {
    let dir = scratch("record");
    let src = fixture("causal_t_lt_s.safetensors");
    let mut tf = TensorFile::read(&src).unwrap();
    tf.metadata.insert(
        "call".into(),
        r#"{"use_causal_mask": true, "causal_alignment": "bottom-right", "masked_rows": "keras-default", "return_attention_scores": true, "training": false, "seed": null}"#.into(),
    );
    let recorded = dir.join("recorded.safetensors");
    tf.write(&recorded).unwrap();
    let (from_file, from_flags) = (dir.join("file.safetensors"), dir.join("flags.safetensors"));
    let res = gqa(&["run", "--layer", s(&src), "--inputs", s(&recorded), "--output", s(&from_file)]);
    assert!(res.status.success());
    let stdout = String::from_utf8_lossy(&res.stdout);
    for word in ["causal_alignment=bottom-right (inputs file)", "masked_rows=keras-default (inputs file)"] {
        assert!(stdout.contains(word), "{stdout}");
    }
    let flags = ["--causal", "--causal-alignment", "bottom-right", "--masked-rows", "keras-default", "--scores"];
    let res = gqa(&[
        &["run", "--layer", s(&src), "--inputs", s(&src), "--output", s(&from_flags), "--reference"][..],
        &flags[..],
    ]
    .concat());
    assert!(res.status.success());
    assert_close("output", &tensor(&from_file, "output"), &tensor(&from_flags, "output"));
    assert_close("scores", &tensor(&from_file, "scores"), &tensor(&from_flags, "scores"));
    // Not the default call: bottom-right alignment changes the output when T < S.
    let default = dir.join("default.safetensors");
    assert!(
        gqa(&["run", "--layer", s(&src), "--inputs", s(&src), "--output", s(&default), "--reference"]).status.success()
    );
    let (a, b) = (tensor(&from_file, "output"), tensor(&default, "output"));
    assert!(a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-3));
    // Overriding each: the notes name the flag and the file's value.
    let res = gqa(&[
        "run",
        "--layer",
        s(&src),
        "--inputs",
        s(&recorded),
        "--output",
        s(&dir.join("o.safetensors")),
        "--causal-alignment",
        "top-left",
        "--masked-rows",
        "zeros",
        "--no-scores",
    ]);
    assert!(res.status.success());
    let stderr = String::from_utf8_lossy(&res.stderr);
    for note in [
        "note: --causal-alignment top-left overrides the inputs file's causal_alignment: bottom-right",
        "note: --masked-rows zeros overrides the inputs file's masked_rows: keras-default",
        "note: --no-scores overrides the inputs file's return_attention_scores: true",
    ] {
        assert!(stderr.contains(note), "{stderr}");
    }
    assert!(TensorFile::read(&dir.join("o.safetensors")).unwrap().get("scores").is_none());
}

/// A `call` record that cannot be applied whole is an error naming the file, not a silent default.
#[test]
fn run_rejects_a_call_record_it_cannot_apply() {
    let dir = scratch("badcall");
    let src = fixture("mha.safetensors");
    let mut tf = TensorFile::read(&src).unwrap();
    tf.metadata.insert("call".into(), r#"{"use_causal_mask": "yes"}"#.into());
    let bad = dir.join("bad.safetensors");
    tf.write(&bad).unwrap();
    let res = gqa(&["run", "--layer", s(&src), "--inputs", s(&bad), "--output", s(&dir.join("o.safetensors"))]);
    assert_eq!(res.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.contains("bad.safetensors") && stderr.contains("use_causal_mask"), "{stderr}");
}

/// `gqa demo` (what `scripts/demo.sh` runs) at a small shape: each exit status and the lines that
/// say whether the outputs were checked.
#[test]
fn demo_checks_every_output_and_exits_with_its_status() {
    let small = [
        "demo",
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
    let with = |extra: &[&str]| gqa(&[&small[..], extra].concat());
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();

    let out = with(&[]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("checked: 2 of 2 outputs PASS"), "{stdout}");
    assert!(stdout.contains(": PASS (all 3 outputs: the warm-up, 2 timed run(s))"), "{stdout}");

    let out = with(&["--no-oracle"]);
    assert_eq!(out.status.code(), Some(0), "unchecked: the run finished");
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("adapter") && stdout.contains("UNCHECKED: no oracle ran"), "{stdout}");
    assert!(!stdout.contains("PASS"), "{stdout}");

    // Nq = 4 is not a multiple of Nkv = 3: an invalid layer.
    let out = gqa(&[&small[..10], &["3"], &small[11..]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("error: gqa demo: building the layer and problem: "),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(with(&["--runs", "0"]).status.code(), Some(2), "a flag out of range");
    assert_eq!(with(&["--backend", "nonsense"]).status.code(), Some(2), "no known backend");

    let listed = with(&["--list-adapters"]);
    assert_eq!(listed.status.code(), Some(0));
    assert!(text(&listed.stdout).starts_with("0: "), "{}", text(&listed.stdout));
    #[cfg(not(any(target_os = "macos", target_os = "ios")))]
    {
        let out = with(&["--backend", "metal"]);
        assert_eq!(out.status.code(), Some(3), "no Metal adapter here");
        assert!(text(&out.stderr).starts_with("error: gqa demo: opening a metal adapter: "), "{}", text(&out.stderr));
    }
}

/// `--tuning gpu` runs the GPU kernel set on whatever adapter there is (the software ones here,
/// keeping their loop cap) and checks it like any run; `--tuning cpu` the CPU adapters' set.
#[test]
fn demo_and_bench_start_from_the_kernel_set_asked() {
    let shape = [
        "--target-len",
        "12",
        "--source-len",
        "70",
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
        "1",
        "--no-causal",
    ];
    for backend in backends() {
        for (tuning, attention, matmul) in
            [("gpu", "attention_fused", "matmul_bias "), ("cpu", "attention_block", "matmul_bias_tex")]
        {
            let out = gqa(&[&["demo", "--backend", backend, "--tuning", tuning][..], &shape].concat());
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "{backend} {tuning}: {stdout}");
            assert!(stdout.contains(attention) && stdout.contains(matmul), "{backend} {tuning}: {stdout}");
            assert!(stdout.contains(": PASS (all 2 outputs"), "{backend} {tuning}: {stdout}");
        }
    }
    let out = gqa(&["bench", "--tuning", "gpu", "--seq", "16", "--runs", "1", "--json", "--head-dim", "8"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("\"tuning\": \"gpu\""), "{stdout}");
}
