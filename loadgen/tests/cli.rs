//! The `loadgen` binary as users run it: exit codes, output formats, the
//! fd limit, Ctrl-C, and `merge`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use servers::{ServerHandle, Style};

mod common;
use common::{compare_fixture, in_process, loadgen, output_within, wait_within};

fn server() -> ServerHandle {
    in_process(Style::Reactor)
}

/// Runs a command with a bound on its run time.
fn output(cmd: Command) -> Output {
    output_within(cmd, Duration::from_secs(60), "loadgen")
}

fn quick(addr: std::net::SocketAddr, conns: u32) -> Command {
    let mut cmd = loadgen();
    cmd.args([
        "run",
        "--addr",
        &addr.to_string(),
        "--duration",
        "300ms",
        "--warmup",
        "100ms",
    ]);
    cmd.args(["--conns", &conns.to_string()]);
    cmd
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["run"], "--addr"),
        (&["run", "--addr", "127.0.0.1:1", "--conns", "0"], "--conns"),
        (
            &["run", "--addr", "127.0.0.1:1", "--duration", "soon"],
            "--duration",
        ),
        (
            &["run", "--addr", "127.0.0.1:1", "--mode", "open"],
            "--rate",
        ),
        (
            &[
                "run",
                "--addr",
                "127.0.0.1:1",
                "--mode",
                "open",
                "--rate=-5",
            ],
            "--rate",
        ),
        (
            &["run", "--addr", "127.0.0.1:1", "--mode", "sideways"],
            "--mode",
        ),
        (
            &[
                "run",
                "--addr",
                "127.0.0.1:1",
                "--source-ips",
                "127.0.0.9-127.0.0.1",
            ],
            "--source-ips",
        ),
        (&["run", "--addr", "no-port-here"], "--addr"),
        (
            &["run", "--addr", "127.0.0.1:1", "--format", "xml"],
            "--format",
        ),
        (&["merge"], "<FILES>"),
        // A zero timeout would fail every message at once.
        (
            &["run", "--addr", "127.0.0.1:1", "--timeout", "0s"],
            "--timeout",
        ),
        (&["soak", "--styles", "fibers"], "--styles"),
        (&["soak", "--styles", "tasks:turbo"], "--styles"),
        (&["soak", "--duration", "0s"], "--duration"),
        // Too short to fit a trend after the warm-up.
        (&["soak", "--duration", "12s"], "--duration"),
        (
            &["soak", "--duration", "30s", "--warmup", "25s"],
            "--warmup",
        ),
        (&["soak", "--rate", "0"], "--rate"),
        (&["soak", "--conns", "0"], "--conns"),
        (&["soak", "--churn-rate", "fast"], "--churn-rate"),
    ];
    for (args, flag) in cases {
        let out = output({
            let mut c = loadgen();
            c.args(*args);
            c
        });
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?} names {flag}: {stderr}");
    }
}

#[test]
fn text_json_and_csv_outputs() {
    let server = server();
    let dir = std::env::temp_dir().join(format!("loadgen-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json_path = dir.join("r.json");
    let out = output({
        let mut c = quick(server.local_addr(), 10);
        c.args([
            "--format",
            "json",
            "--out",
            json_path.to_str().unwrap(),
            "--label",
            "cli-test",
        ]);
        c
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("throughput") && text.contains("outcome      ok"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["label"], "cli-test");
    assert!(json["messages"].as_u64().unwrap() > 0);

    let out = output({
        let mut c = quick(server.local_addr(), 10);
        c.args(["--format", "csv"]);
        c
    });
    let csv = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert_eq!(lines[0].split(',').count(), lines[1].split(',').count());
    assert!(lines[0].starts_with("label,addr,mode"));

    // merge of the JSON file with itself: refused, but with --force counts
    // double.
    let same = [json_path.as_path(), json_path.as_path()];
    refused(&merge(&same, &["--format", "json"]), &["same run"]);
    let out = merge(&same, &["--format", "json", "--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        merged["messages"].as_u64(),
        json["messages"].as_u64().map(|m| m * 2)
    );
    assert_eq!(merged["merged_runs"], 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_full_fd_table_is_reported_with_partial_results() {
    let server = server();
    let mut cmd = quick(server.local_addr(), 100);
    // SAFETY: only setrlimit between fork and exec, no allocation.
    unsafe {
        cmd.pre_exec(|| {
            use nix::sys::resource::{Resource, setrlimit};
            setrlimit(Resource::RLIMIT_NOFILE, 48, 48).map_err(std::io::Error::from)
        });
    }
    let out = output(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("open-files limit"), "{stderr}");
    assert!(stdout.contains("fd_limit="), "{stdout}");
    assert!(
        stdout.contains("throughput"),
        "partial results printed: {stdout}"
    );
}

#[test]
fn ctrl_c_prints_partial_results_and_exits_130() {
    let server = server();
    let child = loadgen()
        .args([
            "run",
            "--addr",
            &server.local_addr().to_string(),
            "--duration",
            "60s",
            "--warmup",
            "0s",
            "--conns",
            "5",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once its connections are open (the server counts them).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while server.summary().active < 5 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.summary().active, 5, "loadgen connected");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = wait_within(child, Duration::from_secs(10), "loadgen after Ctrl-C");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    assert!(stdout.contains("interrupted"), "{stdout}");
}

/// An --out that cannot be written fails before the run, not after it has
/// spent its duration (and lost its results).
#[test]
fn an_unwritable_out_fails_before_the_run() {
    let server = server();
    let mut cmd = loadgen();
    cmd.args(["run", "--addr", &server.local_addr().to_string()])
        .args([
            "--duration",
            "20s",
            "--out",
            "/proc/no-such-dir/result.json",
        ]);
    let started = std::time::Instant::now();
    let out = output(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--out"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "failed only after the 20 s run: {stderr}"
    );
}

/// A comparison in which no server could start did not succeed: it says
/// so in its exit code, and still writes its report.
#[test]
fn a_comparison_whose_servers_cannot_start_fails() {
    let dir = std::env::temp_dir().join(format!("loadgen-cli-false-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cmd = loadgen();
    cmd.args(["compare", "--profile", "smoke", "--styles", "epoll"])
        .args(["--server-bin", "/bin/false", "--out"])
        .arg(&dir);
    let out = output_within(cmd, Duration::from_secs(120), "compare");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let report = std::fs::read_to_string(dir.join("report.md")).expect("report written");
    assert!(report.contains("did not start"), "the report says why");
    let page = std::fs::read_to_string(dir.join("report.html")).expect("report.html beside it");
    assert!(page.contains("did not start"), "{page}");
    assert!(
        stderr.contains("did not start"),
        "and so does stderr: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A folder of its own for one test's files.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgen-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Run `index` of the committed comparison (written before runs had ids),
/// changed by `edit`, as file `name` in `dir`.
fn fixture_part(
    dir: &Path,
    name: &str,
    index: usize,
    edit: impl FnOnce(&mut serde_json::Value),
) -> PathBuf {
    let mut run = serde_json::to_value(compare_fixture()).unwrap()["runs"][index].clone();
    edit(&mut run);
    let path = dir.join(name);
    std::fs::write(&path, run.to_string()).unwrap();
    path
}

/// A closed-loop run of 20 connections, 64 B messages, pipeline 1.
const CLOSED: usize = 2;
/// An open-loop run at 200 msg/s.
const OPEN: usize = 0;

fn merge(files: &[&Path], flags: &[&str]) -> Output {
    let mut c = loadgen();
    c.arg("merge").args(files).args(flags);
    output(c)
}

/// Asserts `loadgen merge` refused, its error holding every one of `words`.
fn refused(out: &Output, words: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "refused: {stderr}");
    assert!(out.stdout.is_empty(), "nothing merged is printed");
    for w in words {
        assert!(stderr.contains(w), "the error names {w:?}: {stderr}");
    }
}

#[test]
fn merge_checks_every_files_schema_version() {
    let dir = scratch("merge-schema");
    let good = fixture_part(&dir, "a.json", CLOSED, |_| {});
    let v99 = fixture_part(&dir, "v99.json", CLOSED, |r| {
        r["schema_version"] = 99.into();
        r["messages"] = 1.into();
    });
    // The first file as much as any other.
    for files in [[&v99, &good], [&good, &v99]] {
        let out = merge(&[files[0], files[1]], &[]);
        refused(&out, &["v99.json", "schema_version 99"]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn merge_refuses_runs_set_up_differently() {
    let dir = scratch("merge-spec");
    let a = fixture_part(&dir, "a.json", CLOSED, |_| {});
    let cases: &[(&str, &str, serde_json::Value, &str, &str)] = &[
        ("size", "size", 4096.into(), "64 B", "4096 B"),
        ("mode", "mode", "churn".into(), "closed", "churn"),
        ("pipeline", "pipeline", 4.into(), "1", "4"),
        ("duration", "duration", 10.0.into(), "0.3 s", "10 s"),
        ("warmup", "warm-up", 2.0.into(), "0.1 s", "2 s"),
    ];
    for (key, field, value, was, now) in cases {
        let b = fixture_part(&dir, &format!("{key}.json"), CLOSED, |r| {
            r["spec"][key] = value.clone();
        });
        let out = merge(&[&a, &b], &[]);
        let b_name = format!("{key}.json");
        refused(&out, &[field, was, now, "a.json", &b_name]);
    }
    // Open runs at different rates are replicas: their rates add up.
    let slow = fixture_part(&dir, "slow.json", OPEN, |_| {});
    let fast = fixture_part(&dir, "fast.json", OPEN, |r| {
        r["spec"]["rate"] = 400.0.into()
    });
    let out = merge(&[&slow, &fast], &["--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(merged["spec"]["rate"], 600.0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Results without a run id (written before they had one) are the same
/// run when their content is.
#[test]
fn merge_refuses_the_same_content_twice() {
    let dir = scratch("merge-same-content");
    let a = fixture_part(&dir, "a.json", CLOSED, |_| {});
    let copy = fixture_part(&dir, "copy.json", CLOSED, |_| {});
    refused(&merge(&[&a, &a], &[]), &["same run", "a.json"]);
    refused(
        &merge(&[&a, &copy], &[]),
        &["same run", "a.json", "copy.json"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Real runs carry ids, merges the ids of their parts: a merge that holds
/// one run twice is refused, however deep.
#[test]
fn merge_refuses_the_same_run_twice() {
    let server = server();
    let dir = scratch("merge-same-run");
    let (a, b, ab) = (dir.join("a.json"), dir.join("b.json"), dir.join("ab.json"));
    for path in [&a, &b] {
        let out = output({
            let mut c = quick(server.local_addr(), 5);
            c.args(["--format", "json", "--out", path.to_str().unwrap()]);
            c
        });
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let id = |p: &Path| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(p).unwrap()).unwrap()
            ["run_id"]
            .clone()
    };
    let (id_a, id_b) = (id(&a), id(&b));
    assert!(id_a.as_str().is_some_and(|s| !s.is_empty()), "{id_a}");
    assert_ne!(id_a, id_b, "every run its own id");
    let out = merge(
        &[&a, &b],
        &["--format", "json", "--out", ab.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&ab).unwrap()).unwrap();
    assert_eq!(merged["merged_from"], serde_json::json!([id_a, id_b]));

    refused(&merge(&[&a, &a], &[]), &["same run", "a.json"]);
    refused(&merge(&[&ab, &b], &[]), &["same run", "ab.json", "b.json"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn merge_force_merges_anyway_and_says_so() {
    let dir = scratch("merge-force");
    let a = fixture_part(&dir, "a.json", CLOSED, |_| {});
    let big = fixture_part(&dir, "big.json", CLOSED, |r| {
        r["spec"]["size"] = 4096.into()
    });
    let out = merge(&[&a, &big, &a], &["--force"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("merged despite: "), "{text}");
    assert!(text.contains("size") && text.contains("same run"), "{text}");
    let out = merge(&[&a, &big], &["--force", "--format", "json"]);
    let merged: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let despite = merged["merged_despite"].as_array().expect("merged_despite");
    assert_eq!(despite.len(), 1, "{despite:?}");
    assert!(despite[0].as_str().unwrap().contains("size"), "{despite:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGTERM is acted on within a second or so whatever the message size: a
/// run of 16 MiB messages used to spend tens of seconds between two looks
/// at the stop flag (every write filled a whole message's worth of pattern
/// for the little the socket took).
#[test]
fn sigterm_is_prompt_even_with_huge_messages() {
    const CONNS: usize = 500;
    let server = server();
    let child = loadgen()
        .args(["run", "--addr", &server.local_addr().to_string()])
        .args(["--duration", "60s", "--warmup", "0s", "--size", "16777216"])
        .args(["--conns", &CONNS.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while server.summary().active < CONNS && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.summary().active, CONNS, "loadgen connected");
    let signalled = std::time::Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = wait_within(child, Duration::from_secs(60), "loadgen after SIGTERM");
    let took = signalled.elapsed();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(took < Duration::from_secs(5), "took {took:?} to stop");
}
