//! One process per family: Mesa reads `RADV_FORCE_FAMILY` when an instance enumerates its physical
//! devices, and a multithreaded process cannot safely change its own environment. So
//! [`report_families`] runs a worker process per family (the caller's program, re-executed with
//! the arguments that make it call [`write_family_report`]), its environment set by
//! [`std::process::Command::env`], and reads the report it prints as JSON.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use gqa_core::Kernel;

use crate::device::{FAMILY_VAR, RadvDevice};
use crate::error::IsaError;
use crate::stats::FamilyReport;

/// The families reported when none are named: RDNA2 (navi21, e.g. RX 6800/6900), RDNA3 (gfx1100,
/// e.g. RX 7900) and GCN5 (vega10, e.g. RX Vega 64).
pub const DEFAULT_FAMILIES: [&str; 3] = ["navi21", "gfx1100", "vega10"];

/// The directories the Vulkan loader reads driver manifests from, searched for RADV's.
pub const ICD_DIRS: [&str; 3] = ["/usr/share/vulkan/icd.d", "/usr/local/share/vulkan/icd.d", "/etc/vulkan/icd.d"];

/// The Vulkan loader's variable naming the driver manifests to load.
pub const ICD_VAR: &str = "VK_ICD_FILENAMES";

/// Checks that `family` can be a RADV family name (`RADV_FORCE_FAMILY`): lower-case letters,
/// digits and `_`. Whether this Mesa knows it shows when its worker opens the device.
pub fn check_family(family: &str) -> Result<(), IsaError> {
    let ok = !family.is_empty() && family.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok { Ok(()) } else { Err(IsaError::BadFamily(family.to_string())) }
}

/// The manifest of Mesa's RADV driver the workers load: the caller's [`ICD_VAR`] where it names
/// one RADV manifest that exists (a Mesa installed elsewhere), else `radeon_icd.<arch>.json` (or
/// another `radeon_icd*.json`) in the first of [`ICD_DIRS`] that has one.
pub fn radv_icd() -> Result<PathBuf, IsaError> {
    if let Some(given) = std::env::var_os(ICD_VAR) {
        let path = PathBuf::from(&given);
        if is_radv_manifest(&path) && path.is_file() {
            return Ok(path);
        }
    }
    let own = format!("radeon_icd.{}.json", std::env::consts::ARCH);
    for dir in ICD_DIRS.map(Path::new) {
        let own = dir.join(&own);
        if own.is_file() {
            return Ok(own);
        }
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut found: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| is_radv_manifest(p)).collect();
        found.sort();
        if let Some(first) = found.into_iter().next() {
            return Ok(first);
        }
    }
    Err(IsaError::NoRadvDriver { searched: ICD_DIRS.map(PathBuf::from).to_vec() })
}

fn is_radv_manifest(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("radeon_icd") && n.ends_with(".json"))
}

/// Compiles every kernel of [`Kernel::ALL`] on the RADV device of this process's environment
/// ([`FAMILY_VAR`] names the family).
pub fn compile_all() -> Result<FamilyReport, IsaError> {
    let device = RadvDevice::open()?;
    let kernels = Kernel::ALL.iter().map(|&k| device.compile(k)).collect::<Result<Vec<_>, _>>()?;
    let family = std::env::var(FAMILY_VAR).unwrap_or_default();
    Ok(FamilyReport { family, device: device.name.clone(), kernels })
}

/// The worker's job: [`compile_all`], printed to `out` as one JSON object (what
/// [`report_families`] reads).
pub fn write_family_report(out: &mut dyn Write) -> Result<(), IsaError> {
    let report = compile_all()?;
    serde_json::to_writer(&mut *out, &report).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

/// How to start a worker: a program and its arguments, which must make it call
/// [`write_family_report`] and exit with status 0 when that succeeds (gqa-cli: `gqa` with its
/// hidden worker subcommand).
#[derive(Debug, Clone)]
pub struct Worker {
    /// The program (usually [`std::env::current_exe`]).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
}

/// Compiles every kernel for each of `families`, one worker process per family run at the same
/// time, each with `RADV_FORCE_FAMILY` set to its family, [`ICD_VAR`] to [`radv_icd`] (so that
/// only RADV loads, whatever the caller's Vulkan setup), and Mesa's shader cache off (statistics
/// come from a real compile, and nothing is written under the home directory). The reports come
/// in the order of `families`.
pub fn report_families(worker: &Worker, families: &[String]) -> Result<Vec<FamilyReport>, IsaError> {
    for family in families {
        check_family(family)?;
    }
    // The loader is needed by every worker: say so once, here.
    // SAFETY: loads libvulkan.so.1 and resolves its entry points; nothing else runs.
    unsafe { ash::Entry::load() }.map_err(|e| IsaError::NoVulkanLoader(e.to_string()))?;
    let icd = radv_icd()?;
    let program = worker.program.display().to_string();
    let mut children = Vec::new();
    for family in families {
        let child = Command::new(&worker.program)
            .args(&worker.args)
            .env(FAMILY_VAR, family)
            .env(ICD_VAR, &icd)
            .env_remove("VK_DRIVER_FILES")
            .env_remove("VK_ADD_DRIVER_FILES")
            .env("MESA_SHADER_CACHE_DISABLE", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| IsaError::Spawn { family: family.clone(), program: program.clone(), source })?;
        children.push((family, child));
    }
    let mut reports = Vec::new();
    for (family, child) in children {
        let output = child.wait_with_output().map_err(|source| IsaError::Spawn {
            family: family.clone(),
            program: program.clone(),
            source,
        })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let message = stderr.lines().filter(|l| !l.trim().is_empty()).collect::<Vec<_>>().join("\n");
            // Mesa aborts on a family it does not know, after naming it on stderr.
            let message = match (message.is_empty(), output.status.code()) {
                (true, _) => format!("the worker failed ({})", output.status),
                (false, Some(_)) => message,
                (false, None) => format!("{message} (the worker was stopped: {})", output.status),
            };
            return Err(IsaError::Worker { family: family.clone(), message });
        }
        let report: FamilyReport = serde_json::from_slice(&output.stdout)
            .map_err(|e| IsaError::WorkerOutput { family: family.clone(), message: e.to_string() })?;
        if report.family != *family {
            return Err(IsaError::WorkerOutput {
                family: family.clone(),
                message: format!("it reports family {:?}", report.family),
            });
        }
        reports.push(report);
    }
    Ok(reports)
}

/// The two shader architectures of AMD's families that the floors of waves per SIMD tell apart
/// ([`gqa_core::WavesFloor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// RDNA (gfx10 and later: navi1x, navi2x, gfx11xx, the APUs vangogh, rembrandt, ...): 128 KiB
    /// of workgroup memory per WGP.
    Rdna,
    /// GCN (gfx6 to gfx9: tahiti ... polaris, vega, raven, renoir): 64 KiB per CU.
    Gcn,
}

/// RADV's family names of RDNA chips that name neither `navi` nor `gfx1`.
const RDNA_APUS: [&str; 4] = ["vangogh", "rembrandt", "raphael_mendocino", "mendocino"];

impl Architecture {
    /// The architecture of a RADV family name: `navi*`, `gfx1*` and the RDNA APUs are RDNA,
    /// every other family GCN.
    pub fn of(family: &str) -> Self {
        if family.starts_with("navi") || family.starts_with("gfx1") || RDNA_APUS.contains(&family) {
            Architecture::Rdna
        } else {
            Architecture::Gcn
        }
    }

    /// The floor that applies to this architecture.
    pub fn floor(self, floor: gqa_core::WavesFloor) -> u32 {
        match self {
            Architecture::Rdna => floor.rdna,
            Architecture::Gcn => floor.gcn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_names_are_checked() {
        for ok in DEFAULT_FAMILIES.into_iter().chain(["gfx1103_r2", "polaris10"]) {
            check_family(ok).unwrap();
        }
        for bad in ["", "Navi21", "navi 21", "navi21;x", "../x"] {
            assert!(matches!(check_family(bad), Err(IsaError::BadFamily(_))), "{bad:?}");
        }
    }

    #[test]
    fn architectures_of_the_families() {
        for rdna in ["navi10", "navi21", "gfx1100", "gfx1103_r2", "vangogh", "rembrandt"] {
            assert_eq!(Architecture::of(rdna), Architecture::Rdna, "{rdna}");
        }
        for gcn in ["vega10", "polaris10", "tahiti", "raven", "renoir", "gfx940"] {
            assert_eq!(Architecture::of(gcn), Architecture::Gcn, "{gcn}");
        }
        let floor = gqa_core::WavesFloor { rdna: 8, gcn: 2 };
        assert_eq!((Architecture::Rdna.floor(floor), Architecture::Gcn.floor(floor)), (8, 2));
    }

    #[test]
    fn radv_manifests_are_recognised_by_name() {
        assert!(is_radv_manifest(Path::new("/usr/share/vulkan/icd.d/radeon_icd.x86_64.json")));
        assert!(!is_radv_manifest(Path::new("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json")));
        assert!(!is_radv_manifest(Path::new("/usr/share/vulkan/icd.d/radeon_icd.x86_64.txt")));
    }

    /// A worker that fails, or prints no report, is an error naming its family.
    #[test]
    fn failing_workers_are_errors() {
        let families = ["navi21".to_string()];
        let shell = |script: &str| Worker { program: "/bin/sh".into(), args: vec!["-c".into(), script.into()] };
        match report_families(&shell("echo 'radv: Unknown family' >&2; exit 1"), &families) {
            Err(IsaError::Worker { family, message }) => {
                assert_eq!((family.as_str(), message.as_str()), ("navi21", "radv: Unknown family"))
            }
            other => panic!("{other:?}"),
        }
        match report_families(&shell("echo '{}'"), &families) {
            Err(IsaError::WorkerOutput { family, .. }) => assert_eq!(family, "navi21"),
            other => panic!("{other:?}"),
        }
        let wrong = r#"echo '{"family":"vega10","device":"x","kernels":[]}'"#;
        assert!(matches!(report_families(&shell(wrong), &families), Err(IsaError::WorkerOutput { .. })));
        let echo_family =
            r#"echo "{\"family\":\"$RADV_FORCE_FAMILY\",\"device\":\"$VK_ICD_FILENAMES\",\"kernels\":[]}""#;
        let reports = report_families(&shell(echo_family), &families).unwrap();
        assert_eq!(reports[0].family, "navi21");
        assert!(is_radv_manifest(Path::new(&reports[0].device)), "the worker loads RADV: {}", reports[0].device);
    }
}
