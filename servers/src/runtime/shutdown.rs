//! Shutdown, shared by every style: a flag that loops check, the wake-ups
//! that get a style's threads out of their blocking calls, and a registry of
//! open connections for the styles whose connection code blocks in
//! `read`/`write`.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use slab::Slab;
use socket2::SockRef;

type Waker = Box<dyn Fn() + Send + Sync>;

/// The "stop now" signal of one server.
#[derive(Default)]
pub struct Shutdown {
    stopping: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Shutdown {
    pub fn new() -> Arc<Self> {
        Arc::new(Shutdown::default())
    }

    /// True once [`trigger`](Self::trigger) has been called.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Registers how to wake one of the style's blocked threads. Called
    /// after shutdown was triggered, it runs at once.
    pub fn on_trigger(&self, waker: impl Fn() + Send + Sync + 'static) {
        let mut wakers = lock(&self.wakers);
        if self.is_stopping() {
            drop(wakers);
            waker();
        } else {
            wakers.push(Box::new(waker));
        }
    }

    /// Sets the flag and runs every registered waker.
    ///
    /// The wakers are kept, not dropped: a waker may own the very thing that
    /// carries the wake-up (mio's eventfd), and closing it before the loop
    /// has collected the event would lose the event.
    pub fn trigger(&self) {
        let wakers = lock(&self.wakers);
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        for wake in wakers.iter() {
            wake();
        }
    }
}

/// Open connections of a blocking style, so that shutdown can unblock their
/// `read`/`write` by shutting their sockets down.
///
/// Invariant that makes the raw fds safe to use: an entry is removed (by
/// dropping its [`Tracked`]) *before* its socket is closed, and both
/// removal and [`close_all`](Self::close_all) hold the lock, so a registered
/// fd always names the live socket it was registered for.
#[derive(Default)]
pub struct ConnRegistry {
    inner: Mutex<RegistryInner>,
    emptied: Condvar,
}

#[derive(Default)]
struct RegistryInner {
    fds: Slab<RawFd>,
    closed: bool,
}

impl ConnRegistry {
    pub fn new() -> Arc<Self> {
        Arc::new(ConnRegistry::default())
    }

    /// Takes ownership of `stream` and registers it until it is dropped.
    /// After [`close_all`](Self::close_all) the stream is shut down at once,
    /// so a connection accepted during shutdown ends promptly too.
    pub fn track<S: AsRawFd>(self: &Arc<Self>, stream: S) -> Tracked<S> {
        let fd = stream.as_raw_fd();
        let mut inner = lock(&self.inner);
        let key = inner.fds.insert(fd);
        if inner.closed {
            shutdown_fd(fd);
        }
        drop(inner);
        Tracked {
            stream,
            registry: Arc::clone(self),
            key,
        }
    }

    /// Shuts down every registered socket: blocked reads return EOF, blocked
    /// writes fail, and each connection's code unwinds and closes it.
    pub fn close_all(&self) {
        let mut inner = lock(&self.inner);
        inner.closed = true;
        for (_, &fd) in inner.fds.iter() {
            shutdown_fd(fd);
        }
    }

    /// Waits until every tracked connection is dropped, at most `timeout`.
    /// Returns how many are still open.
    pub fn wait_empty(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut inner = lock(&self.inner);
        while !inner.fds.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            inner = match self.emptied.wait_timeout(inner, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        inner.fds.len()
    }
}

/// A connection socket registered in a [`ConnRegistry`]. Dropping it
/// removes the entry first and closes the socket after (`Drop::drop` runs
/// before the fields are dropped), which is the registry's invariant.
pub struct Tracked<S: AsRawFd> {
    stream: S,
    registry: Arc<ConnRegistry>,
    key: usize,
}

impl<S: AsRawFd> std::ops::Deref for Tracked<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.stream
    }
}

impl<S: AsRawFd> std::ops::DerefMut for Tracked<S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.stream
    }
}

impl<S: AsRawFd> Drop for Tracked<S> {
    fn drop(&mut self) {
        let mut inner = lock(&self.registry.inner);
        inner.fds.remove(self.key);
        if inner.fds.is_empty() {
            self.registry.emptied.notify_all();
        }
    }
}

fn shutdown_fd(fd: RawFd) {
    // SAFETY: `fd` comes from the registry, whose lock the caller holds; by
    // the registry's invariant the socket is still open (its entry is removed
    // before it is closed), so the borrow cannot name a closed or reused fd.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    // ENOTCONN (peer already gone) is fine: the connection is ending anyway.
    let _ = SockRef::from(&fd).shutdown(std::net::Shutdown::Both);
}

/// Locks a mutex, carrying on through poisoning: the data guarded here (a
/// list of fds or wakers) stays consistent even if a holder panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Connections a style could not close within the shutdown budget.
pub(crate) fn report_stragglers(style: &str, left: usize) {
    if left > 0 {
        crate::runtime::log::log!(
            "servers[{style}]: {left} connection(s) still closing at shutdown deadline"
        );
    }
}

/// How long a style waits for its connections to close at shutdown; the
/// whole process must exit within 2 s of SIGTERM.
pub(crate) const CLOSE_BUDGET: Duration = Duration::from_millis(1500);
