//! report.md's `capacity` section: per style and connection count, the
//! highest open-loop rate that met the latency objective, a reading of it
//! against the closed-loop maximum, and the step trace of every search in
//! a collapsed block (the steps are many; the table is what is read).

use crate::compare::capacity::{Bound, CapacitySearch, Slo};
use crate::compare::model::Scenario;
use crate::report::capacity::{Cell, cells, first_fail, short_why, slo, text};
use crate::report::compare::context::scenario_quota;
use crate::report::compare::rank::{chain, quota_in_force};
use crate::report::md::{fmt_rate, put, putln};
use crate::report::view::{Spread, View};

use super::scale_reading::and_list;
use crate::results::fmt_us;

pub fn section(s: &mut String, v: &View) {
    let results = v.results();
    let Some(slo) = slo(results) else {
        return;
    };
    let cells = cells(results);
    let name = slo.percentile.name();
    putln!(
        s,
        "## capacity: the highest rate each style takes at {slo}\n"
    );
    putln!(
        s,
        "Per style and connection count, a search for the highest open-loop rate (one message in flight per \
         connection) at which the corrected {name} stayed within {}, no error occurred and at least 99% of \
         the rate was achieved: doubling from a quarter of the closed-loop maximum until a step failed, then \
         bisecting to within 5%. A step that met all three while loadgen itself was saturated passes (the \
         client only adds delay); one that missed while it was is loadgen's: \"≥ X (client limit)\" means the \
         step above X was such a miss, so X is a floor, not the server's capacity.\n",
        slo.limit()
    );
    if let Some(q) = scenario_quota(results, Scenario::Capacity) {
        putln!(s, "{q}\n");
    }
    putln!(
        s,
        "| style | conns | capacity | {name} there | first failing rate above | steps |\n|---|---:|---:|---:|---|---:|"
    );
    for c in &cells {
        let m = c.median;
        putln!(
            s,
            "| {} | {} | {} | {} | {} | {}{} |",
            c.style,
            c.conns,
            text(c),
            m.value_us.map(fmt_us).unwrap_or_else(|| "—".into()),
            first_fail(m)
                .map(|f| format!("{}/s: {}", fmt_rate(f.rate), short_why(f, &slo)))
                .unwrap_or_else(|| "—".into()),
            m.steps.len(),
            if m.bound == Bound::Server && !m.converged {
                " (not within 5%)"
            } else {
                ""
            }
        );
    }
    s.push('\n');
    reading(s, v, &cells, &slo);
    trace(s, v, &slo);
}

/// At each connection count, the capacities the rounds separate, what was
/// left out and why, and what share of the closed-loop maximum they are.
fn reading(s: &mut String, v: &View, cells: &[Cell], slo: &Slo) {
    let mut conns: Vec<usize> = cells.iter().map(|c| c.conns).collect();
    conns.sort_unstable();
    conns.dedup();
    let mut sentences = Vec::new();
    for n in conns {
        let mut at: Vec<&Cell> = cells
            .iter()
            .filter(|c| c.conns == n && c.median.capacity_msgs_per_s.is_some())
            .collect();
        at.sort_by(|a, b| median(b).total_cmp(&median(a)));
        let failed = |bound: Bound| -> Vec<&str> {
            cells
                .iter()
                .filter(|c| c.conns == n && c.median.capacity_msgs_per_s.is_none())
                .filter(|c| c.median.bound == bound)
                .map(|c| c.style.as_str())
                .collect()
        };
        let (none, unknown) = (failed(Bound::NonePassed), failed(Bound::Client));
        let mut rest = String::new();
        if !none.is_empty() {
            rest += &format!("; {} met it at no rate tried", none.join(", "));
        }
        if !unknown.is_empty() {
            rest += &format!(
                "; for {} loadgen could not offer even the lowest rate tried",
                unknown.join(", ")
            );
        }
        if at.is_empty() {
            let mut line = format!("At {n} connections no style met {slo} at any rate tried");
            if !unknown.is_empty() {
                line += &format!(
                    " ({}: loadgen could not offer even the lowest rate)",
                    unknown.join(", ")
                );
            }
            sentences.push(line + ".");
            continue;
        }
        // Ranked only where every round's search was bounded by the server,
        // in more than one round, and the rounds' ranges do not overlap.
        let (ranked, left): (Vec<&&Cell>, Vec<&&Cell>) = at.iter().partition(|c| {
            quota_in_force(v.results())
                && c.rounds > 1
                && c.searches.iter().all(|s| s.bound == Bound::Server)
        });
        let named: Vec<(String, Spread)> = ranked
            .iter()
            .filter_map(|c| Some((c.style.clone(), c.spread?)))
            .collect();
        let mut line = format!("At {n} connections");
        match chain(named, 2, "took more than") {
            Some(text) => line += &format!(", by capacity over the rounds: {text}"),
            None => line += " no two styles' capacities were ranked",
        }
        if !left.is_empty() {
            let names: Vec<String> = left.iter().map(|c| c.style.clone()).collect();
            line += &format!(
                "; not ranked: {} ({})",
                and_list(&names),
                if quota_in_force(v.results()) {
                    "measured once, or a round bounded by loadgen's limit"
                } else {
                    "no CPU quota in this run"
                }
            );
        }
        line += &rest;
        line.push('.');
        sentences.push(line);
        // Against the closed-loop maximum at the same connection count.
        let shares: Vec<(f64, &str)> = at
            .iter()
            .filter(|c| c.median.bound == Bound::Server)
            .filter_map(|c| {
                let max = v.scale_point(&c.style, n, 64)?.throughput_msgs_per_s;
                (max > 0.0).then(|| (median(c) / max, c.style.as_str()))
            })
            .collect();
        let lo = shares.iter().map(|x| x.0).fold(f64::INFINITY, f64::min);
        let hi = shares.iter().map(|x| x.0).fold(0.0, f64::max);
        let share = match shares.len() {
            0 => None,
            1 => Some(format!("{:.0}%", 100.0 * lo)),
            _ => Some(format!("{:.0}–{:.0}%", 100.0 * lo, 100.0 * hi)),
        };
        if let Some(share) = share {
            sentences.push(format!(
                "Where the server set the limit, capacity was {share} of the closed-loop maximum at {n} \
                 connections: the rest of that maximum only comes with a queue long enough to break the \
                 objective, so capacity planning at {n} connections starts from these figures, not from the \
                 scale table."
            ));
        }
    }
    if !sentences.is_empty() {
        putln!(s, "**Reading.** {}\n", sentences.join(" "));
    }
}

fn median(c: &Cell) -> f64 {
    c.spread.map_or(0.0, |s| s.median)
}

/// Every search's steps, per style, in a block that stays folded until
/// opened.
fn trace(s: &mut String, v: &View, slo: &Slo) {
    let results = v.results();
    let rounds = results.repeat.max(1) > 1;
    for style in &results.styles {
        let searches: Vec<&CapacitySearch> = results
            .capacity
            .iter()
            .filter(|c| &c.style == style)
            .collect();
        if searches.is_empty() {
            continue;
        }
        putln!(
            s,
            "<details><summary>{style}: every step of the capacity search</summary>\n"
        );
        putln!(
            s,
            "| conns |{} step | offered | achieved | {} | errors | verdict |\n|---:|{}---:|---:|---:|---:|---:|---|",
            if rounds { " round |" } else { "" },
            slo.percentile.name(),
            if rounds { "---:|" } else { "" }
        );
        for c in searches {
            for (i, st) in c.steps.iter().enumerate() {
                put!(s, "| {} |", c.conns);
                if rounds {
                    put!(s, " {} |", c.repeat + 1);
                }
                let verdict = if st.pass && st.client_limited {
                    "pass (loadgen saturated: the latency is an upper bound)".to_string()
                } else if st.pass {
                    "pass".to_string()
                } else {
                    format!("**fail**: {}", st.why.join("; "))
                };
                putln!(
                    s,
                    " {} | {}/s | {}/s | {} | {} | {verdict} |",
                    i + 1,
                    fmt_rate(st.rate),
                    fmt_rate(st.achieved),
                    fmt_us(st.value_us),
                    st.errors
                );
            }
        }
        putln!(s, "\n</details>\n");
    }
}
