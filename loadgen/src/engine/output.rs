//! What each worker hands back ([`WorkerOutput`]), and how the outputs of
//! a run's workers become its one [`RunResult`]: the figures added up, and
//! the run judged (did it connect, complete messages, see errors?).

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::engine::control::Control;
use crate::results::fingerprint::Fingerprint;
use crate::results::spec::{Mode, RunSpec};
use crate::results::{
    ClientStats, ConnectStats, Errors, Fairness, Hist, Histograms, Outcome, RunResult,
    SCHEMA_VERSION, new_histogram,
};

/// Busy fraction above which the client is the bottleneck.
const CLIENT_BOUND: f64 = 0.90;

/// One worker's share of the figures.
pub(super) struct WorkerOutput {
    pub(super) latency: Histogram<u64>,
    pub(super) latency_raw: Histogram<u64>,
    pub(super) connect: Histogram<u64>,
    pub(super) first_reply: Histogram<u64>,
    /// Active connections that asked and never got a reply.
    pub(super) unserved: u64,
    pub(super) errors: Errors,
    pub(super) per_conn: Vec<u64>,
    pub(super) longest_stall: Duration,
    pub(super) messages: u64,
    pub(super) attempted: u64,
    pub(super) established: u64,
    pub(super) connect_phase: Duration,
    pub(super) busy: f64,
    /// CPU time of the thread over the measured window.
    pub(super) cpu_window: Option<Duration>,
    /// System calls made over the measured window (see `Worker::syscalls`).
    pub(super) syscalls_window: Option<u64>,
    pub(super) measured: Duration,
    pub(super) ended_early: Option<String>,
    pub(super) interrupted: bool,
}

impl WorkerOutput {
    pub(super) fn empty() -> WorkerOutput {
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

pub(super) fn combine(spec: &RunSpec, outputs: Vec<WorkerOutput>, control: &Control) -> RunResult {
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
