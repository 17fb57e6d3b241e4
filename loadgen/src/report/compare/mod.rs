//! `report.md` of a comparison: the environment, one section per scenario
//! with every style (in [`sections`]), the perf tables where the profile has
//! them, the charts, and the runs to distrust.

pub mod claims;
pub mod context;
pub mod external;
pub mod figures;
pub mod marks;
pub mod rank;
pub mod sections;
pub mod tradeoffs;

use std::collections::BTreeSet;

use crate::compare::model::{CompareResults, Scenario, ServerRecord};
use crate::compare::scenarios::capacity::is_step;
use crate::report::charts::Chart;
use crate::report::cost::setup_rows;
use crate::report::md::putln;
use crate::report::perf;
use crate::report::run::sampling_note;
use crate::report::view::{View, reference};
use crate::results::RunResult;

/// A scenario's section of the report: writes it from the view (nothing
/// where the scenario did not run).
type Section = fn(&mut String, &View);

/// Each scenario's place in the report and its section: the one match on
/// [`Scenario`], so a new scenario does not compile until it has a section.
/// The report leads with `scale` (the headline table) and otherwise follows
/// [`Scenario::all`]'s order.
fn section(scenario: Scenario) -> (u8, Section) {
    match scenario {
        Scenario::Scale => (0, sections::scale::section),
        Scenario::Idle => (1, sections::idle::section),
        Scenario::Open => (2, sections::open::section),
        Scenario::Capacity => (3, sections::capacity::section),
        Scenario::Churn => (4, sections::churn::section),
        Scenario::Fairness => (5, sections::fairness::section),
        Scenario::Reach => (6, sections::reach::section),
    }
}

/// The whole report.
pub fn markdown(results: &CompareResults, charts: &[Chart]) -> String {
    let v = View::new(results);
    let mut s = String::new();
    let e = &results.environment;
    putln!(s, "# c10k-echo comparison ({} profile)\n", results.profile);
    // Two lines of set-up, then the answer: the trade-offs and the claims;
    // how it was measured follows them.
    putln!(s, "{}", context::setup_summary(results, v.has_partners()));
    if let Some(sessions) = context::sessions(results) {
        putln!(s, "\n{sessions}");
    }
    if let Some(load) = context::machine_load(results) {
        putln!(s, "\n{load}");
    }
    s.push('\n');
    if let Some(text) = context::no_quota(results) {
        putln!(s, "{text}\n");
    }
    tradeoffs::section(&mut s, &v);
    claims::section(&mut s, &v);
    putln!(s, "## How this run was measured\n");
    if results.server_cpus.is_empty() {
        putln!(
            s,
            "Servers: {}, one style at a time where loadgen started them; loadgen ran on CPU(s) {:?} and reached \
             them over the {} network. Compare styles within this report as ratios: run-to-run noise on a shared \
             machine is large.\n",
            results.server_command,
            results.client_cpus,
            results.network
        );
    } else {
        putln!(
            s,
            "Every style ran as its own server process pinned to CPU(s) {:?}; loadgen ran pinned to CPU(s) {:?}. \
             Compare styles within this report as ratios: run-to-run noise on a shared machine is large.\n",
            results.server_cpus,
            results.client_cpus
        );
    }
    putln!(s, "| machine | |\n|---|---|");
    putln!(s, "| kernel | {} |", e.kernel);
    putln!(s, "| CPU | {} x {} |", e.cores, e.cpu_model);
    putln!(
        s,
        "| loadgen | {} (git {}) |",
        e.loadgen_version,
        e.git_revision
    );
    putln!(s, "| open-files limit | {} |", e.fd_limit);
    putln!(
        s,
        "| net.core.somaxconn | {} |",
        e.somaxconn
            .map(|v| v.to_string())
            .unwrap_or_else(|| "?".into())
    );
    if let Some([one, five, fifteen]) = e.load_average {
        putln!(
            s,
            "| load average before the run | {one:.2} {five:.2} {fifteen:.2} |"
        );
    }
    putln!(
        s,
        "| foreign load during the runs | {} |",
        context::foreign_load(results)
    );
    putln!(s, "| servers run by | `{}` |", results.server_command);
    if !results.network.is_empty() {
        putln!(s, "| network | {} |", results.network);
    }
    // Replicas' comparisons merged run by run (`loadgen merge --comparisons`).
    let instances = results
        .runs
        .iter()
        .map(|r| r.merged_runs)
        .max()
        .unwrap_or(1);
    if instances > 1 {
        putln!(
            s,
            "| loadgen instances | {instances} at once, in step run by run, merged (histograms added, throughputs summed) |"
        );
    }
    let sources: BTreeSet<&str> = results
        .runs
        .iter()
        .filter_map(|r| r.server.as_ref().map(|sv| sv.source.as_str()))
        .collect();
    let sources: Vec<&str> = sources.into_iter().collect();
    let any_tree = results.runs.iter().any(|r| {
        r.server
            .as_ref()
            .is_some_and(|sv| sv.memory_measure == "pss_tree")
    });
    putln!(
        s,
        "| server figures from | {} |",
        if sources.is_empty() {
            "not measured (no /proc access to the servers and no Docker API)".to_string()
        } else {
            sources
                .iter()
                .map(|src| match *src {
                    "procfs" if any_tree => "procfs (the server process: RSS, CPU, threads, fds, context switches; for \
                        a server that forks, its whole process tree: memory is PSS summed over the server and its \
                        descendants, so pages shared copy-on-write count once, CPU includes reaped children)",
                    "procfs" => "procfs (the server process: RSS, CPU, threads, fds, context switches)",
                    "docker-api" => "the Docker API (the container's cgroup: memory without page cache incl. kernel memory, CPU, pids)",
                    other => other,
                })
                .collect::<Vec<_>>()
                .join("; ")
        }
    );
    s.push_str(&setup_rows(results));
    putln!(s, "| took | {:.0} s |\n", results.elapsed_s);
    putln!(
        s,
        "Marks: ✗ the run failed (errors, see the end); † loadgen itself was the bottleneck (client-bound): \
         that figure is loadgen's limit, not the server's; ‡ server-bound: the server used its whole CPU quota \
         while loadgen had room, so the figure is the server's. Unmarked: neither was saturated (a latency- or \
         wake-up-bound run, e.g. one connection). ⚠ disturbed: other work \
         (not this comparison's servers or loadgen) took more than {:.0}% of the servers' and loadgen's CPUs \
         during that run's window: its figure is shown but never ranked.\n",
        100.0 * crate::probe::foreign::DISTURBED_SHARE
    );
    external::section(&mut s, results);
    if perf::applies(results) {
        putln!(
            s,
            "## perf: every style against {} and its targets

The targets are the `TARGETS` table in \
             loadgen/src/report/perf/targets.rs; pass and miss are reported, never asserted (the same tables are in perf.md).\n",
            reference()
        );
        s.push_str(&perf::tables(results));
    }
    let mut order = Scenario::all().to_vec();
    order.sort_by_key(|&sc| section(sc).0);
    for sc in order {
        (section(sc).1)(&mut s, &v);
    }
    if !charts.is_empty() {
        putln!(s, "## Charts\n");
        for c in charts {
            putln!(s, "![{}]({})\n", c.title, c.file);
        }
    }
    trust_section(&mut s, results);
    servers_section(&mut s, results);
    s
}

/// Every server the run started, at the end: a count, then a row for each
/// server with a problem and each style's servers of its other scenarios
/// (a point-by-point run starts a fresh server per idle step and scale
/// point, hundreds in all: those that stopped cleanly are only counted).
fn servers_section(s: &mut String, results: &CompareResults) {
    let step = |phase: &str| phase == "idle" || phase.starts_with("scale ");
    let fine = |r: &ServerRecord| r.started && (r.stopped_cleanly || r.managed_by == "none");
    let clean = results.servers.iter().filter(|r| fine(r)).count();
    putln!(s, "## Servers\n");
    putln!(
        s,
        "{} servers, {clean} of them started and stopped cleanly (exit 0 with their summary line){}.\n",
        results.servers.len(),
        if results.servers.iter().any(|r| step(&r.phase)) {
            "; each idle step and each scale point of each round had a fresh server, listed below only where \
             it had a problem"
        } else {
            ""
        }
    );
    putln!(
        s,
        "| style | phase | started | stopped cleanly | summary / problem |\n|---|---|---|---|---|"
    );
    for r in results
        .servers
        .iter()
        .filter(|r| !(step(&r.phase) && fine(r)))
    {
        let mut detail = match (&r.problem, &r.summary) {
            (Some(p), _) => format!("**{p}**"),
            (None, Some(sum)) => format!("`{sum}`"),
            (None, None) => String::new(),
        };
        if !r.args.is_empty() {
            detail = format!("flags `{}`; {detail}", r.args.join(" "));
        }
        if let Some(command) = &r.command {
            detail = external::server_detail(r, command, detail);
        }
        if r.cgroup.is_some() && r.cpu_quota.is_none() {
            detail = format!("no CPU quota; {detail}");
        }
        putln!(
            s,
            "| {} | {} | {} | {} | {} |",
            r.style,
            r.phase,
            if r.started { "yes" } else { "**no**" },
            if r.stopped_cleanly {
                "yes"
            } else if r.managed_by == "none" {
                "n/a (not started by loadgen)"
            } else {
                "**no**"
            },
            detail
        );
    }
    s.push('\n');
}

fn trust_section(s: &mut String, results: &CompareResults) {
    // A capacity search pushes each style until a step fails: its steps'
    // verdicts are in the capacity section, not among the runs to distrust.
    let judged = |r: &&RunResult| !is_step(r);
    let bound: Vec<&RunResult> = results
        .runs
        .iter()
        .filter(judged)
        .filter(|r| r.client.client_bound)
        .collect();
    let failed: Vec<&RunResult> = results
        .runs
        .iter()
        .filter(judged)
        .filter(|r| !r.outcome.ok)
        .collect();
    let stretched: Vec<(&RunResult, String)> = results
        .runs
        .iter()
        .filter_map(|r| Some((r, sampling_note(r.server.as_ref()?)?)))
        .collect();
    putln!(s, "## Runs to read with care\n");
    if results.runs.iter().any(is_step) {
        putln!(
            s,
            "Capacity search steps are left out here: past each style's capacity they fail by design, and the \
             capacity section gives each one's verdict.\n"
        );
    }
    if bound.is_empty() {
        putln!(s, "No run was client-bound.\n");
    } else {
        putln!(
            s,
            "Client-bound (loadgen's busiest thread over 90% busy; side by side, its two runs' threads together, \
             on one client CPU):\n"
        );
        let view = crate::report::view::View::new(results);
        for r in bound {
            let with = view
                .partner(r)
                .map(|p| {
                    format!(
                        " (side by side: {:.0}% with its partner's thread)",
                        (r.client.busy_max + p.client.busy_max) * 100.0
                    )
                })
                .unwrap_or_default();
            putln!(
                s,
                "- {}: {:.0}% busy{with}",
                r.label.as_deref().unwrap_or("run"),
                r.client.busy_max * 100.0
            );
        }
        s.push('\n');
    }
    if !stretched.is_empty() {
        putln!(
            s,
            "Server figures sampled less often than every 100 ms (reading a large process tree from /proc \
             costs CPU on loadgen's side, so it is spaced out to stay within budget; peaks may be missed):\n"
        );
        for (r, note) in stretched {
            putln!(s, "- {}: {note}", r.label.as_deref().unwrap_or("run"));
        }
        s.push('\n');
    }
    if failed.is_empty() {
        putln!(s, "No run failed.");
    } else {
        putln!(s, "Failed runs:\n");
        for r in failed {
            putln!(
                s,
                "- {}: {}",
                r.label.as_deref().unwrap_or("run"),
                r.outcome.reasons.join("; ")
            );
        }
    }
}
