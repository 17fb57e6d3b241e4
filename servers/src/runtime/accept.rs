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
//! serving, and a burst of errors is logged once, with a line when it ends
//! that gives the burst's count and the loop's total (what the summary's
//! `accept_errors` adds up); bursts that follow within a second of a logged
//! one are counted, not logged, so a server at its fd limit does not flood
//! its log.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::SockRef;

use crate::runtime::server::Ctx;
use crate::runtime::stats::{ConnGuard, Stats};

const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(100);
/// At most one burst is logged per this long.
const LOG_EVERY: Duration = Duration::from_secs(1);

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
    /// Errors of this loop since it started.
    total: u64,
    /// When a burst's start was last logged, and whether the current
    /// burst's was.
    logged_at: Option<Instant>,
    burst_logged: bool,
    /// Bursts since the last logged one that were not logged.
    unlogged_bursts: u64,
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
            total: 0,
            logged_at: None,
            burst_logged: false,
            unlogged_bursts: 0,
        }
    }

    /// Call after every successful accept: ends a burst.
    pub fn on_success(&mut self) {
        if let Some(line) = self.end_burst() {
            crate::runtime::log::log!("{line}");
        }
    }

    /// Counts an accept error (not WouldBlock, which is no error) and says
    /// what to do next.
    pub fn on_error(&mut self, err: &io::Error) -> AcceptAction {
        if err.kind() == io::ErrorKind::Interrupted {
            return AcceptAction::Retry;
        }
        if let Some(line) = self.count(err, Instant::now()) {
            crate::runtime::log::log!("{line}");
        }
        if is_per_connection(err) {
            return AcceptAction::Retry;
        }
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        AcceptAction::BackOff(wait)
    }

    /// Counts one error; the log line for the start of a burst, unless one
    /// was logged less than [`LOG_EVERY`] ago.
    fn count(&mut self, err: &io::Error, now: Instant) -> Option<String> {
        self.stats.accept_error();
        self.total += 1;
        self.burst += 1;
        if self.burst > 1 {
            return None;
        }
        if self.logged_at.is_some_and(|at| now < at + LOG_EVERY) {
            self.unlogged_bursts += 1;
            self.burst_logged = false;
            return None;
        }
        let unlogged = match std::mem::take(&mut self.unlogged_bursts) {
            0 => String::new(),
            n => format!("; {n} burst(s) since the last logged one were counted, not logged"),
        };
        self.logged_at = Some(now);
        self.burst_logged = true;
        Some(format!(
            "servers[{}]: accept failed: {err} (counted; further errors in this burst are counted, not logged{unlogged})",
            self.style
        ))
    }

    /// Ends a burst; the log line for it if its start was logged.
    fn end_burst(&mut self) -> Option<String> {
        if self.burst == 0 {
            return None;
        }
        let burst = std::mem::take(&mut self.burst);
        self.backoff = FIRST_BACKOFF;
        std::mem::take(&mut self.burst_logged).then(|| {
            format!(
                "servers[{}]: accepting again after {burst} accept error(s) in a row; {} in all since start",
                self.style, self.total
            )
        })
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

    /// The end-of-burst line once said "after 1 accept error(s)" where the
    /// summary counted 410: it gave the last burst only.
    #[test]
    fn the_log_gives_the_total_and_does_not_flood() {
        let (stats, mut errs) = errors();
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let t0 = Instant::now();
        assert!(errs.count(&emfile, t0).is_some(), "a first burst is logged");
        assert!(errs.count(&emfile, t0).is_none(), "within a burst: counted");
        let end = errs.end_burst().expect("its end is logged");
        assert!(
            end.contains("after 2 accept error(s) in a row; 2 in all"),
            "{end}"
        );
        // 400 one-error bursts within the next second: counted, not logged.
        for i in 0..400 {
            let at = t0 + Duration::from_millis(i * 2);
            assert!(errs.count(&emfile, at).is_none(), "burst {i} logged");
            assert!(errs.end_burst().is_none(), "burst {i}'s end logged");
        }
        let next = errs
            .count(&emfile, t0 + LOG_EVERY)
            .expect("logged again after a second");
        assert!(
            next.contains("400 burst(s) since the last logged one"),
            "{next}"
        );
        let end = errs.end_burst().expect("its end is logged");
        assert!(
            end.contains("after 1 accept error(s) in a row; 403 in all"),
            "{end}"
        );
        assert_eq!(stats.snapshot().accept_errors, 403, "the summary's count");
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
