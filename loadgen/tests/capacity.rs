//! The capacity scenario: its search against a server whose limit is
//! known, `--slo` on the command line, and its report section from the
//! fixture (a real smoke comparison).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Parser;
use loadgen::compare::capacity::{Bound, MIN_ACHIEVED, Percentile, Slo};
use loadgen::compare::env::{Env, Target};
use loadgen::compare::model::CompareResults;
use loadgen::compare::profile::Profile;
use loadgen::compare::scenarios::capacity;
use loadgen::report::md::fmt_rate;
use loadgen::{RunResult, cli};

mod common;
use common::{compare_fixture, in_process_with, loadgen, output_within};

/// An epoll server on one thread that burns `WORK_US` of CPU per chunk it
/// reads. With one message in flight per connection every chunk holds at
/// most one message, so it cannot echo more than 1e6 / WORK_US messages a
/// second, however fast the machine; past that its queue grows for as long
/// as the step lasts, which breaks any objective. The search must land
/// below that bound (a step passes only with 99% of its rate achieved, so
/// at most bound / 0.99), and, on a machine that gives the server thread a
/// tenth of a core, above a tenth of it. No timing beyond that factor.
#[test]
fn the_search_finds_a_capacity_below_a_servers_known_limit() {
    const WORK_US: u64 = 500;
    let bound = 1e6 / WORK_US as f64;
    let server = in_process_with(
        servers::Style::Epoll,
        servers::Config {
            work_us: WORK_US,
            workers: Some(1),
            ..Default::default()
        },
    );
    let slo = Slo::parse("p99=100ms").unwrap();
    let mut profile = Profile::named("smoke").unwrap();
    profile.capacity_conns = vec![20];
    profile.capacity_slo = slo;
    profile.capacity_step = Duration::from_millis(500);
    profile.capacity_warmup = Duration::from_millis(200);
    profile.capacity_max_steps = 10;
    // An eighth of the bound: doubling crosses it at the fourth step.
    profile.capacity_start = bound / 8.0;
    let target = Target {
        style: "epoll".into(),
        addr: server.local_addr(),
        server_pid: None,
        container: None,
        cgroup: None,
        counters: None,
        idle_cpu: 0.0,
        foreign_cpus: None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut seen = 0;
    let mut on_run = |_: &RunResult| seen += 1;
    let mut env = Env::new(&profile, &target, stop, &mut on_run);
    let runs = capacity::run(&mut env, &[]);
    drop(env);
    assert_eq!(seen, runs.len());
    assert!(runs.len() <= 10, "at most the step cap: {}", runs.len());
    let found = capacity::searches(&runs, slo);
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = &found[0];
    let trace: Vec<String> = f
        .steps
        .iter()
        .map(|s| {
            format!(
                "{:.0}/s -> {:.0}/s p99 {} us: {:?}",
                s.rate, s.achieved, s.value_us, s.why
            )
        })
        .collect();
    let capacity = f
        .capacity_msgs_per_s
        .unwrap_or_else(|| panic!("some step passed: {trace:#?}"));
    assert!(
        capacity <= bound / MIN_ACHIEVED,
        "capacity {capacity:.0}/s above the server's limit {bound:.0}/s: {trace:#?}"
    );
    assert!(
        capacity > bound / 10.0,
        "capacity {capacity:.0}/s under a tenth of {bound:.0}/s: {trace:#?}"
    );
    // The search went past the capacity: a step above it failed. Which
    // side it blames depends on the machine: on a busy one loadgen's loop
    // is sometimes late by over 10 ms, and a step with more than 1% of its
    // slots late is the client's (the result is then a floor).
    let failed = f.failed_at_msgs_per_s.expect("a step failed");
    assert!(failed > capacity, "{trace:#?}");
    assert!(
        matches!(f.bound, Bound::Server | Bound::Client),
        "{:?}: {trace:#?}",
        f.bound
    );
    if f.bound == Bound::Client {
        eprintln!("the step above the capacity was client-limited here: {trace:#?}");
    }
    // Every step is a run of its own, tagged, its verdict kept.
    assert_eq!(f.steps.len(), runs.len());
    for (step, run) in f.steps.iter().zip(&runs) {
        assert_eq!(step.run_id, run.run_id);
        assert!(capacity::is_step(run));
        assert_eq!(step.pass, step.why.is_empty(), "{step:?}");
    }
}

#[test]
fn slo_takes_any_percentile_and_duration_and_bad_values_exit_2_naming_it() {
    let parsed = |args: &[&str]| match cli::Cli::try_parse_from(args).map(|c| c.command) {
        Ok(cli::Command::Compare(a)) => Ok(a.slo),
        Ok(_) => panic!("compare parses as compare"),
        Err(e) => Err(e),
    };
    assert_eq!(parsed(&["loadgen", "compare"]).unwrap(), None);
    let slo = parsed(&["loadgen", "compare", "--slo", "p99.9=250us"]).unwrap();
    assert_eq!(
        slo,
        Some(Slo {
            percentile: Percentile::P999,
            limit_us: 250
        })
    );
    for bad in ["p99", "p95=1ms", "p99=soon", "p99=0s", "max="] {
        let mut cmd = loadgen();
        cmd.args(["compare", "--profile", "smoke", "--slo", bad]);
        let out = output_within(cmd, Duration::from_secs(30), "compare --slo");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("--slo"), "{bad} names --slo: {stderr}");
    }
}

fn report_of(results: &CompareResults, name: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("loadgen-capacity-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    loadgen::report::write(results, &dir).expect("report written");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    (dir, report)
}

/// The capacity section of a report (at the default objective).
fn capacity_section(report: &str) -> &str {
    report
        .split("\n## capacity: the highest rate each style takes at p99 ≤ 1ms\n")
        .nth(1)
        .expect("a capacity section")
        .split("\n## churn")
        .next()
        .unwrap_or_default()
}

#[test]
fn the_report_has_a_capacity_table_a_chart_a_reading_and_the_trace() {
    let f = compare_fixture();
    assert!(!f.capacity.is_empty(), "the fixture has capacity searches");
    let (dir, report) = report_of(&f, "fixture");
    let section = capacity_section(&report);
    assert!(
        section.contains("| style | conns | capacity | p99 there |"),
        "{section}"
    );
    for s in &f.capacity {
        assert!(
            section.contains(&format!("| {} | {} | ", s.style, s.conns)),
            "{} has a row: {section}",
            s.style
        );
        assert!(
            section.contains(&format!("<details><summary>{}: every step", s.style)),
            "{section}"
        );
    }
    assert!(
        section.contains("**Reading.** At 20 connections"),
        "{section}"
    );
    // Its steps are not listed among the runs to distrust.
    let care = report.split("## Runs to read with care").nth(1).unwrap();
    assert!(!care.contains("/capacity/"), "{care}");
    assert_eq!(section.matches("At 20 connections").count(), 1, "{section}");
    let chart = dir.join("charts/capacity_20c.svg");
    let svg = std::fs::read_to_string(&chart).expect("the capacity chart");
    roxmltree::Document::parse(&svg).expect("the chart is SVG");
    assert!(report.contains("(charts/capacity_20c.svg)"));
    let _ = std::fs::remove_dir_all(dir);
}

/// A search whose step above the best pass was client-bound gives a floor,
/// "≥ X (client limit)", and one that never passed "< the lowest rate".
#[test]
fn a_client_limited_search_reads_as_a_floor_and_a_failed_one_as_a_ceiling() {
    let mut f = compare_fixture();
    let mut steps: Vec<RunResult> = f
        .runs
        .iter()
        .filter(|r| capacity::is_step(r))
        .cloned()
        .collect();
    let styles: Vec<String> = f.capacity.iter().map(|s| s.style.clone()).collect();
    let (floor, ceiling) = (&styles[0], &styles[1]);
    let rate_of = |r: &RunResult| match r.spec.mode {
        loadgen::Mode::Open { rate } => rate,
        _ => unreachable!("capacity steps are open loops"),
    };
    let lowest = |style: &str, steps: &[RunResult]| {
        steps
            .iter()
            .filter(|r| r.tags.as_ref().is_some_and(|t| t.style == style))
            .map(rate_of)
            .fold(f64::MAX, f64::min)
    };
    let (floor_lowest, ceiling_lowest) = (lowest(floor, &steps), lowest(ceiling, &steps));
    for r in &mut steps {
        let style = r.tags.as_ref().unwrap().style.clone();
        let rate = rate_of(r);
        r.errors = Default::default();
        if style == *floor && rate == floor_lowest {
            // Passes: on time, all of its rate.
            r.outcome = Default::default();
            r.outcome.ok = true;
            r.client.client_bound = false;
            r.throughput_msgs_per_s = rate;
            r.latency_us.p99 = 400;
        } else if style == *floor {
            // Missed, with loadgen saturated.
            r.latency_us.p99 = 50_000;
            r.client.client_bound = true;
            r.outcome.ok = false;
            r.outcome.reasons = vec!["the client could not keep the schedule".into()];
        } else if style == *ceiling {
            r.client.client_bound = false;
            r.outcome.reasons.clear();
            r.latency_us.p99 = 50_000;
        }
    }
    f.capacity = capacity::searches(&steps, Slo::default());
    let bound = |style: &str| f.capacity.iter().find(|s| s.style == style).unwrap().bound;
    assert_eq!(bound(floor), Bound::Client);
    assert_eq!(bound(ceiling), Bound::NonePassed);
    let (dir, report) = report_of(&f, "floor");
    let row_has = |style: &str, cell: String| {
        let row = report
            .lines()
            .find(|l| l.starts_with(&format!("| {style} | 20 | ")))
            .unwrap_or_else(|| panic!("{style} row: {report}"));
        assert!(row.contains(&cell), "{cell:?} in {row}");
    };
    row_has(
        floor,
        format!("| ≥ {}/s (client limit) |", fmt_rate(floor_lowest)),
    );
    row_has(floor, "client-bound".into());
    row_has(
        ceiling,
        format!("| < {}/s (no step passed) |", fmt_rate(ceiling_lowest)),
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Two connection counts: a row each per style, a sentence and a chart each.
#[test]
fn each_connection_count_gets_its_rows_sentence_and_chart() {
    let mut f = compare_fixture();
    let more: Vec<_> = f
        .capacity
        .iter()
        .map(|s| loadgen::compare::capacity::CapacitySearch {
            conns: 1000,
            ..s.clone()
        })
        .collect();
    f.capacity.extend(more);
    let (dir, report) = report_of(&f, "two");
    for n in [20, 1000] {
        let reading = capacity_section(&report)
            .lines()
            .find(|l| l.starts_with("**Reading.**"))
            .expect("the capacity reading");
        assert_eq!(
            reading.matches(&format!("At {n} connections")).count(),
            1,
            "{reading}"
        );
        for s in &f.styles {
            assert!(
                report.contains(&format!("| {s} | {n} | ")),
                "{s} at {n}: {report}"
            );
        }
        assert!(dir.join(format!("charts/capacity_{n}c.svg")).exists());
    }
    let _ = std::fs::remove_dir_all(dir);
}
