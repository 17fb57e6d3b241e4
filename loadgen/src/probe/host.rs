//! The machine a run measures on, read from /proc and the scheduler: the
//! [`Fingerprint`] every result carries, the load average, CPU sets.

use crate::results::fingerprint::Fingerprint;

/// Reads the machine's fingerprint; `server_pid` adds the server's CPU set.
pub fn fingerprint(server_pid: Option<u32>) -> Fingerprint {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .ok()
    };
    let cpu_model = read("/proc/cpuinfo")
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let fd_limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(0);
    Fingerprint {
        kernel: read("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
        cpu_model,
        cores: online_cpus(),
        loadgen_version: env!("CARGO_PKG_VERSION").into(),
        git_revision: option_env!("LOADGEN_GIT_REVISION")
            .unwrap_or("unknown")
            .into(),
        fd_limit,
        somaxconn: read("/proc/sys/net/core/somaxconn").and_then(|v| v.parse().ok()),
        loadgen_cpus: affinity(0).unwrap_or_default(),
        server_cpus: server_pid.and_then(|pid| affinity(pid as i32)),
        hostname: read("/proc/sys/kernel/hostname").unwrap_or_default(),
        load_average: load_average(),
    }
}

/// The machine's load averages (1, 5, 15 minutes).
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

fn online_cpus() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 { n as usize } else { 1 }
}

/// CPUs a process (0 = this one) may run on.
pub fn affinity(pid: i32) -> Option<Vec<usize>> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(pid)).ok()?;
    Some(
        (0..nix::sched::CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
    )
}
