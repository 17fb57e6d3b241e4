//! Ratios to epoll in every report, and the perf profile's perf.md, built
//! from the smoke fixture (tests/fixtures) reshaped into small made-up
//! results: no server runs here.

use std::time::Duration;

use loadgen::RunResult;
use loadgen::compare::model::CompareResults;
use loadgen::report::write as write_outputs;
use loadgen::results::{Tags, record};

mod common;
use common::compare_fixture as fixture;
use common::fixture_with_epoll as with_epoll;

fn write(results: &CompareResults, name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("loadgen-perf-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    write_outputs(results, &dir).expect("report written");
    dir
}

#[test]
fn every_report_shows_ratios_to_epoll() {
    let dir = write(&with_epoll(), "ratios");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("**vs epoll, 64 B**"), "{report}");
    // threads 80493.3 / epoll 106716.7 at 20 conns = 0.75; polling 21043.3
    // / 11546.7 at 1 conn = 1.82, and 100590.0 / 106716.7 = 0.94 at 20,
    // client-bound.
    assert!(report.contains("| threads | 1.09 | 0.75 |"), "{report}");
    assert!(report.contains("| polling | 1.82 | 0.94 † |"), "{report}");
    assert!(report.contains("| epoll | 1.00 | 1.00 † |"), "{report}");
    // One round and no quota: nothing is ranked, and the extremes are not
    // named.
    assert!(!report.contains("the best ratio was"), "{report}");
    assert!(
        report.contains("Throughput does not rank the styles in this run"),
        "{report}"
    );
    assert!(!report.contains("no throughput ratios"), "{report}");
    assert!(
        !dir.join("perf.md").exists(),
        "perf.md is the perf profile's"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn without_epoll_the_report_says_so_once() {
    let dir = write(&fixture(), "no-epoll");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert_eq!(
        report.matches("was not among the styles").count(),
        1,
        "{report}"
    );
    assert!(!report.contains("vs epoll"), "{report}");
    assert!(!report.contains("Against epoll"), "{report}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A made-up closed-loop run at `conns`, 64 B.
fn scale_run(t: &RunResult, style: &str, conns: usize, rate: f64, bound: bool) -> RunResult {
    let mut r = t.clone();
    r.tags = Some(Tags {
        style: style.into(),
        scenario: "scale".into(),
        point: format!("conns={conns} size=64"),
        repeat: 0,
        partner_of: String::new(),
    });
    r.label = Some(format!("{style}/scale/conns={conns} size=64"));
    r.spec.conns = conns;
    r.spec.size = 64;
    r.throughput_msgs_per_s = rate;
    r.messages = (rate * 3.0) as u64;
    r.client.client_bound = bound;
    r.connect.established = conns as u64;
    r.histograms.first_reply = Default::default();
    for _ in 0..conns {
        record(&mut r.histograms.first_reply.0, Duration::from_micros(200));
    }
    r.conns_unserved = 0;
    r.refresh_derived();
    r
}

fn idle_run(t: &RunResult, style: &str, idle: usize, per_conn: f64, cpu: f64) -> RunResult {
    let mut r = t.clone();
    r.tags = Some(Tags {
        style: style.into(),
        scenario: "idle".into(),
        point: format!("idle={idle} active=10"),
        repeat: 0,
        partner_of: String::new(),
    });
    r.spec.idle = idle;
    let sv = r
        .server
        .as_mut()
        .expect("the fixture's idle run is sampled");
    sv.rss_per_conn_bytes = per_conn;
    sv.cpu_percent = cpu;
    r
}

/// A small perf run: a few styles, every connection count, idle memory, and
/// two polling variants.
fn perf_fixture() -> CompareResults {
    let mut f = fixture();
    let scale = f
        .runs
        .iter()
        .find(|r| r.tags.as_ref().is_some_and(|t| t.scenario == "scale"))
        .unwrap()
        .clone();
    let idle = f
        .runs
        .iter()
        .find(|r| r.tags.as_ref().is_some_and(|t| t.scenario == "idle"))
        .unwrap()
        .clone();
    f.profile = "perf".into();
    f.styles = [
        "epoll",
        "reactor",
        "tasks:current_thread",
        "tasks:multi_thread",
        "threads",
        "polling:sleep0",
        "polling:sleep1000",
    ]
    .map(String::from)
    .to_vec();
    f.servers.clear();
    f.runs.clear();
    let rates: [(&str, [f64; 3], bool); 5] = [
        ("epoll", [100_000.0, 90_000.0, 80_000.0], false),
        ("reactor", [97_000.0, 81_000.0, 76_000.0], false),
        (
            "tasks:current_thread",
            [91_000.0, 80_000.0, 60_000.0],
            false,
        ),
        ("tasks:multi_thread", [88_000.0, 83_000.0, 50_000.0], true),
        ("threads", [70_000.0, 45_000.0, 40_000.0], false),
    ];
    for (style, r, bound) in rates {
        for (i, conns) in [50, 1000, 10_000].into_iter().enumerate() {
            f.runs.push(scale_run(&scale, style, conns, r[i], bound));
        }
    }
    for (style, per) in [
        ("epoll", 300.0),
        ("reactor", 2500.0),
        ("tasks:current_thread", 3000.0),
        ("tasks:multi_thread", 3500.0),
        ("threads", 9000.0),
    ] {
        f.runs.push(idle_run(&idle, style, 10_000, per, 3.0));
    }
    f.runs
        .push(idle_run(&idle, "polling:sleep0", 1000, 60.0, 99.0));
    f.runs
        .push(idle_run(&idle, "polling:sleep1000", 1000, 60.0, 4.0));
    f
}

#[test]
fn perf_md_and_report_hold_the_verdicts() {
    let dir = write(&perf_fixture(), "perf");
    let perf = std::fs::read_to_string(dir.join("perf.md")).expect("perf.md written");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    // The same tables in both.
    let tables = loadgen::report::perf::tables(&perf_fixture());
    assert!(perf.contains(&tables), "{perf}");
    assert!(report.contains(&tables), "{report}");
    assert!(report.contains("## perf: every style against epoll"));

    assert!(
        perf.contains("| style | 50 conns | 1,000 conns | 10,000 conns |"),
        "{perf}"
    );
    assert!(
        perf.contains("| epoll (the reference, msg/s) | 100.0k/s | 90.0k/s | 80.0k/s |"),
        "{perf}"
    );
    // reactor: 0.97 pass, 0.90 miss (≥ 0.95), 0.95 pass (≥ 0.9).
    assert!(
        perf.contains(
            "| reactor | 0.97 ≥ 0.95: pass | 0.90 ≥ 0.95: **miss** | 0.95 ≥ 0.90: pass |"
        ),
        "{perf}"
    );
    // tasks: best of the two, each shown; multi_thread was client-bound, so
    // its miss at 10,000 is not (current_thread was the best there).
    assert!(
        perf.contains(
            "| tasks (best variant) | 0.91 (current_thread) ≥ 0.90: pass | 0.92 (multi_thread) ≥ 0.90: pass \
             (client-bound) | 0.75 (current_thread) ≥ 0.85: **miss** |"
        ),
        "{perf}"
    );
    assert!(
        perf.contains("| ↳ tasks:multi_thread | 0.88 (88.0k/s) (client-bound) |"),
        "{perf}"
    );
    assert!(
        perf.contains("| threads | 0.70 | 0.50 | 0.50; held all 10,000: pass |"),
        "{perf}"
    );
    assert!(perf.contains("| coroutines | not run |"), "{perf}");
    // Who was the limit: loadgen's CPU per cell (no cgroups here, so no
    // server share).
    assert!(
        perf.contains("### Who was the limit (64 B, closed loop)"),
        "{perf}"
    );
    assert!(perf.contains("| epoll | loadgen "), "{perf}");
    assert!(perf.contains("**Throughput: 5 pass, 2 miss**"), "{perf}");

    // Memory: reactor 2.44 KiB > 2 KiB; tasks judged on its smaller variant.
    assert!(
        perf.contains("| epoll | 0.29 KiB | 0.29 KiB | not measured | ≤ 2.00 KiB | pass |"),
        "{perf}"
    );
    assert!(
        perf.contains("| reactor | 2.44 KiB | 2.44 KiB | not measured | ≤ 2.00 KiB | **miss** |"),
        "{perf}"
    );
    assert!(
        perf.contains(
            "| tasks | current_thread 2.93 KiB; multi_thread 3.42 KiB | current_thread 2.93 KiB; multi_thread 3.42 KiB | current_thread not measured; multi_thread not measured | ≤ 4.00 KiB | pass |"
        ),
        "{perf}"
    );
    assert!(
        perf.contains("| threads | 8.79 KiB | 8.79 KiB | not measured | report it | reported |"),
        "{perf}"
    );
    assert!(
        perf.contains("| coroutines | – | – | – | ≤ 33.00 KiB | – (not run) |"),
        "{perf}"
    );

    // polling: CPU against latency.
    assert!(
        perf.contains("### polling: CPU against latency at 1,000 idle connections"),
        "{perf}"
    );
    assert!(
        perf.contains("| polling:sleep1000 | `--poll-sleep-us 1000` | 4% |"),
        "{perf}"
    );
    assert!(
        perf.contains(
            "With `--poll-sleep-us 0` polling used 99% of a CPU watching 1,010 sockets (active p99 "
        ),
        "{perf}"
    );
    assert!(
        perf.contains("with `--poll-sleep-us 1000` it used 4% (active p99"),
        "{perf}"
    );

    // The polling variants ran only idle: no empty scale rows for them, and
    // the idle table gives each row its counts.
    let scale = &report[report.find("## scale").expect("a scale section")..];
    assert!(!scale.contains("| polling:sleep0 | – |"), "{report}");
    assert!(
        report.contains("| polling:sleep0 | 1000 + 10 |"),
        "{report}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn perf_without_epoll_gives_no_ratios() {
    let mut f = perf_fixture();
    f.styles.retain(|s| s != "epoll");
    f.runs
        .retain(|r| r.tags.as_ref().is_some_and(|t| t.style != "epoll"));
    let tables = loadgen::report::perf::tables(&f);
    assert!(
        tables.contains("epoll, the reference, was not among the styles in this run"),
        "{tables}"
    );
    assert!(!tables.contains("≥ 0.95"), "{tables}");
    // Memory is judged all the same.
    assert!(
        tables.contains("| reactor | 2.44 KiB | 2.44 KiB | not measured | ≤ 2.00 KiB | **miss** |")
    );
}

/// `--repeat 3`: each ratio is the median of the rounds' ratios, each
/// paired with epoll's in the same round, shown with its range; a target
/// is met only where every round met it, missed only where none did, and
/// "inconclusive" where the range straddles it.
#[test]
fn repeats_give_medians_ranges_and_inconclusive_verdicts() {
    let mut f = perf_fixture();
    let template = f
        .runs
        .iter()
        .find(|r| r.tags.as_ref().is_some_and(|t| t.scenario == "scale"))
        .unwrap()
        .clone();
    f.repeat = 3;
    f.runs.retain(|r| {
        r.tags.as_ref().is_some_and(|t| {
            t.scenario != "scale" || !["epoll", "reactor"].contains(&t.style.as_str())
        })
    });
    // Per connection count, the rounds' msg/s: (epoll, reactor).
    let rounds: [(usize, [f64; 3], [f64; 3]); 3] = [
        // 0.97, 0.93, 0.99 against >= 0.95: straddles.
        (50, [100e3; 3], [97e3, 93e3, 99e3]),
        // 0.90, 0.94, 0.93: every round under 0.95.
        (1000, [90e3; 3], [81e3, 84.6e3, 83.7e3]),
        // epoll's second round was slow and so was reactor's: paired, the
        // ratios are 0.95, 0.95, 0.98; unpaired, 38k/80k would be 0.48.
        (10_000, [80e3, 40e3, 80e3], [76e3, 38e3, 78.4e3]),
    ];
    for (conns, epoll, reactor) in rounds {
        for round in 0..3 {
            for (style, rate) in [("epoll", epoll[round]), ("reactor", reactor[round])] {
                let mut r = scale_run(&template, style, conns, rate, false);
                r.tags.as_mut().unwrap().repeat = round as u32;
                f.runs.push(r);
            }
        }
    }
    let tables = loadgen::report::perf::tables(&f);
    assert!(
        tables.contains(
            "| reactor | 0.97 (0.93–0.99) ≥ 0.95: inconclusive | 0.93 (0.90–0.94) ≥ 0.95: **miss** | \
             0.95 (0.95–0.98) ≥ 0.90: pass |"
        ),
        "{tables}"
    );
    assert!(
        tables.contains("1 inconclusive (the range over the repeats straddles the target)"),
        "{tables}"
    );
    // The reference row shows each point's median run: 80k at 10,000.
    assert!(
        tables.contains("| epoll (the reference, msg/s) | 100.0k/s | 90.0k/s | 80.0k/s |"),
        "{tables}"
    );
    let sentence = loadgen::report::perf::setup_sentence(&f);
    assert!(sentence.contains("measured 3 times"), "{sentence}");
    // The report's vs-epoll table gives the same ranges.
    let dir = write(&f, "repeats");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.contains("| reactor | 0.97 (0.93–0.99) | 0.93 (0.90–0.94) | 0.95 (0.95–0.98) |"),
        "{report}"
    );
    assert!(report.contains("| repeats | 3 rounds"), "{report}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Server CPU per message from the cgroup: a table of µs per message and
/// one of ratios to epoll (lower is leaner), in the report and perf.md.
#[test]
fn cost_per_message_is_tabled_against_epoll() {
    let mut f = perf_fixture();
    for r in &mut f.runs {
        let Some(t) = r.tags.clone().filter(|t| t.scenario == "scale") else {
            continue;
        };
        let us = match t.style.as_str() {
            "epoll" => 8.0,
            "reactor" => 8.4,
            _ => 12.0,
        };
        let sv = r
            .server
            .as_mut()
            .expect("the fixture's scale runs are sampled");
        sv.cgroup = Some(loadgen::results::server::CgroupStats {
            version: "v1".into(),
            cpu_quota: Some(0.5),
            cpu_s: Some(us * r.messages as f64 / 1e6),
            cpu_us_per_msg: Some(us),
            ..Default::default()
        });
    }
    let tables = loadgen::report::perf::tables(&f);
    assert!(
        tables.contains("### Server CPU per message against epoll"),
        "{tables}"
    );
    assert!(
        tables.contains("| reactor | 1.05 (8.40 µs) | 1.05 (8.40 µs) | 1.05 (8.40 µs) |"),
        "{tables}"
    );
    let dir = write(&f, "cost");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.contains("**Server CPU per message, 64 B**"),
        "{report}"
    );
    assert!(report.contains("| epoll | 8.00 µs"), "{report}");
    let _ = std::fs::remove_dir_all(dir);
}
