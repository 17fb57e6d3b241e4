//! `compare --external`: a third-party echo server (socat, from Debian's
//! packages) as a row beside a style, started, sampled and stopped like
//! one; commands that never listen, exit at once or ignore SIGTERM fail
//! their rows with the reason, in bounded time, and leave nothing running;
//! bad values are refused with exit 2 naming the flag. Every wait is
//! bounded; no timing is asserted.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use loadgen::compare::model::{CompareResults, ServerRecord};

mod common;
use common::{alive, loadgen, output_within, scratch, wait_until};

/// socat's echo one-liner, bound to loopback only.
const SOCAT: &str = "socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork PIPE";

/// Whether socat is installed; says why the test skips when it is not.
fn have_socat(test: &str) -> bool {
    let found = std::process::Command::new("socat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("{test}: skipped: socat is not installed (apt-get install socat; .ci/run does)");
    }
    found
}

/// A smoke comparison of epoll and the given externals into `dir/out`.
fn compare(dir: &Path, externals: &[String]) -> std::process::Command {
    let mut cmd = loadgen();
    cmd.args(["compare", "--profile", "smoke", "--styles", "epoll"])
        .arg("--out")
        .arg(dir.join("out"));
    for e in externals {
        cmd.arg("--external").arg(e);
    }
    cmd
}

fn results(dir: &Path) -> CompareResults {
    let text = std::fs::read_to_string(dir.join("out/results.json")).expect("results.json");
    serde_json::from_str(&text).expect("results.json parses")
}

/// Whether any live process is in process group `pgid` (from /proc).
fn group_alive(pgid: u32) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .any(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                let fields: Vec<&str> = stat
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .split_whitespace()
                    .collect();
                // After the command: state, ppid, pgrp.
                fields.first() != Some(&"Z") && fields.get(2) == Some(&pgid.to_string().as_str())
            })
        })
}

/// The server records of the row `row`.
fn records<'a>(r: &'a CompareResults, row: &str) -> Vec<&'a ServerRecord> {
    r.servers.iter().filter(|s| s.style == row).collect()
}

/// Every process a record's server led is gone (waited for a little: the
/// guard may still be at it).
fn assert_gone(s: &ServerRecord) {
    let pid = s.pid.expect("the record keeps the pid it started");
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid) && !group_alive(pid)),
        "{} {}: process group {pid} still runs",
        s.style,
        s.phase
    );
}

#[test]
fn socat_runs_every_scenario_as_a_row_and_stops_on_sigterm() {
    if !have_socat("socat_runs_every_scenario_as_a_row_and_stops_on_sigterm") {
        return;
    }
    let dir = scratch("external-socat");
    let cmd = compare(&dir, &[format!("socat={SOCAT}")]);
    let out = output_within(cmd, Duration::from_secs(300), "compare with socat");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let r = results(&dir);
    let row = "socat (external)";
    assert_eq!(r.styles, ["epoll", row]);
    assert_eq!(r.externals.len(), 1);
    assert_eq!(r.externals[0].command, SOCAT);
    let servers = records(&r, row);
    // Point by point: a server per idle step and scale point of each
    // round, one for the other scenarios, one for fairness.
    let phases: Vec<&str> = servers.iter().map(|s| s.phase.as_str()).collect();
    for phase in ["idle", "scale conns=20 size=64", "main", "fairness"] {
        assert!(phases.contains(&phase), "{phase}: {servers:?}");
    }
    for s in &servers {
        assert!(s.started && s.stopped_cleanly, "{s:?}");
        let command = s.command.as_deref().expect("the command as run");
        let port = command
            .strip_prefix("socat TCP-LISTEN:")
            .and_then(|rest| rest.split(',').next())
            .and_then(|p| p.parse::<u16>().ok());
        assert!(port.is_some_and(|p| p > 0), "port filled in: {command}");
        // Through sh -c, stopped by SIGTERM to its group: the shell dies of it.
        assert!(
            s.exit_signal.as_deref() == Some("SIGTERM") || matches!(s.exit_code, Some(0 | 143)),
            "{s:?}"
        );
        assert!(
            s.args.is_empty(),
            "no --work-us for a foreign server: {s:?}"
        );
        assert_gone(s);
    }
    let socat_runs: Vec<_> = r
        .runs
        .iter()
        .filter(|x| x.tags.as_ref().is_some_and(|t| t.style == row))
        .collect();
    for scenario in ["idle", "scale", "open", "churn", "fairness"] {
        assert!(
            socat_runs
                .iter()
                .any(|x| x.tags.as_ref().is_some_and(|t| t.scenario == scenario)),
            "socat has {scenario} runs"
        );
    }
    for x in socat_runs
        .iter()
        .filter(|x| x.tags.as_ref().is_some_and(|t| t.scenario == "scale"))
    {
        let label = x.label.as_deref().unwrap_or("?");
        assert!(x.messages > 0, "{label} echoed");
        let (served, total) = x.served().expect("served recorded");
        assert!(served > 0 && served == total, "{label}: {served}/{total}");
        // Sampled like a style: socat forks per connection, under a shell.
        let sv = x.server.as_ref().expect("the server was sampled");
        assert_eq!(sv.memory_measure, "pss_tree", "{label}");
    }
    let report = std::fs::read_to_string(dir.join("out/report.md")).unwrap();
    assert!(report.contains("| socat (external) |"), "{report}");
    assert!(report.contains("## External servers"), "{report}");
    assert!(report.contains(&format!("- socat (external): ` {SOCAT} `")));
    assert!(
        report.contains("| socat (external): as it is, no --work-us |"),
        "the fairness row says it ran without --work-us"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Never listening, exiting at once, ignoring SIGTERM: each row fails with
/// its reason, the comparison ends in bounded time (10 s to listen per
/// server, 2 s to stop) with exit 1, and nothing it started still runs.
#[test]
fn commands_that_do_not_serve_or_stop_fail_their_rows_and_are_killed() {
    let dir = scratch("external-failures");
    let mut externals = vec![
        "never=sleep 30 # {port}".to_string(),
        "quits=exit 3 # {port}".to_string(),
    ];
    let socat = have_socat("commands_that_do_not_serve_or_stop_fail_their_rows_and_are_killed");
    if socat {
        // The shell ignores SIGTERM, so does the sleep it starts once
        // socat has ended: only SIGKILL ends them.
        externals.push(format!("stubborn=trap '' TERM; {SOCAT}; sleep 30"));
    }
    let cmd = compare(&dir, &externals);
    let out = output_within(
        cmd,
        Duration::from_secs(240),
        "compare with failing externals",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "servers that did not start: {stderr}"
    );
    let r = results(&dir);
    let report = std::fs::read_to_string(dir.join("out/report.md")).unwrap();

    // Point by point, a server that did not start is not tried again at
    // every later point: one record each.
    let never = records(&r, "never (external)");
    assert_eq!(never.len(), 1, "{never:?}");
    for s in &never {
        let problem = s.problem.as_deref().unwrap_or("");
        assert!(!s.started, "{s:?}");
        assert!(
            problem.contains("never listened on 127.0.0.1:") && problem.contains("within 10 s"),
            "{problem}"
        );
        assert!(report.contains(problem), "the servers table says why");
        assert_gone(s);
    }
    assert!(stderr.contains("FAILED: never (external) (idle): did not start: never listened"));

    let quits = records(&r, "quits (external)");
    assert_eq!(quits.len(), 1, "{quits:?}");
    for s in &quits {
        let problem = s.problem.as_deref().unwrap_or("");
        assert!(
            !s.started && problem.contains("exited with status 3 before listening"),
            "{s:?}"
        );
        assert_eq!(s.exit_code, Some(3));
        assert_gone(s);
    }
    // No rows of figures for what never served; the scale table keeps a
    // row of dashes for each.
    assert!(r.runs.iter().all(|x| {
        x.tags
            .as_ref()
            .is_some_and(|t| t.style == "epoll" || t.style == "stubborn (external)")
    }));
    assert!(report.contains("| never (external) | – | – |"), "{report}");

    if socat {
        // It starts, so it runs every step, each on a server of its own.
        let stubborn = records(&r, "stubborn (external)");
        assert!(stubborn.len() >= 2, "{stubborn:?}");
        for s in &stubborn {
            let problem = s.problem.as_deref().unwrap_or("");
            assert!(s.started && !s.stopped_cleanly, "{s:?}");
            assert!(
                problem.contains("did not stop within 2s of SIGTERM; killed"),
                "{s:?}"
            );
            assert_eq!(s.exit_signal.as_deref(), Some("SIGKILL"), "{s:?}");
            assert_gone(s);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// compare killed while an external command is still being waited for
/// (before it listens, so nothing but the guard can stop what the shell
/// started): the guard kills its process group.
#[test]
fn a_killed_comparison_leaves_no_external_server_behind() {
    let dir = scratch("external-sigkill");
    let pidfile = dir.join("pid");
    let external = format!(
        "slow=echo $$ > '{}'; sleep 30 # {{port}}",
        pidfile.display()
    );
    let mut compare = compare(&dir, &[external])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = wait_until(Duration::from_secs(120), || {
        std::fs::read_to_string(&pidfile).is_ok_and(|p| p.ends_with('\n'))
    });
    let _ = compare.kill();
    let _ = compare.wait();
    assert!(started, "compare started the external command within 120 s");
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || !alive(pid) && !group_alive(pid)),
        "process group {pid} outlived a SIGKILLed compare"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_external_values_exit_2_naming_the_flag() {
    let dir = scratch("external-bad");
    for (args, says) in [
        (vec!["--external", "socat"], "NAME="),
        (
            vec!["--external", "socat=socat TCP-LISTEN:7 PIPE"],
            "{port}",
        ),
        (
            vec!["--external", "epoll=socat TCP-LISTEN:{port} PIPE"],
            "style",
        ),
        (
            vec!["--external", "a=x {port}", "--external", "a=y {port}"],
            "given twice",
        ),
        (
            vec!["--external", "a=x {port}", "--target", "epoll=127.0.0.1:1"],
            "--target",
        ),
    ] {
        let mut cmd = loadgen();
        cmd.args(["compare", "--profile", "smoke", "--out"])
            .arg(dir.join("out"))
            .args(&args);
        let out = output_within(
            cmd,
            Duration::from_secs(30),
            "compare with a bad --external",
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("--external") && stderr.contains(says),
            "{args:?}: {stderr}"
        );
        assert!(!dir.join("out").exists(), "{args:?}: nothing written");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
