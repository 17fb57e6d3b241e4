//! The cells of a change against a baseline: every (row, scenario, point,
//! figure) of either run, matched across the two, with both sides' median
//! and range over the repeats and the verdict on the change ([`judge`]);
//! the capacity cells, which come from the searches and not from runs,
//! are handed in by the caller (the diff's capacity module makes them).

use std::collections::{BTreeMap, BTreeSet};

use super::figures::{self, Basis, Figure, Kind, floor_pct, noise_floor_abs};
use super::key::params;
pub use super::key::{Side, point_key};
use super::paired::{self, Partners, ReadOn};
use super::unlike::Unlike;
use crate::compare::model::{CompareResults, Scenario};
use crate::report::view::Spread;
use crate::results::RunResult;

/// One side of a cell: the figure over the point's repeats.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// Median and min–max over the repeats that did what was asked (None
    /// when none did, or none has the figure): what the change is read on.
    pub spread: Option<Spread>,
    /// The same over the repeats that failed (`outcome.ok` false): shown,
    /// marked, never compared.
    pub failed_spread: Option<Spread>,
    pub failed: usize,
    pub repeats: usize,
    /// Where some repeat found a bound rather than a value (a capacity
    /// search loadgen limited, or none of whose steps passed): what the
    /// repeats prove together. The change is read on it, not the spread.
    pub bounds: Option<Bounds>,
    /// How the side is written where it is more than a number (a
    /// capacity, as the report writes it: "≥ 45.2k/s (client limit)").
    pub words: Option<String>,
}

/// What a side's repeats prove of a figure: at least `lo`, at most `hi`
/// (infinite: no upper bound).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    pub lo: f64,
    pub hi: f64,
}

/// What the change in a cell says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The ranges do not overlap and the change passes the noise floor,
    /// the better way (faster, or better where lower is better).
    Improved,
    /// As Improved, the worse way (slower, worse).
    Regressed,
    /// The ranges overlap, or the change is within the noise floor.
    WithinNoise,
    /// The baseline's figure is 0: no change in % to read.
    NoBase,
    /// A side is a bound (a capacity "≥ X" or "< X"), and the bounds do
    /// not prove a change beyond noise either way.
    Bounded,
    /// Every repeat of the cell failed on this side (or on both: `None`).
    Failed(Option<Side>),
    /// The cell is in this run only.
    OnlyIn(Side),
    /// Measured under conditions that make it no evidence of a change of
    /// the code: shown, not judged ([`super::unlike`]).
    NotCompared(Unlike),
}

/// One figure at one point of one row, in both runs.
pub struct Cell {
    /// The style, STYLE:VARIANT or external server's name.
    pub row: String,
    pub scenario: String,
    /// The point's parameters, as the newer run names it.
    pub point: String,
    pub figure: &'static Figure,
    /// What the figure was read on: the row's own runs, or ratios to the
    /// epoll runs beside them ([`paired`]).
    pub read_on: ReadOn,
    pub old: Option<Measured>,
    pub new: Option<Measured>,
    /// (new − old) / |old| of the medians, in %.
    pub change_pct: Option<f64>,
    pub verdict: Verdict,
}

impl Cell {
    pub fn kind(&self) -> Kind {
        self.figure.kind
    }

    /// The verdict in words: "faster", "worse", "within noise"...
    pub fn verdict_text(&self) -> String {
        let (better, worse) = self.kind().words();
        match self.verdict {
            Verdict::Improved => better.into(),
            Verdict::Regressed => worse.into(),
            Verdict::WithinNoise => "within noise".into(),
            Verdict::NoBase => "no % (baseline 0)".into(),
            Verdict::Bounded => "undecided (a bound)".into(),
            Verdict::Failed(None) => "failed in both".into(),
            Verdict::Failed(Some(side)) => format!("failed in {}", side.name()),
            Verdict::OnlyIn(side) => format!("only in {}", side.name()),
            Verdict::NotCompared(why) => why.words(),
        }
    }
}

/// (row, scenario, point key): where a run belongs.
type Key = (String, String, String);

/// The runs of one side grouped by where they belong (every repeat), and
/// each point's name as written.
struct Grouped<'a> {
    runs: BTreeMap<Key, Vec<&'a RunResult>>,
    names: BTreeMap<Key, String>,
}

fn group(results: &CompareResults) -> Grouped<'_> {
    let mut g = Grouped {
        runs: BTreeMap::new(),
        names: BTreeMap::new(),
    };
    for r in &results.runs {
        // A side-by-side partner run is another row's denominator, not a
        // cell of the reference's own.
        let Some(t) = r.tags.as_ref().filter(|t| !t.is_partner()) else {
            continue;
        };
        let key = (t.style.clone(), t.scenario.clone(), point_key(&t.point));
        g.names.insert(key.clone(), params(&t.point).to_string());
        g.runs.entry(key).or_default().push(r);
    }
    g
}

/// A figure over a point's repeats, the failed ones apart; None where no
/// repeat has it and none failed (a figure this run did not measure, e.g.
/// without cgroups).
fn measure(runs: &[&RunResult], figure: &Figure) -> Option<Measured> {
    let values = |ok: bool| -> Vec<f64> {
        runs.iter()
            .filter(|r| r.outcome.ok == ok)
            .filter_map(|r| (figure.value)(r))
            .collect()
    };
    let failed = runs.iter().filter(|r| !r.outcome.ok).count();
    measured(values(true), values(false), failed, runs.len())
}

/// A side from its values: those of the repeats that did what was asked,
/// those of the `failed` ones, out of `repeats`.
fn measured(ok: Vec<f64>, bad: Vec<f64>, failed: usize, repeats: usize) -> Option<Measured> {
    let spread = Spread::of(ok);
    if spread.is_none() && failed == 0 {
        return None;
    }
    Some(Measured {
        spread,
        failed_spread: Spread::of(bad),
        failed,
        repeats,
        bounds: None,
        words: None,
    })
}

/// The verdict on a figure measured on both sides: a change is beyond
/// noise when the ranges do not overlap and the medians moved by more than
/// both floors of the figure, its kind's factor and its unit's absolute
/// amount. Where a side is a bound, read on the bounds (`judge_bounds`).
pub fn judge(figure: &Figure, old: &Measured, new: &Measured) -> (Option<f64>, Verdict) {
    judge_at(figure, floor_pct(figure), old, new)
}

/// As [`judge`], with the relative floor given (in %): epoll's own
/// figures at a paired point have floors of their own
/// ([`figures::reference_floor_pct`]).
pub fn judge_at(
    figure: &Figure,
    floor: f64,
    old: &Measured,
    new: &Measured,
) -> (Option<f64>, Verdict) {
    if old.bounds.is_some() || new.bounds.is_some() {
        return judge_bounds(figure, floor, &proven(old), &proven(new));
    }
    // Only repeats that did what was asked are read.
    let (a, b) = match (old.spread, new.spread) {
        (Some(a), Some(b)) => (a, b),
        (None, None) => return (None, Verdict::Failed(None)),
        (None, Some(_)) => return (None, Verdict::Failed(Some(Side::Old))),
        (Some(_), None) => return (None, Verdict::Failed(Some(Side::New))),
    };
    let past_abs = (b.median - a.median).abs() > noise_floor_abs(figure.unit);
    if a.median == 0.0 {
        // No % from 0; a move within the absolute floor is noise all the
        // same (an idle CPU of 0% in one run and one clock tick in another).
        return match (b.median == 0.0, past_abs) {
            (true, _) => (Some(0.0), Verdict::WithinNoise),
            (false, false) => (None, Verdict::WithinNoise),
            (false, true) => (None, Verdict::NoBase),
        };
    }
    let change = (b.median - a.median) / a.median.abs() * 100.0;
    let overlap = a.max >= b.min && b.max >= a.min;
    // A cell that moves further between its own rounds than the kind's
    // floor (threads at 1,000 connections: ×2 within one run) is judged on
    // that spread: a smaller move between runs is not evidence.
    let floor = floor.max(own_spread_pct(&a)).max(own_spread_pct(&b));
    if overlap || !past_abs || !past_rel(floor, a.median, b.median) {
        return (Some(change), Verdict::WithinNoise);
    }
    (Some(change), direction(figure, change))
}

/// How far a side's rounds are apart, in % of the least (0 for one
/// round, or where the least is not above 0).
fn own_spread_pct(s: &Spread) -> f64 {
    if s.min > 0.0 && s.n > 1 {
        (s.max / s.min - 1.0) * 100.0
    } else {
        0.0
    }
}

/// Both sides have a figure (neither failed in every repeat).
fn both(a: &Measured, b: &Measured) -> bool {
    a.spread.is_some() && b.spread.is_some()
}

/// Beyond a relative floor, in %.
fn past_rel(floor: f64, a: f64, b: f64) -> bool {
    factor(a, b) > 1.0 + floor / 100.0
}

/// Better or worse, by the figure's direction and the change's sign.
fn direction(figure: &Figure, change: f64) -> Verdict {
    if (change > 0.0) == figure.kind.higher_is_better() {
        Verdict::Improved
    } else {
        Verdict::Regressed
    }
}

/// What a side proves: its bounds, or the range of its values.
fn proven(m: &Measured) -> Option<Bounds> {
    m.bounds.or(m.spread.map(|s| Bounds {
        lo: s.min,
        hi: s.max,
    }))
}

/// The verdict where a side is a bound (a capacity loadgen limited is
/// only "at least X"; one where no step passed only "below X"): a change
/// is called only where the bounds prove it, and the change given is the
/// least they prove. Up: the new side's least value is above the old
/// side's greatest by more than both floors (a floor of 30k/s against
/// 10k/s is faster; a floor of 10k/s against 30k/s is nothing, the server
/// may take any more). Down: the old side's least above the new side's
/// greatest, likewise. Otherwise undecided, with no change in %: whatever
/// the medians say, the true values may be anywhere in the bounds.
fn judge_bounds(
    figure: &Figure,
    floor: f64,
    old: &Option<Bounds>,
    new: &Option<Bounds>,
) -> (Option<f64>, Verdict) {
    let (a, b) = match (old, new) {
        (Some(a), Some(b)) => (a, b),
        (None, None) => return (None, Verdict::Failed(None)),
        (None, Some(_)) => return (None, Verdict::Failed(Some(Side::Old))),
        (Some(_), None) => return (None, Verdict::Failed(Some(Side::New))),
    };
    let apart = |lo: f64, hi: f64| {
        lo > hi && lo - hi > noise_floor_abs(figure.unit) && past_rel(floor, hi, lo)
    };
    let pct = |from: f64, to: f64| (from > 0.0).then(|| (to - from) / from * 100.0);
    if apart(b.lo, a.hi) {
        let change = pct(a.hi, b.lo);
        return (change, direction(figure, 1.0));
    }
    if apart(a.lo, b.hi) {
        let change = pct(a.lo, b.hi);
        return (change, direction(figure, -1.0));
    }
    (None, Verdict::Bounded)
}

/// How many times larger the larger of two values is: the same either
/// way (a halving is a factor of 2, as a doubling is), since run-to-run
/// noise here scales figures rather than adding to them. Infinite when
/// their signs differ.
pub fn factor(a: f64, b: f64) -> f64 {
    let r = b / a;
    if r > 0.0 {
        r.max(1.0 / r)
    } else {
        f64::INFINITY
    }
}

/// Rows (styles), and (row, scenario) pairs, that one side has and the
/// other does not.
#[derive(Debug, Default, PartialEq)]
pub struct Missing {
    pub rows: Vec<(Side, String)>,
    pub scenarios: Vec<(Side, String, String)>,
}

/// Every cell of either run, in the report's order: scenario (as
/// `compare` runs them), then row (the newer run's order, then rows only
/// the baseline has), then point as named, then figure; `extra` (the
/// capacity cells) sorted in among them.
pub fn match_runs(
    old: &CompareResults,
    new: &CompareResults,
    extra: Vec<Cell>,
) -> (Vec<Cell>, Missing) {
    let (go, gn) = (group(old), group(new));
    let (po, pn) = (Partners::of(old), Partners::of(new));
    let keys: BTreeSet<&Key> = go.runs.keys().chain(gn.runs.keys()).collect();
    let mut cells = Vec::new();
    for key in keys {
        let (row, scenario, point_key) = key;
        let point = gn
            .names
            .get(key)
            .or_else(|| go.names.get(key))
            .cloned()
            .unwrap_or_default();
        let (o, n) = (go.runs.get(key), gn.runs.get(key));
        let read_on = paired::read_on((row, scenario, point_key), [o, n], [&po, &pn]);
        let list = match read_on {
            ReadOn::PairedRatio => figures::SCALE_PAIRED,
            _ => figures::of(scenario, &point),
        };
        for figure in list {
            let side = |runs: Option<&Vec<&RunResult>>, partners: &Partners| {
                let runs = runs?;
                match figure.basis {
                    Basis::Own => measure(runs, figure),
                    Basis::Paired => {
                        let r = paired::ratios(runs, partners, figure);
                        measured(r.ok, r.failed_values, r.failed, runs.len())
                    }
                }
            };
            let (old_m, new_m) = (side(o, &po), side(n, &pn));
            let (change_pct, verdict) = match (&old_m, &new_m) {
                // Latency at different offered loads, or of a throttled
                // server, is no change of the code (a failed side still
                // says failed).
                (Some(a), Some(b))
                    if let (true, Some(why)) = (both(a, b), super::unlike::load(o, n)) =>
                {
                    (None, Verdict::NotCompared(why))
                }
                (Some(a), Some(b)) if both(a, b) && super::unlike::disturbed(o, n) => {
                    (None, Verdict::NotCompared(Unlike::Disturbed))
                }
                (Some(a), Some(b))
                    if both(a, b)
                        && figure.kind == Kind::Latency
                        && super::unlike::throttled(o, n) =>
                {
                    (None, Verdict::NotCompared(Unlike::Throttled))
                }
                (Some(a), Some(b)) => {
                    let floor = match (read_on, figure.basis) {
                        (ReadOn::Reference, _) => figures::reference_floor_pct(figure.kind),
                        (_, Basis::Paired) => figures::style_paired_floor_pct(row, figure.kind)
                            .unwrap_or_else(|| floor_pct(figure)),
                        (_, Basis::Own) => floor_pct(figure),
                    };
                    judge_at(figure, floor, a, b)
                }
                (Some(_), None) => (None, Verdict::OnlyIn(Side::Old)),
                (None, Some(_)) => (None, Verdict::OnlyIn(Side::New)),
                (None, None) => continue,
            };
            cells.push(Cell {
                row: row.clone(),
                scenario: scenario.clone(),
                point: point.clone(),
                figure,
                // A row's figure that is not paired (p99) is its own.
                read_on: match figure.basis {
                    Basis::Own if read_on == ReadOn::PairedRatio => ReadOn::Own,
                    _ => read_on,
                },
                old: old_m,
                new: new_m,
                change_pct,
                verdict,
            });
        }
    }
    cells.extend(extra);
    let rows = row_order(old, new);
    cells.sort_by_key(|c| {
        (
            scenario_rank(&c.scenario),
            rows.iter().position(|r| *r == c.row),
            point_rank(&c.point),
        )
    });
    (cells, missing(old, new, &rows))
}

/// The newer run's rows, then those only the baseline has.
fn row_order(old: &CompareResults, new: &CompareResults) -> Vec<String> {
    let mut rows: Vec<String> = Vec::new();
    let tagged = |r: &CompareResults| -> Vec<String> {
        let mut v = r.styles.clone();
        v.extend(
            r.runs
                .iter()
                .filter_map(|x| x.tags.as_ref())
                .map(|t| t.style.clone()),
        );
        v
    };
    for st in tagged(new).into_iter().chain(tagged(old)) {
        if !rows.contains(&st) {
            rows.push(st);
        }
    }
    rows
}

/// Where a scenario comes: `compare`'s order, then unknown ones by name.
fn scenario_rank(name: &str) -> (usize, String) {
    match Scenario::from_name(name) {
        Some(sc) => (
            Scenario::all().iter().position(|&s| s == sc).unwrap_or(0),
            String::new(),
        ),
        None => (Scenario::all().len(), name.to_string()),
    }
}

/// Points in the order of their numbers ("conns=50" before "conns=1000"),
/// then by name: each number is compared as a number.
fn point_rank(point: &str) -> Vec<(u8, u64, String)> {
    let mut out = Vec::new();
    let mut rest = point;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits > 0 {
            out.push((0, rest[..digits].parse().unwrap_or(u64::MAX), String::new()));
            rest = &rest[digits..];
        } else {
            let text = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            out.push((1, 0, rest[..text].to_string()));
            rest = &rest[text..];
        }
    }
    out
}

fn missing(old: &CompareResults, new: &CompareResults, rows: &[String]) -> Missing {
    let ran = |r: &CompareResults, row: &str| -> BTreeSet<String> {
        r.runs
            .iter()
            .filter_map(|x| x.tags.as_ref())
            .filter(|t| t.style == row)
            .map(|t| t.scenario.clone())
            .collect()
    };
    let mut m = Missing::default();
    for row in rows {
        let (o, n) = (ran(old, row), ran(new, row));
        match (o.is_empty(), n.is_empty()) {
            (false, true) => m.rows.push((Side::Old, row.clone())),
            (true, false) => m.rows.push((Side::New, row.clone())),
            _ => {
                for sc in o.difference(&n) {
                    m.scenarios.push((Side::Old, row.clone(), sc.clone()));
                }
                for sc in n.difference(&o) {
                    m.scenarios.push((Side::New, row.clone(), sc.clone()));
                }
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(min: f64, median: f64, max: f64, n: usize) -> Measured {
        Measured {
            spread: Some(Spread {
                median,
                min,
                max,
                n,
            }),
            failed_spread: None,
            failed: 0,
            repeats: n,
            bounds: None,
            words: None,
        }
    }

    #[test]
    fn a_move_smaller_than_the_cells_own_spread_within_a_run_is_noise() {
        let ratio = &figures::SCALE_PAIRED[0];
        // threads at 1,000 connections: its rounds ×1.42 apart in the
        // old run; a separated move of ×1.40 between runs is not evidence.
        let (change, verdict) = judge(
            ratio,
            &side(0.50, 0.60, 0.71, 2),
            &side(0.40, 0.43, 0.45, 2),
        );
        assert!(change.unwrap() < -25.0);
        assert_eq!(verdict, Verdict::WithinNoise);
        // The same move of a cell whose rounds agree within the floor is.
        let (_, verdict) = judge(
            ratio,
            &side(0.59, 0.60, 0.61, 2),
            &side(0.42, 0.43, 0.44, 2),
        );
        assert_eq!(verdict, Verdict::Regressed);
        // One round: no spread of its own, the kind's floor alone.
        let (_, verdict) = judge(
            ratio,
            &side(0.60, 0.60, 0.60, 1),
            &side(0.43, 0.43, 0.43, 1),
        );
        assert_eq!(verdict, Verdict::Regressed);
    }

    #[test]
    fn threads_paired_cells_are_judged_on_the_floor_measured_for_them() {
        let ratio = &figures::SCALE_PAIRED[0];
        let floor = |row: &str| {
            figures::style_paired_floor_pct(row, ratio.kind).unwrap_or(floor_pct(ratio))
        };
        // threads at 50 connections and 4 KiB, between two back-to-back
        // runs of the same code: ×1.32, rounds tight on each side.
        let (old, new) = (side(0.464, 0.509, 0.553, 2), side(0.646, 0.670, 0.693, 2));
        let (_, verdict) = judge_at(ratio, floor("threads"), &old, &new);
        assert_eq!(verdict, Verdict::WithinNoise);
        // The same move of any other style is called.
        for row in ["tasks", "tasks:multi_thread", "reactor", "an-external-row"] {
            let (_, verdict) = judge_at(ratio, floor(row), &old, &new);
            assert_eq!(verdict, Verdict::Improved, "{row}");
        }
        // Only throughput and CPU per message are paired.
        assert_eq!(
            figures::style_paired_floor_pct("threads", figures::Kind::Latency),
            None
        );
    }
}
