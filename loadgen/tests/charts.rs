//! The charts as drawn, from the smoke fixture (tests/fixtures) as it was
//! run and reshaped with an epoll reference and three rounds: each SVG read
//! for the conventions (connection ticks 1, 10, 100; SI-suffixed rates; no
//! "1.0" labels; a unit on every numeric axis; the legend box clear of the
//! plot; whiskers exactly where there are repeats) and rendered to PNG by
//! rsvg-convert (Debian's librsvg2-bin, which CI installs; without it the
//! rendering is skipped, saying so).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use loadgen::compare::model::CompareResults;
use loadgen::report::write as write_outputs;

mod common;
use common::{compare_fixture, fixture_with_epoll, output_within};
#[path = "charts/svg.rs"]
mod svg;
use svg::{Read, Shapes, hex, read};

fn write(results: &CompareResults, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgen-charts-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    write_outputs(results, &dir).expect("report written");
    dir
}

/// `f` measured three times: rounds 1 and 2 are round 0 with every figure
/// the charts read scaled, differently per style (so ratios to epoll
/// differ between rounds too).
fn three_rounds(mut f: CompareResults) -> CompareResults {
    f.repeat = 3;
    let mut more = Vec::new();
    for r in &f.runs {
        let idx = f
            .styles
            .iter()
            .position(|s| Some(s) == r.tags.as_ref().map(|t| &t.style));
        let step = 0.04 * (idx.unwrap_or(0) + 1) as f64;
        for (round, k) in [(1u32, 1.0 - step), (2, 1.0 + step / 2.0)] {
            let mut c = r.clone();
            c.tags
                .as_mut()
                .expect("the fixture's runs are tagged")
                .repeat = round;
            c.throughput_msgs_per_s *= k;
            c.latency_us.p99 = (c.latency_us.p99 as f64 * k) as u64;
            c.connect.rate_per_s *= k;
            c.fairness.longest_stall_ms *= k;
            if let Some(sv) = c.server.as_mut() {
                sv.rss_per_conn_bytes *= k;
                sv.cpu_percent *= k;
            }
            more.push(c);
        }
    }
    f.runs.extend(more);
    f
}

/// "throughput (msgs/s)", "p99 round trip (ms, log scale)": the unit.
fn unit(title: &str) -> Option<&str> {
    let inner = title.strip_suffix(')')?.rsplit_once(" (")?.1;
    let unit = inner.trim_end_matches(", log scale");
    (!unit.is_empty()).then_some(unit)
}

/// The conventions every chart keeps, whatever it shows.
fn check_conventions(file: &str, c: &Read) {
    let ticks = c.x_ticks.iter().chain(&c.y_ticks);
    for t in ticks {
        assert!(!t.ends_with(".0"), "{file}: tick label {t:?} ends in .0");
        let digits = t.chars().filter(char::is_ascii_digit).count();
        assert!(
            digits <= 4,
            "{file}: tick label {t:?} is a long number, not SI-suffixed"
        );
    }
    assert!(!c.x_ticks.is_empty(), "{file}: no x tick labels: {c:?}");
    assert!(!c.y_ticks.is_empty(), "{file}: no y tick labels: {c:?}");
    assert!(
        !c.titles.is_empty() && c.titles.iter().all(|t| unit(t).is_some()),
        "{file}: every numeric axis names its unit: {:?}",
        c.titles
    );
    if let Some(legend) = c.legend {
        assert!(
            !legend.overlaps(&c.frame),
            "{file}: legend {legend:?} lies on the plot {:?}",
            c.frame
        );
        assert!(
            legend.x + legend.w <= c.size.0 && legend.y + legend.h <= c.size.1,
            "{file}: legend {legend:?} runs off the canvas {:?}",
            c.size
        );
        assert!(!c.legend_entries.is_empty(), "{file}: an empty legend");
    }
}

/// Every chart of `dir` read back, by file name.
fn charts(dir: &Path) -> Vec<(String, Read)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("charts"))
        .expect("charts/ written")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let svg = std::fs::read_to_string(&p).unwrap();
            let c = read(&name, &svg);
            check_conventions(&name, &c);
            (name, c)
        })
        .collect()
}

fn find<'a>(charts: &'a [(String, Read)], file: &str) -> &'a Read {
    &charts
        .iter()
        .find(|(n, _)| n == file)
        .unwrap_or_else(|| panic!("{file} drawn"))
        .1
}

#[test]
fn axes_read_as_people_write_them() {
    let f = compare_fixture();
    let dir = write(&f, "plain");
    let charts = charts(&dir);
    // Six scenarios' charts and the capacity search's (the fixture ran it
    // at 20 connections).
    assert_eq!(
        charts.len(),
        8,
        "{:?}",
        charts.iter().map(|c| &c.0).collect::<Vec<_>>()
    );
    // The fixture ran 1 and 20 connections: the axis runs 1 to 100.
    let tp = find(&charts, "throughput_64B.svg");
    for t in ["1", "10", "100"] {
        assert!(tp.x_ticks.iter().any(|x| x == t), "{t} on {:?}", tp.x_ticks);
    }
    assert_eq!(tp.titles[0], "concurrent connections (conns, log scale)");
    assert_eq!(tp.titles[1], "throughput (msgs/s)");
    // Up to 109.3k msg/s: the rate ticks are SI-suffixed.
    assert!(tp.y_ticks.iter().any(|t| t == "100k"), "{:?}", tp.y_ticks);
    // Every style in the legend, which sits right of the plot.
    assert_eq!(tp.legend_entries, f.styles);
    let legend = tp.legend.unwrap();
    assert!(
        legend.x > tp.frame.x + tp.frame.w,
        "{legend:?} {:?}",
        tp.frame
    );
    assert_eq!(
        find(&charts, "p99_64B.svg").titles[1],
        "p99 round trip (ms, log scale)"
    );
    // A bar chart: a row per style (named at the left), no legend.
    let rss = find(&charts, "rss_per_conn.svg");
    assert_eq!(rss.titles, ["memory per connection (KiB)"]);
    assert_eq!(rss.y_ticks, f.styles);
    assert!(rss.legend.is_none());
    let churn = find(&charts, "churn.svg");
    assert_eq!(churn.titles, ["connections opened (conns/s)"]);
    assert!(
        churn.x_ticks.iter().any(|t| t.ends_with('k')),
        "{:?}",
        churn.x_ticks
    );
    // Measured once: no whiskers anywhere.
    for (name, c) in &charts {
        assert_eq!(c.whiskers, 0, "{name}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn repeats_draw_whiskers_and_epoll_a_ratio_chart() {
    let dir = write(&three_rounds(fixture_with_epoll()), "rounds");
    let charts = charts(&dir);
    let ratio = find(&charts, "ratio_64B.svg");
    assert_eq!(ratio.titles, ["throughput ÷ epoll's (×)"]);
    // epoll is the reference line, not a row.
    assert_eq!(ratio.y_ticks, ["threads", "polling", "tasks", "coroutines"]);
    assert_eq!(ratio.legend_entries, ["1 conn", "20 conns", "epoll = 1"]);
    for (name, c) in &charts {
        // Every figure was measured three times and moved: each point or
        // bar has a whisker (the ratio chart: a bar per style and count).
        let points = match name.as_str() {
            "ratio_64B.svg" => 4 * 2,
            n if n.starts_with("throughput") || n.starts_with("p99") => 5 * 2,
            // Only polling used CPU while idle (99%); 0% in every round
            // has no range.
            "idle_cpu.svg" => 1,
            // A capacity bar is the median search's result, drawn without
            // a range.
            n if n.starts_with("capacity") => 0,
            _ => 5,
        };
        // A whisker: its line and a cap at each end.
        assert_eq!(c.whiskers, 3 * points, "{name}");
    }
    assert!(
        std::fs::read_to_string(dir.join("report.md"))
            .unwrap()
            .contains("(charts/ratio_64B.svg)")
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// tasks's planted figure at 20 connections, where it failed: far above
/// any other (about 110k/s), so an axis that held it would read "M".
const PLANTED: f64 = 5e6;

/// The fixture with epoll in three rounds, where tasks failed at 20
/// connections in every round (4 of 20 connections unserved, with the
/// planted throughput and a 9 s p99), threads failed in one round of three
/// there (the fastest, with the planted throughput: its median still
/// stands, its whisker must leave that round out), and of the scale runs
/// only polling's at 20 connections were client-bound.
fn failing_fixture() -> CompareResults {
    let mut f = fixture_with_epoll();
    for r in &mut f.runs {
        let t = r.tags.clone().expect("the fixture's runs are tagged");
        if t.scenario != "scale" {
            continue;
        }
        r.client.client_bound = t.style == "polling" && r.spec.conns == 20;
        if t.style == "tasks" && r.spec.conns == 20 {
            r.conns_unserved = 4;
            r.outcome.ok = false;
            r.outcome.reasons =
                vec!["4 of 20 connections sent and never got a reply (planted)".into()];
            r.throughput_msgs_per_s = PLANTED;
            r.latency_us.p99 = 9_000_000;
        }
    }
    let mut f = three_rounds(f);
    for r in &mut f.runs {
        let t = r.tags.as_ref().unwrap();
        if t.style == "threads" && t.scenario == "scale" && r.spec.conns == 20 && t.repeat == 2 {
            r.outcome.ok = false;
            r.throughput_msgs_per_s = PLANTED;
        }
    }
    f
}

#[test]
fn failed_cells_are_not_drawn_and_client_bound_ones_are_hollow() {
    let f = failing_fixture();
    let dir = write(&f, "failed");
    let charts = charts(&dir);
    let svg = |name: &str| std::fs::read_to_string(dir.join("charts").join(name)).unwrap();
    let failed_note = "✗ failed: not drawn (errors or unserved connections)";
    // Styles' colours: the report's order (threads, polling, epoll, tasks,
    // coroutines) in Tableau's ten.
    let (threads, polling, tasks) = (hex(0x1f77b4), hex(0xff7f0e), hex(0xd62728));

    let tp = find(&charts, "throughput_64B.svg");
    let text = svg("throughput_64B.svg");
    let shapes = Shapes::of(&text);
    // The planted 5M/s (tasks' failed cell, threads' failed round) is
    // nowhere on the axis: the y ticks stop in the hundreds of thousands.
    assert!(
        tp.y_ticks.iter().all(|t| !t.ends_with('M')),
        "{:?}",
        tp.y_ticks
    );
    // threads: both points drawn (its median round did not fail), filled.
    let (filled, hollow) = shapes.markers(&threads, &tp.frame);
    assert_eq!(
        (filled.len(), hollow.len()),
        (2, 0),
        "threads {filled:?} {hollow:?}"
    );
    let x1 = filled.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let x20 = filled.iter().map(|p| p.0).fold(0.0, f64::max);
    assert!(x20 > x1 + 100.0, "1 and 20 conns apart: {x1} {x20}");
    // polling at 20 connections was client-bound: hollow there, filled at 1.
    let (filled, hollow) = shapes.markers(&polling, &tp.frame);
    assert_eq!(filled.len(), 1, "polling filled {filled:?}");
    assert!((filled[0].0 - x1).abs() < 2.0, "{filled:?}");
    assert_eq!(hollow.len(), 1, "polling hollow {hollow:?}");
    assert!((hollow[0].0 - x20).abs() < 2.0, "{hollow:?}");
    // tasks failed at 20 connections: a marker at 1 only, no line vertex at
    // 20, and a ✗ in its colour on the x axis at 20.
    let (filled, hollow) = shapes.markers(&tasks, &tp.frame);
    assert_eq!(filled.len(), 1, "tasks {filled:?}");
    assert!((filled[0].0 - x1).abs() < 2.0, "{filled:?}");
    assert!(hollow.is_empty(), "{hollow:?}");
    let vertices = shapes.line_vertices(&tasks);
    assert!(
        vertices.iter().all(|p| (p.0 - x20).abs() > 2.0),
        "tasks' line reaches its failed point: {vertices:?}"
    );
    // The other lines are drawn (the check above can see one).
    assert!(
        (shapes.line_vertices(&threads).iter()).any(|p| (p.0 - x20).abs() < 2.0),
        "threads' line"
    );
    let crosses = shapes.crosses();
    assert_eq!(crosses.len(), 1, "{crosses:?}");
    let (x, y, colour) = &crosses[0];
    let bottom = tp.frame.y + tp.frame.h;
    assert!(
        (x - x20).abs() < 2.0 && (y - bottom).abs() < 2.0,
        "on the axis: {crosses:?}"
    );
    assert_eq!(colour, &tasks);
    let texts = shapes.texts();
    assert!(texts.iter().any(|t| t == failed_note), "{texts:?}");
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("hollow marker: client-bound")),
        "{texts:?}"
    );

    // The ratio chart: the 20-connection bars (the darker step) are
    // threads' and coroutines' filled, polling's hollow, and tasks' a ✗ at
    // the axis with no bar.
    let ratio = find(&charts, "ratio_64B.svg");
    let text = svg("ratio_64B.svg");
    let shapes = Shapes::of(&text);
    let dark = hex(0x08306b);
    assert_eq!(shapes.bars(&dark, &ratio.frame), (2, 1));
    let crosses = shapes.crosses();
    assert_eq!(crosses.len(), 1, "{crosses:?}");
    let (x, _, colour) = &crosses[0];
    assert!(
        *x > ratio.frame.x && *x < ratio.frame.x + 20.0,
        "{crosses:?}"
    );
    assert_eq!(colour, &dark);
    assert!(shapes.texts().iter().any(|t| t == failed_note));
    assert!(
        (shapes.texts().iter()).any(|t| t.starts_with("hollow bar: client-bound")),
        "{:?}",
        shapes.texts()
    );
    // No ratio reads 5M/110k: the axis ends within a few ×.
    assert!(
        ratio
            .x_ticks
            .iter()
            .all(|t| t.parse::<f64>().is_ok_and(|v| v < 10.0)),
        "{:?}",
        ratio.x_ticks
    );

    // Every other chart read from tasks' failed run has its ✗ and the
    // note; the charts of runs that did not fail have neither.
    for (name, _) in &charts {
        let text = svg(name);
        let shapes = Shapes::of(&text);
        let reads_it = [
            "throughput_64B.svg",
            "p99_64B.svg",
            "ratio_64B.svg",
            "cpu_per_10k.svg",
        ]
        .contains(&name.as_str());
        assert_eq!(shapes.crosses().len(), usize::from(reads_it), "{name}");
        assert_eq!(
            shapes.texts().iter().any(|t| t == failed_note),
            reads_it,
            "{name}"
        );
    }
    // The CPU chart: tasks' row has no bar, its ✗ is in its colour.
    let cpu = find(&charts, "cpu_per_10k.svg");
    let text = svg("cpu_per_10k.svg");
    let shapes = Shapes::of(&text);
    assert_eq!(shapes.bars(&tasks, &cpu.frame), (0, 0));
    assert_eq!(shapes.crosses()[0].2, tasks);
    let _ = std::fs::remove_dir_all(dir);
}

/// Width and height of a PNG, from its header.
fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    let magic = b"\x89PNG\r\n\x1a\n";
    if png.len() < 24 || &png[..8] != magic || &png[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&png[16..20]), be(&png[20..24])))
}

#[test]
fn every_chart_renders_to_png() {
    let probe = Command::new("rsvg-convert").arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        println!("skipped: rsvg-convert is not installed (Debian: librsvg2-bin; CI installs it)");
        return;
    }
    let dir = write(&three_rounds(fixture_with_epoll()), "png");
    for (name, c) in charts(&dir) {
        let svg = dir.join("charts").join(&name);
        let png = svg.with_extension("png");
        let mut cmd = Command::new("rsvg-convert");
        cmd.arg(&svg).arg("-o").arg(&png);
        let out = output_within(cmd, Duration::from_secs(60), "rsvg-convert");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(
            png_size(&bytes),
            Some((c.size.0 as u32, c.size.1 as u32)),
            "{name} rendered at its size"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A figure with other work on its CPUs in a round (the tables' ⚠) is
/// drawn with a ⚠ beside it, and the note under the chart says what it
/// means; a chart with none has neither.
#[test]
fn disturbed_cells_carry_the_tables_mark() {
    let mut f = fixture_with_epoll();
    for r in &mut f.runs {
        let t = r.tags.clone().expect("the fixture's runs are tagged");
        r.disturbed = t.scenario == "scale" && t.style == "polling" && r.spec.conns == 20;
    }
    let dir = write(&f, "disturbed");
    let svg = |name: &str| std::fs::read_to_string(dir.join("charts").join(name)).unwrap();
    let note = "⚠ other work ran on its CPUs in a round: drawn, left out of the report's rankings";
    for name in ["throughput_64B.svg", "ratio_64B.svg"] {
        let texts = Shapes::of(&svg(name)).texts();
        assert_eq!(
            texts.iter().filter(|t| *t == "⚠").count(),
            1,
            "{name}: one ⚠, polling's at 20 connections: {texts:?}"
        );
        assert!(texts.iter().any(|t| t == note), "{name}: {texts:?}");
    }
    // A run that is not disturbed anywhere: no mark, no note.
    let quiet = write(&fixture_with_epoll(), "quiet");
    let text = std::fs::read_to_string(quiet.join("charts").join("throughput_64B.svg")).unwrap();
    let texts = Shapes::of(&text).texts();
    assert!(!texts.iter().any(|t| t == "⚠" || t == note), "{texts:?}");
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(quiet);
}
