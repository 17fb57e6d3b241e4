//! Reads a server's processes from /proc: one process ([`sample`]) or the
//! process and all its descendants ([`sample_tree`]), into a [`Sample`].
//! [`crate::probe::sampler`] calls these at 10 Hz on loadgen's CPUs, so
//! what costs in proportion to the server's size is bounded here.
//!
//! Two figures cost in proportion to the server's size and are only read
//! while it is small: open fds are counted exactly while the fd table has
//! at most 1024 slots (beyond that only the table's size is reported), and
//! context switches, which /proc keeps per thread, are summed while the
//! server has at most 256 threads (beyond that they are reported as not
//! measured).
//!
//! A server that forks (one process per connection, prefork) keeps its
//! connections in child processes, so a tree sample covers the server and
//! all its descendants, found through `/proc/PID/task/*/children` (the
//! children of the first 256 threads; past that, of the main thread only).
//! While the tree is the server alone the figures are exactly those of the
//! process, memory being its RSS. A tree sample reads every process: memory
//! is PSS summed over it (`smaps_rollup`: pages shared copy-on-write
//! between the forked processes count once in total, where summed RSS
//! would charge every child the whole shared binary); CPU is every
//! process's own time plus that of the children it has reaped (a
//! single-threaded child's own time from `schedstat`: its tick-sampled stat
//! time lags far behind); threads, fds and context switches are summed (fds
//! while every process's table has at most 1024 slots, context switches
//! while the multi-threaded processes have at most 256 threads in all).
//! Reading a tree costs about 60-100 us of CPU per process, most of it
//! `smaps_rollup`.
//!
//! The files are parsed by hand, not through the `procfs` crate, on the
//! sampling path: the crate took 1.1-2x the CPU per read (stat+status 1.6x,
//! schedstat 1.3x, smaps_rollup 1.1x, task children 1.5x, per-thread status
//! 1.9x; a whole child as a tree walk reads it 1.2x), parsing every field
//! of a file into maps where this reads four. Open fds are counted through
//! the crate, which stats /proc/PID/fd (Linux 6.2+) instead of listing it:
//! 0.4x. `cost` measures both sides; see it to run it again.

use std::collections::HashSet;

#[cfg(test)]
mod cost;

/// Open fds are counted exactly up to this fd table size (per process).
const MAX_FD_TABLE_TO_COUNT: u64 = 1024;
/// Context switches are summed over threads up to this many threads; the
/// children of the first this-many threads are looked for.
const MAX_THREADS_TO_SUM: u64 = 256;

/// One reading of /proc/PID (and, once it has had children, of its
/// descendants).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// The server process's own RSS.
    pub rss_bytes: u64,
    /// PSS summed over the server and its descendants, when read (tree
    /// samples, and the baseline).
    pub pss_bytes: Option<u64>,
    /// Processes read: the server and its live descendants.
    pub processes: u64,
    pub threads: u64,
    /// Open fds, when counted (see the module docs).
    pub fds: Option<u64>,
    /// Size of the fd table (FDSize): at least the number of open fds.
    pub fd_table: u64,
    /// User and system CPU seconds since the process started, all threads,
    /// children already reaped included (and, in a tree, the descendants).
    pub user_s: f64,
    pub system_s: f64,
    /// Summed over the process's threads, when summed (see the module docs).
    pub ctxt: Option<(u64, u64)>,
    /// The processes read, in a tree sample (empty: the server alone).
    pub pids: Vec<u32>,
    /// A tree read for CPU, threads and context switches only, without the
    /// costly memory and fd figures (the read just before the window).
    pub cpu_only: bool,
}

/// One process's figures, as /proc/PID/status and /proc/PID/stat give them.
struct Proc {
    rss_bytes: u64,
    threads: u64,
    fd_table: u64,
    user_s: f64,
    system_s: f64,
    /// The main thread's context switches (all of them for one thread).
    main_ctxt: (u64, u64),
    /// CPU seconds of children it has reaped (cutime + cstime).
    reaped_s: f64,
    /// Its parent's pid.
    parent: u32,
}

/// A /proc file's text, read in one call where it fits in 8 KiB, as every
/// file read here does but a long `children` list. Not `read_to_string`:
/// with no size to go by, it starts with reads of 32 bytes and doubles,
/// which cost 1.1-1.3x as much CPU on stat and status here (see `cost`).
fn read(path: impl AsRef<std::path::Path>) -> Option<String> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(8192);
    std::fs::File::open(path).ok()?.read_to_end(&mut buf).ok()?;
    String::from_utf8(buf).ok()
}

/// The number after `key` in a "Key:  value [kB]" file (status,
/// smaps_rollup).
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Process `pid`'s soft open-files limit, from /proc/PID/limits ("Max open
/// files  SOFT  HARD  files"); None where unreadable or unlimited.
pub fn open_files_limit(pid: u32) -> Option<u64> {
    soft_limit(&read(format!("/proc/{pid}/limits"))?, "Max open files")
}

/// The soft value of the `name` row of a /proc/PID/limits text.
fn soft_limit(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// `precise`: for a single-threaded process, take its own CPU time from
/// /proc/PID/schedstat (the scheduler's nanosecond runtime) rather than from
/// stat, whose tick-sampled utime+stime lags behind the runtime of a
/// process that runs in short bursts, by a tick or more each: nothing for
/// one server process, over a second of CPU summed over hundreds of
/// per-connection children (the lag is made up only when they are reaped).
fn read_proc(pid: u32, precise: bool) -> Option<Proc> {
    let status = read(format!("/proc/{pid}/status"))?;
    let stat = read(format!("/proc/{pid}/stat"))?;
    let field = |key: &str| field(&status, key).unwrap_or(0);
    // Fields after the command name, which may itself contain spaces.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = ::procfs::ticks_per_second().max(1) as f64;
    let ticks_at = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / ticks
    };
    // utime, stime, cutime, cstime are fields 14-17 of stat; 12-15 after
    // ')'. Reaped children's time keeps the CPU figure steady when a child
    // that was counted live exits.
    let (mut user, mut system) = (ticks_at(11), ticks_at(12));
    let threads = field("Threads:");
    if precise
        && threads == 1
        && let Some(runtime) = schedstat_s(pid)
    {
        // Split as the ticks were, for the user/system breakdown.
        let share = if user + system > 0.0 {
            user / (user + system)
        } else {
            1.0
        };
        (user, system) = (runtime * share, runtime * (1.0 - share));
    }
    Some(Proc {
        rss_bytes: field("VmRSS:") * 1024,
        threads,
        fd_table: field("FDSize:"),
        user_s: user + ticks_at(13),
        system_s: system + ticks_at(14),
        reaped_s: ticks_at(13) + ticks_at(14),
        parent: fields.get(1).and_then(|v| v.parse().ok()).unwrap_or(0),
        main_ctxt: (
            field("voluntary_ctxt_switches:"),
            field("nonvoluntary_ctxt_switches:"),
        ),
    })
}

/// A task's time on the CPU in seconds, from /proc/PID/schedstat (None
/// where the kernel does not keep it).
fn schedstat_s(pid: u32) -> Option<f64> {
    let text = read(format!("/proc/{pid}/schedstat"))?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

/// Open fds of a process whose table is small enough to count. Through
/// the `procfs` crate: since Linux 6.2 it takes the count from one stat of
/// /proc/PID/fd, a third of the cost of listing it (which it falls back
/// to, as this did by hand).
fn count_fds(pid: u32, fd_table: u64) -> Option<u64> {
    (fd_table <= MAX_FD_TABLE_TO_COUNT)
        .then(|| open_fds(pid))
        .flatten()
}

/// Open fds of a process, counted whatever its table's size (for a caller
/// that reads rarely: `loadgen soak`, once a second); None once it is gone.
pub fn open_fds(pid: u32) -> Option<u64> {
    ::procfs::process::Process::new(i32::try_from(pid).ok()?)
        .and_then(|p| p.fd_count())
        .ok()
        .map(|n| n as u64)
}

/// Reads one sample of the process alone; `None` once the process is gone.
pub fn sample(pid: u32) -> Option<Sample> {
    read_proc(pid, false).map(|p| alone(pid, &p))
}

fn alone(pid: u32, p: &Proc) -> Sample {
    Sample {
        rss_bytes: p.rss_bytes,
        pss_bytes: None,
        processes: 1,
        threads: p.threads,
        fds: count_fds(pid, p.fd_table),
        fd_table: p.fd_table,
        user_s: p.user_s,
        system_s: p.system_s,
        ctxt: (p.threads <= MAX_THREADS_TO_SUM)
            .then(|| thread_ctxt(pid))
            .flatten(),
        pids: Vec::new(),
        cpu_only: false,
    }
}

/// Reads one sample of `pid` and its descendants; `None` once `pid` is
/// gone. While it has no children and `tree` is false, this is exactly
/// [`sample`]; otherwise every process in the tree is read, PSS included.
pub fn sample_tree(pid: u32, tree: bool) -> Option<Sample> {
    read_tree(pid, tree, false)
}

/// As [`sample_tree`]; `cpu_only` leaves out PSS and open fds, most of the
/// cost of a tree sample.
pub(crate) fn read_tree(pid: u32, tree: bool, cpu_only: bool) -> Option<Sample> {
    let root = read_proc(pid, false)?;
    let mut pending = children(pid, root.threads);
    if pending.is_empty() && !tree {
        return Some(alone(pid, &root));
    }
    let mut s = Sample {
        rss_bytes: root.rss_bytes,
        pss_bytes: (!cpu_only).then_some(0),
        fds: (!cpu_only).then_some(0),
        ctxt: Some((0, 0)),
        cpu_only,
        ..Sample::default()
    };
    let mut seen = HashSet::from([pid]);
    let root_reaped_s = root.reaped_s;
    let (first_user, first_system) = (root.user_s, root.system_s);
    // The server's direct children read, with their CPU (see below).
    let mut direct: Vec<(u32, f64, f64)> = Vec::new();
    // Threads whose status is read for context switches, beyond the main
    // thread of every process (which its own status already gives).
    let mut extra_threads = 0;
    let mut next = Some((pid, root));
    while let Some((p, f)) = next.take() {
        s.processes += 1;
        s.pids.push(p);
        s.threads += f.threads;
        s.fd_table += f.fd_table;
        s.user_s += f.user_s;
        s.system_s += f.system_s;
        if f.parent == pid {
            direct.push((p, f.user_s, f.system_s));
        }
        if !cpu_only {
            s.fds = s.fds.zip(count_fds(p, f.fd_table)).map(|(a, b)| a + b);
            s.pss_bytes = s.pss_bytes.map(|a| a + pss(p));
        }
        let ctxt = if f.threads <= 1 {
            Some(f.main_ctxt)
        } else {
            extra_threads += f.threads;
            (extra_threads <= MAX_THREADS_TO_SUM)
                .then(|| thread_ctxt(p))
                .flatten()
        };
        s.ctxt = s.ctxt.zip(ctxt).map(|(a, b)| (a.0 + b.0, a.1 + b.1));
        if p != pid {
            pending.extend(children(p, f.threads));
        }
        // A child may exit between the listing and the reading: it is then
        // skipped, and its CPU time goes to its parent's once reaped.
        while let Some(c) = pending.pop() {
            if seen.insert(c)
                && let Some(f) = read_proc(c, true)
            {
                next = Some((c, f));
                break;
            }
        }
    }
    // The server read first, its children after: a child reaped during the
    // walk (read or not) would be lost, or, read again in the server's
    // reaped time, counted twice. If the server reaped any, its CPU is
    // taken again now, with the children still there.
    if let Some(again) = read_proc(pid, false)
        && again.reaped_s > root_reaped_s
    {
        // Everything but the server and its direct children stays as read.
        let mut user = s.user_s - first_user;
        let mut system = s.system_s - first_system;
        for &(c, u, sys) in &direct {
            if !std::path::Path::new(&format!("/proc/{c}")).exists() {
                // Reaped since it was read: it is in `again` now.
                user -= u;
                system -= sys;
            }
        }
        s.user_s = again.user_s + user;
        s.system_s = again.system_s + system;
    }
    Some(s)
}

/// Proportional set size of one process, from smaps_rollup (0 if gone or
/// a zombie, which has no memory left).
fn pss(pid: u32) -> u64 {
    read(format!("/proc/{pid}/smaps_rollup"))
        .and_then(|t| field(&t, "Pss:"))
        .map_or(0, |kib| kib * 1024)
}

/// The children of a process: every thread lists those it forked; past
/// [`MAX_THREADS_TO_SUM`] threads only the main thread's list is read.
fn children(pid: u32, threads: u64) -> Vec<u32> {
    let parse = |path: std::path::PathBuf| -> Vec<u32> {
        read(path)
            .map(|t| {
                t.split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    if threads > MAX_THREADS_TO_SUM || threads <= 1 {
        return parse(format!("/proc/{pid}/task/{pid}/children").into());
    }
    match std::fs::read_dir(format!("/proc/{pid}/task")) {
        Ok(dir) => dir
            .filter_map(|e| e.ok())
            .flat_map(|e| parse(e.path().join("children")))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Voluntary and involuntary context switches summed over every thread.
fn thread_ctxt(pid: u32) -> Option<(u64, u64)> {
    let mut total = (0, 0);
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Some(status) = read(entry.ok()?.path().join("status")) else {
            // The thread exited between listing and reading.
            continue;
        };
        total.0 += field(&status, "voluntary_ctxt_switches:").unwrap_or(0);
        total.1 += field(&status, "nonvoluntary_ctxt_switches:").unwrap_or(0);
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_files_limit_read_is_the_processs_own() {
        let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .expect("getrlimit");
        assert_eq!(open_files_limit(std::process::id()), Some(soft));
        let text = "Limit  Soft Limit  Hard Limit  Units\nMax open files  300  300  files\n";
        assert_eq!(soft_limit(text, "Max open files"), Some(300));
        assert_eq!(
            soft_limit(
                "Max open files  unlimited  unlimited  files",
                "Max open files"
            ),
            None
        );
    }

    #[test]
    fn the_test_process_alone_reads_as_before() {
        let me = std::process::id();
        let a = sample(me).unwrap();
        let b = sample_tree(me, false).unwrap();
        assert_eq!(a.processes, 1);
        // This test binary forks nothing: the same figures, no PSS.
        if b.processes == 1 {
            assert!(b.pss_bytes.is_none());
            assert_eq!(a.fd_table, b.fd_table);
        }
        let t = sample_tree(me, true).unwrap();
        assert!(t.pss_bytes.is_some_and(|p| p > 0));
        assert_eq!(t.pids.first(), Some(&me));
    }
}
