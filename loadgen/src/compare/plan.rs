//! What a comparison will do, worked out before it starts: the styles, the
//! scenarios each runs, the points, the rounds, which points run beside a
//! fresh epoll server, the quota, and how long it should take. `compare
//! --plan` prints it and starts nothing; `compare` prints its estimate as it
//! starts and its progress bar counts against the same figure, so the three
//! can never disagree.

use crate::compare::model::Scenario;
use crate::compare::options::CompareOptions;
use crate::compare::pair;
use crate::compare::profile;
use crate::compare::profile::{CONNECT_S, SERVER_START_STOP_S};
use crate::compare::scenarios;
use crate::compare::scenarios::Step;
use crate::results::thousands;

/// The comparison ahead.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub rounds: u32,
    /// Load runs at most (a capacity search may end sooner), partner runs
    /// included.
    pub runs: usize,
    /// Runs measured beside a fresh epoll server, over every round.
    pub partner_runs: usize,
    /// Connection counts where the scale points run side by side.
    pub paired_conns: Vec<usize>,
    /// Seconds it should take.
    pub estimate_s: f64,
}

/// The plan of `opts`; `cgroups`: whether the servers' cgroups can be made
/// (pairs need them).
pub fn plan(opts: &CompareOptions, cgroups: bool) -> Plan {
    let rounds = opts.repeat.max(1);
    let own_runs: usize = opts
        .styles
        .iter()
        .map(|st| opts.profile.for_style(st).runs_in(rounds))
        .sum();
    let mut partner_runs = 0;
    let mut partner_s = 0.0;
    let mut paired_conns = Vec::new();
    for round in 0..rounds {
        for (style, step) in round_units(opts, round) {
            let Some(step @ Step::Scale { conns, .. }) = step else {
                continue;
            };
            if pair::pairs(opts, cgroups, &style, step) {
                partner_runs += 1;
                partner_s += SERVER_START_STOP_S + conns as f64 * CONNECT_S;
                if !paired_conns.contains(&conns) {
                    paired_conns.push(conns);
                }
            }
        }
    }
    paired_conns.sort_unstable();
    let own_s: f64 = opts
        .styles
        .iter()
        .map(|st| opts.profile.for_style(st).seconds_per_style(rounds))
        .sum();
    Plan {
        rounds,
        runs: own_runs + partner_runs,
        partner_runs,
        paired_conns,
        // A partner runs over the same seconds as the style it is beside:
        // it adds its server's start and stop and its connections, not a
        // window.
        estimate_s: own_s + partner_s,
    }
}

impl Plan {
    /// The plan in words, for `compare --plan`.
    pub fn text(&self, opts: &CompareOptions) -> String {
        let p = &opts.profile;
        let mut s = format!(
            "loadgen compare --plan: profile {}, {} style{}: {}\n",
            p.name,
            opts.styles.len(),
            if opts.styles.len() == 1 { "" } else { "s" },
            opts.styles.join(", ")
        );
        let window = |d: std::time::Duration, w: std::time::Duration| {
            format!(
                "{} s measured after {} s of warm-up",
                d.as_secs_f64(),
                w.as_secs_f64()
            )
        };
        s += &format!("  each run: {}\n", window(p.duration, p.warmup));
        for sc in Scenario::all() {
            let styles: Vec<&str> = opts
                .styles
                .iter()
                .filter(|st| opts.profile.for_style(st).runs(*sc))
                .map(String::as_str)
                .collect();
            if styles.is_empty() {
                continue;
            }
            let who = if styles.len() == opts.styles.len() {
                "every style".to_string()
            } else {
                styles.join(", ")
            };
            s += &format!("  {}: {} ({who})\n", sc.name(), points(opts, *sc));
        }
        s += &format!(
            "  rounds: {}{}\n",
            self.rounds,
            if self.rounds > 1 && p.repeat_scale_only {
                " (the scale points; the other scenarios once)"
            } else {
                ""
            }
        );
        s += &format!(
            "  servers: {}\n",
            if !opts.targets.is_empty() {
                "already running at the given targets (no quota, no pairs)".to_string()
            } else {
                match opts.server_cpu_quota {
                    Some(q) => format!(
                        "each in a cgroup of its own with {q} CPU{}, on CPUs {:?}; loadgen on CPUs {:?}",
                        if p.quota_free.is_empty() {
                            String::new()
                        } else {
                            let free: Vec<&str> = p.quota_free.iter().map(|s| s.name()).collect();
                            format!(" ({} without)", free.join(", "))
                        },
                        opts.server_cpus,
                        opts.client_cpus
                    ),
                    None => format!(
                        "without a CPU quota, on CPUs {:?}; loadgen on CPUs {:?}",
                        opts.server_cpus, opts.client_cpus
                    ),
                }
            }
        );
        s += &format!(
            "  side by side: {}\n",
            if self.paired_conns.is_empty() {
                "none".to_string()
            } else {
                let at: Vec<String> = self.paired_conns.iter().map(|c| thousands(*c)).collect();
                format!(
                    "every scale point at {} connections, beside a fresh epoll server ({} partner runs)",
                    at.join(", "),
                    self.partner_runs
                )
            }
        );
        s += &format!(
            "  load runs: at most {} (a capacity search may end sooner)\n  expected about {:.0} s ({:.1} min)\n",
            self.runs,
            self.estimate_s,
            self.estimate_s / 60.0
        );
        s
    }
}

/// A scenario's points in words.
fn points(opts: &CompareOptions, sc: Scenario) -> String {
    let p = &opts.profile;
    let conns = |v: &[usize]| {
        v.iter()
            .map(|c| thousands(*c))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match sc {
        Scenario::Scale => format!(
            "{} connections × {} B",
            conns(&p.scale_conns),
            p.scale_sizes
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Scenario::Idle => format!(
            "{} idle connections + {} active",
            thousands(p.idle),
            p.idle_active
        ),
        Scenario::Open => format!(
            "{} of each style's maximum",
            p.open_fractions
                .iter()
                .map(|f| format!("{:.0}%", f * 100.0))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Scenario::Capacity => format!(
            "{} connections, at most {} steps of {} s at {}",
            conns(&p.capacity_conns),
            p.capacity_max_steps,
            p.capacity_step.as_secs_f64(),
            p.capacity_slo
        ),
        Scenario::Churn => format!("{} connections cycling", p.churn_slots),
        Scenario::Fairness => format!("{} light connections beside one heavy", p.fairness_light),
        Scenario::Reach => format!(
            "idle connections in steps of {} + {} active, until a wall",
            conns(&profile::reach_steps(p.reach_max)),
            p.reach_active
        ),
    }
}

/// What round `round` runs, in order: each style whole, or, where the
/// profile goes point by point, at each step every style whose plan has
/// it (a round after the first only the steps the profile repeats).
/// Servers at `--target` addresses are taken whole where the profile has
/// more than idle and scale points (a container started and stopped per
/// point would cost more than the points).
pub fn round_units(opts: &CompareOptions, round: u32) -> Vec<(String, Option<Step>)> {
    let in_round = |p: &profile::Profile, step: &Step| match step.scenario() {
        Some(sc) => p.in_round(sc, round),
        None => p.scenarios.iter().any(|&sc| p.in_round(sc, round)),
    };
    let plans: Option<Vec<(&String, Vec<Step>)>> = opts
        .styles
        .iter()
        .map(|st| {
            let p = opts.profile.for_style(st);
            let steps = scenarios::steps(&p)?;
            if !opts.targets.is_empty() && steps.contains(&Step::Rest) {
                return None;
            }
            Some((st, steps.into_iter().filter(|s| in_round(&p, s)).collect()))
        })
        .collect();
    let Some(plans) = plans else {
        return opts.styles.iter().map(|st| (st.clone(), None)).collect();
    };
    // Idle first, then the scale points in the profile's order; a step only
    // some styles take (perf's polling holds fewer idle connections, but
    // its idle is the same step) keeps that place.
    let order = scenarios::steps(&opts.profile).unwrap_or_default();
    let mut steps: Vec<Step> = Vec::new();
    for step in plans.iter().flat_map(|(_, p)| p.iter()) {
        if !steps.contains(step) {
            steps.push(*step);
        }
    }
    steps.sort_by_key(|s| order.iter().position(|o| o == s).unwrap_or(usize::MAX));
    steps
        .iter()
        .flat_map(|step| {
            plans
                .iter()
                .filter(|(_, p)| p.contains(step))
                .map(|(st, _)| ((*st).clone(), Some(*step)))
        })
        .collect()
}
