//! The server against the limits a connection can run into, read once at
//! the end of a run while its connections are open ([`LimitsAtEnd`]): the
//! evidence `reach` names its walls from ([`crate::compare::wall`]). Read
//! once and not at 10 Hz: counting the fds of 20,000 processes or the maps
//! of 16,000 threads takes tens of milliseconds.

use servers::limits::{machine_tasks, memory_maps, sysctl};

use crate::probe::cgroup::ServerCgroup;
use crate::probe::cgroup_fs::stat_field;
use crate::probe::procfs::{open_fds, open_files_limit};
use crate::results::server::LimitsAtEnd;

/// Reads the limits of the server `pid` whose processes are `pids` (the
/// last sample's tree; empty: `pid` alone), with its cgroup's OOM kills
/// where it has one. None where `pid` is gone or dying (no memory maps
/// left: a zombie's fds and maps would read as a server that held none).
pub fn read(pid: u32, pids: &[u32], group: Option<&ServerCgroup>) -> Option<LimitsAtEnd> {
    let maps = memory_maps(&pid.to_string()).filter(|&n| n > 0)?;
    let alone = [pid];
    let pids = if pids.is_empty() { &alone[..] } else { pids };
    let counted: Vec<(u32, u64)> = pids
        .iter()
        .filter_map(|&p| open_fds(p).map(|n| (p, n)))
        .collect();
    let most = counted.iter().max_by_key(|(_, n)| *n).copied();
    Some(LimitsAtEnd {
        fds: (!counted.is_empty()).then(|| counted.iter().map(|(_, n)| n).sum()),
        most_fds: most.map(|(_, n)| n),
        most_fds_limit: most.and_then(|(p, _)| open_files_limit(p)),
        maps: Some(maps),
        max_map_count: sysctl("vm/max_map_count"),
        machine_tasks: machine_tasks(),
        pid_max: sysctl("kernel/pid_max"),
        threads_max: sysctl("kernel/threads-max"),
        oom_kills: group.and_then(oom_kills),
    })
}

/// Processes of `group` killed by the kernel's OOM killer since it was
/// made, whichever limit ran out: `oom_kill` in its memory directory's
/// memory.events (v2) or memory.oom_control (v1).
fn oom_kills(group: &ServerCgroup) -> Option<u64> {
    group.dirs().iter().find_map(|dir| {
        ["memory.events", "memory.oom_control"]
            .iter()
            .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())
            .and_then(|text| stat_field(&text, "oom_kill"))
    })
}

/// Connections waiting in the accept queue of the socket listening on
/// `addr` (/proc/net/tcp's rx_queue of a listener is its accept queue);
/// None where there is no such listener in this network namespace. The
/// kernel lists listeners first, so reading stops at the first other
/// socket: cheap however many connections are open.
pub fn listen_queue(addr: std::net::SocketAddr) -> Option<u64> {
    use std::io::BufRead;
    let file = match addr {
        std::net::SocketAddr::V4(_) => "/proc/net/tcp",
        std::net::SocketAddr::V6(_) => "/proc/net/tcp6",
    };
    let reader = std::io::BufReader::new(std::fs::File::open(file).ok()?);
    let port = format!(":{:04X}", addr.port());
    for line in reader.lines().skip(1) {
        let line = line.ok()?;
        match listener_queue(&line, &port) {
            Listener::This(n) => return Some(n),
            Listener::Other => {}
            Listener::NotListening => return None,
        }
    }
    None
}

/// Established sockets whose local end is `addr`'s port: the server's
/// side of its connections, accepted or still queued. On loopback the
/// client's ends are in the same table; a handshake the client believes
/// complete but the server never kept (a SYN cookie whose ACK found the
/// listen queue full) has a client end and no server end. Reads the whole
/// table: tens of ms with 50,000 connections, taken once a step.
pub fn server_ends(addr: std::net::SocketAddr) -> Option<u64> {
    let file = match addr {
        std::net::SocketAddr::V4(_) => "/proc/net/tcp",
        std::net::SocketAddr::V6(_) => "/proc/net/tcp6",
    };
    let text = std::fs::read_to_string(file).ok()?;
    let port = format!(":{:04X}", addr.port());
    let ours = |l: &&str| {
        let mut f = l.split_whitespace().skip(1);
        matches!((f.next(), f.next(), f.next()), (Some(local), Some(_), Some("01")) if local.ends_with(&port))
    };
    Some(text.lines().skip(1).filter(ours).count() as u64)
}

enum Listener {
    This(u64),
    Other,
    NotListening,
}

/// One /proc/net/tcp line: `sl local remote st tx_queue:rx_queue ...`.
fn listener_queue(line: &str, port: &str) -> Listener {
    let f: Vec<&str> = line.split_whitespace().take(5).collect();
    match f.as_slice() {
        [_, local, _, "0A", queues] => match queues.split_once(':') {
            Some((_, rx)) if local.ends_with(port) => {
                u64::from_str_radix(rx, 16).map_or(Listener::Other, Listener::This)
            }
            _ => Listener::Other,
        },
        _ => Listener::NotListening,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listeners_accept_queue_is_its_rx_queue() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(listen_queue(addr), Some(0));
        let clients: Vec<_> = (0..3)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        assert_eq!(listen_queue(addr), Some(3), "three connects not accepted");
        assert_eq!(
            server_ends(addr),
            Some(3),
            "queued, the server's side exists"
        );
        let _taken = listener.accept().unwrap();
        assert_eq!(listen_queue(addr), Some(2));
        assert_eq!(server_ends(addr), Some(3));
        drop((clients, listener));
        assert_eq!(listen_queue(addr), None, "no listener left on the port");
        let line = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000011 00:00000000 00000000     0        0 1";
        assert!(matches!(listener_queue(line, ":1F90"), Listener::This(17)));
        assert!(matches!(listener_queue(line, ":1F91"), Listener::Other));
        let est = "   1: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2";
        assert!(matches!(
            listener_queue(est, ":1F90"),
            Listener::NotListening
        ));
    }

    #[test]
    fn this_process_reads_its_own_limits() {
        let me = std::process::id();
        let l = read(me, &[], None).expect("this process is alive");
        assert!(l.fds.is_some_and(|n| n >= 3), "{l:?}");
        assert_eq!(l.fds, l.most_fds);
        assert_eq!(l.most_fds_limit, open_files_limit(me));
        // A Rust test process has at least its binary and its stack mapped.
        assert!(l.maps.is_some_and(|n| n > 2), "{l:?}");
        assert!(l.max_map_count.is_some_and(|n| n > 0), "{l:?}");
        assert!(l.machine_tasks.is_some_and(|n| n >= 1), "{l:?}");
        assert!(l.pid_max.is_some_and(|n| n >= 301), "{l:?}");
        assert_eq!(l.oom_kills, None, "no cgroup, no OOM kills read");
        // A process that is gone reads as nothing, not as none held.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        assert_eq!(read(gone, &[], None), None);
    }
}
