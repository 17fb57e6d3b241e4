//! report.md's `fairness` section: light connections' latency beside one
//! CPU-heavy connection, and a reading on preemptive against cooperative
//! styles.

use servers::Style;

use super::mark;
use super::scale_reading::and_list;
use crate::compare::model::Scenario;
use crate::report::compare::context::scenario_quota;
use crate::report::compare::rank::{Told, conns_failed, range, told};
use crate::report::md::{put, putln};
use crate::report::view::View;
use crate::results::fmt_us;

/// The preemptive style the cooperative ones are held against, and those:
/// a CPU-heavy connection keeps its worker until it yields.
const PREEMPTIVE: Style = Style::Threads;
const COOPERATIVE: [Style; 4] = [
    Style::Tasks,
    Style::Coroutines,
    Style::Reactor,
    Style::Polling,
];

/// How many times threads' light p99 a style's must be (or under) for the
/// reading to rank it, where each was measured once.
const LATENCY_MARGIN: f64 = 3.0;

pub fn section(s: &mut String, v: &View) {
    let rows = v.per_style(|st| v.fairness_light(st));
    let Some((_, first)) = rows.first() else {
        return;
    };
    putln!(
        s,
        "## fairness: {} light connections beside one CPU-heavy connection\n",
        first.spec.conns
    );
    if let Some(q) = scenario_quota(v.results(), Scenario::Fairness) {
        putln!(s, "{q}\n");
    }
    putln!(
        s,
        "The server burns CPU for every chunk it reads (`--work-us`); the heavy connection sends large messages \
         back to back, the light ones ping on a fixed schedule.\n\n\
         | style | light p50 | light p99 | light max | light longest stall | heavy msg/s |\n|---|---:|---:|---:|---:|---:|"
    );
    for (st, r) in &rows {
        // Our servers' --work-us means nothing to another program.
        let name = if v.is_external(st) {
            format!("{st}: as it is, no --work-us")
        } else {
            st.clone()
        };
        let heavy = v
            .fairness_heavy(st)
            .map(|h| format!("{:.0}", h.throughput_msgs_per_s))
            .unwrap_or_else(|| "–".into());
        if r.messages == 0 {
            putln!(
                s,
                "| {name} | no reply | no reply{} | no reply | {:.1} ms (all of it) | {heavy} |",
                mark(r),
                r.fairness.longest_stall_ms
            );
            continue;
        }
        putln!(
            s,
            "| {name} | {} | {}{} | {} | {:.1} ms | {heavy} |",
            fmt_us(r.latency_us.p50),
            fmt_us(r.latency_us.p99),
            mark(r),
            fmt_us(r.latency_us.max),
            r.fairness.longest_stall_ms
        );
    }
    s.push('\n');
    // Light p99 over the rounds; failed runs never rank.
    let p99 = |st: &str| {
        let r = v.fairness_light(st).filter(|r| r.messages > 0)?;
        if v.repeats(r).iter().any(|r| conns_failed(r)) {
            return None;
        }
        v.spread(r, |r| (r.messages > 0).then_some(r.latency_us.p99 as f64))
    };
    let starved = |st: &str| v.fairness_light(st).is_some_and(|r| r.messages == 0);
    put!(s, "**Reading.** ");
    for st in v.styles() {
        if starved(&st) {
            put!(
                s,
                "{st}: not one light reply in the whole measured window: the heavy connection never gave up its \
                 worker, and every other connection on it starved. "
            );
        }
    }
    let threads = PREEMPTIVE.name();
    if let Some(t) = p99(threads) {
        put!(
            s,
            "{threads}' light clients saw p99 {}: the kernel preempts the busy thread. ",
            t.show(|x| fmt_us(x as u64))
        );
        for coop in COOPERATIVE.map(Style::name) {
            let Some(c) = p99(coop) else { continue };
            let ratio = c.median / t.median.max(1.0);
            // Measured once: only a gap past LATENCY_MARGIN counts.
            let verdict = match told(&c, &t, LATENCY_MARGIN) {
                Told::Separated { first_higher: true } => {
                    "the heavy connection held the CPU until it yielded and the light ones waited"
                        .into()
                }
                Told::Separated {
                    first_higher: false,
                } => format!("better than {threads} in this run"),
                Told::NotToldApart { lo, hi } if c.n > 1 && t.n > 1 => format!(
                    "not told apart from {threads} ({} over the rounds)",
                    range(lo, hi, 1)
                ),
                Told::NotToldApart { .. } => format!(
                    "not told apart from {threads} (measured once: a gap under {LATENCY_MARGIN:.0}x is not \
                     claimed)"
                ),
            };
            put!(
                s,
                "{coop}: {} ({ratio:.1}x {threads}), {verdict}. ",
                c.show(|x| fmt_us(x as u64))
            );
        }
    } else {
        put!(s, "No {threads} run to compare against.");
    }
    // Served some, but with errors or unserved connections: not ranked.
    let failed_runs: Vec<String> = v
        .styles()
        .into_iter()
        .filter(|st| !starved(st))
        .filter(|st| {
            v.fairness_light(st)
                .is_some_and(|r| v.repeats(r).iter().any(|r| conns_failed(r)))
        })
        .collect();
    if !failed_runs.is_empty() {
        put!(
            s,
            "Not ranked: {}, failed (errors, or connections never served). ",
            and_list(&failed_runs)
        );
    }
    while s.ends_with(' ') {
        s.pop();
    }
    s.push_str("\n\n");
}
