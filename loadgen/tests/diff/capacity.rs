//! Capacity results held against a baseline: a cell per style, connection
//! count and objective, its verdict read on what each side's searches
//! prove (a floor where loadgen limited a search, a ceiling where no step
//! passed). Each test writes searches into a copy of the smoke fixture's
//! JSON, as a comparison with the capacity scenario would have.

use loadgen::compare::capacity::{CapacitySearch, CapacityStep, Slo, summarise};
use loadgen::compare::model::CompareResults;
use loadgen::report::diff::{Diff, Kind, Side, Verdict, noise_floor_pct, text};

use super::{diff_cmd, exits, temp, write};

const P99_1MS: &str = "p99=1ms";

/// One step at `rate` msg/s: passed, or failed on the server's side, or
/// failed with loadgen saturated.
fn step(rate: f64, pass: bool, client_limited: bool) -> CapacityStep {
    CapacityStep {
        rate,
        achieved: rate,
        value_us: if pass { 600 } else { 3000 },
        errors: 0,
        pass,
        client_limited,
        why: if pass {
            Vec::new()
        } else {
            vec!["p99 3000 us over 1000 us".into()]
        },
        run_id: format!("step-{rate}"),
    }
}

/// What bounded a search, as its steps say.
#[derive(Clone, Copy)]
enum Found {
    /// Passed at the rate, the server failed 4% above it.
    Server,
    /// Passed at the rate, loadgen saturated 4% above it: "≥ rate".
    ClientLimit,
    /// Failed already at the rate: "< rate".
    NonePassed,
}

/// A search of `style` at 20 connections, round `repeat`, summarised from
/// its steps by compare's own code.
fn search(style: &str, slo: &str, repeat: u32, rate: f64, found: Found) -> CapacitySearch {
    let steps = match found {
        Found::Server => vec![
            step(rate / 2.0, true, false),
            step(rate, true, false),
            step(rate * 1.04, false, false),
        ],
        Found::ClientLimit => vec![
            step(rate / 2.0, true, false),
            step(rate, true, false),
            step(rate * 1.04, false, true),
        ],
        Found::NonePassed => vec![step(rate * 2.0, false, false), step(rate, false, false)],
    };
    summarise(style, 20, repeat, Slo::parse(slo).unwrap(), steps)
}

/// Rounds of `style` at these capacities, all bounded the same way.
fn rounds(style: &str, rates: &[f64], found: Found) -> Vec<CapacitySearch> {
    rates
        .iter()
        .enumerate()
        .map(|(i, &r)| search(style, P99_1MS, i as u32, r, found))
        .collect()
}

/// The smoke fixture's results.json with these searches in `capacity`.
fn with(searches: &[CapacitySearch]) -> CompareResults {
    let mut doc: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/diff-smoke.json")).unwrap();
    assert!(doc.get("capacity").is_none(), "the fixture has no searches");
    doc["capacity"] = serde_json::to_value(searches).unwrap();
    serde_json::from_value(doc).expect("the fixture with searches reads as results")
}

fn capacity<'a>(d: &'a Diff, style: &str, point: &str) -> &'a loadgen::report::diff::Cell {
    d.cells
        .iter()
        .find(|c| c.row == style && c.scenario == "capacity" && c.point == point)
        .unwrap_or_else(|| {
            let have: Vec<String> = d
                .cells
                .iter()
                .filter(|c| c.scenario == "capacity")
                .map(|c| format!("{} {}", c.row, c.point))
                .collect();
            panic!("a capacity cell {style} {point} among {have:?}")
        })
}

const AT20: &str = "conns=20 at p99 ≤ 1ms";

/// (baseline, new) for one style: the verdict and the change.
fn judged(old: Vec<CapacitySearch>, new: Vec<CapacitySearch>) -> (Verdict, Option<f64>) {
    let d = Diff::new(&with(&old), &with(&new), "old", "new");
    let c = capacity(&d, "epoll", AT20);
    assert_eq!(c.kind(), Kind::Throughput);
    (c.verdict, c.change_pct)
}

#[test]
fn capacities_found_by_the_server_are_read_like_any_throughput() {
    let k = 1.0 + 2.0 * noise_floor_pct(Kind::Throughput) / 100.0;
    let base = rounds("epoll", &[10_000.0, 10_200.0], Found::Server);
    // Beyond noise either way.
    let up = rounds("epoll", &[10_000.0 * k, 10_200.0 * k], Found::Server);
    let (v, pct) = judged(base.clone(), up.clone());
    assert_eq!(v, Verdict::Improved);
    assert!((pct.unwrap() - (k - 1.0) * 100.0).abs() < 0.5, "{pct:?}");
    assert_eq!(judged(up, base.clone()).0, Verdict::Regressed);
    // Ranges apart, the change under the floor.
    let near = rounds("epoll", &[12_000.0, 12_100.0], Found::Server);
    assert_eq!(judged(base.clone(), near).0, Verdict::WithinNoise);
    // A third round far off: the ranges overlap, whatever the medians.
    let wide = rounds(
        "epoll",
        &[10_000.0 * k, 9_000.0, 10_200.0 * k],
        Found::Server,
    );
    let (v, pct) = judged(base.clone(), wide);
    assert_eq!(v, Verdict::WithinNoise);
    assert!(pct.unwrap() > 100.0, "the medians moved: {pct:?}");
    // A run against itself: every capacity cell there, nothing moved.
    let both: Vec<CapacitySearch> = base
        .iter()
        .cloned()
        .chain(rounds("reactor", &[20_000.0, 20_000.0], Found::Server))
        .collect();
    let d = Diff::new(&with(&both), &with(&both), "a", "a");
    for style in ["epoll", "reactor"] {
        let c = capacity(&d, style, AT20);
        assert_eq!((c.verdict, c.change_pct), (Verdict::WithinNoise, Some(0.0)));
    }
    // Its line in diff.md: the capacity as the report writes it.
    let md = text::markdown(&d);
    assert!(md.contains("### capacity"), "{md}");
    assert!(
        md.contains("| epoll | conns=20 at p99 ≤ 1ms | capacity | 10.1k/s (10.0k–10.2k) |"),
        "{md}"
    );
}

/// One search a side is not compared, however far apart: the capacity at a
/// 1 ms p99 moved every style ×1.5-3.4 the same way between back-to-back
/// runs of the same code on this machine.
#[test]
fn one_capacity_search_a_side_is_not_compared() {
    let once = |r: f64| rounds("epoll", &[r], Found::Server);
    let (v, pct) = judged(once(2_000.0), once(6_000.0));
    assert_eq!(
        v,
        Verdict::NotCompared(loadgen::report::diff::unlike::Unlike::OneSearch)
    );
    assert_eq!(pct, None);
    let twice = rounds("epoll", &[2_000.0, 2_100.0], Found::Server);
    assert!(matches!(
        judged(twice, once(6_000.0)).0,
        Verdict::NotCompared(_)
    ));
    let d = Diff::new(&with(&once(2_000.0)), &with(&once(6_000.0)), "a", "b");
    assert!(
        text::summary(&d).contains("1 not compared"),
        "{}",
        text::summary(&d)
    );
}

/// The rule for bounds: a side loadgen limited is only a floor (the
/// capacity is at least that), one where no step passed only a ceiling;
/// a verdict only where the bounds themselves prove a change beyond noise.
#[test]
fn a_bound_decides_a_change_only_where_it_proves_one() {
    let k = 1.0 + 2.0 * noise_floor_pct(Kind::Throughput) / 100.0;
    // Two rounds a side: one search a side is not compared (below).
    let server = |r: f64| rounds("epoll", &[r, r], Found::Server);
    let floor = |r: f64| rounds("epoll", &[r, r], Found::ClientLimit);
    let ceiling = |r: f64| rounds("epoll", &[r, r], Found::NonePassed);
    // A floor under the old value proves nothing: not slower.
    let (v, pct) = judged(server(30_000.0), floor(10_000.0));
    assert_eq!(v, Verdict::Bounded);
    assert_eq!(pct, None);
    // A floor far above it proves faster: the change is at least the
    // floor's.
    let (v, pct) = judged(server(10_000.0), floor(10_000.0 * k));
    assert_eq!(v, Verdict::Improved);
    assert!((pct.unwrap() - (k - 1.0) * 100.0).abs() < 0.5, "{pct:?}");
    // A floor above it, but within noise of it: undecided.
    assert_eq!(
        judged(server(10_000.0), floor(12_000.0)).0,
        Verdict::Bounded
    );
    // The baseline a floor, the new run far under it: slower; above it,
    // nothing to say.
    assert_eq!(
        judged(floor(10_000.0 * k), server(10_000.0)).0,
        Verdict::Regressed
    );
    assert_eq!(
        judged(floor(10_000.0), server(10_000.0 * k)).0,
        Verdict::Bounded
    );
    // Floors on both sides: undecided whatever their values.
    assert_eq!(
        judged(floor(10_000.0), floor(10_000.0 * k)).0,
        Verdict::Bounded
    );
    // No step passed at 1000/s where 10,000/s did: slower, by at least
    // the ceiling's change.
    let (v, pct) = judged(server(10_000.0), ceiling(1_000.0));
    assert_eq!(v, Verdict::Regressed);
    assert!((pct.unwrap() + 90.0).abs() < 0.5, "{pct:?}");
    assert_eq!(
        judged(ceiling(1_000.0), server(10_000.0)).0,
        Verdict::Improved
    );
    // A ceiling above the other side's value: undecided.
    assert_eq!(
        judged(server(10_000.0), ceiling(20_000.0)).0,
        Verdict::Bounded
    );
    // One round of three a floor: the side is only bounded below by its
    // lowest round.
    let mixed: Vec<CapacitySearch> = vec![
        search("epoll", P99_1MS, 0, 30_000.0, Found::Server),
        search("epoll", P99_1MS, 1, 31_000.0, Found::Server),
        search("epoll", P99_1MS, 2, 5_000.0, Found::ClientLimit),
    ];
    let base = rounds("epoll", &[10_000.0, 10_100.0], Found::Server);
    assert_eq!(judged(base.clone(), mixed.clone()).0, Verdict::Bounded);
    // The median round is the server's: each round's own words say so.
    let md = text::markdown(&Diff::new(&with(&base), &with(&mixed), "a", "b"));
    assert!(
        md.contains("| 30.0k/s (5000–31.0k) (rounds: ≥ 5000/s (client limit), 30.0k/s, 31.0k/s) |"),
        "{md}"
    );

    // diff.md writes each side as the report does, the verdict in words.
    let d = Diff::new(&with(&server(30_000.0)), &with(&floor(10_000.0)), "a", "b");
    let c = capacity(&d, "epoll", AT20);
    assert_eq!(c.verdict_text(), "undecided (a bound)");
    let md = text::markdown(&d);
    assert!(
        md.contains("| 30.0k/s | ≥ 10.0k/s (client limit) | – | undecided (a bound) |"),
        "{md}"
    );
    assert!(text::summary(&d).contains("1 undecided"), "{md}");
    let d = Diff::new(&with(&server(10_000.0)), &with(&ceiling(1_000.0)), "a", "b");
    let md = text::markdown(&d);
    assert!(
        md.contains("| 10.0k/s | < 1000/s (no step passed) | ≤ −90.0% | **slower** |"),
        "{md}"
    );
}

#[test]
fn searches_at_another_objective_or_on_one_side_are_not_matched() {
    let old = vec![
        search("epoll", P99_1MS, 0, 10_000.0, Found::Server),
        search("reactor", P99_1MS, 0, 10_000.0, Found::Server),
    ];
    let new = vec![search("epoll", "p99=2ms", 0, 10_000.0, Found::Server)];
    let d = Diff::new(&with(&old), &with(&new), "a", "b");
    let c = capacity(&d, "epoll", AT20);
    assert_eq!(c.verdict, Verdict::OnlyIn(Side::Old));
    assert!(c.new.is_none() && c.change_pct.is_none());
    let c = capacity(&d, "epoll", "conns=20 at p99 ≤ 2ms");
    assert_eq!(c.verdict, Verdict::OnlyIn(Side::New));
    let c = capacity(&d, "reactor", AT20);
    assert_eq!(c.verdict, Verdict::OnlyIn(Side::Old));
    assert!(
        d.differences
            .iter()
            .any(|x| x == "capacity objective: p99 ≤ 1ms in the baseline, p99 ≤ 2ms in the new run"),
        "{:?}",
        d.differences
    );
}

#[test]
fn a_capacity_regression_fails_the_diff() {
    let dir = temp("capacity-regress");
    let k = 1.0 + 2.0 * noise_floor_pct(Kind::Throughput) / 100.0;
    let old = with(&rounds(
        "epoll",
        &[10_000.0 * k, 10_000.0 * k],
        Found::Server,
    ));
    let new = with(&rounds("epoll", &[10_000.0, 10_000.0], Found::Server));
    let d = Diff::new(&old, &new, "a", "b");
    let regressed = d.regressions(10.0);
    assert_eq!(regressed.len(), 1, "the capacity cell alone");
    assert_eq!(regressed[0].scenario, "capacity");
    let (a, b) = (write(&dir, "old.json", &old), write(&dir, "new.json", &new));
    let out = diff_cmd(&[&a, &b], &["--fail-on-regression", "10"]);
    let stderr = exits(&out, 3);
    assert!(
        stderr.contains("regression over 10%: epoll capacity conns=20 at p99 ≤ 1ms capacity: ")
            && stderr.contains("slower"),
        "{stderr}"
    );
    // Beyond PCT only.
    exits(&diff_cmd(&[&a, &b], &["--fail-on-regression", "90"]), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
