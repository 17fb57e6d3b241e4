//! Process limits: the open-files limit decides how many connections a
//! server or client can hold, so it is raised at start-up and reported.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// The open-files limit before and after [`raise_nofile_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NofileLimit {
    pub before: u64,
    pub soft: u64,
    pub hard: u64,
}

impl NofileLimit {
    /// True when the soft limit was raised.
    pub fn raised(&self) -> bool {
        self.soft > self.before
    }
}

/// Raises the RLIMIT_NOFILE soft limit to the hard limit.
pub fn raise_nofile_limit() -> nix::Result<NofileLimit> {
    let (before, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if before < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    Ok(NofileLimit { before, soft, hard })
}

/// Within this many of a count's limit, the count is at it (a thread's
/// maps, other processes' tasks come and go).
const NEAR: u64 = 64;

/// Whether `count` is at `limit` (within [`NEAR`] of it): how the servers'
/// log lines and loadgen's reach read a count against its limit alike.
pub fn at_limit(count: u64, limit: u64) -> bool {
    count + NEAR >= limit
}

/// A numeric sysctl (`vm/max_map_count`, `kernel/pid_max`); None where
/// not readable.
pub fn sysctl(name: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/sys/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The memory maps of process `pid` ("self" for this one): one line of
/// /proc/PID/maps each.
pub fn memory_maps(pid: &str) -> Option<u64> {
    let bytes = std::fs::read(format!("/proc/{pid}/maps")).ok()?;
    Some(bytes.iter().filter(|&&c| c == b'\n').count() as u64)
}

/// The machine's threads and processes: /proc/loadavg's fourth field,
/// "runnable/total".
pub fn machine_tasks() -> Option<u64> {
    tasks_of_loadavg(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

fn tasks_of_loadavg(text: &str) -> Option<u64> {
    text.split_whitespace()
        .nth(3)?
        .split('/')
        .nth(1)?
        .parse()
        .ok()
}

/// The least of kernel.pid_max and kernel.threads-max: every thread takes
/// a pid.
pub fn tasks_max() -> Option<u64> {
    [sysctl("kernel/pid_max"), sysctl("kernel/threads-max")]
        .into_iter()
        .flatten()
        .min()
}

/// What a thread or process that could not be started (EAGAIN, which
/// names no limit) ran into, where a count is at its limit: this process's
/// memory maps against vm.max_map_count (a thread maps its stack, the
/// stack's guard, its signal stack and that one's guard), or the machine's
/// threads and processes against kernel.pid_max and kernel.threads-max.
/// Read once, when a start fails: the maps of 16,000 threads take a few
/// ms to list. Empty where none is near.
pub fn what_ran_out() -> String {
    if let (Some(maps), Some(max)) = (memory_maps("self"), sysctl("vm/max_map_count"))
        && at_limit(maps, max)
    {
        return format!("; this process holds {maps} memory maps of vm.max_map_count {max}");
    }
    match (machine_tasks(), tasks_max()) {
        (Some(tasks), Some(max)) if at_limit(tasks, max) => format!(
            "; the machine runs {tasks} threads and processes of the {max} kernel.pid_max and kernel.threads-max allow"
        ),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machines_tasks_are_loadavgs_total() {
        assert_eq!(tasks_of_loadavg("0.52 0.48 0.40 3/412 98765\n"), Some(412));
        assert_eq!(tasks_of_loadavg("0.52 0.48"), None);
        assert!(machine_tasks().is_some_and(|n| n >= 1));
        assert!(memory_maps("self").is_some_and(|n| n > 2));
        assert!(tasks_max().is_some_and(|n| n >= 301));
    }

    #[test]
    fn far_from_every_limit_nothing_is_named() {
        // A test process holds a few hundred maps and the machine a few
        // hundred tasks, far from 65,530 and 32,768.
        assert_eq!(what_ran_out(), "");
    }
}
