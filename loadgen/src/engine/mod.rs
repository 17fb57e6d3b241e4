//! The measuring engine: worker threads, each an epoll loop (mio) owning a
//! share of the connections, and the run that coordinates them.
//!
//! A run has three phases, and the clock only covers the last:
//! 1. connect: every worker opens its connections (idle ones first), at
//!    `--connect-rate` if given (in churn, every reconnect too), recording
//!    connect latency;
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
//! every scheduled message suffered, where the raw figure hides it. No loop
//! waits without a bound: connects and messages time out, and a run whose
//! connections are all gone ends early.
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
//!
//! Where each part lives: [`run`] (here) starts the workers, waits for
//! them and samples the server; `control` holds what the run and the
//! workers share (the [`Control`] and the measured window); each worker
//! (`worker`, split by concern: connecting, traffic, how connections end,
//! the open loop's schedule) hands back its share of the figures, which
//! `output` joins into the [`RunResult`] with the code `loadgen merge`
//! joins runs with, and judges; [`pattern`] is the bytes sent and checked.

mod control;
pub mod gate;
mod output;
pub mod pattern;
mod worker;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant, SystemTime};

use crate::probe::Watch;
use crate::probe::cgroup_watch::EdgeWatch;
use crate::probe::sampler::Sampler;
use crate::results::RunResult;
use crate::results::spec::{Mode, RunSpec};

pub use control::Control;
use control::Window;
pub use output::{
    CLIENT_BOUND, CLIENT_REASON, MIN_ACHIEVED as OPEN_MIN_ACHIEVED, is_client_reason,
};
use worker::Worker;

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
    /// The CPUs (servers' and loadgen's) whose foreign load to measure
    /// over the window ([`crate::probe::foreign`]); None: not measured.
    pub foreign_cpus: Option<Vec<usize>>,
    /// Holds the warm-up back until the server has accepted every
    /// connection ([`gate`]); None: the warm-up starts once all are open.
    pub gate: Option<gate::Gate>,
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
    let environment = crate::probe::host::fingerprint(opts.server.as_ref().and_then(Watch::pid));
    let sampler = match opts.server.take() {
        Some(watch) => {
            // The measured window, once every worker is connected.
            let (control, spec) = (Arc::clone(&control), spec.clone());
            let window = Arc::new(move || control.window(&spec).map(Window::bounds));
            Some(Sampler::watch(watch, window).map_err(RunError::Setup)?)
        }
        None => None,
    };
    let foreign = match opts.foreign_cpus.take() {
        Some(cpus) => {
            let (control, spec) = (Arc::clone(&control), spec.clone());
            let window = Arc::new(move || control.window(&spec).map(Window::bounds));
            let read_cpus = cpus.clone();
            let watch = EdgeWatch::start(
                "loadgen-foreign",
                move || crate::probe::foreign::read(&read_cpus),
                window,
            )
            .map_err(RunError::Setup)?;
            Some((watch, cpus))
        }
        None => None,
    };
    if opts.gate.is_some() {
        control
            .gated
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let connected = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(spec.threads);
    for index in 0..spec.threads {
        let (spec, control, connected) =
            (spec.clone(), Arc::clone(&control), Arc::clone(&connected));
        let handle = std::thread::Builder::new()
            .name(format!("loadgen-{index}"))
            .spawn(move || {
                // The connections come back open: closed once the server has
                // been sampled after the run.
                Worker::new(&spec, index, &control, &connected).map(Worker::run)
            })
            .map_err(|e| RunError::Setup(format!("cannot start worker thread: {e}")))?;
        handles.push(handle);
    }
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(gate) = opts.gate.as_mut() {
            gate.check(&control);
        }
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
    let window = control.window(spec).unwrap_or_else(|| {
        let now = Instant::now();
        Window { from: now, to: now }
    });
    // Sampled with the connections still open: a server with a process per
    // connection is then read as it was, not while its processes exit.
    let server = sampler.map(|s| s.finish(window.bounds(), spec.total_conns()));
    let foreign = foreign.and_then(|(watch, cpus)| match watch.finish() {
        (Some(a), Some(b), _) => {
            crate::probe::foreign::between(&a, &b, &cpus, crate::probe::foreign::user_hz())
        }
        _ => None,
    });
    drop(held);
    let mut result = output::combine(spec, outputs, &control);
    result.started_unix_s = started_unix_s;
    result.label = opts.label.take();
    result.environment = environment;
    if let Some(o) = opts.gate.as_ref().and_then(|g| g.outcome) {
        result.connect.accept_wait_s = Some(o.waited.as_secs_f64());
        result.connect.unaccepted = Some(o.left);
        result.connect.server_held = o.server_held;
    }
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
    result.disturbed = foreign
        .as_ref()
        .is_some_and(|f| f.share > crate::probe::foreign::DISTURBED_SHARE);
    result.foreign = foreign;
    if let Some(cg) = result.server.as_mut().and_then(|s| s.cgroup.as_mut()) {
        cg.per_message(result.messages);
    }
    if let Some(k) = result.server.as_mut().and_then(|s| s.kernel.as_mut()) {
        k.per_message(result.messages);
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
