//! The cgroup filesystem as [`crate::probe::cgroup`] uses it: reading a
//! figure, writing a setting, the processes in a group, killing them and
//! removing the group, with the error every step reports.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No usable cgroup hierarchy (not mounted, not root, read-only...).
    #[error("{0}")]
    Unavailable(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

pub fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> CgroupError {
    let what = what.into();
    move |source| CgroupError::Io { what, source }
}

pub fn enable_v2_controllers(root: &Path) -> Result<(), CgroupError> {
    let control = root.join("cgroup.subtree_control");
    let enabled = fs::read_to_string(&control).unwrap_or_default();
    for ctrl in ["cpu", "memory"] {
        if !enabled.split_whitespace().any(|c| c == ctrl) {
            write(&control, &format!("+{ctrl}"))?;
        }
    }
    Ok(())
}

/// Switches cgroup v1's socket accounting on for the memory group `dir`:
/// until a limit is written to `memory.kmem.tcp.limit_in_bytes`, a v1
/// group is charged neither its sockets' buffers nor (on kernels that
/// charge it at accept) the accepted socket object itself, so the kernel's
/// share of an idle connection would miss its largest part. Any write
/// turns it on for the group; "-1" is no limit. It must happen before the
/// server joins: sockets made earlier stay uncharged.
pub fn enable_v1_socket_accounting(dir: &Path) -> Result<(), CgroupError> {
    write(&dir.join("memory.kmem.tcp.limit_in_bytes"), "-1")
}

/// The kernel's share in a v2 `memory.stat`: its `kernel` line (Linux
/// 5.18+), else the sum of the kernel parts older kernels list.
pub fn v2_kernel_bytes(stat: &str) -> Option<u64> {
    stat_field(stat, "kernel").or_else(|| {
        let parts = ["kernel_stack", "pagetables", "percpu", "sock", "slab"];
        let vals: Vec<u64> = parts.iter().filter_map(|p| stat_field(stat, p)).collect();
        (!vals.is_empty()).then(|| vals.iter().sum())
    })
}

/// `name value` in a stat file.
pub fn stat_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == name).then(|| v.trim().parse().ok()).flatten()
    })
}

pub fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(io_err(format!("writing {value:?} to {}", path.display())))
}

/// The processes in any of `dirs`, each once.
pub fn procs_in(dirs: &[PathBuf]) -> Vec<u32> {
    let mut pids: Vec<u32> = dirs
        .iter()
        .filter_map(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|t| {
            t.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

pub fn kill_dirs(dirs: &[PathBuf], limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    let mut killed = std::collections::HashSet::new();
    loop {
        let pids = procs_in(dirs);
        if pids.is_empty() || Instant::now() >= deadline {
            return killed.len();
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            killed.insert(pid);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// rmdir, retried briefly: a group whose last task just died can be busy
/// for a moment.
pub fn remove_dir(dir: &Path) {
    for _ in 0..100 {
        match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The open `cgroup.procs` files of a group, for a child to write itself
/// into between fork and exec.
#[derive(Debug)]
pub struct Placement {
    fds: Vec<OwnedFd>,
}

impl Placement {
    pub fn new(fds: Vec<OwnedFd>) -> Placement {
        Placement { fds }
    }

    /// The raw descriptors, for a `pre_exec` closure (which must not
    /// allocate): valid while `self` lives.
    pub fn raw(&self) -> Vec<i32> {
        self.fds.iter().map(|f| f.as_raw_fd()).collect()
    }

    /// In the child, between fork and exec: writes "0" (the calling
    /// process) into each file. Async-signal-safe: only write(2).
    pub fn enter(fds: &[i32]) -> io::Result<()> {
        for &fd in fds {
            // SAFETY: `fd` is one of the descriptors `raw` returned, open
            // in the parent when it forked and so in this child; the buffer
            // is a static byte.
            let n = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
            if n != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}
