//! `loadgen compare`'s scope from the command line: `--plan` prints what
//! would run and how long it should take and starts nothing; `--scenarios`
//! runs only those; `--duration` and `--warmup` replace the profile's
//! windows and results.json records them; a bad value exits 2 naming its
//! flag before anything starts.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

mod common;
use common::{loadgen, output_within, scratch, smoke_compare};

/// A `--server-bin` that leaves a mark when anything runs it (then fails).
fn marking_server(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let mark = dir.join("started");
    let bin = dir.join("servers");
    std::fs::write(
        &bin,
        format!("#!/bin/sh\ntouch '{}'\nexit 1\n", mark.display()),
    )
    .unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    (bin, mark)
}

#[test]
fn plan_prints_the_plan_and_its_estimate_and_starts_nothing() {
    let dir = scratch("plan");
    let (bin, mark) = marking_server(&dir);
    let out = dir.join("results");
    let mut cmd = smoke_compare("epoll,threads");
    cmd.arg("--plan")
        .arg("--server-bin")
        .arg(&bin)
        .arg("--out")
        .arg(&out);
    let o = output_within(cmd, Duration::from_secs(30), "compare --plan");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("profile smoke, 2 styles: epoll, threads"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  scale: 1, 20 connections × 64 B (every style)"),
        "{stdout}"
    );
    assert!(stdout.contains("expected about "), "{stdout}");
    assert!(!mark.exists(), "--plan started a server");
    assert!(!out.exists(), "--plan wrote its output folder");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plan_follows_the_scenarios_and_windows_given() {
    let mut cmd = smoke_compare("epoll");
    cmd.args([
        "--plan",
        "--scenarios",
        "idle,churn",
        "--duration",
        "2s",
        "--warmup",
        "0s",
    ]);
    let o = output_within(cmd, Duration::from_secs(30), "compare --plan");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("each run: 2 s measured after 0 s of warm-up"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  idle: ") && stdout.contains("  churn: "),
        "{stdout}"
    );
    for other in ["  scale: ", "  open: ", "  capacity: ", "  fairness: "] {
        assert!(!stdout.contains(other), "{other} planned: {stdout}");
    }
}

#[test]
fn scenarios_runs_only_those_and_results_record_the_windows() {
    let dir = scratch("scenarios");
    let mut cmd = smoke_compare("epoll,threads");
    cmd.args([
        "--scenarios",
        "idle",
        "--duration",
        "200ms",
        "--warmup",
        "50ms",
        "--out",
    ])
    .arg(&dir);
    let o = output_within(cmd, Duration::from_secs(120), "compare --scenarios idle");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "one idle run per style");
    for r in runs {
        assert_eq!(r["tags"]["scenario"], "idle", "{}", r["label"]);
    }
    let scope = &doc["scope"];
    assert_eq!(scope["scenarios"], serde_json::json!(["idle"]));
    assert_eq!(scope["duration_s"], 0.2);
    assert_eq!(scope["warmup_s"], 0.05);
    assert_eq!(scope["capacity_step_s"], 0.2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_scope_values_exit_2_naming_the_flag_before_anything_starts() {
    let dir = scratch("bad-scope");
    let (bin, mark) = marking_server(&dir);
    let cases: &[(&[&str], &str)] = &[
        (&["--scenarios", "bogus"], "--scenarios"),
        (&["--duration", "0s"], "--duration"),
        (&["--duration", "soon"], "--duration"),
        (&["--warmup=later"], "--warmup"),
        // The perf profile's polling variants hold idle connections only.
        (
            &[
                "--profile",
                "perf",
                "--styles",
                "polling:sleep0",
                "--scenarios",
                "scale",
            ],
            "--scenarios: polling:sleep0 runs none of them",
        ),
        (
            &["--profile", "perf", "--scenarios", "churn"],
            "--scenarios: the perf profile runs none of churn",
        ),
    ];
    for (args, says) in cases {
        let mut cmd = loadgen();
        cmd.arg("compare").args(*args).arg("--server-bin").arg(&bin);
        let o = output_within(cmd, Duration::from_secs(30), "compare with a bad value");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert!(!mark.exists(), "a bad value still started a server");
    let _ = std::fs::remove_dir_all(&dir);
}
