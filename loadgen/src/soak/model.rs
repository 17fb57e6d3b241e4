//! The soak's data: what it ran ([`Plan`]), what it sampled and fitted, and
//! how each style was judged (`soak.json`, read by
//! [`crate::report::soak`]). Types only, and the defaults of the plan.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::compare::model::{CgroupSetup, ServerRecord};
use crate::results::RunResult;
use crate::results::fingerprint::Fingerprint;

/// Version of `soak.json`'s layout; bump on incompatible changes.
pub const SOAK_SCHEMA_VERSION: u32 = 1;

/// Everything one soak measured: `soak.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SoakResults {
    pub schema_version: u32,
    pub started_unix_s: u64,
    pub elapsed_s: f64,
    /// The machine, before any load.
    pub environment: Fingerprint,
    pub server_cpus: Vec<usize>,
    pub client_cpus: Vec<usize>,
    pub server_command: String,
    /// Whether each server ran in a cgroup of its own (its memory charge is
    /// then sampled too).
    pub cgroup: Option<CgroupSetup>,
    pub plan: Plan,
    /// Ctrl-C, SIGTERM or SIGHUP cut the soak short: what was measured up
    /// to then is here, and a style may be missing.
    pub interrupted: bool,
    pub styles: Vec<StyleSoak>,
    /// Every style passed every check (and none was left out).
    pub passed: bool,
}

/// What every style gets: the loads, their length, the sampling, and the
/// bounds the trends are judged by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The loads run this long (connecting first), the first `warmup_s` of
    /// it not fitted.
    pub duration_s: f64,
    pub warmup_s: f64,
    pub sample_interval_s: f64,
    /// Open loop: connections and their total rate (msg/s).
    pub open_conns: usize,
    pub open_rate: f64,
    /// Churn: connect, echo one message, close, at this rate (conn/s), over
    /// this many slots.
    pub churn_rate: f64,
    pub churn_slots: usize,
    /// Idle connections held open, beside one connection sending at
    /// `idle_heartbeat` msg/s, which shows the server still answers.
    pub idle: usize,
    pub idle_heartbeat: f64,
    /// Payload bytes of every message.
    pub size: usize,
    pub bounds: Bounds,
}

/// The trend bounds (see [`crate::soak`]'s docs for why these).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bounds {
    /// Memory may grow at most max(`memory_min_bytes`, `memory_share` of
    /// its mean) over the fitted window.
    pub memory_min_bytes: f64,
    pub memory_share: f64,
    /// fds and threads may move at most max(`count_min`, `count_share` of
    /// their mean), either way, over the fitted window.
    pub count_min: f64,
    pub count_share: f64,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            memory_min_bytes: 1024.0 * 1024.0,
            memory_share: 0.05,
            count_min: 2.0,
            count_share: 0.01,
        }
    }
}

impl Plan {
    /// The loads' defaults: modest and steady, so that what grows is the
    /// server's doing, not a queue.
    pub const OPEN_CONNS: usize = 50;
    pub const OPEN_RATE: f64 = 2000.0;
    pub const CHURN_RATE: f64 = 100.0;
    pub const IDLE: usize = 300;
    pub const IDLE_HEARTBEAT: f64 = 10.0;
    pub const SIZE: usize = 64;

    /// The default loads and bounds over `duration`, the first `warmup`
    /// of it not fitted, sampled every second.
    pub fn new(duration: Duration, warmup: Duration) -> Plan {
        Plan {
            duration_s: duration.as_secs_f64(),
            warmup_s: warmup.as_secs_f64(),
            sample_interval_s: 1.0,
            open_conns: Plan::OPEN_CONNS,
            open_rate: Plan::OPEN_RATE,
            churn_rate: Plan::CHURN_RATE,
            churn_slots: Plan::churn_slots_for(Plan::CHURN_RATE),
            idle: Plan::IDLE,
            idle_heartbeat: Plan::IDLE_HEARTBEAT,
            size: Plan::SIZE,
            bounds: Bounds::default(),
        }
    }
    /// Fewest seconds of samples after the warm-up a trend is fitted on.
    pub const MIN_FIT_S: f64 = 10.0;

    /// The warm-up a soak of `duration` gets unless told: a fifth of it,
    /// at least 5 s.
    pub fn default_warmup(duration: Duration) -> Duration {
        (duration / 5).max(Duration::from_secs(5))
    }

    /// Slots enough for `rate` connections a second (one does thousands
    /// unpaced on loopback; a thousand each leaves room).
    pub fn churn_slots_for(rate: f64) -> usize {
        ((rate / 1000.0).ceil() as usize).clamp(1, 64)
    }
}

/// One style's soak.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StyleSoak {
    pub style: String,
    pub server: ServerRecord,
    /// What memory is: the server's RSS, or PSS over its process tree once
    /// it has forked (see [`crate::probe::procfs`]).
    pub memory_measure: String,
    /// Every sample, from before the loads connect to their end.
    pub samples: Vec<Sample>,
    /// Each sampled figure over the fitted window (after the warm-up).
    pub series: Vec<Series>,
    /// The open, churn and idle loads' results (tagged `soak`, point
    /// `open`, `churn`, `idle`).
    pub runs: Vec<RunResult>,
    pub checks: Vec<Check>,
    pub passed: bool,
}

/// One reading of the server, `t_s` seconds after the loads started.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub t_s: f64,
    /// RSS, or PSS over the tree (see [`StyleSoak::memory_measure`]).
    pub memory_bytes: u64,
    /// Open fds of the server (its tree), counted exactly.
    pub fds: Option<u64>,
    pub threads: u64,
    pub processes: u64,
    /// The server's cgroup's memory charge, the kernel's share included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_memory_bytes: Option<u64>,
}

/// One figure's samples after the warm-up, and the least-squares line
/// through them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// "memory", "fds", "threads" or "cgroup_memory".
    pub name: String,
    /// "bytes" or "count".
    pub unit: String,
    /// Samples fitted, and the time from the first to the last.
    pub samples: usize,
    pub window_s: f64,
    /// The first sample of the soak (before the loads connected), and the
    /// first and last fitted ones.
    pub baseline: f64,
    pub start: f64,
    pub end: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// The fitted slope, per hour, and its standard error.
    pub slope_per_h: f64,
    pub slope_stderr_per_h: f64,
    /// The fitted growth over the window (slope × window).
    pub growth: f64,
}

/// One verdict on a style.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// "errors", "memory", "fds", "threads" or "server".
    pub name: String,
    pub passed: bool,
    /// The figure judged (errors counted, growth over the window) and the
    /// bound it had to keep within.
    pub value: Option<f64>,
    pub bound: Option<f64>,
    /// In words: what was seen and why it passed or failed.
    pub detail: String,
}
