//! `idle`: many idle connections and a few active ones: memory per
//! connection and what idle connections cost the active ones.

use crate::compare::env::{Env, source_ips};
use crate::compare::model::Scenario;
use crate::results::RunResult;
use crate::results::spec::{Mode, RunSpec};

/// `idle`: many idle connections plus a few active ones at a light rate:
/// memory per connection, the active ones' latency, and what the server
/// spends on connections that do nothing.
pub fn run(env: &mut Env) -> Vec<RunResult> {
    if env.interrupted() {
        return Vec::new();
    }
    let p = env.profile;
    let spec = RunSpec {
        conns: p.idle_active,
        idle: p.idle,
        mode: Mode::Open {
            rate: p.idle_active as f64 * p.idle_rate_per_conn,
        },
        source_ips: source_ips(env.target.addr, p.idle + p.idle_active),
        ..env.base_spec()
    };
    env.run(
        Scenario::Idle,
        format!("idle={} active={}", p.idle, p.idle_active),
        &spec,
        true,
    )
    .into_iter()
    .collect()
}
