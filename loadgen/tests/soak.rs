//! `loadgen soak` end to end: the 30-second soak of two styles CI runs, a
//! server that leaks caught by it (and the same server without the leak
//! passing), Ctrl-C, and the paced churn it drives. The soaks of real
//! servers take turns (one at a time: a second beside it would make the
//! open loop's schedule the machine's, not the server's); every wait is
//! bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::time::Duration;

use loadgen::compare::env::Target;
use loadgen::soak::model::{Check, Plan};
use loadgen::soak::{load, verdict};
use loadgen::{Mode, RunSpec};
use servers::Style;

mod common;
use common::{alive, children, in_process, loadgen, run, wait_until, wait_within};

/// The CI soak holds it alone; the shorter tests share it.
static TURNS: RwLock<()> = RwLock::new(());

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgen-soak-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// "CI runs a 30-second soak of two styles": both pass, each sampled at
/// least 20 times, without an error, every verdict given.
#[test]
fn a_thirty_second_soak_of_two_styles_passes() {
    let _alone = TURNS.write().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("ci");
    let mut cmd = loadgen();
    cmd.args(["soak", "--styles", "reactor,threads", "--duration", "30s"])
        .arg("--out")
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = wait_within(cmd.spawn().unwrap(), Duration::from_secs(150), "soak");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for style in ["reactor", "threads"] {
        assert!(stdout.contains(&format!("## {style}: pass")), "{stdout}");
    }
    assert!(stdout.contains("| memory (RSS) |") && stdout.contains("| fds |"));
    assert!(
        stdout.contains("**Verdict: every style passed**"),
        "{stdout}"
    );
    let doc = json(&dir.join("soak.json"));
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["passed"], true);
    let styles = doc["styles"].as_array().unwrap();
    let names: Vec<&str> = styles.iter().filter_map(|s| s["style"].as_str()).collect();
    assert_eq!(names, ["reactor", "threads"]);
    for st in styles {
        let samples = st["samples"].as_array().unwrap();
        assert!(samples.len() >= 20, "{} samples", samples.len());
        assert!(samples.iter().all(|s| s["fds"].as_u64().is_some()));
        let runs = st["runs"].as_array().unwrap();
        let points: Vec<&str> = runs
            .iter()
            .filter_map(|r| r["tags"]["point"].as_str())
            .collect();
        assert_eq!(points, ["open", "churn", "idle"]);
        for r in runs {
            let errors: u64 = r["errors"]
                .as_object()
                .unwrap()
                .values()
                .filter_map(|v| v.as_u64())
                .sum();
            assert_eq!(errors, 0, "{}", r["errors"]);
            assert!(r["messages"].as_u64().unwrap() > 0);
        }
        let checks: Vec<&str> = st["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["passed"] == true)
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(checks, ["errors", "memory", "fds", "threads", "server"]);
        // A server that ran 351 connections through the soak.
        let fds = st["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "fds")
            .unwrap();
        assert!(fds["mean"].as_f64().unwrap() > 351.0, "{fds}");
    }
    assert!(
        std::fs::read_to_string(dir.join("soak.md"))
            .unwrap()
            .contains("## threads: pass")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Not a test: the server the leak test soaks, run by it in a child
/// process (`SOAK_TEST_SERVER=leak` or `clean`). A thread per connection
/// echoes until the client closes; the leaking one then keeps the socket
/// and a 64 KiB buffer it wrote to, forever.
#[test]
#[ignore = "a server for a_server_that_leaks_fails_its_soak, started in a child process"]
fn leaking_test_server() {
    let Ok(kind) = std::env::var("SOAK_TEST_SERVER") else {
        return;
    };
    let leak = kind == "leak";
    static KEPT: Mutex<Vec<(TcpStream, Vec<u8>)>> = Mutex::new(Vec::new());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    println!("listening on {}", listener.local_addr().unwrap());
    // Ends with the test that started it (its stdin closes).
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let mut stream = stream;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            if leak {
                buf.fill(1);
                KEPT.lock().unwrap().push((stream, buf));
            }
        });
    }
}

/// The test server in a child process, killed on drop.
struct TestServer {
    child: Child,
    addr: std::net::SocketAddr,
}

impl TestServer {
    fn start(kind: &str) -> TestServer {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "leaking_test_server", "--nocapture"])
            .env("SOAK_TEST_SERVER", kind)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.parse().unwrap());
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(20));
        let mut server = TestServer {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
        };
        server.addr = addr.expect("the test server listening within 20 s");
        server
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A short soak of `kind`'s test server through soak's own loads,
/// sampling and verdict: its checks.
fn soak_test_server(kind: &str) -> Vec<Check> {
    let server = TestServer::start(kind);
    let plan = Plan {
        sample_interval_s: 0.2,
        open_conns: 5,
        open_rate: 200.0,
        churn_rate: 50.0,
        idle: 20,
        ..Plan::new(Duration::from_secs(5), Duration::from_secs(1))
    };
    let target = Target {
        style: format!("test-{kind}"),
        addr: server.addr,
        server_pid: Some(server.child.id()),
        container: None,
        cgroup: None,
        counters: None,
        idle_cpu: 0.0,
        foreign_cpus: None,
    };
    let measured = load::measure(&target, &plan, &Arc::new(AtomicBool::new(false)));
    assert!(measured.samples.len() >= 15, "{:?}", measured.samples);
    let series = verdict::trends(&measured.samples, &plan);
    verdict::judge(&series, &measured.runs, &plan.bounds)
}

fn check<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks.iter().find(|c| c.name == name).unwrap()
}

/// A server that keeps every closed connection's socket and buffer fails
/// on fds and memory, though it answers every message; the same server
/// without the leak passes both.
#[test]
fn a_server_that_leaks_fails_its_soak() {
    let _turn = TURNS.read().unwrap_or_else(|e| e.into_inner());
    let (leaky, clean) = std::thread::scope(|s| {
        let leaky = s.spawn(|| soak_test_server("leak"));
        let clean = s.spawn(|| soak_test_server("clean"));
        (leaky.join().unwrap(), clean.join().unwrap())
    });
    assert!(check(&leaky, "errors").passed, "{leaky:?}");
    let fds = check(&leaky, "fds");
    assert!(!fds.passed, "{fds:?}");
    // 50 connections a second for the 4 s fitted: about 200 fds.
    assert!(fds.value.unwrap() > 100.0, "{fds:?}");
    assert!(!check(&leaky, "memory").passed, "{leaky:?}");
    assert!(check(&clean, "errors").passed, "{clean:?}");
    assert!(check(&clean, "fds").passed, "{clean:?}");
    assert!(check(&clean, "memory").passed, "{clean:?}");
}

/// Ctrl-C ends the soak: what was measured is written, the server is
/// stopped, and it exits 130.
#[test]
fn ctrl_c_writes_what_was_measured_and_stops_the_server() {
    let _turn = TURNS.read().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("ctrl-c");
    let child = loadgen()
        .args(["soak", "--styles", "reactor", "--duration", "60s", "--out"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The server, once the idle load holds its 300 connections.
    let mut server = None;
    let found = wait_until(Duration::from_secs(30), || {
        server = children(child.id())
            .into_iter()
            .find(|&p| cmdline(p).split(' ').nth(1) == Some("serve"));
        server.is_some_and(|p| open_fds(p) > 300)
    });
    let pid = child.id() as i32;
    let signal = |sig| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    if !found {
        let _ = signal(nix::sys::signal::Signal::SIGKILL);
        panic!("no server holding the soak's connections within 30 s");
    }
    signal(nix::sys::signal::Signal::SIGINT).unwrap();
    let out = wait_within(child, Duration::from_secs(30), "soak after Ctrl-C");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let doc = json(&dir.join("soak.json"));
    assert_eq!(doc["interrupted"], true);
    assert_eq!(doc["passed"], false);
    assert!(!doc["styles"][0]["samples"].as_array().unwrap().is_empty());
    let server = server.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || !alive(server)),
        "the server {server} outlived the soak"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .unwrap_or_default()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// The churn of a soak keeps to its `--connect-rate`: every reconnect
/// waits its turn (unpaced, one slot churns thousands a second).
#[test]
fn churn_keeps_to_its_connect_rate() {
    let _turn = TURNS.read().unwrap_or_else(|e| e.into_inner());
    let server = in_process(Style::Reactor);
    let spec = RunSpec {
        addr: server.local_addr(),
        conns: 2,
        mode: Mode::Churn,
        connect_rate: Some(50.0),
        warmup: Duration::from_millis(200),
        duration: Duration::from_secs(1),
        ..RunSpec::default()
    };
    let r = run(&spec);
    assert!(r.outcome.ok, "{:?}", r.outcome.reasons);
    // 1.2 s at 50/s, and the two first connects: at most 62, whatever
    // the machine; a slower one does fewer.
    assert!(
        (10..=65).contains(&r.connect.established),
        "{} connections established",
        r.connect.established
    );
    assert!(r.messages >= 10, "{} cycles measured", r.messages);
}
