//! What stopped a style in `reach`, named from evidence: the failing
//! step's run (its errors, the server's fds against its open-files limit,
//! whether the server lived) and the server's own stderr lines that say it
//! ran out of something ([`crate::compare::process::failure_lines`]). A
//! pure function ([`classify`]) so every kind of evidence is tested with
//! fixtures; nothing here guesses: evidence that names nothing is said to.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::compare::model::ServerRecord;
use crate::results::server::LimitsAtEnd;
use crate::results::{Errors, RunResult};

/// What stopped a style.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wall {
    /// It held every step up to `--reach-max`.
    Held,
    /// The server's open-files limit (accept failed with EMFILE or
    /// ENFILE, or its fds at its limit).
    ServerOpenFiles,
    /// Memory: an accept, fork or thread that failed with ENOMEM, or the
    /// server killed by SIGKILL (the OOM killer's signal).
    ServerMemory,
    /// Threads or processes: a fork or thread start that failed with
    /// EAGAIN (the pids limit, kernel.pid_max, threads-max, ulimit -u).
    ServerTasks,
    /// Memory maps: a thread start that failed with EAGAIN while the
    /// process held as many maps as vm.max_map_count allows (each thread
    /// maps its stack, the stack's guard, its signal stack and that one's
    /// guard).
    MemoryMaps,
    /// Connects that timed out while the server was alive and no limit of
    /// its own was hit: its listen backlog stayed full.
    ListenBacklog,
    /// The server exited for another reason.
    ServerDied,
    /// loadgen's own: no local port left (EADDRNOTAVAIL).
    ClientPorts,
    /// loadgen's own: no file descriptor left in its process (EMFILE).
    ClientOpenFiles,
    /// The active connections' p99 past the objective.
    Latency,
    /// A step failed and its evidence names none of the above.
    Unexplained,
}

impl Wall {
    /// In a sentence's words.
    pub fn words(self) -> &'static str {
        match self {
            Wall::Held => "held every step",
            Wall::ServerOpenFiles => "the server's open-files limit",
            Wall::ServerMemory => "memory",
            Wall::ServerTasks => "threads or processes",
            Wall::MemoryMaps => "memory maps per process (vm.max_map_count)",
            Wall::ListenBacklog => "the listen backlog",
            Wall::ServerDied => "the server died",
            Wall::ClientPorts => "loadgen's ephemeral ports (the client's wall)",
            Wall::ClientOpenFiles => "loadgen's open-files limit (the client's wall)",
            Wall::Latency => "the active connections' p99",
            Wall::Unexplained => "unexplained",
        }
    }

    /// What moves it.
    pub fn knob(self) -> &'static str {
        match self {
            Wall::ServerOpenFiles => {
                "`ulimit -n` (hard), systemd `LimitNOFILE=`, `docker run --ulimit nofile=`; or more processes"
            }
            Wall::ServerMemory => "the cgroup's memory.max, the machine's memory",
            Wall::ServerTasks => "pids.max, kernel.pid_max, kernel.threads-max, `ulimit -u`",
            Wall::MemoryMaps => "`sysctl vm.max_map_count` (about four maps a thread)",
            Wall::ListenBacklog => {
                "net.core.somaxconn and the server's backlog, a faster accept loop"
            }
            Wall::ClientPorts => "more source addresses, net.ipv4.ip_local_port_range",
            Wall::ClientOpenFiles => "more loadgen processes, or their hard `ulimit -n`",
            Wall::Latency => "a lighter step, a faster style",
            Wall::Held => "a higher `--reach-max`",
            Wall::ServerDied | Wall::Unexplained => "—",
        }
    }

    /// loadgen's own wall, not the server's.
    pub fn is_client(self) -> bool {
        matches!(self, Wall::ClientPorts | Wall::ClientOpenFiles)
    }
}

/// What a step left to judge by.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evidence {
    /// Why the step did not hold ([`crate::compare::scenarios::reach::held`]);
    /// None: it held.
    pub failed: Option<String>,
    pub errors: Errors,
    /// None: the server was not sampled.
    pub server_alive: Option<bool>,
    pub server_fds: Option<u64>,
    pub server_fd_limit: Option<u64>,
    /// The server's stderr lines saying it ran out of something.
    pub server_log: Vec<String>,
    /// The signal that ended the server, by name ("SIGKILL").
    pub exit_signal: Option<String>,
    /// The server against its limits at the step's end, where read.
    pub limits: Option<LimitsAtEnd>,
    /// Connections left in its listen queue once it stopped accepting.
    pub unaccepted: u64,
    /// Connections loadgen established that the server's side never held
    /// (its listen queue overflowed).
    pub never_held: u64,
    pub p99_us: u64,
    pub objective_us: u64,
}

/// fds a server holds beside its connections (stdio, listener, poller,
/// wake-up pipes): at its limit within this many, it is at the limit.
const FD_SLACK: u64 = 16;

/// `count` and `limit` where the count is at it, as the servers read it
/// ([`servers::limits::at_limit`]).
fn at(count: Option<u64>, limit: Option<u64>) -> Option<(u64, u64)> {
    let (c, l) = (count?, limit?);
    servers::limits::at_limit(c, l).then_some((c, l))
}

/// The wall and the evidence in words.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub wall: Wall,
    pub evidence: String,
}

/// Names the wall from `e`: the server's own words first (they are the
/// most direct evidence), then its death, its fds against its limit,
/// loadgen's own errors, connects timed out, the latency objective.
pub fn classify(e: &Evidence) -> Verdict {
    let v = |wall, evidence: String| Verdict { wall, evidence };
    let Some(failed) = &e.failed else {
        return v(
            Wall::Held,
            "every connection held, p99 within the objective".into(),
        );
    };
    let said = |marks: &[&str]| {
        e.server_log
            .iter()
            .find(|l| marks.iter().any(|m| l.contains(m)))
            .cloned()
    };
    if let Some(l) = said(&["os error 24", "os error 23", "Too many open files"]) {
        return v(Wall::ServerOpenFiles, format!("the server said: {l}"));
    }
    if let Some(l) = said(&["os error 12", "os error 105", "Cannot allocate memory"]) {
        return v(Wall::ServerMemory, format!("the server said: {l}"));
    }
    let limits = e.limits.clone().unwrap_or_default();
    if let Some(n) = limits.oom_kills.filter(|&n| n > 0) {
        return v(
            Wall::ServerMemory,
            format!(
                "the kernel's OOM killer killed {n} of the server's processes (its cgroup's oom_kill)"
            ),
        );
    }
    if let Some(l) = said(&["os error 11", "Resource temporarily unavailable"]) {
        // EAGAIN names no limit: what the server was at does, in its own
        // words (read when the start failed: it may die of it after) or as
        // read at the step's end.
        if l.contains("vm.max_map_count") {
            return v(Wall::MemoryMaps, format!("the server said: {l}"));
        }
        if l.contains("kernel.pid_max") {
            return v(Wall::ServerTasks, format!("the server said: {l}"));
        }
        if let Some((maps, max)) = at(limits.maps, limits.max_map_count) {
            return v(
                Wall::MemoryMaps,
                format!(
                    "the server held {maps} memory maps of vm.max_map_count {max}; it said: {l}"
                ),
            );
        }
        let tasks_max = limits.pid_max.into_iter().chain(limits.threads_max).min();
        if let Some((tasks, max)) = at(limits.machine_tasks, tasks_max) {
            return v(
                Wall::ServerTasks,
                format!(
                    "the machine ran {tasks} threads and processes of the {max} kernel.pid_max and threads-max allow; it said: {l}"
                ),
            );
        }
        return v(Wall::ServerTasks, format!("the server said: {l}"));
    }
    if e.server_alive == Some(false) || e.exit_signal.is_some() {
        return match e.exit_signal.as_deref() {
            Some("SIGKILL") => v(
                Wall::ServerMemory,
                "the server was killed by SIGKILL during the step (the OOM killer's signal)".into(),
            ),
            Some(sig) => v(Wall::ServerDied, format!("the server ended by {sig}")),
            None => v(
                Wall::ServerDied,
                "the server was gone before the step ended".into(),
            ),
        };
    }
    // Per process where read at the end (prefork's workers each have a
    // limit of their own), else the samples' count.
    let (fds, limit) = match (limits.most_fds, limits.most_fds_limit) {
        (Some(f), Some(l)) => (Some(f), Some(l)),
        _ => (e.server_fds, e.server_fd_limit),
    };
    if let (Some(fds), Some(limit)) = (fds, limit)
        && fds + FD_SLACK >= limit
    {
        return v(
            Wall::ServerOpenFiles,
            format!("the server held {fds} fds of its limit of {limit}"),
        );
    }
    if e.errors.fd_limit > 0 {
        return v(
            Wall::ClientOpenFiles,
            format!(
                "{} of loadgen's connects failed with EMFILE",
                e.errors.fd_limit
            ),
        );
    }
    if e.errors.addr_unavailable > 0 {
        return v(
            Wall::ClientPorts,
            format!(
                "{} of loadgen's connects found no local port (EADDRNOTAVAIL)",
                e.errors.addr_unavailable
            ),
        );
    }
    if e.never_held > 0 {
        return v(
            Wall::ListenBacklog,
            format!(
                "{} connections loadgen established never reached the server: its listen queue overflowed (SYN cookies completed their handshakes) while it accepted too slowly",
                e.never_held
            ),
        );
    }
    if e.errors.connect_timeout > 0 {
        return v(
            Wall::ListenBacklog,
            format!(
                "{} connects timed out with the server alive",
                e.errors.connect_timeout
            ),
        );
    }
    if e.unaccepted > 0 {
        // Not the p99's doing: those connections were never served.
        return v(
            Wall::Unexplained,
            format!(
                "the server stopped accepting with {} connections in its listen queue, and named no limit",
                e.unaccepted
            ),
        );
    }
    if e.p99_us > e.objective_us {
        return v(
            Wall::Latency,
            format!(
                "active p99 {} past {}",
                crate::results::fmt_us(e.p99_us),
                crate::results::fmt_us(e.objective_us)
            ),
        );
    }
    v(Wall::Unexplained, failed.clone())
}

/// The evidence of a reach step: its run, judged against `objective`, and
/// the server's record where compare started it.
pub fn evidence(r: &RunResult, server: Option<&ServerRecord>, objective: Duration) -> Evidence {
    let sv = r.server.as_ref();
    Evidence {
        failed: crate::compare::scenarios::reach::held(r, objective).err(),
        errors: r.errors.clone(),
        server_alive: sv.map(|s| s.alive_at_end),
        server_fds: sv.and_then(|s| s.peak_fds),
        server_fd_limit: sv.and_then(|s| s.fd_limit),
        server_log: server.map(|s| s.failures.clone()).unwrap_or_default(),
        exit_signal: server
            .filter(|s| s.died())
            .and_then(|s| s.exit_signal.clone()),
        limits: sv.and_then(|s| s.limits.clone()),
        unaccepted: r.connect.unaccepted.unwrap_or(0),
        never_held: (r.connect.server_held).map_or(0, |n| r.connect.established.saturating_sub(n)),
        p99_us: r.latency_us.p99,
        objective_us: objective.as_micros() as u64,
    }
}

#[cfg(test)]
#[path = "wall_tests.rs"]
mod tests;
