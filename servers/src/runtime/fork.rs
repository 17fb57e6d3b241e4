//! Child processes for the styles that fork: forking
//! from a multi-threaded server, watching children through pidfds, stopping
//! and reaping them.
//!
//! A forked child of a multi-threaded process has only the forking thread,
//! and copies of every fd. So before it runs its body the child:
//! - puts SIGINT/SIGTERM back to their default action (the parent's handlers
//!   write to a pipe the child does not serve); a style then says how
//!   SIGTERM stops its children cleanly ([`stop_on_sigterm`],
//!   [`shut_down_on_sigterm`]);
//! - asks for SIGKILL when the forking thread dies (`PR_SET_PDEATHSIG`), so a
//!   killed server leaves no orphans serving its port;
//! - closes every fd but stdio and the ones it needs, so it holds no copy of
//!   the parent's other sockets (a copy would keep them open after the
//!   parent closed them, and their peers would never see EOF).
//!
//! The forking thread must live as long as the children (the styles fork
//! from their runner thread, which reaps them before it returns).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid};

/// A child process, and a pidfd that becomes readable when it exits.
/// Where the system has no pidfd_open (kernels before 5.3, or valgrind,
/// which the instruction-count bench runs the servers under) there is no
/// pidfd, and the parent checks its children on a timer instead
/// ([`SCAN_INTERVAL`]).
#[derive(Debug)]
pub(crate) struct Child {
    pub pid: Pid,
    pub pidfd: Option<OwnedFd>,
}

/// How often a parent without pidfds looks for exited children.
pub(crate) const SCAN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);

/// Forks a child that keeps only stdio and `keep`, runs `body` and exits
/// with the code it returns (101 if it panics). In the parent, `body` is
/// dropped unrun, which closes what it owns (the parent's copy of a
/// connection, for example).
pub(crate) fn spawn(keep: &[RawFd], body: impl FnOnce() -> i32) -> io::Result<Child> {
    let parent = getpid();
    // SAFETY: the child runs only the set-up below and `body`, and ends with
    // `_exit`. It may allocate: glibc's fork handlers leave malloc usable in
    // the child. It never takes the stdio locks another thread could have
    // held at fork time (the servers log through `crate::runtime::log`).
    match unsafe { fork() }.map_err(io::Error::from)? {
        ForkResult::Child => {
            let code = match prepare_child(parent, keep) {
                Ok(()) => catch_unwind(AssertUnwindSafe(body)).unwrap_or(101),
                Err(_) => 102,
            };
            // SAFETY: ends the child without running the parent's exit
            // handlers or destructors of state it shares with the parent.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(body);
            match pidfd_open(child) {
                Ok(pidfd) => Ok(Child {
                    pid: child,
                    pidfd: Some(pidfd),
                }),
                Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => Ok(Child {
                    pid: child,
                    pidfd: None,
                }),
                Err(e) => {
                    let _ = signal::kill(child, Signal::SIGKILL);
                    let _ = waitpid(child, None);
                    Err(e)
                }
            }
        }
    }
}

fn prepare_child(parent: Pid, keep: &[RawFd]) -> nix::Result<()> {
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: installs the default action; no handler code involved.
        unsafe { signal::signal(sig, SigHandler::SigDfl) }?;
    }
    signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    // The parent may have died before the line above took effect.
    if getppid() != parent {
        return Err(nix::errno::Errno::ESRCH);
    }
    close_all_but(keep);
    Ok(())
}

/// In a child that runs an event loop: turns SIGTERM into `shutdown`, so
/// the loop ends between two callbacks (a connection's bytes echoed are
/// then always counted) and closes its connections itself. SIGTERM is
/// blocked in this thread, and so in every thread started after, and one
/// thread waits for it.
pub(crate) fn stop_on_sigterm(
    shutdown: &std::sync::Arc<crate::runtime::shutdown::Shutdown>,
) -> io::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    let shutdown = std::sync::Arc::clone(shutdown);
    std::thread::Builder::new()
        .name("sigterm".into())
        .spawn(move || {
            if set.wait().is_ok() {
                shutdown.trigger();
            }
        })
        .map(drop)
}

/// The connection a child serves, for its SIGTERM handler.
static SERVED_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn shut_served_connection(_: libc::c_int) {
    let fd = SERVED_FD.load(std::sync::atomic::Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: shutdown(2) is async-signal-safe; the fd is the child's
        // connection, open for the child's whole life.
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
    }
}

/// In a child that serves one connection with blocking calls: SIGTERM
/// shuts the connection down instead of killing the process, so the echo
/// loop ends by itself after the chunk in hand (its bytes counted) and the
/// child exits as after a normal close.
pub(crate) fn shut_down_on_sigterm(fd: RawFd) -> io::Result<()> {
    SERVED_FD.store(fd, std::sync::atomic::Ordering::Relaxed);
    let action = signal::SigAction::new(
        SigHandler::Handler(shut_served_connection),
        signal::SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only loads an atomic and calls shutdown(2), both
    // async-signal-safe.
    unsafe { signal::sigaction(Signal::SIGTERM, &action) }?;
    Ok(())
}

/// Closes every fd from 3 up except `keep`.
fn close_all_but(keep: &[RawFd]) {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|&&fd| fd > 2)
        .map(|&fd| fd as u32)
        .collect();
    keep.sort_unstable();
    let mut from = 3u32;
    for fd in keep {
        if fd > from {
            // SAFETY: closes fds this child does not use; nothing in the
            // child refers to them (only the forking thread runs here).
            unsafe { libc::close_range(from, fd - 1, 0) };
        }
        from = fd + 1;
    }
    // SAFETY: as above.
    unsafe { libc::close_range(from, u32::MAX, 0) };
}

fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd was just returned to us and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

impl Child {
    /// The child's exit status, if it has exited (and is now reaped).
    pub fn try_reap(&self) -> Option<WaitStatus> {
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => None,
            Ok(status) => Some(status),
            // ECHILD: already reaped; treat as gone.
            Err(_) => Some(WaitStatus::Exited(self.pid, 0)),
        }
    }

    pub fn raw_pidfd(&self) -> Option<RawFd> {
        self.pidfd.as_ref().map(|fd| fd.as_raw_fd())
    }
}

impl Child {
    /// Has the parent's epoll loop report this child's exit under `token`;
    /// false when there is no pidfd (the parent must scan for it).
    pub fn watch(&self, registry: &mio::Registry, token: mio::Token) -> io::Result<bool> {
        match self.raw_pidfd() {
            Some(fd) => registry
                .register(
                    &mut mio::unix::SourceFd(&fd),
                    token,
                    mio::Interest::READABLE,
                )
                .map(|()| true),
            None => Ok(false),
        }
    }

    pub fn unwatch(&self, registry: &mio::Registry) {
        if let Some(fd) = self.raw_pidfd() {
            let _ = registry.deregister(&mut mio::unix::SourceFd(&fd));
        }
    }
}

/// The epoll wait of a parent: `timeout`, shortened to [`SCAN_INTERVAL`]
/// while it has children it cannot watch.
pub(crate) fn wait_timeout(timeout: Option<Duration>, scanning: bool) -> Option<Duration> {
    if !scanning {
        return timeout;
    }
    Some(timeout.map_or(SCAN_INTERVAL, |t| t.min(SCAN_INTERVAL)))
}

/// True for an exit status that means the child did its job.
pub(crate) fn exited_cleanly(status: &WaitStatus) -> bool {
    matches!(status, WaitStatus::Exited(_, 0))
}

/// Sends SIGTERM to every child, waits up to `budget` for them to exit, then
/// SIGKILLs the rest; all are reaped on return. Returns how many had to be
/// killed.
pub(crate) fn stop_all<'a>(children: impl Iterator<Item = &'a Child>, budget: Duration) -> usize {
    let mut left: Vec<&Child> = children.collect();
    for child in &left {
        let _ = signal::kill(child.pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + budget;
    while !left.is_empty() && Instant::now() < deadline {
        left.retain(|child| child.try_reap().is_none());
        if !left.is_empty() {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    for child in &left {
        let _ = signal::kill(child.pid, Signal::SIGKILL);
        let _ = waitpid(child.pid, None);
    }
    left.len()
}
