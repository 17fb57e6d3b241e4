//! The comparison report built from a fixed results file (a real smoke run
//! kept in tests/fixtures): table values, readings and chart files.

use std::time::Duration;

use loadgen::compare::model::CompareResults;
use loadgen::compare::scenarios::capacity::is_step;
use loadgen::report::write as write_outputs;
use loadgen::results::record;

mod common;
use common::compare_fixture as fixture;

fn build() -> (std::path::PathBuf, String) {
    build_from(&fixture())
}

fn build_from(results: &CompareResults) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!(
        "loadgen-report-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    write_outputs(results, &dir).expect("report written");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    (dir, report)
}

/// Gives a run first-reply figures: `served` connections answered after
/// `first`, the rest of its active connections never.
fn set_first_replies(r: &mut loadgen::RunResult, served: usize, first: Duration) {
    r.histograms.first_reply = Default::default();
    for _ in 0..served {
        record(&mut r.histograms.first_reply.0, first);
    }
    r.conns_unserved = (r.spec.conns - served) as u64;
    r.refresh_derived();
}

fn run_mut<'a>(
    f: &'a mut CompareResults,
    style: &str,
    scenario: &str,
    point: &str,
) -> &'a mut loadgen::RunResult {
    f.runs
        .iter_mut()
        .find(|r| {
            r.tags.as_ref().is_some_and(|t| {
                t.style == style && t.scenario == scenario && t.point.starts_with(point)
            })
        })
        .unwrap_or_else(|| panic!("{style}/{scenario}/{point} in the fixture"))
}

#[test]
fn scale_table_holds_the_fixture_values() {
    let (dir, report) = build();
    // In the fixture, threads did 12566.7 msg/s (p99 140 us) at 1 connection
    // and 80493.3 (p99 676 us, not client-bound) at 20; polling 21043.3
    // (182 us) and 100590.0 (364 us, client-bound); tasks 109333.3 at 20.
    assert!(
        report.contains("| threads | 12.6k (140 us) | 80.5k (676 us) |"),
        "{report}"
    );
    // The fixture predates first-reply figures: those columns say so.
    assert!(
        report.contains("| first reply p99 at 20 conns | served | knee |"),
        "{report}"
    );
    assert!(
        report.contains("| threads | 12.6k (140 us) | 80.5k (676 us) | — | — | peaks at 20 conns"),
        "{report}"
    );
    assert!(
        !report.contains("connections got a reply:"),
        "no unserved reading: {report}"
    );
    assert!(
        report.contains("| polling | 21.0k (182 us) | 100.6k (364 us) † |"),
        "{report}"
    );
    assert!(report.contains("peaks at 20 conns (80.5k/s); p99 under 10 ms throughout"));
    // The fixture's servers had no cgroups, so no quota: throughput ranks
    // nothing, and the extremes are no longer named.
    assert!(
        report.contains(
            "**Reading.** Throughput does not rank the styles in this run: the servers had no CPU quota (see the top)."
        ),
        "{report}"
    );
    assert!(!report.contains("led with"), "{report}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn idle_table_holds_memory_per_connection() {
    let (dir, report) = build();
    // threads: 12112.5 bytes per connection = 11.8 KiB; reactor 97.5 bytes.
    let threads_row = report
        .lines()
        .find(|l| l.starts_with("| threads | 11.8 KiB | – (no cgroup) |"));
    assert!(threads_row.is_some(), "{report}");
    assert!(report.contains("| reactor | 0.1 KiB |"));
    // Memory still ranks without a quota, measured once, past its margin:
    // threads 11.8 KiB against tasks' 10.5 (within 1.25x, not told apart).
    assert!(
        report.contains(
            "Memory per connection (user space only; measured once, a difference under 1.25× is not told apart): \
             threads and tasks were not told apart (1.12); tasks held a connection in more memory than coroutines"
        ),
        "{report}"
    );
    assert!(!report.contains("the most memory"), "{report}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn report_has_every_section_environment_and_servers() {
    let (dir, report) = build();
    for heading in [
        "## Servers",
        "## scale",
        "## idle",
        "## open",
        "## churn",
        "## fairness",
        "## Charts",
        "## Runs to read with care",
    ] {
        assert!(report.contains(heading), "missing {heading}");
    }
    let f = fixture();
    assert!(
        report.contains("| server figures from | procfs (the server process"),
        "names its source"
    );
    assert!(report.contains(&f.environment.kernel));
    assert!(report.contains(&f.environment.cpu_model));
    for s in &f.servers {
        assert!(s.stopped_cleanly);
        assert!(
            report.contains(s.summary.as_deref().unwrap()),
            "summary line of {}",
            s.style
        );
    }
    // Client-bound runs are listed by name (capacity steps have their own
    // section).
    for r in f
        .runs
        .iter()
        .filter(|r| r.client.client_bound && !is_step(r))
    {
        assert!(report.contains(&format!("- {}:", r.label.as_deref().unwrap())));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn charts_are_svg_and_name_every_style() {
    let (dir, report) = build();
    let f = fixture();
    let expected = [
        "throughput_64B.svg",
        "p99_64B.svg",
        "rss_per_conn.svg",
        "idle_cpu.svg",
        "cpu_per_10k.svg",
        "fairness.svg",
        "churn.svg",
    ];
    for file in expected {
        let text = std::fs::read_to_string(dir.join("charts").join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let doc =
            roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{file} is not XML: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg", "{file}");
        for style in &f.styles {
            assert!(text.contains(style.as_str()), "{file} names {style}");
        }
        assert!(
            report.contains(&format!("(charts/{file})")),
            "report links {file}"
        );
    }
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + f.runs.len());
    let _ = std::fs::remove_dir_all(dir);
}

/// A comparison interrupted early has runs with nothing in them; the report
/// and charts must still come out (plotters loops forever on some empty
/// axis ranges, so this is bounded).
#[test]
fn empty_runs_still_give_a_report() {
    let mut results = fixture();
    for r in &mut results.runs {
        r.messages = 0;
        r.throughput_msgs_per_s = 0.0;
        r.latency_us = Default::default();
        r.latency_raw_us = r.latency_raw_us.as_ref().map(|_| Default::default());
        r.connect.rate_per_s = 0.0;
        r.fairness.longest_stall_ms = 0.0;
        if let Some(sv) = r.server.as_mut() {
            sv.cpu_percent = 0.0;
            sv.rss_per_conn_bytes = 0.0;
        }
    }
    let dir = std::env::temp_dir().join(format!("loadgen-empty-report-{}", std::process::id()));
    let (tx, rx) = std::sync::mpsc::channel();
    let out = dir.clone();
    std::thread::spawn(move || {
        let _ = tx.send(write_outputs(&results, &out).map_err(|e| e.to_string()));
    });
    let written = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("report of empty runs finished within 60 s");
    assert!(written.is_ok(), "{written:?}");
    assert!(dir.join("report.md").exists());
    let _ = std::fs::remove_dir_all(dir);
}

/// Results files from before first replies and process trees load with
/// empty figures, which the report shows as not recorded.
#[test]
fn the_old_fixture_loads_without_the_new_figures() {
    let f = fixture();
    // The capacity steps came later, from a newer loadgen.
    for r in f.runs.iter().filter(|r| !is_step(r)) {
        assert_eq!(r.first_reply_us.count, 0);
        assert_eq!(r.conns_unserved, 0);
        assert_eq!(r.served(), None);
        if let Some(sv) = &r.server {
            assert_eq!(sv.memory_measure, "rss");
            assert_eq!(sv.peak_processes, None);
            assert!(!sv.sample_interval_stretched);
        }
    }
    let (dir, report) = build();
    // threads' churn: 11.8k conn/s, connect p99 266 us, echo p99 719 us.
    assert!(
        report.contains("| threads | 11.8k | 266 us | 719 us | — | — | none |"),
        "{report}"
    );
    assert!(
        report.contains("| threads | 11.8 KiB | – (no cgroup) | 6.5 MiB (RSS) |"),
        "{report}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A style that serves 16 connections and leaves the rest queued, as a
/// fixed pool of 16 workers does, beside styles that serve everyone: the
/// scale and churn tables say who was served, and the reading names it.
#[test]
fn unserved_connections_show_in_scale_and_churn() {
    let mut f = fixture();
    for r in &mut f.runs {
        let conns = r.spec.conns;
        set_first_replies(r, conns, Duration::from_micros(300));
    }
    // tasks at 20 connections: 16 served after 500 us, 4 never.
    set_first_replies(
        run_mut(&mut f, "tasks", "scale", "conns=20"),
        16,
        Duration::from_micros(500),
    );
    // threads' churn: every connection served, but after 40 ms in a queue.
    set_first_replies(
        run_mut(&mut f, "threads", "churn", "slots"),
        4,
        Duration::from_millis(40),
    );
    // reactor's churn: one of its 4 connections got no reply.
    set_first_replies(
        run_mut(&mut f, "reactor", "churn", "slots"),
        3,
        Duration::from_micros(300),
    );
    let (dir, report) = build_from(&f);
    assert!(
        report.contains(
            "| threads | 12.6k (140 us) | 80.5k (676 us) | 300 us | all | peaks at 20 conns"
        ),
        "{report}"
    );
    // 4 of 20 unserved: the p99 is among them.
    assert!(
        report.contains("| 109.3k (379 us) † | no reply | 16/20 at 20 | peaks at"),
        "{report}"
    );
    assert!(
        report.contains(
            "tasks: at 20 conns only 16 of 20 connections got a reply: the rest waited the whole run without one (queued behind busy workers, or not yet taken on)."
        ),
        "{report}"
    );
    assert!(
        report.contains("| threads | 11.8k | 266 us | 719 us | 40.0 ms | all | none |"),
        "{report}"
    );
    assert!(report.contains("| 3/4 | none |"), "{report}");
    assert!(
        report.contains("reactor: 1 of 4 connections got no reply."),
        "{report}"
    );
    assert!(
        report.contains("threads kept new connections waiting 40.0 ms for their first reply (p99)"),
        "{report}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A forking style's figures come from its process tree: the report names
/// the measure, and says when sampling the tree had to be spaced out.
#[test]
fn process_tree_figures_are_named() {
    let mut f = fixture();
    let r = run_mut(&mut f, "reactor", "idle", "idle=");
    let sv = r.server.as_mut().expect("fixture has server figures");
    sv.memory_measure = "pss_tree".into();
    sv.peak_processes = Some(211);
    sv.sample_interval_ms = Some(1500.0);
    sv.sample_interval_stretched = true;
    sv.sampler_cpu_percent = Some(1.8);
    let label = r.label.clone().unwrap();
    let (dir, report) = build_from(&f);
    assert!(
        report.contains("| reactor | 0.1 KiB | – (no cgroup) | 4.2 MiB (PSS, 211 processes) |"),
        "{report}"
    );
    assert!(report.contains("memory is PSS summed over the server and its descendants"));
    assert!(
        report.contains(&format!(
            "- {label}: process tree sampled every 1500 ms at most, not every 100 ms, to keep sampling under 2% of a CPU (sampler used 1.8%)"
        )),
        "{report}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Servers in containers are sampled through the Docker API, whose memory
/// figure is the container's cgroup charge, the kernel's share included:
/// the idle table and its reading say so, not "no cgroup" and "user space
/// only" (what a containerized run's report said before).
#[test]
fn container_memory_is_the_containers_cgroup_charge() {
    let mut f = fixture();
    let idle_labels: Vec<String> = f
        .runs
        .iter()
        .filter(|r| r.tags.as_ref().is_some_and(|t| t.scenario == "idle"))
        .filter_map(|r| r.label.clone())
        .collect();
    assert!(!idle_labels.is_empty());
    for r in f
        .runs
        .iter_mut()
        .filter(|r| r.tags.as_ref().is_some_and(|t| t.scenario == "idle"))
    {
        let sv = r.server.as_mut().expect("fixture has server figures");
        sv.memory_measure = "cgroup".into();
        sv.cgroup = None;
    }
    let (dir, report) = build_from(&f);
    assert!(
        report.contains("| threads | 11.8 KiB | as the first column (the container's cgroup) |"),
        "{report}"
    );
    assert!(!report.contains("– (no cgroup)"), "{report}");
    assert!(
        report.contains("its container's cgroup charge, the kernel's share included"),
        "{report}"
    );
    assert!(!report.contains("user space only"), "{report}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The idle section's kernel breakdown: the cgroup's kernel charge beside
/// the slab parts, each in KiB per connection; a disturbed breakdown says
/// so; the machine table says socket accounting was on.
#[test]
fn idle_kernel_breakdown_sits_beside_the_charge() {
    use loadgen::compare::model::CgroupSetup;
    use loadgen::results::server::{CgroupStats, KernelBreakdown};
    let mut f = fixture();
    f.cgroup = Some(CgroupSetup {
        used: true,
        made_by: "loadgen".into(),
        version: Some("v1".into()),
        socket_accounting: Some(true),
        ..CgroupSetup::default()
    });
    let reactor = run_mut(&mut f, "reactor", "idle", "idle")
        .server
        .as_mut()
        .unwrap();
    reactor.cgroup = Some(CgroupStats {
        version: "v1".into(),
        memory_per_conn_bytes: Some(3965.0),
        kernel_per_conn_bytes: Some(3871.0),
        socket_accounting: Some(true),
        ..CgroupStats::default()
    });
    reactor.kernel_breakdown = Some(KernelBreakdown {
        conns: 10_100,
        readings: 5,
        tcp_per_conn_bytes: Some(2368.0),
        sock_inode_per_conn_bytes: Some(832.0),
        filp_per_conn_bytes: Some(192.0),
        dentry_per_conn_bytes: Some(192.0),
        epoll_per_conn_bytes: Some(128.0),
        kernel_stack_per_conn_bytes: Some(0.0),
        page_tables_per_conn_bytes: Some(10.24),
        total_per_conn_bytes: Some(3722.24),
        server_sockets_per_conn: Some(1.0),
        ..KernelBreakdown::default()
    });
    let threads = run_mut(&mut f, "threads", "idle", "idle")
        .server
        .as_mut()
        .unwrap();
    threads.kernel_breakdown = Some(KernelBreakdown {
        unmeasured: Some("cannot read /proc/slabinfo: Permission denied".into()),
        ..KernelBreakdown::default()
    });
    let (dir, report) = build_from(&f);
    assert!(
        report.contains(
            "| reactor | 3.78 KiB | 2.31 KiB | 0.81 KiB | 0.19 KiB | 0.19 KiB | 0.12 KiB | – | 0.00 KiB | 0.01 KiB | 3.63 KiB | server sockets per connection 1.00 |"
        ),
        "{report}"
    );
    assert!(
        report.contains("not measured: cannot read /proc/slabinfo: Permission denied"),
        "{report}"
    );
    assert!(report.contains("socket accounting: on"), "{report}");
    assert!(
        report.contains("Socket accounting was on in every group"),
        "{report}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
