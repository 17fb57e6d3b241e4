//! Samples a server process from /proc while loadgen drives it: RSS,
//! threads, open fds, CPU time and context switches, at 10 Hz or faster.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One reading of /proc/PID.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    pub rss_bytes: u64,
    pub threads: u64,
    pub fds: u64,
    /// User and system CPU seconds since the process started.
    pub user_s: f64,
    pub system_s: f64,
    pub voluntary_ctxt: u64,
    pub involuntary_ctxt: u64,
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
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    Some(Sample {
        rss_bytes: field("VmRSS:") * 1024,
        threads: field("Threads:"),
        fds,
        // utime and stime are fields 14 and 15 of stat; 12 and 13 after ')'.
        user_s: ticks_at(11),
        system_s: ticks_at(12),
        voluntary_ctxt: field("voluntary_ctxt_switches:"),
        involuntary_ctxt: field("nonvoluntary_ctxt_switches:"),
    })
}

/// The server figures a run reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerStats {
    pub pid: u32,
    /// Where the figures came from (here always "procfs").
    pub source: String,
    pub samples: usize,
    pub baseline_rss_bytes: u64,
    pub peak_rss_bytes: u64,
    pub mean_rss_bytes: u64,
    /// (peak - baseline) / connections opened.
    pub rss_per_conn_bytes: f64,
    pub peak_threads: u64,
    pub peak_fds: u64,
    /// CPU used over the measured window, in % of one core.
    pub cpu_percent: f64,
    pub voluntary_ctxt_per_s: f64,
    pub involuntary_ctxt_per_s: f64,
    /// False if the process was gone before the run ended.
    pub alive_at_end: bool,
}

/// A background thread sampling one process.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<(Instant, Sample)>>,
    pid: u32,
    baseline: Sample,
}

impl Sampler {
    /// Takes the baseline sample now (before any connection), then samples
    /// every `interval`. Fails if the process does not exist.
    pub fn start(pid: u32, interval: Duration) -> Result<Sampler, String> {
        let baseline =
            sample(pid).ok_or_else(|| format!("no process {pid} to sample (--server-pid)"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("loadgen-sampler".into())
            .spawn(move || {
                let mut samples = vec![(Instant::now(), baseline)];
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(interval);
                    match sample(pid) {
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
            pid,
            baseline,
        })
    }

    /// Stops sampling and summarises; CPU and context-switch rates cover
    /// `window` (the measured part of the run).
    pub fn finish(self, window: (Instant, Instant), conns: usize) -> ServerStats {
        self.stop.store(true, Ordering::Relaxed);
        let mut samples = self.thread.join().unwrap_or_default();
        let alive = sample(self.pid);
        if let Some(s) = alive {
            samples.push((Instant::now(), s));
        }
        summarise(
            self.pid,
            self.baseline,
            &samples,
            window,
            conns,
            alive.is_some(),
        )
    }
}

fn summarise(
    pid: u32,
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
            (
                100.0 * ((b.user_s + b.system_s) - (a.user_s + a.system_s)) / secs,
                b.voluntary_ctxt.saturating_sub(a.voluntary_ctxt) as f64 / secs,
                b.involuntary_ctxt.saturating_sub(a.involuntary_ctxt) as f64 / secs,
            )
        }
        _ => (0.0, 0.0, 0.0),
    };
    ServerStats {
        pid,
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
        peak_fds: samples.iter().map(|(_, s)| s.fds).max().unwrap_or(0),
        cpu_percent,
        voluntary_ctxt_per_s: vol,
        involuntary_ctxt_per_s: invol,
        alive_at_end,
    }
}
