//! Whether two runs' cells were measured under the same offered load. An
//! open-loop point ("50% of max") offers a share of each run's own
//! maximum, so two runs whose maxima differ offer different rates there,
//! and latency at different loads is no change of the code: near
//! saturation it moves by multiples (threads' corrected p50 at "50% of
//! max", 8,572/s offered against 6,649/s in back-to-back runs of the same
//! code: 5.9 ms and 131 us). Such cells are shown, not judged.

use crate::results::RunResult;
use crate::results::spec::Mode;

/// Offered rates further apart than this factor are different loads: the
/// paired throughput floor, how far a maximum moves between runs of the
/// same code (`figures::paired_floor_pct`).
const SAME_LOAD: f64 = 1.10;

/// The median offered rate of each side, where both are open-loop runs
/// whose rates differ by more than [`SAME_LOAD`].
pub fn unlike(old: Option<&Vec<&RunResult>>, new: Option<&Vec<&RunResult>>) -> Option<(u64, u64)> {
    let (a, b) = (offered(old?)?, offered(new?)?);
    let factor = a.max(b) / a.min(b).max(f64::MIN_POSITIVE);
    (factor > SAME_LOAD).then_some((a.round() as u64, b.round() as u64))
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
        assert_eq!(unlike(Some(&vec![&a]), Some(&vec![&b])), Some((8572, 6649)));
        // Within 10%: the same load.
        assert_eq!(unlike(Some(&vec![&a]), Some(&vec![&c])), None);
        // Closed loop offers no rate: nothing to tell apart.
        let closed = at(None);
        assert_eq!(unlike(Some(&vec![&closed]), Some(&vec![&closed])), None);
        assert_eq!(unlike(None, Some(&vec![&a])), None);
    }
}
