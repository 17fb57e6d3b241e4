//! Processes seen through /proc, for tests and benches of both crates: the
//! conformance suite uses it as a module; loadgen's tests and the servers'
//! bench include this file by path, so there is one copy of each helper.

// Each includer uses its own part of these.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// The live children of a process (from every thread's children list).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        // A child that exited between the listing and the read is skipped.
        .filter(|p| std::path::Path::new(&format!("/proc/{p}/status")).exists())
        .collect()
}

/// Whether process `pid` runs: a zombie still has a /proc entry, but it
/// holds nothing and serves nothing, so it is not alive.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z")
        })
        .unwrap_or(false)
}

/// Polls `cond` every few ms until it holds or `limit` passes; whether it
/// held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
