//! What every accept loop does with what `accept()` returns.
//!
//! A connection goes through [`admit`]: counted against `--max-conns` and
//! given its socket options, or closed. The loop of the styles that wait
//! for the listener to become ready is written once, in [`AcceptReady`].
//!
//! When `accept()` fails ([`AcceptErrors`]):
//! Some failures concern one connection that died in the backlog
//! (ECONNABORTED, EPROTO, ...): count it and accept the next one. Others mean
//! the process is out of something (EMFILE, ENFILE, ENOBUFS, ENOMEM): the
//! pending connection stays in the backlog and retrying at once would spin,
//! so the loop backs off briefly and tries again. Either way the server keeps
//! serving, and a burst of errors is logged once, with a line when it ends.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::SockRef;

use crate::runtime::server::Ctx;
use crate::runtime::stats::{ConnGuard, Stats};

const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// What the accept loop should do after an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcceptAction {
    /// Try the next accept now.
    Retry,
    /// Wait this long before accepting again.
    BackOff(Duration),
}

/// Tracks one accept loop's current burst of errors.
#[derive(Debug)]
pub struct AcceptErrors {
    stats: Arc<Stats>,
    style: &'static str,
    burst: u64,
    backoff: Duration,
}

impl AcceptErrors {
    /// The errors of one of `ctx`'s accept loops, logged under its style's
    /// name.
    pub(crate) fn for_ctx(ctx: &Ctx) -> Self {
        AcceptErrors::new(Arc::clone(&ctx.stats), ctx.name)
    }

    pub fn new(stats: Arc<Stats>, style: &'static str) -> Self {
        AcceptErrors {
            stats,
            style,
            burst: 0,
            backoff: FIRST_BACKOFF,
        }
    }

    /// Call after every successful accept: ends a burst.
    pub fn on_success(&mut self) {
        if self.burst > 0 {
            crate::runtime::log::log!(
                "servers[{}]: accepting again after {} accept error(s)",
                self.style,
                self.burst
            );
            self.burst = 0;
            self.backoff = FIRST_BACKOFF;
        }
    }

    /// Counts an accept error (not WouldBlock, which is no error) and says
    /// what to do next.
    pub fn on_error(&mut self, err: &io::Error) -> AcceptAction {
        if err.kind() == io::ErrorKind::Interrupted {
            return AcceptAction::Retry;
        }
        self.stats.accept_error();
        self.burst += 1;
        if self.burst == 1 {
            crate::runtime::log::log!(
                "servers[{}]: accept failed: {err} (counted; further errors in this burst are counted, not logged)",
                self.style
            );
        }
        if is_per_connection(err) {
            return AcceptAction::Retry;
        }
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        AcceptAction::BackOff(wait)
    }
}

/// How a connection is set up for serving, beyond [`admit`]'s options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Leave the socket as `accept` made it.
    AsAccepted,
    /// Make the socket non-blocking (`accept` on Linux does not pass the
    /// listener's O_NONBLOCK on).
    NonBlocking,
}

/// Admits a connection just accepted: counts it against `--max-conns`
/// (past it the stream is dropped here, which closes it, and counted as
/// rejected) and applies the per-connection socket options (a failure is
/// counted as a failed connection and closes it too). Returns the stream and
/// its place in the count of open connections, ready to serve.
pub(crate) fn admit<S: AsRawFd>(ctx: &Ctx, stream: S, mode: Mode) -> Option<(S, ConnGuard)> {
    let guard = ctx.stats.admit(ctx.config.max_conns)?;
    let configured = {
        // SAFETY: `stream` owns the descriptor and outlives this borrow.
        let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
        let socket = SockRef::from(&fd);
        (mode == Mode::AsAccepted || socket.set_nonblocking(true).is_ok())
            && (!ctx.config.nodelay || socket.set_tcp_nodelay(true).is_ok())
    };
    if !configured {
        ctx.stats.conn_failed();
        return None;
    }
    Some((stream, guard))
}

/// The accept loop of the styles that wait for a non-blocking listener to
/// become ready: how each accepts one connection and what it does with it;
/// the loop itself is written once.
pub(crate) trait AcceptReady {
    type Stream;
    fn try_accept(&mut self) -> io::Result<Self::Stream>;
    fn accept_errors(&mut self) -> &mut AcceptErrors;
    fn accepted(&mut self, stream: Self::Stream);

    /// Accepts until the listener would block, `budget` connections were
    /// taken, or an error calls for a back-off. Returns when to accept again
    /// without waiting for readiness (edge-triggered: connections left in
    /// the backlog are not announced again), or `None` once the backlog is
    /// empty.
    fn accept_ready(&mut self, budget: usize) -> Option<Instant> {
        for _ in 0..budget {
            match self.try_accept() {
                Ok(stream) => {
                    self.accept_errors().on_success();
                    self.accepted(stream);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) => match self.accept_errors().on_error(&e) {
                    AcceptAction::Retry => {}
                    AcceptAction::BackOff(wait) => return Some(Instant::now() + wait),
                },
            }
        }
        Some(Instant::now())
    }
}

/// Errors that concern only the connection being accepted (accept(2) says to
/// retry on these).
fn is_per_connection(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(
            libc::ECONNABORTED
                | libc::EPROTO
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
                | libc::EPERM
        )
    ) || err.kind() == io::ErrorKind::ConnectionAborted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors() -> (Arc<Stats>, AcceptErrors) {
        let stats = Arc::new(Stats::default());
        (Arc::clone(&stats), AcceptErrors::new(stats, "test"))
    }

    #[test]
    fn out_of_fds_backs_off_increasingly_and_is_counted() {
        let (stats, mut errs) = errors();
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let waits: Vec<_> = (0..8).map(|_| errs.on_error(&emfile)).collect();
        assert_eq!(waits[0], AcceptAction::BackOff(FIRST_BACKOFF));
        assert_eq!(waits[1], AcceptAction::BackOff(FIRST_BACKOFF * 2));
        assert_eq!(waits[7], AcceptAction::BackOff(MAX_BACKOFF));
        assert_eq!(stats.snapshot().accept_errors, 8);
        errs.on_success();
        assert_eq!(errs.on_error(&emfile), AcceptAction::BackOff(FIRST_BACKOFF));
    }

    #[test]
    fn aborted_connection_retries_at_once() {
        let (stats, mut errs) = errors();
        let aborted = io::Error::from_raw_os_error(libc::ECONNABORTED);
        assert_eq!(errs.on_error(&aborted), AcceptAction::Retry);
        let interrupted = io::Error::from(io::ErrorKind::Interrupted);
        assert_eq!(errs.on_error(&interrupted), AcceptAction::Retry);
        assert_eq!(
            stats.snapshot().accept_errors,
            1,
            "EINTR is not an accept error"
        );
    }
}
