//! Writes the table of WGSL texts: every `.wgsl` file under the crate's `shaders/` directory (in the
//! workspace a link to the top-level `shaders/`, in the packaged crate a copy of it), by its path
//! relative to that directory with `/` separators, each text an `include_str!` of the file.
//! `src/shaders.rs` includes the table as `shaders::FILES`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.join("shaders");
    println!("cargo::rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut table = String::new();
    writeln!(table, "[").unwrap();
    for (name, path) in &files {
        println!("cargo::rerun-if-changed={}", path.display());
        let path = path.to_str().unwrap_or_else(|| panic!("{} is not valid UTF-8", path.display()));
        writeln!(table, "    ({name:?}, include_str!({path:?})),").unwrap();
    }
    writeln!(table, "]").unwrap();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("shader_files.rs");
    std::fs::write(&out, table).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}

/// Adds every `.wgsl` file under `dir` (recursively) to `files` as (its path relative to `root`
/// with `/` separators, its absolute path).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())).path();
        if path.is_dir() {
            println!("cargo::rerun-if-changed={}", path.display());
            collect(root, &path, files);
        } else if path.extension().is_some_and(|e| e == "wgsl") {
            let relative = path.strip_prefix(root).expect("a path under the shaders directory");
            let name: Vec<&str> = relative
                .components()
                .map(|c| c.as_os_str().to_str().unwrap_or_else(|| panic!("{} is not valid UTF-8", path.display())))
                .collect();
            let absolute = std::path::absolute(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            files.push((name.join("/"), absolute));
        }
    }
}
