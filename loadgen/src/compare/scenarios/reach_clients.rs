//! More connections than one loadgen process holds: a reach step past this
//! process's open-files limit is split over several client processes, each
//! under its own limit and with its own source addresses. The others are
//! holders (`loadgen run --format json`, this executable): started first,
//! each in a process group of its own that dies with this one, waited for
//! until their connections are established (counted in /proc/net/tcp,
//! bounded), then this process runs its own part (the active connections,
//! the server sampled), then the holders are stopped and their results
//! merged with its own by [`merge_parts`] (connections, errors and
//! histograms added). What is not measured here is said: the memory per
//! connection is then this process's part's, on top of the holders'.

use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::results::RunResult;
use crate::results::merge::{Part, merge_parts};
use crate::results::spec::{Mode, RunSpec};

/// fds a loadgen process keeps beside its connections (stdio, pollers,
/// the sampler's reads).
const HEADROOM: usize = 64;

/// The most client processes a step uses: one per loopback source address.
pub const MAX_CLIENTS: usize = 8;

/// A holder's active connection's rate, messages/s: enough that its short
/// window has messages, too few to cost anything.
const HOLDER_RATE: f64 = 10.0;

/// Connections this process can hold: its open-files limit less
/// [`HEADROOM`].
pub fn own_capacity() -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    (soft as usize).saturating_sub(HEADROOM).max(1)
}

/// A step split over client processes: this one's part and the holders'.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub own: RunSpec,
    pub holders: Vec<RunSpec>,
}

/// Splits `spec` into as many parts as `capacity` connections each need
/// (at most [`MAX_CLIENTS`]; past that each part asks for more than it can
/// hold, and loadgen's own wall shows). This process keeps the active
/// connections; each holder holds idle ones and one active, so the parts
/// add up to `spec`'s connections exactly. Source addresses are dealt out
/// in turn.
pub fn split(spec: &RunSpec, capacity: usize) -> Split {
    let total = spec.total_conns();
    let k = total.div_ceil(capacity.max(1)).clamp(1, MAX_CLIENTS);
    if k == 1 || spec.idle < k {
        return Split {
            own: spec.clone(),
            holders: Vec::new(),
        };
    }
    let ips = |i: usize| -> Vec<IpAddr> {
        let mine: Vec<IpAddr> = (spec.source_ips.iter().enumerate())
            .filter(|(j, _)| j % k == i)
            .map(|(_, ip)| *ip)
            .collect();
        if mine.is_empty() {
            spec.source_ips.clone()
        } else {
            mine
        }
    };
    let share = total / k;
    let holders: Vec<RunSpec> = (1..k)
        .map(|i| RunSpec {
            conns: 1,
            idle: share - 1,
            mode: Mode::Open { rate: HOLDER_RATE },
            source_ips: ips(i),
            ..spec.clone()
        })
        .collect();
    let held_by_holders = share * (k - 1);
    let own = RunSpec {
        idle: total - held_by_holders - spec.conns,
        source_ips: ips(0),
        ..spec.clone()
    };
    Split { own, holders }
}

/// The holders of a step, running; killed (their groups) when dropped.
pub struct Holders {
    running: Vec<(Child, PathBuf)>,
}

impl Holders {
    /// Starts one `loadgen run` per spec, holding its connections for
    /// `hold`; the parts' results go to files of this process's own.
    pub fn start(specs: &[RunSpec], hold: Duration) -> anyhow::Result<Holders> {
        use anyhow::Context;
        let exe = std::env::current_exe().context("locating loadgen for the client processes")?;
        let mut holders = Holders {
            running: Vec::new(),
        };
        for (i, s) in specs.iter().enumerate() {
            let out = std::env::temp_dir().join(format!(
                "loadgen-reach-{}-{}-{i}.json",
                std::process::id(),
                s.total_conns()
            ));
            let mut cmd = Command::new(&exe);
            cmd.args(["run", "--format", "json", "--mode", "open"])
                .arg(format!("--addr={}", s.addr))
                .arg(format!("--conns={}", s.conns))
                .arg(format!("--idle={}", s.idle))
                .arg(format!("--rate={HOLDER_RATE}"))
                .arg(format!("--size={}", s.size))
                .arg("--warmup=0s")
                .arg(format!("--duration={}ms", hold.as_millis()))
                .arg(format!("--timeout={}ms", s.timeout.as_millis()))
                .arg(format!("--label=reach holder {i}"))
                .arg("--out")
                .arg(&out)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0);
            if !s.source_ips.is_empty() {
                let list: Vec<String> = s.source_ips.iter().map(|ip| ip.to_string()).collect();
                cmd.arg(format!("--source-ips={}", list.join(",")));
            }
            // SAFETY: prctl only, between fork and exec: no allocation, no
            // lock; the holder dies with the thread that started it.
            unsafe {
                cmd.pre_exec(|| {
                    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                        .map_err(std::io::Error::from)
                });
            }
            let child = cmd
                .spawn()
                .with_context(|| format!("starting client process {i}"))?;
            // Its CPU is the comparison's own, not foreign load.
            crate::probe::foreign::own_pid(child.id());
            holders.running.push((child, out));
        }
        Ok(holders)
    }

    pub fn count(&self) -> usize {
        self.running.len()
    }

    /// Stops every holder (SIGINT: it ends its run and writes its partial
    /// results), waits for each at most `limit`, and reads its part; a
    /// holder that left none is said in the error list.
    pub fn finish(mut self, limit: Duration) -> (Vec<RunResult>, Vec<String>) {
        use nix::sys::signal::{Signal, kill};
        let mut parts = Vec::new();
        let mut problems = Vec::new();
        for (child, _) in &self.running {
            let _ = kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                Signal::SIGINT,
            );
        }
        let deadline = Instant::now() + limit;
        for (i, (child, out)) in std::mem::take(&mut self.running).into_iter().enumerate() {
            let mut child = child;
            if !wait_until(&mut child, deadline) {
                problems.push(format!("client process {i} did not end; killed"));
                kill_group(&mut child);
            }
            match std::fs::read_to_string(&out)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str::<RunResult>(&t).map_err(|e| e.to_string()))
            {
                Ok(r) => parts.push(r),
                Err(e) => problems.push(format!("client process {i} left no results: {e}")),
            }
            let _ = std::fs::remove_file(&out);
        }
        (parts, problems)
    }
}

impl Drop for Holders {
    fn drop(&mut self) {
        for (child, out) in &mut self.running {
            kill_group(child);
            let _ = std::fs::remove_file(out);
        }
    }
}

fn kill_group(child: &mut Child) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
}

/// Whether `child` ended by `deadline` (polled: a child has no pollable
/// handle here).
fn wait_until(child: &mut Child, deadline: Instant) -> bool {
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Established client ends to `port` in /proc/net/tcp (IPv4, this network
/// namespace).
pub fn established_to(port: u16) -> usize {
    let Ok(text) = std::fs::read_to_string("/proc/net/tcp") else {
        return 0;
    };
    let hex = format!(":{port:04X}");
    text.lines()
        .skip(1)
        .filter(|l| {
            let mut f = l.split_whitespace().skip(2);
            matches!((f.next(), f.next()), (Some(remote), Some("01")) if remote.ends_with(&hex))
        })
        .count()
}

/// Waits until `want` connections to `port` are established (or `limit`
/// passed, or `stop` set): the holders' signal that they hold theirs.
pub fn wait_established(
    port: u16,
    want: usize,
    limit: Duration,
    stop: &std::sync::atomic::AtomicBool,
) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        let n = established_to(port);
        if n >= want
            || Instant::now() >= deadline
            || stop.load(std::sync::atomic::Ordering::Relaxed)
        {
            return n;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// This process's part merged with the holders' (its own first: the
/// server's figures are its sampling's). A holder was stopped on purpose
/// at the end of this part's run: its window is taken as this part's, and
/// its interruption is not a failure.
pub fn merge(own: RunResult, holders: Vec<RunResult>, problems: Vec<String>) -> RunResult {
    let mut parts = vec![Part {
        name: "this process".into(),
        result: own.clone(),
    }];
    for (i, mut r) in holders.into_iter().enumerate() {
        r.outcome.interrupted = false;
        r.outcome.reasons.retain(|x| !x.starts_with("interrupted"));
        r.outcome.ok = r.outcome.reasons.is_empty();
        r.spec.duration = own.spec.duration;
        r.spec.warmup = own.spec.warmup;
        parts.push(Part {
            name: format!("client process {}", i + 1),
            result: r,
        });
    }
    let mut merged = merge_parts(&parts, true).unwrap_or_else(|e| {
        let mut r = own;
        r.outcome.ok = false;
        r.outcome
            .reasons
            .push(format!("merging the client processes: {e}"));
        r
    });
    if !problems.is_empty() {
        merged.outcome.ok = false;
        merged.outcome.reasons.extend(problems);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_past_one_process_is_split_into_parts_that_add_up() {
        let spec = RunSpec {
            conns: 10,
            idle: 50_000,
            source_ips: crate::compare::scenarios::reach::source_ips(
                "127.0.0.1:1".parse().unwrap(),
            ),
            ..RunSpec::default()
        };
        let s = split(&spec, 19_936);
        assert_eq!(s.holders.len(), 2);
        let total: usize =
            s.holders.iter().map(RunSpec::total_conns).sum::<usize>() + s.own.total_conns();
        assert_eq!(total, spec.total_conns());
        assert_eq!(s.own.conns, 10);
        assert!(s.holders.iter().all(|h| h.total_conns() <= 19_936));
        assert!(s.own.total_conns() <= 19_936);
        // Each its own source addresses.
        let ips =
            s.own.source_ips.len() + s.holders.iter().map(|h| h.source_ips.len()).sum::<usize>();
        assert_eq!(ips, 8);
        assert!(
            !s.own
                .source_ips
                .iter()
                .any(|ip| s.holders[0].source_ips.contains(ip))
        );
        // Within one process's limit: one part.
        assert!(split(&spec, 60_000).holders.is_empty());
        // Past eight processes' worth: eight, each asking for more than it holds.
        assert_eq!(split(&spec, 1000).holders.len(), MAX_CLIENTS - 1);
    }
}
