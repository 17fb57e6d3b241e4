//! Idle timeouts (`--idle-timeout DUR`): what the styles share to close a
//! connection that moved no byte in either direction for `DUR`.
//!
//! Each style keeps its own idiom, so the cost of the timeout is the
//! style's too:
//! - blocking styles (threads, pool, process, coroutines): the socket's own
//!   timeouts, SO_RCVTIMEO/SO_SNDTIMEO for a kernel thread or process, may's
//!   per-socket timeouts for a coroutine ([`BlockingStream`]); a read or a
//!   write that waits longer fails, and the echo ends the connection as idle.
//! - tasks: `tokio::time::timeout` around every read and write.
//! - event loops whose connections keep one slot for life (reactor and
//!   prefork's workers: a slab key; epoll: the descriptor): [`Deadlines`],
//!   a min-heap with one entry per connection, refreshed lazily (libev's
//!   "timer again" idea). An event only stamps the connection's last
//!   activity ([`crate::runtime::echo::EchoConn`] does it); when an entry
//!   comes due, the loop looks at the stamp and either closes the
//!   connection or pushes the entry forward. An event costs a clock read, a
//!   timeout O(log n), and the loop sleeps no longer than the earliest entry.
//! - scanning loops (poll, polling): they visit every connection on every
//!   pass anyway, so they compare each stamp with the clock as they go.
//! - uring: a linked timeout (`IORING_OP_LINK_TIMEOUT`) on every receive and
//!   send; the kernel cancels an operation that waits longer.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// A socket whose blocking reads and writes can be given a time limit.
pub trait BlockingStream {
    /// After this, a read or write that waits `limit` without moving a byte
    /// fails with `WouldBlock` or `TimedOut` (see [`is_timeout`]).
    fn set_idle_timeout(&self, limit: Duration) -> io::Result<()>;
}

impl BlockingStream for std::net::TcpStream {
    fn set_idle_timeout(&self, limit: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(limit))?;
        self.set_write_timeout(Some(limit))
    }
}

impl BlockingStream for may::net::TcpStream {
    fn set_idle_timeout(&self, limit: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(limit))?;
        self.set_write_timeout(Some(limit))
    }
}

/// True for the error a timed-out blocking read or write returns: EAGAIN
/// from SO_RCVTIMEO/SO_SNDTIMEO, `TimedOut` from may.
pub fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A number no other connection of this process has: with a slot that is
/// reused (a slab key, a descriptor) it names one connection for life, so
/// a deadline left behind by a closed connection is never taken for its
/// successor's.
pub(crate) fn next_serial() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Relaxed)
}

/// The idle deadlines of one event loop: one heap entry per connection,
/// (deadline, slot, serial), pushed forward only when it comes due.
#[derive(Debug)]
pub(crate) struct Deadlines {
    limit: Duration,
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
}

impl Deadlines {
    /// Deadlines for `--idle-timeout`, or `None` when it is off.
    pub(crate) fn new(limit: Option<Duration>) -> Option<Deadlines> {
        limit.map(|limit| Deadlines {
            limit,
            heap: BinaryHeap::new(),
        })
    }

    /// Starts watching the connection in `slot`, known by `serial`, active
    /// at `since`.
    pub(crate) fn watch(&mut self, slot: usize, serial: u64, since: Instant) {
        self.heap.push(Reverse((since + self.limit, slot, serial)));
    }

    /// The earliest deadline, if any.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((due, _, _))| *due)
    }

    /// The slots of the connections idle for the whole limit by `now`.
    /// `last_active(slot, serial)` gives a connection's last activity, or
    /// `None` once that connection is gone (its entry is then dropped).
    pub(crate) fn expire(
        &mut self,
        now: Instant,
        mut last_active: impl FnMut(usize, u64) -> Option<Instant>,
    ) -> Vec<usize> {
        let mut idle = Vec::new();
        while let Some(&Reverse((due, slot, serial))) = self.heap.peek() {
            if due > now {
                break;
            }
            self.heap.pop();
            match last_active(slot, serial) {
                None => {}
                Some(at) if at + self.limit <= now => idle.push(slot),
                Some(at) => self.heap.push(Reverse((at + self.limit, slot, serial))),
            }
        }
        idle
    }

    /// Entries held (tests: a closed connection's entry goes when it comes
    /// due, so the heap stays bounded by the connections of one limit).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.heap.len()
    }
}

/// How long a poll(2)-style sleep may last in milliseconds, rounded up so
/// that the loop wakes after a deadline rather than just before it; `None`
/// (no deadline) is -1, "forever".
pub(crate) fn poll_millis(wait: Option<Duration>) -> i32 {
    match wait {
        None => -1,
        Some(d) if d.is_zero() => 0,
        Some(d) => d.as_millis().min(60_000) as i32 + 1,
    }
}

/// How long an event loop may sleep: until the soonest of its deadlines
/// (accepting again after a back-off, the earliest idle deadline); `None`
/// (until an event) when it has none, without reading the clock.
pub(crate) fn wait_for<const N: usize>(deadlines: [Option<Instant>; N]) -> Option<Duration> {
    let soonest = deadlines.into_iter().flatten().min()?;
    Some(soonest.saturating_duration_since(Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(10);

    #[test]
    fn an_active_connection_is_pushed_forward_and_an_idle_one_expires() {
        let t0 = Instant::now();
        let mut d = Deadlines::new(Some(LIMIT)).expect("on");
        d.watch(1, 11, t0);
        d.watch(2, 22, t0);
        assert_eq!(d.next_due(), Some(t0 + LIMIT));
        // Slot 1 spoke at +6 s; slot 2 never did.
        let last = |slot, _| Some(if slot == 1 { t0 + LIMIT * 6 / 10 } else { t0 });
        assert_eq!(d.expire(t0 + LIMIT / 2, last), Vec::<usize>::new());
        assert_eq!(d.expire(t0 + LIMIT, last), vec![2]);
        assert_eq!(d.next_due(), Some(t0 + LIMIT * 16 / 10));
        assert_eq!(d.expire(t0 + LIMIT * 16 / 10, last), vec![1]);
        assert_eq!(d.len(), 0);
        assert_eq!(d.next_due(), None);
    }

    #[test]
    fn a_slot_reused_by_a_new_connection_is_not_closed_for_the_old_one() {
        let t0 = Instant::now();
        let mut d = Deadlines::new(Some(LIMIT)).expect("on");
        d.watch(5, 1, t0);
        // The first connection in slot 5 closed; a new one (serial 2)
        // arrived at +9 s.
        d.watch(5, 2, t0 + LIMIT * 9 / 10);
        let last = |_, serial| (serial == 2).then_some(t0 + LIMIT * 9 / 10);
        assert_eq!(d.expire(t0 + LIMIT, last), Vec::<usize>::new());
        assert_eq!(d.len(), 1, "the old entry is gone");
        assert_eq!(d.expire(t0 + LIMIT * 19 / 10, last), vec![5]);
    }

    #[test]
    fn off_means_no_deadlines_and_waits_round_up() {
        assert!(Deadlines::new(None).is_none());
        assert_eq!(poll_millis(None), -1);
        assert_eq!(poll_millis(Some(Duration::ZERO)), 0);
        assert_eq!(poll_millis(Some(Duration::from_micros(10))), 1);
        assert_eq!(poll_millis(Some(Duration::from_millis(250))), 251);
        assert_eq!(wait_for([None, None]), None);
        let (soon, later) = (
            Instant::now() + Duration::from_secs(1),
            Instant::now() + LIMIT,
        );
        let wake = wait_for([Some(later), Some(soon)]).expect("a wake");
        assert!(wake <= Duration::from_secs(1), "{wake:?}: the sooner one");
        let wake = wait_for([None, Some(later)]).expect("a wake");
        assert!(wake > Duration::from_secs(1) && wake <= LIMIT, "{wake:?}");
    }
}
