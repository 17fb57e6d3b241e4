//! The measuring engine: worker threads, each an epoll loop (mio) owning a
//! share of the connections, and the run that coordinates them.
//!
//! A run has three phases, and the clock only covers the last:
//! 1. connect: every worker opens its connections (idle ones first), at
//!    `--connect-rate` if given, recording connect latency;
//! 2. warm-up: once *all* workers are connected, messages flow but are not
//!    recorded;
//! 3. measure: for `--duration`, every completed message is recorded.
//!
//! Closed mode keeps `--pipeline` messages in flight per connection. Open
//! mode gives every message a slot on a fixed schedule, whatever the server
//! does; a connection sends when a slot comes and it has fewer than
//! `--pipeline` messages in flight (otherwise the message waits for a
//! reply). Latency is recorded from each message's *intended* send time
//! and, beside it, from the actual send: a server stall then shows as what
//! every scheduled message suffered, where the raw figure hides it. No loop waits without a bound: connects and messages
//! time out, and a run whose connections are all gone ends early.
//!
//! Every active connection also records its wait for its *first* reply,
//! from when it was established and had a message out (the later of the
//! two) to the first complete echo, whenever that comes, warm-up and drain
//! included; a connection that sent and never got a reply by the end of the
//! run is counted as unserved. A server that serves N connections and
//! queues the rest (a fixed pool) shows there: its throughput and latency
//! only describe the connections it served.
//!
//! The connections stay open until the server has been sampled after the
//! window, so a server with a process per connection is read as it was.

pub mod pattern;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use std::os::fd::{AsFd, AsRawFd};

use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use slab::Slab;
use socket2::{Domain, Protocol, Socket, Type};

use crate::probe::Watch;
use crate::probe::cpu::thread_cpu;
use crate::probe::sampler::Sampler;
use crate::results::fingerprint::Fingerprint;
use crate::results::spec::{Mode, RunSpec};
use crate::results::{
    ClientStats, ConnectStats, Errors, Fairness, Hist, Histograms, Outcome, RunResult,
    SCHEMA_VERSION, new_histogram, record,
};

/// Pending connects per worker when no --connect-rate is given: enough to
/// open thousands per second, few enough not to flood the server's backlog
/// with our own burst and measure that instead.
const MAX_PENDING_CONNECTS: usize = 256;
/// How often timeouts and progress are checked.
const TICK: Duration = Duration::from_millis(50);
/// Busy fraction above which the client is the bottleneck.
const CLIENT_BOUND: f64 = 0.90;
/// The open-loop send timer (connections use their slab keys, far below).
const TIMER: Token = Token(usize::MAX - 1);

/// What the caller can watch and control during a run.
#[derive(Default)]
pub struct Control {
    /// Set to end the run early (Ctrl-C): results are partial.
    pub stop: Arc<AtomicBool>,
    pub established: AtomicU64,
    pub completed: AtomicU64,
    /// Set when every worker is connected: the warm-up starts.
    pub start: OnceLock<Instant>,
}

/// Called about every 100 ms on the thread that called [`run`].
pub type TickFn = Box<dyn FnMut(&Control, &RunSpec)>;

/// Options around the run that are not part of the load itself.
#[derive(Default)]
pub struct RunOptions {
    /// The server to sample while the load runs.
    pub server: Option<Watch>,
    pub label: Option<String>,
    /// Called about every 100 ms on the calling thread.
    pub on_tick: Option<TickFn>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Setup(String),
}

/// Runs `spec` to the end (or until `control.stop`), returning the result,
/// partial or not; `result.outcome` says whether the run did what was asked.
pub fn run(
    spec: &RunSpec,
    control: Arc<Control>,
    mut opts: RunOptions,
) -> Result<RunResult, RunError> {
    validate(spec)?;
    let started_unix_s = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Before any load: the load average then describes the machine, not us.
    let environment = Fingerprint::collect(opts.server.as_ref().and_then(Watch::pid));
    let sampler = match opts.server.take() {
        Some(watch) => {
            // The measured window, once every worker is connected.
            let (control, warmup, duration) = (Arc::clone(&control), spec.warmup, spec.duration);
            let window = Arc::new(move || {
                control
                    .start
                    .get()
                    .map(|&s| (s + warmup, s + warmup + duration))
            });
            Some(Sampler::watch(watch, window).map_err(RunError::Setup)?)
        }
        None => None,
    };
    let connected = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(spec.threads);
    for index in 0..spec.threads {
        let (spec, control, connected) =
            (spec.clone(), Arc::clone(&control), Arc::clone(&connected));
        let handle = std::thread::Builder::new()
            .name(format!("loadgen-{index}"))
            .spawn(move || {
                Worker::new(&spec, index, &control, &connected).map(|mut w| {
                    let out = w.run();
                    // Closed once the server has been sampled after the run.
                    (out, std::mem::take(&mut w.conns))
                })
            })
            .map_err(|e| RunError::Setup(format!("cannot start worker thread: {e}")))?;
        handles.push(handle);
    }
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(tick) = opts.on_tick.as_mut() {
            tick(&control, spec);
        }
    }
    let mut outputs = Vec::new();
    let mut held = Vec::new();
    for h in handles {
        match h.join() {
            Ok(Ok((out, conns))) => {
                outputs.push(out);
                held.push(conns);
            }
            Ok(Err(e)) => return Err(RunError::Setup(format!("worker set-up failed: {e}"))),
            Err(_) => return Err(RunError::Setup("a worker thread panicked".into())),
        }
    }
    let window = control
        .start
        .get()
        .map(|&s| (s + spec.warmup, s + spec.warmup + spec.duration))
        .unwrap_or_else(|| (Instant::now(), Instant::now()));
    // Sampled with the connections still open: a server with a process per
    // connection is then read as it was, not while its processes exit.
    let server = sampler.map(|s| s.finish(window, spec.total_conns()));
    drop(held);
    let mut result = combine(spec, outputs, &control);
    result.started_unix_s = started_unix_s;
    result.label = opts.label.take();
    result.environment = environment;
    if let Some(server) = &server
        && !server.alive_at_end
    {
        result.outcome.ok = false;
        let who = match (&server.container, server.pid) {
            (Some(name), _) => format!("container {name}"),
            (None, Some(pid)) => format!("process {pid}"),
            (None, None) => "server".into(),
        };
        result
            .outcome
            .reasons
            .push(format!("the server {who} exited during the run"));
    }
    result.server = server;
    if let Some(cg) = result.server.as_mut().and_then(|s| s.cgroup.as_mut()) {
        cg.per_message(result.messages);
    }
    Ok(result)
}

fn validate(spec: &RunSpec) -> Result<(), RunError> {
    let bad = |m: &str| Err(RunError::Setup(m.to_string()));
    if spec.conns == 0 {
        return bad("--conns must be at least 1");
    }
    if spec.size == 0 {
        return bad("--size must be at least 1");
    }
    if spec.pipeline == 0 {
        return bad("--pipeline must be at least 1");
    }
    if spec.threads == 0 {
        return bad("--threads must be at least 1");
    }
    if spec.duration.is_zero() {
        return bad("--duration must be more than 0");
    }
    if let Mode::Open { rate } = spec.mode
        && !(rate > 0.0 && rate.is_finite())
    {
        return bad("--rate must be a positive number of messages per second");
    }
    Ok(())
}

/// One worker's share of the figures.
struct WorkerOutput {
    latency: Histogram<u64>,
    latency_raw: Histogram<u64>,
    connect: Histogram<u64>,
    first_reply: Histogram<u64>,
    /// Active connections that asked and never got a reply.
    unserved: u64,
    errors: Errors,
    per_conn: Vec<u64>,
    longest_stall: Duration,
    messages: u64,
    attempted: u64,
    established: u64,
    connect_phase: Duration,
    busy: f64,
    /// CPU time of the thread over the measured window.
    cpu_window: Option<Duration>,
    /// System calls made over the measured window (see `Worker::syscalls`).
    syscalls_window: Option<u64>,
    measured: Duration,
    ended_early: Option<String>,
    interrupted: bool,
}

impl WorkerOutput {
    fn empty() -> WorkerOutput {
        WorkerOutput {
            latency: new_histogram(),
            latency_raw: new_histogram(),
            connect: new_histogram(),
            first_reply: new_histogram(),
            unserved: 0,
            errors: Errors::default(),
            per_conn: Vec::new(),
            longest_stall: Duration::ZERO,
            messages: 0,
            attempted: 0,
            established: 0,
            connect_phase: Duration::ZERO,
            busy: 0.0,
            cpu_window: None,
            syscalls_window: None,
            measured: Duration::ZERO,
            ended_early: None,
            interrupted: false,
        }
    }
}

fn combine(spec: &RunSpec, outputs: Vec<WorkerOutput>, control: &Control) -> RunResult {
    let open = matches!(spec.mode, Mode::Open { .. });
    let mut latency = new_histogram();
    let mut latency_raw = new_histogram();
    let mut connect = new_histogram();
    let mut first_reply = new_histogram();
    let mut unserved = 0;
    let mut errors = Errors::default();
    let mut per_conn = Vec::new();
    let (mut stall, mut messages, mut attempted, mut established) = (Duration::ZERO, 0, 0, 0);
    let (mut phase, mut measured) = (Duration::ZERO, Duration::ZERO);
    let mut busy = Vec::new();
    let (mut cpu_window, mut syscalls) = (Some(Duration::ZERO), Some(0));
    let mut reasons = Vec::new();
    let mut interrupted = false;
    for o in outputs {
        // Same bounds on every histogram: adding cannot fail.
        let _ = latency.add(&o.latency);
        let _ = latency_raw.add(&o.latency_raw);
        let _ = connect.add(&o.connect);
        let _ = first_reply.add(&o.first_reply);
        unserved += o.unserved;
        errors.add(&o.errors);
        per_conn.extend(o.per_conn);
        stall = stall.max(o.longest_stall);
        messages += o.messages;
        attempted += o.attempted;
        established += o.established;
        phase = phase.max(o.connect_phase);
        measured = measured.max(o.measured);
        busy.push(o.busy);
        // Unknown if any worker did not reach the window.
        cpu_window = cpu_window.zip(o.cpu_window).map(|(a, b)| a + b);
        syscalls = syscalls.zip(o.syscalls_window).map(|(a, b)| a + b);
        interrupted |= o.interrupted;
        if let Some(r) = o.ended_early
            && !reasons.contains(&r)
        {
            reasons.push(r);
        }
    }
    let secs = measured.as_secs_f64();
    let bytes = messages * spec.size as u64;
    let rate = |n: f64| if secs > 0.0 { n / secs } else { 0.0 };
    let busy_max = busy.iter().copied().fold(0.0, f64::max);
    let busy_mean = busy.iter().sum::<f64>() / busy.len().max(1) as f64;
    if interrupted || control.stop.load(Relaxed) {
        interrupted = true;
        reasons.push("interrupted: the results are partial".into());
    }
    if established == 0 {
        reasons.push(format!(
            "no connection could be established ({})",
            errors.describe()
        ));
    } else if messages == 0 && unserved > 0 {
        reasons.push(format!(
            "no message completed in the measured window: {unserved} connection(s) never got a reply \
             (queued behind busy workers?)"
        ));
    } else if messages == 0 {
        reasons.push("no message completed in the measured window".into());
    }
    if errors.total() > 0 {
        reasons.push(format!("errors: {}", errors.describe()));
    }
    if errors.mismatch > 0 {
        reasons.push(format!(
            "the server echoed bytes that differ from what was sent ({} connection(s))",
            errors.mismatch
        ));
    }
    let mut result = RunResult {
        schema_version: SCHEMA_VERSION,
        label: None,
        tags: None,
        spec: spec.clone(),
        merged_runs: 1,
        environment: Fingerprint::default(),
        started_unix_s: 0,
        measured_s: secs,
        latency_kind: match spec.mode {
            Mode::Open { .. } => {
                "from the intended send time (open loop, corrected for coordinated omission)".into()
            }
            Mode::Closed => "round-trip time (closed loop: hides stalls, see open mode)".into(),
            Mode::Churn => {
                "round trip of each connection's one message (churn; connect latency below)".into()
            }
        },
        messages,
        bytes,
        throughput_msgs_per_s: rate(messages as f64),
        throughput_mb_per_s: rate(bytes as f64) / 1e6,
        latency_us: Default::default(),
        latency_raw_us: None,
        first_reply_us: Default::default(),
        conns_unserved: unserved,
        connect: ConnectStats {
            attempted,
            established,
            // Churn connects all the time: its rate is that of completed
            // connect-echo-close cycles in the window.
            rate_per_s: if spec.mode == Mode::Churn {
                rate(messages as f64)
            } else if phase.is_zero() {
                0.0
            } else {
                established as f64 / phase.as_secs_f64()
            },
            phase_s: phase.as_secs_f64(),
            ..Default::default()
        },
        errors,
        fairness: Fairness::from_counts(per_conn, stall.as_secs_f64() * 1e3),
        client: ClientStats {
            threads: spec.threads,
            busy_max,
            busy_mean,
            client_bound: busy_max > CLIENT_BOUND,
            cpu_s_window: cpu_window.map(|d| d.as_secs_f64()),
            syscalls,
            ..Default::default()
        },
        server: None,
        outcome: Outcome {
            ok: reasons.is_empty(),
            interrupted,
            reasons,
        },
        histograms: Histograms {
            latency: Hist(latency),
            latency_raw: open.then_some(Hist(latency_raw)),
            connect: Hist(connect),
            first_reply: Hist(first_reply),
        },
    };
    result.client.set_per_msg(messages);
    result.refresh_derived();
    result
}

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
    /// Open mode: intended send time of message 0, and the interval.
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

enum Failure {
    Io(io::Error),
    Mismatch,
    Eof,
}

struct Worker<'a> {
    spec: &'a RunSpec,
    threads: usize,
    control: &'a Control,
    connected: &'a AtomicUsize,
    poll: Poll,
    conns: Slab<Conn>,
    /// Global ids still to open, in order.
    to_open: VecDeque<u32>,
    pending_connects: usize,
    fd_exhausted: bool,
    schedule: BinaryHeap<Reverse<(Instant, usize)>>,
    scratch: Vec<u8>,
    out: WorkerOutput,
    /// Stats of connections already closed.
    closed_active: Vec<(u64, Duration, Option<Instant>)>,
    /// Active (not idle) connections in `conns`, kept as they come and go:
    /// the loop asks on every pass, too often to count 10,000 entries.
    active_conns: usize,
    began: Instant,
    interval: Duration,
    /// Set once the run is over: replies still in flight are read, nothing
    /// new is sent, so the server is not left writing to closed sockets.
    draining: bool,
    /// System calls made so far: read, write, epoll_wait, connect and the
    /// timer's (timerfd read and set). A plain counter, read at the window's
    /// edges.
    syscalls: u64,
    /// Wakes the loop at a send time with nanosecond precision (epoll's own
    /// timeout has millisecond granularity, which would delay scheduled
    /// sends and inflate corrected latency by up to 1 ms).
    timer: TimerFd,
}

impl<'a> Worker<'a> {
    fn new(
        spec: &'a RunSpec,
        index: usize,
        control: &'a Control,
        connected: &'a AtomicUsize,
    ) -> io::Result<Self> {
        let total = spec.total_conns() as u32;
        let to_open = (0..total)
            .filter(|id| *id as usize % spec.threads == index)
            .collect();
        let poll = Poll::new()?;
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        poll.registry().register(
            &mut SourceFd(&timer.as_fd().as_raw_fd()),
            TIMER,
            Interest::READABLE,
        )?;
        let interval = match spec.mode {
            Mode::Open { rate } => Duration::from_secs_f64(spec.conns as f64 / rate),
            Mode::Closed | Mode::Churn => Duration::ZERO,
        };
        Ok(Worker {
            spec,
            threads: spec.threads,
            control,
            connected,
            poll,
            conns: Slab::new(),
            to_open,
            pending_connects: 0,
            fd_exhausted: false,
            schedule: BinaryHeap::new(),
            scratch: vec![0u8; (64 * 1024).max(spec.size)],
            out: WorkerOutput::empty(),
            closed_active: Vec::new(),
            active_conns: 0,
            began: Instant::now(),
            interval,
            draining: false,
            syscalls: 0,
            timer,
        })
    }

    fn run(&mut self) -> WorkerOutput {
        let mut events = Events::with_capacity(1024);
        let mut reported_connected = false;
        let mut started = false;
        let mut window: Option<(Instant, Instant)> = None;
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
                        let _ = self.control.start.set(now);
                    }
                }
            }
            // Phases 2 and 3 start together for every worker.
            if !started && let Some(&start) = self.control.start.get() {
                started = true;
                let from = start + self.spec.warmup;
                window = Some((from, from + self.spec.duration));
                self.begin_sending(start);
            }
            if let Some((from, to)) = window {
                if cpu_at_window.is_none() && now >= from {
                    cpu_at_window = Some(thread_cpu());
                    syscalls_at_window = self.syscalls;
                }
                if now >= to {
                    break;
                }
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
            self.send_scheduled(now, window);
            let timeout = self.poll_timeout(now, started, window);
            self.syscalls += 1;
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.out.ended_early = Some(format!("epoll failed: {e}"));
                    break;
                }
            }
            let now = Instant::now();
            for event in events.iter() {
                if event.token() == TIMER {
                    // Drain the expiry count; the schedule is checked every pass.
                    let mut buf = [0u8; 8];
                    self.syscalls += 1;
                    let _ = nix::unistd::read(&self.timer, &mut buf);
                    continue;
                }
                self.on_event(event.token().0, ReadSide::of(event), now, window);
            }
        }
        let end = Instant::now();
        // Before the drain, which is not part of the window.
        let (cpu_end, syscalls_end) = (thread_cpu(), self.syscalls);
        if !self.out.interrupted {
            self.drain(&mut events, window);
        }
        if let Some((from, to)) = window {
            let stop = end.min(to);
            self.out.measured = stop.saturating_duration_since(from);
            if let Some(cpu0) = cpu_at_window
                && stop > from
            {
                let cpu = cpu_end.saturating_sub(cpu0);
                self.out.busy = cpu.as_secs_f64() / (stop - from).as_secs_f64();
                self.out.cpu_window = Some(cpu);
                self.out.syscalls_window = Some(syscalls_end - syscalls_at_window);
            }
            self.finish_fairness(from, stop);
        }
        // Connections still open at the end that never got a reply.
        self.out.unserved += self.conns.iter().filter(|(_, c)| unserved(c)).count() as u64;
        std::mem::replace(&mut self.out, WorkerOutput::empty())
    }

    /// After the run: waits (briefly, bounded) for replies still in flight,
    /// then the connections are closed by dropping them.
    fn drain(&mut self, events: &mut Events, window: Option<(Instant, Instant)>) {
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
                    self.receive(key, side, now, window);
                }
            }
        }
    }

    fn active_open(&self) -> usize {
        self.active_conns
    }

    fn poll_timeout(
        &mut self,
        now: Instant,
        started: bool,
        window: Option<(Instant, Instant)>,
    ) -> Duration {
        let mut wake = now + TICK;
        if !started {
            // Waiting for the other workers, or pacing connects.
            wake = wake.min(now + Duration::from_millis(1));
        }
        if let Some((_, to)) = window {
            wake = wake.min(to);
        }
        if let Some(Reverse((due, _))) = self.schedule.peek() {
            let until = due.saturating_duration_since(now);
            if until.is_zero() {
                return Duration::ZERO;
            }
            if *due < wake {
                // The timer wakes the loop on time; epoll's timeout is only
                // the fallback.
                let spec = TimeSpec::from_duration(until);
                self.syscalls += 1;
                if self
                    .timer
                    .set(Expiration::OneShot(spec), TimerSetTimeFlags::empty())
                    .is_err()
                {
                    wake = *due;
                }
            }
        }
        wake.saturating_duration_since(now)
    }

    // ---- connect phase ----

    fn open_due(&mut self, now: Instant) {
        while let Some(&id) = self.to_open.front() {
            if self.fd_exhausted {
                break;
            }
            match self.spec.connect_rate {
                Some(rate) => {
                    let at = self.began + Duration::from_secs_f64(id as f64 / rate);
                    if at > now {
                        return;
                    }
                }
                None if self.pending_connects >= MAX_PENDING_CONNECTS => return,
                None => {}
            }
            self.to_open.pop_front();
            self.open(id, now);
        }
        if self.fd_exhausted && !self.to_open.is_empty() {
            // Connections never attempted: counted, reported, not waited for.
            self.out.errors.fd_limit += self.to_open.len() as u64;
            self.to_open.clear();
        }
    }

    /// Starts connecting connection `id`; returns its slab key.
    fn open(&mut self, id: u32, now: Instant) -> Option<usize> {
        self.out.attempted += 1;
        let spec = self.spec;
        let target: SocketAddr = spec.addr;
        let socket = match Socket::new(
            Domain::for_address(target),
            Type::STREAM,
            Some(Protocol::TCP),
        ) {
            Ok(s) => s,
            Err(e) => {
                self.connect_failed(&e);
                return None;
            }
        };
        let setup = socket
            .set_nonblocking(true)
            .and_then(|()| socket.set_tcp_nodelay(true));
        if let Err(e) = setup {
            self.connect_failed(&e);
            return None;
        }
        if !spec.source_ips.is_empty() {
            let ip = spec.source_ips[id as usize % spec.source_ips.len()];
            if let Err(e) = socket.bind(&SocketAddr::new(ip, 0).into()) {
                self.connect_failed(&e);
                return None;
            }
        }
        self.syscalls += 1;
        match socket.connect(&target.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => {
                self.connect_failed(&e);
                return None;
            }
        }
        let mut stream = TcpStream::from_std(socket.into());
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.connect_failed(&e);
            return None;
        }
        let active = (id as usize).checked_sub(spec.idle);
        self.active_conns += usize::from(active.is_some());
        entry.insert(Conn {
            id,
            active,
            stream,
            state: State::Connecting,
            connect_started: now,
            established: now,
            asked: None,
            replied: false,
            sent: 0,
            recv: 0,
            due: 0,
            inflight: VecDeque::new(),
            first_due: now,
            completed: 0,
            last_completion: None,
            longest_stall: Duration::ZERO,
        });
        self.pending_connects += 1;
        Some(key)
    }

    fn connect_failed(&mut self, e: &io::Error) {
        match e.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE) => {
                self.out.errors.fd_limit += 1;
                if !self.fd_exhausted {
                    self.fd_exhausted = true;
                    eprintln!(
                        "loadgen: out of file descriptors after {} connections (open-files limit {}): \
                         raise `ulimit -n` or ask for fewer --conns/--idle",
                        self.conns.len(),
                        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                            .map(|(s, _)| s)
                            .unwrap_or(0)
                    );
                }
            }
            Some(libc::ECONNREFUSED) => self.out.errors.refused += 1,
            Some(libc::ETIMEDOUT) => self.out.errors.connect_timeout += 1,
            Some(libc::EADDRNOTAVAIL | libc::EADDRINUSE) => self.out.errors.addr_unavailable += 1,
            Some(libc::ECONNRESET | libc::EPIPE | libc::ECONNABORTED) => self.out.errors.reset += 1,
            _ => self.out.errors.other += 1,
        }
    }

    fn on_connect_ready(&mut self, key: usize, now: Instant) {
        let conn = &mut self.conns[key];
        let outcome = match conn.stream.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => match conn.stream.peer_addr() {
                Ok(_) => Ok(()),
                // Not connected yet: a spurious wake-up.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => Err(e),
            },
        };
        self.pending_connects -= 1;
        match outcome {
            Ok(()) => {
                conn.state = State::Open;
                conn.established = now;
                record(&mut self.out.connect, now - conn.connect_started);
                self.out.established += 1;
                self.control.established.fetch_add(1, Relaxed);
                if let Some(&start) = self.control.start.get() {
                    // A late connect (another worker was faster): join in.
                    self.start_conn(key, start);
                }
            }
            Err(e) => {
                self.remove(key);
                self.connect_failed(&e);
            }
        }
    }

    // ---- sending and receiving ----

    fn begin_sending(&mut self, start: Instant) {
        let keys: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.state == State::Open)
            .map(|(k, _)| k)
            .collect();
        for key in keys {
            self.start_conn(key, start);
        }
    }

    fn start_conn(&mut self, key: usize, start: Instant) {
        let Some(active) = self.conns[key].active else {
            return;
        };
        match self.spec.mode {
            Mode::Closed => {
                self.conns[key].due = self.spec.pipeline as u64;
                self.flush(key, Instant::now(), None);
            }
            Mode::Churn => {
                self.conns[key].due = 1;
                self.flush(key, Instant::now(), None);
            }
            Mode::Open { rate } => {
                // Connection a sends at start + a/rate + k*interval: the
                // connections' schedules interleave evenly.
                let first = start + Duration::from_secs_f64(active as f64 / rate);
                self.conns[key].first_due = first;
                self.schedule.push(Reverse((first, key)));
            }
        }
    }

    fn send_scheduled(&mut self, now: Instant, window: Option<(Instant, Instant)>) {
        while let Some(&Reverse((due, key))) = self.schedule.peek() {
            if due > now {
                break;
            }
            self.schedule.pop();
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            // The slab key may have been reused by another connection.
            let expected = conn.first_due + self.interval.saturating_mul(conn.due as u32);
            if conn.active.is_none() || expected != due {
                continue;
            }
            conn.due += 1;
            let next = due + self.interval;
            self.schedule.push(Reverse((next, key)));
            self.flush(key, now, window);
        }
    }

    fn intended(&self, conn: &Conn, msg: u64, now: Instant) -> Instant {
        match self.spec.mode {
            Mode::Closed | Mode::Churn => now,
            Mode::Open { .. } => conn.first_due + self.interval.saturating_mul(msg as u32),
        }
    }

    /// Writes every due byte the socket takes.
    fn flush(&mut self, key: usize, now: Instant, window: Option<(Instant, Instant)>) {
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
                    return self.fail(key, Failure::Io(io::ErrorKind::WriteZero.into()), window);
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
                Err(e) => return self.fail(key, Failure::Io(e), window),
            }
        }
    }

    fn on_event(
        &mut self,
        key: usize,
        side: ReadSide,
        now: Instant,
        window: Option<(Instant, Instant)>,
    ) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        if conn.state == State::Connecting {
            self.on_connect_ready(key, now);
            if !self.conns.contains(key) || self.conns[key].state == State::Connecting {
                return;
            }
        }
        self.receive(key, side, now, window);
        if !self.conns.contains(key) {
            return;
        }
        if self.spec.mode == Mode::Churn && self.conns[key].recv >= self.spec.size as u64 {
            self.recycle(key, now);
        } else {
            self.flush(key, now, window);
        }
    }

    /// Churn: closes a connection whose one message came back and opens its
    /// successor at once; the slot keeps its fairness figures.
    fn recycle(&mut self, key: usize, now: Instant) {
        let old = self.take(key);
        let (id, completed, last, stall) = (
            old.id,
            old.completed,
            old.last_completion,
            old.longest_stall,
        );
        drop(old);
        if let Some(new) = self.open(id, now) {
            let conn = &mut self.conns[new];
            conn.completed = completed;
            conn.last_completion = last;
            conn.longest_stall = stall;
        } else {
            // The slot could not reconnect (counted in errors): it keeps
            // what it completed.
            self.closed_active.push((completed, stall, last));
        }
    }

    /// Reads and checks what the event announced. Sockets are registered
    /// edge-triggered, and every arrival of data (or of the end of the
    /// stream) raises a new event: a read that returns less than the buffer
    /// has drained the socket, and reading on would only get EAGAIN. Only
    /// when the event says the peer closed or the socket failed is it read
    /// to the end (the FIN or the error may have come with the data, in the
    /// same edge).
    fn receive(
        &mut self,
        key: usize,
        side: ReadSide,
        now: Instant,
        window: Option<(Instant, Instant)>,
    ) {
        if side == ReadSide::Nothing {
            return;
        }
        let size = self.spec.size as u64;
        let full = self.scratch.len();
        // Only the open loop reports latency from the actual send apart.
        let open = matches!(self.spec.mode, Mode::Open { .. });
        loop {
            let conn = &mut self.conns[key];
            self.syscalls += 1;
            let n = match conn.stream.read(&mut self.scratch) {
                Ok(0) => return self.fail(key, Failure::Eof, window),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.fail(key, Failure::Io(e), window),
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
                return self.fail(key, Failure::Mismatch, window);
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
                        &mut self.out.first_reply,
                        now.saturating_duration_since(asked),
                    );
                }
            }
            let mut done = 0;
            for _ in before..after {
                let Some((intended, sent_at)) = conn.inflight.pop_front() else {
                    break;
                };
                if let Some((from, to)) = window
                    && now >= from
                    && now < to
                {
                    record(&mut self.out.latency, now - intended);
                    if open {
                        record(&mut self.out.latency_raw, now - sent_at);
                    }
                    self.out.messages += 1;
                    conn.completed += 1;
                    let since = conn.last_completion.unwrap_or(from).max(from);
                    // In open mode replies are due once per interval: only
                    // the time beyond that is a stall.
                    let gap = (now - since).saturating_sub(self.interval);
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

    /// Closes a connection that failed, counting why.
    fn fail(&mut self, key: usize, why: Failure, window: Option<(Instant, Instant)>) {
        // Once the run is over, what happens to sockets is not the server's fault.
        if window.is_some_and(|(_, to)| Instant::now() >= to) {
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
        self.out.unserved += u64::from(unserved(&conn));
        conn
    }

    fn remove(&mut self, key: usize) {
        let conn = self.take(key);
        if conn.active.is_some() && conn.state == State::Open {
            self.closed_active
                .push((conn.completed, conn.longest_stall, conn.last_completion));
        }
    }

    fn check_timeouts(&mut self, now: Instant) {
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

    fn finish_fairness(&mut self, from: Instant, to: Instant) {
        let mut per_conn = Vec::new();
        let mut stall = Duration::ZERO;
        let open_conns = self
            .conns
            .iter()
            .filter(|(_, c)| c.active.is_some())
            .map(|(_, c)| (c.completed, c.longest_stall, c.last_completion));
        // A connection that died went without completions from then on.
        let all: Vec<_> = open_conns
            .chain(self.closed_active.iter().copied())
            .collect();
        for (completed, longest, last) in all {
            let last = last.unwrap_or(from).max(from);
            let tail = to
                .saturating_duration_since(last)
                .saturating_sub(self.interval);
            stall = stall.max(longest).max(tail);
            per_conn.push(completed);
        }
        self.out.per_conn = per_conn;
        self.out.longest_stall = stall;
    }
}

/// An active connection that asked (sent its first bytes) and got no reply.
fn unserved(conn: &Conn) -> bool {
    conn.active.is_some() && conn.asked.is_some() && !conn.replied
}
