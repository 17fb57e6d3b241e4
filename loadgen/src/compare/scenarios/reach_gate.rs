//! `reach`'s accept gate: a step is measured once the server has accepted
//! its connections ([`crate::engine::gate`]), read from the kernel's view
//! of its listener ([`crate::probe::limits`]). Apart from `reach` itself,
//! which `compare::env` (where every run's gate is set) must not import.

use std::time::Duration;

/// A step's warm-up waits this long at most for the server to accept its
/// connections ([`accept_gate`]): 32,000 processes forked at 300 a second.
pub const ACCEPT_LIMIT: Duration = Duration::from_secs(120);
/// ... and gives up once its listen queue has not shrunk for this long.
const ACCEPT_STALL: Duration = Duration::from_secs(10);

/// Holds a step's warm-up back until the server at `addr` has accepted
/// every connection (its listen queue is empty): a server that forks per
/// connection may still be accepting thousands when the last connect
/// returns, and measured then it would read as a latency wall. What is
/// left when the queue stops shrinking is the step's evidence.
pub fn accept_gate(addr: std::net::SocketAddr) -> crate::engine::gate::Gate {
    crate::engine::gate::Gate::new(
        Box::new(move || crate::probe::limits::listen_queue(addr)),
        Box::new(move || crate::probe::limits::server_ends(addr)),
        ACCEPT_STALL,
        ACCEPT_LIMIT,
    )
}
