//! With `XDG_RUNTIME_DIR` unset, a program that calls `quiet_mesa_runtime_dir` first thing in `main`
//! (as the `gqa` command line does) and opens a context prints nothing of Mesa's on stderr, on every
//! adapter's backend; a value the caller set is left alone; and the function changes nothing once
//! the process runs a second thread.
//!
//! A plain `main` (`harness = false`): the test runs this same binary as the program, so that the
//! program starts with a single thread, as an application's `main` does (the test harness runs
//! its tests on threads of their own).

mod common;

use std::process::Command;

use common::{adapter_name, adapters};
use gqa::gpu::{GpuContext, RuntimeDir};

/// Set in the environment of the child runs: what the child does.
const CHILD: &str = "GQA_DRIVER_NOISE_CHILD";

fn main() {
    match std::env::var(CHILD).as_deref() {
        Ok("open") => open_a_context(),
        Ok("threaded") => after_a_thread(),
        _ => {
            no_xdg_runtime_dir_line_on_stderr_when_unset();
            a_set_runtime_dir_is_left_alone();
            nothing_is_set_once_a_second_thread_runs();
            println!("driver_noise: 3 checks passed");
        }
    }
}

/// The program: quiet Mesa first, then open the best adapter of `WGPU_BACKEND`.
fn open_a_context() {
    let done = gqa::gpu::quiet_mesa_runtime_dir();
    println!("runtime dir: {done:?}");
    let ctx = GpuContext::new().expect("a context");
    println!("adapter: {}", ctx.describe());
}

/// The program, with a second thread running when it asks.
fn after_a_thread() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || rx.recv().ok());
    let done = gqa::gpu::quiet_mesa_runtime_dir();
    println!("runtime dir: {done:?}; XDG_RUNTIME_DIR now {:?}", std::env::var_os("XDG_RUNTIME_DIR"));
    tx.send(()).ok();
    other.join().ok();
}

fn child(kind: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("this test's path"));
    command.env(CHILD, kind);
    command
}

fn no_xdg_runtime_dir_line_on_stderr_when_unset() {
    for ctx in adapters() {
        let name = adapter_name(ctx);
        let backend = format!("{:?}", ctx.adapter_info().backend);
        let out = child("open")
            .env_remove("XDG_RUNTIME_DIR")
            .env("WGPU_BACKEND", backend.to_lowercase())
            .output()
            .expect("the child runs");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{name}: the child failed: {stdout}{stderr}");
        assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{name}: stderr has Mesa's line:\n{stderr}");
        assert!(stdout.contains("runtime dir: Provided("), "{name}: {stdout}");
        assert!(stdout.contains(&format!("({backend}, ")), "{name}: ran elsewhere: {stdout}");
        eprintln!("[driver_noise] {name}: stderr without Mesa's line");
    }
}

fn a_set_runtime_dir_is_left_alone() {
    let out = child("open").env("XDG_RUNTIME_DIR", std::env::temp_dir()).output().expect("the child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("runtime dir: {:?}", RuntimeDir::AlreadySet)), "{stdout}");
}

fn nothing_is_set_once_a_second_thread_runs() {
    let out = child("threaded").env_remove("XDG_RUNTIME_DIR").output().expect("the child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let want = format!("runtime dir: {:?}; XDG_RUNTIME_DIR now None", RuntimeDir::NotSingleThreaded);
    assert!(stdout.contains(&want), "{stdout}");
}
