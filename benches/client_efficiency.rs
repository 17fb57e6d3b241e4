//! Is loadgen the bottleneck? Round trips/s that one loadgen thread drives
//! against the same server as a thread-per-connection client (the client
//! the peer figures in CONTEXT.md were measured with), in one run.
//!
//! The server (`epoll`, the raw-epoll reference, unless `--style` says
//! otherwise) runs in this process, its threads pinned to CPU 0; both
//! clients run pinned to CPU 1. 64-byte messages, closed loop.
//!
//! The target (loadgen::report::perf::CLIENT_EFFICIENCY_MIN_RATIO at
//! CLIENT_EFFICIENCY_CONNS): loadgen drives at least 1.2x the round trips/s
//! of the thread-per-connection client at 50 and 1,000 connections. Pass or
//! miss is printed, never asserted (timings on a shared machine are noisy).
//!
//! `cargo bench --bench client_efficiency [-- --secs 3 --style epoll]`

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use loadgen::RunSpec;
use loadgen::engine::{self, Control, RunOptions};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;
use servers::{Config, Style};

fn pin(cpu: usize) {
    let mut set = CpuSet::new();
    set.set(cpu).expect("cpu index");
    sched_setaffinity(Pid::from_raw(0), &set).expect("pin thread");
}

/// CPU time of the calling thread, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_THREAD)
        .map(|u| {
            let (a, b) = (u.user_time(), u.system_time());
            (a.tv_sec() + b.tv_sec()) as u64 * 1_000_000_000
                + (a.tv_usec() + b.tv_usec()) as u64 * 1_000
        })
        .unwrap_or(0)
}

/// Round trips/s of one thread per connection, and the CPU those threads
/// used over the window (1.0 = all of the client CPU).
fn threaded_client(addr: SocketAddr, conns: usize, secs: f64) -> (f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let cpu_ns = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(Barrier::new(conns + 1));
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let (stop, count, ready, cpu_ns) =
                (stop.clone(), count.clone(), ready.clone(), cpu_ns.clone());
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    let mut s = TcpStream::connect(addr).expect("connect");
                    s.set_nodelay(true).unwrap();
                    let (msg, mut back) = ([7u8; 64], [0u8; 64]);
                    s.write_all(&msg)
                        .and_then(|()| s.read_exact(&mut back))
                        .expect("warm-up");
                    ready.wait();
                    let cpu0 = thread_cpu_ns();
                    while !stop.load(Ordering::Relaxed) {
                        if s.write_all(&msg)
                            .and_then(|()| s.read_exact(&mut back))
                            .is_err()
                        {
                            break;
                        }
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    cpu_ns.fetch_add(thread_cpu_ns() - cpu0, Ordering::Relaxed);
                })
                .expect("client thread")
        })
        .collect();
    ready.wait();
    let (c0, t0) = (count.load(Ordering::Relaxed), Instant::now());
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (c1, t1) = (count.load(Ordering::Relaxed), Instant::now());
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let wall = (t1 - t0).as_secs_f64();
    (
        (c1 - c0) as f64 / wall,
        cpu_ns.load(Ordering::Relaxed) as f64 / 1e9 / wall,
    )
}

fn loadgen_client(addr: SocketAddr, conns: usize, secs: f64) -> (f64, f64, bool) {
    let spec = RunSpec {
        addr,
        conns,
        duration: Duration::from_secs_f64(secs),
        warmup: Duration::from_millis(500),
        ..RunSpec::default()
    };
    let r = engine::run(&spec, Arc::new(Control::default()), RunOptions::default()).expect("run");
    assert!(r.outcome.ok, "{:?}", r.outcome.reasons);
    (
        r.throughput_msgs_per_s,
        r.client.busy_max,
        r.client.client_bound,
    )
}

fn main() {
    let mut secs = 3.0;
    let mut style = Style::Epoll;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => secs = args.next().and_then(|v| v.parse().ok()).expect("--secs N"),
            "--style" => {
                style = args
                    .next()
                    .and_then(|v| Style::from_name(&v))
                    .expect("--style NAME")
            }
            _ => {}
        }
    }
    let _ = servers::limits::raise_nofile_limit();
    pin(0);
    let listener =
        servers::listener::bind("127.0.0.1:0".parse().unwrap(), &Default::default()).unwrap();
    let config = Config {
        workers: Some(1),
        nodelay: true,
        ..Config::default()
    };
    let server = servers::start(style, config, listener).expect("server");
    pin(1);
    let target = loadgen::report::perf::CLIENT_EFFICIENCY_MIN_RATIO;
    let judged = loadgen::report::perf::CLIENT_EFFICIENCY_CONNS;
    println!("# {style} server on CPU 0; client on CPU 1; 64 B closed loop, {secs:.0} s per point");
    println!(
        "# target: loadgen >= {target:.1}x the thread-per-connection client's round trips/s at {judged:?} conns \
         (reported, not asserted)"
    );
    println!(
        "| conns | thread-per-connection client (its CPU) | loadgen, 1 thread | loadgen busy | ratio | target |"
    );
    println!("|---:|---:|---:|---:|---:|---|");
    let (mut passed, mut missed) = (0, 0);
    for conns in [1, 50, 1000] {
        let (threaded, threaded_busy) = threaded_client(server.local_addr(), conns, secs);
        let (lg, busy, bound) = loadgen_client(server.local_addr(), conns, secs);
        let ratio = lg / threaded;
        let verdict = if !judged.contains(&conns) {
            "–".to_string()
        } else if ratio >= target {
            passed += 1;
            format!(">= {target:.1}: pass")
        } else {
            missed += 1;
            // Where loadgen's thread was not saturated, the server (or the
            // machine) set the pace for both clients: the ratio then says
            // little about loadgen's own efficiency.
            format!(
                ">= {target:.1}: miss{}",
                if bound {
                    " (loadgen client-bound)"
                } else {
                    " (loadgen not client-bound: the server set the pace)"
                }
            )
        };
        println!(
            "| {conns} | {threaded:.0} ({:.0}%) | {lg:.0} | {:.0}%{} | {ratio:.2} | {verdict} |",
            threaded_busy * 100.0,
            busy * 100.0,
            if bound { " (client-bound)" } else { "" },
        );
    }
    println!("# {passed} pass, {missed} miss");
}
