//! Helpers shared by loadgen's tests: the `loadgen` binary run with
//! bounded waits, and what every test crate shares: [`support`] (an
//! in-process server, runs, the fixture) and [`procs`] (processes through
//! /proc, also the servers' tests').

// Each test binary uses its own part of these.
#![allow(dead_code)]

use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[path = "../../../servers/tests/conformance/procs.rs"]
mod procs;
mod support;
// Each test binary uses its own part of these.
#[allow(unused_imports)]
pub use procs::{alive, children, wait_until};
#[allow(unused_imports)]
pub use support::*;

/// An empty directory of this test process's own under the temp dir.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgen-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The `loadgen` binary, with a machine-wide lock of its own (`C10K_LOCK`):
/// cargo runs the tests in parallel, and their comparisons must not refuse
/// each other (or a comparison a developer runs meanwhile).
pub fn loadgen() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    cmd.env("C10K_LOCK", own_lock_path());
    cmd
}

/// A lock path no other command of any test shares.
pub fn own_lock_path() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("c10k-test-lock-{}-{n}", std::process::id()))
}

/// `loadgen compare --profile smoke --styles STYLES`, for more flags.
pub fn smoke_compare(styles: &str) -> Command {
    let mut cmd = loadgen();
    cmd.args(["compare", "--profile", "smoke", "--styles", styles]);
    cmd
}

/// Waits for `child` (stdout and stderr piped) at most `limit`; kills it
/// and fails the test past that, saying `what` did not finish.
pub fn wait_within(child: Child, limit: Duration, what: &str) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("collecting loadgen's output"),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("{what} did not finish within {limit:?}");
        }
    }
}

/// Runs `cmd` with piped output, bounded by `limit`.
pub fn output_within(mut cmd: Command, limit: Duration, what: &str) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning loadgen");
    wait_within(child, limit, what)
}
