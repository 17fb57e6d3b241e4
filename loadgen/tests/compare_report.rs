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
    // threads: 14763 msg/s (p99 107 us) at 1 conn; 106473 msg/s (p99 390 us,
    // client-bound) at 20.
    assert!(
        report.contains("| threads | 14.8k (107 us) | 106.5k (390 us) † |"),
        "{report}"
    );
    assert!(
        report.contains("| polling | 34.2k (65 us) | 142.5k (261 us) † |"),
        "{report}"
    );
    assert!(report.contains("peaks at 20 conns (106.5k/s); p99 under 10 ms throughout"));
    assert!(report.contains("At 20 connections polling led with 142.5k/s and threads was last with 106.5k/s (1.3x apart)"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn idle_table_holds_memory_per_connection() {
    let (dir, report) = build();
    // threads: 11410 bytes per connection = 11.1 KiB; reactor 58.5 bytes.
    let threads_row = report
        .lines()
        .find(|l| l.starts_with("| threads | 11.1 KiB |"));
    assert!(threads_row.is_some(), "{report}");
    assert!(report.contains("| reactor | 0.1 KiB |"));
    assert!(report.contains("Holding a connection cost threads the most memory (11.1 KiB each)"));
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
