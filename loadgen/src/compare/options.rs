//! `compare`'s options and the parsers of their flags' values
//! (`--target`, CPU lists).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use nix::sched::CpuSet;

use crate::compare::guard::Guard;
use crate::compare::model::{ExternalServer, Scenario};
use crate::compare::profile::Profile;

/// `loadgen compare`'s options.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    pub styles: Vec<String>,
    pub profile: Profile,
    /// `None`: this executable's `serve` subcommand.
    pub server_bin: Option<PathBuf>,
    pub server_cpus: Vec<usize>,
    pub client_cpus: Vec<usize>,
    /// Servers already running (containers): drive these instead of
    /// spawning processes. Empty: spawn.
    pub targets: Vec<TargetSpec>,
    /// With targets: the Docker API, to start each target's container just
    /// before its scenarios, stop it after, and sample it.
    pub docker: Option<crate::probe::docker::Docker>,
    /// How the client reaches the servers, for the report (e.g. "bridge").
    pub network: Option<String>,
    /// CPUs of CFS bandwidth per server (through its cgroup); None: none.
    pub server_cpu_quota: Option<f64>,
    /// True when the quota was asked for explicitly (then a machine
    /// without writable cgroups is an error, not a note).
    pub quota_required: bool,
    /// Rounds of every style, interleaved.
    pub repeat: u32,
    /// The process that stops the servers if compare dies before it can
    /// ([`crate::compare::guard`]); None: none runs.
    pub guard: Option<Arc<Guard>>,
    /// `--external` servers; each one's row is also in `styles`.
    pub externals: Vec<ExternalServer>,
}

impl CompareOptions {
    /// The external server whose row `style` is, if it is one.
    pub fn external(&self, style: &str) -> Option<&ExternalServer> {
        self.externals.iter().find(|e| e.row() == style)
    }
}

impl CompareOptions {
    /// Options for starting servers the way compare does, for a command
    /// that runs loads of its own on them (`loadgen soak`): spawned, no
    /// CPU quota, one round. The profile is never read then (it only
    /// gives a style's quota, and there is none).
    pub fn servers_only(
        styles: Vec<String>,
        server_bin: Option<PathBuf>,
        server_cpus: Vec<usize>,
        client_cpus: Vec<usize>,
        guard: Option<Arc<Guard>>,
    ) -> CompareOptions {
        CompareOptions {
            styles,
            profile: Profile::named("quick").expect("the quick profile exists"),
            server_bin,
            server_cpus,
            client_cpus,
            targets: Vec::new(),
            docker: None,
            network: None,
            server_cpu_quota: None,
            quota_required: false,
            repeat: 1,
            guard,
            externals: Vec::new(),
        }
    }
}

/// `--target STYLE=HOST:PORT[,fairness=HOST:PORT][,container=NAME][,fairness-container=NAME]`:
/// a running server of a style, and optionally the one started with
/// `--work-us` for fairness. With `--docker-socket` the containers default
/// to the HOST parts (container names are host names on a compose network).
#[derive(Clone, Debug, PartialEq)]
pub struct TargetSpec {
    pub style: String,
    pub addr: String,
    pub fairness_addr: Option<String>,
    pub container: Option<String>,
    pub fairness_container: Option<String>,
}

impl TargetSpec {
    /// The address and container of the server `scenario` runs on, where
    /// it needs one of its own ([`Profile::own_server`]).
    pub fn own_server(&self, scenario: Scenario) -> (Option<&str>, Option<&str>) {
        match scenario {
            Scenario::Fairness => (
                self.fairness_addr.as_deref(),
                self.fairness_container.as_deref(),
            ),
            // The style's own target: reach needs no flags of its own.
            Scenario::Reach => (Some(self.addr.as_str()), self.container.as_deref()),
            Scenario::Idle
            | Scenario::Scale
            | Scenario::Open
            | Scenario::Capacity
            | Scenario::Churn => (None, None),
        }
    }
}

/// Parses one `--target` value.
pub fn parse_target(s: &str) -> Result<TargetSpec, String> {
    let (style, rest) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: want STYLE=HOST:PORT[,fairness=HOST:PORT]"))?;
    let style = servers::Style::from_name(style.trim())
        .ok_or_else(|| format!("{s:?}: unknown style {style:?}"))?
        .name()
        .to_string();
    let mut parts = rest.split(',');
    let addr = parts.next().unwrap_or_default().trim().to_string();
    if !addr.contains(':') {
        return Err(format!("{s:?}: {addr:?} is not HOST:PORT"));
    }
    let (mut fairness_addr, mut container, mut fairness_container) = (None, None, None);
    for part in parts {
        match part.trim().split_once('=') {
            Some(("fairness", a)) if a.contains(':') => fairness_addr = Some(a.to_string()),
            Some(("container", n)) if !n.is_empty() => container = Some(n.to_string()),
            Some(("fairness-container", n)) if !n.is_empty() => {
                fairness_container = Some(n.to_string())
            }
            _ => {
                return Err(format!(
                    "{s:?}: {part:?} is not fairness=HOST:PORT, container=NAME or fairness-container=NAME"
                ));
            }
        }
    }
    Ok(TargetSpec {
        style,
        addr,
        fairness_addr,
        container,
        fairness_container,
    })
}

/// Parses a CPU list such as `0`, `1-3` or `0,2`.
pub fn parse_cpus(s: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (
                    a.parse()
                        .map_err(|_| format!("{part:?} is not a CPU range"))?,
                    b.parse()
                        .map_err(|_| format!("{part:?} is not a CPU range"))?,
                );
                if b < a {
                    return Err(format!("{part:?} is not an ascending range"));
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(
                part.parse()
                    .map_err(|_| format!("{part:?} is not a CPU number"))?,
            ),
        }
    }
    if cpus.is_empty() {
        return Err("no CPU given".into());
    }
    Ok(cpus)
}

pub fn cpuset(cpus: &[usize]) -> anyhow::Result<CpuSet> {
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c)
            .with_context(|| format!("CPU {c} does not exist here"))?;
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_fairness_and_containers() {
        let t = parse_target("threads=c10k-threads:7000,fairness=c10k-threads-fair:7000").unwrap();
        assert_eq!(t.style, "threads");
        assert_eq!(t.addr, "c10k-threads:7000");
        assert_eq!(t.fairness_addr.as_deref(), Some("c10k-threads-fair:7000"));
        let t = parse_target(
            "tasks=127.0.0.1:7106,container=c10k-tasks,fairness-container=c10k-tasks-fair",
        )
        .unwrap();
        assert_eq!(t.container.as_deref(), Some("c10k-tasks"));
        assert_eq!(t.fairness_container.as_deref(), Some("c10k-tasks-fair"));
        for bad in [
            "threads",
            "fibers=h:1",
            "threads=nohost",
            "threads=h:1,color=blue",
            "threads=h:1,fairness=x",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpus("0").unwrap(), vec![0]);
        assert_eq!(parse_cpus("1-3,5").unwrap(), vec![1, 2, 3, 5]);
        assert!(parse_cpus("3-1").is_err());
        assert!(parse_cpus("").is_err());
        assert!(parse_cpus("x").is_err());
    }
}
