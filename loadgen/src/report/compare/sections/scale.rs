//! report.md's `scale` section: closed-loop throughput of every style at
//! each connection count and message size, its ratio to the reference, the
//! knee, the cost tables ([`crate::report::cost`]) and a reading.

use servers::Style;

use super::{NO_DATA, ends, first_reply_p99, mark, ranked};
use crate::compare::model::Scenario;
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
        "Each cell: messages/s (p99 round trip). Closed loop: every connection sends its next message when the \
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
                        put!(
                            s,
                            " {} ({}){} |",
                            fmt_rate(r.throughput_msgs_per_s),
                            fmt_us(r.latency_us.p99),
                            mark(r)
                        );
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
        cost_tables(s, v, size);
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
                    put!(s, " {}{} |", ratio.text(2), mark(r));
                }
                _ => s.push_str(" – |"),
            }
        }
        s.push('\n');
    }
    s.push('\n');
}

/// The best and worst ratio to epoll among the other styles, over every
/// connection count of `size`: (style, conns, ratio) each.
type RatioAt = (String, usize, f64);
fn reference_extremes(v: &View, size: usize) -> Option<(RatioAt, RatioAt)> {
    let mut all: Vec<RatioAt> = Vec::new();
    for st in v.styles().into_iter().filter(|st| st != reference()) {
        for c in v.scale_conns() {
            if let Some(ratio) = v.vs_reference(&st, c, size) {
                all.push((st.clone(), c, ratio));
            }
        }
    }
    let best = all.iter().max_by(|a, b| a.2.total_cmp(&b.2))?.clone();
    let worst = all.iter().min_by(|a, b| a.2.total_cmp(&b.2))?.clone();
    Some((best, worst))
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

/// The styles ranked by their msg/s at one scale point.
fn rates_at(v: &View, conns: usize, size: usize) -> Vec<(String, f64)> {
    ranked(v, |st| {
        v.scale_point(st, conns, size)
            .map(|r| (r.throughput_msgs_per_s, r))
    })
}

fn scale_reading(s: &mut String, v: &View, size: usize, conns: &[usize]) {
    let Some(&most) = conns.last() else { return };
    put!(s, "**Reading.** ");
    if v.has_reference(size)
        && let Some((best, worst)) = reference_extremes(v, size)
    {
        put!(
            s,
            "Against {} in this run the best ratio was {}'s {:.2} at {} conns and the worst {}'s {:.2} at \
             {} conns. ",
            reference(),
            best.0,
            best.2,
            best.1,
            worst.0,
            worst.2,
            worst.1
        );
    }
    if let Some((best, worst)) = ends(&rates_at(v, most, size)) {
        put!(
            s,
            "At {most} connections {} led with {}/s and {} was last with {}/s ({:.1}x apart). ",
            best.0,
            fmt_rate(best.1),
            worst.0,
            fmt_rate(worst.1),
            best.1 / worst.1.max(1e-9)
        );
    }
    // A thread per connection against one event loop.
    let (threads, reactor) = (Style::Threads.name(), Style::Reactor.name());
    if let (Some(t), Some(r)) = (
        v.scale_point(threads, most, size),
        v.scale_point(reactor, most, size),
    ) && t.messages > 0
        && r.messages > 0
    {
        let verdict = if t.throughput_msgs_per_s < r.throughput_msgs_per_s * 0.9 {
            "so one thread per connection cost throughput here"
        } else if t.throughput_msgs_per_s > r.throughput_msgs_per_s * 1.1 {
            "so the kernel scheduling that many threads still kept up with one event loop here"
        } else {
            "about level"
        };
        put!(
            s,
            "{threads} did {}/s (p99 {}) against {reactor}'s {}/s (p99 {}), {verdict}. ",
            fmt_rate(t.throughput_msgs_per_s),
            fmt_us(t.latency_us.p99),
            fmt_rate(r.throughput_msgs_per_s),
            fmt_us(r.latency_us.p99)
        );
    }
    if let Some(&fewest) = conns.first() {
        if let Some((hi, lo)) = ends(&rates_at(v, fewest, size)) {
            put!(
                s,
                "With {fewest} connection(s) the styles ranged from {}/s ({}) to {}/s ({}): at this load a round \
                 trip is dominated by wake-ups across CPUs, which a spinning or single-loop server avoids best.",
                fmt_rate(hi.1),
                hi.0,
                fmt_rate(lo.1),
                lo.0
            );
        }
    }
    for style in v.styles() {
        if let Some(text) = unserved_reading(v, &style, size) {
            if !s.ends_with(' ') {
                s.push(' ');
            }
            s.push_str(&text);
        }
    }
    while s.ends_with(' ') {
        s.pop();
    }
    s.push_str("\n\n");
}
