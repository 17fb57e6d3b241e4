//! A comparison that survives its own death: `loadgen compare` journals
//! each unit (a style at a step of a round) in `--out` as it ends, so a
//! comparison killed with SIGKILL keeps every unit it finished; `loadgen
//! report DIR` reports them, and `compare --resume DIR` runs only the rest
//! and ends with the cells of a comparison that was never killed. A
//! record cut off by the kill is ignored with a warning; a resume with
//! other flags is refused (exit 2) naming what differs. Real processes;
//! no timing asserted; every wait bounded.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;
use common::{loadgen, output_within, scratch, smoke_compare, wait_within};

/// Two styles of the smoke profile, with short windows.
const STYLES: &str = "epoll,reactor";
const WINDOWS: [&str; 4] = ["--duration", "200ms", "--warmup", "50ms"];
/// The smoke profile's units for two styles: idle, two scale points and
/// the other scenarios in round 0; the points (and an empty rest) in round 1.
const PLANNED: usize = 14;
const LIMIT: Duration = Duration::from_secs(240);

fn compare() -> std::process::Command {
    let mut cmd = smoke_compare(STYLES);
    cmd.args(WINDOWS);
    cmd
}

fn journal(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("journal.jsonl")).unwrap_or_default()
}

/// The journal's complete records (newline-ended), parsed.
fn records(dir: &Path) -> Vec<serde_json::Value> {
    let text = journal(dir);
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    complete
        .lines()
        .map(|l| serde_json::from_str(l).expect("a complete journal line parses"))
        .collect()
}

fn units(dir: &Path) -> Vec<serde_json::Value> {
    records(dir)
        .into_iter()
        .filter_map(|r| r.get("unit").cloned())
        .collect()
}

/// A unit's key: round, style, step.
fn key(unit: &serde_json::Value) -> (u64, String, String) {
    let k = &unit["key"];
    (
        k["round"].as_u64().unwrap(),
        k["style"].as_str().unwrap().to_string(),
        k["step"].as_str().unwrap().to_string(),
    )
}

/// The cells of a results.json: scenario, style, point, round and whom a
/// partner run was beside. Open's and capacity's points are rates found by
/// measuring, which differ from one comparison to the next: their cells
/// are the scenario's.
fn cells(dir: &Path) -> BTreeSet<(String, String, String, u64, String)> {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let t = &r["tags"];
            let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            let scenario = s(&t["scenario"]);
            let point = match scenario.as_str() {
                "open" | "capacity" => String::new(),
                _ => s(&t["point"]),
            };
            (
                scenario,
                s(&t["style"]),
                point,
                t["repeat"].as_u64().unwrap_or(0),
                s(&t["partner_of"]),
            )
        })
        .collect()
}

fn ok(o: &std::process::Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(0), "{what}: {stderr}");
    stderr
}

/// Starts `compare` into `dir` and SIGKILLs it once its journal holds `n`
/// unit records; returns how many it holds after the kill.
fn kill_after(dir: &Path, n: usize) -> usize {
    let mut cmd = compare();
    cmd.arg("--out").arg(dir);
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning loadgen compare");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let deadline = Instant::now() + LIMIT;
    while units(dir).len() < n {
        assert!(
            Instant::now() < deadline,
            "the journal did not reach {n} units within {LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let o = wait_within(child, Duration::from_secs(30), "a killed compare");
    assert_eq!(o.status.code(), None, "compare was killed by a signal");
    units(dir).len()
}

#[test]
fn a_killed_comparison_is_reported_and_resumed_to_the_cells_of_a_whole_one() {
    let root = scratch("journal-kill");
    // A comparison never killed: the cells to end with.
    let whole = root.join("whole");
    let mut cmd = compare();
    cmd.arg("--out").arg(&whole);
    ok(&output_within(cmd, LIMIT, "compare"), "compare");
    let whole_units = units(&whole);
    assert_eq!(whole_units.len(), PLANNED, "a unit record per unit");
    let header = &records(&whole)[0]["header"];
    assert_eq!(header["profile"], "smoke");
    assert_eq!(header["styles"], serde_json::json!(["epoll", "reactor"]));
    assert_eq!(header["scope"]["duration_s"], 0.2);
    assert_eq!(header["planned_units"], PLANNED);
    assert!(header["machine"]["cores"].as_u64().unwrap() > 0);

    // Killed after its 5th unit (round 0's scale points under way).
    let killed = root.join("killed");
    let n = 5;
    let recorded = kill_after(&killed, n);
    // The process may finish one more unit between the count and the kill.
    assert!(
        (n..PLANNED).contains(&recorded),
        "{recorded} units recorded"
    );
    assert!(!killed.join("results.json").exists());
    let keys: Vec<_> = units(&killed).iter().map(key).collect();
    let whole_keys: Vec<_> = whole_units.iter().map(key).collect();
    assert_eq!(keys, whole_keys[..recorded], "the plan's first units");

    // `loadgen report DIR` reports what the journal holds.
    let mut cmd = loadgen();
    cmd.arg("report").arg(&killed);
    let o = output_within(cmd, Duration::from_secs(60), "report DIR");
    ok(&o, "report DIR");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains(&format!("{recorded} of {PLANNED} units")),
        "{stdout}"
    );
    let md = std::fs::read_to_string(killed.join("report.md")).unwrap();
    assert!(
        md.contains(&format!(
            "did not finish**: {recorded} of its {PLANNED} planned units"
        )),
        "{md}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(killed.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(doc["interrupted"]["recorded_units"], recorded);
    let recorded_runs: usize = units(&killed)
        .iter()
        .map(|u| u["runs"].as_array().unwrap().len())
        .sum();
    assert_eq!(doc["runs"].as_array().unwrap().len(), recorded_runs);

    // --resume runs exactly the rest, appended to the same journal.
    let mut cmd = compare();
    cmd.arg("--resume").arg(&killed);
    let stderr = ok(&output_within(cmd, LIMIT, "compare --resume"), "--resume");
    assert!(
        stderr.contains(&format!(
            "{recorded} of its {PLANNED} units are in the journal"
        )),
        "{stderr}"
    );
    let all = records(&killed);
    let sessions: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, r)| r.get("session").is_some())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(sessions.len(), 2, "the first session and the resume");
    assert_eq!(all[sessions[1]]["session"]["resumed"], true);
    let after: Vec<_> = all[sessions[1]..]
        .iter()
        .filter_map(|r| r.get("unit"))
        .map(key)
        .collect();
    assert_eq!(
        after,
        whole_keys[recorded..],
        "the units it lacked, once each"
    );
    assert_eq!(cells(&killed), cells(&whole));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(killed.join("results.json")).unwrap())
            .unwrap();
    let counts: Vec<(bool, u64)> = doc["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["resumed"].as_bool().unwrap(),
                s["units"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            (false, recorded as u64),
            (true, (PLANNED - recorded) as u64)
        ]
    );
    assert!(doc.get("interrupted").is_none(), "a finished comparison");
    let md = std::fs::read_to_string(killed.join("report.md")).unwrap();
    assert!(
        md.contains("was resumed (`--resume`) and ran in 2 sessions"),
        "{md}"
    );
    assert!(
        md.contains(&format!("{recorded} units; resumed at ")),
        "{md}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_cut_off_last_record_is_ignored_with_a_warning_and_resumed_past() {
    let root = scratch("journal-torn");
    let dir = root.join("out");
    // Idle alone: 2 units, one a style.
    let mut cmd = compare();
    cmd.args(["--scenarios", "idle", "--out"]).arg(&dir);
    ok(
        &output_within(cmd, LIMIT, "compare --scenarios idle"),
        "compare",
    );
    assert_eq!(units(&dir).len(), 2);
    // As if killed while writing its last record.
    std::fs::remove_file(dir.join("results.json")).unwrap();
    let text = journal(&dir);
    let last = text[..text.len() - 1].rfind('\n').unwrap() + 1;
    let cut = last + (text.len() - last) / 2;
    std::fs::write(dir.join("journal.jsonl"), &text[..cut]).unwrap();
    assert_eq!(units(&dir).len(), 1);

    let mut cmd = loadgen();
    cmd.arg("report").arg(&dir);
    let o = output_within(cmd, Duration::from_secs(60), "report DIR");
    let stderr = ok(&o, "report of a cut-off journal");
    assert!(
        stderr.contains("its last record was cut off") && stderr.contains("ignored"),
        "{stderr}"
    );
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("1 of its 2 planned units"), "{md}");

    // The resume drops the cut-off bytes and appends after the last whole
    // record: the journal then reads back whole, without a warning.
    let mut cmd = compare();
    cmd.args(["--scenarios", "idle", "--resume"]).arg(&dir);
    let stderr = ok(&output_within(cmd, LIMIT, "compare --resume"), "--resume");
    assert!(stderr.contains("cut off"), "the resume warns too: {stderr}");
    assert!(journal(&dir).ends_with('\n'));
    assert_eq!(records(&dir).len(), journal(&dir).lines().count());
    let styles: Vec<String> = units(&dir).iter().map(|u| key(u).1).collect();
    assert_eq!(styles, ["epoll", "reactor"]);
    let mut cmd = loadgen();
    cmd.arg("report").arg(dir.join("journal.jsonl"));
    let stderr = ok(
        &output_within(cmd, Duration::from_secs(60), "report"),
        "report",
    );
    assert!(!stderr.contains("cut off"), "{stderr}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_resume_with_other_flags_is_refused_naming_the_difference() {
    let root = scratch("journal-refused");
    let dir = root.join("out");
    let mut cmd = smoke_compare("epoll");
    cmd.args(WINDOWS)
        .args(["--scenarios", "idle", "--out"])
        .arg(&dir);
    ok(&output_within(cmd, LIMIT, "compare"), "compare");
    std::fs::remove_file(dir.join("results.json")).unwrap();
    let before = journal(&dir);
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--styles", "epoll,reactor", "--duration", "200ms"],
            &["--styles: the journal's comparison has epoll, this one epoll,reactor"],
        ),
        (
            &["--styles", "epoll", "--duration", "1s"],
            &["--duration: the journal's comparison has 0.2 s, this one 1 s"],
        ),
        (
            &[
                "--styles",
                "epoll",
                "--duration",
                "200ms",
                "--server-cpu-quota",
                "0.5",
            ],
            &["--server-cpu-quota", "--scenarios"],
        ),
    ];
    for (args, says) in cases {
        let mut cmd = loadgen();
        cmd.args(["compare", "--profile", "smoke", "--warmup", "50ms"])
            .args(*args)
            .arg("--resume")
            .arg(&dir);
        let o = output_within(cmd, Duration::from_secs(60), "a refused resume");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        for said in *says {
            assert!(stderr.contains(said), "{args:?}: {said} not in {stderr}");
        }
    }
    assert_eq!(journal(&dir), before, "a refused resume wrote nothing");

    // A new comparison does not overwrite a journal left unfinished.
    let mut cmd = smoke_compare("epoll");
    cmd.args(WINDOWS)
        .args(["--scenarios", "idle", "--out"])
        .arg(&dir);
    let o = output_within(
        cmd,
        Duration::from_secs(60),
        "compare into an unfinished one",
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    assert_eq!(journal(&dir), before);

    // Nothing to resume.
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let mut cmd = smoke_compare("epoll");
    cmd.arg("--resume").arg(&empty);
    let o = output_within(cmd, Duration::from_secs(60), "a resume of nothing");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("holds no journal.jsonl"), "{stderr}");
    let _ = std::fs::remove_dir_all(&root);
}
