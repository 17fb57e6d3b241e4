//! The one rule by which every reading of report.md may rank two styles:
//! only where their figures, over the rounds, do not overlap. A paired
//! ratio to epoll ranks where its whole range lies above or below 1
//! ([`against_one`]); two styles' figures rank where their ranges do not
//! meet ([`between`]). Anything else is "not told apart", with how far
//! apart the two could be. A figure measured once has no range: it is never
//! ranked by these, and the few readings that still speak of a once-measured
//! figure (memory, a latency gap of several times) do so through
//! [`by_margin`], with the margin said in the text.
//!
//! Which cells may enter a ranking at all (not failed, not client-bound,
//! measured in more than one round) is decided by the readings with
//! [`Left`], whose words say why a cell was left out.

use crate::compare::model::CompareResults;
use crate::report::cost::{cgroup, server_bound};
use crate::report::view::{Spread, View};
use crate::results::RunResult;

/// What a comparison of two figures can say.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Told {
    /// Their ranges do not overlap: `first_higher` says which is above.
    Separated { first_higher: bool },
    /// Their ranges overlap: the first over the second could be anywhere
    /// from `lo` to `hi`.
    NotToldApart { lo: f64, hi: f64 },
}

/// A paired ratio (a style's figure over epoll's beside it, per round)
/// against 1: separated where every round fell on the same side.
pub fn against_one(ratio: &Spread) -> Told {
    if ratio.min > 1.0 {
        Told::Separated { first_higher: true }
    } else if ratio.max < 1.0 {
        Told::Separated {
            first_higher: false,
        }
    } else {
        Told::NotToldApart {
            lo: ratio.min,
            hi: ratio.max,
        }
    }
}

/// Two figures over the rounds: separated where one's lowest round is
/// above the other's highest.
pub fn between(a: &Spread, b: &Spread) -> Told {
    if a.min > b.max {
        Told::Separated { first_higher: true }
    } else if b.min > a.max {
        Told::Separated {
            first_higher: false,
        }
    } else {
        Told::NotToldApart {
            lo: a.min / b.max.max(f64::MIN_POSITIVE),
            hi: a.max / b.min.max(f64::MIN_POSITIVE),
        }
    }
}

/// Two figures measured once each: separated only where one is more than
/// `margin` times the other (the reading names the margin).
pub fn by_margin(a: f64, b: f64, margin: f64) -> Told {
    let r = a / b.max(f64::MIN_POSITIVE);
    if r > margin {
        Told::Separated { first_higher: true }
    } else if r * margin < 1.0 {
        Told::Separated {
            first_higher: false,
        }
    } else {
        Told::NotToldApart { lo: r, hi: r }
    }
}

/// Why a cell was left out of every ranking.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Left {
    /// Errors, or connections that never got a reply (in some round).
    Failed,
    /// loadgen was the limit in some round (its own or its epoll partner's).
    ClientBound,
    /// Not server-bound in every round, on both sides (cost per message).
    NotServerBound,
    /// One round: no range to rank by.
    Once,
    /// The server had no CPU quota: loadgen and it shared the limit.
    NoQuota,
    /// Other work ran on its CPUs during a round (`disturbed`, ⚠).
    Disturbed,
}

impl Left {
    /// Why, in words, after "left out".
    pub fn why(&self) -> &'static str {
        match self {
            Left::Failed => "failed (errors, or connections never served)",
            Left::ClientBound => "client-bound: loadgen was the limit in at least one round",
            Left::NotServerBound => {
                "not server-bound in every round on both sides: a server that is not saturated wakes up per \
                 message and pays more per message than one that batches"
            }
            Left::Once => "measured once: no range to rank by",
            Left::NoQuota => "no CPU quota: loadgen and the server shared the limit",
            Left::Disturbed => {
                "disturbed: other work ran on its CPUs in at least one round (foreign load, ⚠)"
            }
        }
    }
}

/// Whether the servers of this run had a CPU quota (their cgroups' or their
/// containers'): without one, loadgen and a lean server saturate together,
/// and throughput and cost per message rank nothing.
pub fn quota_in_force(results: &CompareResults) -> bool {
    results
        .cgroup
        .as_ref()
        .is_some_and(|c| (c.used || c.made_by == "docker") && c.cpu_quota.is_some())
}

/// Whether a run failed its connections: errors, connections that never
/// got a reply, or nothing echoed at all. (A run can also fail on the
/// client's side, falling behind an open-loop schedule, which leaves the
/// server's memory figures standing: see [`broken`].)
pub fn conns_failed(r: &RunResult) -> bool {
    r.messages == 0
        || r.errors.total() > 0
        || r.served().is_some_and(|(served, total)| served < total)
}

/// [`conns_failed`], or failed for any reason ([`crate::report::view::failed`]: ✗ in the tables): what a rate or
/// a cost must not be ranked from.
pub fn broken(r: &RunResult) -> bool {
    conns_failed(r) || crate::report::view::failed(r)
}

/// Why the scale cell of `r` may not rank, if it may not: every round of
/// it and every epoll run a round's ratio is to (the reference's own cell
/// has none), checked for failure, loadgen's limit and a quota; with
/// `cost`, both sides must also have been server-bound in every round.
pub fn scale_left(v: &View, r: &RunResult, cost: bool) -> Option<Left> {
    let reps = v.repeats(r);
    let mut runs: Vec<&RunResult> = reps.clone();
    runs.extend(reps.iter().filter_map(|rep| v.denominator(rep)));
    let docker_quota = v
        .results()
        .cgroup
        .as_ref()
        .is_some_and(|c| c.made_by == "docker" && c.cpu_quota.is_some());
    let quota = |r: &&RunResult| docker_quota || cgroup(r).is_some_and(|c| c.cpu_quota.is_some());
    if runs.iter().any(|r| broken(r)) {
        Some(Left::Failed)
    } else if runs.iter().any(|r| r.disturbed) {
        Some(Left::Disturbed)
    } else if runs.iter().any(|r| r.client.client_bound) {
        Some(Left::ClientBound)
    } else if !runs.iter().all(quota) {
        Some(Left::NoQuota)
    } else if cost && !runs.iter().all(|r| server_bound(r)) {
        Some(Left::NotServerBound)
    } else if reps.len() < 2 {
        Some(Left::Once)
    } else {
        None
    }
}

/// Figures ranked against their neighbours: the names sorted by median,
/// highest first, and between each and the next whether they separate.
/// One sentence ("a above b; b and c were not told apart (0.95–1.08)",
/// `above` the word between), None for fewer than two.
pub fn chain(named: Vec<(String, Spread)>, digits: usize, above: &str) -> Option<String> {
    chain_by(named, digits, above, between)
}

/// As [`chain`], each neighbour told from the next by `tell`.
pub fn chain_by(
    mut named: Vec<(String, Spread)>,
    digits: usize,
    above: &str,
    tell: impl Fn(&Spread, &Spread) -> Told,
) -> Option<String> {
    if named.len() < 2 {
        return None;
    }
    named.sort_by(|a, b| b.1.median.total_cmp(&a.1.median));
    let parts: Vec<String> = named
        .windows(2)
        .map(|w| {
            let (a, b) = (&w[0], &w[1]);
            match tell(&a.1, &b.1) {
                Told::Separated { .. } => format!("{} {above} {}", a.0, b.0),
                Told::NotToldApart { lo, hi } => {
                    format!(
                        "{} and {} were not told apart ({})",
                        a.0,
                        b.0,
                        range(lo, hi, digits)
                    )
                }
            }
        })
        .collect();
    Some(parts.join("; "))
}

/// Two figures by [`between`] where both were measured in more than one
/// round, else by [`by_margin`] at `margin`.
pub fn told(a: &Spread, b: &Spread, margin: f64) -> Told {
    if a.n > 1 && b.n > 1 {
        between(a, b)
    } else {
        by_margin(a.median, b.median, margin)
    }
}

/// "0.97–1.03" (one figure where both ends print the same).
pub fn range(lo: f64, hi: f64, digits: usize) -> String {
    let (lo, hi) = (format!("{lo:.digits$}"), format!("{hi:.digits$}"));
    if lo == hi { lo } else { format!("{lo}–{hi}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(median: f64, min: f64, max: f64) -> Spread {
        Spread {
            median,
            min,
            max,
            n: 2,
        }
    }

    #[test]
    fn a_ratio_ranks_only_when_its_range_leaves_one() {
        assert_eq!(
            against_one(&sp(0.41, 0.39, 0.43)),
            Told::Separated {
                first_higher: false
            }
        );
        assert_eq!(
            against_one(&sp(1.1, 1.01, 1.2)),
            Told::Separated { first_higher: true }
        );
        assert_eq!(
            against_one(&sp(1.0, 0.97, 1.03)),
            Told::NotToldApart { lo: 0.97, hi: 1.03 }
        );
    }

    #[test]
    fn two_figures_rank_only_when_their_ranges_do_not_meet() {
        assert_eq!(
            between(&sp(1.0, 0.9, 1.1), &sp(0.5, 0.4, 0.6)),
            Told::Separated { first_higher: true }
        );
        assert_eq!(
            between(&sp(0.5, 0.4, 0.6), &sp(1.0, 0.9, 1.1)),
            Told::Separated {
                first_higher: false
            }
        );
        // Touching ranges overlap.
        let Told::NotToldApart { lo, hi } = between(&sp(1.0, 0.9, 1.1), &sp(0.8, 0.5, 0.9)) else {
            panic!("overlapping ranges ranked");
        };
        assert!((lo - 1.0).abs() < 1e-9 && (hi - 2.2).abs() < 1e-9);
    }

    #[test]
    fn a_single_measurement_ranks_only_past_its_margin() {
        assert_eq!(
            by_margin(10.0, 2.0, 3.0),
            Told::Separated { first_higher: true }
        );
        assert_eq!(
            by_margin(2.0, 10.0, 3.0),
            Told::Separated {
                first_higher: false
            }
        );
        assert_eq!(
            by_margin(2.0, 1.0, 3.0),
            Told::NotToldApart { lo: 2.0, hi: 2.0 }
        );
    }

    #[test]
    fn a_chain_ranks_neighbours_only_where_they_separate() {
        let text = chain(
            vec![
                ("threads".into(), sp(0.4, 0.39, 0.43)),
                ("reactor".into(), sp(1.0, 0.97, 1.03)),
                ("tasks".into(), sp(1.02, 0.99, 1.06)),
            ],
            2,
            "above",
        )
        .unwrap();
        assert_eq!(
            text,
            "tasks and reactor were not told apart (0.96–1.09); reactor above threads"
        );
        assert_eq!(
            chain(vec![("a".into(), sp(1.0, 1.0, 1.0))], 2, "above"),
            None
        );
    }
}
