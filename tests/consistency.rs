//! The places that must list every style or scenario, checked against the
//! one registry of each (`servers::Style`, `loadgen`'s `Scenario`): adding
//! one and forgetting a place fails here, naming the place.

use std::path::PathBuf;

use loadgen::compare::model::Scenario;
use servers::Style;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

#[test]
fn every_style_has_a_service_and_a_fairness_service_in_both_compose_files() {
    for file in ["docker-compose.yml", "docker-compose.host.yml"] {
        let text = read(file);
        for style in Style::ALL {
            let name = style.name();
            for service in [format!("\n  {name}:"), format!("\n  {name}-fair:")] {
                assert!(
                    text.contains(&service),
                    "{file} has no service `{}` for style {name}",
                    service.trim()
                );
            }
            let command = format!("command: [\"{name}\",");
            assert!(text.contains(&command), "{file}: no service runs `{name}`");
        }
    }
}

/// `file` from `marker` on, up to the first blank line: the table that
/// starts there.
fn table_at(file: &str, marker: &str) -> String {
    let text = read(file);
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("{file} has no table starting {marker:?}"));
    text[at..]
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The front page's table: each style with how it waits and its help line,
/// as the code says them (`Style::waits`, `Style::help`).
#[test]
fn every_style_is_in_the_readme_table_of_styles_as_the_code_describes_it() {
    let table = table_at("README.md", "| style | how it waits | what it is |");
    for style in Style::ALL {
        let row = format!(
            "\n| `{}` | {} | {} |",
            style.name(),
            style.waits().words(),
            style.help()
        );
        assert!(
            table.contains(&row),
            "README.md's table of styles has no row {:?}",
            row.trim()
        );
    }
    let rows = table.lines().filter(|l| l.starts_with("| `")).count();
    assert_eq!(
        rows,
        Style::ALL.len(),
        "README.md's table of styles:\n{table}"
    );
}

#[test]
fn every_style_is_in_the_guide_table_of_styles() {
    let table = table_at("docs/styles.md", "| style | start it | the idea it shows |");
    for style in Style::ALL {
        let row = format!("\n| `{}` |", style.name());
        assert!(
            table.contains(&row),
            "docs/styles.md's table of styles has no row {:?}",
            row.trim()
        );
    }
}

#[test]
fn servers_list_names_every_style_and_no_other() {
    // What `servers list` prints.
    let text = servers::cli::list_styles();
    let listed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for style in Style::ALL {
        assert!(
            listed.contains(&style.name()),
            "`servers list` lacks {}",
            style.name()
        );
        assert_eq!(Style::from_name(style.name()), Some(*style));
    }
    assert_eq!(
        listed.len(),
        Style::ALL.len(),
        "`servers list` lists:\n{text}"
    );
}

#[test]
fn every_scenario_has_a_section_in_the_comparison_report() {
    let results: loadgen::compare::model::CompareResults =
        serde_json::from_str(&read("loadgen/tests/fixtures/compare-smoke.json"))
            .expect("the fixture parses");
    let dir = std::env::temp_dir().join(format!("c10k-consistency-{}", std::process::id()));
    loadgen::report::write(&results, &dir).expect("the report is written");
    let report = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
    let _ = std::fs::remove_dir_all(&dir);
    // The fixture is a smoke comparison: the scenarios run on request only
    // (reach) are not in it; loadgen/tests/reach.rs reads reach's section.
    for scenario in Scenario::all().iter().filter(|s| !s.on_request()) {
        let heading = format!("\n## {}:", scenario.name());
        assert!(
            report.contains(&heading),
            "report.md has no section {heading:?}"
        );
    }
}

#[test]
fn every_scenario_has_a_row_in_the_guide_table_of_scenarios() {
    let table = table_at(
        "docs/comparison.md",
        "| scenario | what it does | `--scenario` |",
    );
    for scenario in Scenario::all() {
        let row = format!("\n| {} |", scenario.name());
        assert!(
            table.contains(&row),
            "docs/comparison.md's table of scenarios has no row {:?}",
            row.trim()
        );
    }
}
