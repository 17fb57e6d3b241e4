//! The change against a baseline in markdown: diff.md (every cell) and
//! the shorter section at the end of report.md (the cells beyond noise,
//! what failed or is on one side only, and a pointer to diff.md).

use super::cells::{Cell, Measured, Side, Verdict};
use super::change::Diff;
use super::figures::{
    Figure, Kind, floor_text, noise_floor_pct, paired_floor_pct, reference_floor_pct,
};
use super::paired::ReadOn;
use crate::report::md::{put, putln};
use crate::report::view::Spread;

/// diff.md: the header, the summary, and every cell, a table per scenario.
pub fn markdown(d: &Diff) -> String {
    let mut s = summary_part(d, "#");
    putln!(s, "## Every cell\n");
    let mut scenario: Option<&str> = None;
    for c in &d.cells {
        if scenario != Some(c.scenario.as_str()) {
            if scenario.is_some() {
                s.push('\n');
            }
            scenario = Some(c.scenario.as_str());
            putln!(s, "### {}\n", c.scenario);
            table_head(&mut s, false, paired(d));
        }
        row(&mut s, c, false, paired(d));
    }
    if d.cells.is_empty() {
        putln!(s, "The two runs have no cell in common or apart.");
    }
    s
}

/// report.md's section: as diff.md without the full table.
pub fn section(d: &Diff) -> String {
    let mut s = summary_part(d, "##");
    putln!(
        s,
        "Every cell, with both runs' figures and the change: [diff.md](diff.md).\n"
    );
    s
}

/// What diff.md and the report's section share, under a heading of level
/// `h`: the runs, the rule, the cells beyond noise, failed and on one side.
fn summary_part(d: &Diff, h: &str) -> String {
    let mut s = String::new();
    putln!(s, "{h} Change against baseline\n");
    head(&mut s, d);
    let sub = format!("{h}#");
    beyond_noise(&mut s, d, &sub);
    one_side(&mut s, d, &sub);
    s
}

/// The summary line: cells by verdict.
pub fn summary(d: &Diff) -> String {
    let c = d.counts();
    let mut parts = vec![
        format!("{} faster or better", c.improved),
        format!("{} slower or worse", c.regressed),
        format!("{} within noise", c.within_noise),
    ];
    if c.no_base > 0 {
        parts.push(format!("{} from a baseline of 0", c.no_base));
    }
    if c.bounded > 0 {
        parts.push(format!("{} undecided (a side only a bound)", c.bounded));
    }
    if c.not_compared > 0 {
        parts.push(format!(
            "{} not compared (different offered loads, a throttled server, ⚠ other work on its CPUs, one capacity search a side)",
            c.not_compared
        ));
    }
    parts.push(format!("{} failed", c.failed));
    parts.push(format!("{} on one side only", c.one_side));
    let left_out = if c.left_out > 0 {
        format!(" ({} read without their failed repeats)", c.left_out)
    } else {
        String::new()
    };
    format!("{} cells: {}{left_out}", d.cells.len(), parts.join(", "))
}

fn head(s: &mut String, d: &Diff) {
    putln!(s, "Baseline: `{}`; new: `{}`.\n", d.old_name, d.new_name);
    if !d.differences.is_empty() {
        putln!(
            s,
            "**The two runs were not made the same way**, so a change may be the set-up's, not the code's:\n"
        );
        for line in &d.differences {
            putln!(s, "- {line}");
        }
        s.push('\n');
    }
    putln!(s, "**{}.**\n", summary(d));
    let floors: Vec<String> = Kind::ALL
        .iter()
        .map(|&k| {
            let f = noise_floor_pct(k);
            let abs: Vec<String> = k.floor_units().iter().map(|&u| floor_text(u)).collect();
            format!(
                "{} ×{:.2} (+{f:.0}%/−{:.0}%) and {}",
                k.name(),
                1.0 + f / 100.0,
                100.0 * f / (100.0 + f),
                abs.join(" or ")
            )
        })
        .collect();
    putln!(
        s,
        "A cell is faster or slower (better or worse where lower is better: latency, CPU, memory) only when \
         the two runs' ranges (min–max over their repeats; a run measured once is its value) do not overlap \
         and its median moved by more than the noise floor of its kind, a factor either way, and by more than \
         its absolute floor (near zero a factor says nothing): {}. The floors are how far the same code moved \
         between runs on a 2-core shared machine (docs/baseline.md); run both sides \
         with `--repeat 3` to read changes against their ranges. A capacity loadgen limited (≥) or below the \
         lowest rate tried (<) is a bound: a change is called only where the bounds prove it (≥/≤ before the \
         change: at least that much), otherwise it is undecided. ✗: runs that failed (errors, or not what was \
         asked) are shown apart and left out; a cell none of whose runs on a side did what was asked is not \
         compared. Nor, whatever their figures, are cells measured where the same code reads as changed \
         between runs: an open-loop point whose offered rates differ by more than ×1.1 (a share of each \
         run's own maximum), latency of a server throttled by its CPU quota (the quota's stalls), a cell \
         with other work on its CPUs in a run of either side (⚠, as the report marks it), and a capacity \
         searched once on a side.\n",
        floors.join(", ")
    );
    if paired(d) {
        paired_rule(s);
    }
}

/// How cells measured side by side are read, where the diff has any.
fn paired_rule(s: &mut String) {
    let floor = |f: f64| {
        format!(
            "×{:.2} (+{f:.0}%/−{:.0}%)",
            1.0 + f / 100.0,
            100.0 * f / (100.0 + f)
        )
    };
    putln!(
        s,
        "**Side by side (\"read on\").** Where both runs measured a style's scale point beside a fresh epoll server \
         over the same seconds, its msg/s and server CPU/msg are read as **paired ratios to epoll**: each round's \
         figure over that of the epoll run beside it, median (min–max) over the rounds, so that the machine's speed \
         at the time cancels. The same rule applies, with the paired floors, measured the same way between \
         back-to-back runs: msg/s ÷ epoll's {} and CPU/msg ÷ epoll's {}, and {}. epoll's own row there is read on its \
         **own figures** (its run alone), against floors of their own for msg/s, {}, and CPU/msg, {} (both runs \
         held every server to a CPU quota, as pairs need, where epoll's own figures moved less than unquota'd \
         ones): every ratio is to epoll, so a change of epoll moves all of them the other way, and it shows on \
         epoll's row rather than vanishing into theirs. A point paired in one run only is read on its own \
         figures, as without pairs.\n",
        floor(paired_floor_pct(Kind::Throughput)),
        floor(paired_floor_pct(Kind::Cpu)),
        floor_text(super::figures::Unit::Ratio),
        floor(reference_floor_pct(Kind::Throughput)),
        floor(reference_floor_pct(Kind::Cpu)),
    );
}

/// Where every paired row at a point moved beyond noise the same way, the
/// denominator they share may be what changed (epoll's, within its own
/// floor): say so under the table.
fn shared_move(s: &mut String, d: &Diff) {
    let mut notes = Vec::new();
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for c in d.cells.iter().filter(|c| c.read_on == ReadOn::PairedRatio) {
        let at = (c.point.as_str(), c.figure.name);
        if seen.contains(&at) {
            continue;
        }
        seen.push(at);
        let same: Vec<&Cell> = d
            .cells
            .iter()
            .filter(|o| o.read_on == ReadOn::PairedRatio && (o.point.as_str(), o.figure.name) == at)
            .collect();
        let first = same[0].verdict;
        if same.len() >= 2
            && matches!(first, Verdict::Improved | Verdict::Regressed)
            && same.iter().all(|o| o.verdict == first)
        {
            notes.push(format!("{} {} ({})", at.0, at.1, same[0].verdict_text()));
        }
    }
    if notes.is_empty() {
        return;
    }
    putln!(
        s,
        "Every paired row moved the same way at {}: their ratios share epoll's runs as the denominator, so this is \
         as much a change of epoll's (see its own row) as of theirs.\n",
        notes.join(", ")
    );
}

/// Where epoll's own figure moved beyond noise at a paired point, every
/// ratio there is to a changed denominator: say so under the table.
fn reference_moved(s: &mut String, moved: &[&Cell]) {
    let points: Vec<String> = moved
        .iter()
        .filter(|c| c.read_on == ReadOn::Reference)
        .map(|c| format!("{} ({} {})", c.point, c.figure.name, c.verdict_text()))
        .collect();
    if points.is_empty() {
        return;
    }
    putln!(
        s,
        "epoll, the reference, moved on its own at {}: the other styles' ratios there are to a changed \
         epoll, and move the other way by as much without any change of theirs.\n",
        points.join(", ")
    );
}

fn beyond_noise(s: &mut String, d: &Diff, h: &str) {
    let moved: Vec<&Cell> = d
        .cells
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Improved | Verdict::Regressed))
        .collect();
    if moved.is_empty() {
        putln!(s, "{h} Beyond noise\n\nNo cell moved beyond noise.\n");
    } else {
        putln!(s, "{h} Beyond noise\n");
        table_head(s, true, paired(d));
        for c in &moved {
            row(s, c, true, paired(d));
        }
        s.push('\n');
    }
    reference_moved(s, &moved);
    shared_move(s, d);
    let failed: Vec<&Cell> = d
        .cells
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Failed(_)))
        .collect();
    if !failed.is_empty() {
        putln!(
            s,
            "{h} Failed runs\n\nCells with no run that did what was asked on a side (errors, or not what was \
             asked: see that report's \"Runs to read with care\"), not compared as numbers:\n"
        );
        table_head(s, true, paired(d));
        for c in failed {
            row(s, c, true, paired(d));
        }
        s.push('\n');
    }
}

fn one_side(s: &mut String, d: &Diff, h: &str) {
    let only: Vec<&Cell> = d
        .cells
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::OnlyIn(_)))
        .collect();
    let m = &d.missing;
    if only.is_empty() && m.rows.is_empty() && m.scenarios.is_empty() {
        return;
    }
    putln!(s, "{h} On one side only\n");
    for (side, row) in &m.rows {
        putln!(s, "- row `{row}`: only in the {}", side.name());
    }
    for (side, row, scenario) in &m.scenarios {
        putln!(s, "- `{row}` {scenario}: only in the {}", side.name());
    }
    for side in [Side::Old, Side::New] {
        let n = only
            .iter()
            .filter(|c| c.verdict == Verdict::OnlyIn(side))
            .count();
        if n > 0 {
            putln!(
                s,
                "- {n} cell(s) only in the {} (listed in the full table{})",
                side.name(),
                if h == "##" { " below" } else { ", diff.md" }
            );
        }
    }
    s.push('\n');
}

/// Whether any cell was read on something else than its own figure: the
/// tables then say for each what it was read on.
fn paired(d: &Diff) -> bool {
    d.cells.iter().any(|c| c.read_on != ReadOn::Own)
}

fn table_head(s: &mut String, with_scenario: bool, read_on: bool) {
    let (scenario, scenario_rule) = if with_scenario {
        (" scenario |", "---|")
    } else {
        ("", "")
    };
    let (read, read_rule) = if read_on {
        (" read on |", "---|")
    } else {
        ("", "")
    };
    putln!(
        s,
        "| row |{scenario} point | figure |{read} baseline | new | change | verdict |\n\
         |---|{scenario_rule}---|---|{read_rule}---:|---:|---:|---|"
    );
}

fn row(s: &mut String, c: &Cell, with_scenario: bool, read_on: bool) {
    put!(s, "| {} |", c.row);
    if with_scenario {
        put!(s, " {} |", c.scenario);
    }
    put!(s, " {} | {} |", c.point, c.figure.name);
    if read_on {
        put!(s, " {} |", c.read_on.text());
    }
    let verdict = match c.verdict {
        Verdict::Improved | Verdict::Regressed => format!("**{}**", c.verdict_text()),
        _ => c.verdict_text(),
    };
    putln!(
        s,
        " {} | {} | {} | {verdict} |",
        value(c.figure, c.old.as_ref()),
        value(c.figure, c.new.as_ref()),
        cell_change(c)
    );
}

/// A cell in one line: "reactor scale conns=50 size=64 msg/s: 40.1k/s →
/// 20.3k/s (−49.4%, slower)".
pub fn line(c: &Cell) -> String {
    format!(
        "{} {} {} {}: {} → {} ({}, {})",
        c.row,
        c.scenario,
        c.point,
        c.figure.name,
        value(c.figure, c.old.as_ref()),
        value(c.figure, c.new.as_ref()),
        cell_change(c),
        c.verdict_text()
    )
}

/// A cell's change: where a side is a bound, the least the bounds prove
/// ("≥ +120.0%", "≤ −90.0%").
fn cell_change(c: &Cell) -> String {
    let bounded = [&c.old, &c.new]
        .iter()
        .any(|m| m.as_ref().is_some_and(|m| m.bounds.is_some()));
    match c.change_pct {
        Some(x) if bounded && x > 0.0 => format!("≥ {}", change(Some(x))),
        Some(x) if bounded && x < 0.0 => format!("≤ {}", change(Some(x))),
        pct => change(pct),
    }
}

/// A side's figure: the median, and its range where repeats differ; the
/// failed repeats' apart, marked ✗.
fn value(f: &Figure, m: Option<&Measured>) -> String {
    let Some(m) = m else { return "–".into() };
    if let Some(words) = &m.words {
        return words.clone();
    }
    let spread = |sp: &Spread| {
        let (lo, hi) = (f.unit.fmt(sp.min), f.unit.fmt(sp.max));
        if sp.n > 1 && lo != hi {
            format!("{} ({lo}–{hi})", f.unit.fmt(sp.median))
        } else {
            f.unit.fmt(sp.median)
        }
    };
    match (&m.spread, &m.failed_spread) {
        (Some(ok), _) if m.failed == 0 => spread(ok),
        (Some(ok), _) => format!("{}; ✗ {} of {} left out", spread(ok), m.failed, m.repeats),
        (None, Some(bad)) => format!("{} ✗", spread(bad)),
        (None, None) => "no figure ✗".into(),
    }
}

/// "+5.4%", "−12.0%", or "–" where there is none.
pub fn change(pct: Option<f64>) -> String {
    match pct {
        Some(x) if x < 0.0 => format!("−{:.1}%", -x),
        Some(x) => format!("+{x:.1}%"),
        None => "–".into(),
    }
}
