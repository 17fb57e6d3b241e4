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

/// What a thread or process that could not be started (EAGAIN, which
/// names no limit) ran into, where a count is at its limit: this process's
/// memory maps against vm.max_map_count (a thread maps its stack, the
/// stack's guard, its signal stack and that one's guard), or the machine's
/// threads and processes against kernel.pid_max and kernel.threads-max.
/// Read once, when a start fails: the maps of 16,000 threads take a few
/// ms to list. Empty where none is near.
pub fn what_ran_out() -> String {
    let sysctl = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/{name}"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    let maps = std::fs::read("/proc/self/maps")
        .ok()
        .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64);
    if let (Some(maps), Some(max)) = (maps, sysctl("vm/max_map_count"))
        && maps + NEAR >= max
    {
        return format!("; this process holds {maps} memory maps of vm.max_map_count {max}");
    }
    let tasks = std::fs::read_to_string("/proc/loadavg").ok().and_then(|t| {
        t.split_whitespace()
            .nth(3)?
            .split('/')
            .nth(1)?
            .parse::<u64>()
            .ok()
    });
    let max = [sysctl("kernel/pid_max"), sysctl("kernel/threads-max")]
        .into_iter()
        .flatten()
        .min();
    match (tasks, max) {
        (Some(tasks), Some(max)) if tasks + NEAR >= max => format!(
            "; the machine runs {tasks} threads and processes of the {max} kernel.pid_max and kernel.threads-max allow"
        ),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_from_every_limit_nothing_is_named() {
        // A test process holds a few hundred maps and the machine a few
        // hundred tasks, far from 65,530 and 32,768.
        assert_eq!(what_ran_out(), "");
    }
}
