//! The sampling thread: reads the server (a [`Source`]) at 10 Hz while
//! loadgen drives it, within a CPU budget, and summarises the run when it
//! finishes. How one reading is taken is [`crate::probe::procfs`]'s; how
//! the readings become [`ServerStats`], [`crate::probe::summary`]'s.
//!
//! The sampler runs on loadgen's CPUs, so it must stay cheap or it would
//! disturb the very latencies being measured. While the server is one
//! process a reading is cheap. Once it has had children, every sample reads
//! the whole tree and the run's figures are the tree's (`memory_measure`
//! says which). /proc keeps no context switches of a process once it is
//! gone, so across a child's exit they are not reported.
//!
//! Reading a tree costs in proportion to it (about 60-100 us of CPU per
//! process), on loadgen's CPUs, so tree samples are budgeted: after each
//! one the sampler waits until its CPU cost is at most 2% of the time since
//! ([`TREE_BUDGET`]), i.e. 10 Hz for a small tree, every few seconds for a
//! thousand processes. So that CPU still covers the measured window, it
//! reads the tree once more just before the window opens, and once after
//! it closes (in [`Sampler::finish`], called while the run's connections
//! are still open). The results give the longest interval used, whether
//! the budget stretched it, and the sampler's own CPU during the window.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::probe::cgroup::ServerCgroup;
use crate::probe::cgroup_watch::GroupWatch;
pub use crate::probe::cgroup_watch::WindowFn;
use crate::probe::counters::{CounterWatch, ServerCounters};
use crate::probe::cpu::thread_cpu;
pub use crate::probe::procfs::{Sample, sample, sample_tree};
pub use crate::probe::source::Source;
use crate::probe::source::Watch;
use crate::probe::summary::summarise;
use crate::results::server::{KernelCounts, ServerStats};

/// Why a process's system calls and context switches are not counted when
/// loadgen did not start it (`loadgen run --server-pid`): counters opened
/// on a running process miss the threads and children it already has.
pub const UNCOUNTED_PROCESS: &str = "not measured: the kernel's counters are opened when `loadgen compare` starts the server (before it makes threads or processes); a running process's existing threads would be missed";
/// Why a container's are not.
pub const UNCOUNTED_CONTAINER: &str = "not measured: the server runs in a container";

/// Most of a CPU the sampling of a process tree may take.
pub const TREE_BUDGET: f64 = 0.02;

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
    /// The kernel's counters, read at the window's edges; Err: why not.
    kernel: Result<CounterWatch, String>,
    /// Whether `finish` reads the server's limits ([`crate::probe::limits`]).
    limits: bool,
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
        Sampler::start_with(source, window, cgroup, false)
    }

    /// As [`Sampler::start_with_window`]; `breakdown`: with the group,
    /// also break the kernel's memory down by slab cache
    /// ([`crate::probe::slab`]).
    fn start_with(
        source: Source,
        window: WindowFn,
        cgroup: Option<Arc<ServerCgroup>>,
        breakdown: bool,
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
            .map(|g| GroupWatch::start(g, Arc::clone(&window), breakdown))
            .transpose()?;
        let thread = std::thread::Builder::new()
            .name("loadgen-sampler".into())
            .spawn(move || sample_loop(&reader, first, base, &window, &stopped))
            .map_err(|e| format!("cannot start the sampler thread: {e}"))?;
        let kernel = Err(match &source {
            Source::Process(_) => UNCOUNTED_PROCESS,
            Source::Container(..) => UNCOUNTED_CONTAINER,
        }
        .to_string());
        Ok(Sampler {
            stop,
            thread,
            source,
            baseline,
            cgroup,
            kernel,
            limits: false,
        })
    }

    /// Reads `counters` (the server's, open since it started) at the
    /// window's edges too.
    pub fn with_counters(
        mut self,
        counters: Arc<ServerCounters>,
        window: WindowFn,
    ) -> Result<Sampler, String> {
        self.kernel = Ok(CounterWatch::start(counters, window)?);
        Ok(self)
    }

    /// As [`Sampler::start_with_window`] for a [`Watch`]: its cgroup is
    /// read only with a process source, and the kernel's memory broken
    /// down only with its cgroup (both need root).
    pub fn watch(watch: Watch, window: WindowFn) -> Result<Sampler, String> {
        let is_process = watch.pid().is_some();
        let cgroup = watch.cgroup.filter(|_| is_process);
        let counters = watch.counters.filter(|_| is_process);
        let mut sampler = Sampler::start_with(
            watch.source,
            Arc::clone(&window),
            cgroup,
            watch.kernel_breakdown,
        )?;
        sampler.limits = watch.limits && is_process;
        match counters {
            Some(c) => sampler.with_counters(c, window),
            None => Ok(sampler),
        }
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
        // Read while the run's connections are still open, as the last
        // sample was.
        if let (true, Source::Process(pid)) = (self.limits && alive_at_end, &self.source) {
            let pids = samples
                .last()
                .map(|(_, s)| s.pids.as_slice())
                .unwrap_or(&[]);
            let group = self.cgroup.as_ref().map(GroupWatch::group);
            stats.limits = crate::probe::limits::read(*pid, pids, group);
        }
        if let Some((cg, breakdown)) = self.cgroup.map(|g| g.finish(conns)) {
            stats.cgroup = Some(cg);
            stats.kernel_breakdown = breakdown;
        }
        stats.kernel = Some(match self.kernel {
            Ok(k) => k.finish(),
            Err(reason) => KernelCounts::unmeasured(&reason),
        });
        match &self.source {
            Source::Process(pid) => {
                stats.pid = Some(*pid);
                stats.fd_limit = crate::probe::procfs::open_files_limit(*pid);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
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
}
