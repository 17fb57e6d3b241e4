//! Where the kernel can count a server's tasks per CPU: a group in a
//! hierarchy with the `perf_event` controller, for
//! [`crate::probe::counters`] (`perf_event_open` on a cgroup instead of a
//! pid: one counter per CPU, none copied into each thread or process the
//! server makes, so a thread per connection does not pay for being
//! counted).
//!
//! On cgroup v2 that is the server's group itself. On v1 it is a group of
//! the same name in the `perf_event` hierarchy where one is mounted; where
//! none is, the kernel offers the controller on the unified (v2) hierarchy
//! that hybrid systems mount (at /sys/fs/cgroup/unified), and the group
//! goes there, under loadgen's own. Where the kernel then refuses to count
//! on it, the counters fall back to following the tasks.

use std::fs;
use std::path::{Path, PathBuf};

/// On a v1 machine, loadgen's own group in the unified hierarchy (the
/// `0::` line of /proc/self/cgroup), if one is mounted.
pub fn unified_own_dir(v2_mounts: &[PathBuf], own: &str) -> Option<PathBuf> {
    let point = v2_mounts
        .iter()
        .find(|p| p.ends_with("unified"))
        .or(v2_mounts.first())?;
    let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(point.join(path.trim_start_matches('/')))
}

/// Makes the v1 group `name`'s directory for counting under `base`
/// ([`crate::probe::cgroup::Layout::V1`]'s `perf`); Err: why there is none.
pub fn make_dir(base: Option<&Path>, name: &str) -> Result<PathBuf, String> {
    let base = base.ok_or(
        "no cgroup hierarchy with the perf_event controller is mounted (v1) and no unified one",
    )?;
    let dir = base.join(name);
    fs::create_dir(&dir)
        .map(|_| dir.clone())
        .map_err(|e| format!("creating {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hybrid_machine_counts_in_the_unified_hierarchy_under_loadgens_own_group() {
        let v2 = vec![PathBuf::from("/sys/fs/cgroup/unified")];
        assert_eq!(
            unified_own_dir(&v2, "4:memory:/a\n0::/session-1.scope\n"),
            Some(PathBuf::from("/sys/fs/cgroup/unified/session-1.scope"))
        );
        assert_eq!(
            unified_own_dir(&v2, "4:memory:/a\n0::/\n"),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(unified_own_dir(&v2, "4:memory:/a\n"), None);
        assert_eq!(unified_own_dir(&[], "0::/\n"), None);
    }

    #[test]
    fn without_a_perf_event_hierarchy_the_reason_is_given() {
        assert!(make_dir(None, "x").unwrap_err().contains("perf_event"));
    }
}
