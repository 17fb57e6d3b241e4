//! A run's result: every figure loadgen reports, the histograms behind them
//! (so that runs merge exactly), and the JSON schema they are written in.

pub mod fingerprint;
pub mod foreign;
pub mod id;
pub mod merge;
pub mod server;
pub mod spec;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use crate::results::fingerprint::Fingerprint;
use crate::results::server::ServerStats;
use crate::results::spec::RunSpec;

/// Version of the JSON layout below; bump on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// Latency histograms count microseconds from 1 us to 60 s, 3 significant
/// figures.
pub const HIST_MAX_US: u64 = 60_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

/// Records a duration in microseconds, clamped into the histogram's range
/// (a latency over 60 s is recorded as 60 s, never dropped).
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = (d.as_micros() as u64).clamp(1, HIST_MAX_US);
    h.saturating_record(us);
}

/// Records `n` samples of one duration, as [`record`] does.
pub fn record_n(h: &mut Histogram<u64>, d: Duration, n: u64) {
    let us = (d.as_micros() as u64).clamp(1, HIST_MAX_US);
    h.saturating_record_n(us, n);
}

/// A histogram in JSON: HdrHistogram V2 compressed, base64.
#[derive(Clone, Debug)]
pub struct Hist(pub Histogram<u64>);

impl Default for Hist {
    fn default() -> Self {
        Hist(new_histogram())
    }
}

impl PartialEq for Hist {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Serialize for Hist {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.0, &mut bytes)
            .map_err(|e| serde::ser::Error::custom(format!("histogram: {e:?}")))?;
        s.serialize_str(&B64.encode(bytes))
    }
}

impl<'de> Deserialize<'de> for Hist {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = B64
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)?;
        let h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| serde::de::Error::custom(format!("histogram: {e:?}")))?;
        // Re-bound, so merged histograms share one layout.
        let mut bounded = new_histogram();
        bounded
            .add(&h)
            .map_err(|e| serde::de::Error::custom(format!("histogram: {e:?}")))?;
        Ok(Hist(bounded))
    }
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            p9999: h.value_at_quantile(0.9999),
            max: h.max(),
        }
    }
}

/// Errors by kind. Every one is counted, none ends the run by itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Errors {
    /// Connect refused (nothing listening).
    pub refused: u64,
    /// Connection reset or broken pipe.
    pub reset: u64,
    /// A message not answered within --timeout.
    pub timeout: u64,
    /// The server closed a connection loadgen still used.
    pub eof: u64,
    /// Echoed bytes that differ from what was sent.
    pub mismatch: u64,
    /// A connect not completed within --timeout.
    pub connect_timeout: u64,
    /// No file descriptor left for a new socket (EMFILE/ENFILE).
    pub fd_limit: u64,
    /// No local port/address left (EADDRNOTAVAIL): add --source-ips.
    pub addr_unavailable: u64,
    /// Anything else.
    pub other: u64,
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.refused
            + self.reset
            + self.timeout
            + self.eof
            + self.mismatch
            + self.connect_timeout
            + self.fd_limit
            + self.addr_unavailable
            + self.other
    }

    /// Failures of the client's own making, before any packet reached the
    /// server: no local port (EADDRNOTAVAIL) or no file descriptor left.
    pub fn client_own(&self) -> u64 {
        self.addr_unavailable + self.fd_limit
    }

    pub fn add(&mut self, o: &Errors) {
        self.refused += o.refused;
        self.reset += o.reset;
        self.timeout += o.timeout;
        self.eof += o.eof;
        self.mismatch += o.mismatch;
        self.connect_timeout += o.connect_timeout;
        self.fd_limit += o.fd_limit;
        self.addr_unavailable += o.addr_unavailable;
        self.other += o.other;
    }

    /// Non-zero kinds, for messages.
    pub fn describe(&self) -> String {
        let kinds = [
            ("refused", self.refused),
            ("reset", self.reset),
            ("timeout", self.timeout),
            ("eof", self.eof),
            ("mismatch", self.mismatch),
            ("connect_timeout", self.connect_timeout),
            ("fd_limit", self.fd_limit),
            ("addr_unavailable", self.addr_unavailable),
            ("other", self.other),
        ];
        let parts: Vec<String> = kinds
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(" ")
        }
    }
}

/// Connection set-up figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectStats {
    pub attempted: u64,
    pub established: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// Connections established per second over the connect phase.
    pub rate_per_s: f64,
    pub phase_s: f64,
    /// How long after the last connect the warm-up was held back for the
    /// server to accept the connections (`reach`); None: not held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_wait_s: Option<f64>,
    /// Connections still in the server's listen queue when that wait
    /// ended: it had stopped accepting them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unaccepted: Option<u64>,
    /// Connections the server's side held then (established sockets on
    /// its port, accepted or queued), whoever opened them: fewer than
    /// loadgen established where the listen queue overflowed and SYN
    /// cookies completed handshakes the server never kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_held: Option<u64>,
}

/// Per-connection fairness over the measured window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Fairness {
    /// Jain's index over messages completed per connection: 1 = all equal,
    /// 1/n = one connection got everything.
    pub jain_index: f64,
    pub min_per_conn: u64,
    pub max_per_conn: u64,
    /// Longest time any active connection went without a completed message
    /// (in open mode: beyond the interval at which replies were due).
    pub longest_stall_ms: f64,
    /// Messages completed by each active connection in the window.
    pub per_conn: Vec<u64>,
}

impl Fairness {
    /// The figures of disjoint sets of connections taken together (the
    /// workers of one run, or the runs of a merge): their counts side by
    /// side, in order, and the longest stall of all.
    pub fn join<'a>(parts: impl IntoIterator<Item = &'a Fairness>) -> Fairness {
        let mut per_conn = Vec::new();
        let mut stall: f64 = 0.0;
        for f in parts {
            per_conn.extend_from_slice(&f.per_conn);
            stall = stall.max(f.longest_stall_ms);
        }
        Fairness::from_counts(per_conn, stall)
    }

    pub fn from_counts(per_conn: Vec<u64>, longest_stall_ms: f64) -> Fairness {
        let n = per_conn.len() as f64;
        let sum: f64 = per_conn.iter().map(|&x| x as f64).sum();
        let sum_sq: f64 = per_conn.iter().map(|&x| (x as f64) * (x as f64)).sum();
        Fairness {
            jain_index: if sum_sq > 0.0 {
                sum * sum / (n * sum_sq)
            } else {
                0.0
            },
            min_per_conn: per_conn.iter().copied().min().unwrap_or(0),
            max_per_conn: per_conn.iter().copied().max().unwrap_or(0),
            longest_stall_ms,
            per_conn,
        }
    }
}

/// How busy loadgen itself was.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientStats {
    pub threads: usize,
    /// CPU time / wall time of the busiest worker thread over the window.
    pub busy_max: f64,
    pub busy_mean: f64,
    /// True when a worker was busy more than 90% of the window: the figures
    /// are then the client's limit, not the server's.
    pub client_bound: bool,
    /// CPU time of all worker threads over the measured window, seconds.
    /// None in results written before it was measured.
    #[serde(default)]
    pub cpu_s_window: Option<f64>,
    /// System calls the engine made over the measured window: read, write,
    /// epoll_wait, connect, and the open loop's timer (timerfd read and
    /// set). None in results written before they were counted.
    #[serde(default)]
    pub syscalls: Option<u64>,
    /// `cpu_s_window` in microseconds per message completed in the window;
    /// None when no message completed.
    #[serde(default)]
    pub cpu_us_per_msg: Option<f64>,
    /// `syscalls` per message completed in the window; None when no message
    /// completed.
    #[serde(default)]
    pub syscalls_per_msg: Option<f64>,
}

impl ClientStats {
    /// The figures of disjoint sets of client threads taken together (the
    /// workers of one run, or the runs of a merge): totals add up, the
    /// busiest thread is the busiest of all, and the mean is over threads,
    /// every thread counting once wherever it ran. (A mean of the parts'
    /// means would weight a one-thread run like a four-thread one, and a
    /// pairwise fold would halve the weight of every earlier part.) The
    /// per-message figures are left to [`ClientStats::set_per_msg`].
    pub fn join<'a>(parts: impl IntoIterator<Item = &'a ClientStats>) -> ClientStats {
        let mut out = ClientStats {
            cpu_s_window: Some(0.0),
            syscalls: Some(0),
            ..ClientStats::default()
        };
        let mut busy_sum = 0.0;
        for c in parts {
            out.threads += c.threads;
            out.busy_max = out.busy_max.max(c.busy_max);
            busy_sum += c.busy_mean * c.threads as f64;
            out.client_bound |= c.client_bound;
            out.cpu_s_window = sum_opt(out.cpu_s_window, c.cpu_s_window);
            out.syscalls = sum_opt(out.syscalls, c.syscalls);
        }
        out.busy_mean = busy_sum / out.threads.max(1) as f64;
        out
    }

    /// Fills the per-message figures from the totals and `messages`.
    pub fn set_per_msg(&mut self, messages: u64) {
        let per = |total: f64| (messages > 0).then(|| total / messages as f64);
        self.cpu_us_per_msg = self.cpu_s_window.and_then(|s| per(s * 1e6));
        self.syscalls_per_msg = self.syscalls.and_then(|n| per(n as f64));
    }
}

/// Whether the run did what was asked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub ok: bool,
    pub interrupted: bool,
    /// Why the run failed or ended early, in words.
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    /// The reported latency: from intended send (open) or round trip (closed).
    pub latency: Hist,
    /// Open mode: from the actual send.
    pub latency_raw: Option<Hist>,
    pub connect: Hist,
    /// Per connection: from the moment it was established and had a message
    /// to send (the later of the two) to its first complete echoed reply.
    /// Recorded for every active connection that got a reply, warm-up and
    /// drain included (a queued connection's wait is mostly before the
    /// measured window). Absent in results written before it existed.
    #[serde(default)]
    pub first_reply: Hist,
}

impl Histograms {
    /// Empty histograms; only the open loop keeps the latency from the
    /// actual send apart.
    pub fn empty(open: bool) -> Histograms {
        Histograms {
            latency_raw: open.then(Hist::default),
            ..Histograms::default()
        }
    }

    /// Adds the counts of `other` (a run's other worker, or another run):
    /// exact, in any order.
    pub fn add(&mut self, other: &Histograms) -> Result<(), String> {
        add_hist(&mut self.latency, &other.latency)?;
        add_hist(&mut self.connect, &other.connect)?;
        add_hist(&mut self.first_reply, &other.first_reply)?;
        match (&mut self.latency_raw, &other.latency_raw) {
            (Some(a), Some(b)) => add_hist(a, b),
            (None, None) => Ok(()),
            _ => Err("cannot merge an open-loop run with a closed-loop one".into()),
        }
    }
}

/// Where a run belongs in a comparison.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tags {
    pub style: String,
    pub scenario: String,
    /// The point within the scenario, e.g. "conns=1000 size=64".
    pub point: String,
    /// Which of `compare --repeat N` rounds (0-based) measured it.
    #[serde(default, skip_serializing_if = "is_default")]
    pub repeat: u32,
    /// Set on a run of the reference style (epoll) measured side by side
    /// with this style's run at the same point and round (the perf
    /// profile's pairs, [`crate::compare::pair`]): it is that style's
    /// denominator, not a cell of the reference's own.
    #[serde(default, skip_serializing_if = "is_default")]
    pub partner_of: String,
}

impl Tags {
    /// A run measured beside another style's, only to be its reference.
    pub fn is_partner(&self) -> bool {
        !self.partner_of.is_empty()
    }
}

/// A Unix time in UTC: year, month, day, hour, minute, second.
pub fn civil_utc(unix_s: u64) -> (i64, i64, i64, u64, u64, u64) {
    let (days, rem) = (unix_s / 86_400, unix_s % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// "2026-12-07 00:10:05 UTC".
pub fn utc_time(unix_s: u64) -> String {
    let (y, mo, d, h, mi, s) = civil_utc(unix_s);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

/// 10000 → "10,000".
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A latency in microseconds, in the unit that reads best.
pub fn fmt_us(v: u64) -> String {
    if v >= 10_000_000 {
        format!("{:.1} s", v as f64 / 1e6)
    } else if v >= 10_000 {
        format!("{:.1} ms", v as f64 / 1e3)
    } else {
        format!("{v} us")
    }
}

/// For `skip_serializing_if`: a field at its default is left out, so
/// results without the newer figures keep the keys they had.
pub fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Everything one run (or a merge of runs) measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub schema_version: u32,
    /// A name for the run (scenario, style), if the caller gave one.
    pub label: Option<String>,
    /// Set by `loadgen compare`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    pub spec: RunSpec,
    /// Number of runs merged into this one (1 for a plain run).
    pub merged_runs: u32,
    /// This result's id, unique across processes and hosts (a merge gets
    /// one of its own); empty in results written before runs had one.
    #[serde(default)]
    pub run_id: String,
    /// A merge: the ids of the runs in it (see [`id::run_ids`]), so that a
    /// merge holding one run twice is refused however deep.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
    /// A merge made with `--force`: why it would have been refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_despite: Vec<String>,
    pub environment: Fingerprint,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix_s: u64,
    /// Length of the measured window, seconds (shorter if the run ended early).
    pub measured_s: f64,
    /// What `latency_us` measures, in words.
    pub latency_kind: String,
    pub messages: u64,
    pub bytes: u64,
    pub throughput_msgs_per_s: f64,
    pub throughput_mb_per_s: f64,
    pub latency_us: Percentiles,
    /// Open mode only: latency from the actual send, beside the corrected one.
    pub latency_raw_us: Option<Percentiles>,
    /// Time to each connection's first reply (see `histograms.first_reply`);
    /// `count` is the number of connections that got one.
    #[serde(default)]
    pub first_reply_us: Percentiles,
    /// Active connections that were established and sent a message but got
    /// no reply by the end of the run (drain included), however they ended:
    /// e.g. queued behind the busy workers of a fixed pool. Not an error by
    /// itself (a message that timed out is, as ever, in `errors.timeout`).
    #[serde(default)]
    pub conns_unserved: u64,
    /// Open loop: messages due in the measured window (their slot inside
    /// it) with no reply by its end, sent or not. Each is in the corrected
    /// latency with its wait so far (window end minus slot), a lower bound,
    /// so that a stall at the end shows. 0 in the other modes and in
    /// results written before they were counted.
    #[serde(default)]
    pub unfinished: u64,
    pub connect: ConnectStats,
    pub errors: Errors,
    pub fairness: Fairness,
    pub client: ClientStats,
    pub server: Option<ServerStats>,
    pub outcome: Outcome,
    pub histograms: Histograms,
    /// CPU time on the run's CPUs over its window that was none of the
    /// comparison's own ([`foreign::ForeignLoad`]); None: not measured
    /// (no /proc/stat, servers not in cgroups of ours, containers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign: Option<foreign::ForeignLoad>,
    /// The foreign share was over [`crate::probe::foreign::DISTURBED_SHARE`]:
    /// marked in every table, never ranked.
    #[serde(default, skip_serializing_if = "is_default")]
    pub disturbed: bool,
}

impl RunResult {
    /// Recomputes the derived figures from the histograms and counts.
    pub fn refresh_derived(&mut self) {
        self.latency_us = Percentiles::of(&self.histograms.latency.0);
        self.latency_raw_us = self
            .histograms
            .latency_raw
            .as_ref()
            .map(|h| Percentiles::of(&h.0));
        self.first_reply_us = Percentiles::of(&self.histograms.first_reply.0);
        let c = &self.histograms.connect.0;
        if !c.is_empty() {
            self.connect.p50_us = c.value_at_quantile(0.5);
            self.connect.p99_us = c.value_at_quantile(0.99);
            self.connect.max_us = c.max();
        }
    }

    /// Active connections that got a reply, of those that asked for one;
    /// None when the run has no such figures (results from before they were
    /// recorded, or nothing established).
    pub fn served(&self) -> Option<(u64, u64)> {
        let served = self.histograms.first_reply.0.len();
        let total = served + self.conns_unserved;
        (total > 0).then_some((served, total))
    }
}

/// The sum of two totals, unknown if either is (a run that did not measure
/// it would make the sum an undercount).
fn sum_opt<T: std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
    Some(a? + b?)
}

fn add_hist(into: &mut Hist, from: &Hist) -> Result<(), String> {
    into.0.add(&from.0).map_err(|e| format!("histogram: {e:?}"))
}
