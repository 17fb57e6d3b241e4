//! `reach` for real, small: a server under a low hard open-files limit is
//! reported as stopped by it (through `compare`, from the server's own log
//! and its fds), a loadgen under a low limit as the client's wall (through
//! `run --scenario reach`), and nothing is left behind: no socket on the
//! run's server port but TIME_WAIT, no process still running. Every wait is
//! bounded.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

mod common;
use common::{alive, in_process, loadgen, scratch, wait_until, wait_within};

use loadgen::RunResult;
use loadgen::compare::model::CompareResults;
use loadgen::compare::wall::{Wall, classify, evidence};

/// A hard and soft open-files limit far under reach's first step (1,000).
const LOW_NOFILE: u64 = 300;

/// A loadgen limit under which even eight client processes cannot hold
/// the first step (1,010 connections, 127 a process).
const CLIENT_NOFILE: u64 = 100;

/// A loadgen limit under which the first step takes two client processes.
const TWO_CLIENTS_NOFILE: u64 = 600;

/// A `--server-bin` that runs loadgen's server under [`LOW_NOFILE`]
/// (`exec`: the server is compare's child, its pid the one recorded).
fn limited_server(dir: &Path) -> PathBuf {
    common::serve_script(
        dir,
        "servers-low-nofile",
        &format!("ulimit -n {LOW_NOFILE}\n"),
    )
}

/// Sockets of /proc/net/tcp with `port` at either end, by state (hex, as
/// the kernel writes it: 01 established, 0A listening, 06 TIME_WAIT).
fn sockets_on(port: u16) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let hex = format!(":{port:04X}");
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (local, remote, state) = (f.get(1)?, f.get(2)?, f.get(3)?);
            (local.ends_with(&hex) || remote.ends_with(&hex)).then(|| state.to_string())
        })
        .collect()
}

/// Waits (bounded) until no socket on `port` is left but TIME_WAIT's.
fn nothing_left_on(port: u16) -> Vec<String> {
    let open = || {
        sockets_on(port)
            .into_iter()
            .filter(|s| s != "06")
            .collect::<Vec<_>>()
    };
    wait_until(Duration::from_secs(10), || open().is_empty());
    open()
}

#[test]
fn a_server_at_its_open_files_limit_is_stopped_by_it_and_nothing_is_left_behind() {
    let dir = scratch("reach-server");
    let mut cmd = loadgen();
    cmd.args([
        "compare",
        "--profile",
        "smoke",
        "--styles",
        "epoll",
        "--scenarios",
        "reach",
        "--reach-max",
        "1000",
        "--server-bin",
    ])
    .arg(limited_server(&dir))
    .arg("--out")
    .arg(dir.join("out"))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let out = wait_within(
        cmd.spawn().unwrap(),
        Duration::from_secs(120),
        "compare --scenarios reach",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = std::fs::read_to_string(dir.join("out/results.json"))
        .unwrap_or_else(|e| panic!("results.json: {e}; stderr: {stderr}"));
    let results: CompareResults = serde_json::from_str(&text).unwrap();
    let server = (results.servers.iter())
        .find(|s| s.phase == "reach")
        .expect("reach ran on a server of its own");
    assert!(
        server.failures.iter().any(|l| l.contains("os error 24")),
        "the server's log said EMFILE: {server:?}"
    );
    let runs: Vec<&RunResult> = results.runs.iter().collect();
    let last = runs.last().expect("a reach step ran");
    assert_eq!(last.spec.idle, 1000);
    // On every CPU compare uses, not the servers' alone: a style takes the
    // defaults it would take alone on this machine (prefork a worker per
    // CPU, each with an open-files limit of its own).
    let mut every: Vec<usize> = (results.server_cpus.iter())
        .chain(&results.client_cpus)
        .copied()
        .collect();
    every.sort_unstable();
    every.dedup();
    assert_eq!(last.environment.server_cpus.as_ref(), Some(&every));
    // Its warm-up waited for the server to accept them, until its listen
    // queue stopped shrinking: what was left in it is counted.
    assert!(
        last.connect.unaccepted.is_some_and(|n| n > 0),
        "{:?}",
        last.connect
    );
    // Its limits, read at the end: the fds counted exactly, against the
    // limit of the one process.
    let limits = (last.server.as_ref())
        .and_then(|s| s.limits.clone())
        .expect("the server's limits read at the step's end");
    assert_eq!(limits.most_fds_limit, Some(LOW_NOFILE));
    assert_eq!(limits.fds, limits.most_fds);
    assert!(
        limits.most_fds.is_some_and(|n| n + 16 >= LOW_NOFILE),
        "{limits:?}"
    );
    let objective = Duration::from_millis(100);
    let verdict = classify(&evidence(last, Some(server), objective));
    assert_eq!(verdict.wall, Wall::ServerOpenFiles, "{verdict:?}");
    // From its fds against its limit alone too (no log: `run --scenario`).
    let sv = last.server.as_ref().expect("the server was sampled");
    assert_eq!(sv.fd_limit, Some(LOW_NOFILE));
    assert_eq!(
        classify(&evidence(last, None, objective)).wall,
        Wall::ServerOpenFiles
    );
    let report = std::fs::read_to_string(dir.join("out/report.md")).unwrap();
    assert!(report.contains("\n## reach:"), "{report}");
    assert!(report.contains("the server's open-files limit"), "{report}");
    assert!(report.contains("on paper"), "{report}");
    // Nothing left behind: the server ended, and no socket of the run's
    // port is open (TIME_WAIT is the kernel's).
    let pid = server.pid.expect("the server's pid");
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "server {pid} still running"
    );
    let left = nothing_left_on(last.spec.addr.port());
    assert!(left.is_empty(), "sockets left open: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `run --scenario reach --reach-max 1000` against `addr` under an
/// open-files limit of `nofile`, its results in `json`.
fn limited_reach(addr: std::net::SocketAddr, json: &Path, nofile: u64) -> std::process::Command {
    let mut cmd = loadgen();
    cmd.args(["run", "--scenario", "reach", "--profile", "smoke"])
        .args(["--reach-max", "1000", "--addr", &addr.to_string()])
        .arg("--out")
        .arg(json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: only setrlimit between fork and exec, no allocation.
    unsafe {
        cmd.pre_exec(move || {
            use nix::sys::resource::{Resource, setrlimit};
            setrlimit(Resource::RLIMIT_NOFILE, nofile, nofile).map_err(std::io::Error::from)
        });
    }
    cmd
}

/// Processes still running that are client processes of a reach run
/// against `port` (their command line names them).
fn holders_of(port: u16) -> Vec<u32> {
    let addr = format!("--addr=127.0.0.1:{port}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("reach holder") && c.contains(&addr)
            })
        })
        .filter(|&pid| alive(pid))
        .collect()
}

#[test]
fn a_step_past_one_loadgen_process_is_held_by_several_merged_to_their_sum() {
    let dir = scratch("reach-clients");
    let server = in_process(servers::Style::Epoll);
    let addr = server.local_addr();
    let json = dir.join("reach.json");
    let child = limited_reach(addr, &json, TWO_CLIENTS_NOFILE)
        .spawn()
        .unwrap();
    let out = wait_within(child, Duration::from_secs(90), "run --scenario reach");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("farthest step held: 1,010"), "{stdout}");
    let runs: Vec<RunResult> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let r = runs.last().expect("a step ran");
    assert_eq!(r.merged_runs, 2, "two client processes");
    assert_eq!(r.merged_from.len(), 2);
    assert_eq!(r.spec.total_conns(), 1010, "the parts add up to the step");
    assert_eq!(r.connect.established, 1010);
    assert_eq!(r.errors.total(), 0, "{:?}", r.errors);
    // This process's 10 active connections and the holder's one.
    assert_eq!(r.spec.conns, 11);
    assert!(r.messages > 0);
    assert!(
        wait_until(Duration::from_secs(5), || holders_of(addr.port())
            .is_empty()),
        "client processes left: {:?}",
        holders_of(addr.port())
    );
    drop(server);
    let left = nothing_left_on(addr.port());
    assert!(left.is_empty(), "sockets left open: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_loadgen_at_its_own_open_files_limit_is_the_clients_wall() {
    let dir = scratch("reach-client");
    let server = in_process(servers::Style::Epoll);
    let addr = server.local_addr();
    let json = dir.join("reach.json");
    let child = limited_reach(addr, &json, CLIENT_NOFILE).spawn().unwrap();
    let pid = child.id();
    let out = wait_within(child, Duration::from_secs(60), "run --scenario reach");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("stopped by: loadgen's open-files limit (the client's wall)"),
        "{stdout}"
    );
    let runs: Vec<RunResult> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let last = runs.last().expect("a step ran");
    assert!(last.errors.fd_limit > 0, "{:?}", last.errors);
    let verdict = classify(&evidence(last, None, Duration::from_millis(100)));
    assert_eq!(verdict.wall, Wall::ClientOpenFiles, "{verdict:?}");
    assert!(!alive(pid), "the client process ended");
    assert!(
        wait_until(Duration::from_secs(5), || holders_of(addr.port())
            .is_empty()),
        "client processes left: {:?}",
        holders_of(addr.port())
    );
    drop(server);
    let left = nothing_left_on(addr.port());
    assert!(left.is_empty(), "sockets left open: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
