//! `reach`'s flag (`--reach-max`, on `compare` and `run --scenario`) and
//! `run --scenario reach`'s last line: the farthest step held and what
//! stopped it.

use crate::compare::profile::Profile;

/// The `reach` scenario's flag, shared by `compare` and `run --scenario`.
#[derive(clap::Args, Clone, Debug, PartialEq)]
pub struct ReachArgs {
    /// reach: the most idle connections a style is taken to (steps of
    /// 1k, 2k, 5k, 10k, ... up to it; default: the profile's, 20000 in
    /// quick, 2000 in smoke).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub reach_max: Option<u64>,
}

impl ReachArgs {
    /// `profile` with `--reach-max` applied.
    pub fn apply(&self, profile: &mut Profile) {
        if let Some(n) = self.reach_max {
            profile.reach_max = n as usize;
        }
    }
}

/// `run --scenario reach`'s last line: the farthest step held and what
/// stopped it, from the last step's evidence (no server log here: the
/// server is not loadgen's; its fds against its limit with --server-pid).
pub(crate) fn reach_line(
    runs: &[crate::results::RunResult],
    objective: std::time::Duration,
) -> String {
    use crate::compare::scenarios::reach::{held, idle_of};
    let farthest = runs
        .iter()
        .filter(|r| held(r, objective).is_ok())
        .filter(|r| idle_of(r).is_some())
        .map(|r| r.spec.total_conns())
        .max();
    let verdict = runs.last().map(|r| {
        crate::compare::wall::classify(&crate::compare::wall::evidence(r, None, objective))
    });
    format!(
        "reach: farthest step held: {}; stopped by: {}",
        farthest.map_or("none".into(), crate::results::thousands),
        verdict.map_or("no step ran".into(), |v| format!(
            "{} ({})",
            v.wall.words(),
            v.evidence
        ))
    )
}
