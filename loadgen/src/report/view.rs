//! The selection of runs a report reads: [`View`] looks runs up by style,
//! scenario and point (the median of a point's repeats, and its [`Spread`]),
//! ratios to the [`reference()`] style, and where a style stops scaling
//! ([`Knee`]). Every table of report.md, perf.md and the charts read the
//! results through it; it writes nothing.

use std::collections::BTreeSet;

use crate::compare::model::{CompareResults, Scenario};
use crate::results::RunResult;

/// p99 above which a style is taken to have stopped serving well.
pub const KNEE_P99_US: u64 = 10_000;

pub use crate::compare::model::reference;

/// Looks runs up by style, scenario and point. With `--repeat N` each
/// point was measured N times: lookups give the median run (by
/// throughput), and [`View::repeats`] all of them.
pub struct View<'a> {
    results: &'a CompareResults,
    /// One run per (style, scenario, point): the median of its repeats.
    medians: Vec<&'a RunResult>,
}

/// A figure's median over the repeats, with its range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Repeats it was measured in.
    pub n: usize,
}

impl Spread {
    /// Of the values given (None when there are none).
    pub fn of(mut values: Vec<f64>) -> Option<Spread> {
        values.retain(|v| v.is_finite());
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: values[0],
            max: values[n - 1],
            n,
        })
    }

    /// "24.9k (24.1k–25.3k)" with each figure written by `f`; the median
    /// alone when measured once (or where both ends write the same).
    pub fn show(&self, f: impl Fn(f64) -> String) -> String {
        let (lo, hi) = (f(self.min), f(self.max));
        if self.n > 1 && lo != hi {
            format!("{} ({lo}–{hi})", f(self.median))
        } else {
            f(self.median)
        }
    }

    /// "0.97 (0.93–1.02)" with `digits` decimals; the median alone when
    /// measured once.
    pub fn text(&self, digits: usize) -> String {
        let same =
            format!("{:.d$}", self.min, d = digits) == format!("{:.d$}", self.max, d = digits);
        if self.n > 1 && !same {
            format!(
                "{:.d$} ({:.d$}–{:.d$})",
                self.median,
                self.min,
                self.max,
                d = digits
            )
        } else {
            format!("{:.d$}", self.median, d = digits)
        }
    }
}

/// Whether a run failed: the engine's verdict (`outcome.ok`), which is
/// false where it had errors, where not every connection that sent got a
/// reply ([`RunResult::served`]), where no message completed, or where it
/// was cut short. Such a cell is marked ✗ in every table and drawn as no
/// value in any chart: one decision for both.
pub fn failed(r: &RunResult) -> bool {
    !r.outcome.ok
}

/// The run of `runs` from `r`'s round that echoed something.
fn same_round<'a>(runs: &[&'a RunResult], r: &RunResult) -> Option<&'a RunResult> {
    let round = r.tags.as_ref().map(|t| t.repeat);
    runs.iter()
        .copied()
        .find(|e| e.tags.as_ref().map(|t| t.repeat) == round && e.messages > 0)
}

fn is_partner(r: &RunResult) -> bool {
    r.tags.as_ref().is_some_and(|t| t.is_partner())
}

fn key(r: &RunResult) -> Option<(&str, &str, &str)> {
    r.tags
        .as_ref()
        .map(|t| (t.style.as_str(), t.scenario.as_str(), t.point.as_str()))
}

/// Where a style stops scaling.
#[derive(Clone, Debug, PartialEq)]
pub struct Knee {
    /// The connection count with the highest throughput.
    pub peak_conns: usize,
    pub peak_rate: f64,
    /// The first connection count whose p99 passed 10 ms, if any.
    pub p99_over_10ms_at: Option<usize>,
}

impl<'a> View<'a> {
    pub fn new(results: &'a CompareResults) -> Self {
        let mut medians = Vec::new();
        let mut seen = std::collections::HashSet::new();
        // A partner run is another style's denominator, never a cell.
        for r in results.runs.iter().filter(|r| !is_partner(r)) {
            let Some(k) = key(r) else { continue };
            if !seen.insert(k) {
                continue;
            }
            let mut reps: Vec<&RunResult> = results
                .runs
                .iter()
                .filter(|o| key(o) == Some(k) && !is_partner(o))
                .collect();
            // The lower median: with an even count, the slower of the two.
            reps.sort_by(|a, b| a.throughput_msgs_per_s.total_cmp(&b.throughput_msgs_per_s));
            medians.push(reps[(reps.len() - 1) / 2]);
        }
        View { results, medians }
    }

    /// Every repeat of `r`'s point (r included), in round order.
    pub fn repeats(&self, r: &RunResult) -> Vec<&'a RunResult> {
        let mut v: Vec<&RunResult> = self
            .results
            .runs
            .iter()
            .filter(|o| key(o) == key(r) && !is_partner(o))
            .collect();
        v.sort_by_key(|o| o.tags.as_ref().map(|t| t.repeat));
        v
    }

    /// A figure over every repeat of `r`'s point (None where no repeat
    /// has it).
    pub fn spread(
        &self,
        r: &RunResult,
        figure: impl Fn(&RunResult) -> Option<f64>,
    ) -> Option<Spread> {
        Spread::of(self.repeats(r).into_iter().filter_map(figure).collect())
    }

    /// Rounds in this comparison.
    pub fn rounds(&self) -> u32 {
        self.results.repeat.max(1)
    }

    /// A figure of `style` at a scale point, over the repeats; with
    /// `per_reference`, each repeat's figure divided by epoll's in the same
    /// round (a paired ratio: drift between rounds cancels), the epoll run
    /// measured beside it where there is one (side by side, the machine's
    /// speed from second to second cancels too: [`crate::compare::pair`]).
    pub fn scale_spread(
        &self,
        style: &str,
        conns: usize,
        size: usize,
        per_reference: bool,
        figure: impl Fn(&RunResult) -> Option<f64>,
    ) -> Option<Spread> {
        let r = self.scale_point(style, conns, size)?;
        let reps = self.repeats(r);
        let reference = if per_reference {
            self.scale_point(reference(), conns, size)
                .map(|e| self.repeats(e))
        } else {
            None
        };
        let values = reps
            .iter()
            .filter(|r| r.messages > 0)
            .filter_map(|r| {
                let x = figure(r)?;
                if !per_reference {
                    return Some(x);
                }
                let e = self
                    .partner(r)
                    .or_else(|| same_round(reference.as_ref()?, r))?;
                let y = figure(e)?;
                (y > 0.0).then(|| x / y)
            })
            .collect();
        Spread::of(values)
    }

    /// The epoll run `r`'s ratios are to: the one beside it where they ran
    /// side by side, else epoll's at the same scale point and round.
    pub fn denominator(&self, r: &RunResult) -> Option<&'a RunResult> {
        self.partner(r).or_else(|| {
            let e = self.scale_point(reference(), r.spec.conns, r.spec.size)?;
            same_round(&self.repeats(e), r)
        })
    }

    /// The reference's run measured side by side with `r` (same point,
    /// same round), if it had one and it carried messages.
    pub fn partner(&self, r: &RunResult) -> Option<&'a RunResult> {
        let t = r.tags.as_ref()?;
        self.results.runs.iter().find(|e| {
            e.messages > 0
                && e.tags.as_ref().is_some_and(|p| {
                    p.partner_of == t.style
                        && p.scenario == t.scenario
                        && p.point == t.point
                        && p.repeat == t.repeat
                })
        })
    }

    /// Whether any run here was measured side by side with a partner.
    pub fn has_partners(&self) -> bool {
        self.results.runs.iter().any(is_partner)
    }

    /// How the side-by-side pairs were measured, where the run had them (a
    /// sentence starting with a space; empty where none ran).
    pub fn side_by_side_words(&self) -> String {
        let results = self.results;
        let mut paired: Vec<usize> = results
            .runs
            .iter()
            .filter(|r| is_partner(r))
            .map(|r| r.spec.conns)
            .collect();
        paired.sort_unstable();
        paired.dedup();
        if paired.is_empty() {
            return String::new();
        }
        let at: Vec<String> = paired
            .iter()
            .map(|c| crate::report::md::thousands(*c))
            .collect();
        let alone: Vec<String> = self
            .scale_conns()
            .into_iter()
            .filter(|c| !paired.contains(c))
            .map(crate::report::md::thousands)
            .collect();
        let rest = if alone.is_empty() {
            String::new()
        } else {
            format!(
                " At {} connections (two runs' sockets would not fit in one loadgen's open-files limit) the styles \
                 ran one after the other.",
                alone.join(" and ")
            )
        };
        format!(
            " **Side by side:** at {} connections every style ran beside a fresh epoll server of its own, both \
             servers on the server CPUs with the same quota and both measured over the same seconds (each driven \
             by its own loadgen thread), and its ratios are to that epoll run: the machine's speed, which moves \
             ±15% from one 3-second window to the next on a shared VM, is then the same for both. epoll's own row is its \
             run alone. The two runs' measured windows start together to within their connect times.{rest}",
            at.join(" and ")
        )
    }

    /// A ratio's denominator, in words, for the tables' texts.
    pub fn reference_words(&self) -> &'static str {
        if self.has_partners() {
            "the epoll run beside it where the two ran side by side, else epoll's in the same round"
        } else {
            "epoll's in the same round"
        }
    }

    /// The results it reads.
    pub fn results(&self) -> &'a CompareResults {
        self.results
    }

    pub fn styles(&self) -> Vec<String> {
        self.results.styles.clone()
    }

    /// Each style with the run `pick` finds for it, in the styles' order.
    pub fn per_style(
        &self,
        pick: impl Fn(&str) -> Option<&'a RunResult>,
    ) -> Vec<(String, &'a RunResult)> {
        self.styles()
            .into_iter()
            .filter_map(|st| pick(&st).map(|r| (st, r)))
            .collect()
    }

    /// Whether `style` is the row of an `--external` server.
    pub fn is_external(&self, style: &str) -> bool {
        self.results.external(style).is_some()
    }

    /// Whether any run of `style` is in the results (a style that ran
    /// nothing still gets a row of dashes).
    pub fn ran(&self, style: &str) -> bool {
        self.results
            .runs
            .iter()
            .any(|r| r.tags.as_ref().is_some_and(|t| t.style == style))
    }

    pub fn runs(&self, style: &str, scenario: &str) -> Vec<&'a RunResult> {
        self.medians
            .iter()
            .copied()
            .filter(|r| {
                r.tags
                    .as_ref()
                    .is_some_and(|t| t.style == style && t.scenario == scenario)
            })
            .collect()
    }

    fn all_scale(&self) -> impl Iterator<Item = &'a RunResult> {
        self.medians.iter().copied().filter(|r| {
            r.tags
                .as_ref()
                .is_some_and(|t| t.scenario == Scenario::Scale.name())
        })
    }

    /// The distinct values of `f` over the scale runs, ascending.
    fn scale_values(&self, f: impl Fn(&RunResult) -> usize) -> Vec<usize> {
        let set: BTreeSet<usize> = self.all_scale().map(f).collect();
        set.into_iter().collect()
    }

    pub fn scale_sizes(&self) -> Vec<usize> {
        self.scale_values(|r| r.spec.size)
    }

    pub fn scale_conns(&self) -> Vec<usize> {
        self.scale_values(|r| r.spec.conns)
    }

    pub fn scale_points(&self, style: &str, size: usize) -> Vec<&'a RunResult> {
        let mut v: Vec<_> = self
            .runs(style, Scenario::Scale.name())
            .into_iter()
            .filter(|r| r.spec.size == size)
            .collect();
        v.sort_by_key(|r| r.spec.conns);
        v
    }

    pub fn scale_point(&self, style: &str, conns: usize, size: usize) -> Option<&'a RunResult> {
        self.scale_points(style, size)
            .into_iter()
            .find(|r| r.spec.conns == conns)
    }

    pub fn idle_run(&self, style: &str) -> Option<&'a RunResult> {
        self.runs(style, Scenario::Idle.name()).into_iter().next()
    }

    pub fn churn_run(&self, style: &str) -> Option<&'a RunResult> {
        self.runs(style, Scenario::Churn.name()).into_iter().next()
    }

    pub fn open_runs(&self, style: &str) -> Vec<&'a RunResult> {
        self.runs(style, Scenario::Open.name())
            .into_iter()
            .filter(|r| {
                r.tags
                    .as_ref()
                    .is_some_and(|t| !t.point.starts_with("probe"))
            })
            .collect()
    }

    pub fn fairness_light(&self, style: &str) -> Option<&'a RunResult> {
        self.runs(style, Scenario::Fairness.name())
            .into_iter()
            .find(|r| r.tags.as_ref().is_some_and(|t| t.point != "heavy"))
    }

    pub fn fairness_heavy(&self, style: &str) -> Option<&'a RunResult> {
        self.runs(style, Scenario::Fairness.name())
            .into_iter()
            .find(|r| r.tags.as_ref().is_some_and(|t| t.point == "heavy"))
    }

    /// Whether epoll ran and has scale runs of `size`.
    pub fn has_reference(&self, size: usize) -> bool {
        self.results.styles.iter().any(|s| s == reference())
            && self
                .scale_points(reference(), size)
                .iter()
                .any(|r| r.messages > 0)
    }

    /// `style`'s throughput at a scale point as a ratio to epoll's at the
    /// same point in this run.
    /// (The median of the paired ratios over the repeats.)
    pub fn vs_reference(&self, style: &str, conns: usize, size: usize) -> Option<f64> {
        self.vs_reference_spread(style, conns, size)
            .map(|s| s.median)
    }

    /// As [`View::vs_reference`], with its range over the repeats.
    pub fn vs_reference_spread(&self, style: &str, conns: usize, size: usize) -> Option<Spread> {
        self.scale_spread(style, conns, size, true, |r| Some(r.throughput_msgs_per_s))
    }

    pub fn knee(&self, style: &str, size: usize) -> Option<Knee> {
        let pts = self.scale_points(style, size);
        // A failed point (pool's unserved connections) is no peak; a
        // point's rate is its median over the rounds, as in the tables.
        let rate = |r: &RunResult| {
            self.spread(r, |x| Some(x.throughput_msgs_per_s))
                .map_or(r.throughput_msgs_per_s, |s| s.median)
        };
        let (peak, peak_rate) = pts
            .iter()
            .filter(|r| !failed(r))
            .map(|r| (r, rate(r)))
            .max_by(|a, b| a.1.total_cmp(&b.1))?;
        Some(Knee {
            peak_conns: peak.spec.conns,
            peak_rate,
            p99_over_10ms_at: pts
                .iter()
                .find(|r| r.messages == 0 || r.latency_us.p99 > KNEE_P99_US)
                .map(|r| r.spec.conns),
        })
    }
}
