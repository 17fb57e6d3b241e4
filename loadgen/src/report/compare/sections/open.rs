//! report.md's `open` section: latency at a constant rate, corrected for
//! coordinated omission beside the raw figure, and a reading.

use super::mark;
use super::scale_reading::and_list;
use crate::compare::model::Scenario;
use crate::report::compare::context::scenario_quota;
use crate::report::compare::rank::conns_failed;
use crate::report::md::{fmt_rate, put, putln};
use crate::report::view::View;
use crate::results::fmt_us;

/// Corrected over raw p99 from which a style is said to have fallen behind.
const BEHIND: f64 = 2.0;

pub fn section(s: &mut String, v: &View) {
    let any = v.styles().iter().any(|st| !v.open_runs(st).is_empty());
    if !any {
        return;
    }
    putln!(
        s,
        "## open: constant rate at fractions of each style's maximum\n"
    );
    if let Some(q) = scenario_quota(v.results(), Scenario::Open) {
        putln!(s, "{q}\n");
    }
    putln!(
        s,
        "Latency counted from each message's intended send time (corrected) beside the actual send (raw).\n\n\
         | style | rate | achieved | corrected p50 | corrected p99 | corrected p99.9 | raw p99 |\n|---|---|---:|---:|---:|---:|---:|"
    );
    for st in v.styles() {
        for r in v.open_runs(&st) {
            let point = r.tags.as_ref().map(|t| t.point.clone()).unwrap_or_default();
            let raw = r
                .latency_raw_us
                .as_ref()
                .map(|p| fmt_us(p.p99))
                .unwrap_or_default();
            putln!(
                s,
                "| {st} | {point} | {}/s{} | {} | {} | {} | {raw} |",
                fmt_rate(r.throughput_msgs_per_s),
                mark(r),
                fmt_us(r.latency_us.p50),
                fmt_us(r.latency_us.p99),
                fmt_us(r.latency_us.p999)
            );
        }
    }
    s.push('\n');
    // Each style's own gap at its highest rate: a finding about that style,
    // not a ranking (the open runs are measured once).
    let behind: Vec<String> = v
        .styles()
        .into_iter()
        .filter_map(|st| {
            let r = v.open_runs(&st).into_iter().last()?;
            let raw = r.latency_raw_us.as_ref()?.p99.max(1) as f64;
            let gap = r.latency_us.p99 as f64 / raw;
            (r.messages > 0 && !conns_failed(r) && gap >= BEHIND)
                .then(|| format!("{st} ({gap:.1}x)"))
        })
        .collect();
    put!(
        s,
        "**Reading.** The gap between corrected and raw p99 is time messages spent waiting to be sent while the \
         server was behind, which a closed-loop client never records. "
    );
    if behind.is_empty() {
        put!(
            s,
            "At its highest rate no style's corrected p99 was {BEHIND:.0}x its raw one or more."
        );
    } else {
        put!(
            s,
            "At its highest rate the corrected p99 was {BEHIND:.0}x the raw one or more for {}. ",
            and_list(&behind)
        );
    }
    put!(
        s,
        "The styles are not ranked by these: each ran at fractions of its own maximum."
    );
    s.push_str("\n\n");
}
