//! Counters every style keeps, and admission against `--max-conns`.
//!
//! Counters are relaxed atomics: they are read for the summary line and by
//! tests, never used to synchronise. They live in a shared anonymous mapping
//! rather than on the heap, so that what the children of the styles that
//! fork count is what the parent reports: the mapping stays shared across
//! `fork`, heap memory would be copied.

use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// The counters themselves.
#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    rejected: AtomicU64,
    bytes_echoed: AtomicU64,
    accept_errors: AtomicU64,
    conn_errors: AtomicU64,
    idle_closed: AtomicU64,
    active: AtomicUsize,
    peak: AtomicUsize,
    wakeups: AtomicU64,
    events: AtomicU64,
}

/// Where [`Counters`] live: a `MAP_SHARED` page, or the heap when no such
/// mapping could be had (then forking styles refuse to start).
enum Place {
    Shared(NonNull<Counters>),
    Heap(Box<Counters>),
}

// SAFETY: the mapping holds only atomics, is never moved, and is unmapped
// only when the owning `Stats` is dropped.
unsafe impl Send for Place {}
// SAFETY: as above: every access goes through atomics.
unsafe impl Sync for Place {}

/// Live counters of one server (or of one worker process of a server; see
/// [`Stats::child_of`]).
pub struct Stats {
    place: Place,
    /// The server-wide counters a worker's counters also add to.
    parent: Option<Arc<Stats>>,
}

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stats")
            .field("counters", self.counters())
            .field("is_shared", &self.is_shared())
            .finish()
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Place::Shared(ptr) = *self {
            // SAFETY: the mapping was made in `new` with this size and is
            // referenced by nothing else in this process.
            let _ = unsafe { nix::sys::mman::munmap(ptr.cast(), std::mem::size_of::<Counters>()) };
        }
    }
}
/// A snapshot of [`Stats`], printed as the server's summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Connections accepted and served.
    pub accepted: u64,
    /// Connections closed at once because `--max-conns` were open.
    pub rejected: u64,
    /// Bytes written back to clients.
    pub bytes_echoed: u64,
    /// Most connections open at the same time.
    pub peak_conns: usize,
    /// Connections open now.
    pub active: usize,
    /// accept() failures (EMFILE, ECONNABORTED, ...).
    pub accept_errors: u64,
    /// Connections ended by an error (reset, broken pipe, ...) rather than EOF.
    pub conn_errors: u64,
    /// Connections closed by `--idle-timeout`.
    pub idle_closed: u64,
    /// Returns from the style's wait for readiness or completions
    /// (`epoll_wait`, mio's poll, poll(2), `io_uring_enter`), and the
    /// events or completions they brought: 0 in styles that do not count
    /// them (they do not wait in one place), and then not printed.
    pub wakeups: u64,
    pub events: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "accepted={} rejected={} bytes_echoed={} peak_conns={} accept_errors={} conn_errors={} idle_closed={}",
            self.accepted,
            self.rejected,
            self.bytes_echoed,
            self.peak_conns,
            self.accept_errors,
            self.conn_errors,
            self.idle_closed
        )?;
        if self.wakeups > 0 {
            write!(f, " wakeups={} events={}", self.wakeups, self.events)?;
        }
        Ok(())
    }
}

impl Stats {
    /// Zeroed counters, in shared memory when the system allows it.
    pub fn new() -> Stats {
        use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous};
        let size = std::num::NonZeroUsize::new(std::mem::size_of::<Counters>())
            .expect("Counters is not zero-sized");
        // SAFETY: a fresh anonymous mapping, aliased by nothing; it is
        // initialised before any use and page-aligned, so aligned for
        // `Counters`.
        let place = match unsafe {
            mmap_anonymous(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        } {
            Ok(ptr) => {
                let ptr = ptr.cast::<Counters>();
                // SAFETY: see above; the memory is writable and large enough.
                unsafe { ptr.as_ptr().write(Counters::default()) };
                Place::Shared(ptr)
            }
            Err(_) => Place::Heap(Box::default()),
        };
        Stats {
            place,
            parent: None,
        }
    }

    /// Counters of one worker process: everything counted here is counted in
    /// `parent` too, and admission checks the parent's open connections, so
    /// `--max-conns` holds server-wide. When the worker dies, the parent
    /// forgets its open connections with [`forget_open`](Self::forget_open).
    pub fn child_of(parent: &Arc<Stats>) -> Stats {
        let mut stats = Stats::new();
        stats.parent = Some(Arc::clone(parent));
        stats
    }

    /// True if the counters survive `fork` shared (the forking styles need it).
    pub fn is_shared(&self) -> bool {
        matches!(self.place, Place::Shared(_)) && self.parent.as_ref().is_none_or(|p| p.is_shared())
    }

    fn counters(&self) -> &Counters {
        match &self.place {
            // SAFETY: mapped and initialised in `new`, unmapped only in drop.
            Place::Shared(ptr) => unsafe { ptr.as_ref() },
            Place::Heap(b) => b,
        }
    }

    /// Applies a count here and in the parent.
    fn each(&self, f: impl Fn(&Counters)) {
        f(self.counters());
        if let Some(parent) = &self.parent {
            parent.each(f);
        }
    }

    pub fn snapshot(&self) -> Summary {
        let c = self.counters();
        Summary {
            accepted: c.accepted.load(Relaxed),
            rejected: c.rejected.load(Relaxed),
            bytes_echoed: c.bytes_echoed.load(Relaxed),
            peak_conns: c.peak.load(Relaxed),
            active: c.active.load(Relaxed),
            accept_errors: c.accept_errors.load(Relaxed),
            conn_errors: c.conn_errors.load(Relaxed),
            idle_closed: c.idle_closed.load(Relaxed),
            wakeups: c.wakeups.load(Relaxed),
            events: c.events.load(Relaxed),
        }
    }

    /// Admits a freshly accepted connection, or counts it as rejected when
    /// `max_conns` are already open. The returned guard keeps it counted as
    /// open until dropped.
    pub fn admit(self: &Arc<Self>, max_conns: Option<usize>) -> Option<ConnGuard> {
        let top = self.top();
        let active = top.active.fetch_add(1, Relaxed) + 1;
        if max_conns.is_some_and(|max| active > max) {
            top.active.fetch_sub(1, Relaxed);
            self.each(|c| {
                c.rejected.fetch_add(1, Relaxed);
            });
            return None;
        }
        if self.parent.is_some() {
            let own = self.counters().active.fetch_add(1, Relaxed) + 1;
            self.counters().peak.fetch_max(own, Relaxed);
        }
        top.peak.fetch_max(active, Relaxed);
        self.each(|c| {
            c.accepted.fetch_add(1, Relaxed);
        });
        Some(ConnGuard {
            stats: Arc::clone(self),
        })
    }

    /// The server-wide counters: the parent's, or these.
    fn top(&self) -> &Counters {
        match &self.parent {
            Some(parent) => parent.top(),
            None => self.counters(),
        }
    }

    /// A worker died with `open` connections counted (they died with it):
    /// stop counting them as open.
    pub fn forget_open(&self, open: usize) {
        self.top().active.fetch_sub(open, Relaxed);
    }

    pub(crate) fn echoed(&self, n: usize) {
        self.each(|c| {
            c.bytes_echoed.fetch_add(n as u64, Relaxed);
        });
    }

    pub(crate) fn accept_error(&self) {
        self.each(|c| {
            c.accept_errors.fetch_add(1, Relaxed);
        });
    }

    pub(crate) fn conn_error(&self) {
        self.each(|c| {
            c.conn_errors.fetch_add(1, Relaxed);
        });
    }

    /// The style's wait returned with `events` events or completions
    /// (wake-ups and messages per wake-up in the summary line): two
    /// relaxed additions, no system call.
    pub(crate) fn woke(&self, events: usize) {
        self.each(|c| {
            c.wakeups.fetch_add(1, Relaxed);
            c.events.fetch_add(events as u64, Relaxed);
        });
    }

    /// A connection closed by `--idle-timeout`.
    pub(crate) fn idle_closed(&self) {
        self.each(|c| {
            c.idle_closed.fetch_add(1, Relaxed);
        });
    }

    /// A connection the style could not start serving (thread or coroutine
    /// spawn failed, socket setup failed) after it was admitted.
    pub(crate) fn conn_failed(&self) {
        self.conn_error();
    }

    fn release(&self) {
        self.top().active.fetch_sub(1, Relaxed);
        if self.parent.is_some() {
            self.counters().active.fetch_sub(1, Relaxed);
        }
    }
}

/// Keeps one connection counted as open.
#[derive(Debug)]
pub struct ConnGuard {
    stats: Arc<Stats>,
}

impl ConnGuard {
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.stats.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_respects_max_and_tracks_peak() {
        let stats = Arc::new(Stats::default());
        let a = stats.admit(Some(2)).expect("first");
        let b = stats.admit(Some(2)).expect("second");
        assert!(stats.admit(Some(2)).is_none(), "third is over the limit");
        drop(a);
        let c = stats.admit(Some(2)).expect("room again");
        let s = stats.snapshot();
        assert_eq!(
            (s.accepted, s.rejected, s.active, s.peak_conns),
            (3, 1, 2, 2)
        );
        stats.idle_closed();
        let line = stats.snapshot().to_string();
        assert!(line.ends_with("conn_errors=0 idle_closed=1"), "{line}");
        stats.woke(3);
        stats.woke(1);
        let line = stats.snapshot().to_string();
        assert!(line.ends_with("idle_closed=1 wakeups=2 events=4"), "{line}");
        drop((b, c));
        assert_eq!(stats.snapshot().active, 0);
        assert!(stats.is_shared(), "counters live in a shared mapping");
    }

    #[test]
    fn a_worker_counts_in_its_parent_and_the_limit_is_server_wide() {
        let server = Arc::new(Stats::new());
        let one = Arc::new(Stats::child_of(&server));
        let two = Arc::new(Stats::child_of(&server));
        let a = one.admit(Some(2)).expect("first");
        let _b = two.admit(Some(2)).expect("second");
        assert!(one.admit(Some(2)).is_none(), "the limit is the server's");
        one.echoed(5);
        two.echoed(7);
        let s = server.snapshot();
        assert_eq!(
            (s.accepted, s.rejected, s.active, s.bytes_echoed),
            (2, 1, 2, 12)
        );
        assert_eq!(one.snapshot().bytes_echoed, 5);
        // Worker two dies holding one connection: the server forgets it.
        let open = two.snapshot().active;
        std::mem::forget(_b);
        server.forget_open(open);
        drop(a);
        assert_eq!(server.snapshot().active, 0);
    }

    #[test]
    fn counts_made_in_a_forked_child_reach_the_parent() {
        let stats = Arc::new(Stats::new());
        // SAFETY: the child only touches an atomic and calls _exit.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                stats.echoed(42);
                // SAFETY: ends the child without running the test harness.
                unsafe { libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).expect("waitpid");
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
        assert_eq!(stats.snapshot().bytes_echoed, 42);
    }
}
