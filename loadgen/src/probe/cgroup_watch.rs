//! What a server's own cgroup counted during a run (exact CPU time over
//! the measured window, memory with the kernel's share), and the watcher
//! that reads the group at the window's edges for [`crate::probe::sampler`]
//! (and, where asked, the machine's slab counters with it: [`slab`]).

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::probe::cgroup::{Reading, ServerCgroup};
use crate::probe::slab;
use crate::results::server::{CgroupStats, KernelBreakdown};

/// The measured window of a run, once it is known.
pub type WindowFn = Arc<dyn Fn() -> Option<(Instant, Instant)> + Send + Sync>;

/// The figures between `base` (before any connection), `from` and
/// `to` (the window's edges) for `conns` connections.
pub fn stats_between(
    group: &ServerCgroup,
    base: &Reading,
    from: Option<&Reading>,
    to: Option<&Reading>,
    conns: usize,
) -> CgroupStats {
    let mut stats = stats_between_parts(
        group.version(),
        group.name(),
        group.quota(),
        base,
        from,
        to,
        conns,
    );
    stats.socket_accounting = Some(group.socket_accounting().is_ok());
    stats
}

/// As [`stats_between`], for the group named `name`.
pub fn stats_between_parts(
    version: &str,
    name: &str,
    cpu_quota: Option<f64>,
    base: &Reading,
    from: Option<&Reading>,
    to: Option<&Reading>,
    conns: usize,
) -> CgroupStats {
    let per_conn = |a: Option<u64>, b: Option<u64>| -> Option<f64> {
        let (a, b) = (a?, b?);
        (conns > 0).then(|| (b as f64 - a as f64) / conns as f64)
    };
    let window = from.zip(to);
    // No end reading: no end figures (from the baseline they would read 0).
    let end = to.cloned().unwrap_or_default();
    let end_of = |f: fn(&Reading) -> Option<u64>| to.and(f(&end));
    CgroupStats {
        version: version.into(),
        name: name.into(),
        cpu_quota,
        cpu_s: window.map(|(a, b)| b.cpu_ns.saturating_sub(a.cpu_ns) as f64 / 1e9),
        cpu_unmeasured: None,
        cpu_us_per_msg: None,
        throttled_periods: window
            .and_then(|(a, b)| Some(b.throttled_periods?.saturating_sub(a.throttled_periods?))),
        throttled_s: window
            .and_then(|(a, b)| Some(b.throttled_ns?.saturating_sub(a.throttled_ns?) as f64 / 1e9)),
        baseline_memory_bytes: base.memory_bytes,
        end_memory_bytes: end_of(|r| r.memory_bytes),
        memory_per_conn_bytes: per_conn(base.memory_bytes, end_of(|r| r.memory_bytes)),
        baseline_kernel_bytes: base.kernel_bytes,
        end_kernel_bytes: end_of(|r| r.kernel_bytes),
        kernel_per_conn_bytes: per_conn(base.kernel_bytes, end_of(|r| r.kernel_bytes)),
        sock_per_conn_bytes: per_conn(base.sock_bytes, end_of(|r| r.sock_bytes)),
        socket_accounting: None,
        settle_s: None,
        settled: None,
    }
}

/// The server's cgroup, read before any connection and at the window's
/// edges by a thread of its own (so that the edges are read on time
/// whatever the /proc sampling is doing).
pub struct GroupWatch {
    group: Arc<ServerCgroup>,
    baseline: Reading,
    /// The slab counters before any connection, when a breakdown was asked
    /// for (or why they could not be read).
    slab_before: Option<Result<slab::Snapshot, String>>,
    stop: mpsc::Sender<()>,
    thread: JoinHandle<Edges>,
}

/// The group at the window's start and end, and the slab counters at its
/// end: read there, the run's connections are all open and loadgen's
/// workers still hold theirs in their epoll sets, so both ends are counted
/// as they are (after the workers end, their epoll items are freed only
/// after an RCU grace period, and would be counted as the server's).
type Edges = (
    Option<Reading>,
    Option<Reading>,
    Option<Result<slab::Snapshot, String>>,
    Option<String>,
);

impl GroupWatch {
    /// `breakdown`: also snapshot the slab counters now and at the
    /// window's end.
    pub fn start(
        group: Arc<ServerCgroup>,
        window: WindowFn,
        breakdown: bool,
    ) -> Result<GroupWatch, String> {
        let mut baseline = group
            .read()
            .ok_or_else(|| format!("cannot read cgroup {}", group.name()))?;
        let slab_before = breakdown.then(slab::snapshot);
        if breakdown {
            // The lowest charge over the snapshot's readings and a few more:
            // see [`lowest`].
            for _ in 0..BASELINE_READINGS {
                std::thread::sleep(BASELINE_GAP);
                if let Some(r) = group.read() {
                    baseline = lowest(baseline, r);
                }
            }
        }
        let snap_after = matches!(slab_before, Some(Ok(_)));
        let (stop, stopped) = mpsc::channel::<()>();
        let reader = Arc::clone(&group);
        let thread = std::thread::Builder::new()
            .name("loadgen-cgroup".into())
            .spawn(move || read_edges(&reader, &window, &stopped, snap_after))
            .map_err(|e| format!("cannot start the cgroup thread: {e}"))?;
        Ok(GroupWatch {
            group,
            baseline,
            slab_before,
            stop,
            thread,
        })
    }

    /// The group's figures, and the kernel's memory by slab cache where it
    /// was asked for.
    /// The group watched.
    pub fn group(&self) -> &ServerCgroup {
        &self.group
    }

    pub fn finish(self, conns: usize) -> (CgroupStats, Option<KernelBreakdown>) {
        let _ = self.stop.send(());
        let (from, to, slab_after, late) = self.thread.join().unwrap_or((None, None, None, None));
        // A run that ended before the window closed: read it now.
        let to = match &late {
            Some(_) => None,
            None => to.or_else(|| from.as_ref().and(self.group.read())),
        };
        let mut stats = stats_between(
            &self.group,
            &self.baseline,
            from.as_ref(),
            to.as_ref(),
            conns,
        );
        stats.cpu_unmeasured = late;
        let breakdown = self.slab_before.map(|before| {
            let unmeasured = |why: String| KernelBreakdown {
                conns: conns as u64,
                unmeasured: Some(why),
                ..KernelBreakdown::default()
            };
            match (before, slab_after) {
                (Ok(b), Some(Ok(a))) => slab::breakdown(&b, &a, conns),
                (Err(e), _) | (_, Some(Err(e))) => unmeasured(e),
                (Ok(_), None) => unmeasured("the run ended before its measured window did".into()),
            }
        });
        (stats, breakdown)
    }
}

/// Sleeps until `t`; false where told to stop first.
fn wait_until(stopped: &mpsc::Receiver<()>, t: Instant) -> bool {
    loop {
        let now = Instant::now();
        if now >= t {
            return true;
        }
        match stopped.recv_timeout(t - now) {
            Err(RecvTimeoutError::Timeout) => continue,
            _ => return false,
        }
    }
}

/// The run's measured window, once it is known; None where told to stop
/// first.
fn wait_for_window(window: &WindowFn, stopped: &mpsc::Receiver<()>) -> Option<(Instant, Instant)> {
    loop {
        if let Some(w) = window() {
            return Some(w);
        }
        match stopped.recv_timeout(Duration::from_millis(5)) {
            Err(RecvTimeoutError::Timeout) => continue,
            _ => return None,
        }
    }
}

/// How late after a window's edge a reading may be taken and still stand
/// for it: 5% of the window, at least 25 ms. A reader thread starved past
/// both edges (a loaded machine) once read them together, and the run's
/// CPU read 0.
fn late(edge: Instant, (from, to): (Instant, Instant)) -> Option<String> {
    let limit = (to.saturating_duration_since(from) / 20).max(Duration::from_millis(25));
    let by = Instant::now().saturating_duration_since(edge);
    (by > limit).then(|| {
        format!(
            "not measured: the reader was {} ms late at the window's {} (the machine was busy)",
            by.as_millis(),
            if edge == from { "start" } else { "end" }
        )
    })
}

/// Waits for the window, then reads the group at its start and its end.
fn read_edges(
    group: &ServerCgroup,
    window: &WindowFn,
    stopped: &mpsc::Receiver<()>,
    snap_after: bool,
) -> Edges {
    let wait_until = |t: Instant| wait_until(stopped, t);
    let Some((from, to)) = wait_for_window(window, stopped) else {
        return (None, None, None, None);
    };
    if !wait_until(from) {
        return (None, None, None, None);
    }
    let a = group.read();
    if let Some(why) = late(from, (from, to)) {
        return (None, None, None, Some(why));
    }
    // Inside the window, every connection is open at both ends; at its
    // end loadgen's workers stop and close their epoll sets, whose items
    // the kernel frees only after an RCU grace period. So the slab
    // snapshot is taken to end before the window does.
    let mut slabs = None;
    if snap_after {
        let at = to.checked_sub(SLAB_LEAD).map_or(from, |t| t.max(from));
        if !wait_until(at) {
            return (a, None, None, None);
        }
        slabs = Some(slab::snapshot());
    }
    if !wait_until(to) {
        return (a, None, slabs, None);
    }
    let b = group.read();
    match late(to, (from, to)) {
        Some(why) => (a, None, slabs, Some(why)),
        None => (a, b, slabs, None),
    }
}

/// Readings of the baseline where memory per connection is the point
/// (about a second of them, once per idle run).
const BASELINE_READINGS: usize = 100;
const BASELINE_GAP: Duration = Duration::from_millis(10);

/// The baseline as the lowest memory charge of two readings (the later's
/// CPU time). A server that spins on a non-blocking `accept` with nothing
/// to accept (`polling`) allocates a socket inode, file and dentry on each
/// call and frees them after an RCU grace period: before its first
/// connection it carries up to a few MB of such objects at any moment,
/// varying from reading to reading, which once it holds connections (and
/// each pass takes longer) it no longer does. Taken from one reading, that
/// float came off its memory per connection (negative with 200
/// connections); the lowest of several readings is the nearest to the
/// server's own.
fn lowest(a: Reading, b: Reading) -> Reading {
    let min = |x: Option<u64>, y: Option<u64>| match (x, y) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    Reading {
        memory_bytes: min(a.memory_bytes, b.memory_bytes),
        kernel_bytes: min(a.kernel_bytes, b.kernel_bytes),
        sock_bytes: min(a.sock_bytes, b.sock_bytes),
        ..b
    }
}

/// How long before the window's end the slab snapshot starts: its
/// readings take about 100 ms.
const SLAB_LEAD: Duration = Duration::from_millis(250);

/// Something read at a run's window's edges by a thread of its own: the
/// cgroup here, the kernel's counters in [`crate::probe::counters`].
pub struct EdgeWatch<R> {
    read: Arc<dyn Fn() -> Option<R> + Send + Sync>,
    stop: mpsc::Sender<()>,
    thread: JoinHandle<AtEdges<R>>,
}

/// The readings at a window's start and end, and why neither counts where
/// one was taken too late ([`late`]).
type AtEdges<R> = (Option<R>, Option<R>, Option<String>);

impl<R: Send + 'static> EdgeWatch<R> {
    /// Starts the thread `name` that waits for `window` and calls `read` at
    /// its start and its end.
    pub fn start(
        name: &str,
        read: impl Fn() -> Option<R> + Send + Sync + 'static,
        window: WindowFn,
    ) -> Result<EdgeWatch<R>, String> {
        let read: Arc<dyn Fn() -> Option<R> + Send + Sync> = Arc::new(read);
        let (stop, stopped) = mpsc::channel::<()>();
        let reader = Arc::clone(&read);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || read_at_edges(&*reader, &window, &stopped))
            .map_err(|e| format!("cannot start the {name} thread: {e}"))?;
        Ok(EdgeWatch { read, stop, thread })
    }

    /// The readings at the window's start and end; a run that ended before
    /// the window closed is read now for its end. Where a reading came too
    /// late to stand for its edge, neither is given, and the reason is.
    pub fn finish(self) -> AtEdges<R> {
        let _ = self.stop.send(());
        let (from, to, late) = self.thread.join().unwrap_or((None, None, None));
        if late.is_some() {
            return (None, None, late);
        }
        let to = match (&from, to) {
            (Some(_), None) => (self.read)(),
            (_, to) => to,
        };
        (from, to, None)
    }
}

/// Waits for the window, then reads at its start and its end.
fn read_at_edges<R>(
    read: &dyn Fn() -> Option<R>,
    window: &WindowFn,
    stopped: &mpsc::Receiver<()>,
) -> AtEdges<R> {
    let wait_until = |t: Instant| wait_until(stopped, t);
    let Some((from, to)) = wait_for_window(window, stopped) else {
        return (None, None, None);
    };
    if !wait_until(from) {
        return (None, None, None);
    }
    let a = read();
    if let Some(why) = late(from, (from, to)) {
        return (None, None, Some(why));
    }
    if !wait_until(to) {
        return (a, None, None);
    }
    let b = read();
    match late(to, (from, to)) {
        Some(why) => (None, None, Some(why)),
        None => (a, b, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_figures_are_differences_over_the_window() {
        use crate::probe::cgroup::Reading;
        let read = |cpu_ms: u64, mem: u64, kernel: Option<u64>, thr: u64| Reading {
            cpu_ns: cpu_ms * 1_000_000,
            throttled_periods: Some(thr),
            throttled_ns: Some(thr * 1_000_000),
            memory_bytes: Some(mem),
            kernel_bytes: kernel,
            sock_bytes: None,
        };
        let base = read(10, 1_000_000, Some(200_000), 0);
        let from = read(50, 1_500_000, Some(300_000), 5);
        let to = read(350, 3_000_000, Some(1_700_000), 105);
        let mut s = stats_between_parts("v1", "g", Some(0.5), &base, Some(&from), Some(&to), 1000);
        // 300 ms of CPU over the window, for 100,000 messages: 3 us each.
        assert!((s.cpu_s.unwrap() - 0.3).abs() < 1e-9);
        s.per_message(100_000);
        assert!((s.cpu_us_per_msg.unwrap() - 3.0).abs() < 1e-9);
        assert_eq!(s.throttled_periods, Some(100));
        assert!((s.throttled_s.unwrap() - 0.1).abs() < 1e-9);
        // Memory from before the first connection to the window's end.
        assert_eq!(s.memory_per_conn_bytes, Some(2000.0));
        assert_eq!(s.kernel_per_conn_bytes, Some(1500.0));
        // No messages: no cost per message, not a division by zero.
        s.per_message(0);
        assert_eq!(s.cpu_us_per_msg, None);
        // Kernel memory not accounted: "not measured", never 0.
        let s = stats_between_parts(
            "v1",
            "g",
            None,
            &read(0, 0, None, 0),
            Some(&read(0, 0, None, 0)),
            Some(&read(1, 10, None, 0)),
            5,
        );
        assert_eq!(s.kernel_per_conn_bytes, None);
        assert_eq!(s.memory_per_conn_bytes, Some(2.0));
        // The baseline of a spinning server: the lowest charge of its
        // readings, the later one's CPU time.
        let low = lowest(read(10, 900, Some(800), 0), read(20, 700, Some(850), 0));
        assert_eq!(
            (low.memory_bytes, low.kernel_bytes, low.cpu_ns),
            (Some(700), Some(800), 20_000_000)
        );
        // A run that never reached its window: no CPU figure, and no memory
        // per connection (not a 0 from the baseline against itself).
        let s = stats_between_parts("v2", "g", None, &base, None, None, 5);
        assert_eq!(s.cpu_s, None);
        assert_eq!((s.memory_per_conn_bytes, s.end_memory_bytes), (None, None));
    }

    #[test]
    fn readings_taken_long_after_their_edges_stand_for_neither() {
        // The reader reaches the window only once both edges are past (a
        // starved thread): read together, they would give a CPU time of 0.
        let now = Instant::now();
        let (from, to) = (now - Duration::from_secs(2), now - Duration::from_secs(1));
        let window: WindowFn = Arc::new(move || Some((from, to)));
        let reads = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counted = Arc::clone(&reads);
        let watch = EdgeWatch::start(
            "test-edges",
            move || Some(counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
            window,
        )
        .unwrap();
        let (a, b, why) = watch.finish();
        assert_eq!((a, b), (None, None));
        assert!(why.unwrap().contains("late"));
        // Within the limit: 5% of the window, at least 25 ms.
        let w = (now, now + Duration::from_secs(10));
        assert!(late(now, w).is_none());
        assert!(late(now - Duration::from_secs(1), w).is_some());
        assert!(late(now - Duration::from_millis(300), w).is_none());
    }
}
