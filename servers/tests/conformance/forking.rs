//! What only the forking styles have: worker and connection processes that
//! the parent supervises, reaps and stops.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use servers::Style;

use crate::procs::alive;
use crate::support::{
    IO_TIMEOUT, children, connect, round_trip, spawn, summary_field, terminate, wait_until,
};

/// `prefork --workers 2`: two worker processes; one killed is replaced and
/// the server goes on serving; SIGTERM ends the master and every worker.
#[test]
fn prefork_restarts_a_dead_worker_and_stops_all() {
    let server = spawn(Style::Prefork, &["--workers", "2"]);
    assert!(
        wait_until(IO_TIMEOUT, || children(server.pid).len() == 2),
        "two workers forked: {:?}",
        children(server.pid)
    );
    let workers = children(server.pid);
    let mut client = connect(server.addr);
    assert_eq!(round_trip(&mut client, b"before"), b"before");

    kill(Pid::from_raw(workers[0] as i32), Signal::SIGKILL).expect("kill a worker");
    assert!(
        server.wait_stderr("starting another", IO_TIMEOUT),
        "the master says it replaces the dead worker"
    );
    let replaced = wait_until(IO_TIMEOUT, || {
        let now = children(server.pid);
        now.len() == 2 && !now.contains(&workers[0]) && now.contains(&workers[1])
    });
    assert!(replaced, "a new worker: {:?}", children(server.pid));
    let now = children(server.pid);
    for _ in 0..8 {
        let mut c = connect(server.addr);
        assert_eq!(round_trip(&mut c, b"after"), b"after");
    }

    let (status, stderr, _) = terminate(server);
    assert!(status.success(), "exit {status}; stderr: {stderr}");
    for pid in now {
        assert!(!alive(pid), "worker {pid} stopped with the master");
    }
    assert!(
        summary_field(&stderr, "accepted").is_some_and(|n| n >= 9),
        "{stderr}"
    );
}

/// `process`: a child per open connection, reaped when its connection ends;
/// `--max-conns` counts the children.
#[test]
fn process_forks_per_connection_and_reaps() {
    let server = spawn(Style::Process, &["--max-conns", "3"]);
    let mut clients: Vec<_> = (0..3).map(|_| connect(server.addr)).collect();
    for c in clients.iter_mut() {
        assert_eq!(round_trip(c, b"hi"), b"hi");
    }
    assert_eq!(children(server.pid).len(), 3, "one child per connection");
    // The fourth is over --max-conns: closed at once, no child for it.
    let mut fourth = connect(server.addr);
    let mut buf = [0u8; 1];
    let refused = matches!(std::io::Read::read(&mut fourth, &mut buf), Ok(0) | Err(_));
    assert!(refused, "the fourth connection is closed");
    let pids = children(server.pid);
    drop(clients);
    assert!(
        wait_until(IO_TIMEOUT, || children(server.pid).is_empty()),
        "children exit and are reaped when their connections end: {:?}",
        children(server.pid)
    );
    for pid in pids {
        assert!(!alive(pid), "child {pid} reaped");
    }
    let mut again = connect(server.addr);
    assert_eq!(round_trip(&mut again, b"again"), b"again");
    let (status, stderr, _) = terminate(server);
    assert!(status.success(), "exit {status}; stderr: {stderr}");
    assert_eq!(summary_field(&stderr, "accepted"), Some(4), "{stderr}");
    assert_eq!(summary_field(&stderr, "rejected"), Some(1), "{stderr}");
    assert_eq!(summary_field(&stderr, "bytes_echoed"), Some(11), "{stderr}");
}

/// `process` under churn: while new connections keep arriving, the parent
/// still reaps the children of the ones that closed (a parent that only
/// accepted would pile up zombies and count every one as open).
#[test]
fn process_reaps_while_connections_keep_coming() {
    const CHURNERS: usize = 8;
    const EACH: usize = 150;
    let server = crate::support::start(Style::Process, servers::Config::default());
    let addr = server.local_addr();
    let churners: Vec<_> = (0..CHURNERS)
        .map(|i| {
            std::thread::spawn(move || {
                for j in 0..EACH {
                    let mut c = connect(addr);
                    let msg = format!("{i}/{j}");
                    assert_eq!(round_trip(&mut c, msg.as_bytes()), msg.as_bytes());
                }
            })
        })
        .collect();
    for c in churners {
        c.join().expect("churner");
    }
    let summary = server.summary();
    assert_eq!(summary.accepted, (CHURNERS * EACH) as u64);
    assert!(
        summary.peak_conns < CHURNERS * EACH / 4,
        "children were reaped as their connections closed: {summary:?}"
    );
    assert!(
        wait_until(IO_TIMEOUT, || server.summary().active == 0),
        "all reaped at the end: {:?}",
        server.summary()
    );
}

/// `prefork --workers 2` on one CPU, each worker under a low open-files
/// limit: together the workers serve more connections than one of them can
/// hold (what `loadgen compare --scenarios reach` relies on). The workers
/// share one edge-triggered listener: when one meets its limit, its sibling
/// takes the connections still waiting in the backlog.
#[test]
fn prefork_workers_together_hold_more_than_one_workers_open_files_limit() {
    /// Per worker: its listener, epoll, pidfd and the like take a few.
    const NOFILE: u64 = 64;
    /// More than one worker can hold (so both serve), fewer than two can.
    const CONNS: usize = 90;
    crate::support::raise_fd_limit();
    let mut cmd = crate::support::servers_bin();
    cmd.args([
        Style::Prefork.name(),
        "--addr",
        "127.0.0.1:0",
        "--workers",
        "2",
    ]);
    // SAFETY: only async-signal-safe calls (setrlimit, sched_setaffinity)
    // run between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            nix::sys::resource::setrlimit(
                nix::sys::resource::Resource::RLIMIT_NOFILE,
                NOFILE,
                NOFILE,
            )?;
            let mut one = nix::sched::CpuSet::new();
            one.set(0)?;
            nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &one)?;
            Ok(())
        });
    }
    let server = crate::support::spawn_cmd(Style::Prefork, cmd);
    assert!(
        wait_until(IO_TIMEOUT, || children(server.pid).len() == 2),
        "two workers forked"
    );
    // Every connect completes in the kernel (backlog), served or not.
    let mut clients: Vec<_> = (0..CONNS).map(|_| connect(server.addr)).collect();
    let bounded = std::time::Duration::from_secs(3);
    let mut unserved = Vec::new();
    for (i, c) in clients.iter_mut().enumerate() {
        c.set_read_timeout(Some(bounded)).unwrap();
        let served = std::io::Write::write_all(c, b"x").is_ok() && {
            let mut b = [0u8; 1];
            std::io::Read::read_exact(c, &mut b).is_ok()
        };
        if !served {
            unserved.push(i);
        }
    }
    let (status, stderr, _) = terminate(server);
    assert!(
        unserved.is_empty(),
        "connections left in the backlog: {unserved:?}; stderr: {stderr}"
    );
    assert!(status.success(), "exit {status}; stderr: {stderr}");
}
