//! Best and worst among the styles' figures, marked only as their ranges
//! allow: the one rule behind every best/worst in the trade-off tables
//! ([`super::tradeoffs`]). A figure measured in rounds is told from another
//! where their ranges do not meet; one measured once only past a stated
//! margin ([`told`]).

use crate::report::compare::rank::{Told, told};
use crate::report::view::Spread;

/// A cell's place among the styles' figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Best,
    /// Not told apart from the best (and, with it, from the rest).
    BestTied,
    Worst,
    WorstTied,
    None,
}

impl Mark {
    pub fn suffix(self) -> &'static str {
        match self {
            Mark::Best => " **best**",
            Mark::BestTied => " best (tied)",
            Mark::Worst => " **worst**",
            Mark::WorstTied => " worst (tied)",
            Mark::None => "",
        }
    }
}

/// Marks for each figure (None: not rankable): the best is marked where
/// every other is told apart from it, the group that is not told apart
/// from the best shares "tied" where it is at most half of the figures
/// (more than that is no finding), and the same for the worst. Once-measured
/// figures are told apart only past `margin` times (see [`told`]).
pub fn marks(figs: &[Option<Spread>], lower_better: bool, margin: f64) -> Vec<Mark> {
    let mut out = vec![Mark::None; figs.len()];
    let eligible: Vec<usize> = (0..figs.len()).filter(|&i| figs[i].is_some()).collect();
    if eligible.len() < 2 {
        return out;
    }
    let fig = |i: usize| figs[i].expect("eligible");
    let key = |i: usize| {
        if lower_better {
            fig(i).median
        } else {
            -fig(i).median
        }
    };
    let apart =
        |i: usize, j: usize| matches!(told(&fig(i), &fig(j), margin), Told::Separated { .. });
    let group = |end: usize| -> Vec<usize> {
        eligible
            .iter()
            .copied()
            .filter(|&i| i == end || !apart(i, end))
            .collect()
    };
    let by_key = |a: &usize, b: &usize| key(*a).total_cmp(&key(*b));
    let best = eligible
        .iter()
        .copied()
        .min_by(by_key)
        .expect("two or more");
    let worst = eligible
        .iter()
        .copied()
        .max_by(by_key)
        .expect("two or more");
    let best_group = group(best);
    let half = eligible.len() / 2;
    if best_group.len() == 1 {
        out[best] = Mark::Best;
    } else if best_group.len() <= half {
        for &i in &best_group {
            out[i] = Mark::BestTied;
        }
    }
    if best_group.contains(&worst) {
        return out;
    }
    let worst_group = group(worst);
    if worst_group.len() == 1 {
        out[worst] = Mark::Worst;
    } else if worst_group.len() <= half {
        for &i in worst_group.iter().filter(|i| !best_group.contains(i)) {
            out[i] = Mark::WorstTied;
        }
    }
    out
}

/// As [`marks`], where some figures could not rank for a reason that says
/// nothing of the style (loadgen the limit, a quota not used up): a best
/// or worst is not marked where such a figure lies beyond it, since it
/// might have been the best or worst.
pub fn marks_beside(
    figs: &[Option<Spread>],
    unknown: &[f64],
    lower_better: bool,
    margin: f64,
) -> Vec<Mark> {
    let mut out = marks(figs, lower_better, margin);
    let better = |a: f64, b: f64| if lower_better { a < b } else { a > b };
    for (i, m) in out.iter_mut().enumerate() {
        let Some(f) = figs[i] else { continue };
        let beyond = match m {
            Mark::Best | Mark::BestTied => unknown.iter().any(|&u| better(u, f.median)),
            Mark::Worst | Mark::WorstTied => unknown.iter().any(|&u| better(f.median, u)),
            Mark::None => false,
        };
        if beyond {
            *m = Mark::None;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNRANKED_ONCE: f64 = f64::INFINITY;
    const LATENCY_MARGIN: f64 = 3.0;

    fn sp(median: f64, min: f64, max: f64) -> Option<Spread> {
        Some(Spread {
            median,
            min,
            max,
            n: 2,
        })
    }

    #[test]
    fn a_best_is_marked_only_where_it_separates_from_every_other() {
        // Lower is better: 0.5 separates from all.
        let m = marks(
            &[
                sp(0.5, 0.45, 0.55),
                sp(1.0, 0.95, 1.05),
                sp(1.02, 0.98, 1.1),
                sp(3.0, 2.8, 3.2),
            ],
            true,
            UNRANKED_ONCE,
        );
        assert_eq!(m, [Mark::Best, Mark::None, Mark::None, Mark::Worst]);
        // The best overlaps the second: tied, and two of four is no more
        // than half.
        let m = marks(
            &[
                sp(0.9, 0.8, 1.0),
                sp(0.95, 0.93, 1.2),
                sp(1.5, 1.4, 1.6),
                sp(1.6, 1.55, 1.7),
            ],
            true,
            UNRANKED_ONCE,
        );
        assert_eq!(
            m,
            [
                Mark::BestTied,
                Mark::BestTied,
                Mark::WorstTied,
                Mark::WorstTied
            ]
        );
    }

    #[test]
    fn no_best_is_marked_where_a_figure_that_could_not_rank_lies_beyond_it() {
        let figs = [sp(1.0, 1.0, 1.0), sp(1.1, 1.05, 1.15), sp(2.0, 1.9, 2.1)];
        // A client-bound 0.9 might have been the best: no best; the worst
        // stands.
        assert_eq!(
            marks_beside(&figs, &[0.9], true, UNRANKED_ONCE),
            [Mark::None, Mark::None, Mark::Worst]
        );
        assert_eq!(
            marks_beside(&figs, &[1.5], true, UNRANKED_ONCE),
            [Mark::Best, Mark::None, Mark::Worst]
        );
    }

    #[test]
    fn nothing_is_marked_where_every_range_overlaps_or_only_one_ranks() {
        let all = [
            sp(1.0, 0.9, 1.1),
            sp(1.05, 0.95, 1.15),
            sp(0.98, 0.92, 1.08),
        ];
        assert_eq!(marks(&all, true, UNRANKED_ONCE), [Mark::None; 3]);
        assert_eq!(
            marks(&[sp(1.0, 0.9, 1.1), None, None], true, UNRANKED_ONCE),
            [Mark::None; 3]
        );
    }

    #[test]
    fn once_measured_figures_rank_only_past_their_margin() {
        let once = |x: f64| {
            Some(Spread {
                median: x,
                min: x,
                max: x,
                n: 1,
            })
        };
        // Higher is better: 9000 is past 3x of both others.
        let m = marks(
            &[once(9000.0), once(2000.0), once(2500.0)],
            false,
            LATENCY_MARGIN,
        );
        assert_eq!(m[0], Mark::Best);
        assert_eq!(
            marks(&[once(9000.0), once(2000.0)], false, UNRANKED_ONCE),
            [Mark::None; 2]
        );
    }
}
