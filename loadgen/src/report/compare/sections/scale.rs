//! report.md's `scale` section: closed-loop throughput of every style at
//! each connection count and message size, its ratio to the reference, the
//! knee, the cost tables ([`crate::report::cost`]) and a reading.

use super::scale_reading::{Figure, ranking, threads_against_reactor};
use super::{NO_DATA, first_reply_p99, mark_over};
use crate::compare::model::Scenario;
use crate::report::compare::rank::quota_in_force;
use crate::report::cost::cost_tables;
use crate::report::md::{conns_header, fmt_rate, put, putln};
use crate::report::view::{View, reference};
use crate::results::fmt_us;

pub fn section(s: &mut String, v: &View) {
    let conns = v.scale_conns();
    if conns.is_empty() {
        return;
    }
    putln!(s, "## scale: closed-loop throughput against connections\n");
    putln!(
        s,
        "Each cell: messages/s (p99 round trip); measured in more than one round, the median (min–max over \
         the rounds), p99 of the median round. Closed loop: every connection sends its next message when the \
         reply is back. First reply: from a connection's first message to its first echo (\"no reply\" when \
         more than 1% of the connections never got one); served: connections that got a reply, of those that \
         sent (— where the results do not record it).\n"
    );
    let sizes = v.scale_sizes();
    if !sizes.iter().any(|&size| v.has_reference(size)) {
        let reference = reference();
        putln!(
            s,
            "{reference}, the raw-epoll reference, {} in this run, so no throughput ratios to it are shown.\n",
            if v.styles().iter().any(|st| st == reference) {
                "has no scale runs"
            } else {
                "was not among the styles"
            }
        );
    }
    let most = conns.last().copied().unwrap_or_default();
    // Styles that ran other scenarios but not this one (a perf variant that
    // only holds idle connections) get no empty row; one that ran nothing
    // keeps its row of dashes.
    let styles: Vec<String> = v
        .styles()
        .into_iter()
        .filter(|st| !v.runs(st, Scenario::Scale.name()).is_empty() || !v.ran(st))
        .collect();
    for size in sizes {
        put!(s, "### {size} B messages\n\n| style |");
        for c in &conns {
            put!(s, " {c} conn{} |", if *c == 1 { "" } else { "s" });
        }
        put!(
            s,
            " first reply p99 at {most} conns | served | knee |\n|---|"
        );
        for _ in &conns {
            s.push_str("---:|");
        }
        s.push_str("---:|---|---|\n");
        for style in &styles {
            let style = style.clone();
            put!(s, "| {style} |");
            for &c in &conns {
                match v.scale_point(&style, c, size) {
                    Some(r) => {
                        let p99 = fmt_us(r.latency_us.p99);
                        let rate = v
                            .spread(r, |r| Some(r.throughput_msgs_per_s))
                            .filter(|sp| sp.n > 1)
                            .map(|sp| sp.show(fmt_rate));
                        match rate.filter(|t| t.contains('(')) {
                            Some(rate) => put!(s, " {rate}, p99 {p99}{} |", mark_over(v, r)),
                            None => put!(
                                s,
                                " {} ({p99}){} |",
                                fmt_rate(r.throughput_msgs_per_s),
                                mark_over(v, r)
                            ),
                        }
                    }
                    None => s.push_str(" – |"),
                }
            }
            let first = v
                .scale_point(&style, most, size)
                .map(first_reply_p99)
                .unwrap_or_else(|| "–".into());
            put!(s, " {first} | {} |", scale_served(v, &style, size));
            match v.knee(&style, size) {
                Some(k) => {
                    let p99 = match k.p99_over_10ms_at {
                        Some(c) => format!("p99 > 10 ms from {c} conns"),
                        None => "p99 under 10 ms throughout".into(),
                    };
                    putln!(
                        s,
                        " peaks at {} conns ({}/s); {p99} |",
                        k.peak_conns,
                        fmt_rate(k.peak_rate)
                    );
                }
                None => s.push_str(" – |\n"),
            }
        }
        s.push('\n');
        vs_reference_table(s, v, &styles, size, &conns);
        scale_reading(s, v, size, &conns);
        // Ranked only where both sides were server-bound.
        let text = ranking(v, size, &conns, Figure::Cost);
        if cost_tables(s, v, size) && !text.trim().is_empty() {
            putln!(s, "**Reading.** {}\n", text.trim_end());
        }
    }
}

/// The scale table again as ratios to epoll's msg/s at the same point.
fn vs_reference_table(s: &mut String, v: &View, styles: &[String], size: usize, conns: &[usize]) {
    if !v.has_reference(size) {
        return;
    }
    let reference = reference();
    put!(
        s,
        "**vs {reference}, {size} B**: each style's messages/s divided by {} at the same connection \
         count († client-bound: that style's figure is loadgen's limit).\n\n| style |",
        v.reference_words()
    );
    conns_header(s, conns);
    for style in styles {
        put!(s, "| {style} |");
        for &c in conns {
            match (
                v.vs_reference_spread(style, c, size),
                v.scale_point(style, c, size),
            ) {
                (Some(ratio), Some(r)) => {
                    put!(s, " {}{} |", ratio.text(2), mark_over(v, r));
                }
                _ => s.push_str(" – |"),
            }
        }
        s.push('\n');
    }
    s.push('\n');
}

/// The scale table's "served" cell: "all" when every point of the style
/// served every connection, else the points that did not ("16/1000 at 1000").
fn scale_served(v: &View, style: &str, size: usize) -> String {
    let pts = v.scale_points(style, size);
    if pts.iter().all(|r| r.served().is_none()) {
        return NO_DATA.into();
    }
    let short: Vec<String> = pts
        .iter()
        .filter_map(|r| {
            let (served, total) = r.served()?;
            (served < total).then(|| format!("{served}/{total} at {}", r.spec.conns))
        })
        .collect();
    if short.is_empty() {
        "all".into()
    } else {
        short.join(", ")
    }
}

/// The scale reading's sentence on a style that left connections without
/// a reply, if it did.
fn unserved_reading(v: &View, style: &str, size: usize) -> Option<String> {
    let pts: Vec<(usize, u64, u64, bool)> = v
        .scale_points(style, size)
        .into_iter()
        .filter_map(|r| {
            let (served, total) = r.served()?;
            (served < total).then_some((r.spec.conns, served, total, r.errors.total() > 0))
        })
        .collect();
    if pts.is_empty() {
        return None;
    }
    let parts: Vec<String> = pts
        .iter()
        .map(|(conns, served, total, _)| format!("at {conns} conns only {served} of {total}"))
        .collect();
    let why = if pts.iter().any(|p| p.3) {
        "the rest got none (the run also had errors, see the end)"
    } else {
        "the rest waited the whole run without one (queued behind busy workers, or not yet taken on)"
    };
    Some(format!(
        "{style}: {} connections got a reply: {why}. ",
        parts.join(" and ")
    ))
}

fn scale_reading(s: &mut String, v: &View, size: usize, conns: &[usize]) {
    let Some(&most) = conns.last() else { return };
    put!(s, "**Reading.** ");
    s.push_str(&ranking(v, size, conns, Figure::Rate));
    if quota_in_force(v.results())
        && let Some(text) = threads_against_reactor(v, most, size)
    {
        s.push_str(&text);
    }
    for style in v.styles() {
        if let Some(text) = unserved_reading(v, &style, size) {
            s.push_str(&text);
        }
    }
    while s.ends_with(' ') {
        s.pop();
    }
    s.push_str("\n\n");
}
