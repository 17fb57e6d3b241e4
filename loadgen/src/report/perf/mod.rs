//! The `perf` profile's report: every style against `epoll` (the raw-epoll
//! reference, the in-project stand-in for the machine's limit) in the same
//! run, judged against the targets in [`targets`], the one place they live;
//! [`cells`] judges one style at one point and [`tables`](mod@tables) lays
//! them out.
//!
//! `loadgen compare --profile perf` runs `profile::perf::STYLES`: each
//! through `idle` (10,000 idle connections: memory per connection) and
//! `scale` (closed loop, 64 B, at `profile::perf::CONNS`); the `polling` variants through `idle` alone at
//! 1,000 idle connections, to show what `--poll-sleep-us` trades: CPU for
//! the latency of the few active connections. Then [`markdown`] writes the
//! verdicts into perf.md and report.md and onto stdout.
//!
//! Pass and miss are reported, never asserted: on a shared machine a
//! timing moves by a third from one run to the next, so no exit code or
//! test depends on them.

pub mod cells;
pub mod tables;
pub mod targets;

pub use cells::{MemoryCell, Point, RatioCell, memory_cell, ratio_cell, thousands};
pub use tables::tables;
pub use targets::{
    CLIENT_EFFICIENCY_CONNS, CLIENT_EFFICIENCY_MIN_RATIO, Goal, TARGETS, Target, Verdict,
};

use crate::compare::model::CompareResults;
use crate::report::md::putln;
use crate::report::view::View;

/// Whether `results` come from a profile whose report has the perf tables.
pub fn applies(results: &CompareResults) -> bool {
    crate::compare::profile::Profile::named(&results.profile).is_some_and(|p| p.perf_tables)
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
            " Every cell was measured {} times, round by round over the styles; each round's ratio is to {}, \
             shown as median (min–max), and a target is met only if every round met it (inconclusive where the \
             range straddles it).",
            results.repeat,
            View::new(results).reference_words()
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
    quota + &except + &View::new(results).side_by_side_words() + &rounds
}

/// perf.md: the tables with a heading and what they are.
pub fn markdown(results: &CompareResults) -> String {
    let mut s = String::new();
    putln!(
        s,
        "# c10k-echo perf: every style against epoll in the same run\n"
    );
    putln!(
        s,
        "Profile {}; servers pinned to CPU(s) {:?}, loadgen to CPU(s) {:?}; {:.0} s in all. Targets: the `TARGETS` \
         table in loadgen/src/report/perf/targets.rs. Pass and miss are reported, never asserted: timings on a shared machine \
         move by a third from run to run, so nothing fails on them.\n",
        results.profile,
        results.server_cpus,
        results.client_cpus,
        results.elapsed_s
    );
    putln!(s, "{}\n", setup_sentence(results));
    s.push_str(&tables(results));
    s
}
