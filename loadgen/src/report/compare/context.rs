//! What report.md says once about the conditions of the whole run, near its
//! top, and in each scenario's section about its servers: how busy the
//! machine was ([`machine_load`]), whether throughput can rank the styles
//! at all ([`no_quota`]: without a CPU quota loadgen and the server share
//! the limit), and whether a scenario's servers ran under the quota
//! ([`scenario_quota`]) and what that does to its figures, how much other
//! work ran on its CPUs during the measured windows ([`foreign_load`]),
//! and, where the results came from a journal, whether it was cut short
//! or resumed ([`sessions`]).

use crate::compare::model::{CompareResults, Scenario, ServerRecord};
use crate::report::compare::rank::quota_in_force;
use crate::report::cost::cgroup;

/// Load per core below which the machine counts as quiet, and from which
/// it counts as busy (between: somewhat busy).
const QUIET_PER_CORE: f64 = 0.5;
const BUSY_PER_CORE: f64 = 1.0;

/// The machine table's cell for the foreign load over every measured
/// window of the comparison: CPU time on the servers' and loadgen's CPUs
/// that was none of its own, as a share of those CPUs' time, and the runs
/// it disturbed; "not measured" where no run measured it (never 0).
pub fn foreign_load(results: &CompareResults) -> String {
    let measured: Vec<&crate::results::foreign::ForeignLoad> = results
        .runs
        .iter()
        .filter_map(|r| r.foreign.as_ref())
        .collect();
    if measured.is_empty() {
        return "not measured (no /proc/stat, or servers not in cgroups of loadgen's own: \
                containers, --target)"
            .into();
    }
    let foreign: f64 = measured.iter().map(|f| f.foreign_cpu_s).sum();
    let capacity: f64 = measured
        .iter()
        .map(|f| f.window_s * f.cpus.len() as f64)
        .sum();
    let disturbed = results.runs.iter().filter(|r| r.disturbed).count();
    let unmeasured = results.runs.len() - measured.len();
    let share = if capacity > 0.0 {
        100.0 * foreign / capacity
    } else {
        0.0
    };
    let mut cell = format!(
        "{share:.1}% of the servers' and loadgen's CPUs over the measured windows ({foreign:.2} CPU-s of \
         other work); {disturbed} of {} runs disturbed (over {:.0}% in its window: ⚠)",
        measured.len(),
        100.0 * crate::probe::foreign::DISTURBED_SHARE
    );
    if unmeasured > 0 {
        cell.push_str(&format!("; {unmeasured} runs not measured"));
    }
    cell
}

/// "The machine was quiet (load average 0.30 ...)." from the load average
/// recorded before the run (None where it was not).
pub fn machine_load(results: &CompareResults) -> Option<String> {
    let [one, five, _] = results.environment.load_average?;
    let cores = results.environment.cores.max(1);
    let per_core = one.max(five) / cores as f64;
    let after = match results.load_after {
        Some([one, ..]) => format!(
            "; {} over the run's last minute, its own servers and loadgen included",
            load(one)
        ),
        None => String::new(),
    };
    let figures = format!(
        "load average {} over the minute before the run, {} over the 5 minutes before, on {cores} core{}{after}",
        load(one),
        load(five),
        if cores == 1 { "" } else { "s" }
    );
    Some(if per_core < QUIET_PER_CORE {
        format!("The machine was quiet ({figures}).")
    } else if per_core < BUSY_PER_CORE {
        format!(
            "The machine was somewhat busy ({figures}): figures may be noisier than on a quiet machine."
        )
    } else {
        format!("The machine was busy ({figures}): figures are noisier than on a quiet machine.")
    })
}

/// The report's first line: how the run was set up (profile, styles,
/// quota, pairs, rounds, how long), for a reader who stops there.
pub fn setup_summary(results: &CompareResults, side_by_side: bool) -> String {
    let quota = match results.cgroup.as_ref() {
        Some(c) if quota_in_force(results) => format!(
            "each server in a cgroup of its own with {} CPU ({})",
            c.cpu_quota.unwrap_or(0.0),
            if c.made_by == "docker" {
                "its container's quota"
            } else {
                "so that the server, not loadgen, is the limit"
            }
        ),
        _ => "the servers without a CPU quota".into(),
    };
    let rounds = match results.repeat.max(1) {
        1 => "each point measured once".to_string(),
        n => format!("the scale points in {n} rounds (cells: median and range)"),
    };
    let pairs = if side_by_side {
        ", each beside a fresh epoll server measured over the same seconds"
    } else {
        ""
    };
    format!(
        "Profile **{}**: {} style{}, {quota}; {rounds}{pairs}. Took {:.0} s.",
        results.profile,
        results.styles.len(),
        if results.styles.len() == 1 { "" } else { "s" },
        results.elapsed_s
    )
}

/// Said under the first line where the results came from a journal: a
/// comparison that did not finish (how many of its units it recorded),
/// and one that was resumed (each session's start and units).
pub fn sessions(results: &CompareResults) -> Option<String> {
    let mut lines = Vec::new();
    if let Some(i) = &results.interrupted {
        lines.push(format!(
            "**Built from the journal of a comparison that did not finish**: {} of its {} planned units \
             (a unit: one style at one point of one round) were recorded; the rest were never measured, \
             and the tables lack them. `loadgen compare --resume` with the same flags runs the rest.",
            i.recorded_units, i.planned_units
        ));
    }
    if results.sessions.len() > 1 {
        let each: Vec<String> = results
            .sessions
            .iter()
            .map(|s| {
                format!(
                    "{} at {}: {} unit{}",
                    if s.resumed { "resumed" } else { "started" },
                    crate::results::utc_time(s.started_unix_s),
                    s.units,
                    if s.units == 1 { "" } else { "s" }
                )
            })
            .collect();
        lines.push(format!(
            "This comparison was resumed (`--resume`) and ran in {} sessions: {}.",
            results.sessions.len(),
            each.join("; ")
        ));
    }
    (!lines.is_empty()).then(|| lines.join("\n\n"))
}

/// 0.30, 2.4, 98.
fn load(x: f64) -> String {
    if x < 1.0 {
        format!("{x:.2}")
    } else if x < 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

/// Said once near the top where the servers had no CPU quota: throughput
/// and cost per message rank nothing in this run.
pub fn no_quota(results: &CompareResults) -> Option<String> {
    if quota_in_force(results) {
        return None;
    }
    let why = match &results.cgroup {
        Some(c) if !c.used && c.made_by != "docker" => format!(
            "cgroups could not be used ({})",
            c.note.as_deref().unwrap_or("unavailable")
        ),
        Some(_) => "the servers ran without a CPU quota".into(),
        None => "the servers ran without cgroups or a CPU quota".into(),
    };
    Some(format!(
        "**Throughput does not rank the styles in this run**: {why}, so loadgen and each server shared the \
         limit (a lean server and loadgen saturate together). The tables show what each style did; the \
         readings rank only by what is still meaningful: memory, connections served, failures and fairness \
         latency. Throughput and cost-per-message readings rank nothing."
    ))
}

/// Whether `phase` (a server record's) ran `scenario`: "main" runs every
/// scenario but fairness; a point-by-point run names its step ("scale
/// conns=50 size=64", and its partner "... beside reactor").
fn phase_runs(phase: &str, scenario: Scenario) -> bool {
    let name = scenario.name();
    phase == name
        || phase.starts_with(&format!("{name} "))
        || (phase == "main" && scenario != Scenario::Fairness)
}

/// One sentence for a scenario's section: whether its servers ran under
/// the CPU quota, and what that means for its figures (None where the
/// results do not say, or nothing of it ran).
pub fn scenario_quota(results: &CompareResults, scenario: Scenario) -> Option<String> {
    let servers: Vec<&ServerRecord> = results
        .servers
        .iter()
        .filter(|s| s.started && phase_runs(&s.phase, scenario))
        .collect();
    let docker = results
        .cgroup
        .as_ref()
        .filter(|c| c.made_by == "docker")
        .and_then(|c| c.cpu_quota);
    let mut quotas: Vec<Option<f64>> = servers.iter().map(|s| s.cpu_quota.or(docker)).collect();
    if servers.is_empty() {
        // Targets, or results without server records: the runs' cgroups.
        quotas = results
            .runs
            .iter()
            .filter(|r| {
                r.tags
                    .as_ref()
                    .is_some_and(|t| t.scenario == scenario.name())
            })
            .map(|r| cgroup(r).and_then(|c| c.cpu_quota).or(docker))
            .collect();
        if quotas.is_empty() || results.cgroup.is_none() {
            return None;
        }
    }
    let period_ms = results
        .cgroup
        .as_ref()
        .map(|c| c.period_us as f64 / 1000.0)
        .filter(|p| *p > 0.0);
    let with: Vec<f64> = quotas.iter().flatten().copied().collect();
    let without = quotas.len() - with.len();
    let unquota = "loadgen may be the limit (see the † marks)";
    Some(if with.is_empty() {
        format!("Its servers ran without a CPU quota: {unquota}.")
    } else {
        let q = with.iter().copied().fold(f64::INFINITY, f64::min);
        let stall = match period_ms {
            Some(p) => format!(
                "up to {:.1} ms (period − quota)",
                (p * (1.0 - q.min(1.0))).max(0.0)
            ),
            None => "up to the period less the quota".into(),
        };
        let quota = format!(
            "Its servers ran under the CPU quota ({q} CPU{}): the server, not loadgen, is the limit, but CFS \
             throttling adds stalls of {stall} to latency",
            period_ms
                .map(|p| format!(", {p} ms period"))
                .unwrap_or_default()
        );
        if without == 0 {
            format!("{quota}.")
        } else {
            format!("{quota}; {without} of its servers ran without one, where {unquota}.")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_name_their_scenarios() {
        assert!(phase_runs("main", Scenario::Scale));
        assert!(!phase_runs("main", Scenario::Fairness));
        assert!(phase_runs("fairness", Scenario::Fairness));
        assert!(phase_runs(
            "scale conns=50 size=64 beside reactor",
            Scenario::Scale
        ));
        assert!(!phase_runs("scale conns=50 size=64", Scenario::Idle));
        assert!(phase_runs("idle", Scenario::Idle));
    }

    #[test]
    fn loads_print_short() {
        assert_eq!(load(0.3), "0.30");
        assert_eq!(load(2.41), "2.4");
        assert_eq!(load(98.2), "98");
    }
}
