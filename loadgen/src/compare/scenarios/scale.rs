//! `scale`: closed-loop throughput and latency against connection counts
//! and payload sizes.

use crate::compare::env::{Env, source_ips};
use crate::compare::model::Scenario;
use crate::results::RunResult;
use crate::results::spec::RunSpec;

/// `scale`: closed-loop throughput and latency against connection counts
/// and payload sizes.
pub fn run(env: &mut Env) -> Vec<RunResult> {
    let mut out = Vec::new();
    for &size in &env.profile.scale_sizes.clone() {
        for &conns in &env.profile.scale_conns.clone() {
            if env.interrupted() {
                return out;
            }
            out.extend(scale_point(env, conns, size));
        }
    }
    out
}

/// One point of `scale`.
pub fn scale_point(env: &mut Env, conns: usize, size: usize) -> Option<RunResult> {
    let spec = RunSpec {
        conns,
        size,
        source_ips: source_ips(env.target.addr, conns),
        ..env.base_spec()
    };
    env.run(
        Scenario::Scale,
        format!("conns={conns} size={size}"),
        &spec,
        true,
    )
}
