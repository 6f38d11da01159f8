//! `gqa kernels --isa`: every kernel compiled by AMD's compiler on Mesa RADV's null device (needs
//! `libvulkan1` and `mesa-vulkan-drivers`, no GPU; absent, the test fails). The kernels a GPU
//! tuning can select must keep every value in registers (no scratch memory, no spills) and their
//! declared floor of waves per SIMD on RDNA2 (navi21), RDNA3 (gfx1100) and GCN5 (vega10).

use std::process::{Command, Output};

use gqa_core::Kernel;
use serde_json::Value;

const FAMILIES: [&str; 3] = ["navi21", "gfx1100", "vega10"];

fn gqa(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_gqa")).args(args).output().unwrap();
    eprintln!("$ gqa {}\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    out
}

fn number(row: &Value, key: &str) -> u64 {
    row[key].as_u64().unwrap_or_else(|| panic!("{key} in {row}"))
}

/// The report of the default families, as JSON rows.
fn report() -> Vec<Value> {
    let out = gqa(&["kernels", "--isa", "--json"]);
    assert_eq!(out.status.code(), Some(0), "gqa kernels --isa --json failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().expect("a JSON array of rows").clone()
}

#[test]
fn gpu_kernels_need_no_scratch_and_keep_their_floor_of_waves_on_amd() {
    let rows = report();
    // Every kernel of the catalogue compiled for each family, once.
    for family in FAMILIES {
        let names: Vec<&str> =
            rows.iter().filter(|r| r["family"] == family).map(|r| r["kernel"].as_str().unwrap()).collect();
        assert_eq!(
            names.len(),
            Kernel::ALL.len(),
            "{family}: {} kernels compiled of {}",
            names.len(),
            Kernel::ALL.len()
        );
        for k in Kernel::ALL {
            assert!(names.contains(&k.name()), "{family}: {} not compiled", k.name());
        }
    }
    let mut offences = Vec::new();
    for row in rows.iter().filter(|r| r["gpu_tuning"] == true) {
        let at = format!("{} on {}", row["kernel"].as_str().unwrap(), row["family"].as_str().unwrap());
        for metric in ["scratch_bytes", "spilled_vgprs", "spilled_sgprs"] {
            if number(row, metric) > 0 {
                offences.push(format!("{at}: {metric} = {} (must be 0)", number(row, metric)));
            }
        }
        let (waves, floor) = (number(row, "waves_per_simd"), number(row, "waves_floor"));
        if waves < floor {
            offences.push(format!("{at}: waves_per_simd = {waves} < its floor {floor}"));
        }
    }
    assert!(
        offences.is_empty(),
        "kernels a GPU tuning can select, compiled by RADV (ACO), out of bounds:\n  {}",
        offences.join("\n  ")
    );
}

#[test]
fn isa_flags_are_checked_and_an_unknown_family_is_an_error() {
    let out = gqa(&["kernels", "--family", "navi21"]);
    assert_eq!(out.status.code(), Some(2), "--family needs --isa");
    let out = gqa(&["kernels", "--isa", "--family", "Navi 21"]);
    assert_eq!(out.status.code(), Some(2), "not a family name");
    let out = gqa(&["kernels", "--isa", "--family", "navi21,nosuchchip"]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("compiling for nosuchchip: ") && stderr.contains("help: "), "{stderr}");
    assert!(out.stdout.is_empty(), "no partial report");
}

/// The worker without a RADV driver: a typed error naming what it found, never an empty report.
#[test]
fn the_worker_without_radv_says_so() {
    let out = Command::new(env!("CARGO_BIN_EXE_gqa"))
        .arg("isa-worker")
        .env("VK_ICD_FILENAMES", "/nonexistent/radeon_icd.json")
        .env_remove("VK_DRIVER_FILES")
        .env("RADV_FORCE_FAMILY", "navi21")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("\"navi21\"") && stderr.contains("no RADV physical device"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn the_table_lists_every_kernel_for_the_families_asked() {
    // Whatever driver the caller's environment names, the workers load RADV's.
    let out = Command::new(env!("CARGO_BIN_EXE_gqa"))
        .args(["kernels", "--isa", "--family", "vega10"])
        .env("VK_ICD_FILENAMES", "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("vega10: "), "{text}");
    for k in Kernel::ALL {
        assert!(text.lines().any(|l| l.split_whitespace().take(2).eq([k.name(), "vega10"])), "{}: {text}", k.name());
    }
    assert!(!text.contains("navi21"), "{text}");
}
