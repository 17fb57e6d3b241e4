//! `open`: a constant rate at fractions of the style's measured maximum,
//! corrected and raw latency side by side.

use crate::compare::env::Env;
use crate::compare::model::Scenario;
use crate::results::RunResult;
use crate::results::spec::{Mode, RunSpec};

/// `open`: constant rate at fractions of the style's maximum (`max`:
/// msg/s and the connection count that reached it, from `scale`; probed
/// here when not given). Corrected and raw latency side by side.
pub fn run(env: &mut Env, max: Option<(f64, usize)>) -> Vec<RunResult> {
    if env.interrupted() {
        return Vec::new();
    }
    let (max_rate, conns) = match max {
        Some(m) => m,
        None => {
            let probe = RunSpec {
                conns: 50,
                ..env.base_spec()
            };
            match env.run(Scenario::Open, "probe conns=50".into(), &probe, false) {
                Some(r) if r.messages > 0 => (r.throughput_msgs_per_s, 50),
                _ => return Vec::new(),
            }
        }
    };
    let conns = conns.clamp(1, 1000);
    let mut out = Vec::new();
    for &fraction in &env.profile.open_fractions.clone() {
        if env.interrupted() {
            break;
        }
        let rate = (max_rate * fraction).max(1.0);
        let spec = RunSpec {
            conns,
            // Room for the rate even where the maximum came with more
            // connections than the open run uses.
            pipeline: 4,
            mode: Mode::Open { rate },
            ..env.base_spec()
        };
        out.extend(env.run(
            Scenario::Open,
            format!("{:.0}% of max = {rate:.0}/s", fraction * 100.0),
            &spec,
            true,
        ));
    }
    out
}

/// The best closed-loop throughput among `runs` of `scale` with `size`, and
/// the connection count that reached it.
pub fn max_throughput(runs: &[RunResult], size: usize) -> Option<(f64, usize)> {
    runs.iter()
        .filter(|r| {
            r.tags
                .as_ref()
                .is_some_and(|t| t.scenario == Scenario::Scale.name())
                && r.spec.size == size
                && r.messages > 0
        })
        .map(|r| (r.throughput_msgs_per_s, r.spec.conns))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}
