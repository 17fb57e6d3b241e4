//! Cells read on side-by-side pairs. Where a comparison ran a style's scale
//! point beside a fresh epoll server over the same seconds
//! ([`crate::compare::pair`]; the epoll run is tagged `partner_of` the
//! style), the style's msg/s and server CPU per message divided by that
//! epoll run's, round by round, cancel the machine's speed at the time:
//! two runs of the same code then differ by a few % where their own
//! figures differ by tens ([`super`]'s table). So where *both* runs paired
//! a row's point, the diff reads those two figures as paired ratios
//! ([`super::figures::SCALE_PAIRED`]; median and min–max over the rounds)
//! against the paired floors. epoll's own row is read on its own runs
//! (its figures alone, not its partners'): a change to the reference
//! moves every ratio the other way, and must show on its own row rather
//! than vanish into them. Where only one run paired a point, its cells are
//! read on their own figures, as without pairs, and marked so.

use std::collections::{BTreeSet, HashMap};

use super::figures::Figure;
use super::key::{Side, point_key};
use crate::compare::model::{CompareResults, Scenario, reference};
use crate::results::RunResult;

/// What a cell's figures were read on, for the text and the floors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOn {
    /// The row's own runs, as without pairs.
    Own,
    /// Ratios to the epoll run beside each of the row's runs, in both runs.
    PairedRatio,
    /// epoll's own runs at a point both runs paired: the denominator of
    /// every other row's ratio there, read on its own figures.
    Reference,
    /// The row's own runs at a point only one side (this one) paired: the
    /// other has no ratio to hold it against.
    PairedIn(Side),
}

impl ReadOn {
    /// The words in the table's "read on" column.
    pub fn text(self) -> String {
        match self {
            ReadOn::Own => "own figure".into(),
            ReadOn::PairedRatio => "paired ratio to epoll".into(),
            ReadOn::Reference => "own figure (the reference)".into(),
            ReadOn::PairedIn(side) => format!("own figure (paired in {} only)", side.name()),
        }
    }
}

/// A comparison's partner runs, by the row they were measured beside.
pub struct Partners<'a> {
    /// (row, scenario, point key, round) -> the epoll run beside it.
    by_run: HashMap<(String, String, String, u32), &'a RunResult>,
    /// (scenario, point key) where any row ran beside epoll.
    points: BTreeSet<(String, String)>,
}

impl<'a> Partners<'a> {
    pub fn of(results: &'a CompareResults) -> Self {
        let mut p = Partners {
            by_run: HashMap::new(),
            points: BTreeSet::new(),
        };
        for r in &results.runs {
            let Some(t) = r.tags.as_ref().filter(|t| t.is_partner()) else {
                continue;
            };
            let point = point_key(&t.point);
            p.points.insert((t.scenario.clone(), point.clone()));
            p.by_run.insert(
                (t.partner_of.clone(), t.scenario.clone(), point, t.repeat),
                r,
            );
        }
        p
    }

    /// The epoll run measured beside `r`, if one was.
    pub fn partner(&self, r: &RunResult) -> Option<&'a RunResult> {
        let t = r.tags.as_ref()?;
        let key = (
            t.style.clone(),
            t.scenario.clone(),
            point_key(&t.point),
            t.repeat,
        );
        self.by_run.get(&key).copied()
    }

    /// Every round of this point ran beside an epoll run.
    fn all_paired(&self, runs: Option<&Vec<&RunResult>>) -> bool {
        runs.is_some_and(|v| !v.is_empty() && v.iter().all(|r| self.partner(r).is_some()))
    }

    fn has_point(&self, scenario: &str, point: &str) -> bool {
        self.points
            .contains(&(scenario.to_string(), point.to_string()))
    }
}

/// What the cells of `row` at (`scenario`, point key `point`) are read on,
/// given both sides' runs there and partners.
pub fn read_on(
    (row, scenario, point): (&str, &str, &str),
    runs: [Option<&Vec<&RunResult>>; 2],
    partners: [&Partners; 2],
) -> ReadOn {
    if Scenario::from_name(scenario) != Some(Scenario::Scale) {
        return ReadOn::Own;
    }
    let sides = [Side::Old, Side::New];
    let paired: [bool; 2] = if row == reference() {
        [0, 1].map(|i| partners[i].has_point(scenario, point) && runs[i].is_some())
    } else {
        [0, 1].map(|i| partners[i].all_paired(runs[i]))
    };
    match paired {
        [true, true] if row == reference() => ReadOn::Reference,
        [true, true] => ReadOn::PairedRatio,
        // Only where the other side measured the point at all: a point on
        // one side only is listed as such, not as unpaired.
        [true, false] if runs[1].is_some() => ReadOn::PairedIn(sides[0]),
        [false, true] if runs[0].is_some() => ReadOn::PairedIn(sides[1]),
        _ => ReadOn::Own,
    }
}

/// A paired figure's values over a point's rounds.
pub struct Ratios {
    /// Of the rounds where both runs of the pair did what was asked.
    pub ok: Vec<f64>,
    /// Of the others, shown apart as failed repeats are.
    pub failed_values: Vec<f64>,
    /// Rounds where either run of the pair failed.
    pub failed: usize,
}

/// A paired figure over a point's rounds: each round's figure over its
/// partner's. A round counts as done what was asked only where both runs
/// of its pair did.
pub fn ratios(runs: &[&RunResult], partners: &Partners, figure: &Figure) -> Ratios {
    let mut out = Ratios {
        ok: Vec::new(),
        failed_values: Vec::new(),
        failed: 0,
    };
    for r in runs {
        let e = partners.partner(r);
        let good = r.outcome.ok && e.is_some_and(|e| e.outcome.ok);
        if !good {
            out.failed += 1;
        }
        let ratio = e.and_then(|e| {
            let (x, y) = ((figure.value)(r)?, (figure.value)(e)?);
            (y > 0.0).then(|| x / y)
        });
        if let Some(v) = ratio {
            if good {
                out.ok.push(v)
            } else {
                out.failed_values.push(v)
            }
        }
    }
    out
}
