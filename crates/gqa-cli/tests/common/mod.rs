//! What the `gqa` binary's test files share: running the binary, fixtures, scratch directories,
//! reading its outputs, and the f32 tolerance.

#![allow(dead_code, reason = "each test file uses the helpers it needs")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gqa_io::TensorFile;
use serde_json::Value;

/// A Keras fixture under `tests/fixtures/keras`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/keras").join(name)
}

/// An empty directory of this test file's `test`, in the temporary directory.
pub fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gqa-{}-{}-{test}", env!("CARGO_CRATE_NAME"), std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `gqa` with `args`, echoing the command and its output to stderr.
pub fn gqa(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_gqa")).args(args).output().unwrap();
    eprintln!(
        "$ gqa {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A path as a flag value.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Bytes of stdout or stderr as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The command's stdout as JSON, after checking that it exited 0.
pub fn json_of(args: &[&str]) -> Value {
    let out = gqa(args);
    assert_eq!(out.status.code(), Some(0), "gqa {args:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("gqa {args:?}: not JSON: {e}"))
}

/// The f32 tensor `name` of a tensor file.
pub fn tensor(file: &Path, name: &str) -> Vec<f32> {
    TensorFile::read(file).unwrap().f32(name, "").unwrap().into_data()
}

/// `|got - want| <= 1e-5 + 1e-4 |want|` everywhere (the f32 tolerance of every check).
pub fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-5 + 1e-4 * w.abs(), "{what}[{i}]: {g} vs {w}");
    }
}

/// The `--backend` values of the adapters `gqa info` lists (every adapter of this machine).
pub fn backends() -> Vec<&'static str> {
    let info = String::from_utf8(gqa(&["info"]).stdout).unwrap();
    [("backend: Vulkan", "vulkan"), ("backend: Gl", "gl"), ("backend: Metal", "metal"), ("backend: Dx12", "dx12")]
        .into_iter()
        .filter(|(line, _)| info.contains(line))
        .map(|(_, flag)| flag)
        .collect()
}
