//! Helpers shared by the conformance tests: servers in-process and as
//! processes, bounded socket I/O, a deterministic byte generator.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

pub use crate::procs::{children, wait_until};

use servers::{Config, ServerHandle, Style};

/// Upper bound for any single blocking socket operation in a test.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts `style` in-process on 127.0.0.1:0.
pub fn start(style: Style, config: Config) -> ServerHandle {
    let listener = servers::listener::bind("127.0.0.1:0".parse().unwrap(), &Default::default())
        .expect("bind 127.0.0.1:0");
    servers::start(style, config, listener).unwrap_or_else(|e| panic!("{style}: start failed: {e}"))
}

/// A client socket with bounded reads and writes.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// Sends `msg` and reads back exactly as many bytes.
pub fn round_trip(stream: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    stream.write_all(msg).expect("write");
    let mut back = vec![0u8; msg.len()];
    stream.read_exact(&mut back).expect("read echo");
    back
}

/// Reads until EOF (bounded by the socket's read timeout).
pub fn read_to_eof(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    stream.read_to_end(&mut out)?;
    Ok(out)
}

/// xorshift64*: reproducible "random" bytes and sizes without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Raises this test process's open-files limit (tests open thousands).
pub fn raise_fd_limit() -> u64 {
    servers::limits::raise_nofile_limit()
        .expect("raise RLIMIT_NOFILE")
        .soft
}

/// A `servers` process; killed on drop if still running. Its stderr is
/// collected line by line as it comes, so tests can wait for a line.
pub struct Spawned {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub pid: u32,
    stderr: Arc<(Mutex<Vec<String>>, Condvar)>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Spawned {
    /// Waits (bounded) until a stderr line contains `needle`.
    pub fn wait_stderr(&self, needle: &str, limit: Duration) -> bool {
        let (lines, grew) = &*self.stderr;
        let deadline = Instant::now() + limit;
        let mut lines = lines.lock().unwrap();
        loop {
            if lines.iter().any(|l| l.contains(needle)) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            lines = grew.wait_timeout(lines, deadline - now).unwrap().0;
        }
    }

    fn stderr_text(&self) -> String {
        self.stderr.0.lock().unwrap().join("\n")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn servers_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_servers"))
}

/// Spawns `servers <style> --addr 127.0.0.1:0 <extra>` and waits (bounded)
/// for its listening line.
pub fn spawn(style: Style, extra: &[&str]) -> Spawned {
    let mut cmd = servers_bin();
    cmd.arg(style.name())
        .args(["--addr", "127.0.0.1:0"])
        .args(extra);
    spawn_cmd(style, cmd)
}

pub fn spawn_cmd(style: Style, mut cmd: Command) -> Spawned {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn servers");
    let stdout = child.stdout.take().unwrap();
    let stderr_pipe = child.stderr.take().unwrap();
    let stderr: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
    let sink = Arc::clone(&stderr);
    let stderr_reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
            sink.0.lock().unwrap().push(line);
            sink.1.notify_all();
        }
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            panic!("{style}: no listening line within 20 s");
        }
    };
    let (addr, got_style, pid) = servers::parse_listening_line(&line)
        .unwrap_or_else(|| panic!("{style}: bad listening line {line:?}"));
    assert_eq!(got_style, style, "listening line names the style");
    assert_eq!(pid, child.id(), "listening line names the pid");
    assert_ne!(addr.port(), 0, "listening line gives the real port");
    Spawned {
        child: Some(child),
        addr,
        pid,
        stderr,
        stderr_reader: Some(stderr_reader),
    }
}

/// Resident set size of a process and all its descendants, in bytes: the
/// forking styles (`prefork`, `process`) hold their connections in child
/// processes, and a bound on the parent alone would test nothing. Summing
/// RSS counts pages the children share with the parent once per process,
/// which only makes the bound stricter.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc status");
    kb * 1024 + children(pid).into_iter().map(rss_bytes).sum::<u64>()
}

/// Sends SIGTERM and waits (bounded) for exit; returns exit status, stderr
/// and how long it took.
pub fn terminate(mut spawned: Spawned) -> (std::process::ExitStatus, String, Duration) {
    let pid = nix::unistd::Pid::from_raw(spawned.pid as i32);
    let mut child = spawned.child.take().expect("child present");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("send SIGTERM");
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send((status, started.elapsed()));
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok((status, took)) => {
            // The process is gone, so its stderr is at EOF: the reader ends.
            if let Some(reader) = spawned.stderr_reader.take() {
                let _ = reader.join();
            }
            (status.expect("wait"), spawned.stderr_text(), took)
        }
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("server did not exit within 10 s of SIGTERM");
        }
    }
}

/// Parses `key=value` out of the summary line.
pub fn summary_field(stderr: &str, key: &str) -> Option<u64> {
    let line = stderr.lines().find(|l| l.starts_with("summary "))?;
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}
