//! A cgroup of its own for each server `loadgen compare` starts: a CPU
//! quota that makes the run server-bound, and exact figures of what the
//! server cost (CPU time of every process in it, memory with the kernel's
//! share) instead of sampled ones.
//!
//! Both layouts are handled. cgroup v1: one directory in each of the `cpu`,
//! `cpuacct` and `memory` hierarchies (separate or co-mounted), created
//! under the cgroup loadgen itself is in; figures from `cpuacct.usage`,
//! `cpu.stat`, `memory.usage_in_bytes`, `memory.kmem.usage_in_bytes`,
//! with socket accounting switched on in each memory group before the
//! server joins it (off by default on v1; on v2 it always is).
//! cgroup v2: one directory under the hierarchy's root (a non-root v2 group
//! with processes cannot have controlled children); figures from
//! `cpu.stat`, `memory.current`, `memory.stat`.
//!
//! Groups are named `c10k-echo-<loadgen pid>-<n>-<label>`, so that a later
//! run can tell a leftover of a loadgen that died (its pid is gone) from a
//! group another loadgen is using now ([`remove_leftovers`]). Dropping a
//! [`ServerCgroup`] kills whatever still runs in it and removes it.
//!
//! A server is put into its group between fork and exec ([`Placement`]):
//! the child writes "0" (itself) into each `cgroup.procs`, so every thread
//! and process it ever starts is inside from the first instruction.
//!
//! Written here rather than with `cgroups-rs` (0.5.1 builds here): that
//! crate pulls in D-Bus (`zbus`) and a second `nix`, and moves a process by
//! pid once it runs, where a server that forks at start must be placed
//! before exec.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use crate::probe::cgroup_fs::{CgroupError, Placement, stat_field, v2_kernel_bytes};
use crate::probe::cgroup_fs::{
    enable_v1_socket_accounting, enable_v2_controllers, io_err, kill_dirs, procs_in, read_u64,
    remove_dir, write,
};

/// Every group this project creates starts with this.
pub const PREFIX: &str = "c10k-echo-";

/// CFS bandwidth period for a quota, µs. Short on purpose: a throttled
/// group waits for the next period, so with the kernel's default 100 ms a
/// server at half a CPU would stall for ~50 ms at a time and the tail
/// latency would show the quota, not the style; 10 ms bounds a stall at
/// 5 ms (at 0.5) for a scheduler cost that is still negligible.
pub const PERIOD_US: u64 = 10_000;

/// A server is settled when it uses at most this share of a CPU more than
/// it did idle.
pub const SETTLE_MARGIN: f64 = 0.05;

/// Where this machine's cgroups are, and where loadgen's own groups are.
#[derive(Clone, Debug, PartialEq)]
pub enum Layout {
    /// Directories (mount point + loadgen's own group) under which a
    /// server's groups go; `cpu` and `cpuacct` may be one directory.
    V1 {
        cpu: PathBuf,
        cpuacct: PathBuf,
        memory: PathBuf,
        /// Where a server's `perf_event` group goes, for its kernel
        /// counters ([`crate::probe::cgroup_perf`]); None: nowhere.
        perf: Option<PathBuf>,
    },
    /// The unified hierarchy's root.
    V2 { root: PathBuf },
}

impl Layout {
    /// Reads /proc/self/mountinfo and /proc/self/cgroup.
    pub fn detect() -> Result<Layout, CgroupError> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .map_err(io_err("reading /proc/self/mountinfo"))?;
        let own =
            fs::read_to_string("/proc/self/cgroup").map_err(io_err("reading /proc/self/cgroup"))?;
        Layout::parse(&mountinfo, &own).map_err(CgroupError::Unavailable)
    }

    /// The layout from the text of mountinfo and /proc/self/cgroup: v1 when
    /// `cpu`, `cpuacct` and `memory` hierarchies are mounted, else v2 when
    /// a cgroup2 file system is mounted at /sys/fs/cgroup (or anywhere).
    pub fn parse(mountinfo: &str, own: &str) -> Result<Layout, String> {
        let mut v1: Vec<(Vec<String>, PathBuf, String)> = Vec::new();
        let mut v2: Vec<PathBuf> = Vec::new();
        for line in mountinfo.lines() {
            // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let fields: Vec<&str> = left.split_whitespace().collect();
            let rfields: Vec<&str> = right.split_whitespace().collect();
            if fields.len() < 5 || rfields.is_empty() {
                continue;
            }
            let (root, point) = (fields[3], PathBuf::from(fields[4]));
            match rfields[0] {
                "cgroup" => {
                    let opts: Vec<String> = rfields
                        .get(2)
                        .unwrap_or(&"")
                        .split(',')
                        .map(String::from)
                        .collect();
                    v1.push((opts, point, root.to_string()));
                }
                "cgroup2" => v2.push(point),
                _ => {}
            }
        }
        // A controller's own group: "N:ctrl1,ctrl2:/path" in /proc/self/cgroup.
        let own_path = |ctrl: &str| -> String {
            own.lines()
                .filter_map(|l| {
                    let mut parts = l.splitn(3, ':');
                    let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
                    ctrls
                        .split(',')
                        .any(|c| c == ctrl)
                        .then(|| path.to_string())
                })
                .next()
                .unwrap_or_else(|| "/".into())
        };
        let v1_dir = |ctrl: &str| -> Option<PathBuf> {
            let (_, point, root) = v1
                .iter()
                .find(|(opts, _, _)| opts.iter().any(|o| o == ctrl))?;
            // The mount shows the hierarchy from `root` down (a container
            // sees its own group as "/"): our path is relative to it.
            let own = own_path(ctrl);
            let rel = own
                .strip_prefix(root.as_str())
                .unwrap_or(&own)
                .trim_start_matches('/');
            Some(point.join(rel))
        };
        if let (Some(cpu), Some(cpuacct), Some(memory)) =
            (v1_dir("cpu"), v1_dir("cpuacct"), v1_dir("memory"))
        {
            let perf = v1_dir("perf_event")
                .or_else(|| crate::probe::cgroup_perf::unified_own_dir(&v2, own));
            return Ok(Layout::V1 {
                cpu,
                cpuacct,
                memory,
                perf,
            });
        }
        let root = v2
            .iter()
            .find(|p| p.as_path() == Path::new("/sys/fs/cgroup"))
            .or(v2.first())
            .cloned()
            .ok_or_else(|| {
                "no cgroup hierarchy with the cpu, cpuacct and memory controllers (v1) \
                 and no cgroup2 file system is mounted"
                    .to_string()
            })?;
        Ok(Layout::V2 { root })
    }

    pub fn version(&self) -> &'static str {
        match self {
            Layout::V1 { .. } => "v1",
            Layout::V2 { .. } => "v2",
        }
    }

    /// The directories under which groups are made, each once.
    pub fn bases(&self) -> Vec<PathBuf> {
        match self {
            Layout::V1 {
                cpu,
                cpuacct,
                memory,
                ..
            } => {
                let mut v = vec![cpu.clone()];
                for p in [cpuacct, memory] {
                    if !v.contains(p) {
                        v.push(p.clone());
                    }
                }
                v
            }
            Layout::V2 { root } => vec![root.clone()],
        }
    }
}

/// One reading of a server's group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// CPU time of every task that ran in the group (user + system), ns.
    pub cpu_ns: u64,
    /// Periods in which the quota ran out, and the time spent throttled.
    pub throttled_periods: Option<u64>,
    pub throttled_ns: Option<u64>,
    /// Memory charged to the group, kernel included where accounted.
    pub memory_bytes: Option<u64>,
    /// The kernel's part of it (sockets, slab, stacks...); None where the
    /// kernel does not account it (v1 without kmem accounting).
    pub kernel_bytes: Option<u64>,
    /// Socket buffers charged to the group: v1's
    /// `memory.kmem.tcp.usage_in_bytes` (a counter apart from
    /// `memory_bytes`), v2's `memory.stat` `sock` (inside it).
    #[serde(default)]
    pub sock_bytes: Option<u64>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A server's group: created empty, removed (after killing what is left
/// in it) on drop.
#[derive(Debug)]
pub struct ServerCgroup {
    layout: Layout,
    name: String,
    /// One per hierarchy the group is in.
    dirs: Vec<PathBuf>,
    quota: Option<f64>,
    /// Whether the kernel charges the group its sockets, or why not.
    socket_accounting: Result<(), String>,
    /// The group's directory in a hierarchy with the `perf_event`
    /// controller, for counting its tasks per CPU, or why there is none.
    perf_dir: Result<PathBuf, String>,
}

impl ServerCgroup {
    /// Creates `c10k-echo-<pid>-<n>-<label>` with `quota` CPUs of CFS
    /// bandwidth (e.g. 0.5), or none.
    pub fn create(
        layout: &Layout,
        label: &str,
        quota: Option<f64>,
    ) -> Result<ServerCgroup, CgroupError> {
        let label: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(40)
            .collect();
        let name = format!(
            "{PREFIX}{}-{}-{label}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut group = ServerCgroup {
            layout: layout.clone(),
            name: name.clone(),
            dirs: Vec::new(),
            quota,
            socket_accounting: Ok(()),
            perf_dir: Err(String::new()),
        };
        if let Layout::V2 { root } = layout {
            enable_v2_controllers(root)?;
        }
        for base in layout.bases() {
            let dir = base.join(&name);
            fs::create_dir(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
            // Pushed at once: a later failure drops (removes) what was made.
            group.dirs.push(dir);
        }
        if let Some(q) = quota {
            group.set_quota(q)?;
        }
        // Not fatal: without it the group still counts CPU and the rest of
        // its memory, and the results say the sockets were not charged.
        if let Layout::V1 { memory, .. } = layout {
            group.socket_accounting =
                enable_v1_socket_accounting(&memory.join(&name)).map_err(|e| e.to_string());
        }
        // Not fatal either: the counters then follow the server's tasks.
        group.perf_dir = match layout {
            Layout::V2 { root } => Ok(root.join(&name)),
            Layout::V1 { perf, .. } => crate::probe::cgroup_perf::make_dir(perf.as_deref(), &name),
        };
        if let (Layout::V1 { .. }, Ok(dir)) = (layout, &group.perf_dir) {
            group.dirs.push(dir.clone());
        }
        Ok(group)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its directories, one per hierarchy.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    pub fn version(&self) -> &'static str {
        self.layout.version()
    }

    /// The group's directory where the kernel can count its tasks per CPU
    /// (`perf_event`), or why there is none.
    pub fn perf_dir(&self) -> Result<&Path, &str> {
        self.perf_dir.as_deref().map_err(|e| e.as_str())
    }

    pub fn quota(&self) -> Option<f64> {
        self.quota
    }

    /// Whether the group is charged its sockets (the accepted socket
    /// object and its buffers), or why not: switched on at creation on v1,
    /// always on for v2.
    pub fn socket_accounting(&self) -> Result<(), &str> {
        self.socket_accounting
            .as_ref()
            .map(|_| ())
            .map_err(|e| e.as_str())
    }

    /// Takes the CPU quota off: a server being stopped is not measured, and
    /// ending thousands of threads or processes inside a quarter of a CPU
    /// (their inherited kernel counters folded back at each exit) can take
    /// longer than its grace.
    pub fn lift_quota(&self) -> Result<(), CgroupError> {
        match &self.layout {
            Layout::V1 { cpu, .. } => write(&cpu.join(&self.name).join("cpu.cfs_quota_us"), "-1"),
            Layout::V2 { root } => write(
                &root.join(&self.name).join("cpu.max"),
                &format!("max {PERIOD_US}"),
            ),
        }
    }

    fn set_quota(&self, cpus: f64) -> Result<(), CgroupError> {
        if !(cpus.is_finite() && cpus > 0.0) {
            return Err(CgroupError::Unavailable(format!(
                "CPU quota {cpus} is not a positive number of CPUs"
            )));
        }
        // The kernel's floor is 1 ms of run time per period.
        let quota_us = ((cpus * PERIOD_US as f64).round() as u64).max(1000);
        match &self.layout {
            Layout::V1 { cpu, .. } => {
                let dir = cpu.join(&self.name);
                write(&dir.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
                write(&dir.join("cpu.cfs_quota_us"), &quota_us.to_string())
            }
            Layout::V2 { root } => write(
                &root.join(&self.name).join("cpu.max"),
                &format!("{quota_us} {PERIOD_US}"),
            ),
        }
    }

    /// What a child needs to put itself into this group between fork and
    /// exec: the group's `cgroup.procs` files, open for writing.
    pub fn placement(&self) -> Result<Placement, CgroupError> {
        let mut fds = Vec::new();
        for dir in &self.dirs {
            let path = dir.join("cgroup.procs");
            let f = fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io_err(format!("opening {}", path.display())))?;
            fds.push(OwnedFd::from(f));
        }
        Ok(Placement::new(fds))
    }

    /// Moves a running process (all its threads) into the group.
    pub fn add(&self, pid: u32) -> Result<(), CgroupError> {
        for dir in &self.dirs {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// The processes in the group now.
    pub fn pids(&self) -> Vec<u32> {
        procs_in(&self.dirs)
    }

    /// Reads the group's counters; None when the CPU counter cannot be read
    /// (the group is gone).
    pub fn read(&self) -> Option<Reading> {
        match &self.layout {
            Layout::V1 {
                cpuacct,
                cpu,
                memory,
                ..
            } => {
                let cpu_ns = read_u64(&cpuacct.join(&self.name).join("cpuacct.usage"))?;
                let stat =
                    fs::read_to_string(cpu.join(&self.name).join("cpu.stat")).unwrap_or_default();
                let mem = memory.join(&self.name);
                // kmem accounting off (cgroup.memory=nokmem) reads 0 even
                // with a process in the group, which always has some.
                let kernel = read_u64(&mem.join("memory.kmem.usage_in_bytes")).filter(|&k| k > 0);
                Some(Reading {
                    cpu_ns,
                    throttled_periods: stat_field(&stat, "nr_throttled"),
                    throttled_ns: stat_field(&stat, "throttled_time"),
                    memory_bytes: read_u64(&mem.join("memory.usage_in_bytes")),
                    kernel_bytes: kernel,
                    sock_bytes: read_u64(&mem.join("memory.kmem.tcp.usage_in_bytes")),
                })
            }
            Layout::V2 { root } => {
                let dir = root.join(&self.name);
                let stat = fs::read_to_string(dir.join("cpu.stat")).ok()?;
                let mstat = fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
                Some(Reading {
                    cpu_ns: stat_field(&stat, "usage_usec")? * 1000,
                    throttled_periods: stat_field(&stat, "nr_throttled"),
                    throttled_ns: stat_field(&stat, "throttled_usec").map(|u| u * 1000),
                    memory_bytes: read_u64(&dir.join("memory.current")),
                    kernel_bytes: v2_kernel_bytes(&mstat),
                    sock_bytes: stat_field(&mstat, "sock"),
                })
            }
        }
    }

    /// The share of a CPU the group used over the next `over`.
    pub fn busy(&self, over: Duration) -> Option<f64> {
        let (a, t0) = (self.read()?.cpu_ns, Instant::now());
        std::thread::sleep(over);
        let b = self.read()?.cpu_ns;
        Some(b.saturating_sub(a) as f64 / 1e9 / t0.elapsed().as_secs_f64())
    }

    /// Waits until the group is back to what it used idle (`idle`, a share
    /// of a CPU, plus [`SETTLE_MARGIN`]) over 100 ms, at most `limit`:
    /// what one run leaves the server doing (closing 10,000 connections,
    /// ending their threads) would otherwise be measured in the next, and
    /// inside a quota that can take seconds. Returns the time waited and
    /// whether it settled.
    pub fn settle(&self, idle: f64, limit: Duration) -> (Duration, bool) {
        let t0 = Instant::now();
        loop {
            match self.busy(Duration::from_millis(100)) {
                Some(b) if b <= idle + SETTLE_MARGIN => return (t0.elapsed(), true),
                None => return (t0.elapsed(), false),
                Some(_) if t0.elapsed() >= limit => return (t0.elapsed(), false),
                Some(_) => {}
            }
        }
    }

    /// SIGKILLs every process in the group until none is left (at most
    /// `limit`); returns how many were killed.
    pub fn kill_all(&self, limit: Duration) -> usize {
        kill_dirs(&self.dirs, limit)
    }
}

impl Drop for ServerCgroup {
    fn drop(&mut self) {
        kill_dirs(&self.dirs, Duration::from_secs(2));
        for dir in &self.dirs {
            remove_dir(dir);
        }
    }
}

/// Removes the groups of loadgen processes that are gone (a killed run),
/// after killing whatever still runs in them. Returns their names.
pub fn remove_leftovers(layout: &Layout) -> Vec<String> {
    let mut removed = Vec::new();
    for base in layout.bases().into_iter().chain(match layout {
        Layout::V1 { perf, .. } => perf.clone(),
        Layout::V2 { .. } => None,
    }) {
        let Ok(entries) = fs::read_dir(&base) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(owner) = leftover_owner(&name) else {
                continue;
            };
            if Path::new(&format!("/proc/{owner}")).exists() {
                continue;
            }
            let dir = e.path();
            kill_dirs(std::slice::from_ref(&dir), Duration::from_secs(2));
            remove_dir(&dir);
            if !removed.contains(&name) {
                removed.push(name);
            }
        }
    }
    removed
}

/// The loadgen pid in a group name of ours.
pub fn leftover_owner(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn v1_groups_go_under_loadgens_own() {
        let own = "4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n";
        let l = Layout::parse(V1_MOUNTS, own).unwrap();
        assert_eq!(
            l,
            Layout::V1 {
                cpu: "/sys/fs/cgroup/cpu".into(),
                cpuacct: "/sys/fs/cgroup/cpuacct".into(),
                memory: "/sys/fs/cgroup/memory/process_api/abc".into(),
                perf: Some("/sys/fs/cgroup/unified".into()),
            }
        );
        assert_eq!(l.bases().len(), 3);
    }

    #[test]
    fn co_mounted_cpu_and_cpuacct_are_one_directory() {
        let mounts = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
        let own = "3:cpu,cpuacct:/user.slice\n2:memory:/user.slice\n";
        let l = Layout::parse(mounts, own).unwrap();
        assert_eq!(
            l.bases(),
            vec![
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/user.slice"),
                PathBuf::from("/sys/fs/cgroup/memory/user.slice"),
            ]
        );
    }

    #[test]
    fn a_pure_v2_machine_uses_the_root() {
        let mounts = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let l = Layout::parse(mounts, "0::/user.slice/session-1.scope\n").unwrap();
        assert_eq!(
            l,
            Layout::V2 {
                root: "/sys/fs/cgroup".into()
            }
        );
        assert!(Layout::parse("", "").is_err(), "no cgroups at all");
    }

    #[test]
    fn a_mounted_v1_perf_event_hierarchy_is_counted_on_before_the_unified_one() {
        let mounts = format!(
            "{V1_MOUNTS}36 31 0:33 / /sys/fs/cgroup/perf_event rw - cgroup cgroup rw,perf_event\n"
        );
        let own = "5:perf_event:/ci\n4:memory:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";
        let Layout::V1 { perf, .. } = Layout::parse(&mounts, own).unwrap() else {
            panic!("v1")
        };
        assert_eq!(perf, Some("/sys/fs/cgroup/perf_event/ci".into()));
    }

    #[test]
    fn stat_files_parse() {
        let stat = "usage_usec 1500\nuser_usec 1000\nnr_throttled 7\nthrottled_usec 42\n";
        assert_eq!(stat_field(stat, "usage_usec"), Some(1500));
        assert_eq!(stat_field(stat, "nr_throttled"), Some(7));
        assert_eq!(stat_field(stat, "usage"), None);
        assert_eq!(v2_kernel_bytes("anon 5\nkernel 300\nsock 20\n"), Some(300));
        assert_eq!(
            v2_kernel_bytes("anon 5\nkernel_stack 100\nslab 200\nsock 20\n"),
            Some(320)
        );
        assert_eq!(v2_kernel_bytes("anon 5\n"), None);
    }

    #[test]
    fn leftover_names_carry_their_owner() {
        assert_eq!(leftover_owner("c10k-echo-1234-0-epoll_main"), Some(1234));
        assert_eq!(leftover_owner("c10k-echo-x-0"), None);
        assert_eq!(leftover_owner("docker"), None);
    }
}
