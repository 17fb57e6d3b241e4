//! The servers' cgroups for a comparison: whether they can be made here
//! (and what a killed run left), what a container was given, each style's
//! CPU quota, and the stop grace a quota calls for.

use std::time::Duration;

use crate::compare::model::{CgroupSetup, Scenario};
use crate::compare::options::CompareOptions;

/// Finds the cgroup layout and checks that a server's group can be made
/// (creating and removing one), after removing the groups a killed run left.
/// Where cgroups cannot be written the comparison goes on without them and
/// says so (on stderr now, in the report later), unless a quota was asked
/// for explicitly: then it stops, since the runs would not be what was asked.
pub fn cgroup_setup(
    opts: &CompareOptions,
    detected: Result<crate::probe::cgroup::Layout, crate::probe::cgroup::CgroupError>,
) -> anyhow::Result<(Option<crate::probe::cgroup::Layout>, Option<CgroupSetup>)> {
    use crate::probe::cgroup::{PERIOD_US, ServerCgroup, remove_leftovers};
    let mut setup = CgroupSetup {
        made_by: "loadgen".into(),
        cpu_quota: opts.server_cpu_quota,
        period_us: PERIOD_US,
        ..CgroupSetup::default()
    };
    let checked = detected.and_then(|layout| {
        let left = remove_leftovers(&layout);
        let probe = ServerCgroup::create(&layout, "probe", opts.server_cpu_quota)?;
        let sockets = probe.socket_accounting().map_err(String::from);
        Ok((layout, left, sockets))
    });
    match checked {
        Ok((layout, left, sockets)) => {
            setup.used = true;
            setup.version = Some(layout.version().into());
            setup.socket_accounting = Some(sockets.is_ok());
            let mut notes = Vec::new();
            if !left.is_empty() {
                let note = format!(
                    "removed {} cgroup(s) left by an earlier run that was killed: {}",
                    left.len(),
                    left.join(", ")
                );
                note!("loadgen: {note}");
                notes.push(note);
            }
            if let Err(e) = sockets {
                let note = format!(
                    "socket accounting could not be switched on ({e}): the kernel's share per \
                     connection leaves out the socket object and its buffers"
                );
                note!("loadgen: warning: {note}");
                notes.push(note);
            }
            setup.note = (!notes.is_empty()).then(|| notes.join("; "));
            Ok((Some(layout), Some(setup)))
        }
        Err(e) if opts.quota_required => Err(anyhow::anyhow!(
            "--server-cpu-quota needs a cgroup for each server, and none can be made here: {e} \
             (run as root on a machine with writable cgroups, or leave the quota out)"
        )),
        Err(e) => {
            let note = format!(
                "servers ran without cgroups of their own ({e}): no CPU quota{}, CPU from /proc \
                 samples, memory without the kernel's share",
                match opts.server_cpu_quota {
                    Some(q) => format!(" (the profile's {q} CPU was not applied)"),
                    None => String::new(),
                }
            );
            note!("loadgen: warning: {note}");
            setup.cpu_quota = None;
            setup.note = Some(note);
            Ok((None, Some(setup)))
        }
    }
}

/// A target's container: the one named, else its address's host (container
/// names are host names on a compose network).
pub fn container_name(container: Option<&str>, addr: &str) -> String {
    container.map(String::from).unwrap_or_else(|| {
        addr.rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(addr)
            .to_string()
    })
}

/// Containers' CPU quota, read back from the first target's container (the
/// compose files give every server the same).
pub fn container_setup(opts: &CompareOptions) -> Option<CgroupSetup> {
    let docker = opts.docker.as_ref()?;
    let t = opts.targets.first()?;
    let name = container_name(t.container.as_deref(), &t.addr);
    let mut setup = CgroupSetup {
        made_by: "docker".into(),
        ..CgroupSetup::default()
    };
    match docker.cpu_quota(&name) {
        Ok(q) => {
            setup.cpu_quota = q.map(|(cpus, _)| cpus);
            setup.period_us = q.map(|(_, p)| p).unwrap_or(0);
        }
        Err(e) => {
            setup.note = Some(format!(
                "the containers' CPU quota could not be read: {e:#}"
            ))
        }
    }
    Some(setup)
}

/// The quota of `style`'s server (for `scenario`'s own server, where it
/// has one): the one given on the command line for every style and
/// scenario; else the profile's plan for the style (perf runs `polling`
/// without) and the scenario (fairness runs without), unless
/// `--server-cpu-quota none` turned it off.
pub fn quota_for(opts: &CompareOptions, style: &str, scenario: Option<Scenario>) -> Option<f64> {
    if opts.quota_required {
        return opts.server_cpu_quota;
    }
    let p = opts.profile.for_style(style);
    opts.server_cpu_quota
        .and(p.server_cpu_quota)
        .filter(|_| scenario.is_none_or(|sc| p.quota_in(sc)))
}

/// How long a server gets to stop after SIGTERM: 5 s of a whole CPU, so
/// longer in a quota (10 s at 0.5: ending 10,000 threads takes CPU too).
pub fn stop_grace(quota: Option<f64>) -> Duration {
    let share = quota.unwrap_or(1.0).clamp(0.1, 1.0);
    Duration::from_secs_f64(5.0 / share)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_gives_a_longer_grace() {
        assert_eq!(stop_grace(None), Duration::from_secs(5));
        assert_eq!(stop_grace(Some(2.0)), Duration::from_secs(5));
        assert_eq!(stop_grace(Some(0.5)), Duration::from_secs(10));
        assert_eq!(stop_grace(Some(0.01)), Duration::from_secs(50));
    }
}
