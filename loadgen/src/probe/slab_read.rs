//! Reading the counters [`crate::probe::slab`] breaks down: the caches of
//! interest in /proc/slabinfo, `KernelStack` and `PageTables` in
//! /proc/meminfo, and loadgen's own part of them (its sockets and the bind
//! buckets their ports hold, its epoll items, threads and page tables),
//! each snapshot the median of several readings.

use std::collections::BTreeMap;
use std::fs;

use crate::probe::slab::{
    DENTRY, EPOLL, FILP, GAP, Own, READINGS, SOCK_INODE, Snapshot, TASK, TCP,
};

/// `/proc/slabinfo`'s caches of interest: name -> (active objects, size).
pub fn parse_slabinfo(text: &str) -> BTreeMap<String, (u64, u64)> {
    let wanted = |n: &str| {
        [TCP, SOCK_INODE, FILP, DENTRY, EPOLL, TASK]
            .concat()
            .contains(&n)
    };
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
    let mut ports = std::collections::HashSet::new();
    let mut pairs = std::collections::HashSet::new();
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
            libc::S_IFSOCK => {
                own.sockets += 1;
                if let Some(local) = local_addr(fd) {
                    ports.insert(local.port());
                    pairs.insert(local);
                }
            }
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
    let (bind, bind2) = shared_with_epoll();
    own.bind_buckets =
        if bind { ports.len() as u64 } else { 0 } + if bind2 { pairs.len() as u64 } else { 0 };
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

/// Which of the bind-bucket caches SLUB merged into `eventpoll_epi`'s
/// (same size and flags: one cache under several names, counted in
/// /proc/slabinfo under one), from /sys/kernel/slab's links.
pub fn shared_with_epoll() -> (bool, bool) {
    let target = |name: &str| fs::read_link(format!("/sys/kernel/slab/{name}")).ok();
    let epoll = target("eventpoll_epi");
    let same = |name: &str| epoll.is_some() && target(name) == epoll;
    (same("tcp_bind_bucket"), same("tcp_bind2_bucket"))
}

/// A socket's local address, for TCP over IPv4 or IPv6.
fn local_addr(fd: i32) -> Option<std::net::SocketAddr> {
    let mut ss = std::mem::MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getsockname writes at most `len` bytes into `ss`, which is
    // that large and zeroed; `fd` is a socket (fstat said so).
    if unsafe { libc::getsockname(fd, ss.as_mut_ptr().cast(), &mut len) } != 0 {
        return None;
    }
    // SAFETY: zero-initialised and filled by getsockname.
    let ss = unsafe { ss.assume_init() };
    match ss.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: an AF_INET address is a sockaddr_in.
            let a: libc::sockaddr_in =
                unsafe { std::ptr::read((&ss as *const libc::sockaddr_storage).cast()) };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some((ip, u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 => {
            // SAFETY: an AF_INET6 address is a sockaddr_in6.
            let a: libc::sockaddr_in6 =
                unsafe { std::ptr::read((&ss as *const libc::sockaddr_storage).cast()) };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some((ip, u16::from_be(a.sin6_port)).into())
        }
        _ => None,
    }
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
