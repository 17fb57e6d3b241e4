//! The shared runtime: everything a style is built from, none of it naming
//! a style.
//!
//! - [`server`]: the [`server::Ctx`] a style gets, its runner thread, the
//!   per-`--workers` loop helpers, and the handle that stops a server.
//! - [`config`]: the knobs every style understands.
//! - [`listener`]: binding the listening socket, waking blocked accepts.
//! - [`accept`]: what an accept loop does with a connection ([`accept::admit`])
//!   and with an error (back-off), and the loop of readiness-driven styles.
//! - [`blocking`]: the accept loop of styles whose connection code blocks.
//! - [`echo`]: the echo itself, blocking and as a non-blocking state machine.
//! - [`idle`]: `--idle-timeout`, in each style's idiom (socket timeouts,
//!   a lazy deadline heap, linked timeouts).
//! - [`poller`]: the mio pieces of the styles that wait in a mio `Poll`.
//! - [`shutdown`]: the stop flag, its wakers, and the registry of blocking
//!   connections.
//! - [`stats`]: counters and admission against `--max-conns`.
//! - [`fork`]: child processes, for the styles that fork.
//! - [`limits`]: the open-files limit.
//! - [`log`]: log lines that are safe after `fork`.

pub mod accept;
pub(crate) mod blocking;
pub mod config;
pub mod echo;
pub(crate) mod fork;
pub mod idle;
pub mod limits;
pub mod listener;
pub(crate) mod log;
pub(crate) mod poller;
pub mod server;
pub mod shutdown;
pub mod stats;
