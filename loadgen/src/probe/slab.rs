//! What the kernel holds for a server's connections, from the machine-wide
//! counters: the slab caches of a socket and its file (`/proc/slabinfo`)
//! and thread stacks and page tables (`/proc/meminfo`), read before the
//! run's first connection and once all of them are open (the server's
//! [`GroupWatch`](crate::probe::cgroup_watch::GroupWatch) takes the two
//! snapshots, the second inside the measured window, when the run's
//! [`Watch`](crate::probe::Watch) asks for them), turned into the
//! server's share per connection ([`breakdown`]). It cross-checks the
//! server's cgroup charge, which says how much but not what.
//!
//! The counters are the whole machine's, so two things are taken out:
//! - loadgen's own end of every connection. On loopback each connection
//!   is two sockets, one per end, and a socket costs the same objects at
//!   either end (a `TCP` object, a `sock_inode_cache` inode, its `filp`
//!   and `dentry`: `sock_alloc_file` makes every socket's file alike). So
//!   the server's part of those caches is the growth times the server's
//!   share of the new sockets, `(S - L) / S`, where S is the growth in
//!   `TCP` objects and L the growth in loadgen's own sockets, counted in
//!   /proc/self/fd. The epoll items are not symmetric (loadgen's are
//!   counted in its epoll files' fdinfo and subtracted), nor are stacks
//!   and page tables (loadgen's threads and `VmPTE`, from
//!   /proc/self/status).
//! - other processes' churn, which nothing can take out of machine-wide
//!   counters. Each snapshot is the median of [`READINGS`] readings, which
//!   drops a passing burst; the readings' spread and the server's sockets
//!   per connection (which must be 1: one accepted socket each) say when
//!   the machine was too busy for the figures to be the server's, and the
//!   breakdown says so rather than hide it.

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use crate::results::server::KernelBreakdown;

/// Readings per snapshot, and the gap between them.
pub const READINGS: usize = 5;
pub const GAP: Duration = Duration::from_millis(20);

/// A thread's kernel stack (THREAD_SIZE on x86-64 and arm64): what one of
/// loadgen's own threads adds to `KernelStack`.
pub const THREAD_STACK_BYTES: u64 = 16 * 1024;

/// The server's sockets per connection may be this far from 1 before the
/// breakdown is called disturbed.
pub const SOCKETS_TOLERANCE: f64 = 0.1;

/// The caches of a connection's socket, by the part they are reported as.
pub const TCP: &[&str] = &["TCP", "TCPv6"];
pub const SOCK_INODE: &[&str] = &["sock_inode_cache"];
pub const FILP: &[&str] = &["filp"];
pub const DENTRY: &[&str] = &["dentry"];
/// `eventpoll_pwq` only where the kernel still has it as a cache.
pub const EPOLL: &[&str] = &["eventpoll_epi", "eventpoll_pwq"];

/// loadgen's own part of the counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Own {
    pub sockets: u64,
    pub epoll_items: u64,
    pub threads: u64,
    pub page_tables_bytes: u64,
}

/// The counters at one moment (each the median of its readings).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Cache name -> (active objects, bytes per object), for the caches
    /// above that this kernel has.
    pub slabs: BTreeMap<String, (u64, u64)>,
    pub kernel_stack_bytes: Option<u64>,
    pub page_tables_bytes: Option<u64>,
    pub own: Own,
    /// Largest minus smallest `TCP` object count over the readings: other
    /// processes opening and closing sockets meanwhile.
    pub tcp_spread: u64,
}

/// `/proc/slabinfo`'s caches of interest: name -> (active objects, size).
pub fn parse_slabinfo(text: &str) -> BTreeMap<String, (u64, u64)> {
    let wanted = |n: &str| [TCP, SOCK_INODE, FILP, DENTRY, EPOLL].concat().contains(&n);
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("slabinfo"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // name active_objs num_objs objsize ...
            let (name, active, size) = (*f.first()?, f.get(1)?, f.get(3)?);
            wanted(name)
                .then(|| Some((name.to_string(), (active.parse().ok()?, size.parse().ok()?))))?
        })
        .collect()
}

/// A `Name:   123 kB` line of /proc/meminfo or /proc/PID/status, bytes.
pub fn kb_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == name).then(|| {
            v.split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
                .map(|kb| kb * 1024)
        })?
    })
}

/// loadgen's own sockets and epoll items (its fds), threads and page
/// tables. Its fds are looked at with fstat, not by listing
/// /proc/self/fd: a listing makes a `dentry` for every fd listed, which
/// would count in the `dentry` growth.
pub fn own() -> Own {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    };
    let mut own = Own {
        threads: field("Threads:"),
        page_tables_bytes: kb_field(&status, "VmPTE").unwrap_or(0),
        ..Own::default()
    };
    // Every fd is below the table's size.
    for fd in 0..field("FDSize:").min(i32::MAX as u64) as i32 {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstat only writes the struct it is given; an fd that is
        // not open fails with EBADF, and `st` is then not read.
        if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
            continue;
        }
        // SAFETY: fstat succeeded, so it filled `st`.
        let mode = unsafe { st.assume_init() }.st_mode & libc::S_IFMT;
        match mode {
            libc::S_IFSOCK => own.sockets += 1,
            // Anonymous inodes (epoll among them); the few others of
            // loadgen's fds are cheap to look at.
            libc::S_IFDIR | libc::S_IFCHR | libc::S_IFIFO => {}
            _ => {
                if let Ok(info) = fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) {
                    own.epoll_items +=
                        info.lines().filter(|l| l.starts_with("tfd:")).count() as u64;
                }
            }
        }
    }
    own
}

/// One snapshot: the median of [`READINGS`] readings [`GAP`] apart; an
/// error saying why where /proc/slabinfo cannot be read (it is root's).
pub fn snapshot() -> Result<Snapshot, String> {
    let mut readings = Vec::with_capacity(READINGS);
    for i in 0..READINGS {
        if i > 0 {
            std::thread::sleep(GAP);
        }
        let slab = fs::read_to_string("/proc/slabinfo")
            .map_err(|e| format!("cannot read /proc/slabinfo: {e}"))?;
        let mem = fs::read_to_string("/proc/meminfo").unwrap_or_default();
        readings.push((
            parse_slabinfo(&slab),
            kb_field(&mem, "KernelStack"),
            kb_field(&mem, "PageTables"),
        ));
    }
    Ok(median_of(&readings, own()))
}

type Reading = (BTreeMap<String, (u64, u64)>, Option<u64>, Option<u64>);

/// The median of each counter over `readings`.
pub fn median_of(readings: &[Reading], own: Own) -> Snapshot {
    fn median(mut v: Vec<u64>) -> Option<u64> {
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    }
    let mut slabs = BTreeMap::new();
    if let Some((first, _, _)) = readings.first() {
        for (name, &(_, size)) in first {
            let counts = readings
                .iter()
                .filter_map(|r| r.0.get(name).map(|c| c.0))
                .collect();
            if let Some(m) = median(counts) {
                slabs.insert(name.clone(), (m, size));
            }
        }
    }
    let tcp: Vec<u64> = readings
        .iter()
        .map(|r| TCP.iter().filter_map(|n| r.0.get(*n)).map(|c| c.0).sum())
        .collect();
    let tcp_spread = tcp.iter().max().unwrap_or(&0) - tcp.iter().min().unwrap_or(&0);
    Snapshot {
        slabs,
        kernel_stack_bytes: median(readings.iter().filter_map(|r| r.1).collect()),
        page_tables_bytes: median(readings.iter().filter_map(|r| r.2).collect()),
        own,
        tcp_spread,
    }
}

/// The server's share per connection between `before` (no connection yet)
/// and `after` (`conns` open), by the arithmetic in the module's docs.
pub fn breakdown(before: &Snapshot, after: &Snapshot, conns: usize) -> KernelBreakdown {
    let mut out = KernelBreakdown {
        conns: conns as u64,
        readings: READINGS as u32,
        ..KernelBreakdown::default()
    };
    if conns == 0 {
        out.unmeasured = Some("no connections".into());
        return out;
    }
    let n = conns as f64;
    // Growth of a cache set: (objects, bytes).
    let grew = |caches: &[&str]| -> Option<(f64, f64)> {
        let mut any = false;
        let (mut objs, mut bytes) = (0.0, 0.0);
        for c in caches {
            if let (Some(&(a, _)), Some(&(b, size))) = (before.slabs.get(*c), after.slabs.get(*c)) {
                any = true;
                let d = b as f64 - a as f64;
                objs += d;
                bytes += d * size as f64;
            }
        }
        any.then_some((objs, bytes))
    };
    let own_sockets = after.own.sockets as f64 - before.own.sockets as f64;
    let Some((sockets, tcp_bytes)) = grew(TCP).filter(|(s, _)| *s > 0.0) else {
        out.unmeasured = Some(
            "no TCP objects were added (no TCP cache, or other processes closed as many)".into(),
        );
        return out;
    };
    // The server's share of the sockets made meanwhile (see the docs).
    let server_sockets = sockets - own_sockets;
    let share = (server_sockets / sockets).max(0.0);
    out.server_sockets_per_conn = Some(server_sockets / n);
    out.tcp_per_conn_bytes = Some(tcp_bytes * share / n);
    out.sock_inode_per_conn_bytes = grew(SOCK_INODE).map(|(_, b)| b * share / n);
    out.filp_per_conn_bytes = grew(FILP).map(|(_, b)| b * share / n);
    out.dentry_per_conn_bytes = grew(DENTRY).map(|(_, b)| b * share / n);
    out.epoll_per_conn_bytes = grew(EPOLL).map(|(objs, bytes)| {
        let own = after.own.epoll_items as f64 - before.own.epoll_items as f64;
        let size = if objs != 0.0 { bytes / objs } else { 0.0 };
        (bytes - own * size) / n
    });
    let own_threads = after.own.threads as f64 - before.own.threads as f64;
    out.kernel_stack_per_conn_bytes = before
        .kernel_stack_bytes
        .zip(after.kernel_stack_bytes)
        .map(|(a, b)| (b as f64 - a as f64 - own_threads * THREAD_STACK_BYTES as f64) / n);
    let own_pte = after.own.page_tables_bytes as f64 - before.own.page_tables_bytes as f64;
    out.page_tables_per_conn_bytes = before
        .page_tables_bytes
        .zip(after.page_tables_bytes)
        .map(|(a, b)| (b as f64 - a as f64 - own_pte) / n);
    out.total_per_conn_bytes = Some(
        [
            out.tcp_per_conn_bytes,
            out.sock_inode_per_conn_bytes,
            out.filp_per_conn_bytes,
            out.dentry_per_conn_bytes,
            out.epoll_per_conn_bytes,
            out.kernel_stack_per_conn_bytes,
            out.page_tables_per_conn_bytes,
        ]
        .iter()
        .flatten()
        .sum(),
    );
    let mut why = Vec::new();
    let per = server_sockets / n;
    if (per - 1.0).abs() > SOCKETS_TOLERANCE {
        why.push(format!(
            "the server's TCP sockets grew by {per:.2} per connection where 1 is expected: other processes \
             opened or closed sockets meanwhile"
        ));
    }
    let spread = before.tcp_spread.max(after.tcp_spread) as f64;
    if spread > SOCKETS_TOLERANCE * n {
        why.push(format!(
            "TCP objects moved by {spread:.0} within one snapshot's readings ({:.0}% of the connections)",
            spread / n * 100.0
        ));
    }
    out.disturbed = (!why.is_empty()).then(|| why.join("; "));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLABINFO: &str = "\
slabinfo - version: 2.1
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
TCPv6                 26     26   2496   13    8 : tunables    0    0    0 : slabdata      2      2      0
TCP                 5993   5993   2368   13    8 : tunables    0    0    0 : slabdata    461    461      0
eventpoll_epi       9184   9184    128   32    1 : tunables    0    0    0 : slabdata    287    287      0
sock_inode_cache    6042   6042    832   19    4 : tunables    0    0    0 : slabdata    318    318      0
kmalloc-64          1000   1000     64   64    1 : tunables    0    0    0 : slabdata     16     16      0
filp                6573   6573    192   21    1 : tunables    0    0    0 : slabdata    313    313      0
dentry             62118  62118    192   21    1 : tunables    0    0    0 : slabdata   2958   2958      0
";

    #[test]
    fn slabinfo_and_meminfo_parse() {
        let s = parse_slabinfo(SLABINFO);
        assert_eq!(s.get("TCP"), Some(&(5993, 2368)));
        assert_eq!(s.get("dentry"), Some(&(62118, 192)));
        assert_eq!(
            s.get("kmalloc-64"),
            None,
            "not one of a connection's caches"
        );
        assert_eq!(s.len(), 6);
        let mem = "MemTotal:        8000000 kB\nKernelStack:        5120 kB\nPageTables:  300 kB\n";
        assert_eq!(kb_field(mem, "KernelStack"), Some(5120 * 1024));
        assert_eq!(kb_field(mem, "PageTables"), Some(300 * 1024));
        assert_eq!(kb_field(mem, "Kernel"), None);
    }

    fn snap(tcp: u64, inode: u64, filp: u64, dentry: u64, epi: u64, own: Own) -> Snapshot {
        let slabs = [
            ("TCP", tcp, 2368),
            ("TCPv6", 26, 2496),
            ("sock_inode_cache", inode, 832),
            ("filp", filp, 192),
            ("dentry", dentry, 192),
            ("eventpoll_epi", epi, 128),
        ]
        .into_iter()
        .map(|(n, c, s)| (n.to_string(), (c, s)))
        .collect();
        Snapshot {
            slabs,
            kernel_stack_bytes: Some(4 << 20),
            page_tables_bytes: Some(1 << 20),
            own,
            tcp_spread: 0,
        }
    }

    /// 1,000 connections to an epoll server: 2,000 sockets (one per end),
    /// 2,000 inodes, files and dentries; epoll items 2,000 (one the
    /// server's, one loadgen's each); loadgen's 1,000 sockets and epoll
    /// items are its own.
    #[test]
    fn the_servers_share_is_half_the_sockets_and_its_own_epoll_items() {
        let before = snap(
            100,
            200,
            300,
            5000,
            50,
            Own {
                sockets: 3,
                epoll_items: 0,
                threads: 2,
                page_tables_bytes: 8192,
            },
        );
        let mut after = snap(
            2100,
            2200,
            2300,
            7000,
            2050,
            Own {
                sockets: 1003,
                epoll_items: 1000,
                threads: 4,
                page_tables_bytes: 12288,
            },
        );
        // The server's threads: 1 MiB of stacks (64 threads), of which
        // loadgen's 2 new threads are 32 KiB; page tables 400 KiB, 4 KiB
        // of them loadgen's.
        after.kernel_stack_bytes = Some((4 << 20) + (1 << 20) + 32 * 1024);
        after.page_tables_bytes = Some((1 << 20) + 400 * 1024 + 4096);
        let b = breakdown(&before, &after, 1000);
        assert_eq!(b.server_sockets_per_conn, Some(1.0));
        assert_eq!(b.tcp_per_conn_bytes, Some(2368.0));
        assert_eq!(b.sock_inode_per_conn_bytes, Some(832.0));
        assert_eq!(b.filp_per_conn_bytes, Some(192.0));
        assert_eq!(b.dentry_per_conn_bytes, Some(192.0));
        assert_eq!(b.epoll_per_conn_bytes, Some(128.0));
        assert!((b.kernel_stack_per_conn_bytes.unwrap() - 1048.576).abs() < 1e-6);
        assert!((b.page_tables_per_conn_bytes.unwrap() - 409.6).abs() < 1e-6);
        let total = 2368.0 + 832.0 + 192.0 + 192.0 + 128.0 + 1048.576 + 409.6;
        assert!((b.total_per_conn_bytes.unwrap() - total).abs() < 1e-6);
        assert_eq!(b.disturbed, None);
        assert_eq!(b.unmeasured, None);
    }

    /// A server without epoll (polling): loadgen's epoll items are all
    /// there is, and the server's share is 0, not loadgen's.
    #[test]
    fn loadgens_epoll_items_are_not_the_servers() {
        let before = snap(100, 200, 300, 5000, 50, Own::default());
        let after = snap(
            2100,
            2200,
            2300,
            7000,
            1050,
            Own {
                sockets: 1000,
                epoll_items: 1000,
                ..Own::default()
            },
        );
        let b = breakdown(&before, &after, 1000);
        assert_eq!(b.epoll_per_conn_bytes, Some(0.0));
        assert_eq!(b.tcp_per_conn_bytes, Some(2368.0));
    }

    /// Another process's sockets closing meanwhile: the server seems to
    /// have half a socket per connection, and the breakdown says so.
    #[test]
    fn churn_from_other_processes_is_reported() {
        let before = snap(100, 200, 300, 5000, 50, Own::default());
        let after = snap(
            1600,
            1700,
            1800,
            6500,
            550,
            Own {
                sockets: 1000,
                ..Own::default()
            },
        );
        let b = breakdown(&before, &after, 1000);
        assert_eq!(b.server_sockets_per_conn, Some(0.5));
        assert!(
            b.disturbed
                .as_deref()
                .is_some_and(|d| d.contains("0.50 per connection")),
            "{b:?}"
        );
        let mut noisy = snap(
            2100,
            2200,
            2300,
            7000,
            2050,
            Own {
                sockets: 1000,
                ..Own::default()
            },
        );
        noisy.tcp_spread = 400;
        let b = breakdown(&before, &noisy, 1000);
        assert!(
            b.disturbed
                .as_deref()
                .is_some_and(|d| d.contains("moved by 400")),
            "{b:?}"
        );
        // Nothing added at all: not measured, with the reason, never 0.
        let b = breakdown(&before, &before, 1000);
        assert!(
            b.unmeasured.is_some() && b.tcp_per_conn_bytes.is_none(),
            "{b:?}"
        );
    }

    #[test]
    fn a_snapshot_is_the_median_of_its_readings() {
        let r = |tcp: u64, stack: u64| -> Reading {
            (
                [("TCP".to_string(), (tcp, 2368))].into_iter().collect(),
                Some(stack),
                None,
            )
        };
        let s = median_of(
            &[r(100, 5), r(900, 6), r(102, 7), r(101, 1), r(99, 9)],
            Own::default(),
        );
        assert_eq!(s.slabs.get("TCP"), Some(&(101, 2368)));
        assert_eq!(s.kernel_stack_bytes, Some(6));
        assert_eq!(s.page_tables_bytes, None);
        assert_eq!(s.tcp_spread, 801);
    }
}
