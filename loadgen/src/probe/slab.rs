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
//!   counted in its epoll files' fdinfo and subtracted, with the bind
//!   buckets of its ports where SLUB merged those caches into
//!   `eventpoll_epi`'s: [`shared_with_epoll`]), nor are stacks
//!   and page tables (loadgen's threads and `VmPTE`, from
//!   /proc/self/status).
//! - other processes' churn, which nothing can take out of machine-wide
//!   counters. Each snapshot is the median of [`READINGS`] readings, which
//!   drops a passing burst; the readings' spread and the server's sockets
//!   per connection (which must be 1: one accepted socket each) say when
//!   the machine was too busy for the figures to be the server's, and the
//!   breakdown says so rather than hide it.

use std::collections::BTreeMap;
use std::time::Duration;

pub use crate::probe::slab_read::{
    kb_field, median_of, own, parse_slabinfo, shared_with_epoll, snapshot,
};
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

/// A part that fell by more than this per connection was moved by others.
pub const SHRANK_BYTES: f64 = 32.0;

/// The caches of a connection's socket, by the part they are reported as.
pub const TCP: &[&str] = &["TCP", "TCPv6"];
pub const SOCK_INODE: &[&str] = &["sock_inode_cache"];
pub const FILP: &[&str] = &["filp"];
pub const DENTRY: &[&str] = &["dentry"];
/// `eventpoll_pwq` only where the kernel still has it as a cache.
pub const EPOLL: &[&str] = &["eventpoll_epi", "eventpoll_pwq"];
/// A thread's or process's descriptor: beside its stack, what a thread per
/// connection costs.
pub const TASK: &[&str] = &["task_struct"];

/// loadgen's own part of the counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Own {
    pub sockets: u64,
    pub epoll_items: u64,
    /// The bind buckets its sockets' local ports hold, where SLUB merged
    /// those caches into `eventpoll_epi`'s (see [`shared_with_epoll`]): a
    /// connecting socket takes an ephemeral port, one `tcp_bind_bucket` per
    /// port and one `tcp_bind2_bucket` per port and address; an accepted
    /// socket shares its listener's.
    pub bind_buckets: u64,
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
        let own = (after.own.epoll_items + after.own.bind_buckets) as f64
            - (before.own.epoll_items + before.own.bind_buckets) as f64;
        let size = if objs != 0.0 { bytes / objs } else { 0.0 };
        (bytes - own * size) / n
    });
    let own_threads = after.own.threads as f64 - before.own.threads as f64;
    out.task_per_conn_bytes = grew(TASK).map(|(objs, bytes)| {
        let size = if objs != 0.0 { bytes / objs } else { 0.0 };
        (bytes - own_threads * size) / n
    });
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
            out.task_per_conn_bytes,
            out.kernel_stack_per_conn_bytes,
            out.page_tables_per_conn_bytes,
        ]
        .iter()
        .flatten()
        .sum(),
    );
    let mut why = Vec::new();
    // A server does not give back kernel memory as it takes connections:
    // a part that shrank was moved by other processes.
    let shrank: Vec<String> = [
        ("task_struct", out.task_per_conn_bytes),
        ("stacks", out.kernel_stack_per_conn_bytes),
        ("page tables", out.page_tables_per_conn_bytes),
        ("dentry", out.dentry_per_conn_bytes),
        ("epoll", out.epoll_per_conn_bytes),
    ]
    .iter()
    .filter_map(|(name, v)| {
        v.filter(|v| *v < -SHRANK_BYTES)
            .map(|v| format!("{name} {v:.0} B"))
    })
    .collect();
    if !shrank.is_empty() {
        why.push(format!(
            "parts shrank per connection ({}): other processes freed more than the server added",
            shrank.join(", ")
        ));
    }
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
    /// server's, one loadgen's each) and loadgen's 2,000 bind buckets in
    /// the same cache; loadgen's 1,000 sockets, epoll items and buckets
    /// are its own.
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
                bind_buckets: 4,
                threads: 2,
                page_tables_bytes: 8192,
            },
        );
        let mut after = snap(
            2100,
            2200,
            2300,
            7000,
            // In the cache SLUB shares with the bind buckets: loadgen's
            // 1,000 ports hold 2,000 more (a port, a port and address).
            4050,
            Own {
                sockets: 1003,
                epoll_items: 1000,
                bind_buckets: 2004,
                threads: 4,
                page_tables_bytes: 12288,
            },
        );
        // The server's threads: 1 MiB of stacks (64 threads), of which
        // loadgen's 2 new threads are 32 KiB; page tables 400 KiB, 4 KiB
        // of them loadgen's.
        after.kernel_stack_bytes = Some((4 << 20) + (1 << 20) + 32 * 1024);
        after.page_tables_bytes = Some((1 << 20) + 400 * 1024 + 4096);
        // 64 server threads' descriptors, and loadgen's 2.
        let mut before = before;
        before.slabs.insert("task_struct".into(), (100, 5888));
        after.slabs.insert("task_struct".into(), (166, 5888));
        let b = breakdown(&before, &after, 1000);
        assert_eq!(b.server_sockets_per_conn, Some(1.0));
        assert_eq!(b.tcp_per_conn_bytes, Some(2368.0));
        assert_eq!(b.sock_inode_per_conn_bytes, Some(832.0));
        assert_eq!(b.filp_per_conn_bytes, Some(192.0));
        assert_eq!(b.dentry_per_conn_bytes, Some(192.0));
        assert_eq!(b.epoll_per_conn_bytes, Some(128.0));
        assert!((b.kernel_stack_per_conn_bytes.unwrap() - 1048.576).abs() < 1e-6);
        assert!((b.page_tables_per_conn_bytes.unwrap() - 409.6).abs() < 1e-6);
        assert!((b.task_per_conn_bytes.unwrap() - 376.832).abs() < 1e-6);
        let total = 2368.0 + 832.0 + 192.0 + 192.0 + 128.0 + 376.832 + 1048.576 + 409.6;
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
        // Page tables that shrank by 1 MiB over 1,000 connections.
        let mut shrank = snap(
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
        shrank.page_tables_bytes = Some(0);
        let b = breakdown(&before, &shrank, 1000);
        assert!(
            b.disturbed
                .as_deref()
                .is_some_and(|d| d.contains("page tables -1049 B")),
            "{b:?}"
        );
    }
}
