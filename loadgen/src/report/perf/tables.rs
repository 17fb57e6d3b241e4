//! The perf tables of perf.md and report.md: throughput against the
//! reference at each of the profile's connection counts, server CPU per
//! message, memory per idle connection, and the polling variants' CPU
//! against latency; each with a tally of its verdicts.

use servers::Style;

use super::cells::{RatioCell, memory_cell, ratio_cell, thousands, variant_suffix};
use super::targets::{TARGETS, Verdict};
use crate::compare::model::CompareResults;
use crate::compare::profile::perf::{CONNS, IDLE, IDLE_ACTIVE, SIZE};
use crate::report::cost::{cgroup, cost_vs_reference, cpu_us_per_msg, quota_used};
use crate::report::md::{fmt_rate, kib, put, putln};
use crate::report::view::{View, reference};
use crate::results::fmt_us;

/// The perf tables (throughput against epoll, memory, polling), with
/// `###` headings: perf.md's body and report.md's perf section.
pub fn tables(results: &CompareResults) -> String {
    let view = View::new(results);
    let mut s = String::new();
    let styles = view.styles();
    let reference = reference();
    let epoll_ran = styles.iter().any(|st| st == reference);

    putln!(
        s,
        "### Throughput against {reference} ({SIZE} B messages, closed loop)\n"
    );
    let mut tally = Tally::default();
    if !epoll_ran || view.scale_points(reference, SIZE).is_empty() {
        putln!(
            s,
            "{reference}, the reference, {} in this run: there is no ratio to judge, so no throughput verdicts.\n",
            if epoll_ran {
                "has no scale runs"
            } else {
                "was not among the styles"
            }
        );
    } else {
        conns_columns(&mut s);
        put!(s, "| {reference} (the reference, msg/s) |");
        for c in CONNS {
            match view.scale_point(reference, c, SIZE) {
                Some(r) => {
                    put!(
                        s,
                        " {}/s{} |",
                        fmt_rate(r.throughput_msgs_per_s),
                        match (r.client.client_bound, r.disturbed) {
                            (true, true) => " (client-bound) ⚠",
                            (true, false) => " (client-bound)",
                            (false, true) => " ⚠",
                            (false, false) => "",
                        }
                    );
                }
                None => s.push_str(" – |"),
            }
        }
        s.push('\n');
        for target in TARGETS.iter().filter(|t| t.style != reference) {
            let cells: Vec<RatioCell> = (0..CONNS.len())
                .map(|col| ratio_cell(&view, target, col))
                .collect();
            if cells.iter().all(|c| c.points.is_empty()) {
                putln!(s, "| {} | not run |  |  |", target.style);
                continue;
            }
            let multi = cells.iter().any(|c| c.points.len() > 1);
            put!(
                s,
                "| {}{} |",
                target.style,
                if multi { " (best variant)" } else { "" }
            );
            for c in &cells {
                tally.count(c);
                put!(s, " {} |", c.text());
            }
            s.push('\n');
            if multi {
                for v in target.variants {
                    if !cells
                        .iter()
                        .any(|c| c.points.iter().any(|p| p.variant == *v))
                    {
                        continue;
                    }
                    put!(s, "| ↳ {v} |");
                    for c in &cells {
                        match c.points.iter().find(|p| p.variant == *v) {
                            Some(p) => {
                                put!(
                                    s,
                                    " {:.2} ({}/s){} |",
                                    p.ratio,
                                    fmt_rate(p.rate),
                                    match (p.client_bound, p.disturbed) {
                                        (true, true) => " (client-bound) ⚠",
                                        (true, false) => " (client-bound)",
                                        (false, true) => " ⚠",
                                        (false, false) => "",
                                    }
                                );
                            }
                            None => s.push_str(" – |"),
                        }
                    }
                    s.push('\n');
                }
            }
        }
        s.push('\n');
        putln!(
            s,
            "Each cell: the style's messages/s divided by {} at the same connection count, the \
             target, and the verdict.{} Where a style has variants (tasks: current_thread = `--workers 0`, \
             multi_thread = the default runtime) the best is judged and each is shown below it. client-bound: \
             loadgen's busiest thread was over 90% busy in that run, so its figure is loadgen's limit; a miss there \
             may be loadgen's, and where epoll itself was client-bound the ratio is inflated.\n",
            view.reference_words(),
            if view.has_partners() {
                " A style's rate in brackets over epoll's rate in the first row need not give its ratio: that \
                 row is epoll's run alone, the ratio is to the epoll run beside the style."
            } else {
                ""
            }
        );
        putln!(s, "{}\n", tally.sentence("Throughput"));
    }

    cost_table(&mut s, &view);
    putln!(
        s,
        "### Memory at {} idle connections (per connection, the kernel's share included)\n",
        thousands(IDLE)
    );
    let mut mem_tally = Tally::default();
    let mut by_cgroup = true;
    putln!(
        s,
        "| style | judged | user space | kernel | target | verdict |\n|---|---:|---:|---:|---:|---|"
    );
    for target in TARGETS {
        let cell = memory_cell(&view, target);
        let join = |f: &dyn Fn(usize) -> String| -> String {
            match cell.points.len() {
                0 => "–".to_string(),
                1 => f(0),
                n => (0..n)
                    .map(|i| format!("{} {}", variant_suffix(&cell.points[i].0), f(i)))
                    .collect::<Vec<_>>()
                    .join("; "),
            }
        };
        by_cgroup &= cell.parts.iter().all(|p| p.2.is_some());
        let per = join(&|i| kib(cell.points[i].1));
        let user = join(&|i| kib(cell.parts[i].1));
        let kernel = join(&|i| match cell.parts[i].2 {
            Some(k) => kib(k),
            None => "not measured".into(),
        });
        let limit = match cell.limit {
            Some(max) => format!("≤ {}", kib(max as f64)),
            None => "report it".into(),
        };
        let verdict = match &cell.verdict {
            Verdict::NoData(why) => format!("– ({why})"),
            v => {
                mem_tally.add(v, false);
                v.word().to_string()
            }
        };
        putln!(
            s,
            "| {} | {per} | {user} | {kernel} | {limit} | {verdict} |",
            target.style
        );
    }
    s.push('\n');
    putln!(
        s,
        "Judged: {}, at the end of the measured window less the same before the first connection, divided by \
         every connection opened ({} idle + {} active). User space: the server's resident set (PSS over its \
         process tree if it forks) above its listening baseline. Kernel: the kernel's part of the cgroup's \
         charge (sockets, their buffers, epoll items, thread stacks), which is most of what an idle connection \
         costs. A target covers the judged figure{}; for tasks the smaller of its variants is judged.\n",
        if by_cgroup {
            "everything charged to the server's cgroup (user pages and kernel memory)"
        } else {
            "the cgroup's charge where the server ran in one with kernel memory accounted, else user-space RSS \
             (the kernel's share then not measured)"
        },
        thousands(IDLE),
        IDLE_ACTIVE,
        if by_cgroup { ", kernel included" } else { "" }
    );
    putln!(s, "{}\n", mem_tally.sentence("Memory"));

    limit_table(&mut s, &view);
    polling_table(&mut s, &view);
    s
}

/// A table's head: the style, then one column per perf connection count.
fn conns_columns(s: &mut String) {
    put!(s, "| style |");
    for c in CONNS {
        put!(s, " {} conns |", thousands(c));
    }
    s.push_str("\n|---|");
    for _ in CONNS {
        s.push_str("---|");
    }
    s.push('\n');
}

/// Who was the limit in each throughput cell: loadgen's CPU (the busiest
/// thread; for a side-by-side pair, its two threads' sum, since they shared
/// the client CPU), highest over the rounds, and the share of its quota
/// the server used, lowest over the rounds. Server-bound is the second
/// near 100% with the first well under it.
fn limit_table(s: &mut String, view: &View) {
    let mut styles = vec![reference().to_string()];
    styles.extend(
        TARGETS
            .iter()
            .flat_map(|t| t.variants.iter())
            .filter(|v| **v != reference() && view.styles().iter().any(|st| st == *v))
            .map(|v| v.to_string()),
    );
    if styles
        .iter()
        .all(|st| view.scale_points(st, SIZE).is_empty())
    {
        return;
    }
    putln!(
        s,
        "### Who was the limit ({SIZE} B, closed loop)\n\n\
         Each cell: loadgen's CPU, the busiest thread's share of the measured window (side by side, the sum of \
         the two runs' threads, which shared the client CPU), highest over the rounds; then the share of its CPU \
         quota the server used (its cgroup's CPU time over quota × window), lowest over the rounds. A run is \
         server-bound when the server used all of its quota and loadgen stayed well under 90%.\n"
    );
    conns_columns(s);
    for st in &styles {
        put!(s, "| {st} |");
        for c in CONNS {
            let Some(r) = view.scale_point(st, c, SIZE) else {
                s.push_str(" – |");
                continue;
            };
            let reps = view.repeats(r);
            // A pair's two threads shared the client CPU only where there
            // was one.
            let shared = view.results().client_cpus.len() == 1;
            let client = reps
                .iter()
                .map(|r| {
                    let partner = view.partner(r).filter(|_| shared);
                    r.client.busy_max + partner.map_or(0.0, |p| p.client.busy_max)
                })
                .fold(0.0, f64::max);
            let used = reps
                .iter()
                .filter_map(|r| quota_used(r))
                .fold(None, |m: Option<f64>, u| Some(m.map_or(u, |m| m.min(u))));
            put!(s, " loadgen {:.0}%", client * 100.0);
            match used {
                Some(u) => put!(s, ", server {:.0}% of its quota |", u * 100.0),
                None => s.push_str(" |"),
            }
        }
        s.push('\n');
    }
    s.push('\n');
}

/// Server CPU per message against epoll's, for every style with a
/// target: it ranks two styles only where both were server-bound.
fn cost_table(s: &mut String, view: &View) {
    let styles: Vec<String> = TARGETS
        .iter()
        .flat_map(|t| t.variants.iter())
        .filter(|v| view.styles().iter().any(|st| st == *v))
        .map(|v| v.to_string())
        .collect();
    let any = styles.iter().any(|st| {
        view.scale_points(st, SIZE)
            .iter()
            .any(|r| cpu_us_per_msg(r).is_some())
    });
    if !any || !view.has_reference(SIZE) {
        return;
    }
    putln!(
        s,
        "### Server CPU per message against epoll ({SIZE} B, closed loop)\n\n\
         Each cell: the style's server CPU time per echoed message (its cgroup's, over the measured window) \
         divided by {}, median (min–max over the rounds), and the style's own µs per \
         message. Below 1 is leaner. No targets. It ranks two styles only where both were server-bound (the \
         server used its whole quota and loadgen had room: see who was the limit): a server that is not \
         saturated wakes up for each message and pays more per message than one that batches.\n",
        view.reference_words()
    );
    cost_vs_reference(s, view, &styles, &CONNS, SIZE);
}

fn polling_table(s: &mut String, view: &View) {
    // The polling style and its variants ("polling:sleep1000").
    let rows = view.per_style(|st| {
        view.idle_run(st)
            .filter(|_| st.split(':').next() == Some(Style::Polling.name()))
    });
    let Some((_, first)) = rows.first() else {
        return;
    };
    putln!(
        s,
        "### polling: CPU against latency at {} idle connections\n",
        thousands(first.spec.idle)
    );
    let quota = rows
        .iter()
        .find_map(|(_, r)| cgroup(r).and_then(|c| c.cpu_quota));
    putln!(
        s,
        "{} active connections at {:.0} messages/s each beside the idle ones; latency from each message's \
         intended send time. {}\n",
        first.spec.conns,
        match first.spec.mode {
            crate::results::spec::Mode::Open { rate } => rate / first.spec.conns.max(1) as f64,
            _ => 0.0,
        },
        match quota {
            Some(q) => format!(
                "These servers ran in a CPU quota of {q} CPU, which caps what they burn: read the CPU \
                 column against it."
            ),
            None =>
                "These servers ran without a CPU quota: the CPU they burn is what they show.".into(),
        }
    );
    putln!(
        s,
        "| variant | server flags | server CPU | active p50 | active p99 | errors |\n|---|---|---:|---:|---:|---|"
    );
    // (flags, sleep us, CPU %, active p99) of each variant measured.
    let mut cpu = Vec::new();
    for (st, r) in &rows {
        let args = crate::compare::variant::Variant::parse(st)
            .map(|v| v.args)
            .unwrap_or_default();
        let flags = args.join(" ");
        let sleep_us: u64 = args
            .iter()
            .position(|a| a == "--poll-sleep-us")
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .unwrap_or(0);
        let c = r.server.as_ref().map(|sv| sv.cpu_percent);
        if let Some(c) = c
            && r.messages > 0
        {
            cpu.push((flags.clone(), sleep_us, c, r.latency_us.p99));
        }
        putln!(
            s,
            "| {st} | `{}` | {} | {} | {} | {} |",
            if flags.is_empty() {
                "(default: spin)"
            } else {
                &flags
            },
            c.map(|c| format!("{c:.0}%")).unwrap_or_else(|| "–".into()),
            if r.messages > 0 {
                fmt_us(r.latency_us.p50)
            } else {
                "no reply".into()
            },
            if r.messages > 0 {
                fmt_us(r.latency_us.p99)
            } else {
                "no reply".into()
            },
            r.errors.describe()
        );
    }
    s.push('\n');
    // The shortest sleep (spinning) against the longest.
    if let (Some(spin), Some(sleep)) = (
        cpu.iter().min_by_key(|c| c.1),
        cpu.iter().max_by_key(|c| c.1),
    ) && spin.1 < sleep.1
    {
        let verdict = if sleep.2 < spin.2 {
            "sleeping after a pass that found nothing gave back CPU"
        } else {
            "in this run sleeping did not save CPU (a busy machine blurs it)"
        };
        putln!(
            s,
            "**Reading.** With `--poll-sleep-us {}` polling used {:.0}% of a CPU watching {} sockets (active p99 \
             {}); with `--poll-sleep-us {}` it used {:.0}% (active p99 {}): {verdict}, at the price of up to the \
             sleep in each active connection's latency.\n",
            spin.1,
            spin.2,
            thousands(first.spec.total_conns()),
            fmt_us(spin.3),
            sleep.1,
            sleep.2,
            fmt_us(sleep.3)
        );
    }
}

/// Counts of verdicts, for the summary sentences.
#[derive(Default)]
struct Tally {
    pass: usize,
    miss: usize,
    miss_bound: usize,
    reported: usize,
    inconclusive: usize,
}

impl Tally {
    fn count(&mut self, c: &RatioCell) {
        if !matches!(c.verdict, Verdict::NoData(_)) {
            self.add(&c.verdict, c.client_bound());
        }
    }

    fn add(&mut self, v: &Verdict, client_bound: bool) {
        match v {
            Verdict::Pass => self.pass += 1,
            Verdict::Miss => {
                self.miss += 1;
                if client_bound {
                    self.miss_bound += 1;
                }
            }
            Verdict::Reported => self.reported += 1,
            Verdict::Inconclusive => self.inconclusive += 1,
            Verdict::NoData(_) => {}
        }
    }

    fn sentence(&self, what: &str) -> String {
        let mut s = format!(
            "**{what}: {} pass, {} miss{}**",
            self.pass,
            self.miss,
            if self.miss_bound > 0 {
                format!(" ({} of them client-bound)", self.miss_bound)
            } else {
                String::new()
            }
        );
        if self.inconclusive > 0 {
            put!(
                s,
                ", {} inconclusive (the range over the repeats straddles the target)",
                self.inconclusive
            );
        }
        if self.reported > 0 {
            put!(s, ", {} reported without a target", self.reported);
        }
        s.push('.');
        s
    }
}
