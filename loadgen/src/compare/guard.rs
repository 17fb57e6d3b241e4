//! The guard: a small process `compare` starts before any server, in a
//! session of its own, that stops the servers when compare cannot.
//!
//! compare stops its servers itself when it ends normally, on an error, on
//! Ctrl-C, SIGTERM or SIGHUP. What it cannot survive (SIGKILL, the OOM
//! killer, a panic that aborts) would leave them running, and with them a
//! `polling` server burning a CPU. Each server therefore gets
//! `PR_SET_PDEATHSIG` (it dies with compare) and a process group of its
//! own, and compare tells the guard, through a pipe, every process group
//! and cgroup it starts and every one it is done with. When the pipe
//! closes, which the kernel does however compare ends, the guard kills
//! what is still listed: the groups (a wrapper script's children, which
//! `PR_SET_PDEATHSIG` does not reach) and every process in the cgroups,
//! which it then removes. In a session of its own, a terminal's Ctrl-C or
//! hang-up does not reach it.
//!
//! The protocol is a line each: `group PGID`, `cgroup DIR`, and `done
//! group PGID` / `done cgroup DIR` once compare has stopped it itself.

use std::collections::BTreeSet;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::probe::cgroup_fs::{kill_dirs, remove_dir};

/// The running guard; dropping it ends it (after it has cleaned up).
pub struct Guard {
    child: Child,
    /// Closed on drop: the guard's signal to clean up and exit.
    pipe: Mutex<Option<ChildStdin>>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Guard(pid {})", self.child.id())
    }
}

impl Guard {
    /// Starts `exe guard` (the `loadgen` binary) in a new session.
    pub fn start(exe: &Path) -> io::Result<Guard> {
        let mut cmd = Command::new(exe);
        cmd.arg("guard")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: setsid(2) is async-signal-safe and touches no memory.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(io::Error::from)?;
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let pipe = child.stdin.take();
        Ok(Guard {
            child,
            pipe: Mutex::new(pipe),
        })
    }

    /// The guard's pid (tests use it to kill it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Tells the guard about a process group (a server's).
    pub fn watch_group(&self, pgid: u32) {
        self.say(&format!("group {pgid}"));
    }

    /// Tells the guard that process group `pgid` is gone.
    pub fn forget_group(&self, pgid: u32) {
        self.say(&format!("done group {pgid}"));
    }

    /// Tells the guard about a cgroup's directories.
    pub fn watch_dirs(&self, dirs: &[PathBuf]) {
        for d in dirs {
            self.say(&format!("cgroup {}", d.display()));
        }
    }

    /// Tells the guard that those directories are removed.
    pub fn forget_dirs(&self, dirs: &[PathBuf]) {
        for d in dirs {
            self.say(&format!("done cgroup {}", d.display()));
        }
    }

    /// One line to the guard. A guard that is gone cannot be told; the
    /// servers are still stopped by compare itself and by their
    /// death signal, so that is not an error of the run.
    fn say(&self, line: &str) {
        if let Ok(mut pipe) = self.pipe.lock()
            && let Some(p) = pipe.as_mut()
            && writeln!(p, "{line}").is_err()
        {
            *pipe = None;
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(mut pipe) = self.pipe.lock() {
            pipe.take();
        }
        // It has little to do by then (compare stopped everything): reap
        // it, bounded, so that it is not left a zombie of ours.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// What the guard still has to clean up.
#[derive(Debug, Default, PartialEq)]
pub struct Watched {
    pub groups: BTreeSet<u32>,
    pub dirs: BTreeSet<PathBuf>,
}

impl Watched {
    /// Applies one line of the protocol; unknown lines are ignored.
    pub fn apply(&mut self, line: &str) {
        let mut words = line.trim().splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("group"), Some(pgid), None) => {
                if let Ok(p) = pgid.parse() {
                    self.groups.insert(p);
                }
            }
            (Some("cgroup"), Some(dir), rest) => {
                let dir = rest.map_or(dir.to_string(), |r| format!("{dir} {r}"));
                self.dirs.insert(PathBuf::from(dir));
            }
            (Some("done"), Some("group"), Some(pgid)) => {
                if let Ok(p) = pgid.parse::<u32>() {
                    self.groups.remove(&p);
                }
            }
            (Some("done"), Some("cgroup"), Some(dir)) => {
                self.dirs.remove(Path::new(dir));
            }
            _ => {}
        }
    }
}

/// The guard process (`loadgen guard`): reads the protocol from `input`
/// until it closes, then kills and removes what is still listed.
pub fn run(input: impl BufRead) -> Watched {
    let mut watched = Watched::default();
    for line in input.lines() {
        match line {
            Ok(l) => watched.apply(&l),
            Err(_) => break,
        }
    }
    for &pgid in &watched.groups {
        // SIGKILL to the whole group: compare is gone, nobody waits for a
        // clean summary any more.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let dirs: Vec<PathBuf> = watched.dirs.iter().cloned().collect();
    kill_dirs(&dirs, Duration::from_secs(2));
    for d in &dirs {
        remove_dir(d);
    }
    watched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_lists_and_unlists() {
        let mut w = Watched::default();
        for line in [
            "group 12",
            "group 13",
            "cgroup /sys/fs/cgroup/cpu/c10k-echo-1-0-epoll main",
            "done group 12",
            "nonsense",
            "group x",
        ] {
            w.apply(line);
        }
        assert_eq!(w.groups, BTreeSet::from([13]));
        assert_eq!(
            w.dirs,
            BTreeSet::from([PathBuf::from("/sys/fs/cgroup/cpu/c10k-echo-1-0-epoll main")])
        );
        w.apply("done cgroup /sys/fs/cgroup/cpu/c10k-echo-1-0-epoll main");
        assert!(w.dirs.is_empty());
    }
}
