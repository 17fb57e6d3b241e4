//! The scenarios' code, one module each; [`run`] is the one dispatch from a
//! [`Scenario`] to its module (an exhaustive match: a new scenario does not
//! compile until it has one).

pub mod churn;
pub mod fairness;
pub mod idle;
pub mod open;
pub mod scale;

use crate::compare::env::Env;
use crate::compare::model::Scenario;
use crate::compare::profile::Step;
use crate::results::RunResult;

/// Runs `scenario` against `env`'s server; `earlier` are the style's runs
/// so far (`open` takes its rates from `scale`'s maximum, or probes).
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
        Scenario::Churn => churn::run(env),
        Scenario::Fairness => fairness::run(env),
    }
}

impl Step {
    pub fn run(&self, env: &mut Env) -> Vec<RunResult> {
        match *self {
            Step::Idle => idle::run(env),
            Step::Scale { conns, size } => {
                scale::scale_point(env, conns, size).into_iter().collect()
            }
        }
    }
}
