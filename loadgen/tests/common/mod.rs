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

/// A `--server-bin` in `dir` named `name`: a shell script that runs
/// `loadgen serve` with compare's arguments, `before` its lines first
/// (`ulimit -n 300`). `exec`: the server is compare's child, its pid the
/// one recorded.
pub fn serve_script(dir: &std::path::Path, name: &str, before: &str) -> std::path::PathBuf {
    script(
        dir,
        name,
        &format!(
            "{before}exec \"{}\" serve \"$@\"\n",
            env!("CARGO_BIN_EXE_loadgen")
        ),
    )
}

/// An executable shell script in `dir` named `name` with `body` after its
/// `#!/bin/sh` line.
pub fn script(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
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
