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
            let message =
                if message.is_empty() { format!("the worker exited with {}", output.status) } else { message };
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
