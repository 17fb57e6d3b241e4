//! What report.md's readings may rank, from hand-built results shaped like
//! a side-by-side run under a CPU quota (each style beside an epoll run of
//! its own, in rounds): a style is ranked against epoll, or against
//! another, only where the rounds' ranges do not overlap; a cell measured
//! once, client-bound or failed is never ranked, and the reading says why;
//! without a quota throughput and cost rank nothing; cost per message
//! ranks only where both sides were server-bound. No server runs here.

use loadgen::RunResult;
use loadgen::compare::model::{CgroupSetup, CompareResults};
use loadgen::report::write as write_outputs;
use loadgen::results::Tags;
use loadgen::results::server::CgroupStats;

mod common;
use common::compare_fixture as fixture;

const QUOTA: f64 = 0.25;

/// A scale run at `conns` (64 B, round `round`), `partner_of` set for an
/// epoll run measured beside that style; its server in a cgroup with the
/// quota, using all of it, at `us` µs of CPU per message.
fn run(
    t: &RunResult,
    style: &str,
    partner_of: &str,
    conns: usize,
    round: u32,
    rate: f64,
    us: f64,
) -> RunResult {
    let mut r = t.clone();
    r.tags = Some(Tags {
        style: style.into(),
        scenario: "scale".into(),
        point: format!("conns={conns} size=64"),
        repeat: round,
        partner_of: partner_of.into(),
    });
    r.label = Some(format!("{style}/scale/conns={conns} size=64 r{round}"));
    r.spec.conns = conns;
    r.spec.size = 64;
    r.measured_s = 3.0;
    r.throughput_msgs_per_s = rate;
    r.messages = (rate * 3.0) as u64;
    r.client.client_bound = false;
    r.conns_unserved = 0;
    r.outcome.ok = true;
    let sv = r
        .server
        .as_mut()
        .expect("the fixture's scale runs are sampled");
    sv.cgroup = Some(CgroupStats {
        version: "v1".into(),
        cpu_quota: Some(QUOTA),
        cpu_s: Some(QUOTA * 3.0),
        cpu_us_per_msg: Some(us),
        ..Default::default()
    });
    r
}

/// Two rounds at 50 and 1,000 connections, each style beside its own epoll
/// run. Paired throughput ratios (style / its epoll partner):
/// reactor 0.97 and 1.03 at 1,000 (overlaps 1), threads 0.39 and 0.43
/// (below 1), tasks 1.10 and 1.20 (above 1); at 50 connections reactor
/// 1.00/1.02 and tasks 1.01/1.05, whose ranges overlap each other. Every
/// server used its whole quota; threads cost 2.0× epoll per message.
fn results() -> CompareResults {
    let mut f = fixture();
    let t = f
        .runs
        .iter()
        .find(|r| r.tags.as_ref().is_some_and(|t| t.scenario == "scale"))
        .unwrap()
        .clone();
    f.profile = "quick".into();
    f.styles = ["epoll", "reactor", "threads", "tasks"]
        .map(String::from)
        .to_vec();
    f.repeat = 2;
    f.cgroup = Some(CgroupSetup {
        used: true,
        made_by: "loadgen".into(),
        version: Some("v1".into()),
        cpu_quota: Some(QUOTA),
        period_us: 10_000,
        note: None,
        socket_accounting: None,
    });
    for s in &mut f.servers {
        s.cpu_quota = Some(QUOTA);
        s.cgroup = Some("c10k".into());
    }
    f.runs.clear();
    f.capacity.clear();
    let ratios: [(&str, usize, [f64; 2]); 6] = [
        ("reactor", 50, [1.00, 1.02]),
        ("tasks", 50, [1.01, 1.05]),
        ("threads", 50, [0.60, 0.62]),
        ("reactor", 1000, [0.97, 1.03]),
        ("threads", 1000, [0.39, 0.43]),
        ("tasks", 1000, [1.10, 1.20]),
    ];
    for (round, epoll) in [(0, 30_000.0), (1, 20_000.0)] {
        for conns in [50, 1000] {
            f.runs.push(run(&t, "epoll", "", conns, round, epoll, 8.0));
        }
        for (style, conns, r) in ratios {
            let us = if style == "threads" { 16.0 } else { 8.0 };
            let partner = epoll * 1.01;
            f.runs
                .push(run(&t, "epoll", style, conns, round, partner, 8.0));
            f.runs.push(run(
                &t,
                style,
                "",
                conns,
                round,
                partner * r[round as usize],
                us,
            ));
        }
    }
    f
}

fn report(results: &CompareResults, name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("loadgen-rankings-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    write_outputs(results, &dir).expect("report written");
    let text = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    text
}

/// The scale reading, and the cost reading after it.
fn readings(report: &str) -> (String, String) {
    let mut it = report
        .lines()
        .filter(|l| l.starts_with("**Reading.**"))
        .map(String::from);
    (
        it.next().expect("scale reading"),
        it.next().expect("cost reading"),
    )
}

fn scale_mut<'a>(
    f: &'a mut CompareResults,
    style: &str,
    partner_of: &str,
    conns: usize,
    round: u32,
) -> &'a mut RunResult {
    f.runs
        .iter_mut()
        .find(|r| {
            r.tags.as_ref().is_some_and(|t| {
                t.style == style
                    && t.partner_of == partner_of
                    && t.point == format!("conns={conns} size=64")
                    && t.repeat == round
            })
        })
        .unwrap_or_else(|| panic!("{style} beside {partner_of:?} at {conns}, round {round}"))
}

#[test]
fn only_separated_ranges_are_ranked() {
    let text = report(&results(), "separated");
    let (scale, _) = readings(&text);
    // Against epoll: threads and tasks separate, reactor does not.
    assert!(
        scale.contains("threads did 0.41 (0.39–0.43) of epoll's rate"),
        "{scale}"
    );
    assert!(
        scale.contains("tasks did 1.15 (1.10–1.20) times epoll's rate"),
        "{scale}"
    );
    assert!(
        scale.contains("At 1,000 connections reactor and epoll were not told apart (0.97–1.03)"),
        "{scale}"
    );
    assert!(!scale.contains("reactor did"), "{scale}");
    // Between the others: at 50 connections tasks (1.01–1.05) and reactor
    // (1.00–1.02) overlap; both are above threads (0.60–0.62).
    assert!(
        scale.contains(
            "Between the others at 50 connections: tasks and reactor were not told apart (0.99–1.05); \
             reactor faster than threads."
        ),
        "{scale}"
    );
    assert!(!scale.contains("At 50 connections reactor did"), "{scale}");
    assert!(
        scale.contains(
            "Between the others at 1,000 connections: tasks faster than reactor; reactor faster than threads."
        ),
        "{scale}"
    );
    // No sentence names the extremes.
    assert!(!scale.contains("led with"), "{scale}");
    assert!(!scale.contains("best ratio"), "{scale}");
    assert!(!scale.contains("Not ranked"), "{scale}");
    // The cells show median (min–max) over the two rounds; the table the
    // ratio with its range, every round server-bound.
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| threads |"))
        .collect();
    assert!(
        rows.contains(&"| threads | 0.61 (0.60–0.62) ‡ | 0.41 (0.39–0.43) ‡ |"),
        "{rows:#?}"
    );
}

#[test]
fn once_client_bound_and_failed_cells_are_never_ranked() {
    let mut f = results();
    // threads at 1,000: loadgen was the limit in one round (its partner's).
    scale_mut(&mut f, "epoll", "threads", 1000, 1)
        .client
        .client_bound = true;
    // tasks at 1,000: 200 of its connections never got a reply in a round.
    scale_mut(&mut f, "tasks", "", 1000, 0).conns_unserved = 200;
    // reactor at 50: measured in one round only (the other's runs gone).
    f.runs.retain(|r| {
        r.tags.as_ref().is_none_or(|t| {
            !(t.repeat == 1
                && t.point == "conns=50 size=64"
                && (t.style == "reactor" || t.partner_of == "reactor"))
        })
    });
    let text = report(&f, "left-out");
    let (scale, _) = readings(&text);
    for ranked in [
        "threads did 0.41",
        "tasks did 1.15",
        "At 50 connections reactor and epoll",
        "tasks faster than reactor",
    ] {
        assert!(!scale.contains(ranked), "{ranked} ranked: {scale}");
    }
    assert!(
        scale.contains("reactor at 50 connections, measured once: no range to rank by"),
        "{scale}"
    );
    assert!(
        scale.contains(
            "threads at 1,000 connections, client-bound: loadgen was the limit in at least one round"
        ),
        "{scale}"
    );
    assert!(
        scale.contains("tasks at 1,000 connections, failed (errors, or connections never served)"),
        "{scale}"
    );
    // What still separates is still ranked.
    assert!(
        scale.contains("threads did 0.61 (0.60–0.62) of epoll's rate"),
        "{scale}"
    );
}

#[test]
fn without_a_quota_throughput_and_cost_rank_nothing() {
    let mut f = results();
    f.cgroup = Some(CgroupSetup {
        used: false,
        made_by: "loadgen".into(),
        note: Some("not root: cgroups are not writable".into()),
        ..Default::default()
    });
    for r in &mut f.runs {
        r.server.as_mut().unwrap().cgroup = None;
    }
    for s in &mut f.servers {
        s.cpu_quota = None;
        s.cgroup = None;
    }
    let text = report(&f, "no-quota");
    assert_eq!(
        text.matches("**Throughput does not rank the styles in this run**")
            .count(),
        1,
        "{text}"
    );
    assert!(
        text.contains(
            "cgroups could not be used (not root: cgroups are not writable), so loadgen and each server \
             shared the limit"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "the readings rank only by what is still meaningful: memory, connections served"
        ),
        "{text}"
    );
    let scale = text
        .lines()
        .find(|l| l.starts_with("**Reading.**"))
        .unwrap();
    assert!(
        scale.contains("Throughput does not rank the styles in this run"),
        "{scale}"
    );
    assert!(!scale.contains("did 0.41"), "{scale}");
    assert!(!scale.contains("faster than"), "{scale}");
}

#[test]
fn cost_per_message_ranks_only_where_both_sides_were_server_bound() {
    let mut f = results();
    // reactor at 1,000, first round: its server used 60% of its quota.
    let r = scale_mut(&mut f, "reactor", "", 1000, 0);
    r.server.as_mut().unwrap().cgroup.as_mut().unwrap().cpu_s = Some(0.6 * QUOTA * 3.0);
    let text = report(&f, "cost");
    assert!(!text.contains("does not depend on whether"), "{text}");
    assert!(
        text.contains(
            "It ranks the styles only where both were server-bound (‡: the server used its whole CPU quota in \
             every round and loadgen had room); elsewhere it is shown but not ranked"
        ),
        "{text}"
    );
    let (_, cost) = readings(&text);
    assert!(
        cost.contains("threads cost 2.00 times epoll's CPU per message"),
        "{cost}"
    );
    assert!(
        cost.contains("At 50 connections reactor and epoll were not told apart (1.00)"),
        "{cost}"
    );
    assert!(
        cost.contains(
            "reactor at 1,000 connections, not server-bound in every round on both sides: a server that is \
             not saturated wakes up per message"
        ),
        "{cost}"
    );
    assert!(!cost.contains("ranged from"), "{cost}");
}

#[test]
fn the_opening_says_how_busy_the_machine_was() {
    let mut f = results();
    f.environment.cores = 2;
    f.environment.load_average = Some([0.3, 0.2, 0.1]);
    let text = report(&f, "quiet");
    assert!(
        text.contains("The machine was quiet (load average 0.30 over the minute before the run"),
        "{text}"
    );
    f.environment.load_average = Some([97.0, 98.0, 60.0]);
    let text = report(&f, "busy");
    assert!(
        text.contains(
            "The machine was busy (load average 97 over the minute before the run, 98 over the 5 minutes \
             before, on 2 cores): figures are noisier than on a quiet machine."
        ),
        "{text}"
    );
}

/// Each scenario's section says whether its servers had the quota: the
/// main servers did, fairness's own did not.
#[test]
fn each_section_says_whether_its_servers_had_the_quota() {
    let mut f = fixture();
    f.cgroup = Some(CgroupSetup {
        used: true,
        made_by: "loadgen".into(),
        version: Some("v1".into()),
        cpu_quota: Some(QUOTA),
        period_us: 10_000,
        note: None,
        socket_accounting: None,
    });
    for s in &mut f.servers {
        s.cgroup = Some("c10k".into());
        s.cpu_quota = (s.phase == "main").then_some(QUOTA);
    }
    let text = report(&f, "sections");
    let section = |name: &str| -> String {
        text.split(&format!("\n## {name}"))
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .unwrap_or_else(|| panic!("a {name} section: {text}"))
            .to_string()
    };
    let quota = "Its servers ran under the CPU quota (0.25 CPU, 10 ms period): the server, not loadgen, is the \
                 limit, but CFS throttling adds stalls of up to 7.5 ms (period − quota) to latency";
    for name in ["idle", "open", "churn"] {
        assert!(section(name).contains(quota), "{name}: {}", section(name));
    }
    assert!(
        section("fairness").contains(
            "Its servers ran without a CPU quota: loadgen may be the limit (see the † marks)."
        ),
        "{}",
        section("fairness")
    );
}

/// With two rounds the median run is the lower of the two: a cell, its
/// knee and its chart point read the median of the rounds (epoll did
/// 30,000 and 20,000 msg/s: 25.0k), never the lower round, which the
/// charts once drew at the end of its own whisker.
#[test]
fn a_point_reads_the_median_of_its_rounds_not_the_lower_run() {
    let f = results();
    let view = loadgen::report::view::View::new(&f);
    let knee = view.knee("epoll", 64).expect("epoll has scale points");
    assert!(
        (knee.peak_rate - 25_000.0).abs() < 1e-6,
        "the knee's rate is the rounds' median: {knee:?}"
    );
    let report = report(&f, "median");
    assert!(
        report.contains("conns (25.0k/s)"),
        "{}",
        report
            .lines()
            .find(|l| l.starts_with("| epoll |"))
            .unwrap_or("")
    );
}
