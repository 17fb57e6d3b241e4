//! Instructions per echoed message, every style: the repeatable measure
//! beside the timings. On a shared machine the clock lies from one run to
//! the next; the number of instructions a server executes to echo a message
//! barely moves, so a regression shows here even when the timings are noise.
//!
//! Each style runs under `valgrind --tool=callgrind` (children traced for
//! the forking styles) while a client drives a fixed number of 64-byte round
//! trips over 50 connections (each round: one message on every connection,
//! then every reply). The server is run twice, with N and 2N rounds, and the
//! difference of its instruction totals divided by the difference in
//! messages is the figure: start-up, connection set-up and shutdown cancel
//! out. `polling` spins between messages, so its figure depends on time as
//! well as work, and is marked. Callgrind counts user-space instructions
//! only: the work the kernel does in `read`, `write` or `epoll_wait` is not
//! in the figure, which is why the blocking styles look cheapest. `uring`
//! cannot be run under valgrind (see `main`).
//!
//! `cargo bench -p servers --bench instructions [-- --rounds 400 --conns 50 --styles epoll,reactor]
//! [--server-arg --idle-timeout=30s]`
//! Needs valgrind; without it the bench says so and exits 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use servers::Style;

struct Args {
    rounds: usize,
    conns: usize,
    styles: Vec<Style>,
    /// Extra flags for every server (`--server-arg --idle-timeout=30s`).
    server_args: Vec<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        rounds: 400,
        conns: 50,
        styles: Style::ALL.to_vec(),
        server_args: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--rounds" => args.rounds = value().parse().expect("--rounds: a count"),
            "--conns" => args.conns = value().parse().expect("--conns: a count"),
            "--styles" => {
                args.styles = value()
                    .split(',')
                    .map(|s| {
                        Style::from_name(s).unwrap_or_else(|| panic!("--styles: no style {s}"))
                    })
                    .collect()
            }
            "--server-arg" => args.server_args.push(value()),
            "--bench" => {}
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

/// One server under callgrind; its output files land in `dir`.
struct Traced {
    child: Child,
    addr: SocketAddr,
}

fn start(style: Style, dir: &Path, conns: usize, server_args: &[String]) -> Traced {
    let mut cmd = Command::new("valgrind");
    cmd.args(["--tool=callgrind", "--trace-children=yes", "--quiet"])
        .arg(format!(
            "--callgrind-out-file={}/callgrind.%p",
            dir.display()
        ))
        .arg(env!("CARGO_BIN_EXE_servers"))
        .arg(style.name())
        .args(["--addr", "127.0.0.1:0", "--nodelay"]);
    // One worker: the instructions of one loop, not of work stealing. A
    // pool gets one thread per connection, or the rest would wait unserved.
    // Styles without workers refuse the flag.
    if style.knobs().contains(&servers::Knob::Workers) {
        let workers = if style == Style::Pool { conns } else { 1 };
        cmd.args(["--workers", &workers.to_string()]);
    }
    cmd.args(server_args);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn valgrind");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listening line");
    let (addr, _, _) = servers::parse_listening_line(&line)
        .unwrap_or_else(|| panic!("{style}: no listening line under valgrind: {line:?}"));
    Traced { child, addr }
}

/// `rounds` rounds of one 64-byte message on every connection; false if a
/// reply did not come back intact.
fn drive(addr: SocketAddr, conns: usize, rounds: usize) -> bool {
    let mut streams: Vec<TcpStream> = (0..conns)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    if streams.len() < conns {
        return false;
    }
    for s in &streams {
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    }
    for round in 0..rounds {
        for (i, s) in streams.iter_mut().enumerate() {
            let msg = [(round + i) as u8; 64];
            if s.write_all(&msg).is_err() {
                return false;
            }
        }
        for (i, s) in streams.iter_mut().enumerate() {
            let mut back = [0u8; 64];
            if s.read_exact(&mut back).is_err() || back != [(round + i) as u8; 64] {
                return false;
            }
        }
    }
    true
}

/// Instructions executed by the server (all processes) for one run.
fn run(style: Style, args: &Args, rounds: usize) -> Option<u64> {
    let (conns, dir) = (args.conns, scratch_dir(style, rounds));
    let traced = start(style, &dir, conns, &args.server_args);
    let ok = drive(traced.addr, conns, rounds);
    stop(traced);
    let total = total_instructions(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    ok.then_some(total)
}

fn scratch_dir(style: Style, rounds: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "c10k-callgrind-{}-{style}-{rounds}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn stop(mut traced: Traced) {
    let pid = nix::unistd::Pid::from_raw(traced.child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = traced.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = traced.child.kill();
    let _ = traced.child.wait();
}

/// Sums the `summary:` (or `totals:`) lines of every callgrind output file.
fn total_instructions(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .filter_map(|text| {
                    text.lines()
                        .find_map(|l| {
                            l.strip_prefix("summary:")
                                .or_else(|| l.strip_prefix("totals:"))
                        })
                        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                })
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    let args = parse_args();
    let have_valgrind = Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_valgrind {
        println!("instructions: skipped: valgrind is not installed (apt-get install valgrind)");
        return;
    }
    let _ = servers::limits::raise_nofile_limit();
    println!(
        "# instructions per echoed 64-byte message (callgrind; {} connections; runs of {} and {} rounds, differenced){}",
        args.conns,
        args.rounds,
        2 * args.rounds,
        if args.server_args.is_empty() {
            String::new()
        } else {
            format!("; servers run with {}", args.server_args.join(" "))
        }
    );
    println!("| style | instructions / message | note |");
    println!("|---|---:|---|");
    for &style in &args.styles {
        if style == Style::Uring {
            // Seen with valgrind 3.19: the server never gets past setting up
            // its ring (registered buffer rings, disabled-then-enabled rings
            // and DEFER_TASKRUN are beyond its io_uring support).
            println!(
                "| {style} | — | valgrind cannot run it (its io_uring support stops short of this ring's set-up) |"
            );
            continue;
        }
        let one = run(style, &args, args.rounds);
        let two = run(style, &args, 2 * args.rounds);
        let messages = (args.conns * args.rounds) as f64;
        let note = match style {
            Style::Polling => "spins between messages: time-dependent",
            Style::Pool => "a pool of one thread per connection",
            _ => "",
        };
        match (one, two) {
            (Some(a), Some(b)) if b > a => {
                println!("| {style} | {:.0} | {note} |", (b - a) as f64 / messages)
            }
            _ => println!("| {style} | — | run failed or did not complete; {note} |"),
        }
        std::io::stdout().flush().ok();
    }
}
