//! The comparison report built from a fixed results file (a real smoke run
//! kept in tests/fixtures): table values, readings and chart files.

use loadgen::compare::{CompareResults, write_outputs};

fn fixture() -> CompareResults {
    let text = include_str!("fixtures/compare-smoke.json");
    serde_json::from_str(text).expect("fixture parses as compare results")
}

fn build() -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!(
        "loadgen-report-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    write_outputs(&fixture(), &dir).expect("report written");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    (dir, report)
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
    assert!(
        report.contains("| polling | 21.0k (182 us) | 100.6k (364 us) † |"),
        "{report}"
    );
    assert!(report.contains("peaks at 20 conns (80.5k/s); p99 under 10 ms throughout"));
    assert!(report.contains(
        "At 20 connections tasks led with 109.3k/s and threads was last with 80.5k/s (1.4x apart)"
    ));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn idle_table_holds_memory_per_connection() {
    let (dir, report) = build();
    // threads: 12112.5 bytes per connection = 11.8 KiB; reactor 97.5 bytes.
    let threads_row = report
        .lines()
        .find(|l| l.starts_with("| threads | 11.8 KiB |"));
    assert!(threads_row.is_some(), "{report}");
    assert!(report.contains("| reactor | 0.1 KiB |"));
    assert!(report.contains("Holding a connection cost threads the most memory (11.8 KiB each)"));
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
    // Client-bound runs are listed by name.
    for r in f.runs.iter().filter(|r| r.client.client_bound) {
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
