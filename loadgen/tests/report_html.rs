//! report.html from the smoke fixture (tests/fixtures), read with an HTML
//! parser as a browser would: one page that parses cleanly, with the same
//! headings and tables as report.md, every chart an inline `<svg>`, and
//! nothing it would fetch.

use std::path::PathBuf;
use std::time::Duration;

use loadgen::compare::model::CompareResults;
use loadgen::report::write as write_outputs;
use scraper::{ElementRef, Html, Selector};

mod common;
use common::{fixture_with_epoll, loadgen, output_within};

fn write(results: &CompareResults, name: &str) -> (PathBuf, String, Html) {
    let dir = std::env::temp_dir().join(format!("loadgen-html-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    write_outputs(results, &dir).expect("report written");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html written");
    (dir, md, Html::parse_document(&html))
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn text(e: ElementRef) -> String {
    e.text().collect::<String>().trim().to_string()
}

/// report.md's headings, as text (inline code and emphasis marks gone).
fn md_headings(md: &str) -> Vec<String> {
    md.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim().replace(['`', '*'], ""))
        .collect()
}

/// report.md's tables, each as its header cells.
fn md_tables(md: &str) -> Vec<Vec<String>> {
    let lines: Vec<&str> = md.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0].starts_with('|') && w[1].starts_with("|---"))
        .map(|w| {
            let cells = w[0].trim().trim_matches('|').split('|');
            cells.map(|c| c.trim().replace(['`', '*'], "")).collect()
        })
        .collect()
}

#[test]
fn the_page_holds_the_report_and_its_charts() {
    let (dir, md, doc) = write(&fixture_with_epoll(), "page");
    assert!(doc.errors.is_empty(), "parse errors: {:?}", doc.errors);
    let headings: Vec<String> = doc.select(&sel("h1, h2, h3")).map(text).collect();
    assert_eq!(headings, md_headings(&md));
    assert_eq!(text(doc.select(&sel("title")).next().unwrap()), headings[0]);
    let tables: Vec<Vec<String>> = doc
        .select(&sel("table"))
        .map(|t| t.select(&sel("thead th")).map(text).collect())
        .collect();
    assert_eq!(tables, md_tables(&md));
    // A body row holds what report.md's does.
    let row = "| threads | 12.6k (140 us) | 80.5k (676 us) |";
    assert!(md.contains(row), "{md}");
    let cells: Vec<Vec<String>> = doc
        .select(&sel("tbody tr"))
        .map(|tr| tr.select(&sel("td")).map(text).collect())
        .collect();
    assert!(
        cells
            .iter()
            .any(|c| c.len() >= 3 && c[..3] == ["threads", "12.6k (140 us)", "80.5k (676 us)"]),
        "{cells:?}"
    );
    // Every chart report.md links is inline, named by its title.
    let linked: Vec<&str> = md
        .lines()
        .filter_map(|l| l.strip_prefix("!["))
        .filter_map(|l| l.split_once("](charts/"))
        .map(|(title, _)| title)
        .collect();
    assert!(linked.len() >= 8, "{linked:?}");
    let svgs: Vec<ElementRef> = doc.select(&sel("svg.chart")).collect();
    let labels: Vec<&str> = svgs
        .iter()
        .filter_map(|s| s.value().attr("aria-label"))
        .collect();
    assert_eq!(labels, linked);
    for svg in svgs {
        assert!(svg.select(&sel("text")).next().is_some(), "chart drawn");
    }
    assert_eq!(doc.select(&sel("img")).count(), 0);
    // The contents link to every section.
    let toc: Vec<String> = doc
        .select(&sel("nav a"))
        .filter_map(|a| a.value().attr("href").map(String::from))
        .collect();
    assert_eq!(toc.len(), doc.select(&sel("h2")).count());
    for href in toc {
        let id = href.strip_prefix('#').expect("an in-page link");
        assert_eq!(doc.select(&sel(&format!("[id='{id}']"))).count(), 1, "{id}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_page_fetches_nothing_and_runs_nothing() {
    let mut f = fixture_with_epoll();
    // Text from outside (a server's problem) that looks like markup.
    f.servers[0].problem =
        Some("<script>alert(1)</script> <img src=http://example.com/x.png>".into());
    let (dir, _, doc) = write(&f, "closed");
    for name in ["script", "link", "iframe", "object", "embed", "img", "base"] {
        assert_eq!(doc.select(&sel(name)).count(), 0, "no <{name}>");
    }
    // The text is shown as text.
    assert!(
        doc.root_element()
            .text()
            .collect::<String>()
            .contains("<script>alert(1)</script>")
    );
    for e in doc.select(&sel("*")) {
        for (attr, value) in e.value().attrs() {
            let fetches = ["src", "href", "xlink:href", "srcset", "poster", "data"];
            if fetches.contains(&attr) {
                assert!(
                    value.starts_with('#'),
                    "<{} {attr}={value:?}>: only in-page links",
                    e.value().name()
                );
            }
            assert!(!attr.starts_with("on"), "no event handler: {attr}");
        }
    }
    let style: String = doc.select(&sel("style")).map(text).collect();
    assert!(!style.is_empty(), "styled inline");
    assert!(
        !style.contains("url(") && !style.contains("@import"),
        "{style}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `loadgen report DIR/results.json` writes the same page from the JSON.
#[test]
fn loadgen_report_rebuilds_the_page() {
    let (dir, _, _) = write(&fixture_with_epoll(), "rebuilt");
    let first = std::fs::read_to_string(dir.join("report.html")).unwrap();
    std::fs::remove_file(dir.join("report.html")).unwrap();
    let mut cmd = loadgen();
    cmd.arg("report").arg(dir.join("results.json"));
    let out = output_within(cmd, Duration::from_secs(60), "loadgen report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = std::fs::read_to_string(dir.join("report.html")).expect("report.html rebuilt");
    assert_eq!(again, first);
    let _ = std::fs::remove_dir_all(dir);
}
