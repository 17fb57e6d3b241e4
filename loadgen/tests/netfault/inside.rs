//! Every style served inside a namespace at once, each on a port of its
//! own, and one `loadgen run` per style against it, also inside: the
//! built binary (`loadgen serve <style>`, `loadgen run --format json`), so
//! that a run that hangs is a process the test kills, and the result is
//! the JSON any user gets.

use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use loadgen::RunResult;
use servers::Style;

use crate::common::wait_within;
use crate::netns::Netns;

/// A server running inside the namespace.
pub struct Served {
    pub style: Style,
    pub addr: SocketAddr,
    pub pid: u32,
}

/// Starts a server of every style inside `ns` and waits (bounded) for each
/// one's listening line.
pub fn serve_all(ns: &mut Netns) -> Vec<Served> {
    Style::ALL
        .iter()
        .map(|&style| {
            let mut cmd = ns.command(env!("CARGO_BIN_EXE_loadgen"));
            cmd.args(["serve", style.name(), "--addr", "127.0.0.1:0"]);
            let spawned = ns.spawn(cmd);
            let listening = spawned.first_line(Duration::from_secs(20), |line| {
                servers::parse_listening_line(line)
            });
            let Some((addr, got, pid)) = listening else {
                panic!(
                    "{style}: no listening line within 20 s; stderr: {}",
                    spawned.stderr_text()
                );
            };
            assert_eq!((got, pid), (style, spawned.pid), "{style}: listening line");
            Served { style, addr, pid }
        })
        .collect()
}

/// One load, the same for every style.
#[derive(Clone, Debug)]
pub struct Load {
    pub conns: u32,
    pub size: u32,
    /// Open loop at this rate (messages/s for each style's run); closed
    /// loop if `None`.
    pub rate: Option<u32>,
    pub warmup: Duration,
    pub duration: Duration,
    pub timeout: Duration,
}

impl Load {
    fn args(&self, addr: SocketAddr) -> Vec<String> {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let mut args = vec![
            "run".to_string(),
            "--addr".into(),
            addr.to_string(),
            "--conns".into(),
            self.conns.to_string(),
            "--size".into(),
            self.size.to_string(),
            "--warmup".into(),
            ms(self.warmup),
            "--duration".into(),
            ms(self.duration),
            "--timeout".into(),
            ms(self.timeout),
            "--format".into(),
            "json".into(),
        ];
        if let Some(rate) = self.rate {
            args.extend([
                "--mode".into(),
                "open".into(),
                "--rate".into(),
                rate.to_string(),
            ]);
        }
        args
    }

    /// The longest a run may take: connecting, warm-up, window, a last
    /// message's timeout, and room for a slow, shared machine.
    pub fn limit(&self) -> Duration {
        self.warmup + self.duration + self.timeout + Duration::from_secs(20)
    }
}

/// Runs started against every server, one `loadgen run` each.
pub struct Runs {
    children: Vec<(Style, Child)>,
    started: Instant,
    limit: Duration,
}

/// Starts `load` against every server at once, inside `ns`. Spawn from
/// the test's thread (the children die with the thread that spawned them).
pub fn start(ns: &Netns, served: &[Served], load: &Load) -> Runs {
    let children = served
        .iter()
        .map(|s| {
            let child = ns
                .command(env!("CARGO_BIN_EXE_loadgen"))
                .args(load.args(s.addr))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawning loadgen run");
            (s.style, child)
        })
        .collect();
    Runs {
        children,
        started: Instant::now(),
        limit: load.limit(),
    }
}

impl Runs {
    /// Every run's result, each waited for until the runs' common limit:
    /// a run still going then is killed and fails the test (a hang).
    pub fn results(self) -> Vec<(Style, RunResult)> {
        let deadline = self.started + self.limit;
        self.children
            .into_iter()
            .map(|(style, child)| {
                let left = deadline.saturating_duration_since(Instant::now());
                let what = format!("{style}: loadgen run");
                let out = wait_within(child, left.max(Duration::from_secs(1)), &what);
                let result = serde_json::from_slice::<RunResult>(&out.stdout).unwrap_or_else(|e| {
                    panic!(
                        "{style}: no JSON result ({e}), {}; stderr: {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    )
                });
                (style, result)
            })
            .collect()
    }
}

/// Runs `load` against every server and waits for the results.
pub fn run_all(ns: &Netns, served: &[Served], load: &Load) -> Vec<(Style, RunResult)> {
    start(ns, served, load).results()
}

/// Established TCP connections whose local port is `port`, in the network
/// namespace of process `pid` (its /proc/<pid>/net/tcp): the server's side
/// of loadgen's connections.
pub fn established(pid: u32, port: u16) -> usize {
    let Ok(table) = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")) else {
        return 0;
    };
    let port = format!("{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let mut cols = l.split_whitespace().skip(1);
            let local = cols.next().unwrap_or("");
            let state = cols.nth(1).unwrap_or("");
            local.rsplit(':').next() == Some(port.as_str()) && state == "01"
        })
        .count()
}

/// Stops every server with SIGTERM: each must exit 0 within 10 s, its
/// connections closed (none hangs on a connection the fault left behind).
pub fn stop_all(ns: &mut Netns, served: &[Served]) {
    for s in served {
        match ns.terminate(s.pid, Duration::from_secs(10)) {
            Ok(status) => assert!(status.success(), "{}: exited with {status}", s.style),
            Err(e) => panic!("{}: {e}", s.style),
        }
    }
}
