//! The `perf` profile: every style against `epoll` (the raw-epoll
//! reference, the in-project stand-in for the machine's limit) in the same
//! run, judged against the targets below, the one place they live.
//!
//! `loadgen compare --profile perf` runs [`STYLES`]: each through `idle`
//! (10,000 idle connections: memory per connection) and `scale` (closed
//! loop, 64 B, at [`CONNS`]); the `polling` variants through `idle` alone at
//! 1,000 idle connections, to show what `--poll-sleep-us` trades: CPU for
//! the latency of the few active connections. Then [`markdown`] writes the
//! verdicts into perf.md and report.md and onto stdout.
//!
//! Pass and miss are reported, never asserted: on a shared machine a
//! timing moves by a third from one run to the next, so no exit code or
//! test depends on them.

use std::fmt::Write as _;

use crate::compare::model::CompareResults;
use crate::compare::profile::perf::{CONNS, IDLE, IDLE_ACTIVE, SIZE};
use crate::report::compare::{REFERENCE, View, fmt_rate};
use crate::report::fmt_us;
use crate::results::RunResult;

/// Whether `results` come from a profile whose report has the perf tables.
pub fn applies(results: &CompareResults) -> bool {
    crate::compare::profile::Profile::named(&results.profile).is_some_and(|p| p.perf_tables)
}

const KIB: u64 = 1024;

/// What a style must do at one connection count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Goal {
    /// The style is the reference (its ratio is 1 by definition).
    Reference,
    /// Throughput at least this ratio to epoll's.
    AtLeast(f64),
    /// Report the ratio; no target.
    Report,
    /// Report the ratio, and pass when every connection was held and served.
    HoldsEveryConnection,
}

/// One style's targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// The row name.
    pub style: &'static str,
    /// The runs (style variants) that count for it; the best is judged and
    /// all are shown.
    pub variants: &'static [&'static str],
    /// Throughput against epoll at each of [`CONNS`].
    pub ratio: [Goal; 3],
    /// Server memory per idle connection above the listening baseline, at
    /// [`IDLE`] idle connections (bytes); None: reported, no target. It
    /// covers everything the server's cgroup is charged (user pages and
    /// the kernel's sockets, buffers, epoll items, stacks: ~1.5 KiB of an
    /// idle TCP connection here) where the server ran in one with kernel
    /// memory accounted, else user-space RSS alone.
    pub memory_per_conn_max: Option<u64>,
}

/// The targets: the one place they are written down.
pub const TARGETS: &[Target] = &[
    Target {
        style: "epoll",
        variants: &["epoll"],
        ratio: [Goal::Reference; 3],
        memory_per_conn_max: Some(2 * KIB),
    },
    Target {
        style: "reactor",
        variants: &["reactor"],
        ratio: [Goal::AtLeast(0.95), Goal::AtLeast(0.95), Goal::AtLeast(0.9)],
        memory_per_conn_max: Some(2 * KIB),
    },
    Target {
        style: "tasks",
        variants: &["tasks:current_thread", "tasks:multi_thread", "tasks"],
        ratio: [Goal::AtLeast(0.9), Goal::AtLeast(0.9), Goal::AtLeast(0.85)],
        memory_per_conn_max: Some(4 * KIB),
    },
    Target {
        style: "coroutines",
        variants: &["coroutines"],
        ratio: [Goal::AtLeast(0.8), Goal::AtLeast(0.8), Goal::AtLeast(0.7)],
        // Its stack (the default, which the perf profile runs) plus 1 KiB.
        memory_per_conn_max: Some(servers::config::DEFAULT_COROUTINE_STACK as u64 + KIB),
    },
    Target {
        style: "uring",
        variants: &["uring"],
        ratio: [Goal::AtLeast(1.1), Goal::AtLeast(1.1), Goal::AtLeast(1.0)],
        memory_per_conn_max: Some(4 * KIB),
    },
    Target {
        style: "threads",
        variants: &["threads"],
        ratio: [Goal::Report, Goal::Report, Goal::HoldsEveryConnection],
        memory_per_conn_max: None,
    },
];

/// benches/client_efficiency.rs: loadgen's one thread must drive at least
/// this many times the round trips/s of a thread-per-connection client, at
/// these connection counts (against epoll, 64 B, closed loop).
pub const CLIENT_EFFICIENCY_MIN_RATIO: f64 = 1.2;
pub const CLIENT_EFFICIENCY_CONNS: &[usize] = &[50, 1000];

/// A cell's verdict.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Pass,
    Miss,
    /// Over the repeats the ratio's range straddles the target: some
    /// rounds met it, some did not.
    Inconclusive,
    /// Measured and shown; no target to meet.
    Reported,
    /// Nothing to judge, and why.
    NoData(String),
}

impl Verdict {
    fn word(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Miss => "**miss**",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Reported => "reported",
            Verdict::NoData(_) => "no data",
        }
    }
}

/// One variant's run at one connection count, against epoll's.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub variant: String,
    /// The median run's msg/s.
    pub rate: f64,
    /// The median of the ratios paired round by round with epoll's.
    pub ratio: f64,
    /// Their min and max, and how many rounds (1: no range).
    pub range: (f64, f64),
    pub rounds: usize,
    /// Loadgen saturated in this run: the rate is loadgen's limit.
    pub client_bound: bool,
    /// Connections that were established and got replies, of those asked for.
    pub held: (u64, u64),
    pub errors: u64,
}

impl Point {
    pub fn held_every(&self) -> bool {
        self.held.0 == self.held.1 && self.errors == 0
    }
}

/// One throughput cell: a target's style at one connection count.
#[derive(Clone, Debug, PartialEq)]
pub struct RatioCell {
    pub conns: usize,
    pub goal: Goal,
    /// Every variant that ran, in the target's order.
    pub points: Vec<Point>,
    /// Index into `points` of the best (highest rate).
    pub best: Option<usize>,
    /// epoll's own run here was client-bound (its figure, the denominator,
    /// is then loadgen's limit).
    pub reference_client_bound: bool,
    pub verdict: Verdict,
}

impl RatioCell {
    pub fn best_point(&self) -> Option<&Point> {
        self.best.map(|i| &self.points[i])
    }

    /// Loadgen saturated in the judged run.
    pub fn client_bound(&self) -> bool {
        self.best_point().is_some_and(|p| p.client_bound)
    }

    /// The cell as table text.
    pub fn text(&self) -> String {
        let Some(p) = self.best_point() else {
            return match &self.verdict {
                Verdict::NoData(why) => format!("– ({why})"),
                v => v.word().to_string(),
            };
        };
        let mut s = format!("{:.2}", p.ratio);
        // 0.897 against ≥ 0.90 must not read "0.90 ≥ 0.90: miss".
        if let Goal::AtLeast(x) = self.goal
            && s == format!("{x:.2}")
        {
            s = format!("{:.3}", p.ratio);
        }
        if p.rounds > 1 {
            let _ = write!(s, " ({:.2}–{:.2})", p.range.0, p.range.1);
        }
        if self.points.len() > 1 {
            let _ = write!(s, " ({})", variant_suffix(&p.variant));
        }
        match self.goal {
            Goal::AtLeast(x) => {
                let _ = write!(s, " ≥ {x:.2}: {}", self.verdict.word());
            }
            Goal::HoldsEveryConnection => {
                let held = if p.held_every() {
                    format!("held all {}", thousands(p.held.1 as usize))
                } else if p.errors > 0 && p.held.0 == p.held.1 {
                    format!(
                        "held {} but with {} errors",
                        thousands(p.held.1 as usize),
                        p.errors
                    )
                } else {
                    format!(
                        "held {} of {}",
                        thousands(p.held.0 as usize),
                        thousands(p.held.1 as usize)
                    )
                };
                let _ = write!(s, "; {held}: {}", self.verdict.word());
            }
            Goal::Report | Goal::Reference => {}
        }
        let mut notes = Vec::new();
        if p.client_bound {
            notes.push(if self.verdict == Verdict::Miss {
                "client-bound: loadgen saturated, so the miss may be loadgen's"
            } else {
                "client-bound"
            });
        }
        if self.reference_client_bound {
            notes.push("epoll client-bound");
        }
        if !notes.is_empty() {
            let _ = write!(s, " ({})", notes.join("; "));
        }
        s
    }
}

/// One memory cell: a target's style at [`IDLE`] idle connections.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryCell {
    pub limit: Option<u64>,
    /// (variant, bytes per connection above the baseline, idle connections):
    /// what the server's cgroup was charged (user space and the kernel's
    /// sockets, buffers, stacks) where it ran in one, else user-space RSS.
    pub points: Vec<(String, f64, usize)>,
    /// (variant, user-space bytes, kernel bytes or None: not measured) per
    /// connection, for the table.
    pub parts: Vec<(String, f64, Option<f64>)>,
    /// Index of the smallest.
    pub best: Option<usize>,
    pub verdict: Verdict,
}

fn variant_suffix(name: &str) -> &str {
    name.split_once(':').map(|(_, v)| v).unwrap_or(name)
}

/// 10000 → "10,000".
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn point(view: &View, r: &RunResult, reference: &RunResult) -> Point {
    let total = r.spec.conns as u64;
    let style = r
        .tags
        .as_ref()
        .map(|t| t.style.as_str())
        .unwrap_or_default();
    let spread = view.vs_reference_spread(style, r.spec.conns, r.spec.size);
    let single = r.throughput_msgs_per_s / reference.throughput_msgs_per_s;
    let established = r.connect.established.min(total);
    let held = match r.served() {
        Some((served, _)) => served.min(established),
        None => established,
    };
    Point {
        variant: r.tags.as_ref().map(|t| t.style.clone()).unwrap_or_default(),
        rate: r.throughput_msgs_per_s,
        ratio: spread.map(|s| s.median).unwrap_or(single),
        range: spread.map(|s| (s.min, s.max)).unwrap_or((single, single)),
        rounds: spread.map(|s| s.n).unwrap_or(1),
        client_bound: r.client.client_bound,
        held: (held, total),
        errors: r.errors.total(),
    }
}

/// Judges `target` at `CONNS[col]`, from the 64 B scale runs in `view`.
pub fn ratio_cell(view: &View, target: &Target, col: usize) -> RatioCell {
    let conns = CONNS[col];
    let goal = target.ratio[col];
    let mut cell = RatioCell {
        conns,
        goal,
        points: Vec::new(),
        best: None,
        reference_client_bound: false,
        verdict: Verdict::NoData("not run".into()),
    };
    let reference = view
        .scale_point(REFERENCE, conns, SIZE)
        .filter(|e| e.messages > 0 && e.throughput_msgs_per_s > 0.0);
    let Some(reference) = reference else {
        cell.verdict = Verdict::NoData("no epoll run to compare with".into());
        return cell;
    };
    cell.reference_client_bound = reference.client.client_bound;
    let styles = view.styles();
    for v in target.variants {
        if !styles.iter().any(|s| s == v) {
            continue;
        }
        if let Some(r) = view.scale_point(v, conns, SIZE) {
            cell.points.push(point(view, r, reference));
        }
    }
    cell.best = cell
        .points
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.rate.total_cmp(&b.1.rate))
        .map(|(i, _)| i);
    let Some(best) = cell.best_point() else {
        return cell;
    };
    cell.verdict = match goal {
        Goal::Reference | Goal::Report => Verdict::Reported,
        // Judged on the whole range: a verdict must hold in every round.
        Goal::AtLeast(x) if best.range.0 >= x => Verdict::Pass,
        Goal::AtLeast(x) if best.range.1 < x => Verdict::Miss,
        Goal::AtLeast(_) => Verdict::Inconclusive,
        Goal::HoldsEveryConnection if best.held_every() => Verdict::Pass,
        Goal::HoldsEveryConnection => Verdict::Miss,
    };
    cell
}

/// Judges `target`'s memory per idle connection from its idle runs with
/// at least [`IDLE`] idle connections.
pub fn memory_cell(view: &View, target: &Target) -> MemoryCell {
    let mut cell = MemoryCell {
        limit: target.memory_per_conn_max,
        points: Vec::new(),
        parts: Vec::new(),
        best: None,
        verdict: Verdict::NoData("not run".into()),
    };
    let styles = view.styles();
    for v in target.variants {
        if !styles.iter().any(|s| s == v) {
            continue;
        }
        let Some(r) = view
            .runs(v, "idle")
            .into_iter()
            .find(|r| r.spec.idle >= IDLE)
        else {
            continue;
        };
        match &r.server {
            Some(sv) => {
                let cg = sv.cgroup.as_ref();
                let total = cg
                    .and_then(|c| c.memory_per_conn_bytes)
                    .unwrap_or(sv.rss_per_conn_bytes);
                cell.points.push((v.to_string(), total, r.spec.idle));
                cell.parts.push((
                    v.to_string(),
                    sv.rss_per_conn_bytes,
                    cg.and_then(|c| c.kernel_per_conn_bytes),
                ));
            }
            None => cell.verdict = Verdict::NoData("server memory not measured".into()),
        }
    }
    cell.best = cell
        .points
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.1.total_cmp(&b.1.1))
        .map(|(i, _)| i);
    if let Some(i) = cell.best {
        let per = cell.points[i].1;
        cell.verdict = match cell.limit {
            None => Verdict::Reported,
            Some(max) if per <= max as f64 => Verdict::Pass,
            Some(_) => Verdict::Miss,
        };
    }
    cell
}

fn kib(bytes: f64) -> String {
    format!("{:.2} KiB", bytes / 1024.0)
}

/// The perf tables (throughput against epoll, memory, polling), with
/// `###` headings: perf.md's body and report.md's perf section.
pub fn tables(results: &CompareResults) -> String {
    let view = View::new(results);
    let mut s = String::new();
    let styles = view.styles();
    let epoll_ran = styles.iter().any(|st| st == REFERENCE);

    let _ = writeln!(
        s,
        "### Throughput against epoll ({SIZE} B messages, closed loop)\n"
    );
    let mut tally = Tally::default();
    if !epoll_ran || view.scale_points(REFERENCE, SIZE).is_empty() {
        let _ = writeln!(
            s,
            "epoll, the reference, {} in this run: there is no ratio to judge, so no throughput verdicts.\n",
            if epoll_ran {
                "has no scale runs"
            } else {
                "was not among the styles"
            }
        );
    } else {
        let _ = write!(s, "| style |");
        for c in CONNS {
            let _ = write!(s, " {} conns |", thousands(c));
        }
        s.push_str("\n|---|");
        for _ in CONNS {
            s.push_str("---|");
        }
        s.push('\n');
        let _ = write!(s, "| epoll (the reference, msg/s) |");
        for c in CONNS {
            match view.scale_point(REFERENCE, c, SIZE) {
                Some(r) => {
                    let _ = write!(
                        s,
                        " {}/s{} |",
                        fmt_rate(r.throughput_msgs_per_s),
                        if r.client.client_bound {
                            " (client-bound)"
                        } else {
                            ""
                        }
                    );
                }
                None => s.push_str(" – |"),
            }
        }
        s.push('\n');
        for target in TARGETS.iter().filter(|t| t.style != REFERENCE) {
            let cells: Vec<RatioCell> = (0..CONNS.len())
                .map(|col| ratio_cell(&view, target, col))
                .collect();
            if cells.iter().all(|c| c.points.is_empty()) {
                let _ = writeln!(s, "| {} | not run |  |  |", target.style);
                continue;
            }
            let multi = cells.iter().any(|c| c.points.len() > 1);
            let _ = write!(
                s,
                "| {}{} |",
                target.style,
                if multi { " (best variant)" } else { "" }
            );
            for c in &cells {
                tally.count(c);
                let _ = write!(s, " {} |", c.text());
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
                    let _ = write!(s, "| ↳ {v} |");
                    for c in &cells {
                        match c.points.iter().find(|p| p.variant == *v) {
                            Some(p) => {
                                let _ = write!(
                                    s,
                                    " {:.2} ({}/s){} |",
                                    p.ratio,
                                    fmt_rate(p.rate),
                                    if p.client_bound {
                                        " (client-bound)"
                                    } else {
                                        ""
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
        let _ = writeln!(
            s,
            "Each cell: the style's messages/s divided by epoll's at the same connection count in this run, the \
             target, and the verdict. Where a style has variants (tasks: current_thread = `--workers 0`, \
             multi_thread = the default runtime) the best is judged and each is shown below it. client-bound: \
             loadgen's busiest thread was over 90% busy in that run, so its figure is loadgen's limit; a miss there \
             may be loadgen's, and where epoll itself was client-bound the ratio is inflated.\n"
        );
        let _ = writeln!(s, "{}\n", tally.sentence("Throughput"));
    }

    cost_table(&mut s, &view);
    let _ = writeln!(
        s,
        "### Memory at {} idle connections (per connection, the kernel's share included)\n",
        thousands(IDLE)
    );
    let mut mem_tally = Tally::default();
    let mut by_cgroup = true;
    let _ = writeln!(
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
        let _ = writeln!(
            s,
            "| {} | {per} | {user} | {kernel} | {limit} | {verdict} |",
            target.style
        );
    }
    s.push('\n');
    let _ = writeln!(
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
    let _ = writeln!(s, "{}\n", mem_tally.sentence("Memory"));

    polling_table(&mut s, &view);
    s
}

/// Server CPU per message against epoll's, for every style with a
/// target: the figure that ranks the styles whoever was the limit.
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
            .any(|r| crate::report::cost::cpu_us_per_msg(r).is_some())
    });
    if !any || !view.has_reference(SIZE) {
        return;
    }
    let _ = writeln!(
        s,
        "### Server CPU per message against epoll ({SIZE} B, closed loop)\n\n\
         Each cell: the style's server CPU time per echoed message (its cgroup's, over the measured window) \
         divided by epoll's in the same round, median (min–max over the rounds), and the style's own µs per \
         message. Below 1 is leaner. No targets: this is the figure that ranks the styles whether or not a run \
         was server-bound.\n"
    );
    crate::report::cost::cost_vs_reference(s, view, &styles, &CONNS, SIZE);
}

fn polling_table(s: &mut String, view: &View) {
    let rows: Vec<(String, &RunResult)> = view
        .styles()
        .into_iter()
        .filter(|st| st == "polling" || st.starts_with("polling:"))
        .filter_map(|st| view.idle_run(&st).map(|r| (st, r)))
        .collect();
    let Some((_, first)) = rows.first() else {
        return;
    };
    let _ = writeln!(
        s,
        "### polling: CPU against latency at {} idle connections\n",
        thousands(first.spec.idle)
    );
    let quota = rows
        .iter()
        .find_map(|(_, r)| crate::report::cost::cgroup(r).and_then(|c| c.cpu_quota));
    let _ = writeln!(
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
    let _ = writeln!(
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
        let _ = writeln!(
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
        let _ = writeln!(
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
            let _ = write!(
                s,
                ", {} inconclusive (the range over the repeats straddles the target)",
                self.inconclusive
            );
        }
        if self.reported > 0 {
            let _ = write!(s, ", {} reported without a target", self.reported);
        }
        s.push('.');
        s
    }
}

/// How the servers were held to their CPU and how often each cell ran, in
/// one sentence: what makes a ratio here the servers' and not loadgen's.
pub fn setup_sentence(results: &CompareResults) -> String {
    let quota = match &results.cgroup {
        Some(cg) if cg.made_by == "docker" => match cg.cpu_quota {
            Some(q) => format!("Each server ran in its container with a CPU quota of {q} CPU."),
            None => "Each server ran in its container without a CPU quota.".into(),
        },
        Some(cg) if cg.used => match cg.cpu_quota {
            Some(q) => format!(
                "Each server ran in a cgroup of its own ({}) with a CPU quota of {q} CPU ({} ms CFS period), so \
                 that loadgen, with a whole CPU, is not the limit: a run is server-bound when its server used its \
                 whole quota and loadgen stayed under 90% busy.",
                cg.version.as_deref().unwrap_or("?"),
                cg.period_us / 1000
            ),
            None => format!(
                "Each server ran in a cgroup of its own ({}) without a CPU quota: with one CPU each, loadgen and \
                 a lean server saturate together, so read throughput with its client-bound marks.",
                cg.version.as_deref().unwrap_or("?")
            ),
        },
        Some(cg) => format!(
            "**No CPU quota and no cgroups**: {}. Throughput ratios between lean styles are then noise around \
             loadgen's own limit.",
            cg.note.as_deref().unwrap_or("cgroups unavailable")
        ),
        None => "Servers ran without cgroups (results from before them).".into(),
    };
    let rounds = if results.repeat > 1 {
        format!(
            " Every cell was measured {} times, round by round over the styles; ratios are paired with epoll's of \
             the same round, shown as median (min–max), and a target is met only if every round met it \
             (inconclusive where the range straddles it).",
            results.repeat
        )
    } else {
        " Every cell was measured once (--repeat 1): no spread is known.".into()
    };
    let unquoted: Vec<&str> = results
        .servers
        .iter()
        .filter(|s| s.cgroup.is_some() && s.cpu_quota.is_none() && s.repeat == 0)
        .map(|s| s.style.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let except = if unquoted.is_empty()
        || results
            .cgroup
            .as_ref()
            .is_none_or(|c| c.cpu_quota.is_none())
    {
        String::new()
    } else {
        format!(
            " Without a quota: {} (see their table).",
            unquoted.join(", ")
        )
    };
    quota + &except + &rounds
}

/// perf.md: the tables with a heading and what they are.
pub fn markdown(results: &CompareResults) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# c10k-echo perf: every style against epoll in the same run\n"
    );
    let _ = writeln!(
        s,
        "Profile {}; servers pinned to CPU(s) {:?}, loadgen to CPU(s) {:?}; {:.0} s in all. Targets: the `TARGETS` \
         table in loadgen/src/perf.rs. Pass and miss are reported, never asserted: timings on a shared machine \
         move by a third from run to run, so nothing fails on them.\n",
        results.profile, results.server_cpus, results.client_cpus, results.elapsed_s
    );
    let _ = writeln!(s, "{}\n", setup_sentence(results));
    s.push_str(&tables(results));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::results::{Tags, record};

    fn fixture() -> CompareResults {
        serde_json::from_str(include_str!("../../tests/fixtures/compare-smoke.json"))
            .expect("fixture parses")
    }

    /// A made-up closed-loop run of `style` at `conns` (64 B): `rate` msg/s,
    /// `served` of its connections answered, client-bound or not.
    fn scale_run(
        template: &RunResult,
        style: &str,
        conns: usize,
        rate: f64,
        served: usize,
        client_bound: bool,
    ) -> RunResult {
        let mut r = template.clone();
        r.tags = Some(Tags {
            style: style.into(),
            scenario: "scale".into(),
            point: format!("conns={conns} size={SIZE}"),
            repeat: 0,
        });
        r.label = Some(format!("{style}/scale/conns={conns}"));
        r.spec.conns = conns;
        r.spec.idle = 0;
        r.spec.size = SIZE;
        r.throughput_msgs_per_s = rate;
        r.messages = (rate * 3.0) as u64;
        r.client.client_bound = client_bound;
        r.connect.established = conns as u64;
        r.errors = Default::default();
        r.histograms.first_reply = Default::default();
        for _ in 0..served {
            record(&mut r.histograms.first_reply.0, Duration::from_micros(100));
        }
        r.conns_unserved = (conns - served) as u64;
        r.refresh_derived();
        r
    }

    fn idle_run(template: &RunResult, style: &str, idle: usize, per_conn: f64) -> RunResult {
        let mut r = template.clone();
        r.tags = Some(Tags {
            style: style.into(),
            scenario: "idle".into(),
            point: format!("idle={idle} active={IDLE_ACTIVE}"),
            repeat: 0,
        });
        r.spec.idle = idle;
        r.spec.conns = IDLE_ACTIVE;
        if let Some(sv) = r.server.as_mut() {
            sv.rss_per_conn_bytes = per_conn;
        }
        r
    }

    /// Made-up perf results: `runs` of (style, conns, msg/s, served,
    /// client-bound), and idle runs of (style, bytes per connection).
    fn made_up(scale: &[(&str, usize, f64, usize, bool)], idle: &[(&str, f64)]) -> CompareResults {
        let mut f = fixture();
        let scale_template = f
            .runs
            .iter()
            .find(|r| r.tags.as_ref().is_some_and(|t| t.scenario == "scale"))
            .unwrap()
            .clone();
        let idle_template = f
            .runs
            .iter()
            .find(|r| r.tags.as_ref().is_some_and(|t| t.scenario == "idle"))
            .unwrap()
            .clone();
        f.profile = "perf".into();
        f.styles = Vec::new();
        f.servers = Vec::new();
        f.runs = Vec::new();
        let add_style = |f: &mut CompareResults, st: &str| {
            if !f.styles.iter().any(|s| s == st) {
                f.styles.push(st.to_string());
            }
        };
        for &(st, conns, rate, served, bound) in scale {
            add_style(&mut f, st);
            f.runs
                .push(scale_run(&scale_template, st, conns, rate, served, bound));
        }
        for &(st, per) in idle {
            add_style(&mut f, st);
            f.runs.push(idle_run(&idle_template, st, IDLE, per));
        }
        f
    }

    fn target(style: &str) -> &'static Target {
        TARGETS.iter().find(|t| t.style == style).unwrap()
    }

    #[test]
    fn ratios_pass_miss_and_client_bound() {
        let f = made_up(
            &[
                ("epoll", 50, 100_000.0, 50, false),
                ("epoll", 1000, 80_000.0, 1000, true),
                ("epoll", 10_000, 60_000.0, 10_000, false),
                ("reactor", 50, 96_000.0, 50, false),
                ("reactor", 1000, 70_000.0, 1000, true),
                ("tasks:current_thread", 50, 85_000.0, 50, false),
                ("tasks:multi_thread", 50, 92_000.0, 50, true),
                ("uring", 50, 105_000.0, 50, false),
                ("threads", 50, 50_000.0, 50, false),
                ("threads", 10_000, 30_000.0, 9_900, false),
            ],
            &[],
        );
        let v = View::new(&f);

        // 0.96 against ≥ 0.95: pass.
        let c = ratio_cell(&v, target("reactor"), 0);
        assert_eq!(c.verdict, Verdict::Pass);
        assert!((c.best_point().unwrap().ratio - 0.96).abs() < 1e-9);
        assert!(c.text().contains("0.96 ≥ 0.95: pass"), "{}", c.text());
        // 0.875 against ≥ 0.95, in a client-bound run (and epoll's too).
        let c = ratio_cell(&v, target("reactor"), 1);
        assert_eq!(c.verdict, Verdict::Miss);
        assert!(c.client_bound() && c.reference_client_bound);
        assert!(c.text().contains("miss"), "{}", c.text());
        assert!(
            c.text().contains("client-bound: loadgen saturated"),
            "{}",
            c.text()
        );
        assert!(c.text().contains("epoll client-bound"), "{}", c.text());
        // A ratio that rounds to its target shows a third decimal.
        let near = made_up(
            &[
                ("epoll", 50, 100_000.0, 50, false),
                ("reactor", 50, 94_700.0, 50, false),
            ],
            &[],
        );
        let c = ratio_cell(&View::new(&near), target("reactor"), 0);
        assert_eq!(c.verdict, Verdict::Miss);
        assert!(
            c.text().starts_with("0.947 ≥ 0.95: **miss**"),
            "{}",
            c.text()
        );
        // Not run at 10,000.
        let c = ratio_cell(&v, target("reactor"), 2);
        assert_eq!(c.verdict, Verdict::NoData("not run".into()));

        // tasks: the best of its two variants is judged (0.92, multi_thread),
        // both are kept, and the judged one was client-bound.
        let c = ratio_cell(&v, target("tasks"), 0);
        assert_eq!(c.points.len(), 2);
        let best = c.best_point().unwrap();
        assert_eq!(best.variant, "tasks:multi_thread");
        assert_eq!(c.verdict, Verdict::Pass);
        assert!(c.client_bound());
        assert!(c.text().contains("(multi_thread)"), "{}", c.text());
        assert!(c.text().contains("client-bound"), "{}", c.text());

        // uring 1.05 against ≥ 1.1, not client-bound: a plain miss.
        let c = ratio_cell(&v, target("uring"), 0);
        assert_eq!(c.verdict, Verdict::Miss);
        assert!(!c.client_bound());
        assert!(!c.text().contains("client-bound"), "{}", c.text());

        // threads: reported at 50; at 10,000 it left 100 connections
        // without a reply, so it did not hold every one.
        let c = ratio_cell(&v, target("threads"), 0);
        assert_eq!(c.verdict, Verdict::Reported);
        assert!(c.text().starts_with("0.50"), "{}", c.text());
        let c = ratio_cell(&v, target("threads"), 2);
        assert_eq!(c.verdict, Verdict::Miss);
        assert!(c.text().contains("held 9,900 of 10,000"), "{}", c.text());

        // Coroutines did not run at all.
        let c = ratio_cell(&v, target("coroutines"), 0);
        assert!(c.points.is_empty());
        assert!(matches!(c.verdict, Verdict::NoData(_)));

        // No epoll: nothing to judge against.
        let no_ref = made_up(&[("reactor", 50, 96_000.0, 50, false)], &[]);
        let c = ratio_cell(&View::new(&no_ref), target("reactor"), 0);
        assert_eq!(
            c.verdict,
            Verdict::NoData("no epoll run to compare with".into())
        );
    }

    #[test]
    fn threads_holding_every_connection_passes() {
        let f = made_up(
            &[
                ("epoll", 10_000, 60_000.0, 10_000, false),
                ("threads", 10_000, 30_000.0, 10_000, true),
            ],
            &[],
        );
        let c = ratio_cell(&View::new(&f), target("threads"), 2);
        assert_eq!(c.verdict, Verdict::Pass);
        assert!(
            c.text()
                .contains("0.50; held all 10,000: pass (client-bound)"),
            "{}",
            c.text()
        );
    }

    #[test]
    fn memory_limits() {
        let f = made_up(
            &[],
            &[
                ("epoll", 300.0),
                ("reactor", 2100.0),
                ("tasks:current_thread", 5000.0),
                ("tasks:multi_thread", 3900.0),
                ("coroutines", 33.0 * 1024.0),
                ("threads", 10_000.0),
            ],
        );
        let v = View::new(&f);
        assert_eq!(memory_cell(&v, target("epoll")).verdict, Verdict::Pass);
        assert_eq!(memory_cell(&v, target("reactor")).verdict, Verdict::Miss);
        let tasks = memory_cell(&v, target("tasks"));
        assert_eq!(tasks.points.len(), 2);
        assert_eq!(
            tasks.verdict,
            Verdict::Pass,
            "the smaller variant is judged"
        );
        // Exactly the stack plus 1 KiB is within the limit.
        assert_eq!(memory_cell(&v, target("coroutines")).verdict, Verdict::Pass);
        assert_eq!(
            memory_cell(&v, target("threads")).verdict,
            Verdict::Reported
        );
        assert!(matches!(
            memory_cell(&v, target("uring")).verdict,
            Verdict::NoData(_)
        ));
    }

    #[test]
    fn thousands_separates() {
        assert_eq!(thousands(50), "50");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(10_000), "10,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn every_target_names_known_variants() {
        for t in TARGETS {
            for v in t.variants {
                crate::compare::variant::Variant::parse(v).unwrap();
            }
        }
        for st in crate::compare::profile::perf::STYLES {
            crate::compare::variant::Variant::parse(st).unwrap();
        }
    }
}
