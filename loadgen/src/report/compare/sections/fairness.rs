//! report.md's `fairness` section: light connections' latency beside one
//! CPU-heavy connection, and a reading on preemptive against cooperative
//! styles.

use servers::Style;

use super::mark;
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
    let p99 = |st: &str| {
        v.fairness_light(st)
            .filter(|r| r.messages > 0)
            .map(|r| r.latency_us.p99 as f64)
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
            fmt_us(t as u64)
        );
        for coop in COOPERATIVE.map(Style::name) {
            if let Some(c) = p99(coop) {
                let ratio = c / t.max(1.0);
                let verdict = if ratio >= 3.0 {
                    "the heavy connection held the CPU until it yielded and the light ones waited"
                        .into()
                } else if ratio <= 1.0 / 3.0 {
                    format!("better than {threads} in this run")
                } else {
                    format!("close to {threads} in this run")
                };
                put!(
                    s,
                    "{coop}: {} ({ratio:.1}x {threads}), {verdict}. ",
                    fmt_us(c as u64)
                );
            }
        }
    } else {
        put!(s, "No {threads} run to compare against.");
    }
    s.push_str("\n\n");
}
