//! One module per scenario, each writing that scenario's section of
//! report.md (its table and a reading of it), and what they share: the
//! cells and marks of a run, and styles ranked by a figure. The report's
//! skeleton ([`super`]) picks the section of each scenario.

pub mod capacity;
pub mod churn;
pub mod fairness;
pub mod idle;
pub mod idle_kernel;
pub mod open;
pub mod reach;
pub mod scale;
pub mod scale_reading;

use crate::report::cost::{bound_mark, bound_mark_over, with_disturbed};
use crate::report::view::{View, failed};
use crate::results::RunResult;
use crate::results::fmt_us;

/// Marks a figure the results do not have (written before it existed).
const NO_DATA: &str = "—";

/// First-reply p99 of a run: "no reply" when more than 1% of the
/// connections that asked never got one (the p99 is then among them).
fn first_reply_p99(r: &RunResult) -> String {
    match r.served() {
        None => NO_DATA.into(),
        Some((served, total)) if (total - served) * 100 > total => "no reply".into(),
        Some(_) => fmt_us(r.first_reply_us.p99),
    }
}

/// Connections with a reply of those that asked: "all", or "16/1000".
fn served_cell(r: &RunResult) -> String {
    match r.served() {
        None => NO_DATA.into(),
        Some((served, total)) if served == total => "all".into(),
        Some((served, total)) => format!("{served}/{total}"),
    }
}

/// A run's mark in a table: ✗ failed, else who was the bottleneck.
fn mark(r: &RunResult) -> &'static str {
    if failed(r) {
        with_disturbed(r.disturbed, " ✗")
    } else {
        bound_mark(r)
    }
}

/// A cell's mark over every round of its point: ✗ where a round failed, †
/// where loadgen was the limit in one, ‡ where every round was
/// server-bound (measured once, the run's own mark).
fn mark_over(v: &View, r: &RunResult) -> &'static str {
    let reps = v.repeats(r);
    if reps.iter().any(|r| failed(r)) {
        with_disturbed(reps.iter().any(|r| r.disturbed), " ✗")
    } else {
        bound_mark_over(v, r)
    }
}
