//! The capacity searches of two comparisons as cells of the change
//! between them: one per row, connection count and objective
//! ("conns=50 at p99 ≤ 1ms"), the capacity found on each side. A search's
//! steps are no cells (each search chose its own rates); what it found is.
//! Read through the report's own reading of `results.capacity`
//! ([`crate::report::capacity`]: the rounds by capacity, their spread,
//! the words), so a side reads here as in its report.
//!
//! A search does not always find a number: where the step above its best
//! pass was loadgen's limit, or no step failed, the capacity is at least
//! that pass; where no step passed, below the lowest rate tried. Such a
//! side is a bound ([`Bounds`]), and [`super::cells::judge`] reads the
//! change on what the bounds prove, not on the medians.

use std::collections::BTreeMap;

use super::cells::{Bounds, Cell, Measured, Side, Verdict, judge};
use super::figures::CAPACITY;
use super::unlike::Unlike;
use crate::compare::capacity::{Bound, CapacitySearch};
use crate::compare::model::{CompareResults, Scenario};
use crate::report::capacity as found;

/// Where a capacity belongs: (row, connection count, objective). The
/// objective is part of it: capacities at two objectives are not the same
/// figure, so they are cells on one side each.
type Key = (String, usize, String);

/// The capacity cells of either run, in no particular order (the caller
/// sorts every cell).
pub fn cells(old: &CompareResults, new: &CompareResults) -> Vec<Cell> {
    let mut sides: BTreeMap<Key, [Option<Measured>; 2]> = BTreeMap::new();
    for (i, results) in [old, new].into_iter().enumerate() {
        for c in found::cells(results) {
            // One objective per comparison: the median round's is all of
            // theirs.
            let key = (c.style.clone(), c.conns, c.median.slo.to_string());
            sides.entry(key).or_default()[i] = Some(measured(&c));
        }
    }
    sides
        .into_iter()
        .filter_map(|((row, conns, slo), [o, n])| {
            let (change_pct, verdict) = match (&o, &n) {
                (Some(a), Some(b))
                    if (a.repeats < 2 || b.repeats < 2)
                        && (a.spread.is_some() || a.bounds.is_some())
                        && (b.spread.is_some() || b.bounds.is_some()) =>
                {
                    (None, Verdict::NotCompared(Unlike::OneSearch))
                }
                (Some(a), Some(b)) => judge(&CAPACITY, a, b),
                (Some(_), None) => (None, Verdict::OnlyIn(Side::Old)),
                (None, Some(_)) => (None, Verdict::OnlyIn(Side::New)),
                (None, None) => return None,
            };
            Some(Cell {
                row,
                scenario: Scenario::Capacity.name().into(),
                point: format!("conns={conns} at {slo}"),
                figure: &CAPACITY,
                read_on: super::paired::ReadOn::Own,
                old: o,
                new: n,
                change_pct,
                verdict,
            })
        })
        .collect()
}

/// A side: the capacity over its rounds, and what they prove together
/// where any of them found only a bound.
fn measured(c: &found::Cell) -> Measured {
    let bounded = c.searches.iter().any(|s| s.bound != Bound::Server);
    let bounds = bounded.then(|| {
        c.searches.iter().map(|s| proves(s)).fold(
            Bounds {
                lo: f64::INFINITY,
                hi: f64::NEG_INFINITY,
            },
            |acc, b| Bounds {
                lo: acc.lo.min(b.lo),
                hi: acc.hi.max(b.hi),
            },
        )
    });
    let mut words = found::text(c);
    // The median round's words say what bounded it, not what bounded the
    // others: where they differ, each round's own.
    if c.searches.iter().any(|s| s.bound != c.median.bound) {
        let each: Vec<String> = c.searches.iter().map(|s| found::words(s, None)).collect();
        words += &format!(" (rounds: {})", each.join(", "));
    }
    Measured {
        spread: c.spread,
        failed_spread: None,
        failed: 0,
        repeats: c.rounds,
        bounds,
        words: Some(words),
    }
}

/// What one search proves of the capacity, msg/s.
fn proves(s: &CapacitySearch) -> Bounds {
    let (lo, hi) = match (s.bound, s.capacity_msgs_per_s) {
        (Bound::Server, Some(c)) => (c, c),
        // The step above the pass was loadgen's limit, or none failed.
        (Bound::Client | Bound::NotReached, Some(c)) => (c, f64::INFINITY),
        // Below the lowest rate tried, which failed.
        (Bound::NonePassed, _) => (0.0, s.failed_at_msgs_per_s.unwrap_or(f64::INFINITY)),
        // Nothing passed, and loadgen could not offer the lowest rate.
        _ => (0.0, f64::INFINITY),
    };
    Bounds { lo, hi }
}
