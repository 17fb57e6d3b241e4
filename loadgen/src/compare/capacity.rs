//! Capacity at a latency objective, as data: the objective (`--slo`), a
//! search step judged against it ([`judge`]), and what the steps of one
//! search found ([`CapacitySearch`], kept in `results.json` and read by the
//! report). Types and pure functions only; the search that runs the steps
//! is `compare::scenarios::capacity`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::{OPEN_MIN_ACHIEVED, is_client_reason};
use crate::results::spec::Mode;
use crate::results::{Percentiles, RunResult, fmt_us};

/// A step passes only if at least this share of the offered rate was
/// achieved (stricter than the engine's own 95%: a rate the server keeps
/// only 96% of is a queue growing, not a capacity).
pub const MIN_ACHIEVED: f64 = 0.99;

/// The bisection stops once the failing rate is within this share above
/// the passing one.
pub const PRECISION: f64 = 0.05;

/// A percentile of the corrected latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Percentile {
    #[serde(rename = "p50")]
    P50,
    #[serde(rename = "p90")]
    P90,
    #[serde(rename = "p99")]
    P99,
    #[serde(rename = "p99.9")]
    P999,
    #[serde(rename = "max")]
    Max,
}

impl Percentile {
    const ALL: [Percentile; 5] = [
        Percentile::P50,
        Percentile::P90,
        Percentile::P99,
        Percentile::P999,
        Percentile::Max,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Percentile::P50 => "p50",
            Percentile::P90 => "p90",
            Percentile::P99 => "p99",
            Percentile::P999 => "p99.9",
            Percentile::Max => "max",
        }
    }

    /// This percentile of `p`, microseconds.
    pub fn of(self, p: &Percentiles) -> u64 {
        match self {
            Percentile::P50 => p.p50,
            Percentile::P90 => p.p90,
            Percentile::P99 => p.p99,
            Percentile::P999 => p.p999,
            Percentile::Max => p.max,
        }
    }
}

/// A latency objective: `percentile` of the corrected latency at most
/// `limit_us`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slo {
    pub percentile: Percentile,
    pub limit_us: u64,
}

impl Default for Slo {
    /// p99 ≤ 1 ms.
    fn default() -> Slo {
        Slo {
            percentile: Percentile::P99,
            limit_us: 1000,
        }
    }
}

impl Slo {
    /// Parses `PERCENTILE=DURATION`, e.g. `p99=1ms`, `p99.9=500us`, `max=20ms`.
    pub fn parse(s: &str) -> Result<Slo, String> {
        let want =
            "want PERCENTILE=DURATION, e.g. p99=1ms (percentiles: p50, p90, p99, p99.9, max)";
        let (p, d) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} is not a latency objective: {want}"))?;
        let percentile = Percentile::ALL
            .into_iter()
            .find(|x| x.name() == p.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("{p:?} is not a percentile: {want}"))?;
        let limit = humantime::parse_duration(d.trim())
            .map_err(|e| format!("{d:?} is not a duration ({e}): {want}"))?;
        let limit_us = u64::try_from(limit.as_micros()).unwrap_or(u64::MAX);
        if limit_us == 0 {
            return Err(format!(
                "{d:?}: the limit must be at least 1us (latency is counted in whole microseconds)"
            ));
        }
        Ok(Slo {
            percentile,
            limit_us,
        })
    }

    /// The limit, as `--slo` takes it ("1ms", "1ms 500us").
    pub fn limit(&self) -> String {
        humantime::format_duration(Duration::from_micros(self.limit_us)).to_string()
    }

    /// Its percentile of `p`, microseconds.
    pub fn value_us(&self, p: &Percentiles) -> u64 {
        self.percentile.of(p)
    }
}

impl fmt::Display for Slo {
    /// "p99 ≤ 1ms".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ≤ {}", self.percentile.name(), self.limit())
    }
}

/// One step of a search: a run at a rate, judged against the objective.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapacityStep {
    /// Offered and achieved (completed in the window) rates, msg/s.
    pub rate: f64,
    pub achieved: f64,
    /// The objective's percentile of the corrected latency, µs.
    pub value_us: u64,
    pub errors: u64,
    pub pass: bool,
    /// loadgen could not offer the rate (its busiest thread saturated, or
    /// its slots taken late): the step says nothing of the server.
    pub client_limited: bool,
    /// Why it failed, in words (empty when it passed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub why: Vec<String>,
    /// The run's id in `runs`.
    pub run_id: String,
}

/// What bounded a search's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// The server: the lowest failing rate above the capacity failed on
    /// the server's side (latency, shortfall, errors).
    Server,
    /// loadgen: that step was client-limited, so the capacity is at least
    /// the passing rate, not a figure of the server's (and unknown where
    /// no step passed).
    Client,
    /// No step failed before the step cap: at least the passing rate.
    NotReached,
    /// No step passed: below the lowest rate tried.
    NonePassed,
}

/// One search: a style at one connection count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapacitySearch {
    pub style: String,
    pub conns: usize,
    /// Which of the `--repeat` rounds (0-based).
    #[serde(default, skip_serializing_if = "crate::results::is_default")]
    pub repeat: u32,
    pub slo: Slo,
    /// The highest passing rate (None: none passed), and the objective's
    /// percentile there.
    pub capacity_msgs_per_s: Option<f64>,
    pub value_us: Option<u64>,
    /// The lowest failing rate above it (None: none failed).
    pub failed_at_msgs_per_s: Option<f64>,
    pub bound: Bound,
    /// The two are within [`PRECISION`] of each other.
    pub converged: bool,
    /// Every step, in the order run.
    pub steps: Vec<CapacityStep>,
}

/// Judges a run of the search against `slo`: the corrected percentile
/// within the limit, no errors, at least [`MIN_ACHIEVED`] of the rate, and
/// whatever else the engine failed the run for but a busy client. A
/// saturated or late client only adds delay and shortfall: a step that
/// meets the objective all the same passes, and one that does not is
/// client-limited (it says nothing of the server).
pub fn judge(r: &RunResult, slo: &Slo) -> CapacityStep {
    let rate = match r.spec.mode {
        Mode::Open { rate } => rate,
        Mode::Closed | Mode::Churn => 0.0,
    };
    let value_us = slo.value_us(&r.latency_us);
    let mut why = Vec::new();
    if r.messages > 0 && value_us > slo.limit_us {
        why.push(format!(
            "{} {} over {}",
            slo.percentile.name(),
            fmt_us(value_us),
            fmt_us(slo.limit_us)
        ));
    }
    let share = if rate > 0.0 {
        r.throughput_msgs_per_s / rate
    } else {
        0.0
    };
    // Below the engine's own threshold its reason says so.
    if (OPEN_MIN_ACHIEVED..MIN_ACHIEVED).contains(&share) {
        why.push(format!(
            "achieved {:.1}% of the offered rate (under {:.0}%)",
            share * 100.0,
            MIN_ACHIEVED * 100.0
        ));
    }
    let (client, server): (Vec<&String>, Vec<&String>) =
        r.outcome.reasons.iter().partition(|x| is_client_reason(x));
    why.extend(server.into_iter().cloned());
    let client_limited = r.client.client_bound || !client.is_empty();
    if !why.is_empty() {
        why.extend(client.into_iter().cloned());
    }
    CapacityStep {
        rate,
        achieved: r.throughput_msgs_per_s,
        value_us,
        errors: r.errors.total(),
        pass: why.is_empty(),
        client_limited,
        why,
        run_id: r.run_id.clone(),
    }
}

/// What a search's steps found (in any order: the result depends on the
/// set, which is what lets the report trust it whatever the search did).
pub fn summarise(
    style: &str,
    conns: usize,
    repeat: u32,
    slo: Slo,
    steps: Vec<CapacityStep>,
) -> CapacitySearch {
    let best = steps
        .iter()
        .filter(|s| s.pass)
        .max_by(|a, b| a.rate.total_cmp(&b.rate));
    let above = best.map_or(f64::NEG_INFINITY, |b| b.rate);
    let first_fail = steps
        .iter()
        .filter(|s| !s.pass && s.rate > above)
        .min_by(|a, b| a.rate.total_cmp(&b.rate));
    let bound = match (best, first_fail) {
        (_, Some(f)) if f.client_limited => Bound::Client,
        (None, _) => Bound::NonePassed,
        (Some(_), None) => Bound::NotReached,
        (Some(_), Some(_)) => Bound::Server,
    };
    let converged = matches!(
        (best, first_fail),
        (Some(b), Some(f)) if f.rate - b.rate <= PRECISION * b.rate
    );
    CapacitySearch {
        style: style.to_string(),
        conns,
        repeat,
        slo,
        capacity_msgs_per_s: best.map(|b| b.rate),
        value_us: best.map(|b| b.value_us),
        failed_at_msgs_per_s: first_fail.map(|f| f.rate),
        bound,
        converged,
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_parse_any_percentile_and_duration() {
        let ok = [
            ("p99=1ms", Percentile::P99, 1000),
            ("p50=250us", Percentile::P50, 250),
            ("p90=2ms", Percentile::P90, 2000),
            ("p99.9=1.5ms", Percentile::P999, 1500),
            ("max=1s", Percentile::Max, 1_000_000),
            ("P99 = 10ms", Percentile::P99, 10_000),
        ];
        for (text, percentile, limit_us) in ok {
            assert_eq!(
                Slo::parse(text),
                Ok(Slo {
                    percentile,
                    limit_us
                }),
                "{text}"
            );
        }
        assert_eq!(Slo::default(), Slo::parse("p99=1ms").unwrap());
        assert_eq!(Slo::default().to_string(), "p99 ≤ 1ms");
        assert_eq!(
            Slo::parse("p99.9=1500us").unwrap().to_string(),
            "p99.9 ≤ 1ms 500us"
        );
        for bad in [
            "", "p99", "1ms", "p98=1ms", "p99=", "p99=fast", "p99=0ms", "p99=10ns", "=1ms",
        ] {
            let e = Slo::parse(bad).expect_err(bad);
            assert!(
                e.contains("want PERCENTILE=DURATION") || e.contains("1us"),
                "{bad}: {e}"
            );
        }
    }

    /// An open-loop run at 10,000 msg/s (a fixture run made over):
    /// `achieved` msg/s, p99 `p99_us`, the client busy or not.
    fn run(achieved: f64, p99_us: u64, client_bound: bool) -> RunResult {
        let fixture: crate::compare::model::CompareResults =
            serde_json::from_str(include_str!("../../tests/fixtures/compare-smoke.json"))
                .expect("fixture parses");
        let mut r = fixture.runs[0].clone();
        r.spec.mode = Mode::Open { rate: 10_000.0 };
        r.throughput_msgs_per_s = achieved;
        r.messages = achieved as u64;
        r.latency_us.p99 = p99_us;
        r.errors = Default::default();
        r.client.client_bound = client_bound;
        r.outcome = crate::results::Outcome {
            ok: !client_bound,
            interrupted: false,
            reasons: if client_bound {
                vec!["the client could not keep the schedule (client-bound)".into()]
            } else {
                Vec::new()
            },
        };
        r
    }

    #[test]
    fn a_step_passes_on_the_objective_the_rate_and_no_errors() {
        let slo = Slo::default();
        let ok = judge(&run(10_000.0, 900, false), &slo);
        assert!(ok.pass && !ok.client_limited && ok.why.is_empty(), "{ok:?}");
        assert_eq!((ok.rate, ok.value_us), (10_000.0, 900));
        let slow = judge(&run(10_000.0, 1100, false), &slo);
        assert!(!slow.pass && !slow.client_limited, "{slow:?}");
        assert_eq!(slow.why, ["p99 1100 us over 1000 us"]);
        let short = judge(&run(9_800.0, 900, false), &slo);
        assert!(!short.pass, "{short:?}");
        assert!(short.why[0].starts_with("achieved 98.0%"), "{short:?}");
        // A busy client only adds delay: met all the same, it passes...
        let busy = judge(&run(10_000.0, 900, true), &slo);
        assert!(busy.pass && busy.client_limited, "{busy:?}");
        // ...and missed, the miss is the client's.
        let missed = judge(&run(10_000.0, 5000, true), &slo);
        assert!(!missed.pass && missed.client_limited, "{missed:?}");
        assert_eq!(missed.why.len(), 2, "{missed:?}");
        let mut broken = run(10_000.0, 900, false);
        broken.errors.reset = 3;
        broken.outcome.ok = false;
        broken.outcome.reasons = vec!["errors: reset=3".into()];
        let broken = judge(&broken, &slo);
        assert!(!broken.pass && broken.errors == 3, "{broken:?}");
    }

    fn step(rate: f64, pass: bool, client_limited: bool) -> CapacityStep {
        CapacityStep {
            rate,
            achieved: rate,
            value_us: 100,
            errors: 0,
            pass,
            client_limited,
            why: Vec::new(),
            run_id: String::new(),
        }
    }

    #[test]
    fn the_result_is_the_highest_pass_and_what_failed_above_it() {
        let s = |steps| summarise("epoll", 50, 0, Slo::default(), steps);
        let server = s(vec![
            step(1000.0, true, false),
            step(2000.0, false, false),
            step(1500.0, true, false),
            step(1750.0, false, false),
            step(1625.0, true, false),
            step(1687.0, true, false),
        ]);
        assert_eq!(server.capacity_msgs_per_s, Some(1687.0));
        assert_eq!(server.failed_at_msgs_per_s, Some(1750.0));
        assert_eq!(server.bound, Bound::Server);
        assert!(server.converged);
        // A client-limited failure above the best pass: a lower bound.
        let client = s(vec![step(1000.0, true, false), step(2000.0, false, true)]);
        assert_eq!(client.bound, Bound::Client);
        assert!(!client.converged);
        // A client-limited step below the best pass does not decide it.
        let mixed = s(vec![
            step(800.0, false, true),
            step(1000.0, true, false),
            step(2000.0, false, false),
        ]);
        assert_eq!(mixed.bound, Bound::Server);
        let none = s(vec![step(1000.0, false, false), step(500.0, false, false)]);
        assert_eq!(
            (none.bound, none.capacity_msgs_per_s),
            (Bound::NonePassed, None)
        );
        assert_eq!(none.failed_at_msgs_per_s, Some(500.0));
        // Nothing passed, and the lowest step could not be offered: unknown.
        let unknown = s(vec![step(1000.0, false, false), step(500.0, false, true)]);
        assert_eq!(
            (unknown.bound, unknown.capacity_msgs_per_s),
            (Bound::Client, None)
        );
        let all = s(vec![step(1000.0, true, false), step(2000.0, true, false)]);
        assert_eq!(all.bound, Bound::NotReached);
        assert_eq!(all.capacity_msgs_per_s, Some(2000.0));
    }
}
