//! A connection's traffic: when it may send (closed loop: `--pipeline`
//! messages in flight; churn: one; open loop: at its slots, capped by the
//! pipeline), the writes of the pattern, and the reads that check every
//! echoed byte and record each message's latency if it completes inside
//! the measured window.

use std::io::{self, Read, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::engine::control::Window;
use crate::engine::output::LATE;
use crate::engine::pattern;
use crate::engine::worker::{Conn, Failure, ReadSide, State, Worker};
use crate::results::spec::Mode;
use crate::results::{record, record_n};

/// At most this many groups of equal waits per connection for its
/// unfinished messages.
const CHUNKS: u64 = 10_000;

impl Worker<'_> {
    /// The warm-up begins (every worker is connected, at `start`): every
    /// connection open by now starts its traffic.
    pub(super) fn begin_sending(&mut self, start: Instant) {
        let keys: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.state == State::Open)
            .map(|(k, _)| k)
            .collect();
        for key in keys {
            // Big first messages to many connections take a while: stop
            // between connections on Ctrl-C (the loop then ends the run).
            if self.control.stop.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            self.start_conn(key, start);
        }
    }

    /// Starts an active connection's traffic (idle ones never send).
    pub(super) fn start_conn(&mut self, key: usize, start: Instant) {
        let Some(active) = self.conns[key].active else {
            return;
        };
        match self.spec.mode {
            Mode::Closed => {
                self.conns[key].due = self.spec.pipeline as u64;
                self.flush(key, Instant::now());
            }
            Mode::Churn => {
                self.conns[key].due = 1;
                self.flush(key, Instant::now());
            }
            Mode::Open { rate } => {
                // Connection a sends at start + a/rate + k*interval: the
                // connections' schedules interleave evenly.
                let first = start + Duration::from_secs_f64(active as f64 / rate);
                self.conns[key].first_due = first;
                self.schedule.push(first, key);
            }
        }
    }

    /// Open loop: gives every connection whose slot has come one more
    /// message to send, and schedules its next slot.
    pub(super) fn send_scheduled(&mut self, now: Instant) {
        while let Some((due, key)) = self.schedule.pop_due(now) {
            let Some(conn) = self.conns.get(key) else {
                continue;
            };
            // The slab key may have been reused by another connection.
            if conn.active.is_none() || self.schedule.slot(conn.first_due, conn.due) != due {
                continue;
            }
            if let Some(window) = self.window
                && window.contains(due)
            {
                // The pipeline cap may hold the message back; the slot is
                // taken (and counted late) only when the loop comes round.
                self.out.slots += 1;
                if now.saturating_duration_since(due) > LATE {
                    self.out.late_slots += 1;
                }
            }
            self.conns[key].due += 1;
            self.schedule.push(due + self.schedule.interval, key);
            self.flush(key, now);
        }
    }

    /// Open loop, once the loop has stopped at `cutoff` (the window's end,
    /// or earlier if the run ended early): every message of a connection
    /// still open whose slot was in the window before `cutoff` and that has
    /// no reply is unfinished, recorded in the corrected latency with its
    /// wait so far (a lower bound). A message that was never sent is
    /// counted as well: its slot came and the server had not made room.
    pub(super) fn count_unfinished(&mut self, window: Window, cutoff: Instant) {
        if !matches!(self.spec.mode, Mode::Open { .. }) || cutoff <= window.from {
            return;
        }
        let size = self.spec.size as u64;
        for (_, conn) in &self.conns {
            if conn.active.is_none() || conn.state != State::Open {
                continue;
            }
            let due = self
                .schedule
                .slots_within(conn.first_due, window.from, cutoff);
            let from = due.start.max(conn.recv / size);
            let n = due.end.saturating_sub(from);
            // Millions at an absurd rate: their waits fall evenly from the
            // first to the last, so they are recorded in at most CHUNKS
            // groups of equal waits, finer than the histogram's 3 figures.
            let chunks = n.min(CHUNKS);
            for c in 0..chunks {
                let (a, b) = (from + n * c / chunks, from + n * (c + 1) / chunks);
                let slot = self.schedule.slot(conn.first_due, a + (b - a) / 2);
                let hist = &mut self.out.histograms.latency.0;
                record_n(hist, cutoff.saturating_duration_since(slot), b - a);
            }
            self.out.unfinished += n;
        }
    }

    pub(super) fn intended(&self, conn: &Conn, msg: u64, now: Instant) -> Instant {
        match self.spec.mode {
            Mode::Closed | Mode::Churn => now,
            Mode::Open { .. } => self.schedule.slot(conn.first_due, msg),
        }
    }

    /// Writes every due byte the socket takes.
    fn flush(&mut self, key: usize, now: Instant) {
        if self.draining {
            return;
        }
        let size = self.spec.size as u64;
        loop {
            let conn = &mut self.conns[key];
            // At most `pipeline` messages in flight, in both modes: in open
            // mode a message whose slot comes while the cap is reached waits,
            // and its latency still counts from its slot (as wrk2 does).
            let allowed = conn.due.min(conn.recv / size + self.spec.pipeline as u64);
            let target = allowed * size;
            if conn.sent >= target {
                return;
            }
            let n = ((target - conn.sent) as usize).min(self.scratch.len());
            pattern::fill(conn.id, self.spec.size, conn.sent, &mut self.scratch[..n]);
            self.syscalls += 1;
            match conn.stream.write(&self.scratch[..n]) {
                Ok(0) => {
                    return self.fail(key, Failure::Io(io::ErrorKind::WriteZero.into()));
                }
                Ok(w) => {
                    if conn.asked.is_none() {
                        let conn = &self.conns[key];
                        let first = self.intended(conn, 0, now).max(conn.established);
                        self.conns[key].asked = Some(first);
                    }
                    let conn = &mut self.conns[key];
                    let before = conn.sent / size;
                    conn.sent += w as u64;
                    let after = conn.sent / size;
                    for msg in before..after {
                        let intended = self.intended(&self.conns[key], msg, now);
                        self.conns[key].inflight.push_back((intended, now));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(key, Failure::Io(e)),
            }
        }
    }

    pub(super) fn on_event(&mut self, key: usize, side: ReadSide, now: Instant) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        if conn.state == State::Connecting {
            self.on_connect_ready(key, now);
            if !self.conns.contains(key) || self.conns[key].state == State::Connecting {
                return;
            }
        }
        self.receive(key, side, now);
        if !self.conns.contains(key) {
            return;
        }
        if self.spec.mode == Mode::Churn && self.conns[key].recv >= self.spec.size as u64 {
            self.recycle(key, now);
        } else {
            self.flush(key, now);
        }
    }

    /// Reads and checks what the event announced. Sockets are registered
    /// edge-triggered, and every arrival of data (or of the end of the
    /// stream) raises a new event: a read that returns less than the buffer
    /// has drained the socket, and reading on would only get EAGAIN. Only
    /// when the event says the peer closed or the socket failed is it read
    /// to the end (the FIN or the error may have come with the data, in the
    /// same edge).
    pub(super) fn receive(&mut self, key: usize, side: ReadSide, now: Instant) {
        if side == ReadSide::Nothing {
            return;
        }
        let size = self.spec.size as u64;
        let full = self.scratch.len();
        loop {
            let conn = &mut self.conns[key];
            self.syscalls += 1;
            let n = match conn.stream.read(&mut self.scratch) {
                Ok(0) => return self.fail(key, Failure::Eof),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.fail(key, Failure::Io(e)),
            };
            // `now` is the time the events were polled; a reply can come
            // back after that and within the same batch (the server woken
            // on this CPU preempted the loop right after the send), so a
            // send later than `now` needs a fresh clock, or the round trip
            // would read as zero.
            let now = match conn.inflight.front() {
                Some(&(_, sent_at)) if sent_at > now => Instant::now(),
                _ => now,
            };
            let got = &self.scratch[..n];
            if conn.recv + n as u64 > conn.sent
                || pattern::verify(conn.id, self.spec.size, conn.recv, got).is_err()
            {
                return self.fail(key, Failure::Mismatch);
            }
            let before = conn.recv / size;
            conn.recv += n as u64;
            let after = conn.recv / size;
            if after > before && !conn.replied {
                // Whenever it comes, warm-up and drain included: a queued
                // connection's wait starts long before the measured window.
                conn.replied = true;
                if let Some(asked) = conn.asked {
                    record(
                        &mut self.out.histograms.first_reply.0,
                        now.saturating_duration_since(asked),
                    );
                }
            }
            let mut done = 0;
            for _ in before..after {
                let Some((intended, sent_at)) = conn.inflight.pop_front() else {
                    break;
                };
                let Some(window) = self.window else {
                    continue;
                };
                if window.is_over(now)
                    && !self.draining
                    && matches!(self.spec.mode, Mode::Open { .. })
                    && window.contains(intended)
                {
                    // Read after the window's end, before the loop noticed
                    // it: unfinished by the end, as `count_unfinished` has it.
                    record(&mut self.out.histograms.latency.0, window.to - intended);
                    self.out.unfinished += 1;
                } else if window.contains(now) {
                    let hists = &mut self.out.histograms;
                    record(&mut hists.latency.0, now - intended);
                    // Only the open loop keeps the latency from the actual
                    // send apart.
                    if let Some(raw) = &mut hists.latency_raw {
                        record(&mut raw.0, now - sent_at);
                    }
                    self.out.messages += 1;
                    conn.completed += 1;
                    let since = conn.last_completion.unwrap_or(window.from).max(window.from);
                    // In open mode replies are due once per interval: only
                    // the time beyond that is a stall.
                    let gap = (now - since).saturating_sub(self.schedule.interval);
                    conn.longest_stall = conn.longest_stall.max(gap);
                    conn.last_completion = Some(now);
                    done += 1;
                }
            }
            if done > 0 {
                self.control.completed.fetch_add(done, Relaxed);
            }
            if self.spec.mode == Mode::Closed {
                conn.due += after - before;
            }
            if n < full && side == ReadSide::Data {
                return;
            }
        }
    }
}
