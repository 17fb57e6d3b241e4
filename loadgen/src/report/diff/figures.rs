//! Which figures of a run a change against a baseline compares, per
//! scenario: the ones its section of report.md shows. Each has a kind,
//! which says which way is better and how much it moves between two runs
//! of the same code on this machine (the noise floor, in [`super`]).

use crate::compare::model::Scenario;
use crate::report::cost::{cgroup, cpu_us_per_msg};
use crate::report::md::fmt_rate;
use crate::results::{RunResult, fmt_us};

/// What a figure measures: the direction that is better, the words for a
/// change, and its noise floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Messages or connections per second: higher is better.
    Throughput,
    /// A latency or a stall: lower is better.
    Latency,
    /// Server CPU per message, or in % of a core: lower is better.
    Cpu,
    /// Server memory per connection: lower is better.
    Memory,
    /// Jain's index over the connections: higher is better.
    Fairness,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Throughput,
        Kind::Latency,
        Kind::Cpu,
        Kind::Memory,
        Kind::Fairness,
    ];

    pub fn higher_is_better(self) -> bool {
        matches!(self, Kind::Throughput | Kind::Fairness)
    }

    /// The verdicts of a change beyond noise: (better, worse).
    pub fn words(self) -> (&'static str, &'static str) {
        match self {
            Kind::Throughput => ("faster", "slower"),
            _ => ("better", "worse"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Throughput => "throughput",
            Kind::Latency => "latency",
            Kind::Cpu => "CPU",
            Kind::Memory => "memory",
            Kind::Fairness => "fairness",
        }
    }
}

/// How far a figure of each kind moved between two runs of the same code
/// here, in % of the smaller value (a factor of 1 + floor/100 either way):
/// a change within it is "within noise" even when the ranges do not
/// overlap (as they never do for runs measured once). Measured: see the
/// table in [`super`]'s docs.
pub fn noise_floor_pct(kind: Kind) -> f64 {
    match kind {
        Kind::Throughput => 60.0,
        Kind::Latency => 100.0,
        Kind::Cpu => 40.0,
        Kind::Memory => 5.0,
        Kind::Fairness => 5.0,
    }
}

/// How a figure's value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    PerSec,
    Us,
    Ms,
    UsPerMsg,
    Bytes,
    PercentCore,
    Index,
}

impl Unit {
    pub fn fmt(self, v: f64) -> String {
        match self {
            Unit::PerSec => format!("{}/s", fmt_rate(v)),
            Unit::Us => fmt_us(v.round().max(0.0) as u64),
            Unit::Ms => format!("{v:.1} ms"),
            Unit::UsPerMsg => format!("{v:.2} µs"),
            Unit::Bytes => format!("{:.2} KiB", v / 1024.0),
            Unit::PercentCore => format!("{v:.0}%"),
            Unit::Index => format!("{v:.3}"),
        }
    }
}

/// One figure of a run: its name in the table, kind, unit, and where it is
/// in the result (None when the run does not have it).
pub struct Figure {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Unit,
    pub value: fn(&RunResult) -> Option<f64>,
}

/// A latency percentile, when the run completed a message to take it of.
fn latency(r: &RunResult, pick: fn(&crate::results::Percentiles) -> u64) -> Option<f64> {
    (r.latency_us.count > 0).then(|| pick(&r.latency_us) as f64)
}

const MSGS: Figure = Figure {
    name: "msg/s",
    kind: Kind::Throughput,
    unit: Unit::PerSec,
    value: |r| Some(r.throughput_msgs_per_s),
};
const P99: Figure = Figure {
    name: "p99",
    kind: Kind::Latency,
    unit: Unit::Us,
    value: |r| latency(r, |p| p.p99),
};

const SCALE: &[Figure] = &[
    MSGS,
    P99,
    Figure {
        name: "server CPU/msg",
        kind: Kind::Cpu,
        unit: Unit::UsPerMsg,
        value: cpu_us_per_msg,
    },
];

const IDLE: &[Figure] = &[
    Figure {
        name: "memory/conn",
        kind: Kind::Memory,
        unit: Unit::Bytes,
        value: |r| r.server.as_ref().map(|s| s.rss_per_conn_bytes),
    },
    Figure {
        name: "memory/conn with kernel's",
        kind: Kind::Memory,
        unit: Unit::Bytes,
        value: |r| cgroup(r)?.memory_per_conn_bytes,
    },
    Figure {
        name: "server CPU",
        kind: Kind::Cpu,
        unit: Unit::PercentCore,
        value: |r| r.server.as_ref().map(|s| s.cpu_percent),
    },
    Figure {
        name: "active p99",
        ..P99
    },
];

/// `open`'s probe of the maximum (when `scale` did not give one).
const OPEN_PROBE: &[Figure] = &[MSGS];

const OPEN: &[Figure] = &[
    Figure {
        name: "corrected p50",
        value: |r| latency(r, |p| p.p50),
        ..P99
    },
    Figure {
        name: "corrected p99",
        ..P99
    },
    Figure {
        name: "corrected p99.9",
        value: |r| latency(r, |p| p.p999),
        ..P99
    },
    Figure {
        name: "raw p99",
        value: |r| {
            let raw = r.latency_raw_us.as_ref()?;
            (raw.count > 0).then_some(raw.p99 as f64)
        },
        ..P99
    },
];

const CHURN: &[Figure] = &[
    Figure {
        name: "conn/s",
        kind: Kind::Throughput,
        unit: Unit::PerSec,
        value: |r| Some(r.connect.rate_per_s),
    },
    Figure {
        name: "connect p99",
        value: |r| (r.connect.established > 0).then_some(r.connect.p99_us as f64),
        ..P99
    },
    Figure {
        name: "echo p99",
        ..P99
    },
];

const FAIRNESS_LIGHT: &[Figure] = &[
    Figure {
        name: "light p99",
        ..P99
    },
    Figure {
        name: "light longest stall",
        kind: Kind::Latency,
        unit: Unit::Ms,
        value: |r| Some(r.fairness.longest_stall_ms),
    },
    Figure {
        name: "light Jain index",
        kind: Kind::Fairness,
        unit: Unit::Index,
        value: |r| (!r.fairness.per_conn.is_empty()).then_some(r.fairness.jain_index),
    },
];

const FAIRNESS_HEAVY: &[Figure] = &[Figure {
    name: "heavy msg/s",
    ..MSGS
}];

/// What every run has: for a scenario this build does not know (results
/// written by a newer loadgen).
const ANY: &[Figure] = &[MSGS, P99];

/// The figures compared at a point of a scenario: those its report
/// section shows. The one match on [`Scenario`] here: a new scenario does
/// not compile until it says which of its figures a change is read on.
pub fn of(scenario: &str, point: &str) -> &'static [Figure] {
    let Some(sc) = Scenario::from_name(scenario) else {
        return ANY;
    };
    match sc {
        Scenario::Scale => SCALE,
        Scenario::Idle => IDLE,
        Scenario::Open if point.starts_with("probe") => OPEN_PROBE,
        Scenario::Open => OPEN,
        Scenario::Churn => CHURN,
        Scenario::Fairness if point == "heavy" => FAIRNESS_HEAVY,
        Scenario::Fairness => FAIRNESS_LIGHT,
        // A search's steps are probes at rates each run chose for itself:
        // no two runs' steps are the same cell. (Its result, the capacity,
        // is not a run's figure; comparing it is left for later.)
        Scenario::Capacity => &[],
    }
}
