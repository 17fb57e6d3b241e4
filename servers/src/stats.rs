//! Counters every style keeps, and admission against `--max-conns`.
//!
//! Counters are relaxed atomics: they are read for the summary line and by
//! tests, never used to synchronise.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Live counters of one server.
#[derive(Debug, Default)]
pub struct Stats {
    accepted: AtomicU64,
    rejected: AtomicU64,
    bytes_echoed: AtomicU64,
    accept_errors: AtomicU64,
    conn_errors: AtomicU64,
    active: AtomicUsize,
    peak: AtomicUsize,
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
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "accepted={} rejected={} bytes_echoed={} peak_conns={} accept_errors={} conn_errors={}",
            self.accepted,
            self.rejected,
            self.bytes_echoed,
            self.peak_conns,
            self.accept_errors,
            self.conn_errors
        )
    }
}

impl Stats {
    pub fn snapshot(&self) -> Summary {
        Summary {
            accepted: self.accepted.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            bytes_echoed: self.bytes_echoed.load(Relaxed),
            peak_conns: self.peak.load(Relaxed),
            active: self.active.load(Relaxed),
            accept_errors: self.accept_errors.load(Relaxed),
            conn_errors: self.conn_errors.load(Relaxed),
        }
    }

    /// Admits a freshly accepted connection, or counts it as rejected when
    /// `max_conns` are already open. The returned guard keeps it counted as
    /// open until dropped.
    pub fn admit(self: &Arc<Self>, max_conns: Option<usize>) -> Option<ConnGuard> {
        let active = self.active.fetch_add(1, Relaxed) + 1;
        if max_conns.is_some_and(|max| active > max) {
            self.active.fetch_sub(1, Relaxed);
            self.rejected.fetch_add(1, Relaxed);
            return None;
        }
        self.accepted.fetch_add(1, Relaxed);
        self.peak.fetch_max(active, Relaxed);
        Some(ConnGuard {
            stats: Arc::clone(self),
        })
    }

    pub(crate) fn echoed(&self, n: usize) {
        self.bytes_echoed.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn accept_error(&self) {
        self.accept_errors.fetch_add(1, Relaxed);
    }

    pub(crate) fn conn_error(&self) {
        self.conn_errors.fetch_add(1, Relaxed);
    }

    /// A connection the style could not start serving (thread or coroutine
    /// spawn failed, socket setup failed) after it was admitted.
    pub(crate) fn conn_failed(&self) {
        self.conn_errors.fetch_add(1, Relaxed);
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
        self.stats.active.fetch_sub(1, Relaxed);
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
        drop((b, c));
        assert_eq!(stats.snapshot().active, 0);
    }
}
