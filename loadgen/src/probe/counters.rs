//! What the kernel counts for a server: system calls (the tracepoint
//! `raw_syscalls:sys_enter`) and context switches (the software event
//! `context-switches`), through `perf_event_open` (crate `perf-event2`),
//! over every thread and process of the server's tree.
//!
//! Where the server has a cgroup the kernel can count on
//! ([`crate::probe::cgroup_perf`]), they are opened on it, one counter per
//! CPU, before the server starts: everything that runs in the group is
//! counted, at no cost per thread ([`ServerCounters::open_on_cgroup`]).
//! Otherwise they follow the tree, and do so only if open before the
//! server creates anything: they are opened with `inherit` on the server's
//! pid while it waits between fork and exec ([`StartGate`]). Reading the
//! parent's counter then gives the sum over the live threads and children
//! (the kernel adds each inherited counter in) plus what exited ones
//! counted (folded in when they exit); but each new thread gets a copy,
//! set up at its creation and folded back at its exit, which a thread or
//! process per connection pays (docs/method.md measures it). Both events fire in kernel context,
//! so the counters include the kernel: not permitted for a user other than
//! root while `perf_event_paranoid` is above 1; the figures are then "not
//! measured" with that reason, never 0.
//!
//! The tracepoint's id is in tracefs, which is not always mounted: when
//! root and /sys/kernel/tracing is empty, loadgen mounts tracefs there
//! ([`sys_enter_id`]); mounting it turns no tracing on.
//!
//! [`CounterWatch`] reads the counters at a run's measured window's edges
//! for [`crate::probe::sampler`].

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use perf_event::events::{Software, Tracepoint};
use perf_event::{Builder, Counter};

use crate::probe::cgroup_watch::{EdgeWatch, WindowFn};
use crate::results::server::{CountedOn, KernelCounts};

/// Where tracefs is mounted on current systems, and where older ones had it.
pub const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";
const SYS_ENTER: &str = "events/raw_syscalls/sys_enter/id";

/// How long the server waits for its counters between fork and exec, and
/// loadgen for the server's pid: neither stalls a start for longer.
const GATE_LIMIT: Duration = Duration::from_secs(10);

/// The id of `raw_syscalls:sys_enter`; mounts tracefs at [`TRACEFS`] first
/// when it is absent there and loadgen runs as root. Err: why not.
pub fn sys_enter_id() -> Result<u64, String> {
    if let Some(id) = read_id(&[Path::new(TRACEFS), Path::new(DEBUGFS_TRACING)]) {
        return id;
    }
    mount_tracefs()?;
    read_id(&[Path::new(TRACEFS)])
        .unwrap_or_else(|| Err(format!("no {SYS_ENTER} under {TRACEFS} once mounted")))
}

/// The id under the first of `dirs` that has the file (None: none has).
fn read_id(dirs: &[&Path]) -> Option<Result<u64, String>> {
    let path = dirs
        .iter()
        .map(|d| d.join(SYS_ENTER))
        .find(|p| p.exists())?;
    Some(
        fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))
            .and_then(|s| {
                s.trim()
                    .parse()
                    .map_err(|e| format!("{}: {e}", path.display()))
            }),
    )
}

/// Mounts tracefs at [`TRACEFS`] (root only; the directory exists when the
/// kernel has tracefs at all).
fn mount_tracefs() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err(format!(
            "no tracefs at {TRACEFS} (not mounted, and only root may mount it)"
        ));
    }
    if !Path::new(TRACEFS).is_dir() {
        return Err(format!("no tracefs: this kernel has no {TRACEFS}"));
    }
    let c = |s: &str| std::ffi::CString::new(s).expect("no NUL");
    let (src, target, fstype) = (c("nodev"), c(TRACEFS), c("tracefs"));
    // SAFETY: NUL-terminated strings that outlive the call; no data.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "no tracefs at {TRACEFS} (mounting it failed: {})",
            io::Error::last_os_error()
        ));
    }
    note!("loadgen: mounted tracefs at {TRACEFS} to count system calls (raw_syscalls:sys_enter)");
    Ok(())
}

/// One count (a counter per CPU where counted on a cgroup), or why it is
/// not counted.
type Slot = Result<Mutex<Vec<Counter>>, String>;

/// A server's counters, open from before its first instruction.
#[derive(Debug)]
pub struct ServerCounters {
    syscalls: Slot,
    switches: Slot,
    /// None where neither is counted.
    counted_on: Option<CountedOn>,
}

/// Both counters at one moment (Err: why not counted).
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub syscalls: Result<u64, String>,
    pub switches: Result<u64, String>,
}

impl ServerCounters {
    /// Opens both counters on `pid` and every thread and process it creates
    /// from now on.
    pub fn open(pid: u32) -> ServerCounters {
        ServerCounters::open_with(pid, sys_enter_id())
    }

    /// As [`ServerCounters::open`] with the tracepoint's id (or why there
    /// is none) given.
    pub fn open_with(pid: u32, sys_enter: Result<u64, String>) -> ServerCounters {
        let open = |b: &mut Builder<'_>| -> Slot {
            b.observe_pid(pid as libc::pid_t)
                .any_cpu()
                .inherit(true)
                // Both fire in kernel context: excluding the kernel
                // would count nothing.
                .include_kernel()
                .enabled(true)
                .build()
                .map(|c| Mutex::new(vec![c]))
                .map_err(|e| refused(&e))
        };
        let switches = open(&mut Builder::new(Software::CONTEXT_SWITCHES));
        ServerCounters {
            syscalls: sys_enter.and_then(|id| open(&mut Builder::new(Tracepoint::with_id(id)))),
            counted_on: switches.is_ok().then_some(CountedOn::Tasks),
            switches,
        }
    }

    /// Opens both counters on the cgroup at `dir`, one per online CPU:
    /// whatever runs in the group is counted, from whenever it joins. Err:
    /// why not (the caller then follows the tasks instead).
    pub fn open_on_cgroup(dir: &Path) -> Result<ServerCounters, String> {
        let group = fs::File::open(dir).map_err(|e| format!("opening {}: {e}", dir.display()))?;
        let cpus = online_cpus()?;
        let open = |event: &dyn Fn() -> Builder<'static>| -> Slot {
            let counters = cpus
                .iter()
                .map(|&cpu| {
                    event()
                        .observe_cgroup(&group)
                        .one_cpu(cpu)
                        .include_kernel()
                        .enabled(true)
                        .build()
                        .map_err(|e| refused(&e))
                })
                .collect::<Result<Vec<Counter>, String>>()?;
            Ok(Mutex::new(counters))
        };
        let switches = open(&|| Builder::new(Software::CONTEXT_SWITCHES))
            .map_err(|e| format!("counting on the cgroup {}: {e}", dir.display()))?;
        Ok(ServerCounters {
            syscalls: sys_enter_id().and_then(|id| open(&|| Builder::new(Tracepoint::with_id(id)))),
            switches: Ok(switches),
            counted_on: Some(CountedOn::Cgroup),
        })
    }

    /// Counters that are not counted, for `reason`.
    pub fn unmeasured(reason: &str) -> ServerCounters {
        ServerCounters {
            syscalls: Err(reason.into()),
            switches: Err(reason.into()),
            counted_on: None,
        }
    }

    /// What they are attached to (None: nothing is counted).
    pub fn counted_on(&self) -> Option<CountedOn> {
        self.counted_on
    }

    /// Both counters now, summed over the tree.
    pub fn read(&self) -> Reading {
        let read = |slot: &Slot| -> Result<u64, String> {
            let counters = slot.as_ref().map_err(Clone::clone)?;
            let mut cs = counters
                .lock()
                .map_err(|_| "counter poisoned".to_string())?;
            cs.iter_mut().try_fold(0u64, |sum, c| {
                c.read()
                    .map(|n| sum + n)
                    .map_err(|e| format!("reading the counter: {e}"))
            })
        };
        Reading {
            syscalls: read(&self.syscalls),
            switches: read(&self.switches),
        }
    }
}

/// The CPUs the kernel has online (/sys/devices/system/cpu/online, e.g.
/// "0-1,4"): a cgroup's counter is per CPU.
fn online_cpus() -> Result<Vec<usize>, String> {
    const ONLINE: &str = "/sys/devices/system/cpu/online";
    let text = fs::read_to_string(ONLINE).map_err(|e| format!("reading {ONLINE}: {e}"))?;
    parse_cpu_list(&text).ok_or_else(|| format!("{ONLINE}: cannot read {:?}", text.trim()))
}

fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().ok()?..=b.parse::<usize>().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    (!cpus.is_empty()).then_some(cpus)
}

/// The reason a counter was refused, in the terms a reader can act on.
fn refused(e: &io::Error) -> String {
    let paranoid = fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => format!(
            "not permitted: perf_event_open refused ({e}; kernel.perf_event_paranoid={paranoid}, run as root)"
        ),
        Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::EOPNOTSUPP) => {
            format!("not supported by this kernel: perf_event_open: {e}")
        }
        Some(libc::ESRCH) => format!("the server was gone before its counters opened ({e})"),
        _ => format!("perf_event_open failed: {e}"),
    }
}

/// The figures between two readings, per message for `messages`. A
/// counter not read at both edges is None with the reason.
pub fn counts_between(from: Option<&Reading>, to: Option<&Reading>, messages: u64) -> KernelCounts {
    let delta = |f: fn(&Reading) -> &Result<u64, String>| -> Result<u64, String> {
        match (from, to) {
            (Some(a), Some(b)) => Ok(f(b).clone()?.saturating_sub(f(a).clone()?)),
            (Some(a), None) => f(a)
                .clone()
                .and(Err("the run ended before its measured window did".into())),
            _ => Err("the run never reached its measured window".into()),
        }
    };
    let (syscalls, switches) = (delta(|r| &r.syscalls), delta(|r| &r.switches));
    let mut k = KernelCounts {
        syscalls: syscalls.as_ref().ok().copied(),
        syscalls_unmeasured: syscalls.err(),
        context_switches: switches.as_ref().ok().copied(),
        context_switches_unmeasured: switches.err(),
        ..KernelCounts::default()
    };
    k.per_message(messages);
    k
}

/// Reads a server's counters at a run's window's edges, on a thread of its
/// own (as [`crate::probe::cgroup_watch::GroupWatch`] reads the cgroup).
pub struct CounterWatch {
    edges: EdgeWatch<Reading>,
    counted_on: Option<CountedOn>,
}

impl CounterWatch {
    pub fn start(counters: Arc<ServerCounters>, window: WindowFn) -> Result<CounterWatch, String> {
        let counted_on = counters.counted_on();
        let edges = EdgeWatch::start("loadgen-counters", move || Some(counters.read()), window)?;
        Ok(CounterWatch { edges, counted_on })
    }

    /// The figures over the window; per message is left to the caller,
    /// which knows the messages.
    pub fn finish(self) -> KernelCounts {
        let (from, to, late) = self.edges.finish();
        if let Some(why) = late {
            return KernelCounts {
                counted_on: self.counted_on,
                ..KernelCounts::unmeasured(&why)
            };
        }
        KernelCounts {
            counted_on: self.counted_on,
            ..counts_between(from.as_ref(), to.as_ref(), 0)
        }
    }
}

/// Holds a starting server between fork and exec until its counters are
/// open (see the module's docs): two pipes, the server's pid one way and a
/// go-ahead the other.
pub struct StartGate {
    /// The server's side, closed in the parent once it has been spawned.
    pid_w: OwnedFd,
    go_r: OwnedFd,
    opener: JoinHandle<ServerCounters>,
    /// The parent's ends, as the child sees them (it closes them).
    pid_r_raw: RawFd,
    go_w_raw: RawFd,
}

/// What the child needs of a [`StartGate`] between fork and exec: plain
/// descriptors, no allocation.
#[derive(Clone, Copy, Debug)]
pub struct ChildGate {
    pid_w: RawFd,
    go_r: RawFd,
    pid_r: RawFd,
    go_w: RawFd,
}

impl StartGate {
    /// Two pipes (close-on-exec) and the thread that opens the counters on
    /// the pid the child sends.
    pub fn new() -> io::Result<StartGate> {
        let (pid_r, pid_w) = pipe()?;
        let (go_r, go_w) = pipe()?;
        let (pid_r_raw, go_w_raw) = (pid_r.as_raw_fd(), go_w.as_raw_fd());
        let opener = std::thread::Builder::new()
            .name("loadgen-counters-open".into())
            .spawn(move || open_when_told(pid_r, go_w))?;
        Ok(StartGate {
            pid_w,
            go_r,
            opener,
            pid_r_raw,
            go_w_raw,
        })
    }

    pub fn child(&self) -> ChildGate {
        ChildGate {
            pid_w: self.pid_w.as_raw_fd(),
            go_r: self.go_r.as_raw_fd(),
            pid_r: self.pid_r_raw,
            go_w: self.go_w_raw,
        }
    }

    /// After the spawn (whether it worked or not): the counters, or why
    /// there are none.
    pub fn finish(self) -> ServerCounters {
        // The child's ends: with them closed, the opener sees the end of
        // its pipe should the child never have written.
        drop(self.pid_w);
        drop(self.go_r);
        self.opener
            .join()
            .unwrap_or_else(|_| ServerCounters::unmeasured("the counter thread panicked"))
    }
}

impl ChildGate {
    /// In the child, between fork and exec: sends its pid, then waits (at
    /// most [`GATE_LIMIT`]) for the go-ahead or the pipe's end. Only
    /// async-signal-safe calls (close, getpid, write, poll, read).
    pub fn wait(&self) {
        // SAFETY: descriptors inherited from the parent (or already closed:
        // then the calls fail harmlessly); the buffers are on the stack.
        unsafe {
            // The parent's ends: the go-ahead pipe then ends if the
            // parent's opener does.
            libc::close(self.pid_r);
            libc::close(self.go_w);
            let pid = libc::getpid().to_ne_bytes();
            if libc::write(self.pid_w, pid.as_ptr().cast(), pid.len()) != pid.len() as isize {
                return;
            }
            let mut fd = libc::pollfd {
                fd: self.go_r,
                events: libc::POLLIN,
                revents: 0,
            };
            if libc::poll(&mut fd, 1, GATE_LIMIT.as_millis() as libc::c_int) == 1 {
                let mut byte = 0u8;
                libc::read(self.go_r, (&mut byte as *mut u8).cast(), 1);
            }
            libc::close(self.pid_w);
            libc::close(self.go_r);
        }
    }
}

/// The opener thread: the child's pid from `pid_r`, the counters opened on
/// it, then the go-ahead on `go_w`.
fn open_when_told(pid_r: OwnedFd, go_w: OwnedFd) -> ServerCounters {
    use std::io::{Read, Write};
    let mut pid_r = fs::File::from(pid_r);
    let mut buf = [0u8; 4];
    let polled = nix::poll::poll(
        &mut [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&pid_r),
            nix::poll::PollFlags::POLLIN,
        )],
        nix::poll::PollTimeout::try_from(GATE_LIMIT).unwrap_or(nix::poll::PollTimeout::MAX),
    );
    if !matches!(polled, Ok(1)) {
        return ServerCounters::unmeasured("the server did not reach its start within 10 s");
    }
    if pid_r.read_exact(&mut buf).is_err() {
        return ServerCounters::unmeasured("the server did not start");
    }
    let pid = i32::from_ne_bytes(buf);
    let counters = ServerCounters::open(pid as u32);
    let _ = fs::File::from(go_w).write_all(&[1]);
    counters
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(sys: u64, cs: u64) -> Reading {
        Reading {
            syscalls: Ok(sys),
            switches: Ok(cs),
        }
    }

    #[test]
    fn counts_are_differences_over_the_window_per_message() {
        let k = counts_between(Some(&reading(100, 10)), Some(&reading(2100, 510)), 1000);
        assert_eq!(k.syscalls, Some(2000));
        assert_eq!(k.syscalls_per_msg, Some(2.0));
        assert_eq!(k.context_switches, Some(500));
        assert_eq!(k.context_switches_per_msg, Some(0.5));
        assert_eq!(k.syscalls_unmeasured, None);
    }

    #[test]
    fn a_refused_counter_is_not_measured_with_its_reason_never_zero() {
        let refused = Reading {
            syscalls: Err("no tracefs at /sys/kernel/tracing".into()),
            switches: Ok(5),
        };
        let k = counts_between(Some(&refused), Some(&refused), 1000);
        assert_eq!(k.syscalls, None);
        assert_eq!(k.syscalls_per_msg, None);
        assert!(
            k.syscalls_unmeasured
                .as_deref()
                .unwrap()
                .contains("tracefs"),
            "{k:?}"
        );
        assert_eq!(k.context_switches, Some(0));
        let k = counts_between(None, None, 1000);
        assert!(k.syscalls.is_none() && k.context_switches.is_none());
        assert!(k.context_switches_unmeasured.is_some());
        // No messages: no per-message figure, not a division by zero.
        let k = counts_between(Some(&reading(1, 1)), Some(&reading(5, 5)), 0);
        assert_eq!((k.syscalls, k.syscalls_per_msg), (Some(4), None));
    }

    #[test]
    fn counters_given_no_tracepoint_say_why() {
        let c = ServerCounters::open_with(
            std::process::id(),
            Err("no tracefs at /x (not mounted)".into()),
        );
        let r = c.read();
        assert_eq!(r.syscalls, Err("no tracefs at /x (not mounted)".into()));
        let c = ServerCounters::unmeasured("not counted here");
        let k = counts_between(Some(&c.read()), Some(&c.read()), 10);
        assert_eq!(k.syscalls_unmeasured.as_deref(), Some("not counted here"));
        assert_eq!(
            k.context_switches_unmeasured.as_deref(),
            Some("not counted here")
        );
        assert_eq!(k.context_switches, None);
    }
}
