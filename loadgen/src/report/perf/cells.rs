//! The perf tables' cells: one style's throughput against the reference
//! at one connection count ([`RatioCell`]) and its memory per idle
//! connection ([`MemoryCell`]), each judged against its target in
//! [`super::targets`]; [`super::tables`](mod@super::tables) lays them out.

use super::targets::{Goal, Target, Verdict};
use crate::compare::profile::perf::{CONNS, IDLE, SIZE};
use crate::report::md::put;
pub use crate::report::md::thousands;
use crate::report::view::{View, reference};
use crate::results::RunResult;

/// One variant's run at one connection count, against epoll's.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub variant: String,
    /// The median run's msg/s.
    pub rate: f64,
    /// The median of the ratios paired round by round with epoll's.
    pub ratio: f64,
    /// Their min and max, and how many rounds (1: no range).
    pub range: (f64, f64),
    pub rounds: usize,
    /// Loadgen saturated in this run: the rate is loadgen's limit.
    pub client_bound: bool,
    /// Other work ran on its CPUs over a round of it, or of epoll's beside
    /// it (foreign load: ⚠).
    pub disturbed: bool,
    /// Connections that were established and got replies, of those asked for.
    pub held: (u64, u64),
    pub errors: u64,
}

impl Point {
    pub fn held_every(&self) -> bool {
        self.held.0 == self.held.1 && self.errors == 0
    }
}

/// One throughput cell: a target's style at one connection count.
#[derive(Clone, Debug, PartialEq)]
pub struct RatioCell {
    pub conns: usize,
    pub goal: Goal,
    /// Every variant that ran, in the target's order.
    pub points: Vec<Point>,
    /// Index into `points` of the best (highest rate).
    pub best: Option<usize>,
    /// epoll's own run here was client-bound (its figure, the denominator,
    /// is then loadgen's limit).
    pub reference_client_bound: bool,
    pub verdict: Verdict,
}

impl RatioCell {
    pub fn best_point(&self) -> Option<&Point> {
        self.best.map(|i| &self.points[i])
    }

    /// Loadgen saturated in the judged run.
    pub fn client_bound(&self) -> bool {
        self.best_point().is_some_and(|p| p.client_bound)
    }

    /// The cell as table text.
    pub fn text(&self) -> String {
        let Some(p) = self.best_point() else {
            return match &self.verdict {
                Verdict::NoData(why) => format!("– ({why})"),
                v => v.word().to_string(),
            };
        };
        let mut s = format!("{:.2}", p.ratio);
        // 0.897 against ≥ 0.90 must not read "0.90 ≥ 0.90: miss".
        if let Goal::AtLeast(x) = self.goal
            && s == format!("{x:.2}")
        {
            s = format!("{:.3}", p.ratio);
        }
        if p.rounds > 1 {
            put!(s, " ({:.2}–{:.2})", p.range.0, p.range.1);
        }
        if self.points.len() > 1 {
            put!(s, " ({})", variant_suffix(&p.variant));
        }
        match self.goal {
            Goal::AtLeast(x) => {
                put!(s, " ≥ {x:.2}: {}", self.verdict.word());
            }
            Goal::HoldsEveryConnection => {
                let held = if p.held_every() {
                    format!("held all {}", thousands(p.held.1 as usize))
                } else if p.errors > 0 && p.held.0 == p.held.1 {
                    format!(
                        "held {} but with {} errors",
                        thousands(p.held.1 as usize),
                        p.errors
                    )
                } else {
                    format!(
                        "held {} of {}",
                        thousands(p.held.0 as usize),
                        thousands(p.held.1 as usize)
                    )
                };
                put!(s, "; {held}: {}", self.verdict.word());
            }
            Goal::Report | Goal::Reference => {}
        }
        let mut notes = Vec::new();
        if p.client_bound {
            notes.push(if self.verdict == Verdict::Miss {
                "client-bound: loadgen saturated, so the miss may be loadgen's"
            } else {
                "client-bound"
            });
        }
        if self.reference_client_bound {
            notes.push("epoll client-bound");
        }
        if p.disturbed {
            notes.push("⚠ disturbed: other work ran on its CPUs");
        }
        if !notes.is_empty() {
            put!(s, " ({})", notes.join("; "));
        }
        s
    }
}

/// One memory cell: a target's style at [`IDLE`] idle connections.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryCell {
    pub limit: Option<u64>,
    /// (variant, bytes per connection above the baseline, idle connections):
    /// what the server's cgroup was charged (user space and the kernel's
    /// sockets, buffers, stacks) where it ran in one, else user-space RSS.
    pub points: Vec<(String, f64, usize)>,
    /// (variant, user-space bytes, kernel bytes or None: not measured) per
    /// connection, for the table.
    pub parts: Vec<(String, f64, Option<f64>)>,
    /// Index of the smallest.
    pub best: Option<usize>,
    pub verdict: Verdict,
}

pub fn variant_suffix(name: &str) -> &str {
    name.split_once(':').map(|(_, v)| v).unwrap_or(name)
}

fn point(view: &View, r: &RunResult, reference: &RunResult) -> Point {
    let total = r.spec.conns as u64;
    let style = r
        .tags
        .as_ref()
        .map(|t| t.style.as_str())
        .unwrap_or_default();
    let spread = view.vs_reference_spread(style, r.spec.conns, r.spec.size);
    let single = r.throughput_msgs_per_s / reference.throughput_msgs_per_s;
    let established = r.connect.established.min(total);
    let held = match r.served() {
        Some((served, _)) => served.min(established),
        None => established,
    };
    Point {
        variant: r.tags.as_ref().map(|t| t.style.clone()).unwrap_or_default(),
        rate: r.throughput_msgs_per_s,
        ratio: spread.map(|s| s.median).unwrap_or(single),
        range: spread.map(|s| (s.min, s.max)).unwrap_or((single, single)),
        rounds: spread.map(|s| s.n).unwrap_or(1),
        client_bound: r.client.client_bound,
        disturbed: view
            .repeats(r)
            .iter()
            .any(|r| r.disturbed || view.denominator(r).is_some_and(|d| d.disturbed)),
        held: (held, total),
        errors: r.errors.total(),
    }
}

/// Judges `target` at `CONNS[col]`, from the 64 B scale runs in `view`.
pub fn ratio_cell(view: &View, target: &Target, col: usize) -> RatioCell {
    let conns = CONNS[col];
    let goal = target.ratio[col];
    let mut cell = RatioCell {
        conns,
        goal,
        points: Vec::new(),
        best: None,
        reference_client_bound: false,
        verdict: Verdict::NoData("not run".into()),
    };
    let reference = view
        .scale_point(reference(), conns, SIZE)
        .filter(|e| e.messages > 0 && e.throughput_msgs_per_s > 0.0);
    let Some(reference) = reference else {
        cell.verdict = Verdict::NoData("no epoll run to compare with".into());
        return cell;
    };
    cell.reference_client_bound = reference.client.client_bound;
    let styles = view.styles();
    for v in target.variants {
        if !styles.iter().any(|s| s == v) {
            continue;
        }
        if let Some(r) = view.scale_point(v, conns, SIZE) {
            cell.points.push(point(view, r, reference));
        }
    }
    cell.best = cell
        .points
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.rate.total_cmp(&b.1.rate))
        .map(|(i, _)| i);
    let Some(best) = cell.best_point() else {
        return cell;
    };
    cell.verdict = match goal {
        Goal::Reference | Goal::Report => Verdict::Reported,
        // Judged on the whole range: a verdict must hold in every round.
        Goal::AtLeast(x) if best.range.0 >= x => Verdict::Pass,
        Goal::AtLeast(x) if best.range.1 < x => Verdict::Miss,
        Goal::AtLeast(_) => Verdict::Inconclusive,
        Goal::HoldsEveryConnection if best.held_every() => Verdict::Pass,
        Goal::HoldsEveryConnection => Verdict::Miss,
    };
    cell
}

/// Judges `target`'s memory per idle connection from its idle runs with
/// at least [`IDLE`] idle connections.
pub fn memory_cell(view: &View, target: &Target) -> MemoryCell {
    let mut cell = MemoryCell {
        limit: target.memory_per_conn_max,
        points: Vec::new(),
        parts: Vec::new(),
        best: None,
        verdict: Verdict::NoData("not run".into()),
    };
    let styles = view.styles();
    for v in target.variants {
        if !styles.iter().any(|s| s == v) {
            continue;
        }
        let Some(r) = view
            .runs(v, "idle")
            .into_iter()
            .find(|r| r.spec.idle >= IDLE)
        else {
            continue;
        };
        match &r.server {
            Some(sv) => {
                let cg = sv.cgroup.as_ref();
                let total = cg
                    .and_then(|c| c.memory_per_conn_bytes)
                    .unwrap_or(sv.rss_per_conn_bytes);
                cell.points.push((v.to_string(), total, r.spec.idle));
                cell.parts.push((
                    v.to_string(),
                    sv.rss_per_conn_bytes,
                    cg.and_then(|c| c.kernel_per_conn_bytes),
                ));
            }
            None => cell.verdict = Verdict::NoData("server memory not measured".into()),
        }
    }
    cell.best = cell
        .points
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.1.total_cmp(&b.1.1))
        .map(|(i, _)| i);
    if let Some(i) = cell.best {
        let per = cell.points[i].1;
        cell.verdict = match cell.limit {
            None => Verdict::Reported,
            Some(max) if per <= max as f64 => Verdict::Pass,
            Some(_) => Verdict::Miss,
        };
    }
    cell
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::model::CompareResults;
    use crate::compare::profile::perf::IDLE_ACTIVE;
    use crate::report::perf::targets::TARGETS;
    use std::time::Duration;

    use crate::results::{Tags, record};

    fn fixture() -> CompareResults {
        serde_json::from_str(include_str!("../../../tests/fixtures/compare-smoke.json"))
            .expect("fixture parses")
    }

    /// A made-up closed-loop run of `style` at `conns` (64 B): `rate` msg/s,
    /// `served` of its connections answered, client-bound or not.
    fn scale_run(
        template: &RunResult,
        style: &str,
        conns: usize,
        rate: f64,
        served: usize,
        client_bound: bool,
    ) -> RunResult {
        let mut r = template.clone();
        r.tags = Some(Tags {
            style: style.into(),
            scenario: "scale".into(),
            point: format!("conns={conns} size={SIZE}"),
            repeat: 0,
            partner_of: String::new(),
        });
        r.label = Some(format!("{style}/scale/conns={conns}"));
        r.spec.conns = conns;
        r.spec.idle = 0;
        r.spec.size = SIZE;
        r.throughput_msgs_per_s = rate;
        r.messages = (rate * 3.0) as u64;
        r.client.client_bound = client_bound;
        r.connect.established = conns as u64;
        r.errors = Default::default();
        r.histograms.first_reply = Default::default();
        for _ in 0..served {
            record(&mut r.histograms.first_reply.0, Duration::from_micros(100));
        }
        r.conns_unserved = (conns - served) as u64;
        r.refresh_derived();
        r
    }

    fn idle_run(template: &RunResult, style: &str, idle: usize, per_conn: f64) -> RunResult {
        let mut r = template.clone();
        r.tags = Some(Tags {
            style: style.into(),
            scenario: "idle".into(),
            point: format!("idle={idle} active={IDLE_ACTIVE}"),
            repeat: 0,
            partner_of: String::new(),
        });
        r.spec.idle = idle;
        r.spec.conns = IDLE_ACTIVE;
        if let Some(sv) = r.server.as_mut() {
            sv.rss_per_conn_bytes = per_conn;
        }
        r
    }

    /// Made-up perf results: `runs` of (style, conns, msg/s, served,
    /// client-bound), and idle runs of (style, bytes per connection).
    fn made_up(scale: &[(&str, usize, f64, usize, bool)], idle: &[(&str, f64)]) -> CompareResults {
        let mut f = fixture();
        let scale_template = f
            .runs
            .iter()
            .find(|r| r.tags.as_ref().is_some_and(|t| t.scenario == "scale"))
            .unwrap()
            .clone();
        let idle_template = f
            .runs
            .iter()
            .find(|r| r.tags.as_ref().is_some_and(|t| t.scenario == "idle"))
            .unwrap()
            .clone();
        f.profile = "perf".into();
        f.styles = Vec::new();
        f.servers = Vec::new();
        f.runs = Vec::new();
        let add_style = |f: &mut CompareResults, st: &str| {
            if !f.styles.iter().any(|s| s == st) {
                f.styles.push(st.to_string());
            }
        };
        for &(st, conns, rate, served, bound) in scale {
            add_style(&mut f, st);
            f.runs
                .push(scale_run(&scale_template, st, conns, rate, served, bound));
        }
        for &(st, per) in idle {
            add_style(&mut f, st);
            f.runs.push(idle_run(&idle_template, st, IDLE, per));
        }
        f
    }

    fn target(style: &str) -> &'static Target {
        TARGETS.iter().find(|t| t.style == style).unwrap()
    }

    #[test]
    fn ratios_pass_miss_and_client_bound() {
        let f = made_up(
            &[
                ("epoll", 50, 100_000.0, 50, false),
                ("epoll", 1000, 80_000.0, 1000, true),
                ("epoll", 10_000, 60_000.0, 10_000, false),
                ("reactor", 50, 96_000.0, 50, false),
                ("reactor", 1000, 70_000.0, 1000, true),
                ("tasks:current_thread", 50, 85_000.0, 50, false),
                ("tasks:multi_thread", 50, 92_000.0, 50, true),
                ("uring", 50, 105_000.0, 50, false),
                ("threads", 50, 50_000.0, 50, false),
                ("threads", 10_000, 30_000.0, 9_900, false),
            ],
            &[],
        );
        let v = View::new(&f);

        // 0.96 against ≥ 0.95: pass.
        let c = ratio_cell(&v, target("reactor"), 0);
        assert_eq!(c.verdict, Verdict::Pass);
        assert!((c.best_point().unwrap().ratio - 0.96).abs() < 1e-9);
        assert!(c.text().contains("0.96 ≥ 0.95: pass"), "{}", c.text());
        // 0.875 against ≥ 0.95, in a client-bound run (and epoll's too).
        let c = ratio_cell(&v, target("reactor"), 1);
        assert_eq!(c.verdict, Verdict::Miss);
        assert!(c.client_bound() && c.reference_client_bound);
        assert!(c.text().contains("miss"), "{}", c.text());
        assert!(
            c.text().contains("client-bound: loadgen saturated"),
            "{}",
            c.text()
        );
        assert!(c.text().contains("epoll client-bound"), "{}", c.text());
        // A ratio that rounds to its target shows a third decimal.
        let near = made_up(
            &[
                ("epoll", 50, 100_000.0, 50, false),
                ("reactor", 50, 94_700.0, 50, false),
            ],
            &[],
        );
        let c = ratio_cell(&View::new(&near), target("reactor"), 0);
        assert_eq!(c.verdict, Verdict::Miss);
        assert!(
            c.text().starts_with("0.947 ≥ 0.95: **miss**"),
            "{}",
            c.text()
        );
        // Not run at 10,000.
        let c = ratio_cell(&v, target("reactor"), 2);
        assert_eq!(c.verdict, Verdict::NoData("not run".into()));

        // tasks: the best of its two variants is judged (0.92, multi_thread),
        // both are kept, and the judged one was client-bound.
        let c = ratio_cell(&v, target("tasks"), 0);
        assert_eq!(c.points.len(), 2);
        let best = c.best_point().unwrap();
        assert_eq!(best.variant, "tasks:multi_thread");
        assert_eq!(c.verdict, Verdict::Pass);
        assert!(c.client_bound());
        assert!(c.text().contains("(multi_thread)"), "{}", c.text());
        assert!(c.text().contains("client-bound"), "{}", c.text());

        // uring 1.05 against ≥ 1.1, not client-bound: a plain miss.
        let c = ratio_cell(&v, target("uring"), 0);
        assert_eq!(c.verdict, Verdict::Miss);
        assert!(!c.client_bound());
        assert!(!c.text().contains("client-bound"), "{}", c.text());

        // threads: reported at 50; at 10,000 it left 100 connections
        // without a reply, so it did not hold every one.
        let c = ratio_cell(&v, target("threads"), 0);
        assert_eq!(c.verdict, Verdict::Reported);
        assert!(c.text().starts_with("0.50"), "{}", c.text());
        let c = ratio_cell(&v, target("threads"), 2);
        assert_eq!(c.verdict, Verdict::Miss);
        assert!(c.text().contains("held 9,900 of 10,000"), "{}", c.text());

        // Coroutines did not run at all.
        let c = ratio_cell(&v, target("coroutines"), 0);
        assert!(c.points.is_empty());
        assert!(matches!(c.verdict, Verdict::NoData(_)));

        // No epoll: nothing to judge against.
        let no_ref = made_up(&[("reactor", 50, 96_000.0, 50, false)], &[]);
        let c = ratio_cell(&View::new(&no_ref), target("reactor"), 0);
        assert_eq!(
            c.verdict,
            Verdict::NoData("no epoll run to compare with".into())
        );
    }

    #[test]
    fn threads_holding_every_connection_passes() {
        let f = made_up(
            &[
                ("epoll", 10_000, 60_000.0, 10_000, false),
                ("threads", 10_000, 30_000.0, 10_000, true),
            ],
            &[],
        );
        let c = ratio_cell(&View::new(&f), target("threads"), 2);
        assert_eq!(c.verdict, Verdict::Pass);
        assert!(
            c.text()
                .contains("0.50; held all 10,000: pass (client-bound)"),
            "{}",
            c.text()
        );
    }

    #[test]
    fn memory_limits() {
        let f = made_up(
            &[],
            &[
                ("epoll", 300.0),
                ("reactor", 2100.0),
                ("tasks:current_thread", 5000.0),
                ("tasks:multi_thread", 3900.0),
                ("coroutines", 33.0 * 1024.0),
                ("threads", 10_000.0),
            ],
        );
        let v = View::new(&f);
        assert_eq!(memory_cell(&v, target("epoll")).verdict, Verdict::Pass);
        assert_eq!(memory_cell(&v, target("reactor")).verdict, Verdict::Miss);
        let tasks = memory_cell(&v, target("tasks"));
        assert_eq!(tasks.points.len(), 2);
        assert_eq!(
            tasks.verdict,
            Verdict::Pass,
            "the smaller variant is judged"
        );
        // Exactly the stack plus 1 KiB is within the limit.
        assert_eq!(memory_cell(&v, target("coroutines")).verdict, Verdict::Pass);
        assert_eq!(
            memory_cell(&v, target("threads")).verdict,
            Verdict::Reported
        );
        assert!(matches!(
            memory_cell(&v, target("uring")).verdict,
            Verdict::NoData(_)
        ));
    }

    #[test]
    fn thousands_separates() {
        assert_eq!(thousands(50), "50");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(10_000), "10,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn every_target_names_known_variants() {
        for t in TARGETS {
            for v in t.variants {
                crate::compare::variant::Variant::parse(v).unwrap();
            }
        }
        for st in crate::compare::profile::perf::STYLES {
            crate::compare::variant::Variant::parse(st).unwrap();
        }
    }
}
