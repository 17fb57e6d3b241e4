//! Cells measured side by side: where both runs ran a style's scale point
//! beside an epoll server, its msg/s and CPU per message are read as ratios
//! to that epoll run, round by round, against the paired floors; epoll's
//! own row is read on its own figures; a point paired on one side only is
//! read as without pairs. Built from the smoke fixture, made a paired run
//! at conns=20 (a copy of epoll's run there beside each other row's run,
//! tagged `partner_of` it) with a third row, tasks (reactor's runs renamed).

use loadgen::RunResult;
use loadgen::compare::model::CompareResults;
use loadgen::report::diff::{Diff, ReadOn, Verdict, paired_floor_pct, reference_floor_pct, text};

use super::{Kind, cell, fixture, noise_floor_pct};

const POINT: &str = "conns=20 ";
const RATIO: &str = "msg/s ÷ epoll's beside it";
const COST: &str = "server CPU/msg ÷ epoll's beside it";

fn put_cpu(r: &mut RunResult, v: f64) {
    let cg = r.server.as_mut().and_then(|s| s.cgroup.as_mut());
    cg.expect("the fixture ran in cgroups").cpu_us_per_msg = Some(v);
}

fn at_point(r: &RunResult, style: &str) -> bool {
    r.tags
        .as_ref()
        .is_some_and(|t| t.style == style && t.scenario == "scale" && t.point.starts_with(POINT))
}

fn round(r: &RunResult) -> usize {
    r.tags.as_ref().map_or(0, |t| t.repeat as usize)
}

/// One side of a paired comparison. `speed` is the machine's (every rate
/// scaled by it, every cost by its inverse: what drift between two runs
/// does); `epoll` epoll's own code (its rate, its partners' too, since
/// they are epoll); `rows` each other row's ratio to the epoll run beside
/// it, per round. A row's CPU per message is epoll's over its ratio (a
/// server held to a quota is as much slower as it costs more).
fn paired(speed: f64, epoll: f64, rows: &[(&str, [f64; 2])]) -> CompareResults {
    let mut f = fixture();
    let epoll_rate = |round: usize| 10_000.0 * speed * epoll * (1.0 + 0.01 * round as f64);
    let base: Vec<RunResult> = f
        .runs
        .iter()
        .filter(|r| at_point(r, "epoll"))
        .cloned()
        .collect();
    assert_eq!(base.len(), 2, "two rounds of epoll at {POINT}");
    for r in f.runs.iter_mut().filter(|r| at_point(r, "epoll")) {
        let k = epoll_rate(round(r));
        r.throughput_msgs_per_s = k;
        put_cpu(r, 5.0 / (speed * epoll));
        r.outcome.ok = true;
    }
    let template: Vec<RunResult> = f
        .runs
        .iter()
        .filter(|r| at_point(r, "reactor"))
        .cloned()
        .collect();
    f.runs.retain(|r| !at_point(r, "reactor"));
    for (row, ratios) in rows {
        for (own, partner) in template.iter().zip(&base) {
            let i = round(own);
            // The partner: epoll at the same point and round, a little
            // off epoll's own run (another window of the same machine).
            let mut e = partner.clone();
            let e_rate = epoll_rate(i) * (1.0 + 0.005 * i as f64);
            e.throughput_msgs_per_s = e_rate;
            put_cpu(&mut e, 5.0 / (speed * epoll));
            e.outcome.ok = true;
            e.tags.as_mut().unwrap().partner_of = row.to_string();
            let mut r = own.clone();
            r.tags.as_mut().unwrap().style = row.to_string();
            r.throughput_msgs_per_s = e_rate * ratios[i];
            put_cpu(&mut r, 5.0 / (speed * epoll) / ratios[i]);
            r.outcome.ok = true;
            f.runs.push(e);
            f.runs.push(r);
        }
    }
    if !f.styles.iter().any(|s| s == "tasks") {
        f.styles.push("tasks".into());
    }
    f
}

/// Steady rows: reactor at 0.98-0.99 of epoll, tasks at 0.90-0.91.
const STEADY: [(&str, [f64; 2]); 2] = [("reactor", [0.98, 0.99]), ("tasks", [0.90, 0.91])];

fn verdict(d: &Diff, row: &str, figure: &str) -> (Verdict, ReadOn) {
    let c = cell(d, row, "scale", POINT, figure);
    (c.verdict, c.read_on)
}

/// A style 15% slower beside epoll is slower, though the machine got 20%
/// faster in between (its own msg/s rose 2%, which its own figure would
/// call within noise): the pairs cancel the machine. The other style and
/// epoll stay within noise, and each cell says what it was read on.
#[test]
fn a_paired_ratio_that_moves_15_percent_with_tight_ranges_is_slower() {
    assert!(paired_floor_pct(Kind::Throughput) < 15.0);
    assert!(paired_floor_pct(Kind::Cpu) < 15.0);
    let old = paired(1.0, 1.0, &STEADY);
    let new = paired(
        1.2,
        1.0,
        &[("reactor", [0.98 * 0.85, 0.99 * 0.85]), STEADY[1]],
    );
    let d = Diff::new(&old, &new, "before", "after");
    let c = cell(&d, "reactor", "scale", POINT, RATIO);
    assert_eq!(
        (c.verdict, c.read_on),
        (Verdict::Regressed, ReadOn::PairedRatio)
    );
    assert!(
        (c.change_pct.unwrap() + 15.0).abs() < 0.5,
        "{:?}",
        c.change_pct
    );
    assert_eq!(c.verdict_text(), "slower");
    // CPU per message: 1/0.85 more, worse.
    assert_eq!(
        verdict(&d, "reactor", COST),
        (Verdict::Regressed, ReadOn::PairedRatio)
    );
    for figure in [RATIO, COST] {
        assert_eq!(
            verdict(&d, "tasks", figure),
            (Verdict::WithinNoise, ReadOn::PairedRatio),
            "tasks {figure}"
        );
    }
    // epoll's own figures moved with the machine only: ×1.2 is within the
    // reference's floor, and it says it is the reference.
    assert!(1.2 < 1.0 + reference_floor_pct(Kind::Throughput) / 100.0);
    for figure in ["msg/s", "server CPU/msg"] {
        assert_eq!(
            verdict(&d, "epoll", figure),
            (Verdict::WithinNoise, ReadOn::Reference),
            "epoll {figure}"
        );
    }
    // p99 is not paired: reactor's is its own figure.
    assert_eq!(verdict(&d, "reactor", "p99").1, ReadOn::Own);
    // No own msg/s cell for a paired row: the ratio is its throughput.
    assert!(
        !d.cells
            .iter()
            .any(|c| c.row == "reactor" && c.point.starts_with(POINT) && c.figure.name == "msg/s")
    );
    // The unpaired point (conns=1) is read as without pairs.
    let c = cell(&d, "epoll", "scale", "conns=1 ", "msg/s");
    assert_eq!(c.read_on, ReadOn::Own);
    // The text: the column, the rule with its floors, the cell in the
    // table of cells beyond noise, and the regression at 10%.
    let md = text::markdown(&d);
    assert!(md.contains("| figure | read on |"), "{md}");
    assert!(
        md.contains(&format!(
            "| reactor | scale | conns=20 size=64 | {RATIO} | paired ratio to epoll | 0.985 (0.980–0.990) | 0.837 (0.833–0.842) | −15.0% | **slower** |"
        )),
        "{md}"
    );
    assert!(md.contains("| epoll | conns=20 size=64 | msg/s | own figure (the reference) |"));
    assert!(md.contains("**Side by side (\"read on\").**"), "{md}");
    let regressions: Vec<String> = d.regressions(10.0).into_iter().map(text::line).collect();
    assert_eq!(regressions.len(), 2, "{regressions:?}");
    assert!(
        regressions
            .iter()
            .all(|l| l.starts_with("reactor scale conns=20"))
    );
}

/// epoll's own drop shows on epoll's own row. The other rows, unchanged,
/// ran beside the slower epoll: their ratios doubled, and the text says
/// beside them that the reference moved.
#[test]
fn epolls_own_drop_is_reported_on_its_own_row() {
    let old = paired(1.0, 1.0, &STEADY);
    let doubled = STEADY.map(|(row, r)| (row, r.map(|x| x * 2.0)));
    let new = paired(1.0, 0.5, &doubled);
    let d = Diff::new(&old, &new, "before", "after");
    assert_eq!(
        verdict(&d, "epoll", "msg/s"),
        (Verdict::Regressed, ReadOn::Reference)
    );
    assert_eq!(
        verdict(&d, "epoll", "server CPU/msg"),
        (Verdict::Regressed, ReadOn::Reference)
    );
    for row in ["reactor", "tasks"] {
        assert_eq!(
            verdict(&d, row, RATIO),
            (Verdict::Improved, ReadOn::PairedRatio)
        );
    }
    let md = text::markdown(&d);
    assert!(
        md.contains(
            "epoll, the reference, moved on its own at conns=20 size=64 (msg/s slower), \
             conns=20 size=64 (server CPU/msg worse)"
        ),
        "{md}"
    );
    assert!(
        md.contains(&format!(
            "Every paired row moved the same way at conns=20 size=64 {RATIO} (faster)"
        )),
        "{md}"
    );
    // A drop by ×1.4, within the own floor (×1.6), is past the
    // reference's (both runs under a quota): epoll's row shows it at the
    // paired point.
    let drop = 1.0 / 1.4;
    assert!(1.4 > 1.0 + reference_floor_pct(Kind::Throughput) / 100.0);
    assert!(1.4 < 1.0 + noise_floor_pct(Kind::Throughput) / 100.0);
    let scaled = STEADY.map(|(row, r)| (row, r.map(|x| x / drop)));
    let d = Diff::new(&old, &paired(1.0, drop, &scaled), "before", "after");
    assert_eq!(
        verdict(&d, "epoll", "msg/s"),
        (Verdict::Regressed, ReadOn::Reference)
    );
    // Every row slower with epoll (a change every style shares, or a
    // machine twice as slow): the ratios hold, epoll's own row shows it.
    let d = Diff::new(&old, &paired(1.0, 0.5, &STEADY), "before", "after");
    assert_eq!(verdict(&d, "epoll", "msg/s").0, Verdict::Regressed);
    assert_eq!(verdict(&d, "reactor", RATIO).0, Verdict::WithinNoise);
}

/// Ratios that moved 15% in the median but whose ranges overlap are
/// noise, as any cell; so are ratios that moved less than the paired
/// floor, ranges apart.
#[test]
fn overlapping_paired_ranges_are_within_noise() {
    let old = paired(1.0, 1.0, &[("reactor", [0.80, 1.00]), STEADY[1]]);
    let new = paired(1.0, 1.0, &[("reactor", [0.70, 0.83]), STEADY[1]]);
    let d = Diff::new(&old, &new, "before", "after");
    let c = cell(&d, "reactor", "scale", POINT, RATIO);
    assert!(c.change_pct.unwrap() < -15.0, "{:?}", c.change_pct);
    assert_eq!(c.verdict, Verdict::WithinNoise);
    let under = 1.0 / (1.0 + 0.8 * paired_floor_pct(Kind::Throughput) / 100.0);
    let new = paired(
        1.0,
        1.0,
        &[("reactor", [0.98 * under, 0.99 * under]), STEADY[1]],
    );
    let d = Diff::new(&paired(1.0, 1.0, &STEADY), &new, "before", "after");
    assert_eq!(
        verdict(&d, "reactor", RATIO),
        (Verdict::WithinNoise, ReadOn::PairedRatio)
    );
}

/// A point paired in one run only is read on its own figures, against the
/// own floors, and says so; a round whose partner failed is left out of
/// the ratio, shown apart.
#[test]
fn a_point_paired_on_one_side_only_is_read_on_own_figures() {
    let old = paired(1.0, 1.0, &STEADY);
    let mut new = paired(1.0, 1.0, &STEADY);
    new.runs
        .retain(|r| r.tags.as_ref().is_none_or(|t| t.partner_of != "reactor"));
    let d = Diff::new(&old, &new, "before", "after");
    let c = cell(&d, "reactor", "scale", POINT, "msg/s");
    assert_eq!(
        (c.verdict, c.read_on),
        (Verdict::WithinNoise, ReadOn::PairedIn(super::Side::Old))
    );
    assert_eq!(c.read_on.text(), "own figure (paired in baseline only)");
    // tasks is still paired in both, and so is epoll's point.
    assert_eq!(verdict(&d, "tasks", RATIO).1, ReadOn::PairedRatio);
    assert_eq!(verdict(&d, "epoll", "msg/s").1, ReadOn::Reference);

    let mut new = paired(1.0, 1.0, &STEADY);
    for r in new.runs.iter_mut().filter(|r| {
        r.tags
            .as_ref()
            .is_some_and(|t| t.partner_of == "tasks" && t.repeat == 1)
    }) {
        r.outcome.ok = false;
    }
    let d = Diff::new(&old, &new, "before", "after");
    let c = cell(&d, "tasks", "scale", POINT, RATIO);
    let m = c.new.as_ref().unwrap();
    assert_eq!((m.failed, m.repeats), (1, 2));
    assert_eq!(m.spread.unwrap().n, 1);
    assert!(text::markdown(&d).contains("✗ 1 of 2 left out"));
}
