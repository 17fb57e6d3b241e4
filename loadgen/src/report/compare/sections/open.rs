//! report.md's `open` section: latency at a constant rate, corrected for
//! coordinated omission beside the raw figure, and a reading.

use super::{mark, ranked};
use crate::report::md::{fmt_rate, put, putln};
use crate::report::view::View;
use crate::results::fmt_us;

pub fn section(s: &mut String, v: &View) {
    let any = v.styles().iter().any(|st| !v.open_runs(st).is_empty());
    if !any {
        return;
    }
    putln!(
        s,
        "## open: constant rate at fractions of each style's maximum\n"
    );
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
    let gaps = ranked(v, |st| {
        let r = v.open_runs(st).into_iter().last()?;
        let raw = r.latency_raw_us.as_ref()?.p99.max(1) as f64;
        Some((r.latency_us.p99 as f64 / raw, r))
    });
    put!(s, "**Reading.** ");
    if let Some((st, ratio)) = gaps.first() {
        put!(
            s,
            "At the highest rate the widest gap between corrected and raw p99 was for {st} ({ratio:.1}x): that gap is \
             time messages spent waiting to be sent while the server was behind, which a closed-loop client never \
             records. "
        );
    }
    if let Some((st, ratio)) = gaps.last()
        && gaps.len() > 1
    {
        put!(s, "The narrowest was for {st} ({ratio:.1}x).");
    }
    s.push_str("\n\n");
}
