//! What each worker hands back ([`WorkerOutput`]), and how the outputs of
//! a run's workers become its one [`RunResult`]: the figures added up, and
//! the run judged (did it connect, complete messages, see errors?).

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crate::engine::control::Control;
use crate::results::fingerprint::Fingerprint;
use crate::results::spec::{Mode, RunSpec};
use crate::results::{
    ClientStats, ConnectStats, Errors, Fairness, Histograms, Outcome, RunResult, SCHEMA_VERSION,
};

/// Busy fraction above which the client is the bottleneck.
pub const CLIENT_BOUND: f64 = 0.90;

/// An open loop that completes less than this share of its rate fails.
pub const MIN_ACHIEVED: f64 = 0.95;

/// An open loop that takes more than this share of its slots late fails.
const MAX_LATE: f64 = 0.01;

/// A slot taken this much after its time is late: the client, not the
/// server, delayed its message. Far above the timer's precision and a
/// loaded machine's scheduling noise (tens of microseconds), far below
/// the stalls loadgen is there to find.
pub(super) const LATE: Duration = Duration::from_millis(10);

/// One worker's share of the figures. The histograms, fairness and client
/// figures are those of a result, so that the run joins its workers with
/// the code `loadgen merge` joins runs with.
pub(super) struct WorkerOutput {
    pub(super) histograms: Histograms,
    /// Active connections that asked and never got a reply.
    pub(super) unserved: u64,
    /// Open loop: messages due in the window and not answered by its end.
    pub(super) unfinished: u64,
    /// Open loop: slots in the window taken, and those taken late.
    pub(super) slots: u64,
    pub(super) late_slots: u64,
    pub(super) errors: Errors,
    /// Over the measured window (empty if the worker never reached it).
    pub(super) fairness: Fairness,
    /// The thread's own cost over the measured window: one thread, its CPU
    /// and system calls unknown if it never reached the window.
    pub(super) client: ClientStats,
    pub(super) messages: u64,
    pub(super) attempted: u64,
    pub(super) established: u64,
    pub(super) connect_phase: Duration,
    pub(super) measured: Duration,
    pub(super) ended_early: Option<String>,
    pub(super) interrupted: bool,
}

impl WorkerOutput {
    /// Nothing yet; `open` keeps the latency from the actual send apart.
    pub(super) fn empty(open: bool) -> WorkerOutput {
        WorkerOutput {
            histograms: Histograms::empty(open),
            unserved: 0,
            unfinished: 0,
            slots: 0,
            late_slots: 0,
            errors: Errors::default(),
            fairness: Fairness::default(),
            client: ClientStats {
                threads: 1,
                ..ClientStats::default()
            },
            messages: 0,
            attempted: 0,
            established: 0,
            connect_phase: Duration::ZERO,
            measured: Duration::ZERO,
            ended_early: None,
            interrupted: false,
        }
    }

    /// Records what the thread cost over `measured` (not zero): its `cpu`
    /// time and the system calls it made.
    pub(super) fn set_cost(&mut self, measured: Duration, cpu: Duration, syscalls: u64) {
        let busy = cpu.as_secs_f64() / measured.as_secs_f64();
        self.client = ClientStats {
            threads: 1,
            busy_max: busy,
            busy_mean: busy,
            client_bound: busy > CLIENT_BOUND,
            cpu_s_window: Some(cpu.as_secs_f64()),
            syscalls: Some(syscalls),
            ..ClientStats::default()
        };
    }
}

/// The run's result from its workers' outputs: the figures joined as
/// [`RunResult::merge`] joins runs, the rates over the longest measured
/// window (the workers shared one), and the run judged.
pub(super) fn combine(spec: &RunSpec, outputs: Vec<WorkerOutput>, control: &Control) -> RunResult {
    let open = matches!(spec.mode, Mode::Open { .. });
    let mut histograms = Histograms::empty(open);
    let (mut unserved, mut unfinished, mut slots, mut late_slots) = (0, 0, 0, 0);
    let mut errors = Errors::default();
    let (mut messages, mut attempted, mut established) = (0, 0, 0);
    let (mut phase, mut measured) = (Duration::ZERO, Duration::ZERO);
    let mut reasons = Vec::new();
    let mut interrupted = false;
    for o in &outputs {
        // Same bounds on every histogram and one mode for every worker:
        // adding cannot fail.
        let _ = histograms.add(&o.histograms);
        unserved += o.unserved;
        unfinished += o.unfinished;
        slots += o.slots;
        late_slots += o.late_slots;
        errors.add(&o.errors);
        messages += o.messages;
        attempted += o.attempted;
        established += o.established;
        phase = phase.max(o.connect_phase);
        measured = measured.max(o.measured);
        interrupted |= o.interrupted;
        if let Some(r) = &o.ended_early
            && !reasons.contains(r)
        {
            reasons.push(r.clone());
        }
    }
    let fairness = Fairness::join(outputs.iter().map(|o| &o.fairness));
    // Unknown CPU and system calls if any worker did not reach the window.
    let client = ClientStats::join(outputs.iter().map(|o| &o.client));
    let secs = measured.as_secs_f64();
    let bytes = messages * spec.size as u64;
    let rate = |n: f64| if secs > 0.0 { n / secs } else { 0.0 };
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
    if unserved > 0 && messages > 0 {
        // Failed whatever the duration: a run shorter than --timeout would
        // otherwise pass while those connections wait, and a longer one
        // fail on their timeouts.
        let asked = unserved + histograms.first_reply.0.len();
        reasons.push(format!(
            "{unserved} of {asked} connections sent and never got a reply \
             (queued behind busy workers?): the figures describe only the others"
        ));
    }
    if errors.total() > errors.client_own() {
        reasons.push(format!("errors: {}", errors.describe()));
    }
    if errors.client_own() > 0 {
        reasons.push(format!(
            "{CLIENT_REASON}ran out of local ports or file descriptors: {} connect(s) failed \
             before reaching the server (addr_unavailable={}, fd_limit={}; add --source-ips, \
             or raise its open-files limit)",
            errors.client_own(),
            errors.addr_unavailable,
            errors.fd_limit
        ));
    }
    if errors.mismatch > 0 {
        reasons.push(format!(
            "the server echoed bytes that differ from what was sent ({} connection(s))",
            errors.mismatch
        ));
    }
    if let Mode::Open { rate: asked } = spec.mode
        && established > 0
        && !interrupted
    {
        let schedule = Schedule {
            asked,
            achieved: rate(messages as f64),
            unfinished,
            slots,
            late_slots,
            client: &client,
        };
        reasons.extend(schedule.judge());
    }
    let mut result = RunResult {
        schema_version: SCHEMA_VERSION,
        label: None,
        tags: None,
        spec: spec.clone(),
        merged_runs: 1,
        run_id: crate::results::id::new_run_id(),
        merged_from: Vec::new(),
        merged_despite: Vec::new(),
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
        unfinished,
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
        fairness,
        client,
        server: None,
        outcome: Outcome {
            ok: reasons.is_empty(),
            interrupted,
            reasons,
        },
        histograms,
        foreign: None,
        disturbed: false,
    };
    result.client.set_per_msg(messages);
    result.refresh_derived();
    result
}

/// How a failed run's reasons begin when they are the client's own doing
/// (it could not keep its schedule, or had no local port or fd for a
/// connect), not the server's: a soak, which judges the server, reports
/// them without failing it, and a capacity search does not take them for
/// the server's limit.
pub const CLIENT_REASON: &str = "the client ";

/// Whether a reason a run failed for is the client's own ([`CLIENT_REASON`]).
pub fn is_client_reason(reason: &str) -> bool {
    reason.starts_with(CLIENT_REASON)
}

/// What an open loop did with its schedule, to judge it by.
struct Schedule<'a> {
    /// The asked and achieved (completed in the window) rates, msg/s.
    asked: f64,
    achieved: f64,
    unfinished: u64,
    /// Slots in the window, and those the client took late.
    slots: u64,
    late_slots: u64,
    client: &'a ClientStats,
}

impl Schedule<'_> {
    /// Why the run did not do what was asked, if it did not. Below
    /// [`MIN_ACHIEVED`] of the rate, the figures describe another load
    /// than the one asked for. A client that could not keep the schedule
    /// (saturated, or more than [`MAX_LATE`] of the slots taken over
    /// `LATE` after their time) adds its own delay to the corrected
    /// latency, which then no longer describes the server: beyond 1% of
    /// late slots, its delay alone sets the p99.
    fn judge(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.achieved < MIN_ACHIEVED * self.asked {
            let mut why = format!(
                "open loop achieved {:.0} of {} msg/s ({:.1}%)",
                self.achieved,
                self.asked,
                100.0 * self.achieved / self.asked
            );
            if self.unfinished > 0 {
                why += &format!(
                    "; {} message(s) due in the window had no reply by its end",
                    self.unfinished
                );
            }
            reasons.push(why);
        }
        if self.client.client_bound {
            reasons.push(format!(
                "{CLIENT_REASON}could not keep the schedule: its busiest thread was busy {:.0}% \
                 of the window (client-bound)",
                100.0 * self.client.busy_max
            ));
        }
        if self.slots > 0 && self.late_slots as f64 > MAX_LATE * self.slots as f64 {
            reasons.push(format!(
                "{CLIENT_REASON}fell behind its schedule: {} of {} slots in the window were taken \
                 over {} ms late",
                self.late_slots,
                self.slots,
                LATE.as_millis()
            ));
        }
        reasons
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_that_blame_the_client_say_so() {
        let client = ClientStats {
            client_bound: true,
            busy_max: 0.97,
            ..ClientStats::default()
        };
        let schedule = Schedule {
            asked: 1000.0,
            achieved: 500.0,
            unfinished: 3,
            slots: 100,
            late_slots: 50,
            client: &client,
        };
        let reasons = schedule.judge();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        let blamed: Vec<bool> = reasons.iter().map(|r| is_client_reason(r)).collect();
        assert_eq!(blamed, [false, true, true], "{reasons:?}");
    }
}
