//! Turns the samples of a run into its [`ServerStats`]: memory (RSS of
//! the server alone, PSS over its tree once it has had children), peaks,
//! and CPU and context-switch rates over the measured window. Called by
//! [`crate::probe::sampler`] when a run finishes.

use std::collections::HashSet;
use std::time::Instant;

use crate::probe::procfs::Sample;
use crate::results::server::ServerStats;

/// The figures of a run from its `baseline` and `samples`; rates cover the
/// window `(from, to)`.
pub(crate) fn summarise(
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
        fd_limit: None,
        limits: None,
        kernel: None,
        cgroup: None,
        kernel_breakdown: None,
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
    use std::time::Duration;

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
}
