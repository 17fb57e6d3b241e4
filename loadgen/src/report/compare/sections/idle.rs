//! report.md's `idle` section: memory and CPU of holding many idle
//! connections beside a few active ones, and a reading.

use servers::Style;

use super::mark;
use super::scale_reading::and_list;
use crate::compare::model::Scenario;
use crate::report::compare::context::scenario_quota;
use crate::report::compare::rank::{Told, by_margin, chain_by, conns_failed, told};
use crate::report::cost::{cgroup, idle_memory_cell};
use crate::report::md::{put, putln};
use crate::report::view::Spread;
use crate::report::view::View;
use crate::results::RunResult;
use crate::results::fmt_us;

/// How far apart two memory figures measured once must be to be ranked.
const MEMORY_MARGIN: f64 = 1.25;

pub fn section(s: &mut String, v: &View) {
    let rows = v.per_style(|st| v.idle_run(st));
    let Some((_, first)) = rows.first() else {
        return;
    };
    let quota = scenario_quota(v.results(), Scenario::Idle)
        .map(|q| {
            let capped = if q.contains("under the CPU quota") {
                " Memory does not depend on it; the CPU column is capped by it."
            } else {
                ""
            };
            format!("{q}{capped}\n\n")
        })
        .unwrap_or_default();
    let same = rows
        .iter()
        .all(|(_, r)| r.spec.idle == first.spec.idle && r.spec.conns == first.spec.conns);
    if same {
        putln!(
            s,
            "## idle: {} idle connections + {} active at a light rate\n\n{quota}",
            first.spec.idle,
            first.spec.conns
        );
        putln!(
            s,
            "| style | server memory per connection | with the kernel's (cgroup) | peak memory | server CPU | active p99 (corrected) | errors |\n|---|---:|---:|---:|---:|---:|---|"
        );
    } else {
        putln!(
            s,
            "## idle: idle connections + a few active at a light rate\n\n{quota}\
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
        putln!(
            s,
            "| {st} |{counts} {per} | {} | {peak} | {cpu} | {p99}{} | {} |",
            idle_memory_cell(r),
            mark(r),
            r.errors.describe()
        );
    }
    s.push('\n');
    putln!(
        s,
        "Server memory per connection: user space (RSS, or PSS over the process tree for a server that forks) \
         above the server's listening baseline. With the kernel's: everything charged to the server's cgroup \
         (its pages and the kernel's sockets, buffers, epoll items, stacks) at the end of the window, less the \
         cgroup's charge before the first connection; the part in brackets is the kernel's alone. That is the \
         C10K cost of a connection; user-space RSS alone misses most of it. For a server in a container the \
         first column is already its container's cgroup charge (as the Docker API reports it, the kernel's \
         included), which is then all there is.\n"
    );
    super::idle_kernel::table(s, v);
    let cpu = |st: &str| {
        v.idle_run(st)
            .and_then(|r| r.server.as_ref())
            .map(|sv| sv.cpu_percent)
    };
    // With the kernel's share where every style has it, else user space.
    let with_kernel = rows
        .iter()
        .all(|(_, r)| cgroup(r).is_some_and(|c| c.memory_per_conn_bytes.is_some()));
    // Containers: the sampled figure is the container's cgroup charge.
    let containers = rows.iter().all(|(_, r)| {
        r.server
            .as_ref()
            .is_some_and(|sv| sv.memory_measure == "cgroup")
    });
    // KiB per connection, over the rounds; failed runs never rank.
    let mut mem = Vec::new();
    let mut left = Vec::new();
    for (st, r) in &rows {
        let bytes = |r: &RunResult| {
            if with_kernel {
                cgroup(r).and_then(|c| c.memory_per_conn_bytes)
            } else {
                r.server.as_ref().map(|sv| sv.rss_per_conn_bytes)
            }
        };
        if v.repeats(r).iter().any(|r| conns_failed(r)) {
            left.push(st.clone());
        } else if let Some(sp) = v.spread(r, |r| bytes(r).map(|b| b / 1024.0)) {
            mem.push((st.clone(), sp));
        }
    }
    put!(s, "**Reading.** ");
    let tell = |a: &Spread, b: &Spread| told(a, b, MEMORY_MARGIN);
    let once = mem.iter().any(|(_, sp)| sp.n < 2);
    if let Some(text) = chain_by(mem, 2, "held a connection in more memory than", tell) {
        put!(
            s,
            "Memory per connection ({}; {}): {text}. ",
            if with_kernel {
                "the kernel's share included"
            } else if containers {
                "its container's cgroup charge, the kernel's share included"
            } else {
                "user space only"
            },
            if once {
                format!("measured once, a difference under {MEMORY_MARGIN}× is not told apart")
            } else {
                "ranked where the rounds' ranges do not overlap".into()
            }
        );
    }
    if !left.is_empty() {
        put!(
            s,
            "Not ranked: {}, failed (errors, or connections never served). ",
            and_list(&left)
        );
    }
    for (st, r) in &rows {
        if let Some((served, total)) = r.served()
            && served < total
        {
            put!(
                s,
                "{st}: {} of its {total} active connections never got a reply while the {} idle ones were held \
                 (a style that gives each connection a worker until it closes runs out of workers when idle \
                 connections hold them; one that forks per connection may not have reached them yet). ",
                total - served,
                r.spec.idle
            );
        }
    }
    // A style that spins over every socket against one woken by epoll.
    let (polling, reactor) = (Style::Polling.name(), Style::Reactor.name());
    if let (Some(p), Some(r)) = (cpu(polling), cpu(reactor)) {
        // Measured once: only a gap of over twice (and 5 points) counts.
        let verdict = if by_margin(p, r * 2.0 + 5.0, 1.0)
            == (Told::Separated { first_higher: true })
        {
            format!(
                "{polling} keeps asking every idle socket whether it is ready, and pays for it in CPU; epoll only \
                 wakes the {reactor} for sockets that are"
            )
        } else {
            format!(
                "{polling} and {reactor} were not told apart (measured once, a gap under twice is not \
                 claimed)"
            )
        };
        put!(
            s,
            "With the same light traffic {polling} used {p:.0}% of a CPU and {reactor} {r:.0}%: {verdict}."
        );
    }
    s.push_str("\n\n");
}
