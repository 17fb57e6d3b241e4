//! `loadgen soak`: each style's server under a steady mixed load for a
//! long time, sampled every second, and judged on whether anything grows.
//!
//! For each style in turn, its server is started as `compare` starts it
//! (its own process group and cgroup, pinned, watched by the guard,
//! stopped with SIGTERM: [`crate::compare::servers::with_server`]), and
//! three loads run against it at once for `--duration` ([`load`]):
//! - **open**: 50 connections at 2,000 msg/s in total, on a fixed schedule
//!   (corrected latency);
//! - **churn**: connect, echo one message, close, paced at 100
//!   connections/s (`--connect-rate`; unpaced, one slot does ~9,000/s on
//!   loopback and would be the whole load);
//! - **idle**: 300 connections held open and silent, beside one that
//!   sends 10 msg/s to show the server still answers.
//!
//! The server's memory (RSS; PSS over the tree for a forking server), open
//! fds (counted exactly), threads and, in a cgroup, the group's memory
//! charge are read every second. After the warm-up (a fifth of the soak,
//! at least 5 s: allocators and thread pools reach their working size) a
//! least-squares line is fitted through each ([`fit`]), and the style is
//! judged ([`verdict`]):
//! - **errors**: none in any load, and each load did what was asked (the
//!   engine's own verdict: every connection served, the open loops at
//!   their rate and on schedule, the server alive to the end);
//! - **fds and threads flat**: the fitted change over the window, either
//!   way, within max(2, 1% of the mean). The soak holds a constant number
//!   of connections (351 and whatever churn has open at the instant: 0 or
//!   1), so a healthy server's count only moves by the churned connection
//!   in flight. One fd leaked per churned connection is 100 a second,
//!   2,400 over the CI soak's 24 fitted seconds: a thousand times the
//!   bound. A thread-per-connection server that leaked threads would show
//!   in both;
//! - **memory**: the fitted growth over the window within max(1 MiB, 5% of
//!   the mean). Allocators keep freed memory and grow in steps (glibc's
//!   per-thread arenas, a runtime's slabs), so memory is not flat to the
//!   byte; a leak is growth in proportion to the work done. A server
//!   that leaked one 16 KiB buffer (the servers' default) per churned
//!   connection, touching at least a page of it, would grow by at least
//!   100 × 4 KiB = 400 KiB/s: 9 MiB over the CI soak, 188 MiB over the
//!   10-minute one's 8 fitted minutes. The 10-minute soak catches any
//!   allocation leaked per connection: 1 MiB / (100/s × 480 s) is 22
//!   bytes, less than glibc's smallest chunk (32 B); the 30-second one
//!   catches ~440 B per connection. Memory handed back (a fall) is no leak;
//! - **server**: it lived to the end and stopped on SIGTERM with exit 0
//!   and its summary line.
//!
//! The cgroup's memory (the kernel's sockets and buffers included) is
//! reported with its trend but not judged: it moves with the kernel's
//! caches, not only the server. `soak` returns its results and writes no
//! file ([`crate::report::soak`] writes `soak.json` and `soak.md`).

pub mod fit;
pub mod load;
pub mod model;
pub mod verdict;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::compare::guard::Guard;
use crate::compare::options::CompareOptions;
use crate::compare::servers::with_server;
use crate::soak::model::{Plan, SOAK_SCHEMA_VERSION, SoakResults, StyleSoak};

/// `loadgen soak`'s options.
#[derive(Clone, Debug)]
pub struct SoakOptions {
    pub styles: Vec<String>,
    pub plan: Plan,
    /// `None`: this executable's `serve` subcommand.
    pub server_bin: Option<PathBuf>,
    pub server_cpus: Vec<usize>,
    pub client_cpus: Vec<usize>,
    /// Stops the servers should the soak die first
    /// ([`crate::compare::guard`]).
    pub guard: Option<Arc<Guard>>,
}

impl SoakOptions {
    /// What compare's server code takes, for starting this soak's servers
    /// as compare does.
    fn servers(&self) -> CompareOptions {
        CompareOptions::servers_only(
            self.styles.clone(),
            self.server_bin.clone(),
            self.server_cpus.clone(),
            self.client_cpus.clone(),
            self.guard.clone(),
        )
    }
}

/// Soaks every style in turn and returns the results (partial if `stop`
/// is set); writes no file.
pub fn run(opts: &SoakOptions, stop: Arc<AtomicBool>) -> anyhow::Result<SoakResults> {
    let crate::compare::Start {
        started,
        started_unix_s,
        environment,
    } = crate::compare::start(&opts.client_cpus)?;
    let servers = opts.servers();
    let (layout, cgroup) =
        crate::compare::cgroup_setup(&servers, crate::probe::cgroup::Layout::detect())?;
    let plan = &opts.plan;
    note!(
        "loadgen soak: styles {}, {:.0} s each ({:.0} s warm-up): open {} conns at {} msg/s, churn {} conn/s, \
         {} idle; servers on CPUs {:?}, loadgen on {:?}",
        opts.styles.join(","),
        plan.duration_s,
        plan.warmup_s,
        plan.open_conns,
        plan.open_rate,
        plan.churn_rate,
        plan.idle,
        opts.server_cpus,
        opts.client_cpus
    );
    let interrupted = || stop.load(Ordering::Relaxed) || crate::STDERR_LOST.load(Ordering::Relaxed);
    let mut styles = Vec::new();
    for style in &opts.styles {
        if interrupted() {
            break;
        }
        let mut measured = load::Measured::default();
        let (server, _) = with_server(
            &servers,
            layout.as_ref(),
            (style, None),
            "soak",
            &[],
            &mut |t| {
                measured = load::measure(t, plan, &stop);
                Vec::new()
            },
        );
        let soaked = judged(style, server, measured, plan);
        note!(
            "loadgen soak: {style}: {}",
            if soaked.passed { "pass" } else { "FAIL" }
        );
        styles.push(soaked);
    }
    let interrupted = interrupted();
    let passed =
        !interrupted && styles.len() == opts.styles.len() && styles.iter().all(|s| s.passed);
    Ok(SoakResults {
        schema_version: SOAK_SCHEMA_VERSION,
        started_unix_s,
        elapsed_s: started.elapsed().as_secs_f64(),
        environment,
        server_cpus: opts.server_cpus.clone(),
        client_cpus: opts.client_cpus.clone(),
        server_command: match &opts.server_bin {
            Some(p) => p.display().to_string(),
            None => format!("{} serve", std::env::current_exe()?.display()),
        },
        cgroup,
        plan: plan.clone(),
        interrupted,
        styles,
        passed,
    })
}

/// A style's soak judged: its trends, its loads' and its server's checks.
pub fn judged(
    style: &str,
    server: crate::compare::model::ServerRecord,
    measured: load::Measured,
    plan: &Plan,
) -> StyleSoak {
    let series = verdict::trends(&measured.samples, plan);
    let mut checks = verdict::judge(&series, &measured.runs, &plan.bounds);
    checks.push(verdict::server_check(&server));
    StyleSoak {
        style: style.into(),
        passed: checks.iter().all(|c| c.passed),
        server,
        memory_measure: measured.memory_measure,
        samples: measured.samples,
        series,
        runs: measured.runs,
        checks,
    }
}
