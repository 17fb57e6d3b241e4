//! The scenarios' code, one module each; [`run`] is the one dispatch from a
//! [`Scenario`] to its module (an exhaustive match: a new scenario does not
//! compile until it has one).

pub mod capacity;
pub mod churn;
pub mod fairness;
pub mod idle;
pub mod open;
pub mod reach;
pub mod reach_clients;
pub mod reach_gate;
pub mod scale;

use crate::compare::env::Env;
use crate::compare::model::Scenario;
use crate::compare::profile::Profile;
use crate::results::RunResult;

/// Runs `scenario` against `env`'s server; `earlier` are the style's runs
/// so far (`open` takes its rates from `scale`'s maximum, or probes;
/// `capacity` starts its searches from it).
pub fn run(scenario: Scenario, env: &mut Env, earlier: &[RunResult]) -> Vec<RunResult> {
    match scenario {
        Scenario::Idle => idle::run(env),
        Scenario::Scale => scale::run(env),
        Scenario::Open => {
            let sizes = &env.profile.scale_sizes;
            let max = open::max_throughput(earlier, 64).or_else(|| {
                sizes
                    .first()
                    .and_then(|&s| open::max_throughput(earlier, s))
            });
            open::run(env, max)
        }
        Scenario::Capacity => capacity::run(env, earlier),
        Scenario::Churn => churn::run(env),
        Scenario::Fairness => fairness::run(env),
        Scenario::Reach => reach::run(env),
    }
}

/// One server's worth of a comparison that takes the styles in turn point
/// by point (the perf profile): the styles' figures at a point are then
/// measured seconds apart, not minutes, and the machine's drift over a
/// run (measured here: a style's cost per message moving 20% between
/// rounds a minute apart) hits them alike. Each step gets a fresh server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Idle,
    Scale {
        conns: usize,
        size: usize,
    },
    /// The style's other scenarios, whole, as without points (`open` and
    /// `capacity` read the style's scale runs of the round before them).
    Rest,
}

impl Step {
    /// The server record's phase.
    pub fn name(&self) -> String {
        match self {
            Step::Idle => "idle".into(),
            Step::Scale { conns, size } => format!("scale conns={conns} size={size}"),
            Step::Rest => "main".into(),
        }
    }
}

impl Step {
    /// Runs an idle or scale step on `env`'s server; [`Step::Rest`] runs
    /// on servers of its own (`compare_rest` in [`crate::compare`]).
    pub fn run(&self, env: &mut Env) -> Vec<RunResult> {
        match *self {
            Step::Idle => idle::run(env),
            Step::Scale { conns, size } => {
                scale::scale_point(env, conns, size).into_iter().collect()
            }
            Step::Rest => Vec::new(),
        }
    }

    /// The scenario a step belongs to (None: several).
    pub fn scenario(&self) -> Option<Scenario> {
        match self {
            Step::Idle => Some(Scenario::Idle),
            Step::Scale { .. } => Some(Scenario::Scale),
            Step::Rest => None,
        }
    }
}

/// The steps of a point-by-point comparison (`by_point`), in order, or
/// None where the profile takes each style whole: idle, each scale point,
/// then the rest ([`Step::Rest`]) where the profile has other scenarios.
pub fn steps(p: &Profile) -> Option<Vec<Step>> {
    if !p.by_point {
        return None;
    }
    let mut steps = Vec::new();
    if p.runs(Scenario::Idle) {
        steps.push(Step::Idle);
    }
    if p.runs(Scenario::Scale) {
        for &size in &p.scale_sizes {
            steps.extend(
                p.scale_conns
                    .iter()
                    .map(|&conns| Step::Scale { conns, size }),
            );
        }
    }
    if p.scenarios
        .iter()
        .any(|s| !matches!(s, Scenario::Idle | Scenario::Scale))
    {
        steps.push(Step::Rest);
    }
    Some(steps)
}
