//! Foreign load: CPU time spent on a run's CPUs (the servers' and
//! loadgen's) during its measured window by anything that is not the
//! comparison's own, read from /proc/stat against the comparison's own
//! counters.
//!
//! /proc/stat gives each CPU's busy time (user, nice, system, irq,
//! softirq, steal; idle and iowait are not busy). From its growth over the
//! window are taken away the CPU time of every server cgroup this process
//! made that is alive ([`own_group`]: the side-by-side partner's included,
//! as both are alive through a pair's window) and this process's own
//! (every loadgen thread: workers, samplers, a pair's other run) plus any
//! other process it registered ([`own_pid`]). What remains is someone
//! else's: another comparison, a build, a browser. Its share of the CPUs'
//! time is [`ForeignLoad::share`]; over [`DISTURBED_SHARE`], the run is
//! disturbed ([`crate::results::foreign`]).
//!
//! The arithmetic is approximate by nature: /proc/stat is sampled at the
//! tick (USER_HZ, 100 per second), while the cgroups' and the process's
//! CPU time are exact, and the kernel counts interrupt and softirq work
//! (loopback TCP's receive path, much of it on behalf of our own sockets)
//! apart from any task's time where it accounts irq time. Hence a floor of
//! "foreign" work on a quiet machine, measured here and set below.

use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use crate::probe::cgroup::ServerCgroup;
pub use crate::results::foreign::ForeignLoad;

/// A run whose window had more foreign work than this share of its CPUs'
/// time is disturbed.
///
/// Set from quiet runs on this project's 2-core VM (kernel 6.18, HZ 250,
/// tick CPU accounting, no IRQ time accounting): five `loadgen compare
/// --profile smoke --styles epoll` (server on CPU 0 at a 0.25 quota,
/// loadgen on CPU 1, 0.3 s windows), each started after a second with
/// CPUs 0-1 under 4% busy and followed by one under 5%: 60 windows, 47 of
/// them 0.000, median 0.000, p90 0.095, p95 0.140, max 0.181. The non-zero
/// ones are nearly all the server-bound scale point (20 connections:
/// 0.00-0.18, median 0.12) and churn (0.07, 0.10): a server throttled by
/// its quota every 10 ms period runs in bursts that the 4 ms tick samples
/// unevenly, and the kernel's loopback work is charged by tick too, while
/// the groups' and loadgen's own times are exact. A window reads to ±1
/// tick (10 ms in /proc/stat's unit) per CPU at each edge: up to ±0.07 of
/// a 0.3 s window on 2 CPUs, less on longer windows. Disturbed windows
/// measured meanwhile: another worker's rustc 0.50-0.91, a busy loop
/// pinned to the server's CPU 0.45-0.50. On the main job's longer windows
/// (two back-to-back runs on an idle machine, 1,043 windows) quiet ones
/// read median 0, p90 0.18, p95 0.22, p99 0.26, max 0.51 (kernel work of
/// thread and process teardown is charged to no cgroup): 0.25 flagged 16
/// of them, 0.35 flags one. 0.35 is above 99.9% of quiet windows and still
/// under a busy loop on one of the two CPUs.
pub const DISTURBED_SHARE: f64 = 0.35;

/// Every server cgroup this process made, while it lives.
static GROUPS: Mutex<Vec<Weak<ServerCgroup>>> = Mutex::new(Vec::new());
/// Other processes of ours whose CPU time is not in a group (none yet
/// beyond those a caller registers).
static PIDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Counts `group`'s CPU time as the comparison's own for as long as it
/// lives (every window it overlaps, its partner's included).
pub fn own_group(group: &Arc<ServerCgroup>) {
    if let Ok(mut g) = GROUPS.lock() {
        g.retain(|w| w.strong_count() > 0);
        g.push(Arc::downgrade(group));
    }
}

/// Counts process `pid`'s CPU time as the comparison's own (e.g. a client
/// process it started); a pid that is gone counts nothing.
pub fn own_pid(pid: u32) {
    if let Ok(mut p) = PIDS.lock() {
        p.push(pid);
    }
}

/// One reading at a window's edge.
#[derive(Clone, Debug)]
pub struct Reading {
    pub at: Instant,
    /// Busy ticks of each CPU asked for, in that order.
    pub busy_ticks: Vec<u64>,
    /// This process's CPU time, ns (exact).
    pub self_ns: u64,
    /// Each own group's CPU time by name, ns.
    pub groups: Vec<(String, u64)>,
    /// Each registered process's CPU time by pid, ticks.
    pub pids: Vec<(u32, u64)>,
}

/// One CPU's line of /proc/stat: its busy ticks (user, nice, system, irq,
/// softirq, steal: guest time is inside user and nice already).
pub fn busy_ticks(stat: &str, cpu: usize) -> Option<u64> {
    let name = format!("cpu{cpu}");
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().ok())
        .collect::<Option<Vec<u64>>>()?;
    // user nice system idle iowait irq softirq steal
    if f.len() < 8 {
        return None;
    }
    Some(f[0] + f[1] + f[2] + f[5] + f[6] + f[7])
}

/// utime + stime of `/proc/PID/stat`'s text, ticks.
pub fn process_ticks(stat: &str) -> Option<u64> {
    // The command may hold spaces and parentheses: fields count from the
    // last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state(3) ... utime is field 14, stime 15 (1-based).
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Ticks per second of /proc/stat's counters (USER_HZ).
pub fn user_hz() -> f64 {
    // SAFETY: sysconf reads a constant of the system; no memory is passed.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// Reads `cpus`' busy time and the comparison's own CPU time now; None
/// where /proc/stat cannot be read (or lacks one of the CPUs).
pub fn read(cpus: &[usize]) -> Option<Reading> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    read_from(&stat, cpus)
}

fn read_from(stat: &str, cpus: &[usize]) -> Option<Reading> {
    let at = Instant::now();
    let busy_ticks = cpus
        .iter()
        .map(|&c| busy_ticks(stat, c))
        .collect::<Option<Vec<u64>>>()?;
    let self_ns = nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .ok()
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)?;
    let live: Vec<Arc<ServerCgroup>> = GROUPS
        .lock()
        .map(|g| g.iter().filter_map(Weak::upgrade).collect())
        .unwrap_or_default();
    let groups = live
        .iter()
        .filter_map(|g| Some((g.name().to_string(), g.read()?.cpu_ns)))
        .collect();
    let pids = PIDS
        .lock()
        .map(|p| p.clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|pid| {
            let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, process_ticks(&text)?))
        })
        .collect();
    Some(Reading {
        at,
        busy_ticks,
        self_ns,
        groups,
        pids,
    })
}

/// The foreign load between two readings of the same `cpus`, with `hz`
/// ticks per second. Own groups and processes count where read at both
/// edges (one made or gone inside the window is not ours to guess).
pub fn between(a: &Reading, b: &Reading, cpus: &[usize], hz: f64) -> Option<ForeignLoad> {
    let window_s = b.at.checked_duration_since(a.at)?.as_secs_f64();
    if window_s <= 0.0 || a.busy_ticks.len() != b.busy_ticks.len() || cpus.is_empty() {
        return None;
    }
    let busy_ticks: u64 = a
        .busy_ticks
        .iter()
        .zip(&b.busy_ticks)
        .map(|(x, y)| y.saturating_sub(*x))
        .sum();
    let busy_cpu_s = busy_ticks as f64 / hz;
    let groups_s: f64 = b
        .groups
        .iter()
        .filter_map(|(name, to)| {
            let from = a.groups.iter().find(|(n, _)| n == name)?.1;
            Some(to.saturating_sub(from) as f64 / 1e9)
        })
        .sum();
    let pids_s: f64 = b
        .pids
        .iter()
        .filter_map(|(pid, to)| {
            let from = a.pids.iter().find(|(p, _)| p == pid)?.1;
            Some(to.saturating_sub(from) as f64 / hz)
        })
        .sum();
    let loadgen_s = b.self_ns.saturating_sub(a.self_ns) as f64 / 1e9 + pids_s;
    let foreign_cpu_s = (busy_cpu_s - groups_s - loadgen_s).max(0.0);
    let capacity = window_s * cpus.len() as f64;
    Some(ForeignLoad {
        cpus: cpus.to_vec(),
        window_s,
        busy_cpu_s,
        servers_cpu_s: groups_s,
        loadgen_cpu_s: loadgen_s,
        foreign_cpu_s,
        share: foreign_cpu_s / capacity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const STAT_A: &str = "cpu  1000 10 500 90000 20 5 40 0 0 0\n\
        cpu0 600 5 300 45000 10 3 20 0 0 0\n\
        cpu1 400 5 200 45000 10 2 20 0 0 0\n\
        intr 12345\nctxt 999\n";
    // One second later: cpu0 +60 user +20 system +10 softirq, +2 steal;
    // cpu1 +30 user +5 nice +10 system +5 irq; idle and iowait grew too.
    const STAT_B: &str = "cpu  1100 15 530 90100 30 10 50 2 0 0\n\
        cpu0 660 5 320 45010 15 3 30 2 0 0\n\
        cpu1 430 10 210 45090 15 7 20 0 0 0\n";

    #[test]
    fn busy_ticks_count_user_nice_system_irq_softirq_steal_not_idle() {
        assert_eq!(busy_ticks(STAT_A, 0), Some(600 + 5 + 300 + 3 + 20));
        assert_eq!(busy_ticks(STAT_B, 0), Some(660 + 5 + 320 + 3 + 30 + 2));
        // "cpu" (the total) is not "cpu0"; a CPU the kernel lacks: None.
        assert_eq!(busy_ticks(STAT_A, 2), None);
        assert_eq!(busy_ticks("cpu0 1 2 3\n", 0), None);
    }

    #[test]
    fn process_ticks_read_past_a_command_with_spaces() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 70 30 0 0 20 0 1 0 5 0 0";
        assert_eq!(process_ticks(stat), Some(100));
        assert_eq!(process_ticks("garbage"), None);
    }

    fn reading(stat: &str, at: Instant, self_ms: u64, groups: &[(&str, u64)]) -> Reading {
        Reading {
            at,
            busy_ticks: [0, 1]
                .iter()
                .map(|&c| busy_ticks(stat, c).unwrap())
                .collect(),
            self_ns: self_ms * 1_000_000,
            groups: groups
                .iter()
                .map(|(n, ms)| (n.to_string(), ms * 1_000_000))
                .collect(),
            pids: Vec::new(),
        }
    }

    #[test]
    fn foreign_is_busy_time_less_the_groups_and_loadgen() {
        let t = Instant::now();
        // Busy over the second: cpu0 92 ticks, cpu1 50: 1.42 s at 100 Hz.
        let a = reading(
            STAT_A,
            t,
            1000,
            &[("srv", 0), ("partner", 100), ("gone", 5)],
        );
        let b = reading(
            STAT_B,
            t + Duration::from_secs(1),
            1500,
            &[("srv", 400), ("partner", 300), ("new", 999)],
        );
        let f = between(&a, &b, &[0, 1], 100.0).unwrap();
        assert!((f.busy_cpu_s - 1.42).abs() < 1e-9);
        // Only groups read at both edges count: srv 0.4 + partner 0.2.
        assert!((f.servers_cpu_s - 0.6).abs() < 1e-9);
        assert!((f.loadgen_cpu_s - 0.5).abs() < 1e-9);
        assert!((f.foreign_cpu_s - 0.32).abs() < 1e-9);
        // Of 2 CPU-seconds.
        assert!((f.share - 0.16).abs() < 1e-9);
        // Own time over the ticks counted (tick sampling): no foreign
        // work, never a negative share.
        let b2 = reading(STAT_B, t + Duration::from_secs(1), 3000, &[]);
        let f = between(&a, &b2, &[0, 1], 100.0).unwrap();
        assert_eq!(f.foreign_cpu_s, 0.0);
        assert_eq!(f.share, 0.0);
        // No window, or readings of other CPUs: nothing measured.
        assert!(between(&b, &a, &[0, 1], 100.0).is_none());
        let mut one = a.clone();
        one.busy_ticks.pop();
        assert!(between(&one, &b, &[0, 1], 100.0).is_none());
    }

    #[test]
    fn this_machine_reads() {
        // /proc/stat is there wherever these tests run (Linux).
        let r = read(&[0]).expect("reading /proc/stat");
        assert_eq!(r.busy_ticks.len(), 1);
        assert!(read(&[usize::MAX]).is_none());
    }
}
