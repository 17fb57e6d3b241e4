//! report.md's `churn` section: connect, echo once, close; connections per
//! second and the wait for a first reply, and a reading.

use super::scale_reading::and_list;
use super::{first_reply_p99, mark, served_cell};
use crate::compare::model::Scenario;
use crate::report::compare::context::scenario_quota;
use crate::report::compare::rank::{Told, broken, by_margin, chain, quota_in_force};
use crate::report::md::{fmt_rate, put, putln};
use crate::report::view::View;
use crate::results::RunResult;
use crate::results::fmt_us;

pub fn section(s: &mut String, v: &View) {
    let rows = v.per_style(|st| v.churn_run(st));
    if rows.is_empty() {
        return;
    }
    let quota = scenario_quota(v.results(), Scenario::Churn)
        .map(|q| format!("{q}\n\n"))
        .unwrap_or_default();
    putln!(
        s,
        "## churn: connect, echo one message, close\n\n{quota}| style | connections/s | connect p99 | echo p99 | first reply p99 | served | errors |\n|---|---:|---:|---:|---:|---:|---|"
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
    s.push_str("\n**Reading.** ");
    rate_reading(s, v, &rows);
    churn_first_reply_reading(s, &rows);
    while s.ends_with(' ') {
        s.pop();
    }
    s.push_str("\n\n");
}

/// How many times the quickest style's first-reply p99 another's must be
/// for the reading to name it (measured once).
const WAIT_MARGIN: f64 = 5.0;

/// Connections per second, ranked only where the rounds separate them;
/// once-measured, client-bound or failed runs are left out, and without a
/// CPU quota nothing is ranked by rate.
fn rate_reading(s: &mut String, v: &View, rows: &[(String, &RunResult)]) {
    if !quota_in_force(v.results()) {
        s.push_str("Connections per second do not rank the styles in this run (no CPU quota: see the top). ");
        return;
    }
    let (mut ranked, mut once, mut left) = (Vec::new(), Vec::new(), Vec::new());
    for (st, r) in rows {
        let reps = v.repeats(r);
        if reps
            .iter()
            .any(|r| broken(r) || r.client.client_bound || r.disturbed)
        {
            left.push(st.clone());
        } else if reps.len() < 2 {
            once.push(st.clone());
        } else if let Some(sp) = v.spread(r, |r| Some(r.connect.rate_per_s)) {
            ranked.push((st.clone(), sp));
        }
    }
    if let Some(text) = chain(ranked, 2, "set up connections faster than") {
        put!(s, "By connections per second over the rounds: {text}. ");
    }
    if !once.is_empty() {
        put!(
            s,
            "Not ranked by connections per second: {}, measured once. ",
            and_list(&once)
        );
    }
    if !left.is_empty() {
        put!(
            s,
            "Left out (failed, or loadgen was the limit): {}. ",
            and_list(&left)
        );
    }
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
            && by_margin(
                r.first_reply_us.p99 as f64,
                best_p99.max(1) as f64,
                WAIT_MARGIN,
            ) == (Told::Separated { first_higher: true })
        {
            sentences.push(format!(
                "{st} kept new connections waiting {} for their first reply (p99), {:.0}x {best}'s {} (more \
                 than {WAIT_MARGIN:.0}x: a gap no run's noise makes): the time from connecting until the server \
                 took them on.",
                fmt_us(r.first_reply_us.p99),
                r.first_reply_us.p99 as f64 / best_p99.max(1) as f64,
                fmt_us(best_p99)
            ));
        }
    }
    if sentences.is_empty() {
        return;
    }
    s.push_str(&sentences.join(" "));
}
