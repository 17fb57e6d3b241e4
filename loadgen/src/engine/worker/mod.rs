//! One worker thread: an epoll loop (mio) that owns a share of the
//! connections and takes them through the run's phases (see [`crate::engine`]).
//!
//! This file holds the worker's state and its loop; the rest of its work is
//! split by concern, each an `impl Worker` of its own:
//! - [`connect`]: opening connections, paced, and counting connect failures;
//! - [`io`]: when a connection may send, and writing, reading and checking
//!   its bytes, with the latency recorded for every echoed message;
//! - [`close`]: how connections end (failures by kind, timeouts, churn's
//!   reconnect, paced at `--connect-rate`) and the fairness figures they leave behind;
//! - [`schedule`]: the open loop's send slots and timer (plain state, no
//!   sockets).

mod close;
mod connect;
mod io;
mod schedule;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Poll};
use slab::Slab;

use crate::engine::control::{Control, Window};
use crate::engine::output::WorkerOutput;
use crate::engine::worker::schedule::{Schedule, TIMER};
use crate::probe::cpu::thread_cpu;
use crate::results::spec::{Mode, RunSpec};

/// How often timeouts and progress are checked.
const TICK: Duration = Duration::from_millis(50);
/// The I/O buffer: a whole message where messages are small (one write
/// each), but never more than a socket takes at once. Each write fills
/// the buffer with the pattern first, so a 16 MiB buffer meant 16 MiB of
/// pattern per write for the ~2 MiB a socket buffer takes, and a run of
/// big messages spent tens of seconds between two looks at Ctrl-C.
const SCRATCH_MIN: usize = 64 * 1024;
const SCRATCH_MAX: usize = 256 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Open,
}

struct Conn {
    id: u32,
    /// Index among the active connections (None: idle).
    active: Option<usize>,
    stream: TcpStream,
    state: State,
    connect_started: Instant,
    /// When the connect completed (meaningful once `state` is Open).
    established: Instant,
    /// When the connection first had something to ask: the later of being
    /// established and its first message's (intended) send. None until its
    /// first bytes are written.
    asked: Option<Instant>,
    /// Whether its first complete reply came back.
    replied: bool,
    /// Stream bytes written and read (verified).
    sent: u64,
    recv: u64,
    /// Messages that may be sent so far.
    due: u64,
    /// (intended, actual) send times of messages written, not yet echoed.
    inflight: VecDeque<(Instant, Instant)>,
    /// Open mode: intended send time of message 0 (its first slot).
    first_due: Instant,
    completed: u64,
    last_completion: Option<Instant>,
    longest_stall: Duration,
}

/// What an event says about a connection's read side.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ReadSide {
    /// Nothing to read: an edge for writing (or connecting) only.
    Nothing,
    /// New data: read until a read returns less than the buffer.
    Data,
    /// The peer closed, or the socket has an error: read to EOF, the error
    /// or EAGAIN.
    End,
}

impl ReadSide {
    fn of(event: &mio::event::Event) -> ReadSide {
        if event.is_read_closed() || event.is_error() {
            ReadSide::End
        } else if event.is_readable() {
            ReadSide::Data
        } else {
            ReadSide::Nothing
        }
    }
}

impl Conn {
    /// An active connection that asked (sent its first bytes) and got no
    /// reply.
    fn unserved(&self) -> bool {
        self.active.is_some() && self.asked.is_some() && !self.replied
    }
}

/// What a churn slot carries from one connection to the next: its id and
/// its fairness figures.
#[derive(Clone, Copy)]
pub(super) struct Slot {
    id: u32,
    completed: u64,
    last_completion: Option<Instant>,
    longest_stall: Duration,
}

impl Slot {
    /// The slot a churn connection belongs to.
    fn of(conn: &Conn) -> Slot {
        Slot {
            id: conn.id,
            completed: conn.completed,
            last_completion: conn.last_completion,
            longest_stall: conn.longest_stall,
        }
    }
}

/// Why a connection is closed ([`Worker::fail`]).
pub(super) enum Failure {
    Io(std::io::Error),
    Mismatch,
    Eof,
}

pub(super) struct Worker<'a> {
    spec: &'a RunSpec,
    threads: usize,
    control: &'a Control,
    connected: &'a AtomicUsize,
    poll: Poll,
    conns: Slab<Conn>,
    /// Global ids still to open, in order.
    to_open: VecDeque<u32>,
    /// Churn at `--connect-rate`: slots closed and waiting for their next
    /// connect, in order of its time, and when this worker may start its
    /// next one ([`close`]).
    reconnect: VecDeque<(Instant, Slot)>,
    next_connect: Instant,
    pending_connects: usize,
    fd_exhausted: bool,
    /// Open mode: when each connection sends next.
    schedule: Schedule,
    /// The measured window, once every worker is connected (warm-up and
    /// measurement have begun).
    window: Option<Window>,
    scratch: Vec<u8>,
    out: WorkerOutput,
    /// Stats of connections already closed.
    closed_active: Vec<(u64, Duration, Option<Instant>)>,
    /// Active (not idle) connections in `conns`, kept as they come and go:
    /// the loop asks on every pass, too often to count 10,000 entries.
    active_conns: usize,
    began: Instant,
    /// Set once the run is over: replies still in flight are read, nothing
    /// new is sent, so the server is not left writing to closed sockets.
    draining: bool,
    /// System calls made so far: read, write, epoll_wait, connect and the
    /// timer's (timerfd read and set). A plain counter, read at the window's
    /// edges.
    syscalls: u64,
}

/// A finished worker's connections, held open until the server has been
/// sampled after the window (dropping them closes them).
pub(super) struct Held {
    _conns: Slab<Conn>,
}

impl<'a> Worker<'a> {
    pub(super) fn new(
        spec: &'a RunSpec,
        index: usize,
        control: &'a Control,
        connected: &'a AtomicUsize,
    ) -> std::io::Result<Self> {
        let total = spec.total_conns() as u32;
        let to_open = (0..total)
            .filter(|id| *id as usize % spec.threads == index)
            .collect();
        let poll = Poll::new()?;
        let schedule = Schedule::new(spec, poll.registry())?;
        Ok(Worker {
            spec,
            threads: spec.threads,
            control,
            connected,
            poll,
            conns: Slab::new(),
            to_open,
            reconnect: VecDeque::new(),
            next_connect: Instant::now(),
            pending_connects: 0,
            fd_exhausted: false,
            schedule,
            window: None,
            scratch: vec![0u8; spec.size.clamp(SCRATCH_MIN, SCRATCH_MAX)],
            out: WorkerOutput::empty(matches!(spec.mode, Mode::Open { .. })),
            closed_active: Vec::new(),
            active_conns: 0,
            began: Instant::now(),
            draining: false,
            syscalls: 0,
        })
    }

    /// Runs the worker's share of the load to the end of the window (or
    /// the stop), then drains; returns its figures and its connections,
    /// still open.
    pub(super) fn run(mut self) -> (WorkerOutput, Held) {
        let mut events = Events::with_capacity(1024);
        let mut reported_connected = false;
        let mut cpu_at_window: Option<Duration> = None;
        let mut syscalls_at_window = 0;
        let mut last_tick = Instant::now();
        loop {
            let now = Instant::now();
            if self.control.stop.load(Relaxed) {
                self.out.interrupted = true;
                break;
            }
            // Phase 1: connect.
            if !reported_connected {
                self.open_due(now);
                if self.to_open.is_empty() && self.pending_connects == 0 {
                    reported_connected = true;
                    self.out.connect_phase = now - self.began;
                    if self.connected.fetch_add(1, Relaxed) + 1 == self.threads {
                        let _ = match self.control.gated.load(Relaxed) {
                            true => self.control.connected.set(now),
                            false => self.control.start.set(now),
                        };
                    }
                }
            }
            // Phases 2 and 3 start together for every worker.
            if self.window.is_none()
                && let Some(&start) = self.control.start.get()
            {
                self.window = Some(Window::after(start, self.spec));
                self.begin_sending(start);
            }
            if let Some(window) = self.window {
                if cpu_at_window.is_none() && now >= window.from {
                    cpu_at_window = Some(thread_cpu());
                    syscalls_at_window = self.syscalls;
                }
                if window.is_over(now) {
                    break;
                }
                self.reconnect_due(now);
                if self.active_open() == 0 {
                    self.out.ended_early =
                        Some("every active connection was closed before the end of the run".into());
                    break;
                }
            }
            if now - last_tick >= TICK {
                last_tick = now;
                self.check_timeouts(now);
            }
            self.send_scheduled(now);
            let timeout = self.poll_timeout(now);
            self.syscalls += 1;
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.out.ended_early = Some(format!("epoll failed: {e}"));
                    break;
                }
            }
            let now = Instant::now();
            for event in events.iter() {
                // A batch of big messages takes a while: Ctrl-C is looked
                // at between connections, not only between batches.
                if self.control.stop.load(Relaxed) {
                    break;
                }
                if event.token() == TIMER {
                    self.syscalls += 1;
                    self.schedule.clear_timer();
                    continue;
                }
                self.on_event(event.token().0, ReadSide::of(event), now);
            }
        }
        let end = Instant::now();
        // Before the drain, which is not part of the window.
        let (cpu_end, syscalls_end) = (thread_cpu(), self.syscalls);
        if !self.out.interrupted {
            // Before the drain: what it reads came after the window.
            if let Some(window) = self.window {
                self.count_unfinished(window, end.min(window.to));
            }
            self.drain(&mut events);
        }
        if let Some(window) = self.window {
            // The part of the window that was measured.
            let measured = Window {
                from: window.from,
                to: end.min(window.to),
            };
            self.out.measured = measured.length();
            if let Some(cpu0) = cpu_at_window
                && !measured.length().is_zero()
            {
                self.out.set_cost(
                    measured.length(),
                    cpu_end.saturating_sub(cpu0),
                    syscalls_end - syscalls_at_window,
                );
            }
            self.finish_fairness(measured);
        }
        // Connections still open at the end that never got a reply.
        self.out.unserved += self.conns.iter().filter(|(_, c)| c.unserved()).count() as u64;
        let conns = std::mem::take(&mut self.conns);
        (self.out, Held { _conns: conns })
    }

    /// After the run: waits (briefly, bounded) for replies still in flight,
    /// then the connections are closed by dropping them.
    fn drain(&mut self, events: &mut Events) {
        self.draining = true;
        let deadline = Instant::now() + Duration::from_millis(250);
        while Instant::now() < deadline
            && self
                .conns
                .iter()
                .any(|(_, c)| c.state == State::Open && c.recv < c.sent)
        {
            if self
                .poll
                .poll(events, Some(Duration::from_millis(10)))
                .is_err()
            {
                return;
            }
            let now = Instant::now();
            let keys: Vec<(usize, ReadSide)> = events
                .iter()
                .filter(|e| e.token() != TIMER)
                .map(|e| (e.token().0, ReadSide::of(e)))
                .collect();
            for (key, side) in keys {
                if self.conns.get(key).is_some_and(|c| c.state == State::Open) {
                    self.receive(key, side, now);
                }
            }
        }
    }

    /// Active connections open, and churn slots between two connections.
    fn active_open(&self) -> usize {
        self.active_conns + self.reconnect.len()
    }

    fn poll_timeout(&mut self, now: Instant) -> Duration {
        let mut wake = now + TICK;
        match self.window {
            // Held back by a gate (which takes seconds): a tick.
            None if self.control.connected.get().is_some() => {}
            // Waiting for the other workers, or pacing connects.
            None => wake = wake.min(now + Duration::from_millis(1)),
            Some(window) => wake = wake.min(window.to),
        }
        if let Some(&(at, _)) = self.reconnect.front() {
            wake = wake.min(at);
        }
        let wake = self.schedule.wake(now, wake, &mut self.syscalls);
        wake.saturating_duration_since(now)
    }
}
