//! `churn`: connect, echo one message, close: the connection-setup rate.

use crate::compare::env::{Env, source_ips};
use crate::compare::model::Scenario;
use crate::results::RunResult;
use crate::results::spec::{Mode, RunSpec};

/// `churn`: connect, echo one message, close, as fast as possible.
pub fn run(env: &mut Env) -> Vec<RunResult> {
    if env.interrupted() {
        return Vec::new();
    }
    let slots = env.profile.churn_slots;
    let spec = RunSpec {
        conns: slots,
        mode: Mode::Churn,
        // Closed connections sit in TIME_WAIT on our side: spread them over
        // source addresses so a long run does not run out of ports.
        source_ips: source_ips(env.target.addr, usize::MAX),
        ..env.base_spec()
    };
    env.run(Scenario::Churn, format!("slots={slots}"), &spec, true)
        .into_iter()
        .collect()
}
