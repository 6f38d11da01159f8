//! `gqa run` and `gqa info --layer` on KerasHub attention layers: every fixture of
//! `tests/fixtures/kerashub` (layer, inputs and KerasHub's outputs in one file) through every
//! adapter's backend and the oracle, the written `output` and cache against KerasHub's; the JAX
//! outputs under `--masked-rows keras-default`; the flags a KerasHub call does not take refused.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_close, backends, gqa, json_of, s, scratch, tensor};
use gqa_io::TensorFile;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/kerashub");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    files
}

/// The names of the cache tensors a fixture's outputs hold under `prefix`.
fn cache_names(f: &TensorFile, prefix: &str) -> Vec<String> {
    ["cache", "cache.0", "cache.1"].iter().map(|n| format!("{prefix}{n}")).filter(|n| f.get(n).is_some()).collect()
}

/// Compares a written output file with the fixture's outputs under `prefix`.
fn compare(label: &str, out: &Path, fixture: &Path, prefix: &str) {
    let f = TensorFile::read(fixture).unwrap();
    assert_close(&format!("{label}: output"), &tensor(out, "output"), &tensor(fixture, &format!("{prefix}output")));
    for name in cache_names(&f, prefix) {
        let ours = name.trim_start_matches(prefix);
        assert_close(&format!("{label}: {ours}"), &tensor(out, ours), &tensor(fixture, &name));
    }
}

#[test]
fn run_every_kerashub_fixture_on_every_backend_and_on_the_oracle() {
    let dir = scratch("kerashub");
    let mut runs: Vec<(String, Vec<&str>)> = vec![("reference".into(), vec!["--reference"])];
    let found = backends();
    assert!(!found.is_empty(), "no adapter");
    runs.extend(found.into_iter().map(|b| (b.to_string(), vec!["--backend", b])));
    let files = fixtures();
    assert!(files.len() >= 40, "{} fixtures", files.len());
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        for (label, extra) in &runs {
            let out = dir.join(format!("{name}-{label}.safetensors"));
            let args = [&["run", "--layer", s(file), "--inputs", s(file), "--output", s(&out)][..], extra].concat();
            let res = gqa(&args);
            assert!(res.status.success(), "{name} {label}: exit {:?}", res.status);
            compare(&format!("{name} {label}"), &out, file, "expected.");
            let meta = TensorFile::read(&out).unwrap().metadata;
            assert_eq!(meta["class_name"], TensorFile::read(file).unwrap().metadata["class_name"], "{name}");
        }
    }
}

#[test]
fn keras_default_rows_reproduce_jax() {
    let dir = scratch("kerashub-jax");
    let mut checked = 0;
    for file in fixtures() {
        if TensorFile::read(&file).unwrap().get("jax.output").is_none() {
            continue;
        }
        let out = dir.join("out.safetensors");
        let args = ["run", "--layer", s(&file), "--inputs", s(&file), "--output", s(&out), "--masked-rows"];
        let res = gqa(&[&args[..], &["keras-default"]].concat());
        assert!(res.status.success(), "{file:?}");
        compare(&format!("{file:?} keras-default"), &out, &file, "jax.");
        let call: serde_json::Value = serde_json::from_str(&TensorFile::read(&out).unwrap().metadata["call"]).unwrap();
        assert_eq!(call["masked_rows"], "keras-default");
        checked += 1;
    }
    assert!(checked >= 10, "{checked} fixtures with JAX's outputs");
}

#[test]
fn kerashub_runs_refuse_gqa_only_flags_and_the_cpu_layer() {
    let dir = scratch("kerashub-flags");
    let file = fixtures().into_iter().next().unwrap();
    let out = dir.join("out.safetensors");
    let base = ["run", "--layer", s(&file), "--inputs", s(&file), "--output", s(&out)];
    for extra in [&["--causal"][..], &["--scores"], &["--backend", "cpu"]] {
        let res = gqa(&[&base[..], extra].concat());
        assert_eq!(res.status.code(), Some(2), "{extra:?}");
        assert!(!out.exists(), "{extra:?}: an output was written");
    }
}

#[test]
fn info_describes_a_kerashub_layer_and_a_keras_one() {
    let file = fixtures().into_iter().find(|f| f.to_string_lossy().contains("gptoss_window.")).unwrap();
    let report = json_of(&["info", "--layer", s(&file), "--json"]);
    let layer = &report["layer"];
    assert_eq!(layer["class_name"], "GptOssAttention");
    assert_eq!(layer["head_dim"], 5);
    let options = &layer["options"];
    assert!(options["rope"].as_str().unwrap().contains("YaRN"), "{options}");
    assert!(options["sinks"].is_string() && options["window"] == "j >= p - 3", "{options}");
    assert!(options.get("qk_norm").is_none(), "{options}");
    let text = String::from_utf8(gqa(&["info", "--layer", s(&file)]).stdout).unwrap();
    assert!(text.contains("GptOssAttention") && text.contains("sinks"), "{text}");
    let keras = common::fixture("gate.safetensors");
    let report = json_of(&["info", "--layer", s(&keras), "--json"]);
    assert_eq!(report["layer"]["class_name"], "GroupQueryAttention");
}

#[test]
fn bench_decode_times_rope_and_qk_norm_beside_the_plain_layer_checked() {
    let shape = ["--query-heads", "4", "--kv-heads", "2", "--head-dim", "16", "--query-dim", "64"];
    let args =
        [&["bench", "--decode", "--rope-qk-norm", "--seq", "8,40", "--runs", "2", "--json"][..], &shape].concat();
    let report = json_of(&args);
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        assert_eq!(r["checked"], true, "{r}");
        assert!(r["plain_step_ms"].as_f64().unwrap() > 0.0 && r["rope_qk_norm_step_ms"].as_f64().unwrap() > 0.0);
        let ratio = r["ratio"].as_f64().unwrap();
        assert!(ratio.is_finite() && ratio > 0.0, "{r}");
    }
    assert_eq!(report["shape"]["head_dim"], 16);
    // GPU only, f32 caches.
    let res = gqa(&[&["bench", "--decode", "--rope-qk-norm", "--backend", "cpu"][..], &shape].concat());
    assert_eq!(res.status.code(), Some(2));
}

#[test]
fn run_kerashub_layers_from_keras_and_weights_h5_files() {
    let dir = scratch("kerashub-keras");
    let fixtures_dir = fixtures()[0].parent().unwrap().to_path_buf();
    let mut checked = 0;
    for file in fixtures() {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let (keras, h5, json) = (
            fixtures_dir.join(format!("{name}.keras")),
            fixtures_dir.join(format!("{name}.weights.h5")),
            fixtures_dir.join(format!("{name}.layer.json")),
        );
        let class = TensorFile::read(&file).unwrap().metadata["class_name"].clone();
        let mut layers: Vec<Vec<&str>> = Vec::new();
        if keras.exists() {
            layers.push(vec!["--layer", s(&keras)]);
        }
        if h5.exists() {
            layers.push(vec!["--layer", s(&h5), "--config", s(&json), "--class", &class]);
        }
        for layer in layers {
            let out = dir.join("out.safetensors");
            let args = [&["run"][..], &layer, &["--inputs", s(&file), "--output", s(&out), "--reference"]].concat();
            let res = gqa(&args);
            assert!(res.status.success(), "{name} {layer:?}");
            compare(&format!("{name} {layer:?}"), &out, &file, "expected.");
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} Keras files");
    // A bare config without its class is read as a GroupQueryAttention config, which it is not.
    let h5 = fixtures_dir.join("gemma3_all.weights.h5");
    let json = fixtures_dir.join("gemma3_all.layer.json");
    let out = dir.join("bad.safetensors");
    let file = fixtures_dir.join("gemma3_all.safetensors");
    let res = gqa(&["run", "--layer", s(&h5), "--config", s(&json), "--inputs", s(&file), "--output", s(&out)]);
    assert_eq!(res.status.code(), Some(2));
    let res = gqa(&["info", "--layer", s(&h5), "--config", s(&json), "--class", "PhiAttention"]);
    assert_eq!(res.status.code(), Some(2));
}
