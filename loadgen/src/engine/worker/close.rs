//! How a worker's connections end, and what they leave behind: failures
//! counted by kind (none once the window is over), messages that time out,
//! churn's close-and-reconnect (paced at `--connect-rate` if given), connections still waiting for their first
//! reply (unserved), and the per-connection fairness figures, which count
//! the connections that died as well as those still open.

use std::time::{Duration, Instant};

use crate::engine::control::Window;
use crate::engine::worker::{Conn, Failure, Slot, State, Worker};
use crate::results::Fairness;
use crate::results::spec::Mode;

/// How soon a churn slot whose connection failed connects again. The
/// failure is counted and the slot goes on churning: one refused connect
/// or EADDRNOTAVAIL must not end a slot for the rest of the run (and with
/// it, for a soak, the whole churn load); the pause keeps a slot from
/// spinning against a server that is gone.
const CHURN_RETRY: Duration = Duration::from_millis(10);

impl Worker<'_> {
    /// Closes a connection that failed, counting why.
    pub(super) fn fail(&mut self, key: usize, why: Failure) {
        // Once the run is over, what happens to sockets is not the server's fault.
        if self.window.is_some_and(|w| w.is_over(Instant::now())) {
            return;
        }
        match why {
            Failure::Mismatch => self.out.errors.mismatch += 1,
            Failure::Eof => self.out.errors.eof += 1,
            Failure::Io(e) => match e.raw_os_error() {
                Some(libc::ECONNRESET | libc::EPIPE | libc::ECONNABORTED) => {
                    self.out.errors.reset += 1
                }
                Some(libc::ETIMEDOUT) => self.out.errors.timeout += 1,
                _ => self.out.errors.other += 1,
            },
        }
        self.remove(key);
    }

    /// Takes a connection out of the loop (it closes when dropped).
    fn take(&mut self, key: usize) -> Conn {
        let mut conn = self.conns.remove(key);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.active_conns -= usize::from(conn.active.is_some());
        self.out.unserved += u64::from(conn.unserved());
        conn
    }

    pub(super) fn remove(&mut self, key: usize) {
        let conn = self.take(key);
        if self.churns_on(&conn) {
            return self.retry(Slot::of(&conn));
        }
        if conn.active.is_some() && conn.state == State::Open {
            self.closed_active
                .push((conn.completed, conn.longest_stall, conn.last_completion));
        }
    }

    pub(super) fn check_timeouts(&mut self, now: Instant) {
        let timeout = self.spec.timeout;
        let mut expired = Vec::new();
        for (key, conn) in self.conns.iter() {
            match conn.state {
                State::Connecting => {
                    if now - conn.connect_started > timeout {
                        expired.push((key, true));
                    }
                }
                State::Open => {
                    let size = self.spec.size as u64;
                    // The oldest message not yet echoed: written, or due and
                    // waiting for room in the socket.
                    let oldest = conn.inflight.front().map(|(i, _)| *i).or_else(|| {
                        (conn.due * size > conn.sent)
                            .then(|| self.intended(conn, conn.sent / size, now))
                    });
                    if oldest.is_some_and(|t| now.saturating_duration_since(t) > timeout) {
                        expired.push((key, false));
                    }
                }
            }
        }
        for (key, connecting) in expired {
            if connecting {
                self.pending_connects -= 1;
                self.out.errors.connect_timeout += 1;
            } else {
                self.out.errors.timeout += 1;
            }
            self.remove(key);
        }
    }

    /// True for a churn slot's connection that failed while the run goes on.
    fn churns_on(&self, conn: &Conn) -> bool {
        self.spec.mode == Mode::Churn
            && conn.active.is_some()
            && !self.window.is_some_and(|w| w.is_over(Instant::now()))
    }

    /// Churn: the slot connects again after [`CHURN_RETRY`], in turn
    /// behind the slots already waiting.
    fn retry(&mut self, slot: Slot) {
        let soon = Instant::now() + CHURN_RETRY;
        let at = self.reconnect.back().map_or(soon, |&(t, _)| t.max(soon));
        self.reconnect.push_back((at, slot));
    }

    /// Churn: closes a connection whose one message came back and opens its
    /// successor, at once or, with `--connect-rate`, at this worker's next
    /// connect time (one every `threads / rate` seconds: the rate is the
    /// run's); the slot keeps its fairness figures.
    pub(super) fn recycle(&mut self, key: usize, now: Instant) {
        let slot = Slot::of(&self.take(key));
        let Some(rate) = self.spec.connect_rate else {
            return self.reopen(slot, now);
        };
        let at = self.next_connect.max(now);
        self.next_connect = at + Duration::from_secs_f64(self.threads as f64 / rate);
        if at > now {
            self.reconnect.push_back((at, slot));
        } else {
            self.reopen(slot, now);
        }
    }

    /// Churn at `--connect-rate`: opens the slots whose time has come.
    pub(super) fn reconnect_due(&mut self, now: Instant) {
        while self.reconnect.front().is_some_and(|&(at, _)| at <= now) {
            if let Some((_, slot)) = self.reconnect.pop_front() {
                self.reopen(slot, now);
            }
        }
    }

    fn reopen(&mut self, slot: Slot, now: Instant) {
        if let Some(new) = self.open(slot.id, now) {
            let conn = &mut self.conns[new];
            conn.completed = slot.completed;
            conn.last_completion = slot.last_completion;
            conn.longest_stall = slot.longest_stall;
        } else if self.window.is_some_and(|w| w.is_over(now)) {
            // The slot could not reconnect (counted in errors) and the run
            // is over: it keeps what it completed.
            self.closed_active
                .push((slot.completed, slot.longest_stall, slot.last_completion));
        } else {
            self.retry(slot);
        }
    }

    pub(super) fn finish_fairness(&mut self, measured: Window) {
        let mut per_conn = Vec::new();
        let mut stall = Duration::ZERO;
        let open_conns = self
            .conns
            .iter()
            .filter(|(_, c)| c.active.is_some())
            .map(|(_, c)| (c.completed, c.longest_stall, c.last_completion));
        let between = self
            .reconnect
            .iter()
            .map(|(_, s)| (s.completed, s.longest_stall, s.last_completion));
        // A connection that died went without completions from then on.
        let all: Vec<_> = open_conns
            .chain(between)
            .chain(self.closed_active.iter().copied())
            .collect();
        for (completed, longest, last) in all {
            let last = last.unwrap_or(measured.from).max(measured.from);
            let tail = measured
                .to
                .saturating_duration_since(last)
                .saturating_sub(self.schedule.interval);
            stall = stall.max(longest).max(tail);
            per_conn.push(completed);
        }
        self.out.fairness = Fairness::from_counts(per_conn, stall.as_secs_f64() * 1e3);
    }
}
