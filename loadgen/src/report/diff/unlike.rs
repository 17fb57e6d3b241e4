//! Cells two runs measured under conditions that make them no evidence of
//! a change of the code, whatever their figures say: shown with the
//! reason, not judged ([`Unlike`]). Each is a measured case of the same
//! code reading as a change between back-to-back runs
//! (`compare --styles epoll,reactor,tasks,threads`, 2026-12-07; docs/baseline.md).

use crate::results::RunResult;
use crate::results::spec::Mode;

/// Why a cell is not compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unlike {
    /// An open-loop point ("50% of max") offers a share of each run's own
    /// maximum: where the maxima differ, the rates (old, new, msg/s) do,
    /// and latency at different loads is no change of the code (threads'
    /// corrected p50 at 8,572/s and 6,649/s: 5.9 ms and 131 us).
    Load(u64, u64),
    /// The server was throttled by its CPU quota in the window on a side:
    /// a closed-loop point's latency is then the quota's stalls (up to
    /// period − quota), which land differently each run (reactor's p99 at
    /// 1 connection, 4 KiB, throttled in 88-99 of 100 periods: 0.4-0.9 ms
    /// in one run, 2.0-2.7 ms in the next).
    Throttled,
    /// Other work took more than its share of the run's CPUs on a side
    /// ([`crate::probe::foreign::DISTURBED_SHARE`]; the report's ⚠): the
    /// report leaves such cells out of its rankings, and so does the diff.
    Disturbed,
    /// A capacity searched once on a side: a p99 objective of 1 ms on
    /// this machine moved every style's capacity ×1.5-3.4 the same way
    /// between back-to-back runs (and from "no step passed" to a value).
    OneSearch,
}

impl Unlike {
    pub fn words(self) -> String {
        match self {
            Unlike::Load(a, b) => format!("not compared (offered {a}/s, then {b}/s)"),
            Unlike::Throttled => "not compared (throttled by its CPU quota)".into(),
            Unlike::Disturbed => "not compared (⚠ other work on its CPUs)".into(),
            Unlike::OneSearch => "not compared (one search a side)".into(),
        }
    }
}

/// Whether any run of either side had other work on its CPUs (⚠).
pub fn disturbed(old: Option<&Vec<&RunResult>>, new: Option<&Vec<&RunResult>>) -> bool {
    [old, new]
        .into_iter()
        .flatten()
        .flatten()
        .any(|r| r.disturbed)
}

/// Whether either side's server was throttled by its CPU quota during
/// the window of any of its runs.
pub fn throttled(old: Option<&Vec<&RunResult>>, new: Option<&Vec<&RunResult>>) -> bool {
    [old, new].into_iter().flatten().flatten().any(|r| {
        (r.server.as_ref())
            .and_then(|s| s.cgroup.as_ref())
            .and_then(|c| c.throttled_periods)
            .is_some_and(|n| n > 0)
    })
}

/// Offered rates further apart than this factor are different loads: the
/// paired throughput floor, how far a maximum moves between runs of the
/// same code (`figures::paired_floor_pct`).
const SAME_LOAD: f64 = 1.10;

/// The median offered rate of each side, where both are open-loop runs
/// whose rates differ by more than [`SAME_LOAD`].
pub fn load(old: Option<&Vec<&RunResult>>, new: Option<&Vec<&RunResult>>) -> Option<Unlike> {
    let (a, b) = (offered(old?)?, offered(new?)?);
    let factor = a.max(b) / a.min(b).max(f64::MIN_POSITIVE);
    (factor > SAME_LOAD).then_some(Unlike::Load(a.round() as u64, b.round() as u64))
}

/// The median of the runs' open-loop rates; None for other modes.
fn offered(runs: &[&RunResult]) -> Option<f64> {
    let mut rates: Vec<f64> = runs
        .iter()
        .map(|r| match r.spec.mode {
            Mode::Open { rate } => Some(rate),
            _ => None,
        })
        .collect::<Option<_>>()?;
    rates.sort_by(f64::total_cmp);
    rates.get(rates.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run of the committed smoke comparison, at `rate` (None: closed).
    fn at(rate: Option<f64>) -> RunResult {
        let results: crate::compare::model::CompareResults =
            serde_json::from_str(include_str!("../../../tests/fixtures/compare-smoke.json"))
                .expect("the fixture parses");
        let mut r = results.runs.into_iter().next().expect("a run");
        r.spec.mode = rate.map_or(Mode::Closed, |rate| Mode::Open { rate });
        r
    }

    #[test]
    fn open_loop_rates_apart_are_different_loads() {
        let (a, b, c) = (at(Some(8572.0)), at(Some(6649.0)), at(Some(8100.0)));
        assert_eq!(
            load(Some(&vec![&a]), Some(&vec![&b])),
            Some(Unlike::Load(8572, 6649))
        );
        // Within 10%: the same load.
        assert_eq!(load(Some(&vec![&a]), Some(&vec![&c])), None);
        // Closed loop offers no rate: nothing to tell apart.
        let closed = at(None);
        assert_eq!(load(Some(&vec![&closed]), Some(&vec![&closed])), None);
        assert_eq!(load(None, Some(&vec![&a])), None);
    }

    #[test]
    fn a_side_throttled_in_its_window_is_throttled() {
        fn throttled_periods(r: &mut RunResult) -> &mut Option<u64> {
            let sv = r.server.as_mut().expect("the fixture's run was sampled");
            let cg = sv.cgroup.get_or_insert_with(Default::default);
            &mut cg.throttled_periods
        }
        let mut quiet = at(None);
        *throttled_periods(&mut quiet) = Some(0);
        let mut hit = quiet.clone();
        *throttled_periods(&mut hit) = Some(96);
        assert!(!throttled(Some(&vec![&quiet]), Some(&vec![&quiet])));
        assert!(!disturbed(Some(&vec![&quiet]), Some(&vec![&quiet])));
        let mut busy = quiet.clone();
        busy.disturbed = true;
        assert!(disturbed(Some(&vec![&busy]), Some(&vec![&quiet])));
        assert!(throttled(Some(&vec![&quiet]), Some(&vec![&quiet, &hit])));
    }
}
