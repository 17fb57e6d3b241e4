//! `loadgen compare --profile smoke` end to end: every style is started as
//! a process, driven through every scenario, stopped, and reported.

use std::time::Duration;

use loadgen::compare::CompareResults;

mod common;
use common::{loadgen, output_within};

#[test]
fn smoke_comparison_over_every_style() {
    let dir = std::env::temp_dir().join(format!("loadgen-compare-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cmd = loadgen();
    cmd.args([
        "compare",
        "--profile",
        "smoke",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let out = output_within(cmd, Duration::from_secs(300), "compare --profile smoke");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("expected about"),
        "prints its time estimate: {stderr}"
    );

    let results: CompareResults =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results.styles.len(), servers::Style::ALL.len());
    for style in &results.styles {
        for scenario in ["scale", "idle", "open", "churn", "fairness"] {
            let rows = results
                .runs
                .iter()
                .filter(|r| {
                    r.tags
                        .as_ref()
                        .is_some_and(|t| &t.style == style && t.scenario == scenario)
                })
                .count();
            assert!(rows > 0, "{style} has {scenario} rows");
        }
        let servers: Vec<_> = results
            .servers
            .iter()
            .filter(|s| &s.style == style)
            .collect();
        assert_eq!(servers.len(), 2, "{style}: main and fairness servers");
        for s in servers {
            assert!(s.stopped_cleanly, "{style} {}: {:?}", s.phase, s.problem);
        }
    }
    for r in &results.runs {
        assert_eq!(
            r.errors.total(),
            0,
            "{}: {}",
            r.label.as_deref().unwrap_or("?"),
            r.errors.describe()
        );
    }
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for style in &results.styles {
        assert!(
            report.contains(&format!("| {style} |")),
            "report has {style} rows"
        );
    }
    let charts: Vec<_> = std::fs::read_dir(dir.join("charts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(charts.len() >= 6, "{charts:?}");
    for chart in charts {
        let text = std::fs::read_to_string(&chart).unwrap();
        let doc = roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", chart.display()));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
    }
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), results.runs.len() + 1);
    let _ = std::fs::remove_dir_all(&dir);
}
