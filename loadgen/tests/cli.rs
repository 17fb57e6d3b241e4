//! The `loadgen` binary as users run it: exit codes, output formats, the
//! fd limit, Ctrl-C, and `merge`.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use servers::{ServerHandle, Style};

mod common;
use common::{in_process, loadgen, output_within, wait_within};

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

    // merge of the JSON file with itself: counts double.
    let out = output({
        let mut c = loadgen();
        c.args([
            "merge",
            json_path.to_str().unwrap(),
            json_path.to_str().unwrap(),
            "--format",
            "json",
        ]);
        c
    });
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
    assert!(
        stderr.contains("did not start"),
        "and so does stderr: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
