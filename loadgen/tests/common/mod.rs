//! Helpers shared by the tests: the `loadgen` binary run with bounded
//! waits, a server in this process, and the committed comparison fixture.
//! The cross-crate tests in the root `tests/` include this file too.

// Each test binary uses its own part of these.
#![allow(dead_code)]

use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use loadgen::compare::model::CompareResults;
use loadgen::engine::{Control, RunOptions};
use loadgen::{RunResult, RunSpec};
use servers::{Config, ServerHandle, Style};

pub fn loadgen() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
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

/// A server of `style` in this process, on a free loopback port; dropping
/// the handle stops it.
pub fn in_process(style: Style) -> ServerHandle {
    let listener = servers::listener::bind("127.0.0.1:0".parse().unwrap(), &Default::default())
        .expect("binding 127.0.0.1:0");
    servers::start(style, Config::default(), listener).expect("starting the server")
}

/// The results of a real smoke comparison, kept in `fixtures/`: the schema
/// every `results.json` must still load as.
pub fn compare_fixture() -> CompareResults {
    serde_json::from_str(include_str!("../fixtures/compare-smoke.json"))
        .expect("the fixture parses as compare results")
}

/// One run of `spec` in this process, to its end.
pub fn run(spec: &RunSpec) -> RunResult {
    run_with(spec, RunOptions::default())
}

/// As [`run`], with `opts` (sampling a server, say).
pub fn run_with(spec: &RunSpec, opts: RunOptions) -> RunResult {
    loadgen::engine::run(spec, Arc::new(Control::default()), opts).expect("run set-up")
}
