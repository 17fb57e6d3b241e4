//! Samples a server process from /proc while loadgen drives it: memory,
//! threads, open fds, CPU time and context switches, at 10 Hz.
//!
//! The sampler runs on loadgen's CPUs, so it must stay cheap or it would
//! disturb the very latencies being measured. Two figures cost in
//! proportion to the server's size and are only read while it is small:
//! open fds are counted exactly while the fd table has at most 1024 slots
//! (beyond that only the table's size is reported), and context switches,
//! which /proc keeps per thread, are summed while the server has at most
//! 256 threads (beyond that they are reported as not measured).
//!
//! A server that forks (one process per connection, prefork) keeps its
//! connections in child processes, so the sampler covers the server and all
//! its descendants, found through `/proc/PID/task/*/children` (the children
//! of the first 256 threads; past that, of the main thread only). While the
//! tree is the server alone the figures are exactly those of the process,
//! memory being its RSS. Once it has had children, every sample reads the
//! whole tree and the run's figures are the tree's (`memory_measure` says
//! which): memory is PSS summed over it (`smaps_rollup`: pages shared
//! copy-on-write between the forked processes count once in total, where
//! summed RSS would charge every child the whole shared binary); CPU is
//! every process's own time plus that of the children it has reaped (a
//! single-threaded child's own time from `schedstat`: its tick-sampled
//! stat time lags far behind); threads, fds and context switches are summed
//! (fds while every process's table has at most 1024 slots, context
//! switches while the multi-threaded processes have at most 256 threads in
//! all). /proc keeps no context switches of a process once it is gone, so
//! across a child's exit they are not reported.
//!
//! Reading a tree costs in proportion to it (about 60-100 us of CPU per
//! process, most of it `smaps_rollup`), on loadgen's CPUs, so tree samples
//! are budgeted: after each one the sampler waits until its CPU cost is at
//! most 2% of the time since ([`TREE_BUDGET`]), i.e. 10 Hz for a small
//! tree, every few seconds for a thousand processes. So that CPU still
//! covers the measured window, it reads the tree once more just before the
//! window opens, and once after it closes (in [`Sampler::finish`], called
//! while the run's connections are still open). The results give the
//! longest interval used, whether the budget stretched it, and the
//! sampler's own CPU during the window.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::probe::Watch;
use crate::probe::cgroup::ServerCgroup;
use crate::probe::cgroup_watch::GroupWatch;
pub use crate::probe::cgroup_watch::WindowFn;
use crate::probe::cpu::thread_cpu;
use crate::results::server::ServerStats;

/// Open fds are counted exactly up to this fd table size (per process).
const MAX_FD_TABLE_TO_COUNT: u64 = 1024;
/// Context switches are summed over threads up to this many threads; the
/// children of the first this-many threads are looked for.
const MAX_THREADS_TO_SUM: u64 = 256;
/// Most of a CPU the sampling of a process tree may take.
pub const TREE_BUDGET: f64 = 0.02;

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

/// `precise`: for a single-threaded process, take its own CPU time from
/// /proc/PID/schedstat (the scheduler's nanosecond runtime) rather than from
/// stat, whose tick-sampled utime+stime lags behind the runtime of a
/// process that runs in short bursts, by a tick or more each: nothing for
/// one server process, over a second of CPU summed over hundreds of
/// per-connection children (the lag is made up only when they are reaped).
fn read_proc(pid: u32, precise: bool) -> Option<Proc> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let field = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    // Fields after the command name, which may itself contain spaces.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
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
    let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

fn count_fds(pid: u32, fd_table: u64) -> Option<u64> {
    (fd_table <= MAX_FD_TABLE_TO_COUNT)
        .then(|| {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|d| d.count() as u64)
                .ok()
        })
        .flatten()
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
fn read_tree(pid: u32, tree: bool, cpu_only: bool) -> Option<Sample> {
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
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// The children of a process: every thread lists those it forked; past
/// [`MAX_THREADS_TO_SUM`] threads only the main thread's list is read.
fn children(pid: u32, threads: u64) -> Vec<u32> {
    let parse = |path: std::path::PathBuf| -> Vec<u32> {
        std::fs::read_to_string(path)
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
        let Ok(status) = std::fs::read_to_string(entry.ok()?.path().join("status")) else {
            // The thread exited between listing and reading.
            continue;
        };
        for line in status.lines() {
            let value = |l: &str| {
                l.split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if let Some(v) = line.strip_prefix("voluntary_ctxt_switches:") {
                total.0 += value(v);
            } else if let Some(v) = line.strip_prefix("nonvoluntary_ctxt_switches:") {
                total.1 += value(v);
            }
        }
    }
    Some(total)
}

/// What to sample.
#[derive(Clone, Debug)]
pub enum Source {
    /// A process on this machine, through /proc.
    Process(u32),
    /// A container, through the Docker Engine API.
    Container(crate::probe::docker::Docker, String),
}

impl Source {
    /// One sample; `tree`: read the whole process tree even if the server
    /// has no children now (once it has had some, every sample does);
    /// `cpu_only`: of a tree, only what CPU rates need.
    fn read(&self, tree: bool, cpu_only: bool) -> Option<Sample> {
        match self {
            Source::Process(pid) => read_tree(*pid, tree, cpu_only && tree),
            Source::Container(docker, name) => docker.sample(name).ok().map(|c| Sample {
                rss_bytes: c.memory_bytes,
                threads: c.pids,
                user_s: c.cpu_s,
                ..Sample::default()
            }),
        }
    }

    /// How often to sample: /proc is cheap; the Engine's stats call is not
    /// (about 0.7 s of dockerd's work here), so containers get 1 Hz.
    pub fn interval(&self) -> Duration {
        match self {
            Source::Process(_) => Duration::from_millis(100),
            Source::Container(..) => Duration::from_secs(1),
        }
    }
}

/// What the sampling thread hands back.
struct Sampled {
    samples: Vec<(Instant, Sample)>,
    /// Whether the server has had children: the final sample reads the tree.
    tree: bool,
    longest_interval: Duration,
    stretched: bool,
    /// Every read after the baseline: when it began and ended, and the
    /// CPU it took.
    walks: Vec<(Instant, Instant, Duration)>,
}

/// A background thread sampling one process or container.
pub struct Sampler {
    /// Dropped (or sent to) to stop the thread at once, even mid-wait.
    stop: mpsc::Sender<()>,
    thread: JoinHandle<Sampled>,
    source: Source,
    baseline: Sample,
    cgroup: Option<GroupWatch>,
}

impl Sampler {
    /// Takes the baseline sample now (before any connection), then samples
    /// every `source.interval()`, or less often when reading a process tree
    /// costs more than [`TREE_BUDGET`] of a CPU at that rate. Fails if
    /// there is nothing to sample.
    pub fn start(source: Source) -> Result<Sampler, String> {
        Sampler::start_with_window(source, Arc::new(|| None), None)
    }

    /// As [`Sampler::start`]; `window` tells, once known, the measured
    /// window of the run. While the server has a process tree the sampler
    /// then also reads it right before the window, and [`Sampler::finish`]
    /// right after it, so that CPU covers the window even when the budget
    /// spaces samples out further than the window is long. For that, call
    /// `finish` before closing the run's connections: a server that forks
    /// per connection would otherwise be read while its processes exit.
    /// With `cgroup` (the server's own group), that group is read before
    /// any connection and at the window's edges too.
    pub fn start_with_window(
        source: Source,
        window: WindowFn,
        cgroup: Option<Arc<ServerCgroup>>,
    ) -> Result<Sampler, String> {
        // The baseline reads the server's PSS too (one file, before any
        // load), in case it forks later and memory is then PSS.
        let baseline = source.read(true, false).ok_or_else(|| match &source {
            Source::Process(pid) => format!("no process {pid} to sample (--server-pid)"),
            Source::Container(_, name) => format!("cannot read the stats of container {name}"),
        })?;
        let (stop, stopped) = mpsc::channel::<()>();
        let reader = source.clone();
        let base = source.interval();
        let first = baseline.clone();
        let cgroup = cgroup
            .map(|g| GroupWatch::start(g, Arc::clone(&window)))
            .transpose()?;
        let thread = std::thread::Builder::new()
            .name("loadgen-sampler".into())
            .spawn(move || sample_loop(&reader, first, base, &window, &stopped))
            .map_err(|e| format!("cannot start the sampler thread: {e}"))?;
        Ok(Sampler {
            stop,
            thread,
            source,
            baseline,
            cgroup,
        })
    }

    /// As [`Sampler::start_with_window`] for a [`Watch`]: its cgroup is
    /// read only with a process source.
    pub fn watch(watch: Watch, window: WindowFn) -> Result<Sampler, String> {
        let is_process = watch.pid().is_some();
        let cgroup = watch.cgroup.filter(|_| is_process);
        Sampler::start_with_window(watch.source, window, cgroup)
    }

    /// Stops sampling and summarises; CPU and context-switch rates cover
    /// `window` (the measured part of the run).
    pub fn finish(self, window: (Instant, Instant), conns: usize) -> ServerStats {
        let _ = self.stop.send(());
        let sampled = self.thread.join().ok();
        let tree = sampled.as_ref().is_some_and(|s| s.tree);
        let mut samples = sampled
            .as_ref()
            .map(|s| s.samples.clone())
            .unwrap_or_default();
        let alive = self.source.read(tree, false);
        let alive_at_end = alive.is_some();
        if let Some(s) = alive {
            samples.push((Instant::now(), s));
        }
        let mut stats = summarise(&self.baseline, &samples, window, conns, alive_at_end);
        stats.cgroup = self.cgroup.map(|g| g.finish(conns));
        match &self.source {
            Source::Process(pid) => {
                stats.pid = Some(*pid);
                if let Some(s) = &sampled {
                    stats.sample_interval_ms = Some(s.longest_interval.as_secs_f64() * 1e3);
                    stats.sample_interval_stretched = s.stretched;
                    stats.sampler_cpu_percent = window_cost(&s.walks, window);
                }
            }
            Source::Container(_, name) => {
                stats.container = Some(name.clone());
                stats.source = "docker-api".into();
                stats.memory_measure = "cgroup".into();
                stats.peak_processes = None;
            }
        }
        stats
    }
}

/// The sampling thread: a sample every `base`, or, while the server has a
/// process tree, every `base` or long enough after the last one for its CPU
/// cost to stay within [`TREE_BUDGET`], plus one read just before the
/// measured window, and none inside it if one would cost more than the
/// budget of the whole window. Ends when `stopped` is sent to or
/// dropped (at once, even mid-wait) or the server is gone.
fn sample_loop(
    reader: &Source,
    first: Sample,
    base: Duration,
    window: &WindowFn,
    stopped: &mpsc::Receiver<()>,
) -> Sampled {
    let began = Instant::now();
    let mut out = Sampled {
        tree: first.processes > 1,
        samples: vec![(began, first)],
        longest_interval: base,
        stretched: false,
        walks: Vec::new(),
    };
    let mut next = began + base;
    // CPU time of the last tree walk.
    let mut last_cpu = Duration::ZERO;
    let mut took_start = false;
    loop {
        let now = Instant::now();
        // The read at the start of the window is taken as soon as the
        // window is known, in the warm-up (the same load, outside the
        // window), so that it is over before the window opens if the tree
        // can be read in the warm-up at all. The read at its end is the one
        // `finish` takes, while loadgen still holds its connections.
        let edges = window().filter(|_| out.tree);
        let start_due = edges.is_some() && !took_start;
        // A walk that would cost more than the budget of the whole window
        // waits until after it: the reads at its edges give its CPU.
        if let Some((from, to)) = edges
            && next >= from
            && next < to
            && last_cpu.as_secs_f64() > TREE_BUDGET * (to - from).as_secs_f64()
        {
            next = to + base;
        }
        let due = if start_due { now } else { next };
        // Wake often enough to see the window as soon as it is known.
        let poll = if out.tree && !took_start {
            base / 5
        } else {
            base
        };
        let wait = due.saturating_duration_since(now).min(poll);
        if !wait.is_zero() {
            match stopped.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => continue,
                Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        took_start |= start_due;
        let cpu0 = thread_cpu();
        let t0 = Instant::now();
        // The read before the window needs only CPU: it is the one most
        // likely to run into the window when the warm-up is short.
        let Some(s) = reader.read(out.tree, start_due) else {
            break;
        };
        let t1 = Instant::now();
        let cost = thread_cpu().saturating_sub(cpu0);
        out.walks.push((t0, t1, cost));
        out.tree |= s.processes > 1;
        // A tree is read process by process: its figures are as of the
        // middle of the walk, not its end.
        let at = if out.tree { t0 + (t1 - t0) / 2 } else { t1 };
        out.samples.push((at, s));
        // A tree sample costs in proportion to the tree: wait long enough
        // after it to keep within the budget.
        let interval = if out.tree {
            last_cpu = cost;
            budgeted(base, cost)
        } else {
            base
        };
        if interval > base {
            out.stretched = true;
            out.longest_interval = out.longest_interval.max(interval);
        }
        next = t1 + interval;
    }
    out
}

/// The interval after a tree sample that cost `cost` of CPU: `base`, or
/// long enough for sampling to stay within [`TREE_BUDGET`] of a CPU.
pub fn budgeted(base: Duration, cost: Duration) -> Duration {
    base.max(cost.div_f64(TREE_BUDGET))
}

/// The sampler's CPU within `window`, in % of one core: each read counted
/// for the part of it inside the window.
fn window_cost(
    walks: &[(Instant, Instant, Duration)],
    (from, to): (Instant, Instant),
) -> Option<f64> {
    let length = to.saturating_duration_since(from).as_secs_f64();
    if length <= 0.0 {
        return None;
    }
    let cpu: f64 = walks
        .iter()
        .map(|&(t0, t1, cost)| {
            let inside = t1.min(to).saturating_duration_since(t0.max(from));
            let span = (t1 - t0).as_secs_f64();
            if span > 0.0 {
                cost.as_secs_f64() * inside.as_secs_f64() / span
            } else if t0 >= from && t0 <= to {
                cost.as_secs_f64()
            } else {
                0.0
            }
        })
        .sum();
    Some(100.0 * cpu / length)
}

fn summarise(
    baseline: &Sample,
    samples: &[(Instant, Sample)],
    (from, to): (Instant, Instant),
    conns: usize,
    alive_at_end: bool,
) -> ServerStats {
    // Once the server has had children, memory is PSS over its tree, from
    // the samples that read it (and the baseline, which always does).
    let tree = baseline.processes > 1 || samples.iter().any(|(_, s)| s.processes > 1);
    let memory = |s: &Sample| -> Option<u64> { if tree { s.pss_bytes } else { Some(s.rss_bytes) } };
    let baseline_memory = memory(baseline).unwrap_or(baseline.rss_bytes);
    let peak_rss = samples
        .iter()
        .filter_map(|(_, s)| memory(s))
        .max()
        .unwrap_or(0);
    let in_window: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t >= from && *t <= to)
        .filter_map(|(_, s)| memory(s))
        .collect();
    let mean_rss = if in_window.is_empty() {
        peak_rss
    } else {
        in_window.iter().sum::<u64>() / in_window.len() as u64
    };
    // Rates between the samples closest to the window's edges: the last one
    // before each edge for the server alone (10 Hz); for a tree, whose
    // samples may be far apart, the one read just before the window and the
    // first one after it (`finish` takes one). When none came between the
    // edges, the first one after the end.
    let first = samples
        .iter()
        .rev()
        .find(|(t, _)| *t <= from)
        .or(samples.first());
    let after_end = || samples.iter().find(|(t, _)| *t > to);
    let last = if tree { after_end() } else { None }
        .or_else(|| {
            samples
                .iter()
                .rev()
                .find(|(t, _)| *t <= to)
                .filter(|(t, _)| first.is_some_and(|(t0, _)| t > t0))
        })
        .or_else(after_end)
        .or(samples.last());
    let (cpu_percent, vol, invol) = match (first, last) {
        (Some((t0, a)), Some((t1, b))) if t1 > t0 => {
            let secs = (*t1 - *t0).as_secs_f64();
            // /proc keeps no context switches of a process once it is
            // gone: across a child's exit the sum would undercount.
            let ctxt = a.ctxt.zip(b.ctxt).filter(|_| none_exited(a, b));
            (
                100.0 * ((b.user_s + b.system_s) - (a.user_s + a.system_s)) / secs,
                ctxt.map(|(a, b)| b.0.saturating_sub(a.0) as f64 / secs),
                ctxt.map(|(a, b)| b.1.saturating_sub(a.1) as f64 / secs),
            )
        }
        _ => (0.0, None, None),
    };
    ServerStats {
        pid: None,
        container: None,
        source: "procfs".into(),
        samples: samples.len(),
        baseline_rss_bytes: baseline_memory,
        peak_rss_bytes: peak_rss,
        mean_rss_bytes: mean_rss,
        rss_per_conn_bytes: if conns > 0 {
            peak_rss.saturating_sub(baseline_memory) as f64 / conns as f64
        } else {
            0.0
        },
        peak_threads: samples.iter().map(|(_, s)| s.threads).max().unwrap_or(0),
        peak_fds: if samples.iter().all(|(_, s)| s.fds.is_some() || s.cpu_only) {
            samples.iter().filter_map(|(_, s)| s.fds).max()
        } else {
            None
        },
        peak_fd_table: samples.iter().map(|(_, s)| s.fd_table).max().unwrap_or(0),
        memory_measure: if tree { "pss_tree" } else { "rss" }.into(),
        peak_processes: samples.iter().map(|(_, s)| s.processes).max(),
        sample_interval_ms: None,
        sample_interval_stretched: false,
        sampler_cpu_percent: None,
        cpu_percent,
        voluntary_ctxt_per_s: vol,
        involuntary_ctxt_per_s: invol,
        alive_at_end,
        cgroup: None,
    }
}

/// Whether every process of sample `a` is still in the later sample `b`
/// (a sample of the server alone lists no pids: the server only).
fn none_exited(a: &Sample, b: &Sample) -> bool {
    if a.pids.len() <= 1 {
        return true;
    }
    let later: HashSet<u32> = b.pids.iter().copied().collect();
    a.pids.iter().all(|p| later.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn alone(rss: u64, cpu: f64) -> Sample {
        Sample {
            rss_bytes: rss,
            processes: 1,
            threads: 1,
            fds: Some(3),
            fd_table: 64,
            user_s: cpu,
            ctxt: Some((10, 1)),
            ..Sample::default()
        }
    }

    fn tree(pss: u64, cpu: f64, pids: &[u32]) -> Sample {
        Sample {
            rss_bytes: 1 << 20,
            pss_bytes: Some(pss),
            processes: pids.len() as u64,
            pids: pids.to_vec(),
            ..alone(1 << 20, cpu)
        }
    }

    #[test]
    fn a_single_process_keeps_rss() {
        let t0 = Instant::now();
        let base = Sample {
            pss_bytes: Some(500),
            ..alone(1000, 0.0)
        };
        let samples = vec![
            (at(t0, 0), base.clone()),
            (at(t0, 100), alone(3000, 0.1)),
            (at(t0, 200), alone(5000, 0.2)),
        ];
        let s = summarise(&base, &samples, (at(t0, 50), at(t0, 250)), 4, true);
        assert_eq!(s.memory_measure, "rss");
        assert_eq!(s.baseline_rss_bytes, 1000, "RSS, not the baseline's PSS");
        assert_eq!(s.peak_rss_bytes, 5000);
        assert_eq!(s.rss_per_conn_bytes, 1000.0);
        assert_eq!(s.peak_processes, Some(1));
        assert!((s.cpu_percent - 100.0).abs() < 1e-6, "{}", s.cpu_percent);
    }

    #[test]
    fn a_tree_is_measured_in_pss_from_a_pss_baseline() {
        let t0 = Instant::now();
        let base = Sample {
            pss_bytes: Some(800),
            ..alone(1000, 0.0)
        };
        let samples = vec![
            (at(t0, 0), base.clone()),
            // Before the tree was seen: RSS only, not used for memory.
            (at(t0, 100), alone(9999, 0.1)),
            (at(t0, 200), tree(4800, 0.2, &[1, 2, 3])),
            (at(t0, 400), tree(2800, 0.6, &[1, 2, 3, 4])),
        ];
        let s = summarise(&base, &samples, (at(t0, 150), at(t0, 350)), 2, true);
        assert_eq!(s.memory_measure, "pss_tree");
        assert_eq!(s.baseline_rss_bytes, 800);
        assert_eq!(s.peak_rss_bytes, 4800);
        assert_eq!(s.rss_per_conn_bytes, 2000.0);
        assert_eq!(s.peak_processes, Some(4));
        // A tree's CPU runs to the first sample after the window: 0.5 s
        // over the 300 ms from the one before it.
        assert!(
            (s.cpu_percent - 100.0 * 0.5 / 0.3).abs() < 1e-6,
            "{}",
            s.cpu_percent
        );
        assert!(s.voluntary_ctxt_per_s.is_some(), "no process exited");
    }

    #[test]
    fn context_switches_are_not_reported_across_a_child_exit() {
        let t0 = Instant::now();
        let base = tree(1000, 0.0, &[1, 2, 3]);
        let samples = vec![
            (at(t0, 0), base.clone()),
            (at(t0, 300), tree(1000, 0.3, &[1, 3, 4])),
        ];
        let s = summarise(&base, &samples, (at(t0, 10), at(t0, 200)), 1, true);
        assert!(s.voluntary_ctxt_per_s.is_none());
        assert!(s.involuntary_ctxt_per_s.is_none());
        assert!(s.cpu_percent > 0.0);
    }

    #[test]
    fn tree_sampling_stays_within_its_budget() {
        let base = Duration::from_millis(100);
        assert_eq!(budgeted(base, Duration::from_millis(1)), base);
        assert_eq!(budgeted(base, Duration::from_millis(2)), base);
        // 30 ms of CPU per walk: one every 1.5 s is 2% of a CPU.
        assert_eq!(
            budgeted(base, Duration::from_millis(30)),
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn the_samplers_own_cpu_counts_within_the_window_only() {
        let t0 = Instant::now();
        let walks = vec![
            // Before the window: not counted.
            (at(t0, 0), at(t0, 100), Duration::from_millis(50)),
            // Half inside: half its cost.
            (at(t0, 950), at(t0, 1050), Duration::from_millis(40)),
        ];
        let pct = window_cost(&walks, (at(t0, 100), at(t0, 1000))).unwrap();
        assert!((pct - 100.0 * 0.020 / 0.9).abs() < 1e-6, "{pct}");
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
