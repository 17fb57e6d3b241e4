//! report.md's `reach` section: the farthest step each style held and what
//! stopped it (named from evidence by [`crate::compare::wall`]), every step
//! with its figures, and a reading that extrapolates, on paper and said
//! so, to one million connections from the measured memory per connection
//! and the walls found. The chart of memory per connection against
//! connections held is `report::charts::reach`'s.

use std::time::Duration;

use crate::compare::model::{Scenario, ServerRecord};
use crate::compare::scenarios::reach::{held, idle_of};
use crate::compare::wall::{Verdict, Wall, classify, evidence};
use crate::report::md::putln;
use crate::report::view::View;
use crate::results::RunResult;
use crate::results::{fmt_us, thousands};

/// The objective where the results do not say (`quick`'s).
const DEFAULT_P99_MS: f64 = 100.0;

/// One million: the reading's target.
const MILLION: f64 = 1e6;

/// A style's steps in order and its verdict.
pub struct Ladder<'a> {
    pub style: String,
    pub steps: Vec<&'a RunResult>,
    /// The last step that held.
    pub farthest: Option<&'a RunResult>,
    pub verdict: Verdict,
}

/// The objective a step's active p99 was held to.
pub fn objective(v: &View) -> Duration {
    let ms = (v.results().scope.as_ref())
        .and_then(|s| s.reach_p99_ms)
        .unwrap_or(DEFAULT_P99_MS);
    Duration::from_secs_f64(ms / 1e3)
}

/// The server compare started for `style`'s reach, if it did.
fn server<'a>(v: &View<'a>, style: &str) -> Option<&'a ServerRecord> {
    (v.results().servers.iter()).find(|s| s.style == style && s.phase == Scenario::Reach.name())
}

/// Each style's ladder, in the report's order (styles without reach runs
/// left out).
pub fn ladders<'a>(v: &View<'a>) -> Vec<Ladder<'a>> {
    let objective = objective(v);
    v.styles()
        .into_iter()
        .filter_map(|style| {
            let mut steps = v.runs(&style, Scenario::Reach.name());
            if steps.is_empty() {
                return None;
            }
            steps.sort_by_key(|r| idle_of(r).unwrap_or(0));
            let farthest = steps
                .iter()
                .rev()
                .find(|r| held(r, objective).is_ok())
                .copied();
            let last = steps.last().copied()?;
            let verdict = classify(&evidence(last, server(v, &style), objective));
            Some(Ladder {
                style,
                steps,
                farthest,
                verdict,
            })
        })
        .collect()
}

/// Memory per connection of a step, bytes: the cgroup's (the kernel's
/// share included) where it was read, else the process's own.
pub fn per_conn(r: &RunResult) -> Option<f64> {
    let sv = r.server.as_ref()?;
    (sv.cgroup.as_ref())
        .and_then(|c| c.memory_per_conn_bytes)
        .or((sv.rss_per_conn_bytes > 0.0).then_some(sv.rss_per_conn_bytes))
}

fn kib(b: Option<f64>) -> String {
    b.map_or("—".into(), |b| format!("{:.1} KiB", b / 1024.0))
}

/// A step's fds against the open-files limit: counted exactly at its end
/// where read (with the most in one process where the server has several,
/// each with a limit of its own), else the samples' count.
fn fds(sv: Option<&crate::results::server::ServerStats>) -> String {
    let end = sv.and_then(|s| s.limits.as_ref());
    match end.map(|l| (l.fds, l.most_fds, l.most_fds_limit)) {
        Some((Some(all), Some(most), Some(lim))) if all != most => format!(
            "{} ({} in one process; limit {})",
            thousands(all as usize),
            thousands(most as usize),
            thousands(lim as usize)
        ),
        Some((Some(all), _, Some(lim))) => {
            format!("{} ({})", thousands(all as usize), thousands(lim as usize))
        }
        _ => match (sv.and_then(|s| s.peak_fds), sv.and_then(|s| s.fd_limit)) {
            (f, Some(lim)) => format!("{} ({})", opt(f), thousands(lim as usize)),
            (f, None) => opt(f),
        },
    }
}

/// The CPUs a step's server ran on, as the run read them ("?" where not).
fn cpus(r: &RunResult) -> String {
    r.environment
        .server_cpus
        .as_ref()
        .map_or("?".into(), |c| format!("{c:?}"))
}

fn opt(n: Option<u64>) -> String {
    n.map_or("—".into(), |n| thousands(n as usize))
}

pub fn section(s: &mut String, v: &View) {
    let ladders = ladders(v);
    if ladders.is_empty() {
        return;
    }
    let objective = objective(v);
    putln!(
        s,
        "## reach: idle connections in growing steps until a wall\n\n\
         Each style's own server, without a CPU quota and on CPUs {} (every CPU this comparison used, so that \
         each style takes the defaults it would take alone on this machine: prefork a worker per CPU, each \
         with an open-files limit of its own), held idle connections in growing steps with {} active \
         ones at a light open-loop rate beside them; a step holds when every connection was established, the run \
         had no errors and the active p99 stayed within {}. A style stops at its first step that does not hold, \
         and what stopped it is named from that step's evidence: the server's own log lines (an accept that \
         failed with EMFILE, a thread or process it could not start), its fds against its open-files limit, its \
         death, loadgen's own errors (then it is loadgen's wall, not the server's), connects timed out, the \
         p99.\n",
        cpus(ladders[0].steps[0]),
        ladders[0].steps[0].spec.conns,
        fmt_us(objective.as_micros() as u64)
    );
    putln!(
        s,
        "| style | farthest step held | memory per connection (cgroup, kernel's included) | stopped by | evidence | what moves it |\n|---|---:|---:|---|---|---|"
    );
    for l in &ladders {
        let far = l
            .farthest
            .map_or("none".into(), |r| thousands(r.spec.total_conns()));
        putln!(
            s,
            "| {} | {far} | {} | {} | {} | {} |",
            l.style,
            kib(l.farthest.and_then(per_conn)),
            l.verdict.wall.words(),
            l.verdict.evidence.replace('|', "/"),
            l.verdict.wall.knob()
        );
    }
    putln!(
        s,
        "\nEvery step (past one loadgen process's open-files limit a step is split over several client \
         processes, merged; its memory per connection is then that of the connections of the process that \
         sampled the server, on top of the others'):\n\n| style | idle + active | client processes | held | memory per connection | kernel's per connection | threads | processes | fds (limit) | active p99 | to open and accept | |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for l in &ladders {
        for r in &l.steps {
            let sv = r.server.as_ref();
            let fds = fds(sv);
            let kernel = sv
                .and_then(|s| s.cgroup.as_ref())
                .and_then(|c| c.kernel_per_conn_bytes);
            putln!(
                s,
                "| {} | {} + {} | {} | {} | {} | {} | {} | {} | {fds} | {} | {:.1} s | {} |",
                l.style,
                thousands(r.spec.idle),
                r.spec.conns,
                r.merged_runs.max(1),
                thousands(r.connect.established as usize),
                kib(per_conn(r)),
                kib(kernel),
                opt(sv.map(|s| s.peak_threads)),
                opt(sv.and_then(|s| s.peak_processes)),
                fmt_us(r.latency_us.p99),
                r.connect.phase_s + r.connect.accept_wait_s.unwrap_or(0.0),
                if held(r, objective).is_ok() {
                    "held"
                } else {
                    "✗"
                }
            );
        }
    }
    s.push('\n');
    reading(s, &ladders);
}

/// The reading: one million connections per style, on paper.
fn reading(s: &mut String, ladders: &[Ladder]) {
    s.push_str(
        "**Reading, on paper (an extrapolation, not a measurement).** One million connections at the measured \
         memory per connection would take: ",
    );
    let mut parts = Vec::new();
    for l in ladders {
        let Some(per) = l.farthest.and_then(per_conn) else {
            parts.push(format!(
                "{}: no step held, nothing to extrapolate from",
                l.style
            ));
            continue;
        };
        let gib = per * MILLION / (1u64 << 30) as f64;
        let wall = match l.verdict.wall {
            Wall::ServerOpenFiles => {
                "and an open-files limit of a million or more (fs.nr_open allows 1,048,576 by default), or as many processes"
            }
            Wall::ServerTasks => {
                "and as many threads or processes as connections (kernel.pid_max, pids.max)"
            }
            Wall::MemoryMaps => {
                "and as many threads as connections, with vm.max_map_count raised to about four maps each"
            }
            Wall::ClientOpenFiles | Wall::ClientPorts => {
                "measured only as far as loadgen's own wall: more loadgen processes and source addresses to find the server's"
            }
            Wall::ListenBacklog => {
                "and connections opened no faster than it accepts them (its listen queue overflowed)"
            }
            Wall::Held => "with no wall met up to --reach-max",
            _ => "past the wall it met",
        };
        parts.push(format!("{}: {gib:.1} GiB {wall}", l.style));
    }
    s.push_str(&parts.join("; "));
    s.push_str(
        ". A million connections to one server port need about 36 loopback source addresses (28,232 ephemeral \
         ports each) on the client's side.\n\n",
    );
}
