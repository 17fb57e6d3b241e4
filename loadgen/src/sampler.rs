//! Samples a server process from /proc while loadgen drives it: RSS,
//! threads, open fds, CPU time and context switches, at 10 Hz.
//!
//! The sampler runs on loadgen's CPUs, so it must stay cheap or it would
//! disturb the very latencies being measured. Two figures cost in
//! proportion to the server's size and are only read while it is small:
//! open fds are counted exactly while the fd table has at most 1024 slots
//! (beyond that only the table's size is reported), and context switches,
//! which /proc keeps per thread, are summed while the server has at most
//! 256 threads (beyond that they are reported as not measured).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Open fds are counted exactly up to this fd table size.
const MAX_FD_TABLE_TO_COUNT: u64 = 1024;
/// Context switches are summed over threads up to this many threads.
const MAX_THREADS_TO_SUM: u64 = 256;

/// One reading of /proc/PID.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    pub rss_bytes: u64,
    pub threads: u64,
    /// Open fds, when counted (see the module docs).
    pub fds: Option<u64>,
    /// Size of the fd table (FDSize): at least the number of open fds.
    pub fd_table: u64,
    /// User and system CPU seconds since the process started, all threads.
    pub user_s: f64,
    pub system_s: f64,
    /// Summed over the process's threads, when summed (see the module docs).
    pub ctxt: Option<(u64, u64)>,
}

/// Reads one sample; `None` once the process is gone.
pub fn sample(pid: u32) -> Option<Sample> {
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
    let threads = field("Threads:");
    let fd_table = field("FDSize:");
    let fds = (fd_table <= MAX_FD_TABLE_TO_COUNT)
        .then(|| {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|d| d.count() as u64)
                .ok()
        })
        .flatten();
    Some(Sample {
        rss_bytes: field("VmRSS:") * 1024,
        threads,
        fds,
        fd_table,
        // utime and stime are fields 14 and 15 of stat; 12 and 13 after ')'.
        user_s: ticks_at(11),
        system_s: ticks_at(12),
        ctxt: (threads <= MAX_THREADS_TO_SUM)
            .then(|| thread_ctxt(pid))
            .flatten(),
    })
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

/// The server figures a run reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerStats {
    /// The process sampled, when sampled through /proc.
    pub pid: Option<u32>,
    /// The container sampled, when sampled through the Docker API.
    #[serde(default)]
    pub container: Option<String>,
    /// Where the figures came from: "procfs" (the process, every thread) or
    /// "docker-api" (the container's cgroup as the Engine reports it: memory
    /// without page cache, CPU time, pids; no fds or context switches).
    pub source: String,
    pub samples: usize,
    pub baseline_rss_bytes: u64,
    pub peak_rss_bytes: u64,
    pub mean_rss_bytes: u64,
    /// (peak - baseline) / connections opened.
    pub rss_per_conn_bytes: f64,
    pub peak_threads: u64,
    /// Most open fds counted (None: the table grew past what is counted).
    pub peak_fds: Option<u64>,
    pub peak_fd_table: u64,
    /// CPU used over the measured window, in % of one core.
    pub cpu_percent: f64,
    /// Over the measured window; None when not measured (too many threads).
    pub voluntary_ctxt_per_s: Option<f64>,
    pub involuntary_ctxt_per_s: Option<f64>,
    /// False if the process was gone before the run ended.
    pub alive_at_end: bool,
}

/// What to sample.
#[derive(Clone, Debug)]
pub enum Source {
    /// A process on this machine, through /proc.
    Process(u32),
    /// A container, through the Docker Engine API.
    Container(crate::docker::Docker, String),
}

impl Source {
    fn read(&self) -> Option<Sample> {
        match self {
            Source::Process(pid) => sample(*pid),
            Source::Container(docker, name) => docker.sample(name).ok().map(|c| Sample {
                rss_bytes: c.memory_bytes,
                threads: c.pids,
                fds: None,
                fd_table: 0,
                user_s: c.cpu_s,
                system_s: 0.0,
                ctxt: None,
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

/// A background thread sampling one process or container.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<(Instant, Sample)>>,
    source: Source,
    baseline: Sample,
}

impl Sampler {
    /// Takes the baseline sample now (before any connection), then samples
    /// every `source.interval()`. Fails if there is nothing to sample.
    pub fn start(source: Source) -> Result<Sampler, String> {
        let baseline = source.read().ok_or_else(|| match &source {
            Source::Process(pid) => format!("no process {pid} to sample (--server-pid)"),
            Source::Container(_, name) => format!("cannot read the stats of container {name}"),
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let reader = source.clone();
        let interval = source.interval();
        let thread = std::thread::Builder::new()
            .name("loadgen-sampler".into())
            .spawn(move || {
                let mut samples = vec![(Instant::now(), baseline)];
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(interval);
                    match reader.read() {
                        Some(s) => samples.push((Instant::now(), s)),
                        None => break,
                    }
                }
                samples
            })
            .map_err(|e| format!("cannot start the sampler thread: {e}"))?;
        Ok(Sampler {
            stop,
            thread,
            source,
            baseline,
        })
    }

    /// Stops sampling and summarises; CPU and context-switch rates cover
    /// `window` (the measured part of the run).
    pub fn finish(self, window: (Instant, Instant), conns: usize) -> ServerStats {
        self.stop.store(true, Ordering::Relaxed);
        let mut samples = self.thread.join().unwrap_or_default();
        let alive = self.source.read();
        if let Some(s) = alive {
            samples.push((Instant::now(), s));
        }
        let mut stats = summarise(self.baseline, &samples, window, conns, alive.is_some());
        match &self.source {
            Source::Process(pid) => stats.pid = Some(*pid),
            Source::Container(_, name) => {
                stats.container = Some(name.clone());
                stats.source = "docker-api".into();
            }
        }
        stats
    }
}

fn summarise(
    baseline: Sample,
    samples: &[(Instant, Sample)],
    (from, to): (Instant, Instant),
    conns: usize,
    alive_at_end: bool,
) -> ServerStats {
    let peak_rss = samples.iter().map(|(_, s)| s.rss_bytes).max().unwrap_or(0);
    let in_window: Vec<&(Instant, Sample)> = samples
        .iter()
        .filter(|(t, _)| *t >= from && *t <= to)
        .collect();
    let mean_rss = if in_window.is_empty() {
        peak_rss
    } else {
        in_window.iter().map(|(_, s)| s.rss_bytes).sum::<u64>() / in_window.len() as u64
    };
    // Rates between the samples closest to the window's edges.
    let first = samples
        .iter()
        .rev()
        .find(|(t, _)| *t <= from)
        .or(samples.first());
    let last = samples
        .iter()
        .rev()
        .find(|(t, _)| *t <= to)
        .or(samples.last());
    let (cpu_percent, vol, invol) = match (first, last) {
        (Some((t0, a)), Some((t1, b))) if t1 > t0 => {
            let secs = (*t1 - *t0).as_secs_f64();
            let ctxt = a.ctxt.zip(b.ctxt);
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
        baseline_rss_bytes: baseline.rss_bytes,
        peak_rss_bytes: peak_rss,
        mean_rss_bytes: mean_rss,
        rss_per_conn_bytes: if conns > 0 {
            peak_rss.saturating_sub(baseline.rss_bytes) as f64 / conns as f64
        } else {
            0.0
        },
        peak_threads: samples.iter().map(|(_, s)| s.threads).max().unwrap_or(0),
        peak_fds: if samples.iter().all(|(_, s)| s.fds.is_some()) {
            samples.iter().filter_map(|(_, s)| s.fds).max()
        } else {
            None
        },
        peak_fd_table: samples.iter().map(|(_, s)| s.fd_table).max().unwrap_or(0),
        cpu_percent,
        voluntary_ctxt_per_s: vol,
        involuntary_ctxt_per_s: invol,
        alive_at_end,
    }
}
