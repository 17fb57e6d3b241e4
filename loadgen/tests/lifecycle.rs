//! Whatever `loadgen compare` starts, it stops, however it ends: killed
//! (SIGKILL), hung up on (SIGHUP), with its stdout or stderr closed, and
//! with servers behind a wrapper script that does not `exec` (so that the
//! real server is the wrapper's child). Every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

mod common;
use common::{alive, children, loadgen, scratch, wait_until, wait_within};

/// A `servers` stand-in that runs loadgen's server as its child, without
/// `exec`: stopping the wrapper alone would leave the server running.
fn wrapper(dir: &Path) -> PathBuf {
    common::script(
        dir,
        "servers-no-exec",
        &format!(
            "\"{}\" serve \"$@\"\necho \"wrapper: server ended\" >&2\n",
            env!("CARGO_BIN_EXE_loadgen")
        ),
    )
}

/// A smoke comparison of epoll through the wrapper, writing into `dir`.
fn compare(dir: &Path) -> std::process::Command {
    let mut cmd = loadgen();
    cmd.args([
        "compare",
        "--profile",
        "smoke",
        "--styles",
        "epoll",
        "--server-bin",
    ])
    .arg(wrapper(dir))
    .arg("--out")
    .arg(dir.join("out"));
    cmd
}

/// The first server (the wrapper's child) `compare` runs, waited for.
fn server_of(compare: &mut Child) -> u32 {
    let mut server = None;
    let found = wait_until(Duration::from_secs(30), || {
        server = children(compare.id())
            .into_iter()
            .filter(|&c| is_wrapper(c))
            .flat_map(children)
            .next();
        server.is_some()
    });
    if !found {
        let _ = compare.kill();
        let _ = compare.wait();
    }
    server.expect("compare started a server behind the wrapper within 30 s")
}

fn is_wrapper(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.windows(15).any(|w| w == b"servers-no-exec"))
}

/// A comparison started in `dir`, its output piped (or dropped), and the
/// pid of its first server.
fn started(dir: &Path, piped: bool) -> (Child, u32) {
    let io = || if piped { Stdio::piped() } else { Stdio::null() };
    let mut compare = compare(dir).stdout(io()).stderr(io()).spawn().unwrap();
    let server = server_of(&mut compare);
    (compare, server)
}

fn signal(pid: u32, sig: Signal) {
    kill(Pid::from_raw(pid as i32), sig).expect("signalling compare");
}

#[test]
fn a_killed_comparison_leaves_no_server_behind_even_behind_a_wrapper() {
    let dir = scratch("sigkill");
    let (mut compare, server) = started(&dir, false);
    signal(compare.id(), Signal::SIGKILL);
    compare.wait().unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || !alive(server)),
        "the server {server} outlived a SIGKILLed compare"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_hang_up_stops_the_servers_and_writes_the_report() {
    let dir = scratch("sighup");
    let (compare, server) = started(&dir, true);
    signal(compare.id(), Signal::SIGHUP);
    let out = wait_within(compare, Duration::from_secs(60), "compare after SIGHUP");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "interrupted: {stderr}");
    assert!(
        dir.join("out/report.md").is_file(),
        "report written: {stderr}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || !alive(server)),
        "the server {server} outlived compare"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_closed_stdout_or_stderr_is_no_panic_and_stops_everything() {
    for closed in ["stdout", "stderr"] {
        let dir = scratch(&format!("closed-{closed}"));
        let mut cmd = compare(&dir);
        // The reading end is closed at once, as `| head -1` soon would.
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let kept: Option<Box<dyn std::io::Read + Send>> = if closed == "stdout" {
            drop(child.stdout.take());
            child.stderr.take().map(|p| Box::new(p) as _)
        } else {
            drop(child.stderr.take());
            child.stdout.take().map(|p| Box::new(p) as _)
        };
        // With stdout closed the run goes on to its end (only its last
        // line fails); with stderr closed it ends at once, before any server.
        let server = (closed == "stdout").then(|| server_of(&mut child));
        // Drain the other one, so that it never blocks.
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = kept {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
            }
            text
        });
        let out = wait_within(child, Duration::from_secs(120), "compare");
        let other = reader.join().unwrap();
        assert_ne!(
            out.status.code(),
            Some(101),
            "{closed} closed: a panic: {other}"
        );
        assert!(!other.contains("panicked"), "{closed} closed: {other}");
        assert!(
            dir.join("out/report.md").is_file(),
            "{closed} closed: no report: {other}"
        );
        if let Some(server) = server {
            assert!(
                wait_until(Duration::from_secs(10), || !alive(server)),
                "{closed} closed: server {server} left running"
            );
        }
        match closed {
            // Its last line could not be written: an error, said on stderr.
            "stdout" => {
                assert_eq!(out.status.code(), Some(1), "{other}");
                assert!(other.contains("writing to stdout"), "{other}");
            }
            // Nobody reads what it says any more: it ends as on Ctrl-C,
            // with the report of what it did (nothing here).
            _ => {
                assert_eq!(out.status.code(), Some(1), "{other}");
                assert!(other.contains("report: "), "{other}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A server that dies during its runs fails the comparison (exit 1), and
/// the report says so.
#[test]
fn a_server_that_dies_mid_comparison_fails_it() {
    let dir = scratch("server-dies");
    let mut compare = compare(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed once the first run of the server that runs several (open,
    // capacity, churn: point by point, idle and each scale point have a
    // server each) is done, so it died serving: any earlier, it would not
    // have started.
    let stderr = compare.stderr.take().expect("stderr piped");
    let (tx, lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut said = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !said.iter().any(|l: &String| l.contains("epoll/open/")) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => said.push(line),
            Err(_) => panic!("no open run within 60 s: {said:?}"),
        }
    }
    let server = server_of(&mut compare);
    signal(server, Signal::SIGKILL);
    let out = wait_within(compare, Duration::from_secs(120), "compare");
    reader.join().unwrap();
    said.extend(lines.try_iter());
    let stderr = said.join("\n");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("FAILED"), "{stderr}");
    let report = std::fs::read_to_string(dir.join("out/report.md")).expect("report written");
    assert!(
        report.contains("had already exited"),
        "the report says it died"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
