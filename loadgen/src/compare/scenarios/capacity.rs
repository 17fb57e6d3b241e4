//! `capacity`: per connection count, the highest open-loop rate at which
//! the style meets the latency objective (`--slo`, in the profile), with no
//! errors and at least 99% of the rate achieved. A bounded search
//! ([`Search`]): double from a low rate until a step fails (or halve until
//! one passes), then bisect between the highest pass and the lowest fail
//! until they are within 5%, at most the profile's step cap. Each step is a
//! run of its own, judged by `compare::capacity::judge`; what the steps
//! found is summarised from the runs afterwards (`compare::capacity`).

use crate::compare::capacity::{CapacitySearch, CapacityStep, PRECISION, Slo, judge, summarise};
use crate::compare::env::{Env, source_ips};
use crate::compare::model::Scenario;
use crate::results::RunResult;
use crate::results::spec::{Mode, RunSpec};

/// The search's next rates, from the verdicts of the steps so far; knows
/// nothing of runs, so that it is tested with a fake step function.
#[derive(Clone, Debug, PartialEq)]
pub struct Search {
    /// The highest passing and the lowest failing rate so far.
    pass: Option<f64>,
    fail: Option<f64>,
    next: Option<f64>,
    steps: usize,
    max_steps: usize,
    /// Halving from a failing start stops below this.
    floor: f64,
}

/// How far below the start halving goes when nothing passes (three
/// halvings): a style that fails at an eighth of its expected rate fails
/// for a reason the rate does not cure (a pool's queued connections).
const FLOOR: f64 = 1.0 / 8.0;

impl Search {
    pub fn new(start: f64, max_steps: usize) -> Search {
        let start = start.max(1.0).round();
        Search {
            pass: None,
            fail: None,
            next: (max_steps > 0).then_some(start),
            steps: 0,
            max_steps,
            floor: start * FLOOR,
        }
    }

    /// The rate of the next step (whole messages per second), or None once
    /// the search is over.
    pub fn next_rate(&self) -> Option<f64> {
        self.next
    }

    /// Records the verdict of the step at `rate`.
    pub fn record(&mut self, rate: f64, pass: bool) {
        self.steps += 1;
        if pass {
            self.pass = Some(self.pass.map_or(rate, |p| p.max(rate)));
        } else {
            self.fail = Some(self.fail.map_or(rate, |f| f.min(rate)));
        }
        self.next = if self.steps >= self.max_steps {
            None
        } else {
            match (self.pass, self.fail) {
                (Some(p), None) => Some(p * 2.0),
                (None, Some(f)) => Some((f / 2.0).round()).filter(|&r| r >= self.floor.max(1.0)),
                (Some(p), Some(f)) if f - p > PRECISION * p => {
                    Some(((p + f) / 2.0).round()).filter(|&r| r > p && r < f)
                }
                _ => None,
            }
        };
    }

    pub fn steps(&self) -> usize {
        self.steps
    }
}

/// `capacity` against `env`'s server; `earlier` are the style's runs so far
/// (a closed-loop maximum from `scale` sets where the search starts).
pub fn run(env: &mut Env, earlier: &[RunResult]) -> Vec<RunResult> {
    let p = env.profile.clone();
    let mut out = Vec::new();
    for &conns in &p.capacity_conns {
        let mut search = Search::new(
            start_rate(earlier, conns, p.capacity_start),
            p.capacity_max_steps,
        );
        while let Some(rate) = search.next_rate() {
            if env.interrupted() {
                return out;
            }
            let spec = RunSpec {
                conns,
                // One message in flight per connection, as a client that
                // waits for each reply: a slot that comes while one is
                // out waits, and that wait is in the corrected latency.
                pipeline: 1,
                mode: Mode::Open { rate },
                duration: p.capacity_step,
                warmup: p.capacity_warmup,
                source_ips: source_ips(env.target.addr, conns),
                ..env.base_spec()
            };
            let point = format!("conns={conns} rate={rate:.0}/s");
            // Not sampled: the sampler shares loadgen's CPU, and the search
            // wants all of it for the offered rate (a step past the
            // capacity leaves a queue behind, so the server settles first).
            env.settle();
            let Some(r) = env.run(Scenario::Capacity, point, &spec, false) else {
                // The run could not be set up: nothing to judge.
                break;
            };
            search.record(rate, judge(&r, &p.capacity_slo).pass);
            out.push(r);
        }
    }
    out
}

/// Where a search at `conns` starts: a quarter of the style's closed-loop
/// throughput at that connection count (or its best at any), so that the
/// doubling reaches the limit in a few steps and the bisection has the
/// rest; `fallback` without a `scale` run.
pub fn start_rate(earlier: &[RunResult], conns: usize, fallback: f64) -> f64 {
    let closed = |exact: bool| {
        earlier
            .iter()
            .filter(|r| {
                r.tags
                    .as_ref()
                    .is_some_and(|t| t.scenario == Scenario::Scale.name())
                    && r.messages > 0
                    && (!exact || r.spec.conns == conns)
            })
            .map(|r| r.throughput_msgs_per_s)
            .max_by(f64::total_cmp)
    };
    closed(true)
        .or_else(|| closed(false))
        .map_or(fallback, |max| max / 4.0)
}

/// The searches among `runs` (capacity runs, grouped by style, connection
/// count and round, steps in the order run), judged against `slo`.
pub fn searches(runs: &[RunResult], slo: Slo) -> Vec<CapacitySearch> {
    type Key = (String, usize, u32);
    let mut groups: Vec<(Key, Vec<CapacityStep>)> = Vec::new();
    for r in runs {
        let Some(t) = r.tags.as_ref().filter(|_| is_step(r)) else {
            continue;
        };
        let key = (t.style.clone(), r.spec.conns, t.repeat);
        let step = judge(r, &slo);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, steps)) => steps.push(step),
            None => groups.push((key, vec![step])),
        }
    }
    groups
        .into_iter()
        .map(|((style, conns, repeat), steps)| summarise(&style, conns, repeat, slo, steps))
        .collect()
}

/// Whether `r` is a step of a capacity search (past the capacity, steps
/// fail by design: the report reads them in its capacity section).
pub fn is_step(r: &RunResult) -> bool {
    r.tags
        .as_ref()
        .is_some_and(|t| t.scenario == Scenario::Capacity.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against `step` (rate to (pass, client-limited)) and
    /// returns the rates it tried.
    fn tried(start: f64, max_steps: usize, step: impl Fn(f64) -> bool) -> Vec<f64> {
        let mut s = Search::new(start, max_steps);
        let mut rates = Vec::new();
        while let Some(rate) = s.next_rate() {
            rates.push(rate);
            s.record(rate, step(rate));
            assert!(rates.len() <= max_steps, "{rates:?}");
        }
        assert_eq!(s.steps(), rates.len());
        rates
    }

    #[test]
    fn doubles_to_the_first_fail_then_bisects_to_five_percent() {
        // A server that meets the objective up to 13,000 msg/s.
        let rates = tried(1000.0, 20, |r| r <= 13_000.0);
        assert_eq!(&rates[..5], [1000.0, 2000.0, 4000.0, 8000.0, 16000.0]);
        assert_eq!(&rates[5..], [12000.0, 14000.0, 13000.0, 13500.0]);
        // Ends with the fail (13,500) within 5% of the pass (13,000).
        let best = rates
            .iter()
            .copied()
            .filter(|&r| r <= 13_000.0)
            .fold(0.0, f64::max);
        let fail = rates
            .iter()
            .copied()
            .filter(|&r| r > 13_000.0)
            .fold(f64::MAX, f64::min);
        assert_eq!((best, fail), (13_000.0, 13_500.0));
        assert!(fail - best <= PRECISION * best);
    }

    #[test]
    fn the_step_cap_ends_the_search() {
        let rates = tried(1000.0, 6, |r| r <= 13_000.0);
        assert_eq!(rates, [1000.0, 2000.0, 4000.0, 8000.0, 16000.0, 12000.0]);
        // Every step passing: doubling until the cap.
        assert_eq!(tried(10.0, 4, |_| true), [10.0, 20.0, 40.0, 80.0]);
        assert!(tried(10.0, 0, |_| true).is_empty());
    }

    #[test]
    fn a_failing_start_halves_until_a_pass_or_the_floor() {
        let rates = tried(8000.0, 10, |r| r <= 1500.0);
        assert_eq!(&rates[..4], [8000.0, 4000.0, 2000.0, 1000.0]);
        assert_eq!(&rates[4..], [1500.0, 1750.0, 1625.0, 1563.0]);
        // Nothing passes: three halvings, then it stops.
        assert_eq!(
            tried(8000.0, 10, |_| false),
            [8000.0, 4000.0, 2000.0, 1000.0]
        );
    }

    #[test]
    fn a_client_limited_step_is_a_fail_the_summary_reads_as_a_lower_bound() {
        use crate::compare::capacity::{Bound, CapacityStep, Slo, summarise};
        // loadgen cannot offer more than 5,000 msg/s; the server would
        // take 13,000.
        let client_limit = 5000.0;
        let mut s = Search::new(1000.0, 10);
        let mut steps = Vec::new();
        while let Some(rate) = s.next_rate() {
            let client_limited = rate > client_limit;
            let pass = rate <= 13_000.0 && !client_limited;
            s.record(rate, pass);
            steps.push(CapacityStep {
                rate,
                achieved: rate.min(client_limit),
                value_us: 300,
                errors: 0,
                pass,
                client_limited,
                why: Vec::new(),
                run_id: String::new(),
            });
        }
        let found = summarise("epoll", 50, 0, Slo::default(), steps);
        assert_eq!(found.bound, Bound::Client);
        let x = found.capacity_msgs_per_s.unwrap();
        assert!(
            x <= client_limit && x >= client_limit * (1.0 - PRECISION),
            "{x}"
        );
    }

    #[test]
    fn the_start_is_a_quarter_of_the_closed_loop_maximum() {
        let fixture: crate::compare::model::CompareResults =
            serde_json::from_str(include_str!("../../../tests/fixtures/compare-smoke.json"))
                .expect("fixture parses");
        let run = |conns: usize, rate: f64| {
            let mut r = fixture.runs[0].clone();
            r.tags = Some(crate::results::Tags {
                style: "epoll".into(),
                scenario: "scale".into(),
                point: String::new(),
                repeat: 0,
                partner_of: String::new(),
            });
            r.spec.conns = conns;
            r.messages = 1;
            r.throughput_msgs_per_s = rate;
            r
        };
        let earlier = [run(1, 10_000.0), run(50, 80_000.0), run(1000, 60_000.0)];
        assert_eq!(start_rate(&earlier, 1000, 500.0), 15_000.0);
        assert_eq!(start_rate(&earlier, 20, 500.0), 20_000.0);
        assert_eq!(start_rate(&[], 20, 500.0), 500.0);
    }
}
