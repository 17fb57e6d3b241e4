//! report.md's first section: the trade-offs, one row per style and a
//! column per C10K dimension this run measured, split in two tables so that
//! 11 styles fit a laptop screen. Each cell is marked best or worst only
//! where its range (or, measured once, a stated margin) separates it from
//! every other style's; cells that cannot be told from the best or the
//! worst share the mark as "tied". Under the tables, a line per style says
//! where it wins and where it breaks, from the same marks.

use super::figures::{self, Figure};
use super::marks::{Mark, marks, marks_beside};
use crate::report::capacity;
use crate::report::compare::rank::Left;
use crate::report::md::{conns_label, fmt_rate, put, putln, thousands};
use crate::report::view::{Spread, View, reference};
use crate::results::fmt_us;
use crate::results::server::CountedOn;

/// Measured once, a latency is marked best or worst only this many times
/// from every other (as the fairness reading ranks).
pub const LATENCY_MARGIN: f64 = 3.0;
/// Measured once, memory per connection likewise (as the idle reading).
pub const MEMORY_MARGIN: f64 = 1.25;
/// Never separates: for figures the report does not rank once-measured.
const UNRANKED_ONCE: f64 = f64::INFINITY;

/// The median of a figure left out of the ranking for a reason other than
/// failing.
fn unknown(fig: &Option<Figure>) -> Option<f64> {
    fig.as_ref()
        .filter(|f| f.left.is_some() && f.left != Some(Left::Failed))
        .map(|f| f.spread.median)
}

/// One column of a trade-off table.
struct Column {
    head: String,
    /// What the column measures, for the per-style readings.
    what: String,
    cells: Vec<String>,
    /// Says what the style is rather than what it measured.
    label: bool,
    /// The figure alone, for the readings.
    short: Vec<String>,
    marks: Vec<Mark>,
    /// Cells that broke (failed, starved, served too few), for the readings.
    broke: Vec<Option<String>>,
}

impl Column {
    fn new(head: String, what: String, n: usize) -> Column {
        Column {
            head,
            what,
            cells: vec!["–".into(); n],
            short: vec![String::new(); n],
            label: false,
            marks: vec![Mark::None; n],
            broke: vec![None; n],
        }
    }

    fn has_values(&self) -> bool {
        self.cells.iter().any(|c| c != "–")
    }
}

fn left_mark(left: &Option<Left>) -> &'static str {
    match left {
        Some(Left::Failed) => " ✗",
        Some(Left::ClientBound) => " †",
        Some(Left::NotServerBound) => " ◦",
        Some(Left::Disturbed) => crate::report::cost::DISTURBED_MARK,
        _ => "",
    }
}

/// The trade-off section: two tables and a reading per style.
pub fn section(s: &mut String, v: &View) {
    let styles = v.styles();
    let (Some(size), points) = (figures::size(v), figures::points(v)) else {
        return;
    };
    let Some(&largest) = points.last() else {
        return;
    };
    let n = styles.len();
    putln!(s, "## Trade-offs\n");
    putln!(
        s,
        "What each style costs on every C10K dimension this run measured ({size} B messages where the scale \
         scenario sets the size). A cell is marked **best** or **worst** only where its range over the rounds \
         does not meet any other style's (measured once: only past {LATENCY_MARGIN:.0}× for latency, \
         {MEMORY_MARGIN}× for memory, never for rates); \"tied\" where a few cannot be told from the best or \
         the worst; unmarked cells are not told apart. Not ranked: ✗ failed, † loadgen was the limit, ⚠ other work ran on its CPUs (disturbed), ◦ the server \
         did not use its whole quota in every round (cost per message ranks only where both sides did). Each \
         section below has the full tables.\n"
    );
    let mut first = Vec::new();
    let mut mech = Column::new("how it waits · who switches".into(), String::new(), n);
    mech.label = true;
    for (i, st) in styles.iter().enumerate() {
        if let Some(style) = figures::style_of(v, st) {
            mech.cells[i] = format!("{} · {}", style.waits().words(), style.switches().words());
        }
    }
    first.push(mech);
    for &c in &points {
        first.push(cost_column(v, &styles, c, size));
    }
    first.push(served_column(v, &styles, largest, size));
    first.push(p99_column(v, &styles, largest, size));
    let high = points
        .get(points.len().saturating_sub(2))
        .copied()
        .unwrap_or(largest);
    let mut second = vec![
        threads_column(v, &styles, largest, size),
        counts_column(v, &styles, high, size),
        memory_column(v, &styles),
        setup_column(v, &styles),
        fairness_column(v, &styles),
    ];
    if let Some(col) = capacity_column(v, &styles) {
        second.push(col);
    }
    putln!(
        s,
        "**Cost as connections grow.** Server CPU per message over the epoll server's beside it (below 1: \
         leaner), its range over the rounds, and the style's own µs per message.\n"
    );
    table(s, &styles, &first);
    putln!(
        s,
        "**What a connection holds, and how the style treats the others.** System calls and context switches \
         are the kernel's counts over the window (docs/method.md){}.\n",
        counting_words(&figures::counted_on(v))
    );
    second.retain(Column::has_values);
    table(s, &styles, &second);
    readings(s, &styles, &first, &second);
}

/// How the counters were attached, and what that costs whom.
fn counting_words(ways: &[CountedOn]) -> &'static str {
    match ways {
        [] => "",
        [CountedOn::Cgroup] => {
            ", counted per CPU on each server's cgroup: nothing is added per thread or process"
        }
        _ => {
            ": where counted on the server's tasks, every thread and process it makes gets a copy of \
             the counters, so a style with one per connection pays for them at each connection, and its \
             figures at many connections are somewhat worse for being counted"
        }
    }
}

fn table(s: &mut String, styles: &[String], cols: &[Column]) {
    s.push_str("| style |");
    for c in cols {
        put!(s, " {} |", c.head);
    }
    s.push_str("\n|---|");
    for _ in cols {
        s.push_str("---|");
    }
    s.push('\n');
    for (i, st) in styles.iter().enumerate() {
        // A style that ran none of these (a variant run for one scenario
        // only) gets no row of dashes.
        if cols.iter().all(|c| c.label || c.cells[i] == "–") {
            continue;
        }
        put!(s, "| {st} |");
        for c in cols {
            put!(s, " {}{} |", c.cells[i], c.marks[i].suffix());
        }
        s.push('\n');
    }
    s.push('\n');
}

fn cost_column(v: &View, styles: &[String], conns: usize, size: usize) -> Column {
    let mut col = Column::new(
        format!("CPU/msg ÷ epoll, {}", conns_label(conns)),
        format!("CPU per message at {} connections", thousands(conns)),
        styles.len(),
    );
    let (mut figs, mut unknowns) = (Vec::new(), Vec::new());
    for (i, st) in styles.iter().enumerate() {
        let fig = figures::cost_ratio(v, st, conns, size);
        if let Some(f) = &fig {
            let us = figures::cost_us(v, st, conns, size)
                .map(|u| format!(" · {:.1} µs", u.median))
                .unwrap_or_default();
            col.cells[i] = format!("{}{us}{}", f.spread.text(2), left_mark(&f.left));
            col.short[i] = if st == reference() {
                us.trim_start_matches(" · ").to_string()
            } else {
                format!("{:.2}× epoll's", f.spread.median)
            };
            if f.left == Some(Left::Failed) {
                col.broke[i] = Some(format!("failed at {} connections", thousands(conns)));
            }
        }
        unknowns.extend(unknown(&fig));
        figs.push(fig.as_ref().and_then(Figure::ranked));
    }
    col.marks = marks_beside(&figs, &unknowns, true, UNRANKED_ONCE);
    col
}

fn served_column(v: &View, styles: &[String], conns: usize, size: usize) -> Column {
    let mut col = Column::new(
        format!("served, {}", conns_label(conns)),
        String::new(),
        styles.len(),
    );
    for (i, st) in styles.iter().enumerate() {
        let Some((served, total)) = figures::served(v, st, conns, size) else {
            continue;
        };
        if served == total {
            col.cells[i] = "all".into();
        } else {
            col.cells[i] = format!(
                "{}/{} ✗",
                thousands(served as usize),
                thousands(total as usize)
            );
            col.broke[i] = Some(format!(
                "served {} of {} connections at {}",
                thousands(served as usize),
                thousands(total as usize),
                thousands(conns)
            ));
        }
    }
    col
}

fn p99_column(v: &View, styles: &[String], conns: usize, size: usize) -> Column {
    let mut col = Column::new(
        format!("p99, {}", conns_label(conns)),
        format!("p99 at {} connections", thousands(conns)),
        styles.len(),
    );
    let (mut figs, mut unknowns) = (Vec::new(), Vec::new());
    for (i, st) in styles.iter().enumerate() {
        let fig = figures::p99(v, st, conns, size);
        if let Some(f) = &fig {
            col.cells[i] = format!(
                "{}{}",
                f.spread.show(|x| fmt_us(x as u64)),
                left_mark(&f.left)
            );
            col.short[i] = fmt_us(f.spread.median as u64);
        }
        unknowns.extend(unknown(&fig));
        figs.push(fig.as_ref().and_then(Figure::ranked));
    }
    col.marks = marks_beside(&figs, &unknowns, true, LATENCY_MARGIN);
    col
}

fn threads_column(v: &View, styles: &[String], conns: usize, size: usize) -> Column {
    let mut col = Column::new(
        format!("threads · processes, {}", conns_label(conns)),
        String::new(),
        styles.len(),
    );
    for (i, st) in styles.iter().enumerate() {
        if let Some((threads, procs)) = figures::threads_processes(v, st, conns, size) {
            col.cells[i] = format!(
                "{} · {}",
                thousands(threads as usize),
                procs.map_or("–".into(), |p| thousands(p as usize))
            );
        }
    }
    col
}

fn counts_column(v: &View, styles: &[String], conns: usize, size: usize) -> Column {
    let mut col = Column::new(
        format!(
            "syscalls · switches per msg · events per wake-up, {}",
            conns_label(conns)
        ),
        String::new(),
        styles.len(),
    );
    for (i, st) in styles.iter().enumerate() {
        if v.scale_point(st, conns, size).is_none() {
            continue;
        }
        let calls = figures::syscalls(v, st, conns, size);
        let switches = figures::switches(v, st, conns, size);
        let counted = |x: &Result<Spread, String>| match x {
            Ok(sp) => format!("{:.2}", sp.median),
            Err(_) => "not measured".into(),
        };
        let wakeups = figures::events_per_wakeup(v, st, conns, size)
            .map(|w| format!(" · {:.0}", w.median))
            .unwrap_or_else(|| " · –".into());
        col.cells[i] = match (&calls, &switches) {
            (Err(why), Err(_)) => format!("not measured ({why}){wakeups}"),
            _ => format!("{} · {}{wakeups}", counted(&calls), counted(&switches)),
        };
    }
    col
}

fn memory_column(v: &View, styles: &[String]) -> Column {
    let mut col = Column::new(
        "memory per idle conn (kernel's)".into(),
        "memory per idle connection".into(),
        styles.len(),
    );
    let mut figs = Vec::new();
    for (i, st) in styles.iter().enumerate() {
        let fig = figures::idle_memory(v, st);
        if let Some((f, kernel)) = &fig {
            let k = kernel.map(|k| format!(" ({k:.2})")).unwrap_or_default();
            col.cells[i] = format!("{} KiB{k}{}", f.spread.text(2), left_mark(&f.left));
            col.short[i] = format!("{:.2} KiB", f.spread.median);
            if f.left == Some(Left::Failed) {
                col.broke[i] = Some("failed with idle connections held".into());
            }
            // A charge that fell below the group's baseline measured
            // something else (pages uncharged meanwhile): never a best.
            if f.spread.min <= 0.0 {
                col.cells[i] += " (below its baseline: not ranked)";
            }
        }
        figs.push(
            fig.as_ref()
                .and_then(|(f, _)| f.ranked())
                .filter(|sp| sp.min > 0.0),
        );
    }
    col.marks = marks(&figs, true, MEMORY_MARGIN);
    col
}

fn setup_column(v: &View, styles: &[String]) -> Column {
    let mut col = Column::new(
        "set-ups/s (churn)".into(),
        "connections set up per second".into(),
        styles.len(),
    );
    let (mut figs, mut unknowns) = (Vec::new(), Vec::new());
    for (i, st) in styles.iter().enumerate() {
        let fig = figures::setup_rate(v, st);
        if let Some(f) = &fig {
            col.cells[i] = format!("{}{}", f.spread.show(fmt_rate), left_mark(&f.left));
            col.short[i] = format!("{}/s", fmt_rate(f.spread.median));
        }
        unknowns.extend(unknown(&fig));
        figs.push(fig.as_ref().and_then(Figure::ranked));
    }
    col.marks = marks_beside(&figs, &unknowns, false, UNRANKED_ONCE);
    col
}

fn fairness_column(v: &View, styles: &[String]) -> Column {
    let mut col = Column::new(
        "light p99 beside a heavy conn".into(),
        "light connections' p99 beside a CPU-heavy one".into(),
        styles.len(),
    );
    let mut figs = Vec::new();
    for (i, st) in styles.iter().enumerate() {
        let fig = figures::light_p99(v, st);
        match &fig {
            Some(Some(f)) => {
                col.cells[i] = format!(
                    "{}{}",
                    f.spread.show(|x| fmt_us(x as u64)),
                    left_mark(&f.left)
                );
                col.short[i] = fmt_us(f.spread.median as u64);
            }
            Some(None) => {
                col.cells[i] = "no reply ✗".into();
                col.broke[i] =
                    Some("the light connections got no reply beside a CPU-heavy one".into());
            }
            None => {}
        }
        figs.push(fig.flatten().as_ref().and_then(Figure::ranked));
    }
    col.marks = marks(&figs, true, LATENCY_MARGIN);
    col
}

fn capacity_column(v: &View, styles: &[String]) -> Option<Column> {
    let results = v.results();
    let slo = capacity::slo(results)?;
    let conns = *capacity::conns(results).last()?;
    let cells = capacity::cells(results);
    let mut col = Column::new(
        format!("capacity at {slo}, {}", conns_label(conns)),
        format!("capacity at {slo}"),
        styles.len(),
    );
    let mut figs = Vec::new();
    for (i, st) in styles.iter().enumerate() {
        let cell = cells.iter().find(|c| &c.style == st && c.conns == conns);
        let mut fig = None;
        if let Some(c) = cell {
            col.cells[i] = capacity::text(c);
            col.short[i] = col.cells[i].clone();
            let bounded = c
                .searches
                .iter()
                .all(|s| s.bound == crate::compare::capacity::Bound::Server);
            if bounded && c.rounds > 1 {
                fig = c.spread;
            }
            if c.median.bound == crate::compare::capacity::Bound::NonePassed {
                col.broke[i] = Some(format!("met {slo} at no rate tried"));
            }
        }
        figs.push(fig);
    }
    col.marks = marks(&figs, false, UNRANKED_ONCE);
    Some(col)
}

/// A line per style: where it wins (best marks) and where it breaks (worst
/// marks, failures), with the figure.
fn readings(s: &mut String, styles: &[String], first: &[Column], second: &[Column]) {
    putln!(s, "**Where each style wins and where it breaks.**\n");
    for (i, st) in styles.iter().enumerate() {
        let cols = first.iter().chain(second).filter(|c| !c.what.is_empty());
        let (mut wins, mut breaks) = (Vec::new(), Vec::new());
        for c in cols {
            let figure = &c.short[i];
            match c.marks[i] {
                Mark::Best => wins.push(format!("best {} ({figure})", c.what)),
                Mark::BestTied => wins.push(format!("among the best in {} ({figure})", c.what)),
                Mark::Worst => breaks.push(format!("worst {} ({figure})", c.what)),
                Mark::WorstTied => breaks.push(format!("among the worst in {} ({figure})", c.what)),
                Mark::None => {}
            }
        }
        for c in first.iter().chain(second) {
            if let Some(b) = &c.broke[i] {
                breaks.push(b.clone());
            }
        }
        let text = match (wins.is_empty(), breaks.is_empty()) {
            (true, true) => {
                "not told apart from the others on anything this run measured.".to_string()
            }
            (false, true) => format!("wins: {}; no break in this run.", wins.join("; ")),
            (true, false) => format!("breaks: {}.", breaks.join("; ")),
            (false, false) => format!("wins: {}. Breaks: {}.", wins.join("; "), breaks.join("; ")),
        };
        putln!(s, "- **{st}**: {text}");
    }
    s.push('\n');
}
