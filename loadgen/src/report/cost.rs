//! What each server cost, from its own cgroup: CPU time per echoed message
//! (exact, counted by the kernel over the measured window) and memory per
//! connection with the kernel's share; and how the comparison was set up
//! to make those figures the server's (its CPU quota, the repeats).
//!
//! The report's scale tables show throughput; the tables under each of
//! them ([`cost_tables`]) show cost. Throughput ranks the styles where the
//! runs had a quota and loadgen was not the limit; CPU per message only
//! where both sides were server-bound (the server used its whole quota,
//! loadgen had room): a server that is not saturated wakes up per message
//! and pays more per message than one that batches, so cost depends on who
//! was the limit too.

use crate::compare::model::{CgroupSetup, CompareResults};
use crate::report::md::{conns_header, kib, put, putln};
use crate::report::view::{View, reference};
use crate::results::RunResult;
use crate::results::server::CgroupStats;

/// The server's cgroup figures of a run, when it ran in one.
pub fn cgroup(r: &RunResult) -> Option<&CgroupStats> {
    r.server.as_ref()?.cgroup.as_ref()
}

/// Server CPU µs per message of a run (from its cgroup).
pub fn cpu_us_per_msg(r: &RunResult) -> Option<f64> {
    cgroup(r)?.cpu_us_per_msg
}

/// The share of its CPU quota the server used over the measured window
/// (its cgroup's CPU time over quota × window), where it had a quota.
pub fn quota_used(r: &RunResult) -> Option<f64> {
    let cg = cgroup(r)?;
    let (quota, cpu_s) = (cg.cpu_quota?, cg.cpu_s?);
    let used = cpu_s / (quota * r.measured_s);
    (r.measured_s > 0.0 && used.is_finite()).then_some(used)
}

/// Whether a run was server-bound: the server used at least 90% of what
/// its quota allowed and loadgen was not saturated.
pub fn server_bound(r: &RunResult) -> bool {
    !r.client.client_bound && quota_used(r).is_some_and(|u| u >= 0.9)
}

/// The report's lines on how servers ran: for the machine table.
pub fn setup_rows(results: &CompareResults) -> String {
    let mut s = String::new();
    match &results.cgroup {
        Some(cg) if cg.made_by == "docker" => {
            let quota = quota_each(cg, "").unwrap_or_else(|| "none".into());
            putln!(
                s,
                "| server cgroups | the containers' own (made by Docker); CPU quota read from them: {quota}{} |",
                cg.note
                    .as_deref()
                    .map(|n| format!("; {n}"))
                    .unwrap_or_default()
            );
        }
        Some(cg) if cg.used => {
            let quota = quota_each(cg, ", so that loadgen has more CPU than the server")
                .unwrap_or_else(|| "no quota (`--server-cpu-quota`)".into());
            let sockets = match (cg.socket_accounting, cg.version.as_deref()) {
                (Some(true), Some("v1")) => {
                    "; socket accounting: on (`memory.kmem.tcp.limit_in_bytes` written before each server \
                     joined, so the accepted socket is charged)"
                }
                (Some(true), _) => "; socket accounting: on (always, on v2)",
                (Some(false), _) => {
                    "; socket accounting: **off** (the kernel's share leaves out the socket itself)"
                }
                (None, _) => "",
            };
            putln!(
                s,
                "| server cgroups | one per server (cgroup {}), removed after it stopped; CPU quota: {quota}{sockets} |",
                cg.version.as_deref().unwrap_or("?")
            );
        }
        Some(cg) => {
            putln!(
                s,
                "| server cgroups | **not used**: {} |",
                cg.note.as_deref().unwrap_or("unavailable")
            );
        }
        None => {}
    }
    if let Some(note) = results
        .cgroup
        .as_ref()
        .filter(|c| c.used)
        .and_then(|c| c.note.as_ref())
    {
        putln!(s, "| cgroup note | {note} |");
    }
    let pairs = View::new(results).side_by_side_words();
    if let Some(text) = pairs.trim().strip_prefix("**Side by side:**") {
        putln!(s, "| side by side |{text} |");
    }
    if results.repeat > 1 {
        // The default profile repeats only its scale points.
        let repeated: std::collections::BTreeSet<&str> = results
            .runs
            .iter()
            .filter_map(|r| r.tags.as_ref())
            .filter(|t| t.repeat > 0)
            .map(|t| t.scenario.as_str())
            .collect();
        let what = if repeated.iter().all(|sc| *sc == "scale") {
            "of the scale points (the figures that rank the styles; the other scenarios ran once)"
        } else {
            "of every scenario"
        };
        putln!(
            s,
            "| repeats | {} rounds {what}, every style in each round before the next; each cell is the median, ranges are min–max, and each round's ratio is to {} |",
            results.repeat,
            View::new(results).reference_words()
        );
    }
    s
}

/// "0.5 CPU each (CFS bandwidth, 100 ms period)" and `why`, when the
/// servers had a quota.
fn quota_each(cg: &CgroupSetup, why: &str) -> Option<String> {
    let q = cg.cpu_quota?;
    Some(format!(
        "{q} CPU each (CFS bandwidth, {} ms period){why}",
        cg.period_us / 1000
    ))
}

/// The idle table's cell: memory per connection charged to the server's
/// cgroup, and the kernel's part of it.
pub fn idle_memory_cell(r: &RunResult) -> String {
    let in_container = r
        .server
        .as_ref()
        .is_some_and(|sv| sv.memory_measure == "cgroup");
    match cgroup(r) {
        // Sampled through the Docker API: the first column is already the
        // container's cgroup charge, the kernel's included.
        None if in_container => "as the first column (the container's cgroup)".into(),
        None => "– (no cgroup)".into(),
        Some(cg) => {
            let total = cg
                .memory_per_conn_bytes
                .map(kib)
                .unwrap_or_else(|| "–".into());
            let kernel = match cg.kernel_per_conn_bytes {
                Some(k) => kib(k),
                None => "not measured".into(),
            };
            format!("{total} (kernel {kernel})")
        }
    }
}

/// The scale runs' cost table: server CPU µs per message, and its ratio
/// to epoll's (lower is leaner), with ranges over the repeats. Whether the
/// ratio table was written (the scale section's cost reading follows it).
pub fn cost_tables(s: &mut String, v: &View, size: usize) -> bool {
    let conns = v.scale_conns();
    let styles: Vec<String> = v
        .styles()
        .into_iter()
        .filter(|st| {
            v.scale_points(st, size)
                .iter()
                .any(|r| cpu_us_per_msg(r).is_some())
        })
        .collect();
    if styles.is_empty() {
        return false;
    }
    putln!(
        s,
        "**Server CPU per message, {size} B**: CPU time of the server's cgroup (every thread and process, user + system) over the measured window, \
         divided by the messages echoed in it, in µs: counted by the kernel, not sampled. It ranks the styles \
         only where both were server-bound (‡: the server used its whole CPU quota in every round and loadgen \
         had room); elsewhere it is shown but not ranked, since a server that is not saturated wakes up for \
         each message and pays more per message than one that batches. † client-bound.\n"
    );
    s.push_str("| style |");
    conns_header(s, &conns);
    for st in &styles {
        put!(s, "| {st} |");
        for &c in &conns {
            let cell = v.scale_point(st, c, size).and_then(|r| {
                let sp = v.scale_spread(st, c, size, false, cpu_us_per_msg)?;
                Some(format!("{} µs{}", sp.text(2), bound_mark_over(v, r)))
            });
            put!(s, " {} |", cell.unwrap_or_else(|| "–".into()));
        }
        s.push('\n');
    }
    s.push('\n');
    if !v.has_reference(size) {
        return false;
    }
    let reference = reference();
    putln!(
        s,
        "**Cost vs {reference}**: each style's CPU per message divided by {} \
         (below 1: leaner than the raw-epoll server).\n",
        v.reference_words()
    );
    cost_vs_reference(s, v, &styles, &conns, size);
    true
}

/// The table of CPU per message as a ratio to epoll's (median and range
/// over the rounds), one row per style and a column per connection count.
pub fn cost_vs_reference(
    s: &mut String,
    v: &View,
    styles: &[String],
    conns: &[usize],
    size: usize,
) {
    s.push_str("| style |");
    conns_header(s, conns);
    for st in styles {
        put!(s, "| {st} |");
        for &c in conns {
            let ratio = v.scale_spread(st, c, size, true, cpu_us_per_msg);
            let own = v.scale_spread(st, c, size, false, cpu_us_per_msg);
            match (ratio, own) {
                (Some(sp), Some(own)) => {
                    put!(s, " {} ({:.2} µs) |", sp.text(2), own.median);
                }
                _ => s.push_str(" – |"),
            }
        }
        s.push('\n');
    }
    s.push('\n');
}

/// A cell's mark for who was the bottleneck over every round of its
/// point: † where loadgen was in any round, ‡ where the server was in all.
pub fn bound_mark_over(v: &View, r: &RunResult) -> &'static str {
    let reps = v.repeats(r);
    let mark = if reps.iter().any(|r| r.client.client_bound) {
        " †"
    } else if !reps.is_empty() && reps.iter().all(|r| server_bound(r)) {
        " ‡"
    } else {
        ""
    };
    with_disturbed(reps.iter().any(|r| r.disturbed), mark)
}

/// The mark of a run measured while other work ran on its CPUs (more
/// foreign load than [`crate::probe::foreign::DISTURBED_SHARE`]): shown in
/// every table its figure is in, and never ranked.
pub const DISTURBED_MARK: &str = " ⚠";

/// `mark` with [`DISTURBED_MARK`] before it where `disturbed`.
pub fn with_disturbed(disturbed: bool, mark: &'static str) -> &'static str {
    match (disturbed, mark) {
        (false, m) => m,
        (true, " †") => " ⚠ †",
        (true, " ‡") => " ⚠ ‡",
        (true, " ✗") => " ⚠ ✗",
        (true, _) => DISTURBED_MARK,
    }
}

/// A run's mark for who was the bottleneck: † loadgen, ‡ the server.
pub fn bound_mark(r: &RunResult) -> &'static str {
    let mark = if r.client.client_bound {
        " †"
    } else if server_bound(r) {
        " ‡"
    } else {
        ""
    };
    with_disturbed(r.disturbed, mark)
}
