//! Which figures of a run a change against a baseline compares, per
//! scenario: the ones its section of report.md shows, and the capacity a
//! search found ([`CAPACITY`], read by [`super::capacity`]). Each has a
//! kind, which says which way is better and how much it moves between two
//! runs of the same code on this machine (the relative noise floor, in
//! [`super`]), and a unit, in which its absolute floor is
//! ([`noise_floor_abs`]): how little a figure near zero has to move.

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

    /// The units a kind's absolute floor is stated in ([`floor_text`]):
    /// CPU is two quantities, per message and in % of a core; latency's
    /// floor in ms (stalls) is the one in µs.
    pub fn floor_units(self) -> &'static [Unit] {
        match self {
            Kind::Throughput => &[Unit::PerSec],
            Kind::Latency => &[Unit::Us],
            Kind::Cpu => &[Unit::UsPerMsg, Unit::PercentCore],
            Kind::Memory => &[Unit::Bytes],
            Kind::Fairness => &[Unit::Index],
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

/// The relative floor of a cell read as a paired ratio (a style's figure
/// over the epoll run measured beside it, round by round: [`Basis::Paired`]),
/// in % as [`noise_floor_pct`]: how far those ratios' medians moved
/// between back-to-back runs of the same code, the machine's drift
/// cancelled in each pair. Measured: see [`super`]'s docs (p90 of the
/// factor over every cell of three back-to-back perf-profile runs, all
/// three pairs). Only throughput (msg/s) and CPU per message are paired;
/// the other kinds have no paired figure and keep their own floor.
pub fn paired_floor_pct(kind: Kind) -> f64 {
    match kind {
        Kind::Throughput => PAIRED_THROUGHPUT_FLOOR_PCT,
        Kind::Cpu => PAIRED_CPU_FLOOR_PCT,
        Kind::Latency | Kind::Memory | Kind::Fairness => noise_floor_pct(kind),
    }
}

/// The paired floor of a row whose style's ratios move between
/// back-to-back runs of the same code by more than [`paired_floor_pct`],
/// in %: a thread per connection, 50 to 1,000 runnable threads under a
/// quota, is placed differently by the scheduler from one run to the next.
/// Measured (docs/baseline.md): threads' msg/s ÷ epoll's at 50
/// connections and 4 KiB moved ×1.32 (its CPU per message ×1.35) between
/// two back-to-back runs of the same code, rounds tight on each side, and
/// ×1.23 was the p90 over six runs; [`PAIRED_THREADS_FLOOR_PCT`] is above
/// both. A threads regression smaller than that is not told from its
/// noise: run both sides with more `--repeat`. Every other style: None
/// (the kind's paired floor). A variant ("tasks:multi_thread") is its
/// style's.
pub fn style_paired_floor_pct(row: &str, kind: Kind) -> Option<f64> {
    use servers::Style;
    let style = Style::from_name(row.split(':').next()?)?;
    let floor = match style {
        Style::Threads => PAIRED_THREADS_FLOOR_PCT,
        Style::Polling
        | Style::Poll
        | Style::Reactor
        | Style::Epoll
        | Style::Tasks
        | Style::Coroutines
        | Style::Uring
        | Style::Prefork
        | Style::Process
        | Style::Pool => return None,
    };
    match kind {
        Kind::Throughput | Kind::Cpu => Some(floor),
        Kind::Latency | Kind::Memory | Kind::Fairness => None,
    }
}

/// See [`style_paired_floor_pct`].
const PAIRED_THREADS_FLOOR_PCT: f64 = 40.0;

/// See [`paired_floor_pct`] and the table in [`super`]: the p90 of msg/s
/// ÷ epoll's was ×1.092 over 18 cells of three back-to-back runs (×1.23
/// over six runs, all from threads at 1,000 connections; ×1.03 without).
const PAIRED_THROUGHPUT_FLOOR_PCT: f64 = 10.0;
/// See [`paired_floor_pct`] and the table in [`super`]: the p90 of CPU/msg
/// ÷ epoll's was ×1.067 over 18 cells of three back-to-back runs (×1.21
/// over six runs, threads at 1,000 connections again; ×1.03 without).
const PAIRED_CPU_FLOOR_PCT: f64 = 7.0;

/// The relative floor of epoll's own figures at a point both runs paired
/// (`ReadOn::Reference`), in %: there both runs ran every server under a
/// CPU quota (pairs need one), where epoll's own msg/s and CPU per message
/// moved less between runs than the unquota'd figures [`noise_floor_pct`]
/// was measured on: p90 ×1.26 and ×1.10 over 30 cells, six runs of the
/// perf profile whose epoll was the same code (15 pairs; see [`super`]).
/// Tighter than the own floors so that a change of the reference, which
/// moves every other row's ratio the other way, shows on epoll's own row
/// nearer the size where it shows in theirs. The other kinds keep their
/// own floors.
pub fn reference_floor_pct(kind: Kind) -> f64 {
    match kind {
        Kind::Throughput => 30.0,
        Kind::Cpu => 10.0,
        Kind::Latency | Kind::Memory | Kind::Fairness => noise_floor_pct(kind),
    }
}

/// A figure's relative floor, by what it is read on: its kind's own floor,
/// or the paired one.
pub fn floor_pct(figure: &Figure) -> f64 {
    match figure.basis {
        Basis::Own => noise_floor_pct(figure.kind),
        Basis::Paired => paired_floor_pct(figure.kind),
    }
}

/// The least a figure in `unit` must move, as well as its kind's relative
/// floor, for a verdict: in the unit itself. A factor says nothing near
/// zero, where a clock tick, a page or a wake-up is a factor of 3 (CPU
/// 3% → 0%, memory 0.06 → 0.02 KiB a connection, latency 20 → 45 µs). Each
/// is chosen from the figures in real results (the diff fixture, a smoke
/// run with two rounds, tests/fixtures/diff-smoke.json, and the quick run
/// in docs/sample-report) to be above what a figure moves between rounds
/// of the same code and below any change between styles worth reading. An
/// exhaustive match on the unit, since the unit is the quantity: a new unit
/// does not compile until it has a floor.
pub fn noise_floor_abs(unit: Unit) -> f64 {
    match unit {
        // Rates are whole messages (or connections) over the window:
        // 10/s is 3 of them in smoke's 0.3 s, 15 in quick's 1.5 s. The
        // least rate compared in the fixture is churn's 480 conn/s (60% of
        // it is 288/s), so this only binds on a server that answered next
        // to nothing either way (the sample's pool: 0/s for fairness's
        // heavy connection).
        Unit::PerSec => 10.0,
        // A round trip on loopback between the two CPUs, two wake-ups, is
        // about 50 µs here (the fixture's p50 at one connection: 49-52 µs
        // over both styles and rounds; the sample's p99 there 77-169 µs):
        // a change under that is the scheduler's, not the code's.
        Unit::Us => LATENCY_FLOOR_US,
        // The longest stall is a latency in ms: the same floor.
        Unit::Ms => LATENCY_FLOOR_US / 1000.0,
        // The kernel counts the cgroup's CPU in ns, so what moves is the
        // work: the fixture's two rounds of each style moved by 0.2-0.6 µs
        // a message at scale's points (epoll 36.87 and 36.25 at 1
        // connection, 4.82 and 5.17 at 20). The leanest figure here is
        // 4.8 µs (fixture) to 6.5 µs (sample), where 40% is 2 µs already.
        Unit::UsPerMsg => 1.0,
        // procfs counts CPU in 10 ms clock ticks: one tick is 3.3 points of
        // a core over smoke's 0.3 s window (the fixture's idle reactor read
        // 0% in one round and 3.3% in the other) and 0.7 over quick's 1.5 s.
        // The event loops' idle CPU in the sample is 4-8%; a style that
        // polls idle sockets burns 100%.
        Unit::PercentCore => 5.0,
        // Memory is counted in 4 KiB pages over the idle connections (200
        // in smoke): the fixture's idle reactor read 98 and 410 B a
        // connection in its two rounds (a heap grown by some 60 KiB). What
        // a connection costs is KiBs (sample: threads 9.7 KiB, coroutines
        // 7.7, tasks 1.6; with the kernel's 0.6-1.5 KiB for event loops).
        // The noise is a total over the connections, the floor per
        // connection: over quick's 10,000 a page is 0.4 B, so there it
        // hides changes of a few hundred bytes a connection that are real.
        Unit::Bytes => 512.0,
        // The fixture's light connections' index read 0.980 and 1.000 for
        // epoll's two rounds (0.989 and 1.000 reactor's); the relative 5%
        // is larger anywhere above 0.4.
        Unit::Index => 0.02,
        // A paired ratio (a style's figure over epoll's beside it) of 0.01
        // is a server that served a hundredth of what epoll did: near
        // there, a factor is a few messages. Paired ratios of the styles
        // that work are 0.3-1.5 (docs/sample-perf), where 10% is 0.03 or
        // more.
        Unit::Ratio => 0.01,
    }
}

/// The latency floor, µs (see [`noise_floor_abs`]).
const LATENCY_FLOOR_US: f64 = 50.0;

/// A unit's absolute floor in words, for the text: "50 µs", "5 points of
/// a core".
pub fn floor_text(unit: Unit) -> String {
    let v = noise_floor_abs(unit);
    match unit {
        Unit::PerSec => format!("{v:.0}/s"),
        Unit::Us => format!("{v:.0} µs"),
        Unit::Ms => format!("{v} ms"),
        Unit::UsPerMsg => format!("{v:.1} µs a message"),
        Unit::Bytes => format!("{:.1} KiB a connection", v / 1024.0),
        Unit::PercentCore => format!("{v:.0} points of a core"),
        Unit::Index => format!("{v} of Jain's index"),
        Unit::Ratio => format!("{v} of a paired ratio"),
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
    /// A style's figure over the reference's measured beside it.
    Ratio,
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
            Unit::Index | Unit::Ratio => format!("{v:.3}"),
        }
    }
}

/// What a cell's figure is read on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    /// The row's own runs: the figure itself.
    Own,
    /// The row's figure divided by that of the reference (epoll) run
    /// measured beside it, the same point and round ([`super::paired`]):
    /// the machine's speed over those seconds cancels.
    Paired,
}

/// One figure of a run: its name in the table, kind, unit, and where it is
/// in the result (None when the run does not have it). A paired figure's
/// `value` is read on both runs of a pair and divided.
pub struct Figure {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Unit,
    pub value: fn(&RunResult) -> Option<f64>,
    pub basis: Basis,
}

/// The capacity a search found for a style at a connection count and an
/// objective: not a run's figure (its `value` reads none) but the
/// searches' result, kept in `results.capacity` and read there by
/// [`super::capacity`].
pub static CAPACITY: Figure = Figure {
    name: "capacity",
    kind: Kind::Throughput,
    unit: Unit::PerSec,
    value: |_| None,
    basis: Basis::Own,
};

/// A latency percentile, when the run completed a message to take it of.
fn latency(r: &RunResult, pick: fn(&crate::results::Percentiles) -> u64) -> Option<f64> {
    (r.latency_us.count > 0).then(|| pick(&r.latency_us) as f64)
}

const MSGS: Figure = Figure {
    name: "msg/s",
    kind: Kind::Throughput,
    unit: Unit::PerSec,
    value: |r| Some(r.throughput_msgs_per_s),
    basis: Basis::Own,
};
const P99: Figure = Figure {
    name: "p99",
    kind: Kind::Latency,
    unit: Unit::Us,
    value: |r| latency(r, |p| p.p99),
    basis: Basis::Own,
};

const CPU_PER_MSG: Figure = Figure {
    name: "server CPU/msg",
    kind: Kind::Cpu,
    unit: Unit::UsPerMsg,
    value: cpu_us_per_msg,
    basis: Basis::Own,
};

const SCALE: &[Figure] = &[MSGS, P99, CPU_PER_MSG];

/// A scale point's figures where both runs measured the row side by side
/// with an epoll server ([`super::paired`]): throughput and CPU per message
/// as ratios to that epoll run, the two the pairs hold steady; p99 as its
/// own figure (under a CPU quota it is the throttling's as much as the
/// style's, and a ratio of two throttled tails cancels nothing).
pub const SCALE_PAIRED: &[Figure] = &[
    Figure {
        name: "msg/s ÷ epoll's beside it",
        unit: Unit::Ratio,
        basis: Basis::Paired,
        ..MSGS
    },
    P99,
    Figure {
        name: "server CPU/msg ÷ epoll's beside it",
        unit: Unit::Ratio,
        basis: Basis::Paired,
        ..CPU_PER_MSG
    },
];

const IDLE: &[Figure] = &[
    Figure {
        name: "memory/conn",
        kind: Kind::Memory,
        unit: Unit::Bytes,
        value: |r| r.server.as_ref().map(|s| s.rss_per_conn_bytes),
        basis: Basis::Own,
    },
    Figure {
        name: "memory/conn with kernel's",
        kind: Kind::Memory,
        unit: Unit::Bytes,
        value: |r| cgroup(r)?.memory_per_conn_bytes,
        basis: Basis::Own,
    },
    Figure {
        name: "server CPU",
        kind: Kind::Cpu,
        unit: Unit::PercentCore,
        value: |r| r.server.as_ref().map(|s| s.cpu_percent),
        basis: Basis::Own,
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
        basis: Basis::Own,
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
        basis: Basis::Own,
    },
    Figure {
        name: "light Jain index",
        kind: Kind::Fairness,
        unit: Unit::Index,
        value: |r| (!r.fairness.per_conn.is_empty()).then_some(r.fairness.jain_index),
        basis: Basis::Own,
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
        // A step's memory and its active connections' latency, as idle's.
        Scenario::Idle | Scenario::Reach => IDLE,
        Scenario::Open if point.starts_with("probe") => OPEN_PROBE,
        Scenario::Open => OPEN,
        Scenario::Churn => CHURN,
        Scenario::Fairness if point == "heavy" => FAIRNESS_HEAVY,
        Scenario::Fairness => FAIRNESS_LIGHT,
        // A search's steps are probes at rates each run chose for itself:
        // no two runs' steps are the same cell. Its result, the capacity,
        // is compared instead ([`CAPACITY`]).
        Scenario::Capacity => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every figure's absolute floor is stated: its unit is one its kind's
    /// floor is written in, or the stall's ms, the same floor as µs.
    #[test]
    fn every_figure_has_an_absolute_floor_its_kind_states() {
        let lists = [
            SCALE,
            SCALE_PAIRED,
            IDLE,
            OPEN_PROBE,
            OPEN,
            CHURN,
            FAIRNESS_LIGHT,
            FAIRNESS_HEAVY,
            ANY,
            std::slice::from_ref(&CAPACITY),
        ];
        for f in lists.iter().flat_map(|l| l.iter()) {
            assert!(
                f.kind.floor_units().contains(&f.unit)
                    || (f.kind, f.unit) == (Kind::Latency, Unit::Ms)
                    || (f.basis, f.unit) == (Basis::Paired, Unit::Ratio),
                "{}: {:?} in {:?}",
                f.name,
                f.unit,
                f.kind
            );
            assert!(noise_floor_abs(f.unit) > 0.0, "{}", f.name);
        }
        assert_eq!(
            noise_floor_abs(Unit::Ms) * 1000.0,
            noise_floor_abs(Unit::Us)
        );
        assert_eq!(floor_text(Unit::Us), "50 µs");
        assert_eq!(floor_text(Unit::Ms), "0.05 ms");
    }
}
