//! report.md's `idle` section: memory and CPU of holding many idle
//! connections beside a few active ones, and a reading.

use servers::Style;

use super::{ends, mark, ranked};
use crate::report::cost::{cgroup, idle_memory_cell};
use crate::report::md::{put, putln};
use crate::report::view::View;
use crate::results::fmt_us;

pub fn section(s: &mut String, v: &View) {
    let rows = v.per_style(|st| v.idle_run(st));
    let Some((_, first)) = rows.first() else {
        return;
    };
    let same = rows
        .iter()
        .all(|(_, r)| r.spec.idle == first.spec.idle && r.spec.conns == first.spec.conns);
    if same {
        putln!(
            s,
            "## idle: {} idle connections + {} active at a light rate\n",
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
    let mem = ranked(v, |st| {
        v.idle_run(st).and_then(|r| {
            let cg = cgroup(r).and_then(|c| c.memory_per_conn_bytes);
            let bytes = if with_kernel {
                cg
            } else {
                r.server.as_ref().map(|sv| sv.rss_per_conn_bytes)
            };
            bytes.map(|b| (b / 1024.0, r))
        })
    });
    put!(s, "**Reading.** ");
    if let Some((hi, lo)) = ends(&mem) {
        put!(
            s,
            "Holding a connection cost {} the most memory ({:.1} KiB each{}) and {} the least ({:.1} KiB). ",
            hi.0,
            hi.1,
            if with_kernel {
                ", the kernel's share included"
            } else if containers {
                ", its container's cgroup charge, the kernel's share included"
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
        let verdict = if p > r * 2.0 + 5.0 {
            format!(
                "{polling} keeps asking every idle socket whether it is ready, and pays for it in CPU; epoll only \
                 wakes the {reactor} for sockets that are"
            )
        } else {
            format!("in this run {polling}'s spinning did not stand out against the {reactor}")
        };
        put!(
            s,
            "With the same light traffic {polling} used {p:.0}% of a CPU and {reactor} {r:.0}%: {verdict}."
        );
    }
    s.push_str("\n\n");
}
