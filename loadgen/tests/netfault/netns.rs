//! A network namespace made for one test (`ip netns add`), with its own
//! loopback: what runs in it can reach only that loopback, and iptables
//! rules and tc qdiscs put into it touch nothing else on the machine.
//!
//! [`Netns::new`] takes [`crate::alone`] (one namespace at a time in this
//! binary), removes namespaces left behind by an earlier run that was
//! killed, makes `c10k-echo-test-<pid>-<n>` and brings its `lo` up.
//! Dropping it (also when the test panics) kills every process inside it,
//! reaps the ones it spawned and deletes it. Where no namespace can be made
//! (not root, no `ip`, a sandbox that refuses it) it says why and the test
//! prints `skipped: <why>` and passes: CI runs as root, where they run.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::{alive, wait_until, wait_within};
use crate::say;

/// The names of every namespace these tests make start with this, then the
/// pid of the test process that made it.
const PREFIX: &str = "c10k-echo-test-";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A live namespace; see the module docs.
pub struct Netns {
    pub name: String,
    /// `/run/netns/<name>`, open: children enter it with setns(2).
    file: File,
    /// `net:[inode]`, as /proc/<pid>/ns/net reads for a process inside.
    id: String,
    spawned: Vec<Child>,
    _alone: MutexGuard<'static, ()>,
}

impl Netns {
    /// Makes a namespace, or says why none can be made here.
    pub fn new() -> Result<Netns, String> {
        let alone = crate::alone();
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err("network namespaces need root".into());
        }
        sweep();
        let name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut add = Command::new("ip");
        add.args(["netns", "add", &name]);
        tool(add).map_err(|e| format!("cannot make a network namespace: {e}"))?;
        let opened = File::open(format!("/run/netns/{name}")).and_then(|f| {
            let id = format!("net:[{}]", f.metadata()?.ino());
            Ok((f, id))
        });
        let (file, id) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                delete(&name);
                return Err(format!("cannot open /run/netns/{name}: {e}"));
            }
        };
        let ns = Netns {
            name,
            file,
            id,
            spawned: Vec::new(),
            _alone: alone,
        };
        ns.exec("ip", &["link", "set", "lo", "up"])
            .map_err(|e| format!("cannot bring lo up in the namespace: {e}"))?;
        Ok(ns)
    }

    /// `program` set to run inside the namespace. It dies with the thread
    /// that spawns it (PR_SET_PDEATHSIG), so spawn from the test's thread.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        let fd = self.file.as_raw_fd();
        // SAFETY: between fork and exec only async-signal-safe calls are
        // made (setns and prctl are plain system calls, no allocation). Were
        // `fd` closed by the time of the spawn (the namespace dropped), setns
        // would fail with EBADF and the spawn report it: no other effect.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        cmd
    }

    /// Runs a tool (iptables, tc, ip) inside to its end, bounded: an error
    /// with its stderr if it failed.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<(), String> {
        self.output(program, args).map(drop)
    }

    /// As [`exec`](Self::exec), with what the tool printed (counters, say).
    pub fn output(&self, program: &str, args: &[&str]) -> Result<String, String> {
        let mut cmd = self.command(program);
        cmd.args(args);
        tool(cmd)
    }

    /// Whether `program` runs inside (e.g. `iptables -S`): a reason to skip
    /// the test if not.
    pub fn require(&self, program: &str, args: &[&str]) -> Result<(), String> {
        self.exec(program, args)
            .map_err(|e| format!("`{program} {}` fails here: {e}", args.join(" ")))
    }

    /// Spawns `cmd` (from [`command`](Self::command)) and keeps it:
    /// dropping the namespace kills and reaps it. Its stdout comes line by
    /// line, its stderr is kept (both read to their end, so that a chatty
    /// process never blocks on a full pipe).
    pub fn spawn(&mut self, mut cmd: Command) -> Spawned {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?} in {}: {e}", self.name));
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (sink, pipe) = (
            Arc::clone(&stderr),
            child.stderr.take().expect("piped stderr"),
        );
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap_or_else(|e| e.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
        });
        let pid = child.id();
        self.spawned.push(child);
        Spawned { pid, lines, stderr }
    }

    /// SIGTERM to a process [`spawn`](Self::spawn)ed, and its exit status
    /// once it has exited, at most `limit` later.
    pub fn terminate(&mut self, pid: u32, limit: Duration) -> Result<ExitStatus, String> {
        let child = self
            .spawned
            .iter_mut()
            .find(|c| c.id() == pid)
            .ok_or_else(|| format!("{pid} was not spawned here"))?;
        kill(Pid::from_raw(pid as i32), Signal::SIGTERM).map_err(|e| e.to_string())?;
        let mut status = None;
        wait_until(limit, || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        });
        status.ok_or_else(|| format!("{pid} did not exit within {limit:?} of SIGTERM"))
    }

    /// Runs `f` on a thread of this process that has entered the namespace
    /// (a socket is in the namespace its thread was in when it was made):
    /// a client of a server inside, from the test. Bounded by `limit`.
    pub fn on_thread<T: Send + 'static>(
        &self,
        limit: Duration,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let file = self.file.try_clone().expect("dup of the namespace fd");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("entering the namespace");
            let _ = tx.send(f());
        });
        match rx.recv_timeout(limit) {
            Ok(value) => value,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("a thread in {} did not finish within {limit:?}", self.name)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("a thread in {} panicked", self.name)
            }
        }
    }

    /// Connects to `addr` inside the namespace and echoes `len` bytes of a
    /// pattern: whether every byte came back as sent (the server still
    /// serves a fresh client).
    pub fn echoes(&self, addr: SocketAddr, len: usize) -> Result<(), String> {
        self.on_thread(Duration::from_secs(15), move || crate::echo_once(addr, len))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        kill_all(&self.id);
        for child in &mut self.spawned {
            let _ = child.kill();
            let _ = child.wait();
        }
        delete(&self.name);
    }
}

/// Runs a set-up tool with output captured, at most 20 s: its stdout.
fn tool(mut cmd: Command) -> Result<String, String> {
    let what = format!("{cmd:?}");
    let spawned = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: {e}"))?;
    let out = wait_within(spawned, Duration::from_secs(20), &what);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{what}: {}, {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn delete(name: &str) {
    let mut del = Command::new("ip");
    del.args(["netns", "delete", name]);
    if let Err(e) = tool(del) {
        say(&format!("netns: {e}"));
    }
}

fn pids_in(id: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|link| link.as_os_str() == id)
        })
        .collect()
}

/// SIGKILLs every process in the namespace `id`, and waits (bounded) until
/// none is alive: a forked child can be made while the first pass runs.
fn kill_all(id: &str) {
    let gone = wait_until(Duration::from_secs(5), || {
        let pids: Vec<u32> = pids_in(id).into_iter().filter(|p| alive(*p)).collect();
        for &pid in &pids {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        pids.is_empty()
    });
    if !gone {
        say(&format!(
            "netns: processes still alive in {id} after SIGKILL"
        ));
    }
}

/// Removes the namespaces (and what runs in them) of test processes that
/// are gone: a run killed before its namespaces were dropped. Our own are
/// leftovers too, since [`crate::alone`] is held while one of ours lives.
fn sweep() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if owner != std::process::id() && alive(owner) {
            continue;
        }
        if let Ok(meta) = entry.metadata() {
            kill_all(&format!("net:[{}]", meta.ino()));
        }
        delete(&name);
        say(&format!("netns: removed {name}, left by an earlier run"));
    }
}

/// A process spawned in a namespace: its pid, its stdout's lines as they
/// come, and its stderr so far.
pub struct Spawned {
    pub pid: u32,
    pub lines: mpsc::Receiver<String>,
    pub stderr: Arc<Mutex<String>>,
}

impl Spawned {
    /// The first stdout line that `pick` takes, waited for at most `limit`.
    pub fn first_line<T>(&self, limit: Duration, pick: impl Fn(&str) -> Option<T>) -> Option<T> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self.lines.recv_timeout(left).ok()?;
            if let Some(found) = pick(&line) {
                return Some(found);
            }
        }
    }

    pub fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
