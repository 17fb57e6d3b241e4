//! The kernel's counts of a server's system calls and context switches
//! (`loadgen::probe::counters`), measured for real: an echo server on a
//! thread of this process, its counters opened on that thread before it
//! makes the threads that serve (and, in one test, a child process that
//! exits), driven by the engine over loopback.
//!
//! Counting needs root (the events fire in the kernel) and tracefs, which
//! the counters mount when root. Not root: the tests that count say why
//! they skip; as root (CI) they never skip. The "not measured" path is
//! checked apart, and needs neither.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use loadgen::RunSpec;
use loadgen::engine::RunOptions;
use loadgen::probe::Watch;
use loadgen::probe::counters::ServerCounters;
use loadgen::results::server::KernelCounts;

mod common;
use common::run_with;

/// How a connection is served: read 64 bytes, `getpid` once more when
/// `extra`, write them back, until the peer closes.
fn serve(mut conn: TcpStream, extra: bool) {
    let mut buf = [0u8; 64];
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if extra {
            // SAFETY: a system call without arguments or side effects
            // (through syscall(2): no libc cache can answer it).
            unsafe { libc::syscall(libc::SYS_getpid) };
        }
        if conn.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

/// An echo server whose every thread is made after its counters open: a
/// thread that sends its tid, waits to be let go, then accepts, serving
/// each connection on a thread of its own, until `stop`.
struct Observed {
    addr: std::net::SocketAddr,
    counters: Arc<ServerCounters>,
    stop: Arc<AtomicBool>,
    acceptor: std::thread::JoinHandle<()>,
}

impl Observed {
    fn start(extra: bool) -> Observed {
        Observed::start_then(extra, || {})
    }

    /// As [`Observed::start`]; `first` runs on the observed thread before
    /// it accepts.
    fn start_then(extra: bool, first: impl FnOnce() + Send + 'static) -> Observed {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (tid_tx, tid_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let stopped = Arc::clone(&stop);
        let acceptor = std::thread::spawn(move || {
            tid_tx.send(nix::unistd::gettid().as_raw()).unwrap();
            if go_rx.recv_timeout(Duration::from_secs(10)).is_err() {
                return;
            }
            first();
            for conn in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    return;
                }
                if let Ok(conn) = conn {
                    std::thread::spawn(move || serve(conn, extra));
                }
            }
        });
        let tid = tid_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let counters = Arc::new(ServerCounters::open(tid as u32));
        go_tx.send(()).unwrap();
        Observed {
            addr,
            counters,
            stop,
            acceptor,
        }
    }

    /// One engine run against it, sampled with its counters: what the
    /// kernel counted over the measured window.
    fn measure(&self, conns: usize) -> (KernelCounts, u64) {
        let spec = RunSpec {
            addr: self.addr,
            conns,
            size: 64,
            duration: Duration::from_millis(700),
            warmup: Duration::from_millis(200),
            ..RunSpec::default()
        };
        let watch = Watch {
            counters: Some(Arc::clone(&self.counters)),
            ..Watch::process(std::process::id())
        };
        let r = run_with(
            &spec,
            RunOptions {
                server: Some(watch),
                ..RunOptions::default()
            },
        );
        assert!(r.messages > 1000, "the run echoed: {}", r.messages);
        (r.server.unwrap().kernel.expect("counted"), r.messages)
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the acceptor, which then sees `stop`.
        let _ = TcpStream::connect(self.addr);
        self.acceptor.join().unwrap();
    }
}

/// Whether the counters count here; not root: says why the test skips.
/// Root never skips (CI runs as root): a refusal there fails the test.
fn counting(c: &ServerCounters, test: &str) -> bool {
    let r = c.read();
    if r.syscalls.is_ok() && r.switches.is_ok() {
        return true;
    }
    assert!(
        !nix::unistd::geteuid().is_root(),
        "root, and yet not counted: {r:?}"
    );
    eprintln!("{test}: skipped: not root, the kernel does not count here: {r:?}");
    false
}

#[test]
fn one_getpid_more_per_message_is_one_system_call_more_per_message() {
    let mut per_msg = Vec::new();
    for extra in [false, true] {
        let server = Observed::start(extra);
        if !counting(&server.counters, "getpid") {
            server.stop();
            return;
        }
        let (k, messages) = server.measure(2);
        server.stop();
        let sys = k.syscalls_per_msg.expect("system calls per message");
        assert!(k.syscalls.unwrap() > messages, "{k:?}");
        // A server thread blocks in read for every message (the client
        // sends the next only once it has the reply): switches are counted.
        let cs = k.context_switches_per_msg.expect("switches per message");
        assert!(cs > 0.1, "{k:?}");
        per_msg.push(sys);
    }
    let (base, more) = (per_msg[0], per_msg[1]);
    // read and write per message, and nothing else in the window.
    assert!((1.5..3.0).contains(&base), "read+write measured as {base}");
    assert!(
        (0.7..1.5).contains(&(more - base)),
        "one getpid per message measured as {} ({base} -> {more})",
        more - base
    );
}

#[test]
fn threads_made_after_the_counters_open_and_a_child_that_exited_count() {
    // Before it accepts, the observed thread forks a child that makes
    // CHILD_CALLS system calls and exits; it waits for it.
    const CHILD_CALLS: u64 = 20_000;
    let (forked_tx, forked_rx) = mpsc::channel();
    let server = Observed::start_then(false, move || {
        // SAFETY: the child makes raw system calls only and ends with
        // _exit, all async-signal-safe (this process has other threads).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            for _ in 0..CHILD_CALLS {
                // SAFETY: as above.
                unsafe { libc::syscall(libc::SYS_getpid) };
            }
            // SAFETY: ends the child without running the harness.
            unsafe { libc::_exit(0) };
        }
        assert!(pid > 0, "fork failed");
        let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        forked_tx.send(status.is_ok()).unwrap();
    });
    if !counting(&server.counters, "threads") {
        server.stop();
        return;
    }
    assert!(forked_rx.recv_timeout(Duration::from_secs(10)).unwrap());
    // The child is gone: what it counted is in the parent's counter.
    let after_child = server.counters.read().syscalls.unwrap();
    assert!(after_child >= CHILD_CALLS, "{after_child}");
    // Every message is served on a thread made after the counters opened
    // (the observed thread sits in accept meanwhile).
    let (k, messages) = server.measure(4);
    let sys = k.syscalls_per_msg.unwrap();
    assert!(
        (1.5..3.0).contains(&sys),
        "{sys} per message over {messages}"
    );
    server.stop();
}

#[test]
fn a_server_loadgen_did_not_start_is_not_measured_and_says_why() {
    // `loadgen run --server-pid`: counters opened on a running process
    // would miss its threads, so none are: None with the reason, never 0.
    let server = common::in_process(servers::Style::Epoll);
    let spec = RunSpec {
        addr: server.local_addr(),
        conns: 2,
        duration: Duration::from_millis(300),
        warmup: Duration::from_millis(100),
        ..RunSpec::default()
    };
    let r = run_with(
        &spec,
        RunOptions {
            server: Some(Watch::process(std::process::id())),
            ..RunOptions::default()
        },
    );
    let k = r.server.unwrap().kernel.expect("the reason is written");
    assert_eq!((k.syscalls, k.syscalls_per_msg), (None, None));
    assert_eq!(
        (k.context_switches, k.context_switches_per_msg),
        (None, None)
    );
    let why = k.syscalls_unmeasured.unwrap();
    assert!(why.starts_with("not measured"), "{why}");
    assert!(k.context_switches_unmeasured.is_some());
    // A tracepoint the kernel does not give: that counter alone is not
    // measured, with the reason.
    let c = ServerCounters::open_with(std::process::id(), Err("no tracefs here".into()));
    assert_eq!(c.read().syscalls, Err("no tracefs here".into()));
}

#[test]
fn counted_on_the_servers_cgroup_everything_in_it_counts_and_nothing_else() {
    // dd copying BLOCKS one-byte blocks makes a read and a write per
    // block: at least 2 x BLOCKS system calls, all inside the group.
    const BLOCKS: u64 = 20_000;
    let Some(layout) = common::writable_cgroups("counted on the cgroup") else {
        return;
    };
    let group = loadgen::probe::cgroup::ServerCgroup::create(&layout, "counters", None)
        .expect("a group (the check above made one)");
    let dir = match group.perf_dir() {
        Ok(d) => d.to_path_buf(),
        Err(why) => {
            eprintln!("counted on the cgroup: skipped: {why}");
            return;
        }
    };
    let counters = ServerCounters::open_on_cgroup(&dir).expect("counting on the group (root)");
    assert_eq!(
        counters.counted_on(),
        Some(loadgen::results::server::CountedOn::Cgroup)
    );
    assert!(counting(&counters, "cgroup"));
    let before = counters.read();
    // Outside the group: this process's own calls are not counted.
    for _ in 0..BLOCKS {
        // SAFETY: a system call without arguments or side effects.
        unsafe { libc::syscall(libc::SYS_getpid) };
    }
    let placement = group.placement().expect("the group's cgroup.procs");
    let fds = placement.raw();
    let mut cmd = std::process::Command::new("dd");
    cmd.args(["if=/dev/zero", "of=/dev/null", "bs=1"])
        .arg(format!("count={BLOCKS}"))
        .stderr(std::process::Stdio::null());
    // SAFETY: between fork and exec only write(2) on descriptors open in
    // the parent (Placement::enter).
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || loadgen::probe::cgroup::Placement::enter(&fds));
    }
    let out = common::output_within(cmd, Duration::from_secs(30), "dd in the group");
    assert!(out.status.success(), "{out:?}");
    let after = counters.read();
    let calls = after.syscalls.unwrap() - before.syscalls.unwrap();
    // dd's own start (exec, loading, opening) adds some hundreds.
    assert!(
        (2 * BLOCKS..2 * BLOCKS + 5_000).contains(&calls),
        "{calls} system calls counted for {BLOCKS} blocks"
    );
}
