//! Round trips per second and memory per idle connection, every style, one
//! run, with a plain blocking client: a quick check of the servers alone
//! (the full comparison is `loadgen compare`).
//!
//! Each style runs as its own `servers` process pinned to CPU 0; the client
//! (blocking, one thread per connection, the client the peer figures in
//! CONTEXT.md were measured with) runs on the other CPUs. Connections are
//! all open and warmed up before the clock starts. 64-byte messages, closed
//! loop. Compare styles as ratios within one run: the machine is noisy.
//!
//! Memory is PSS summed over the server's process tree (the forking styles,
//! `prefork` and `process`, keep their connections in child processes).
//!
//! `cargo bench -p servers --bench round_trips [-- --secs 3 --conns 1,50,1000 --idle 2000 --styles reactor,uring]`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;
use servers::Style;

#[path = "../tests/conformance/procs.rs"]
mod procs;
use procs::children;

struct Args {
    secs: f64,
    conns: Vec<usize>,
    idle: usize,
    styles: Vec<Style>,
}

fn parse_args() -> Args {
    let mut args = Args {
        secs: 3.0,
        conns: vec![1, 50, 1000],
        idle: 2000,
        styles: Style::ALL.to_vec(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--secs" => args.secs = value().parse().expect("--secs: a number of seconds"),
            "--conns" => {
                args.conns = value()
                    .split(',')
                    .map(|n| n.parse().expect("--conns: comma-separated counts"))
                    .collect()
            }
            "--idle" => args.idle = value().parse().expect("--idle: a count"),
            "--styles" => {
                args.styles = value()
                    .split(',')
                    .map(|s| {
                        <Style as clap::ValueEnum>::from_str(s, false)
                            .expect("--styles: style names")
                    })
                    .collect()
            }
            "--bench" => {}
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

fn cpus(range: std::ops::Range<usize>) -> CpuSet {
    let mut set = CpuSet::new();
    for cpu in range {
        set.set(cpu).expect("cpu index");
    }
    set
}

struct Server {
    child: Child,
    addr: SocketAddr,
    pid: u32,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            Pid::from_raw(self.pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

fn spawn(style: Style, ncpu: usize) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_servers"));
    cmd.arg(style.name())
        .args(["--addr", "127.0.0.1:0", "--nodelay"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if ncpu >= 2 && style != Style::Pool {
        // One CPU for the server: what one core of each style can do. (A
        // pool's size is not about CPUs: it keeps its default of 16.)
        cmd.args(["--workers", "1"]);
    }
    let mut child = cmd.spawn().expect("spawn servers");
    if ncpu >= 2 {
        sched_setaffinity(Pid::from_raw(child.id() as i32), &cpus(0..1)).expect("pin server");
    }
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("listening line");
    let (addr, _, pid) = servers::parse_listening_line(&line).expect("listening line");
    Server { child, addr, pid }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
        + children(pid).into_iter().map(open_fds).sum::<usize>()
}

/// Memory of a server in KiB: the PSS summed over its process tree, for
/// every style alike (pages the forking styles' children share
/// copy-on-write with the parent count once, not once per child; for a
/// single process PSS differs from RSS only in shared library pages).
fn memory_kb(pid: u32) -> u64 {
    let pss = |p: u32| {
        std::fs::read_to_string(format!("/proc/{p}/smaps_rollup"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("Pss:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    fn tree(pid: u32, out: &mut Vec<u32>) {
        out.push(pid);
        for c in children(pid) {
            tree(c, out);
        }
    }
    let mut all = Vec::new();
    tree(pid, &mut all);
    all.into_iter().map(pss).sum()
}

/// Closed-loop round trips/s over `conns` connections, one client thread
/// each; errors; and connections whose first reply never came (a `pool`
/// serves `--workers` at a time and queues the rest).
fn round_trips(addr: SocketAddr, conns: usize, secs: f64) -> (f64, u64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Arc<Vec<AtomicU64>> = Arc::new((0..conns).map(|_| AtomicU64::new(0)).collect());
    let errors = Arc::new(AtomicU64::new(0));
    let unserved = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(Barrier::new(conns + 1));
    let threads: Vec<_> = (0..conns)
        .map(|i| {
            let (stop, counts, errors, unserved, ready) = (
                stop.clone(),
                counts.clone(),
                errors.clone(),
                unserved.clone(),
                ready.clone(),
            );
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    let msg = [i as u8; 64];
                    let mut back = [0u8; 64];
                    let conn = TcpStream::connect(addr).and_then(|s| {
                        s.set_nodelay(true)?;
                        s.set_read_timeout(Some(Duration::from_secs(3)))?;
                        Ok(s)
                    });
                    let mut s = match conn {
                        Ok(s) => s,
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            ready.wait();
                            return;
                        }
                    };
                    // One warm-up round trip before the clock starts.
                    let warm = s.write_all(&msg).and_then(|()| s.read_exact(&mut back));
                    ready.wait();
                    match warm {
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            unserved.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        Ok(()) => {}
                    }
                    while !stop.load(Ordering::Relaxed) {
                        if s.write_all(&msg)
                            .and_then(|()| s.read_exact(&mut back))
                            .is_err()
                            || back != msg
                        {
                            errors.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        counts[i].fetch_add(1, Ordering::Relaxed);
                    }
                })
                .expect("client thread")
        })
        .collect();
    ready.wait();
    let sum = || {
        counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    let (c0, t0) = (sum(), Instant::now());
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (c1, t1) = (sum(), Instant::now());
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    (
        (c1 - c0) as f64 / (t1 - t0).as_secs_f64(),
        errors.load(Ordering::Relaxed),
        unserved.load(Ordering::Relaxed),
    )
}

/// RSS growth while holding `n` connections: idle (never spoke), then after
/// each has echoed one message.
fn idle_rss(style: Style, n: usize, ncpu: usize) -> (u64, u64, u64) {
    let server = spawn(style, ncpu);
    std::thread::sleep(Duration::from_millis(200));
    let base = memory_kb(server.pid);
    let mut conns: Vec<TcpStream> = (0..n)
        .filter_map(|_| TcpStream::connect(server.addr).ok())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while open_fds(server.pid) < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let idle = memory_kb(server.pid);
    for c in conns.iter_mut() {
        let _ = c.write_all(b"12345678");
    }
    // Replies that have not come within the deadline (queued in a pool)
    // are not waited for one by one.
    let deadline = Instant::now() + Duration::from_secs(5);
    for c in conns.iter_mut() {
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = c.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        let mut b = [0u8; 8];
        let _ = c.read_exact(&mut b);
    }
    let spoke = memory_kb(server.pid);
    (base, idle, spoke)
}

fn main() {
    let args = parse_args();
    let _ = servers::limits::raise_nofile_limit();
    let ncpu = servers::config::available_cpus();
    if ncpu >= 2 {
        sched_setaffinity(Pid::from_raw(0), &cpus(1..ncpu)).expect("pin client");
    }
    println!(
        "# round trips/s, 64 B, closed loop, {:.0} s per point; server on CPU 0 (--workers 1 --nodelay), thread-per-connection client on CPUs 1..{}",
        args.secs,
        ncpu.saturating_sub(1)
    );
    print!("| style |");
    for c in &args.conns {
        print!(" {c} conns |");
    }
    println!(
        " memory base | +{} idle | after one echo each | KiB/conn (idle / spoke) |",
        args.idle
    );
    print!("|---|");
    for _ in &args.conns {
        print!("---:|");
    }
    println!("---:|---:|---:|---:|");
    for &style in &args.styles {
        print!("| {style} |");
        for &c in &args.conns {
            let server = spawn(style, ncpu);
            let (rate, errors, unserved) = round_trips(server.addr, c, args.secs);
            let mut notes = Vec::new();
            if unserved > 0 {
                notes.push(format!("{} of {c} served", c as u64 - unserved));
            }
            if errors > 0 {
                notes.push(format!("{errors} errors"));
            }
            if notes.is_empty() {
                print!(" {rate:.0} |");
            } else {
                print!(" {rate:.0} ({}) |", notes.join(", "));
            }
            std::io::stdout().flush().ok();
        }
        let (base, idle, spoke) = idle_rss(style, args.idle, ncpu);
        let per = |kb: u64| (kb.saturating_sub(base)) as f64 / args.idle as f64;
        println!(
            " {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} / {:.1} |",
            base as f64 / 1024.0,
            idle as f64 / 1024.0,
            spoke as f64 / 1024.0,
            per(idle),
            per(spoke)
        );
    }
}
