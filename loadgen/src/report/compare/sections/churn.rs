//! report.md's `churn` section: connect, echo once, close; connections per
//! second and the wait for a first reply, and a reading.

use servers::Style;

use super::{ends, first_reply_p99, mark, ranked, served_cell};
use crate::report::md::{fmt_rate, put, putln};
use crate::report::view::View;
use crate::results::RunResult;
use crate::results::fmt_us;

pub fn section(s: &mut String, v: &View) {
    let rows = v.per_style(|st| v.churn_run(st));
    if rows.is_empty() {
        return;
    }
    putln!(
        s,
        "## churn: connect, echo one message, close\n\n| style | connections/s | connect p99 | echo p99 | first reply p99 | served | errors |\n|---|---:|---:|---:|---:|---:|---|"
    );
    for (st, r) in &rows {
        putln!(
            s,
            "| {st} | {}{} | {} | {} | {} | {} | {} |",
            fmt_rate(r.connect.rate_per_s),
            mark(r),
            fmt_us(r.connect.p99_us),
            fmt_us(r.latency_us.p99),
            first_reply_p99(r),
            served_cell(r),
            r.errors.describe()
        );
    }
    let ranks = ranked(v, |st| v.churn_run(st).map(|r| (r.connect.rate_per_s, r)));
    if let Some((hi, lo)) = ends(&ranks) {
        put!(
            s,
            "\n**Reading.** {} set up connections fastest ({}/s), {} slowest ({}/s)",
            hi.0,
            fmt_rate(hi.1),
            lo.0,
            fmt_rate(lo.1)
        );
        // The style that starts an OS thread per connection.
        let threads = Style::Threads.name();
        if let Some(t) = ranks.iter().find(|(st, _)| st == threads) {
            put!(
                s,
                "; {threads}, which starts an OS thread per connection, did {}/s ({:.0}% of the fastest)",
                fmt_rate(t.1),
                100.0 * t.1 / hi.1.max(1e-9)
            );
        }
        s.push('.');
    }
    churn_first_reply_reading(s, &rows);
    s.push_str("\n\n");
}

/// Churn: styles that kept new connections waiting for their first reply
/// far longer than the quickest style, or left some without one.
fn churn_first_reply_reading(s: &mut String, rows: &[(String, &RunResult)]) {
    let p99s: Vec<(&str, u64)> = rows
        .iter()
        .filter(|(_, r)| r.served().is_some_and(|(served, _)| served > 0))
        .map(|(st, r)| (st.as_str(), r.first_reply_us.p99))
        .collect();
    let quickest = p99s.iter().min_by_key(|(_, p)| *p).copied();
    let mut sentences = Vec::new();
    for (st, r) in rows {
        let Some((served, total)) = r.served() else {
            continue;
        };
        if served < total {
            sentences.push(format!(
                "{st}: {} of {total} connections got no reply.",
                total - served
            ));
        } else if let Some((best, best_p99)) = quickest
            && best != st
            && r.first_reply_us.p99 >= 1000
            && r.first_reply_us.p99 >= 5 * best_p99.max(1)
        {
            sentences.push(format!(
                "{st} kept new connections waiting {} for their first reply (p99), {:.0}x {best}'s {}: the \
                 time from connecting until the server took them on.",
                fmt_us(r.first_reply_us.p99),
                r.first_reply_us.p99 as f64 / best_p99.max(1) as f64,
                fmt_us(best_p99)
            ));
        }
    }
    if sentences.is_empty() {
        return;
    }
    if s.ends_with('.') {
        s.push(' ');
    } else {
        s.push_str("\n**Reading.** ");
    }
    s.push_str(&sentences.join(" "));
}
