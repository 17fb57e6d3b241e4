//! Stopping a `uring` loop: the kernel may write into a buffer for as long
//! as an operation that names it is in flight, even after the ring is
//! closed, so nothing is freed until every operation has completed, and
//! what the kernel may still use is leaked rather than freed.

use std::time::Instant;

use super::bufpool::Held;
use super::{CANCEL, Out, Uring, token};
use crate::runtime::shutdown::CLOSE_BUDGET;

impl Uring {
    /// Cancels everything, waits until the kernel has finished with every
    /// operation (and so with every buffer), then closes the connections.
    pub(super) fn stop(&mut self) {
        self.stopping = true;
        let cancel = token(CANCEL, 0);
        if let Err(e) = self.io.cancel_all(Instant::now() + CLOSE_BUDGET, cancel) {
            eprintln!("servers[uring]: waiting for cancelled operations: {e}");
        }
        if self.io.inflight > 0 {
            eprintln!(
                "servers[uring]: {} operation(s) still in flight at shutdown; leaking their buffers",
                self.io.inflight
            );
            self.leak_buffers();
        }
        // Closing the sockets: peers see EOF (RST if they sent unread data).
        // The file table holds them open too, so it goes first.
        if self.fixed_files > 0 {
            let _ = self.io.ring.submitter().unregister_files();
        }
        self.conns.clear();
    }

    /// The kernel may still write into buffers of unfinished operations,
    /// even after the ring is closed: never free memory it may use.
    fn leak_buffers(&mut self) {
        self.pool.leak();
        for (_, conn) in self.conns.iter_mut() {
            std::mem::forget(conn.own.take());
            if let Some(Out {
                buf: Held::Own(own),
                ..
            }) = conn.out.take()
            {
                std::mem::forget(own);
            }
        }
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        if self.io.inflight > 0 {
            self.leak_buffers();
        }
    }
}
