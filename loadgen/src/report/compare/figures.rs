//! The figures the report's opening reads per style, each over the rounds
//! where it has them ([`Spread`]), with whether it may rank: cost per
//! message against epoll, what a connection holds, set-up rate, a light
//! connection's wait beside a heavy one, the kernel's counts. The trade-off
//! table ([`super::tradeoffs`]) and the claims ([`super::claims`]) read the
//! same figures from here, so the two can never disagree.

use servers::Style;

use crate::report::compare::rank::{Left, conns_failed, scale_left};
use crate::report::cost::{cgroup, cpu_us_per_msg};
use crate::report::view::{Spread, View, reference};
use crate::results::RunResult;
use crate::results::server::{CountedOn, KernelCounts};

/// A figure, and why it may not rank if it may not.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub spread: Spread,
    pub left: Option<Left>,
}

impl Figure {
    /// The figure where it may rank.
    pub fn ranked(&self) -> Option<Spread> {
        self.left.is_none().then_some(self.spread)
    }
}

/// The connection counts the opening speaks of: a low one (the smallest
/// above 1, where batching starts), a high one (the one below the largest)
/// and the largest of the scale scenario.
pub fn points(v: &View) -> Vec<usize> {
    let conns = v.scale_conns();
    let (Some(&first), Some(&largest)) = (conns.first(), conns.last()) else {
        return Vec::new();
    };
    let low = conns.iter().copied().find(|&c| c > 1).unwrap_or(first);
    let high = conns.len().checked_sub(2).map(|i| conns[i]);
    let mut out = vec![low];
    out.extend(high.filter(|&h| h > low));
    if largest > low {
        out.push(largest);
    }
    out
}

/// The message size the opening reads: the smallest the scale ran (the
/// per-message costs are most the style's there, least the copy's).
pub fn size(v: &View) -> Option<usize> {
    v.scale_sizes().first().copied()
}

/// The style a row of the results runs, where it is one of ours (a variant
/// "tasks:current_thread" is its style; an external server is none).
pub fn style_of(v: &View, name: &str) -> Option<Style> {
    if v.is_external(name) {
        return None;
    }
    Style::from_name(name.split(':').next().unwrap_or(name))
}

/// Server CPU per message over epoll's beside it, over the rounds (epoll's
/// own row: exactly 1), with whether it may rank.
pub fn cost_ratio(v: &View, style: &str, conns: usize, size: usize) -> Option<Figure> {
    let r = v.scale_point(style, conns, size)?;
    let left = scale_left(v, r, true);
    if style == reference() {
        let own = v.scale_spread(style, conns, size, false, cpu_us_per_msg)?;
        let one = Spread {
            median: 1.0,
            min: 1.0,
            max: 1.0,
            n: own.n,
        };
        return Some(Figure { spread: one, left });
    }
    let spread = v.scale_spread(style, conns, size, true, cpu_us_per_msg)?;
    Some(Figure { spread, left })
}

/// Server CPU µs per message, over the rounds.
pub fn cost_us(v: &View, style: &str, conns: usize, size: usize) -> Option<Spread> {
    v.scale_spread(style, conns, size, false, cpu_us_per_msg)
}

/// The share of connections served at a scale point, over the rounds (the
/// lowest round counts: a round that left connections unserved failed).
pub fn served(v: &View, style: &str, conns: usize, size: usize) -> Option<(u64, u64)> {
    let r = v.scale_point(style, conns, size)?;
    v.repeats(r)
        .iter()
        .filter_map(|r| r.served())
        .min_by(|a, b| (a.0 * b.1).cmp(&(b.0 * a.1)))
}

/// p99 round trip at a scale point, µs over the rounds (failed rounds may
/// not rank, nor those where loadgen was the limit).
pub fn p99(v: &View, style: &str, conns: usize, size: usize) -> Option<Figure> {
    p99_over(&v.repeats(v.scale_point(style, conns, size)?), true)
}

/// p99 over `reps` (the rounds of one point): not ranked where a round
/// failed, or, with `client_counts`, where loadgen was the limit in one.
fn p99_over(reps: &[&RunResult], client_counts: bool) -> Option<Figure> {
    let spread = Spread::of(
        reps.iter()
            .filter(|r| r.messages > 0)
            .map(|r| r.latency_us.p99 as f64)
            .collect(),
    )?;
    let left = if reps.iter().any(|r| conns_failed(r)) {
        Some(Left::Failed)
    } else if reps.iter().any(|r| r.disturbed) {
        Some(Left::Disturbed)
    } else if client_counts && reps.iter().any(|r| r.client.client_bound) {
        Some(Left::ClientBound)
    } else {
        None
    };
    Some(Figure { spread, left })
}

/// The most threads and processes the server had at a scale point.
pub fn threads_processes(
    v: &View,
    style: &str,
    conns: usize,
    size: usize,
) -> Option<(u64, Option<u64>)> {
    let r = v.scale_point(style, conns, size)?;
    let sv = r.server.as_ref()?;
    Some((sv.peak_threads, sv.peak_processes))
}

/// What the kernel counted for a run.
pub fn kernel(r: &RunResult) -> Option<&KernelCounts> {
    r.server.as_ref()?.kernel.as_ref()
}

/// How the kernel's counters were attached, each way once, over every run.
pub fn counted_on(v: &View) -> Vec<CountedOn> {
    let mut ways = Vec::new();
    for r in &v.results().runs {
        if let Some(c) = kernel(r).and_then(|k| k.counted_on)
            && !ways.contains(&c)
        {
            ways.push(c);
        }
    }
    ways
}

/// System calls per message at a scale point over the rounds, or why they
/// were not counted.
pub fn syscalls(v: &View, style: &str, conns: usize, size: usize) -> Result<Spread, String> {
    counted(v, style, conns, size, |k| {
        (k.syscalls_per_msg, k.syscalls_unmeasured.clone())
    })
}

/// Context switches per message at a scale point over the rounds, or why
/// they were not counted.
pub fn switches(v: &View, style: &str, conns: usize, size: usize) -> Result<Spread, String> {
    counted(v, style, conns, size, |k| {
        (
            k.context_switches_per_msg,
            k.context_switches_unmeasured.clone(),
        )
    })
}

fn counted(
    v: &View,
    style: &str,
    conns: usize,
    size: usize,
    pick: impl Fn(&KernelCounts) -> (Option<f64>, Option<String>),
) -> Result<Spread, String> {
    let r = v
        .scale_point(style, conns, size)
        .ok_or_else(|| "not run".to_string())?;
    let mut why = None;
    let mut values = Vec::new();
    for rep in v.repeats(r) {
        match kernel(rep).map(&pick) {
            Some((Some(x), _)) => values.push(x),
            Some((None, reason)) => why = why.or(reason),
            None => why = why.or(Some("not counted by this loadgen".into())),
        }
    }
    Spread::of(values).ok_or_else(|| why.unwrap_or_else(|| "no message echoed".into()))
}

/// CFS throttled periods per message at a scale point, over the rounds:
/// each one deschedules the server's running threads, involuntary context
/// switches that are the quota's, not the style's.
pub fn throttles_per_msg(v: &View, style: &str, conns: usize, size: usize) -> Option<Spread> {
    v.scale_spread(style, conns, size, false, |r| {
        let periods = cgroup(r)?.throttled_periods?;
        (r.messages > 0).then(|| periods as f64 / r.messages as f64)
    })
}

/// Events per wake-up (per `epoll_wait`, per poll(2), completions per
/// `io_uring_enter`) of `style`'s servers at a scale point, over the
/// rounds, from their summary lines (a fresh server per point, so its whole
/// life is that point); None where the style does not count them.
pub fn events_per_wakeup(v: &View, style: &str, conns: usize, size: usize) -> Option<Spread> {
    let phase = format!("scale conns={conns} size={size}");
    Spread::of(
        v.results()
            .servers
            .iter()
            .filter(|s| s.style == style && s.phase == phase)
            .filter_map(|s| crate::results::server::events_per_wakeup(s.summary.as_deref()?))
            .collect(),
    )
}

/// Memory per idle connection charged to the server's cgroup and the
/// kernel's part of it, KiB (may not rank where the run failed).
pub fn idle_memory(v: &View, style: &str) -> Option<(Figure, Option<f64>)> {
    let r = v.idle_run(style)?;
    let cg = cgroup(r)?;
    let total = Spread::of(
        v.repeats(r)
            .iter()
            .filter_map(|r| cgroup(r)?.memory_per_conn_bytes)
            .map(|b| b / 1024.0)
            .collect(),
    )?;
    let reps = v.repeats(r);
    let left = if reps.iter().any(|r| conns_failed(r)) {
        Some(Left::Failed)
    } else if reps.iter().any(|r| r.disturbed) {
        Some(Left::Disturbed)
    } else {
        None
    };
    Some((
        Figure {
            spread: total,
            left,
        },
        cg.kernel_per_conn_bytes.map(|b| b / 1024.0),
    ))
}

/// Server CPU in the idle scenario, % of one core.
pub fn idle_cpu(v: &View, style: &str) -> Option<f64> {
    Some(v.idle_run(style)?.server.as_ref()?.cpu_percent)
}

/// Connections set up per second in churn (may not rank where the run
/// failed or loadgen was the limit).
pub fn setup_rate(v: &View, style: &str) -> Option<Figure> {
    let r = v.churn_run(style)?;
    let reps = v.repeats(r);
    let spread = Spread::of(reps.iter().map(|r| r.connect.rate_per_s).collect())?;
    let left = if reps.iter().any(|r| crate::report::compare::rank::broken(r)) {
        Some(Left::Failed)
    } else if reps.iter().any(|r| r.disturbed) {
        Some(Left::Disturbed)
    } else if reps.iter().any(|r| r.client.client_bound) {
        Some(Left::ClientBound)
    } else {
        None
    };
    Some(Figure { spread, left })
}

/// Light connections' p99 beside the CPU-heavy one, µs; None where the
/// light ones got no reply at all (starved).
pub fn light_p99(v: &View, style: &str) -> Option<Option<Figure>> {
    let r = v.fairness_light(style)?;
    if r.messages == 0 {
        return Some(None);
    }
    // Without a quota (fairness's servers) loadgen's busy share says
    // little of the light connections' wait: only failure leaves it out.
    Some(p99_over(&v.repeats(r), false))
}
