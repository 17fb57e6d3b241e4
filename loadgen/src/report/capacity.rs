//! The capacity searches a report reads (`results.capacity`): one cell per
//! style and connection count, the median of its rounds with their range,
//! and the words for a result ("≥ 45.2k/s (client limit)"). Read by the
//! capacity section, its chart and a change against a baseline; writes
//! nothing.

use crate::compare::capacity::{Bound, CapacitySearch, CapacityStep, Slo};
use crate::compare::model::CompareResults;
use crate::report::md::fmt_rate;
use crate::report::view::Spread;
use crate::results::fmt_us;

/// A style at one connection count: its searches over the rounds.
pub struct Cell<'a> {
    pub style: String,
    pub conns: usize,
    /// The median round's search (by capacity, the lower one of an even
    /// count, as elsewhere in the report).
    pub median: &'a CapacitySearch,
    /// The capacity over the rounds that passed a step.
    pub spread: Option<Spread>,
    pub rounds: usize,
    /// Every round's search, by capacity (a change against a baseline
    /// reads what each bounded: [`crate::report::diff::capacity`]).
    pub searches: Vec<&'a CapacitySearch>,
}

/// The objective the searches were judged against (one per comparison).
pub fn slo(results: &CompareResults) -> Option<Slo> {
    results.capacity.first().map(|s| s.slo)
}

/// The connection counts searched, ascending.
pub fn conns(results: &CompareResults) -> Vec<usize> {
    let mut c: Vec<usize> = results.capacity.iter().map(|s| s.conns).collect();
    c.sort_unstable();
    c.dedup();
    c
}

/// Every (style, connection count) searched, in the styles' order.
pub fn cells(results: &CompareResults) -> Vec<Cell<'_>> {
    let mut out = Vec::new();
    for style in &results.styles {
        for conns in conns(results) {
            let mut rounds: Vec<&CapacitySearch> = results
                .capacity
                .iter()
                .filter(|s| &s.style == style && s.conns == conns)
                .collect();
            if rounds.is_empty() {
                continue;
            }
            rounds.sort_by(|a, b| value(a).total_cmp(&value(b)));
            out.push(Cell {
                style: style.clone(),
                conns,
                median: rounds[(rounds.len() - 1) / 2],
                spread: Spread::of(
                    rounds
                        .iter()
                        .filter_map(|s| s.capacity_msgs_per_s)
                        .collect(),
                ),
                rounds: rounds.len(),
                searches: rounds,
            });
        }
    }
    out
}

/// A search's capacity, 0 where no step passed (for ordering and charts).
pub fn value(s: &CapacitySearch) -> f64 {
    s.capacity_msgs_per_s.unwrap_or(0.0)
}

/// The capacity in words: a number only where the server bounded it.
pub fn text(cell: &Cell) -> String {
    words(cell.median, cell.spread.filter(|_| cell.rounds > 1))
}

/// One search in a line, for the command line.
pub fn line(s: &CapacitySearch) -> String {
    let mut out = format!(
        "capacity at {} conns, {}: {}",
        s.conns,
        s.slo,
        words(s, None)
    );
    if let Some(v) = s.value_us {
        out += &format!(" ({} {} there)", s.slo.percentile.name(), fmt_us(v));
    }
    if let Some(f) = first_fail(s) {
        out += &format!("; at {}/s: {}", fmt_rate(f.rate), short_why(f, &s.slo));
    }
    out + &format!("; {} steps", s.steps.len())
}

/// The lowest failing step above the capacity.
pub fn first_fail(s: &CapacitySearch) -> Option<&CapacityStep> {
    s.steps
        .iter()
        .find(|st| !st.pass && Some(st.rate) == s.failed_at_msgs_per_s)
}

/// `s`'s capacity in words, with its range over the rounds where given.
pub fn words(s: &CapacitySearch, rounds: Option<Spread>) -> String {
    let rate = match (rounds, s.capacity_msgs_per_s) {
        (Some(sp), _) if sp.min != sp.max => format!(
            "{}/s ({}–{})",
            fmt_rate(sp.median),
            fmt_rate(sp.min),
            fmt_rate(sp.max)
        ),
        (_, Some(x)) => format!("{}/s", fmt_rate(x)),
        (_, None) => String::new(),
    };
    match s.bound {
        Bound::Server => rate,
        Bound::Client if s.capacity_msgs_per_s.is_none() => format!(
            "unknown (client-bound from {}/s)",
            fmt_rate(s.failed_at_msgs_per_s.unwrap_or(0.0))
        ),
        Bound::Client => format!("≥ {rate} (client limit)"),
        Bound::NotReached => format!("≥ {rate} (no step failed)"),
        Bound::NonePassed => format!(
            "< {}/s (no step passed)",
            fmt_rate(s.failed_at_msgs_per_s.unwrap_or(0.0))
        ),
    }
}

/// Why a step failed, in a few words (the full reasons are in the trace
/// and results.json).
pub fn short_why(step: &CapacityStep, slo: &Slo) -> String {
    if step.pass {
        "pass".into()
    } else if step.client_limited {
        "client-bound".into()
    } else if step.errors > 0 {
        format!("{} errors", step.errors)
    } else if step.value_us > slo.limit_us {
        format!("{} {}", slo.percentile.name(), fmt_us(step.value_us))
    } else if step.rate > 0.0 && step.achieved < step.rate * crate::compare::capacity::MIN_ACHIEVED
    {
        format!("achieved {:.0}%", 100.0 * step.achieved / step.rate)
    } else {
        step.why.first().cloned().unwrap_or_else(|| "failed".into())
    }
}

/// A bar chart's file name, title and bars (a label and a value each).
pub type BarChart = (String, String, Vec<(String, f64)>);

/// The capacity charts: per connection count, its file name, title and a
/// bar per style (the median capacity; nothing for a style none of whose
/// steps passed).
pub fn charts(results: &CompareResults) -> Vec<BarChart> {
    let Some(slo) = slo(results) else {
        return Vec::new();
    };
    let cells = cells(results);
    conns(results)
        .into_iter()
        .filter_map(|conns| {
            let items: Vec<(String, f64)> = cells
                .iter()
                .filter(|c| c.conns == conns && c.median.capacity_msgs_per_s.is_some())
                .map(|c| (c.style.clone(), c.spread.map_or(0.0, |s| s.median)))
                .collect();
            // Drawn bars that are floors, not the server's capacity.
            let limited = cells.iter().any(|c| {
                c.conns == conns
                    && c.median.capacity_msgs_per_s.is_some()
                    && c.median.bound != Bound::Server
            });
            (!items.is_empty()).then(|| {
                (
                    format!("capacity_{conns}c.svg"),
                    format!(
                        "Capacity at {slo}, {conns} connections{}",
                        if limited {
                            " (some bars a lower bound: see the table)"
                        } else {
                            ""
                        }
                    ),
                    items,
                )
            })
        })
        .collect()
}
