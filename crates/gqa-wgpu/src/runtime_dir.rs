//! Keeping Mesa's Vulkan driver quiet where `XDG_RUNTIME_DIR` is unset ([`quiet_mesa_runtime_dir`]).
//!
//! Opening a Vulkan instance loads Mesa's implicit layer `VK_LAYER_MESA_device_select`, which asks
//! libwayland for the default display to order the GPUs; with `XDG_RUNTIME_DIR` unset, libwayland
//! prints `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` to stderr, once per
//! device enumeration (twice per context). wgpu enables `VK_KHR_wayland_surface` on every Vulkan
//! instance on Linux, so the layer always asks. Nothing fails: it is noise, but noise on the
//! caller's stderr. The crate changes no environment variable by itself; an application (the `gqa`
//! CLI does) opts in by calling [`quiet_mesa_runtime_dir`] at the start of `main`.

use std::path::PathBuf;

/// What [`quiet_mesa_runtime_dir`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeDir {
    /// `XDG_RUNTIME_DIR` was already set (to anything but the empty string): left as it is.
    AlreadySet,
    /// `XDG_RUNTIME_DIR` was unset or empty and now names this private directory (mode 0700).
    Provided(PathBuf),
    /// Left unset: the process runs more than one thread (or this could not be known, e.g. outside
    /// Linux), and setting a variable then could race with another thread reading the environment.
    NotSingleThreaded,
    /// Left unset: no private directory could be made (the reason).
    Unavailable(String),
}

/// Sets `XDG_RUNTIME_DIR` to a private directory when it is unset or empty, so that Mesa's
/// Vulkan layers do not print `XDG_RUNTIME_DIR is invalid or not set` on stderr: call it first
/// thing in `main`, before any thread is spawned and before [`GpuContext::new`](crate::GpuContext::new).
///
/// It changes the environment only when the variable is unset (a value the caller set is never
/// replaced) and only while the process runs a single thread (checked in `/proc/self/status`, so
/// on Linux only, where Mesa runs; elsewhere it does nothing), the condition under which
/// `std::env::set_var` is sound. The directory is `$TMPDIR/gqa-xdg-runtime-<uid>` (`/tmp` when
/// `TMPDIR` is unset), created with mode 0700, or used when it exists, is a directory (not a link),
/// belongs to this user and has mode 0700; otherwise a fresh `gqa-xdg-runtime-<pid>-<n>` directory
/// is made. Nothing is written in it: libwayland then looks for a display socket there, finds
/// none, and says nothing. Child processes inherit the variable.
pub fn quiet_mesa_runtime_dir() -> RuntimeDir {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|v| !v.is_empty()) {
        return RuntimeDir::AlreadySet;
    }
    if !single_threaded() {
        return RuntimeDir::NotSingleThreaded;
    }
    match private_dir() {
        Ok(dir) => {
            // SAFETY: the process runs one thread (checked just above: `/proc/self/status` says
            // `Threads: 1`, and no other thread can start while this one runs this function), so no
            // other thread reads or writes the environment concurrently.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
            log::debug!("gqa: XDG_RUNTIME_DIR was unset; set to {}", dir.display());
            RuntimeDir::Provided(dir)
        }
        Err(reason) => RuntimeDir::Unavailable(reason),
    }
}

/// Whether the process runs exactly one thread (Linux' `/proc/self/status`; `false` where it
/// cannot be read).
fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| status.lines().find_map(|l| l.strip_prefix("Threads:").map(|n| n.trim() == "1")))
        .unwrap_or(false)
}

/// A directory only this user can use: the per-user one, else a fresh one.
#[cfg(unix)]
fn private_dir() -> Result<PathBuf, String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let uid = std::fs::metadata("/proc/self").map_err(|e| format!("/proc/self: {e}"))?.uid();
    let base = std::env::temp_dir();
    let ours = |path: &std::path::Path| {
        std::fs::symlink_metadata(path)
            .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o777 == 0o700)
    };
    let shared = base.join(format!("gqa-xdg-runtime-{uid}"));
    // A failed create (it exists, or the base is not writable) is judged by `ours`.
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&shared);
    if ours(&shared) {
        return Ok(shared);
    }
    for n in 0..100 {
        let fresh = base.join(format!("gqa-xdg-runtime-{}-{n}", std::process::id()));
        if std::fs::DirBuilder::new().mode(0o700).create(&fresh).is_ok() && ours(&fresh) {
            return Ok(fresh);
        }
    }
    Err(format!("no private directory could be made in {}", base.display()))
}

/// Not on this platform (Mesa's Vulkan drivers run on Linux).
#[cfg(not(unix))]
fn private_dir() -> Result<PathBuf, String> {
    Err("not on this platform".into())
}
