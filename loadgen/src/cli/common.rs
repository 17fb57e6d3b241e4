//! What the commands share: their exit codes, the signals that stop them,
//! the guard that stops their servers, the CPUs loadgen takes, the
//! open-files limit, lines on stdout and the time stamps of output folders.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;

/// Exit status of a run that completed but failed (errors, dead server...).
pub const EXIT_FAILED: i32 = 1;
/// Exit status of a run interrupted by Ctrl-C (partial results printed).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Set by Ctrl-C, SIGTERM and SIGHUP: the command stops, writes what it
/// measured and exits 130.
pub(super) fn stop_flag() -> anyhow::Result<Arc<std::sync::atomic::AtomicBool>> {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&stop))
        .context("installing the Ctrl-C handler")?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))
        .context("installing the SIGTERM handler")?;
    // A closed terminal ends the run the same way: servers stopped, the
    // report written.
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&stop))
        .context("installing the SIGHUP handler")?;
    Ok(stop)
}

/// The guard that stops the servers of compare (or soak) should it die
/// first; a machine where it cannot start still runs them, and says so.
pub(super) fn start_guard() -> Option<Arc<crate::compare::guard::Guard>> {
    let started = std::env::current_exe().and_then(|exe| crate::compare::guard::Guard::start(&exe));
    match started {
        Ok(g) => Some(Arc::new(g)),
        Err(e) => {
            note!(
                "loadgen: warning: no guard process ({e}): servers die with loadgen \
                 (PR_SET_PDEATHSIG), but a wrapper script's children would not"
            );
            None
        }
    }
}

/// Loadgen's CPUs: `--client-cpus`, or every CPU this process may use but
/// the servers' (all of them, with a warning, if none is left); fails if
/// a server CPU is not one this process may use.
pub(super) fn client_cpus(
    server_cpus: &[usize],
    client: Option<&crate::cli::args::CpuList>,
) -> anyhow::Result<Vec<usize>> {
    let online = crate::probe::host::affinity(0).unwrap_or_default();
    for cpu in server_cpus {
        if !online.contains(cpu) {
            anyhow::bail!(
                "--server-cpus: CPU {cpu} is not available to this process (have {online:?})"
            );
        }
    }
    if let Some(list) = client {
        return Ok(list.0.clone());
    }
    let rest: Vec<usize> = online
        .iter()
        .copied()
        .filter(|c| !server_cpus.contains(c))
        .collect();
    if rest.is_empty() {
        note!(
            "loadgen: only CPU(s) {online:?} available: loadgen shares them with the servers, \
             so figures include the client's own load"
        );
        return Ok(online);
    }
    Ok(rest)
}

/// A line on stdout. A closed stdout (`| head -1`) is an error the command
/// returns (non-zero exit, after its servers are stopped and its report
/// written), never a panic.
pub(super) fn say(line: std::fmt::Arguments) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .context("writing to stdout")
}

/// `YYYYMMDDTHHMMSSZ` for a time, in UTC.
pub fn utc_stamp(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (year, month, day, h, m, s) = crate::results::civil_utc(secs);
    format!("{year:04}{month:02}{day:02}T{h:02}{m:02}{s:02}Z")
}

/// Raises the open-files limit and returns the soft limit now in force.
pub(super) fn servers_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
            note!("loadgen: raised the open-files limit from {soft} to {hard}");
            return hard;
        }
        return soft;
    }
    0
}

/// The exit code of a command refused because another comparison runs.
pub const EXIT_LOCKED: i32 = 2;

/// The machine-wide lock of a command that starts servers (compare,
/// soak), held until the returned value is dropped; `Err` is the exit
/// code when another one holds it (said on stderr, naming the holder).
/// `--allow-concurrent` takes no lock; `replica_dir`: a replica of
/// `compare --replicas` (shares its siblings' lock).
pub(super) fn machine_lock(
    command: &str,
    allow_concurrent: bool,
    replica_dir: Option<&std::path::Path>,
) -> anyhow::Result<Result<Option<crate::compare::lock::MachineLock>, i32>> {
    use crate::compare::lock::{LockError, take};
    if allow_concurrent {
        return Ok(Ok(None));
    }
    match take(replica_dir) {
        Ok(l) => Ok(Ok(Some(l))),
        Err(e @ LockError::Held { .. }) => {
            note!("loadgen {command}: {e}");
            Ok(Err(EXIT_LOCKED))
        }
        // Nowhere to put the lock (a container's read-only root with no
        // /run or /tmp): a lock there would not be machine-wide anyway.
        // Said, and the comparison runs.
        Err(e @ LockError::Io { .. }) => {
            note!(
                "loadgen {command}: warning: {e}: running without the one-comparison-at-a-time lock \
                 (set C10K_LOCK to a writable path to have one)"
            );
            Ok(Ok(None))
        }
    }
}
