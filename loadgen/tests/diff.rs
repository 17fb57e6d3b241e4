//! A comparison held against a baseline (`loadgen diff`, `compare
//! --baseline`): cells matched across runs, those on one side listed, the
//! noise verdict in each figure's direction, failed runs marked, and the
//! exit codes. Built from a real smoke comparison (epoll and reactor, two
//! rounds) kept in tests/fixtures/diff-smoke.json, changed in each test.

use std::path::{Path, PathBuf};
use std::time::Duration;

use loadgen::RunResult;
use loadgen::compare::model::CompareResults;
use loadgen::report::diff::{self, Diff, Kind, Side, Verdict, noise_floor_pct, text};

// The capacity cells' and the absolute floors' tests, in files of their
// own beside this one (tests/capacity.rs is the capacity scenario's own
// test target, hence the paths).
#[path = "diff/capacity.rs"]
mod capacity;
mod common;
#[path = "diff/floors.rs"]
mod floors;
#[path = "diff/paired.rs"]
mod paired;
use common::{loadgen, output_within, smoke_compare};

fn fixture() -> CompareResults {
    serde_json::from_str(include_str!("fixtures/diff-smoke.json"))
        .expect("the diff fixture parses as compare results")
}

/// Every repeat of a point whose name starts with `point`.
fn runs_mut<'a>(
    f: &'a mut CompareResults,
    style: &str,
    scenario: &str,
    point: &str,
) -> Vec<&'a mut RunResult> {
    let v: Vec<&mut RunResult> = f
        .runs
        .iter_mut()
        .filter(|r| {
            r.tags.as_ref().is_some_and(|t| {
                t.style == style && t.scenario == scenario && t.point.starts_with(point)
            })
        })
        .collect();
    assert!(!v.is_empty(), "{style}/{scenario}/{point} in the fixture");
    v
}

/// Sets a figure of every repeat of a point, one value per repeat, and
/// marks the repeats ok (so the verdict is on the numbers).
fn set(
    f: &mut CompareResults,
    at: (&str, &str, &str),
    values: &[f64],
    put: fn(&mut RunResult, f64),
) {
    let runs = runs_mut(f, at.0, at.1, at.2);
    assert_eq!(runs.len(), values.len(), "one value per repeat of {at:?}");
    for (r, &v) in runs.into_iter().zip(values) {
        put(r, v);
        r.outcome.ok = true;
    }
}

fn cell<'a>(d: &'a Diff, row: &str, scenario: &str, point: &str, figure: &str) -> &'a diff::Cell {
    d.cells
        .iter()
        .find(|c| {
            c.row == row
                && c.scenario == scenario
                && c.point.starts_with(point)
                && c.figure.name == figure
        })
        .unwrap_or_else(|| panic!("a cell {row} {scenario} {point} {figure}"))
}

const SCALE20: (&str, &str, &str) = ("reactor", "scale", "conns=20 ");

fn msgs(r: &mut RunResult, v: f64) {
    r.throughput_msgs_per_s = v;
}

fn p99(r: &mut RunResult, v: f64) {
    r.latency_us.p99 = v as u64;
}

#[test]
fn a_run_against_itself_matches_every_cell_and_nothing_moves() {
    let f = fixture();
    let d = Diff::new(&f, &f, "a", "a");
    assert_eq!(d.missing, Default::default());
    let c = d.counts();
    assert_eq!((c.improved, c.regressed, c.one_side), (0, 0, 0));
    assert!(c.within_noise > 10, "{c:?}");
    for c in &d.cells {
        match c.verdict {
            Verdict::WithinNoise => assert_eq!(c.change_pct, Some(0.0)),
            // The fixture's failed runs (the client fell behind its
            // schedule on a busy machine) fail on both sides.
            Verdict::Failed(None) => assert_eq!(c.change_pct, None),
            other => panic!("{other:?} in {} {} {}", c.row, c.scenario, c.point),
        }
    }
    // Every point of every row is there, with its scenario's figures.
    for r in &f.runs {
        let t = r.tags.as_ref().expect("compare tags its runs");
        assert!(
            d.cells.iter().any(|c| c.row == t.style
                && c.scenario == t.scenario
                && t.point.starts_with(&c.point)),
            "{t:?} has cells"
        );
    }
    for (row, scenario, point, figure) in [
        ("epoll", "scale", "conns=1 ", "msg/s"),
        ("epoll", "scale", "conns=20 ", "p99"),
        ("reactor", "idle", "idle=", "memory/conn"),
        ("reactor", "open", "50% of max", "corrected p99"),
        ("reactor", "churn", "slots=", "conn/s"),
        ("epoll", "fairness", "light", "light longest stall"),
        ("epoll", "fairness", "heavy", "heavy msg/s"),
    ] {
        let c = cell(&d, row, scenario, point, figure);
        assert!(
            c.old.is_some() && c.new.is_some(),
            "{row} {scenario} {figure}"
        );
    }
}

#[test]
fn points_match_by_their_parameters_and_one_side_cells_are_listed() {
    let old = fixture();
    let mut new = fixture();
    // The open rate is a fraction of each run's own maximum: another
    // maximum is the same point.
    for r in runs_mut(&mut new, "epoll", "open", "50% of max") {
        r.tags.as_mut().unwrap().point = "50% of max = 123456/s".into();
    }
    // The words of a point in another order are the same point.
    for r in runs_mut(&mut new, "epoll", "scale", "conns=1 ") {
        r.tags.as_mut().unwrap().point = "size=64 conns=1".into();
    }
    // Reactor's churn only in the baseline; a point only in the new run.
    new.runs.retain(|r| {
        r.tags
            .as_ref()
            .is_none_or(|t| !(t.style == "reactor" && t.scenario == "churn"))
    });
    let mut extra = runs_mut(&mut new, "epoll", "scale", "conns=20 ")[0].clone();
    extra.tags.as_mut().unwrap().point = "conns=999 size=64".into();
    new.runs.push(extra);
    // A row only in the new run.
    let mut other = runs_mut(&mut new, "reactor", "idle", "idle=")[0].clone();
    other.tags.as_mut().unwrap().style = "socat".into();
    new.runs.push(other);

    let d = Diff::new(&old, &new, "old", "new");
    let open = cell(&d, "epoll", "open", "50% of max", "corrected p99");
    assert!(
        open.old.is_some() && open.new.is_some(),
        "matched by fraction"
    );
    assert_eq!(
        open.point, "50% of max",
        "the derived rate is not the point"
    );
    let scale = cell(&d, "epoll", "scale", "size=64 conns=1", "msg/s");
    assert!(
        scale.old.is_some() && scale.new.is_some(),
        "reordered words matched"
    );
    for figure in ["conn/s", "connect p99", "echo p99"] {
        let c = cell(&d, "reactor", "churn", "slots=", figure);
        assert_eq!(c.verdict, Verdict::OnlyIn(Side::Old), "{figure}");
        assert!(c.new.is_none() && c.change_pct.is_none());
    }
    let c = cell(&d, "epoll", "scale", "conns=999", "msg/s");
    assert_eq!(c.verdict, Verdict::OnlyIn(Side::New));
    let c = cell(&d, "socat", "idle", "idle=", "memory/conn");
    assert_eq!(c.verdict, Verdict::OnlyIn(Side::New));
    assert_eq!(d.missing.rows, vec![(Side::New, "socat".to_string())]);
    assert_eq!(
        d.missing.scenarios,
        vec![(Side::Old, "reactor".to_string(), "churn".to_string())]
    );
    let md = text::markdown(&d);
    assert!(md.contains("- row `socat`: only in the new"), "{md}");
    assert!(
        md.contains("- `reactor` churn: only in the baseline"),
        "{md}"
    );
    assert!(
        md.contains("| reactor | slots=4 | conn/s |") && md.contains("| only in baseline |"),
        "one-side cells are in the table: {md}"
    );
    assert!(
        md.contains("| epoll | conns=999 size=64 | msg/s | – |"),
        "{md}"
    );
    assert!(text::summary(&d).contains(" on one side only"));
    assert!(d.counts().one_side >= 3 + 3 + 4);
}

#[test]
fn a_change_is_read_against_the_ranges_and_the_noise_floor() {
    let floor = noise_floor_pct(Kind::Throughput) / 100.0;
    let base = [1000.0, 1010.0];
    let verdict = |old: &[f64], new: &[f64]| {
        let (mut a, mut b) = (fixture(), fixture());
        set(&mut a, SCALE20, old, msgs);
        set(&mut b, SCALE20, new, msgs);
        let d = Diff::new(&a, &b, "a", "b");
        let c = cell(&d, SCALE20.0, SCALE20.1, SCALE20.2, "msg/s");
        (c.verdict, c.verdict_text(), c.change_pct)
    };
    let scaled = |k: f64| [base[0] * k, base[1] * k];
    // Ranges apart, change under the floor: noise.
    let (v, _, pct) = verdict(&base, &scaled(1.0 + floor / 2.0));
    assert_eq!(v, Verdict::WithinNoise);
    assert!((pct.unwrap() - floor * 50.0).abs() < 0.1, "{pct:?}");
    // Ranges apart, change over the floor, either way.
    let (v, words, _) = verdict(&base, &scaled(1.0 + 4.0 * floor));
    assert_eq!((v, words.as_str()), (Verdict::Improved, "faster"));
    let (v, words, pct) = verdict(&scaled(1.0 + 4.0 * floor), &base);
    assert_eq!((v, words.as_str()), (Verdict::Regressed, "slower"));
    assert!(pct.unwrap() < 0.0);
    // The floor is a factor either way: a drop by a little more than
    // 1 / (1 + floor) is beyond it, a drop by a little less is not.
    for (k, want) in [(1.1, Verdict::Regressed), (0.9, Verdict::WithinNoise)] {
        let (v, _, _) = verdict(&base, &scaled(1.0 / (1.0 + floor * k)));
        assert_eq!(v, want, "a drop by a factor of {}", 1.0 + floor * k);
    }
    // Over the floor but the ranges overlap: noise.
    let wide = [1000.0, 1000.0 * (1.0 + 6.0 * floor)];
    let (v, _, pct) = verdict(&wide, &[wide[1] * 0.99, wide[1] * 0.995]);
    assert!(pct.unwrap() > floor * 100.0, "{pct:?}");
    assert_eq!(v, Verdict::WithinNoise);
}

#[test]
fn lower_is_better_for_latency_cpu_and_memory_and_higher_for_fairness() {
    // (figure, point, setter, kind, higher value's verdict word)
    type Put = fn(&mut RunResult, f64);
    type Case<'a> = (&'a str, (&'a str, &'a str, &'a str), Put, Kind, &'a str);
    let cases: [Case; 5] = [
        ("p99", SCALE20, p99, Kind::Latency, "worse"),
        (
            "server CPU/msg",
            SCALE20,
            |r, v| {
                let cg = r.server.as_mut().and_then(|s| s.cgroup.as_mut());
                cg.expect("the fixture ran in cgroups").cpu_us_per_msg = Some(v);
            },
            Kind::Cpu,
            "worse",
        ),
        (
            "memory/conn",
            ("reactor", "idle", "idle="),
            |r, v| r.server.as_mut().unwrap().rss_per_conn_bytes = v,
            Kind::Memory,
            "worse",
        ),
        (
            "light Jain index",
            ("epoll", "fairness", "light"),
            |r, v| r.fairness.jain_index = v,
            Kind::Fairness,
            "better",
        ),
        ("msg/s", SCALE20, msgs, Kind::Throughput, "faster"),
    ];
    for (figure, at, put, kind, up) in cases {
        // Far enough from zero that the change passes every absolute floor.
        let k = 1.0 + 4.0 * noise_floor_pct(kind) / 100.0;
        let (lo, hi) = ([10_000.0, 10_100.0], [10_000.0 * k, 10_100.0 * k]);
        for (old, new, word) in [(&lo, &hi, up), (&hi, &lo, opposite(up))] {
            let (mut a, mut b) = (fixture(), fixture());
            set(&mut a, at, old, put);
            set(&mut b, at, new, put);
            let d = Diff::new(&a, &b, "a", "b");
            let c = cell(&d, at.0, at.1, at.2, figure);
            assert_eq!(c.kind(), kind, "{figure}");
            assert_eq!(c.verdict_text(), word, "{figure}: {old:?} -> {new:?}");
        }
    }
}

fn opposite(word: &str) -> &'static str {
    match word {
        "faster" => "slower",
        "slower" => "faster",
        "better" => "worse",
        _ => "better",
    }
}

#[test]
fn failed_runs_are_marked_and_left_out() {
    let mut old = fixture();
    set(&mut old, SCALE20, &[1000.0, 1010.0], msgs);
    // One of two repeats failed: read on the other, the failed one shown
    // apart (its figure, however far off, is not in the change).
    let mut new = fixture();
    set(&mut new, SCALE20, &[1005.0, 1e9], msgs);
    runs_mut(&mut new, SCALE20.0, SCALE20.1, SCALE20.2)[1]
        .outcome
        .ok = false;
    let d = Diff::new(&old, &new, "a", "b");
    let c = cell(&d, SCALE20.0, SCALE20.1, SCALE20.2, "msg/s");
    assert_eq!(c.verdict, Verdict::WithinNoise);
    assert_eq!(
        c.change_pct,
        Some(0.0),
        "the failed repeat is not in the median"
    );
    let md = text::markdown(&d);
    assert!(md.contains("| 1005/s; ✗ 1 of 2 left out |"), "{md}");
    assert!(text::summary(&d).contains("read without their failed repeats"));
    // Every repeat failed: not compared at all.
    for r in runs_mut(&mut new, SCALE20.0, SCALE20.1, SCALE20.2) {
        r.outcome.ok = false;
    }
    let d = Diff::new(&old, &new, "a", "b");
    for figure in ["msg/s", "p99"] {
        let c = cell(&d, SCALE20.0, SCALE20.1, SCALE20.2, figure);
        assert_eq!(c.verdict, Verdict::Failed(Some(Side::New)), "{figure}");
        assert_eq!(c.change_pct, None);
    }
    assert!(
        d.regressions(0.0).is_empty(),
        "a failed cell is no regression"
    );
    let md = text::markdown(&d);
    assert!(md.contains(" ✗ | – | failed in new |"), "{md}");
}

/// A temporary folder of this test's own.
fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgen-diff-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, r: &CompareResults) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string(r).unwrap()).unwrap();
    path
}

/// Checks a command's exit status; returns its stderr.
fn exits(out: &std::process::Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    stderr
}

fn diff_cmd(args: &[&Path], flags: &[&str]) -> std::process::Output {
    let mut cmd = loadgen();
    cmd.arg("diff").args(args).args(flags);
    output_within(cmd, Duration::from_secs(60), "loadgen diff")
}

#[test]
fn fail_on_regression_exits_3_and_names_the_cells() {
    let dir = temp("regress");
    let mut old = fixture();
    let mut new = fixture();
    let k = 1.0 + 4.0 * noise_floor_pct(Kind::Throughput) / 100.0;
    set(&mut old, SCALE20, &[1000.0 * k, 1010.0 * k], msgs);
    set(&mut new, SCALE20, &[1000.0, 1010.0], msgs);
    let (a, b) = (write(&dir, "old.json", &old), write(&dir, "new.json", &new));
    let out_md = dir.join("diff.md");
    let out = diff_cmd(&[&a, &b], &["--out", out_md.to_str().unwrap()]);
    exits(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| **slower** |"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(&out_md).unwrap(),
        stdout,
        "--out holds the same"
    );

    let out = diff_cmd(&[&a, &b], &["--fail-on-regression", "10%"]);
    let stderr = exits(&out, 3);
    assert!(
        stderr.contains("regression over 10%: reactor scale conns=20 size=64 msg/s:")
            && stderr.contains("slower"),
        "{stderr}"
    );
    // A regression smaller than PCT does not fail.
    let out = diff_cmd(&[&a, &b], &["--fail-on-regression", "99"]);
    exits(&out, 0);
    // A run against itself passes.
    let out = diff_cmd(&[&a, &a], &["--fail-on-regression", "0"]);
    exits(&out, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_exits_2_naming_the_argument_and_the_file() {
    let dir = temp("bad");
    let good = write(&dir, "results.json", &fixture());
    let missing = dir.join("nothing-here.json");
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "not json at all").unwrap();
    let one_run = dir.join("one-run.json");
    let run = &fixture().runs[0];
    std::fs::write(&one_run, serde_json::to_string(run).unwrap()).unwrap();
    let mut doc: serde_json::Value = serde_json::to_value(fixture()).unwrap();
    doc["schema_version"] = 99.into();
    let future = dir.join("future.json");
    std::fs::write(&future, doc.to_string()).unwrap();
    let cases: [(&Path, &Path, &str, &str); 5] = [
        (&missing, &good, "OLD", "cannot read it"),
        (&good, &garbage, "NEW", "not JSON"),
        (&good, &one_run, "NEW", "one run's result"),
        (&future, &good, "OLD", "schema version 99"),
        // A folder stands for its results.json.
        (&dir.join("sub"), &good, "OLD", "sub/results.json"),
    ];
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    for (old, new, what, why) in cases {
        let out = diff_cmd(&[old, new], &[]);
        let stderr = exits(&out, 2);
        assert!(
            stderr.contains(&format!("loadgen diff: {what}: ")),
            "{stderr}"
        );
        assert!(stderr.contains(why), "{why}: {stderr}");
    }
    // The folder of a good results.json is read as it.
    let out = diff_cmd(&[&dir, &good], &["--fail-on-regression", "0"]);
    exits(&out, 0);
    // compare refuses a bad baseline before it runs anything, and
    // --fail-on-regression without one.
    for (flags, what) in [
        (vec!["--baseline", missing.to_str().unwrap()], "--baseline"),
        (vec!["--fail-on-regression", "5"], "--baseline"),
        (
            vec![
                "--baseline",
                good.to_str().unwrap(),
                "--fail-on-regression",
                "x",
            ],
            "--fail-on-regression",
        ),
    ] {
        let mut cmd = loadgen();
        cmd.args(["compare", "--profile", "smoke", "--out"])
            .arg(dir.join("never"))
            .args(&flags);
        let out = output_within(cmd, Duration::from_secs(60), "compare with a bad baseline");
        let stderr = exits(&out, 2);
        assert!(stderr.contains(what), "{flags:?}: {stderr}");
        assert!(!dir.join("never").exists(), "nothing ran: {flags:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compare_with_a_baseline_adds_the_change_to_its_report() {
    let dir = temp("compare");
    let baseline = write(&dir, "baseline.json", &fixture());
    let out_dir = dir.join("new");
    let mut cmd = smoke_compare("epoll");
    cmd.arg("--out")
        .arg(&out_dir)
        .arg("--baseline")
        .arg(&baseline);
    let out = output_within(cmd, Duration::from_secs(300), "compare --baseline");
    let stderr = exits(&out, 0);
    assert!(stderr.contains("against the baseline: "), "{stderr}");
    let report = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    let section = report
        .split("## Change against baseline")
        .nth(1)
        .expect("report.md has the change section");
    assert!(
        section.contains("- row `reactor`: only in the baseline"),
        "{section}"
    );
    assert!(section.contains("[diff.md](diff.md)"), "{section}");
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(
        html.contains("Change against baseline"),
        "report.html is report.md as a page, the section included"
    );
    let md = std::fs::read_to_string(out_dir.join("diff.md")).unwrap();
    assert!(
        md.contains("### scale") && md.contains("| epoll | conns=20 size=64 | msg/s |"),
        "{md}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
