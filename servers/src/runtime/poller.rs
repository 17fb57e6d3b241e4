//! The mio pieces shared by the loops that wait in a mio [`Poll`]: a waker
//! that gets the loop out of its wait at shutdown, and a wait that takes an
//! interrupted system call for what it is, a wake-up with nothing to do.

use std::io;
use std::time::Duration;

use mio::{Events, Poll, Token, Waker};

use crate::runtime::shutdown::Shutdown;

/// Registers a waker on `poll` under `token` that shutdown fires.
pub(crate) fn wake_on_shutdown(poll: &Poll, token: Token, shutdown: &Shutdown) -> io::Result<()> {
    let waker = Waker::new(poll.registry(), token)?;
    shutdown.on_trigger(move || {
        // A failed wake leaves the loop to notice at its next event.
        let _ = waker.wake();
    });
    Ok(())
}

/// Waits for events, at most `timeout`. An interrupted wait (EINTR) is no
/// error: it returns with no events, and the caller's loop goes round.
pub(crate) fn wait(
    poll: &mut Poll,
    events: &mut Events,
    timeout: Option<Duration>,
) -> io::Result<()> {
    match poll.poll(events, timeout) {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
            events.clear();
            Ok(())
        }
        other => other,
    }
}
