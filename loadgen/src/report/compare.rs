//! `report.md` of a comparison: the environment, one table per scenario
//! with every style, the knee of each style, the runs to distrust, and a
//! plain-language reading of each table written from the numbers measured.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::compare::model::CompareResults;
use crate::report::charts::Chart;
use crate::report::fmt_us;
use crate::results::RunResult;

/// p99 above which a style is taken to have stopped serving well.
pub const KNEE_P99_US: u64 = 10_000;

/// The style every other one's throughput is a ratio to: the raw-epoll
/// server, the in-project stand-in for the machine's limit.
pub const REFERENCE: &str = "epoll";

/// Looks runs up by style, scenario and point. With `--repeat N` each
/// point was measured N times: lookups give the median run (by
/// throughput), and [`View::repeats`] all of them.
pub struct View<'a> {
    results: &'a CompareResults,
    /// One run per (style, scenario, point): the median of its repeats.
    medians: Vec<&'a RunResult>,
}

/// A figure's median over the repeats, with its range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Repeats it was measured in.
    pub n: usize,
}

impl Spread {
    /// Of the values given (None when there are none).
    pub fn of(mut values: Vec<f64>) -> Option<Spread> {
        values.retain(|v| v.is_finite());
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: values[0],
            max: values[n - 1],
            n,
        })
    }

    /// "0.97 (0.93–1.02)" with `digits` decimals; the median alone when
    /// measured once.
    pub fn text(&self, digits: usize) -> String {
        let same =
            format!("{:.d$}", self.min, d = digits) == format!("{:.d$}", self.max, d = digits);
        if self.n > 1 && !same {
            format!(
                "{:.d$} ({:.d$}–{:.d$})",
                self.median,
                self.min,
                self.max,
                d = digits
            )
        } else {
            format!("{:.d$}", self.median, d = digits)
        }
    }
}

fn key(r: &RunResult) -> Option<(&str, &str, &str)> {
    r.tags
        .as_ref()
        .map(|t| (t.style.as_str(), t.scenario.as_str(), t.point.as_str()))
}

/// Where a style stops scaling.
#[derive(Clone, Debug, PartialEq)]
pub struct Knee {
    /// The connection count with the highest throughput.
    pub peak_conns: usize,
    pub peak_rate: f64,
    /// The first connection count whose p99 passed 10 ms, if any.
    pub p99_over_10ms_at: Option<usize>,
}

impl<'a> View<'a> {
    pub fn new(results: &'a CompareResults) -> Self {
        let mut medians = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for r in &results.runs {
            let Some(k) = key(r) else { continue };
            if !seen.insert(k) {
                continue;
            }
            let mut reps: Vec<&RunResult> =
                results.runs.iter().filter(|o| key(o) == Some(k)).collect();
            // The lower median: with an even count, the slower of the two.
            reps.sort_by(|a, b| a.throughput_msgs_per_s.total_cmp(&b.throughput_msgs_per_s));
            medians.push(reps[(reps.len() - 1) / 2]);
        }
        View { results, medians }
    }

    /// Every repeat of `r`'s point (r included), in round order.
    pub fn repeats(&self, r: &RunResult) -> Vec<&'a RunResult> {
        let mut v: Vec<&RunResult> = self
            .results
            .runs
            .iter()
            .filter(|o| key(o) == key(r))
            .collect();
        v.sort_by_key(|o| o.tags.as_ref().map(|t| t.repeat));
        v
    }

    /// Rounds in this comparison.
    pub fn rounds(&self) -> u32 {
        self.results.repeat.max(1)
    }

    /// A figure of `style` at a scale point, over the repeats; with
    /// `per_reference`, each repeat's figure divided by epoll's in the same
    /// round (a paired ratio: drift between rounds cancels).
    pub fn scale_spread(
        &self,
        style: &str,
        conns: usize,
        size: usize,
        per_reference: bool,
        figure: impl Fn(&RunResult) -> Option<f64>,
    ) -> Option<Spread> {
        let r = self.scale_point(style, conns, size)?;
        let reps = self.repeats(r);
        let reference = if per_reference {
            self.scale_point(REFERENCE, conns, size)
                .map(|e| self.repeats(e))
        } else {
            None
        };
        let values = reps
            .iter()
            .filter(|r| r.messages > 0)
            .filter_map(|r| {
                let x = figure(r)?;
                if !per_reference {
                    return Some(x);
                }
                let round = r.tags.as_ref().map(|t| t.repeat);
                let e = reference
                    .as_ref()?
                    .iter()
                    .find(|e| e.tags.as_ref().map(|t| t.repeat) == round && e.messages > 0)?;
                let y = figure(e)?;
                (y > 0.0).then(|| x / y)
            })
            .collect();
        Spread::of(values)
    }

    pub fn styles(&self) -> Vec<String> {
        self.results.styles.clone()
    }

    pub fn runs(&self, style: &str, scenario: &str) -> Vec<&'a RunResult> {
        self.medians
            .iter()
            .copied()
            .filter(|r| {
                r.tags
                    .as_ref()
                    .is_some_and(|t| t.style == style && t.scenario == scenario)
            })
            .collect()
    }

    fn all_scale(&self) -> impl Iterator<Item = &'a RunResult> {
        self.medians
            .iter()
            .copied()
            .filter(|r| r.tags.as_ref().is_some_and(|t| t.scenario == "scale"))
    }

    pub fn scale_sizes(&self) -> Vec<usize> {
        self.all_scale()
            .map(|r| r.spec.size)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    pub fn scale_conns(&self) -> Vec<usize> {
        self.all_scale()
            .map(|r| r.spec.conns)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    pub fn scale_points(&self, style: &str, size: usize) -> Vec<&'a RunResult> {
        let mut v: Vec<_> = self
            .runs(style, "scale")
            .into_iter()
            .filter(|r| r.spec.size == size)
            .collect();
        v.sort_by_key(|r| r.spec.conns);
        v
    }

    pub fn scale_point(&self, style: &str, conns: usize, size: usize) -> Option<&'a RunResult> {
        self.scale_points(style, size)
            .into_iter()
            .find(|r| r.spec.conns == conns)
    }

    pub fn idle_run(&self, style: &str) -> Option<&'a RunResult> {
        self.runs(style, "idle").into_iter().next()
    }

    pub fn churn_run(&self, style: &str) -> Option<&'a RunResult> {
        self.runs(style, "churn").into_iter().next()
    }

    pub fn open_runs(&self, style: &str) -> Vec<&'a RunResult> {
        self.runs(style, "open")
            .into_iter()
            .filter(|r| {
                r.tags
                    .as_ref()
                    .is_some_and(|t| !t.point.starts_with("probe"))
            })
            .collect()
    }

    pub fn fairness_light(&self, style: &str) -> Option<&'a RunResult> {
        self.runs(style, "fairness")
            .into_iter()
            .find(|r| r.tags.as_ref().is_some_and(|t| t.point != "heavy"))
    }

    pub fn fairness_heavy(&self, style: &str) -> Option<&'a RunResult> {
        self.runs(style, "fairness")
            .into_iter()
            .find(|r| r.tags.as_ref().is_some_and(|t| t.point == "heavy"))
    }

    /// Server CPU milliseconds per 10k messages at the largest connection
    /// count of the smallest size (from the cgroup where there is one, else
    /// from the /proc samples).
    pub fn cpu_ms_per_10k(&self, style: &str) -> Option<f64> {
        let size = *self.scale_sizes().first()?;
        let r = self
            .scale_points(style, size)
            .into_iter()
            .rev()
            .find(|r| r.messages > 0)?;
        // The cgroup's exact figure where the server ran in one.
        if let Some(us) = crate::report::cost::cpu_us_per_msg(r) {
            return Some(us * 10.0);
        }
        let sv = r.server.as_ref()?;
        Some(sv.cpu_percent / 100.0 * r.measured_s * 1000.0 / r.messages as f64 * 10_000.0)
    }

    /// Whether epoll ran and has scale runs of `size`.
    pub fn has_reference(&self, size: usize) -> bool {
        self.results.styles.iter().any(|s| s == REFERENCE)
            && self
                .scale_points(REFERENCE, size)
                .iter()
                .any(|r| r.messages > 0)
    }

    /// `style`'s throughput at a scale point as a ratio to epoll's at the
    /// same point in this run.
    /// (The median of the paired ratios over the repeats.)
    pub fn vs_reference(&self, style: &str, conns: usize, size: usize) -> Option<f64> {
        self.vs_reference_spread(style, conns, size)
            .map(|s| s.median)
    }

    /// As [`View::vs_reference`], with its range over the repeats.
    pub fn vs_reference_spread(&self, style: &str, conns: usize, size: usize) -> Option<Spread> {
        self.scale_spread(style, conns, size, true, |r| Some(r.throughput_msgs_per_s))
    }

    pub fn knee(&self, style: &str, size: usize) -> Option<Knee> {
        let pts = self.scale_points(style, size);
        let peak = pts
            .iter()
            .filter(|r| r.messages > 0)
            .max_by(|a, b| a.throughput_msgs_per_s.total_cmp(&b.throughput_msgs_per_s))?;
        Some(Knee {
            peak_conns: peak.spec.conns,
            peak_rate: peak.throughput_msgs_per_s,
            p99_over_10ms_at: pts
                .iter()
                .find(|r| r.messages == 0 || r.latency_us.p99 > KNEE_P99_US)
                .map(|r| r.spec.conns),
        })
    }
}

/// Messages per second, compactly.
pub fn fmt_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Marks a figure the results do not have (written before it existed).
const NO_DATA: &str = "—";

/// First-reply p99 of a run: "no reply" when more than 1% of the
/// connections that asked never got one (the p99 is then among them).
fn first_reply_p99(r: &RunResult) -> String {
    match r.served() {
        None => NO_DATA.into(),
        Some((served, total)) if (total - served) * 100 > total => "no reply".into(),
        Some(_) => fmt_us(r.first_reply_us.p99),
    }
}

/// Connections with a reply of those that asked: "all", or "16/1000".
fn served_cell(r: &RunResult) -> String {
    match r.served() {
        None => NO_DATA.into(),
        Some((served, total)) if served == total => "all".into(),
        Some((served, total)) => format!("{served}/{total}"),
    }
}

fn mark(r: &RunResult) -> &'static str {
    if !r.outcome.ok {
        " ✗"
    } else if r.client.client_bound {
        " †"
    } else if crate::report::cost::server_bound(r) {
        " ‡"
    } else {
        ""
    }
}

/// The whole report.
pub fn markdown(results: &CompareResults, charts: &[Chart]) -> String {
    let v = View::new(results);
    let mut s = String::new();
    let e = &results.environment;
    let _ = writeln!(s, "# c10k-echo comparison ({} profile)\n", results.profile);
    if results.server_cpus.is_empty() {
        let _ = writeln!(
            s,
            "Servers: {}, one style at a time where loadgen started them; loadgen ran on CPU(s) {:?} and reached \
             them over the {} network. Compare styles within this report as ratios: run-to-run noise on a shared \
             machine is large.\n",
            results.server_command, results.client_cpus, results.network
        );
    } else {
        let _ = writeln!(
            s,
            "Every style ran as its own server process pinned to CPU(s) {:?}; loadgen ran pinned to CPU(s) {:?}. \
             Compare styles within this report as ratios: run-to-run noise on a shared machine is large.\n",
            results.server_cpus, results.client_cpus
        );
    }
    let _ = writeln!(s, "| machine | |\n|---|---|");
    let _ = writeln!(s, "| kernel | {} |", e.kernel);
    let _ = writeln!(s, "| CPU | {} x {} |", e.cores, e.cpu_model);
    let _ = writeln!(
        s,
        "| loadgen | {} (git {}) |",
        e.loadgen_version, e.git_revision
    );
    let _ = writeln!(s, "| open-files limit | {} |", e.fd_limit);
    let _ = writeln!(
        s,
        "| net.core.somaxconn | {} |",
        e.somaxconn
            .map(|v| v.to_string())
            .unwrap_or_else(|| "?".into())
    );
    if let Some([one, five, fifteen]) = e.load_average {
        let _ = writeln!(
            s,
            "| load average before the run | {one:.2} {five:.2} {fifteen:.2} |"
        );
    }
    let _ = writeln!(s, "| servers run by | `{}` |", results.server_command);
    if !results.network.is_empty() {
        let _ = writeln!(s, "| network | {} |", results.network);
    }
    let sources: BTreeSet<&str> = results
        .runs
        .iter()
        .filter_map(|r| r.server.as_ref().map(|sv| sv.source.as_str()))
        .collect();
    let sources: Vec<&str> = sources.into_iter().collect();
    let any_tree = results.runs.iter().any(|r| {
        r.server
            .as_ref()
            .is_some_and(|sv| sv.memory_measure == "pss_tree")
    });
    let _ = writeln!(
        s,
        "| server figures from | {} |",
        if sources.is_empty() {
            "not measured (no /proc access to the servers and no Docker API)".to_string()
        } else {
            sources
                .iter()
                .map(|src| match *src {
                    "procfs" if any_tree => "procfs (the server process: RSS, CPU, threads, fds, context switches; for \
                        a server that forks, its whole process tree: memory is PSS summed over the server and its \
                        descendants, so pages shared copy-on-write count once, CPU includes reaped children)",
                    "procfs" => "procfs (the server process: RSS, CPU, threads, fds, context switches)",
                    "docker-api" => "the Docker API (the container's cgroup: memory without page cache incl. kernel memory, CPU, pids)",
                    other => other,
                })
                .collect::<Vec<_>>()
                .join("; ")
        }
    );
    s.push_str(&crate::report::cost::setup_rows(results));
    let _ = writeln!(s, "| took | {:.0} s |\n", results.elapsed_s);
    let _ = writeln!(
        s,
        "Marks: ✗ the run failed (errors, see the end); † loadgen itself was the bottleneck (client-bound): \
         that figure is loadgen's limit, not the server's; ‡ server-bound: the server used its whole CPU quota \
         while loadgen had room, so the figure is the server's. Unmarked: neither was saturated (a latency- or \
         wake-up-bound run, e.g. one connection).\n"
    );
    servers_section(&mut s, results);
    if crate::report::perf::applies(results) {
        let _ = writeln!(
            s,
            "## perf: every style against epoll and its targets

The targets are the `TARGETS` table in \
             loadgen/src/perf.rs; pass and miss are reported, never asserted (the same tables are in perf.md).\n"
        );
        s.push_str(&crate::report::perf::tables(results));
    }
    scale_section(&mut s, &v);
    idle_section(&mut s, &v);
    open_section(&mut s, &v);
    churn_section(&mut s, &v);
    fairness_section(&mut s, &v);
    if !charts.is_empty() {
        let _ = writeln!(s, "## Charts\n");
        for c in charts {
            let _ = writeln!(s, "![{}]({})\n", c.title, c.file);
        }
    }
    trust_section(&mut s, results);
    s
}

fn servers_section(s: &mut String, results: &CompareResults) {
    let _ = writeln!(
        s,
        "## Servers\n\n| style | phase | started | stopped cleanly | summary / problem |\n|---|---|---|---|---|"
    );
    for r in &results.servers {
        let mut detail = match (&r.problem, &r.summary) {
            (Some(p), _) => format!("**{p}**"),
            (None, Some(sum)) => format!("`{sum}`"),
            (None, None) => String::new(),
        };
        if !r.args.is_empty() {
            detail = format!("flags `{}`; {detail}", r.args.join(" "));
        }
        if r.cgroup.is_some() && r.cpu_quota.is_none() {
            detail = format!("no CPU quota; {detail}");
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            r.style,
            r.phase,
            if r.started { "yes" } else { "**no**" },
            if r.stopped_cleanly {
                "yes"
            } else if r.managed_by == "none" {
                "n/a (not started by loadgen)"
            } else {
                "**no**"
            },
            detail
        );
    }
    s.push('\n');
}

fn scale_section(s: &mut String, v: &View) {
    let conns = v.scale_conns();
    if conns.is_empty() {
        return;
    }
    let _ = writeln!(s, "## scale: closed-loop throughput against connections\n");
    let _ = writeln!(
        s,
        "Each cell: messages/s (p99 round trip). Closed loop: every connection sends its next message when the \
         reply is back. First reply: from a connection's first message to its first echo (\"no reply\" when \
         more than 1% of the connections never got one); served: connections that got a reply, of those that \
         sent (— where the results do not record it).\n"
    );
    let sizes = v.scale_sizes();
    if !sizes.iter().any(|&size| v.has_reference(size)) {
        let _ = writeln!(
            s,
            "{REFERENCE}, the raw-epoll reference, {} in this run, so no throughput ratios to it are shown.\n",
            if v.styles().iter().any(|st| st == REFERENCE) {
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
        .filter(|st| {
            !v.runs(st, "scale").is_empty()
                || v.results
                    .runs
                    .iter()
                    .all(|r| r.tags.as_ref().is_none_or(|t| &t.style != st))
        })
        .collect();
    for size in sizes {
        let _ = write!(s, "### {size} B messages\n\n| style |");
        for c in &conns {
            let _ = write!(s, " {c} conn{} |", if *c == 1 { "" } else { "s" });
        }
        let _ = write!(
            s,
            " first reply p99 at {most} conns | served | knee |\n|---|"
        );
        for _ in &conns {
            s.push_str("---:|");
        }
        s.push_str("---:|---|---|\n");
        for style in &styles {
            let style = style.clone();
            let _ = write!(s, "| {style} |");
            for &c in &conns {
                match v.scale_point(&style, c, size) {
                    Some(r) => {
                        let _ = write!(
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
            let _ = write!(s, " {first} | {} |", scale_served(v, &style, size));
            match v.knee(&style, size) {
                Some(k) => {
                    let p99 = match k.p99_over_10ms_at {
                        Some(c) => format!("p99 > 10 ms from {c} conns"),
                        None => "p99 under 10 ms throughout".into(),
                    };
                    let _ = writeln!(
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
        crate::report::cost::cost_tables(s, v, size);
    }
}

/// The scale table again as ratios to epoll's msg/s at the same point.
fn vs_reference_table(s: &mut String, v: &View, styles: &[String], size: usize, conns: &[usize]) {
    if !v.has_reference(size) {
        return;
    }
    let _ = write!(
        s,
        "**vs {REFERENCE}, {size} B**: each style's messages/s divided by {REFERENCE}'s at the same connection \
         count in this run († client-bound: that style's figure is loadgen's limit).\n\n| style |"
    );
    conns_header(s, conns);
    for style in styles {
        let _ = write!(s, "| {style} |");
        for &c in conns {
            match (
                v.vs_reference_spread(style, c, size),
                v.scale_point(style, c, size),
            ) {
                (Some(ratio), Some(r)) => {
                    let _ = write!(s, " {}{} |", ratio.text(2), mark(r));
                }
                _ => s.push_str(" – |"),
            }
        }
        s.push('\n');
    }
    s.push('\n');
}

/// The rest of a table's header after "| style |": a right-aligned column
/// per connection count.
pub fn conns_header(s: &mut String, conns: &[usize]) {
    for c in conns {
        let _ = write!(s, " {c} conn{} |", if *c == 1 { "" } else { "s" });
    }
    s.push_str("\n|---|");
    for _ in conns {
        s.push_str("---:|");
    }
    s.push('\n');
}

/// The best and worst ratio to epoll among the other styles, over every
/// connection count of `size`: (style, conns, ratio) each.
type RatioAt = (String, usize, f64);
pub fn reference_extremes(v: &View, size: usize) -> Option<(RatioAt, RatioAt)> {
    let mut all: Vec<RatioAt> = Vec::new();
    for st in v.styles().into_iter().filter(|st| st != REFERENCE) {
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

fn ranked<'a>(
    v: &View<'a>,
    mut f: impl FnMut(&str) -> Option<(f64, &'a RunResult)>,
) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = v
        .styles()
        .iter()
        .filter_map(|st| {
            f(st)
                .filter(|(_, r)| r.messages > 0)
                .map(|(x, _)| (st.clone(), x))
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

fn scale_reading(s: &mut String, v: &View, size: usize, conns: &[usize]) {
    let Some(&most) = conns.last() else { return };
    let at_most = ranked(v, |st| {
        v.scale_point(st, most, size)
            .map(|r| (r.throughput_msgs_per_s, r))
    });
    let _ = write!(s, "**Reading.** ");
    if v.has_reference(size)
        && let Some((best, worst)) = reference_extremes(v, size)
    {
        let _ = write!(
            s,
            "Against {REFERENCE} in this run the best ratio was {}'s {:.2} at {} conns and the worst {}'s {:.2} at \
             {} conns. ",
            best.0, best.2, best.1, worst.0, worst.2, worst.1
        );
    }
    if let (Some(best), Some(worst)) = (at_most.first(), at_most.last())
        && at_most.len() > 1
    {
        let _ = write!(
            s,
            "At {most} connections {} led with {}/s and {} was last with {}/s ({:.1}x apart). ",
            best.0,
            fmt_rate(best.1),
            worst.0,
            fmt_rate(worst.1),
            best.1 / worst.1.max(1e-9)
        );
    }
    if let (Some(t), Some(r)) = (
        v.scale_point("threads", most, size),
        v.scale_point("reactor", most, size),
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
        let _ = write!(
            s,
            "threads did {}/s (p99 {}) against reactor's {}/s (p99 {}), {verdict}. ",
            fmt_rate(t.throughput_msgs_per_s),
            fmt_us(t.latency_us.p99),
            fmt_rate(r.throughput_msgs_per_s),
            fmt_us(r.latency_us.p99)
        );
    }
    if let Some(&fewest) = conns.first() {
        let at_one = ranked(v, |st| {
            v.scale_point(st, fewest, size)
                .map(|r| (r.throughput_msgs_per_s, r))
        });
        if let (Some(hi), Some(lo)) = (at_one.first(), at_one.last())
            && at_one.len() > 1
        {
            let _ = write!(
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

fn idle_section(s: &mut String, v: &View) {
    let rows: Vec<(String, &RunResult)> = v
        .styles()
        .into_iter()
        .filter_map(|st| v.idle_run(&st).map(|r| (st, r)))
        .collect();
    let Some((_, first)) = rows.first() else {
        return;
    };
    let same = rows
        .iter()
        .all(|(_, r)| r.spec.idle == first.spec.idle && r.spec.conns == first.spec.conns);
    if same {
        let _ = writeln!(
            s,
            "## idle: {} idle connections + {} active at a light rate\n",
            first.spec.idle, first.spec.conns
        );
        let _ = writeln!(
            s,
            "| style | server memory per connection | with the kernel's (cgroup) | peak memory | server CPU | active p99 (corrected) | errors |\n|---|---:|---:|---:|---:|---:|---|"
        );
    } else {
        let _ = writeln!(
            s,
            "## idle: idle connections + a few active at a light rate\n\n\
             | style | idle + active | server memory per connection | with the kernel's (cgroup) | peak memory | server CPU | active p99 (corrected) | errors |\n|---|---:|---:|---:|---:|---:|---:|---|"
        );
    }
    for (st, r) in &rows {
        let (per, peak, cpu) = match &r.server {
            Some(sv) => (
                format!("{:.1} KiB", sv.rss_per_conn_bytes / 1024.0),
                format!(
                    "{:.1} MiB{}",
                    sv.peak_rss_bytes as f64 / 1048576.0,
                    match sv.memory_measure.as_str() {
                        "pss_tree" =>
                            format!(" (PSS, {} processes)", sv.peak_processes.unwrap_or(0)),
                        "cgroup" => " (cgroup)".into(),
                        _ => " (RSS)".into(),
                    }
                ),
                format!("{:.0}%", sv.cpu_percent),
            ),
            None => ("–".into(), "–".into(), "–".into()),
        };
        let p99 = if r.messages == 0 {
            "no reply".to_string()
        } else {
            fmt_us(r.latency_us.p99)
        };
        let counts = if same {
            String::new()
        } else {
            format!(" {} + {} |", r.spec.idle, r.spec.conns)
        };
        let _ = writeln!(
            s,
            "| {st} |{counts} {per} | {} | {peak} | {cpu} | {p99}{} | {} |",
            crate::report::cost::idle_memory_cell(r),
            mark(r),
            r.errors.describe()
        );
    }
    s.push('\n');
    let _ = writeln!(
        s,
        "Server memory per connection: user space (RSS, or PSS over the process tree for a server that forks) \
         above the server's listening baseline. With the kernel's: everything charged to the server's cgroup \
         (its pages and the kernel's sockets, buffers, epoll items, stacks) at the end of the window, less the \
         cgroup's charge before the first connection; the part in brackets is the kernel's alone. That is the \
         C10K cost of a connection; user-space RSS alone misses most of it.\n"
    );
    let cpu = |st: &str| {
        v.idle_run(st)
            .and_then(|r| r.server.as_ref())
            .map(|sv| sv.cpu_percent)
    };
    // With the kernel's share where every style has it, else user space.
    let with_kernel = rows.iter().all(|(_, r)| {
        crate::report::cost::cgroup(r).is_some_and(|c| c.memory_per_conn_bytes.is_some())
    });
    let mem = ranked(v, |st| {
        v.idle_run(st).and_then(|r| {
            let cg = crate::report::cost::cgroup(r).and_then(|c| c.memory_per_conn_bytes);
            let bytes = if with_kernel {
                cg
            } else {
                r.server.as_ref().map(|sv| sv.rss_per_conn_bytes)
            };
            bytes.map(|b| (b / 1024.0, r))
        })
    });
    let _ = write!(s, "**Reading.** ");
    if let (Some(hi), Some(lo)) = (mem.first(), mem.last())
        && mem.len() > 1
    {
        let _ = write!(
            s,
            "Holding a connection cost {} the most memory ({:.1} KiB each{}) and {} the least ({:.1} KiB). ",
            hi.0,
            hi.1,
            if with_kernel {
                ", the kernel's share included"
            } else {
                ", user space only"
            },
            lo.0,
            lo.1
        );
    }
    for (st, r) in &rows {
        if let Some((served, total)) = r.served()
            && served < total
        {
            let _ = write!(
                s,
                "{st}: {} of its {total} active connections never got a reply while the {} idle ones were held \
                 (a style that gives each connection a worker until it closes runs out of workers when idle \
                 connections hold them; one that forks per connection may not have reached them yet). ",
                total - served,
                r.spec.idle
            );
        }
    }
    if let (Some(p), Some(r)) = (cpu("polling"), cpu("reactor")) {
        let verdict = if p > r * 2.0 + 5.0 {
            "polling keeps asking every idle socket whether it is ready, and pays for it in CPU; epoll only wakes the reactor for sockets that are"
        } else {
            "in this run polling's spinning did not stand out against the reactor"
        };
        let _ = write!(
            s,
            "With the same light traffic polling used {p:.0}% of a CPU and reactor {r:.0}%: {verdict}."
        );
    }
    s.push_str("\n\n");
}

fn open_section(s: &mut String, v: &View) {
    let any = v.styles().iter().any(|st| !v.open_runs(st).is_empty());
    if !any {
        return;
    }
    let _ = writeln!(
        s,
        "## open: constant rate at fractions of each style's maximum\n"
    );
    let _ = writeln!(
        s,
        "Latency counted from each message's intended send time (corrected) beside the actual send (raw).\n\n\
         | style | rate | achieved | corrected p50 | corrected p99 | corrected p99.9 | raw p99 |\n|---|---|---:|---:|---:|---:|---:|"
    );
    for st in v.styles() {
        for r in v.open_runs(&st) {
            let point = r.tags.as_ref().map(|t| t.point.clone()).unwrap_or_default();
            let raw = r
                .latency_raw_us
                .as_ref()
                .map(|p| fmt_us(p.p99))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "| {st} | {point} | {}/s{} | {} | {} | {} | {raw} |",
                fmt_rate(r.throughput_msgs_per_s),
                mark(r),
                fmt_us(r.latency_us.p50),
                fmt_us(r.latency_us.p99),
                fmt_us(r.latency_us.p999)
            );
        }
    }
    s.push('\n');
    let gaps = ranked(v, |st| {
        let r = v.open_runs(st).into_iter().last()?;
        let raw = r.latency_raw_us.as_ref()?.p99.max(1) as f64;
        Some((r.latency_us.p99 as f64 / raw, r))
    });
    let _ = write!(s, "**Reading.** ");
    if let Some((st, ratio)) = gaps.first() {
        let _ = write!(
            s,
            "At the highest rate the widest gap between corrected and raw p99 was for {st} ({ratio:.1}x): that gap is \
             time messages spent waiting to be sent while the server was behind, which a closed-loop client never \
             records. "
        );
    }
    if let Some((st, ratio)) = gaps.last()
        && gaps.len() > 1
    {
        let _ = write!(s, "The narrowest was for {st} ({ratio:.1}x).");
    }
    s.push_str("\n\n");
}

fn churn_section(s: &mut String, v: &View) {
    let rows: Vec<(String, &RunResult)> = v
        .styles()
        .into_iter()
        .filter_map(|st| v.churn_run(&st).map(|r| (st, r)))
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "## churn: connect, echo one message, close\n\n| style | connections/s | connect p99 | echo p99 | first reply p99 | served | errors |\n|---|---:|---:|---:|---:|---:|---|"
    );
    for (st, r) in &rows {
        let _ = writeln!(
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
    if let (Some(hi), Some(lo)) = (ranks.first(), ranks.last())
        && ranks.len() > 1
    {
        let _ = write!(
            s,
            "\n**Reading.** {} set up connections fastest ({}/s), {} slowest ({}/s)",
            hi.0,
            fmt_rate(hi.1),
            lo.0,
            fmt_rate(lo.1)
        );
        if let Some(t) = ranks.iter().find(|(st, _)| st == "threads") {
            let _ = write!(
                s,
                "; threads, which starts an OS thread per connection, did {}/s ({:.0}% of the fastest)",
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

fn fairness_section(s: &mut String, v: &View) {
    let rows: Vec<(String, &RunResult)> = v
        .styles()
        .into_iter()
        .filter_map(|st| v.fairness_light(&st).map(|r| (st, r)))
        .collect();
    let Some((_, first)) = rows.first() else {
        return;
    };
    let _ = writeln!(
        s,
        "## fairness: {} light connections beside one CPU-heavy connection\n",
        first.spec.conns
    );
    let _ = writeln!(
        s,
        "The server burns CPU for every chunk it reads (`--work-us`); the heavy connection sends large messages \
         back to back, the light ones ping on a fixed schedule.\n\n\
         | style | light p50 | light p99 | light max | light longest stall | heavy msg/s |\n|---|---:|---:|---:|---:|---:|"
    );
    for (st, r) in &rows {
        let heavy = v
            .fairness_heavy(st)
            .map(|h| format!("{:.0}", h.throughput_msgs_per_s))
            .unwrap_or_else(|| "–".into());
        if r.messages == 0 {
            let _ = writeln!(
                s,
                "| {st} | no reply | no reply{} | no reply | {:.1} ms (all of it) | {heavy} |",
                mark(r),
                r.fairness.longest_stall_ms
            );
            continue;
        }
        let _ = writeln!(
            s,
            "| {st} | {} | {}{} | {} | {:.1} ms | {heavy} |",
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
    let _ = write!(s, "**Reading.** ");
    for st in v.styles() {
        if starved(&st) {
            let _ = write!(
                s,
                "{st}: not one light reply in the whole measured window: the heavy connection never gave up its \
                 worker, and every other connection on it starved. "
            );
        }
    }
    if let Some(t) = p99("threads") {
        let _ = write!(
            s,
            "threads' light clients saw p99 {}: the kernel preempts the busy thread. ",
            fmt_us(t as u64)
        );
        for coop in ["tasks", "coroutines", "reactor", "polling"] {
            if let Some(c) = p99(coop) {
                let ratio = c / t.max(1.0);
                let verdict = if ratio >= 3.0 {
                    "the heavy connection held the CPU until it yielded and the light ones waited"
                } else if ratio <= 1.0 / 3.0 {
                    "better than threads in this run"
                } else {
                    "close to threads in this run"
                };
                let _ = write!(
                    s,
                    "{coop}: {} ({ratio:.1}x threads), {verdict}. ",
                    fmt_us(c as u64)
                );
            }
        }
    } else {
        s.push_str("No threads run to compare against.");
    }
    s.push_str("\n\n");
}

fn trust_section(s: &mut String, results: &CompareResults) {
    let bound: Vec<&RunResult> = results
        .runs
        .iter()
        .filter(|r| r.client.client_bound)
        .collect();
    let failed: Vec<&RunResult> = results.runs.iter().filter(|r| !r.outcome.ok).collect();
    let stretched: Vec<(&RunResult, String)> = results
        .runs
        .iter()
        .filter_map(|r| Some((r, crate::report::sampling_note(r.server.as_ref()?)?)))
        .collect();
    let _ = writeln!(s, "## Runs to read with care\n");
    if bound.is_empty() {
        let _ = writeln!(s, "No run was client-bound.\n");
    } else {
        let _ = writeln!(
            s,
            "Client-bound (loadgen's busiest thread over 90% busy):\n"
        );
        for r in bound {
            let _ = writeln!(
                s,
                "- {}: {:.0}% busy",
                r.label.as_deref().unwrap_or("run"),
                r.client.busy_max * 100.0
            );
        }
        s.push('\n');
    }
    if !stretched.is_empty() {
        let _ = writeln!(
            s,
            "Server figures sampled less often than every 100 ms (reading a large process tree from /proc \
             costs CPU on loadgen's side, so it is spaced out to stay within budget; peaks may be missed):\n"
        );
        for (r, note) in stretched {
            let _ = writeln!(s, "- {}: {note}", r.label.as_deref().unwrap_or("run"));
        }
        s.push('\n');
    }
    if failed.is_empty() {
        let _ = writeln!(s, "No run failed.");
    } else {
        let _ = writeln!(s, "Failed runs:\n");
        for r in failed {
            let _ = writeln!(
                s,
                "- {}: {}",
                r.label.as_deref().unwrap_or("run"),
                r.outcome.reasons.join("; ")
            );
        }
    }
}
