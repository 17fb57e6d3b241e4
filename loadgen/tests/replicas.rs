//! Several `loadgen compare` processes as one client (`--replicas`), as a
//! Docker Swarm service's replicas run it: they run in step, and
//! `loadgen merge --comparisons` adds their results up run by run.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use servers::Style;

mod common;
use common::{in_process, loadgen, output_within, own_lock_path, wait_within};

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `loadgen merge --comparisons FILES --out DIR`, bounded.
fn merge(files: &[&Path], out: &Path) -> std::process::Output {
    let mut cmd = loadgen();
    cmd.args(["merge", "--comparisons"])
        .args(files)
        .arg("--out")
        .arg(out);
    output_within(cmd, Duration::from_secs(60), "loadgen merge --comparisons")
}

#[test]
fn two_replicas_run_in_step_and_merge_into_one_report() {
    let server = in_process(Style::Reactor);
    let dir = std::env::temp_dir().join(format!("c10k-replicas-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // The fairness scenario's server is the same one here (no --work-us).
    let target = format!("reactor={0},fairness={0}", server.local_addr());
    // One machine-wide lock for both: replicas of one comparison share it.
    let lock = own_lock_path();
    let replica = |n: u32| {
        let mut cmd = loadgen();
        cmd.env("C10K_LOCK", &lock);
        cmd.args(["compare", "--profile", "smoke", "--target", &target])
            .args(["--network", "test (two processes)", "--replicas", "2"])
            .arg("--replica-dir")
            .arg(dir.join("sync"))
            .arg("--out")
            .arg(dir.join(format!("r{n}")))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().expect("starting loadgen compare")
    };
    let (a, b) = (replica(1), replica(2));
    for child in [a, b] {
        let out = wait_within(child, Duration::from_secs(120), "a replica");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("out of step"), "{stderr}");
        assert!(
            stderr.contains("the capacity scenario is left out"),
            "{stderr}"
        );
    }
    let out = merge(
        &[&dir.join("r1/results.json"), &dir.join("r2/results.json")],
        &dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged = json(&dir.join("results.json"));
    let parts = [
        json(&dir.join("r1/results.json")),
        json(&dir.join("r2/results.json")),
    ];
    let runs = merged["runs"].as_array().unwrap();
    assert!(!runs.is_empty());
    for (i, run) in runs.iter().enumerate() {
        assert_eq!(run["merged_runs"], 2, "{}", run["label"]);
        for key in ["messages", "bytes"] {
            let sum: u64 = parts
                .iter()
                .map(|p| p["runs"][i][key].as_u64().unwrap())
                .sum();
            assert_eq!(run[key].as_u64().unwrap(), sum, "{} {key}", run["label"]);
        }
    }
    // Every run went through the barrier, both replicas at each: one
    // folder per run, a file per replica in each.
    let steps: Vec<_> = std::fs::read_dir(dir.join("sync")).unwrap().collect();
    assert_eq!(steps.len(), runs.len());
    for step in steps {
        assert_eq!(std::fs::read_dir(step.unwrap().path()).unwrap().count(), 2);
    }
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.contains("| loadgen instances | 2 at once"),
        "{report}"
    );
    assert!(report.contains("test (two processes)"));

    // A replica that ran fewer runs does not line up: refused, saying so.
    let mut short = parts[1].clone();
    short["runs"].as_array_mut().unwrap().pop();
    std::fs::write(dir.join("short.json"), short.to_string()).unwrap();
    let out = merge(
        &[&dir.join("r1/results.json"), &dir.join("short.json")],
        &dir.join("refused"),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("did not run the same comparison"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn replicas_need_a_folder_and_targets() {
    for args in [
        &["compare", "--replicas", "2"][..],
        &["compare", "--replica-dir", "/tmp"],
        &["compare", "--replicas", "1", "--replica-dir", "/tmp"],
        &["merge", "--comparisons", "x.json"],
    ] {
        let mut cmd = loadgen();
        cmd.args(args);
        let out = output_within(cmd, Duration::from_secs(30), "loadgen");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let mut cmd = loadgen();
    cmd.args([
        "compare",
        "--replicas",
        "2",
        "--replica-dir",
        "/tmp",
        "--styles",
        "epoll",
    ]);
    let out = output_within(cmd, Duration::from_secs(30), "loadgen");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--replicas: only with --target"),
        "{stderr}"
    );
}
