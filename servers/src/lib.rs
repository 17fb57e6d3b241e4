//! The c10k-echo servers: one TCP echo service written in each classic
//! concurrency style, all behind one entry point.
//!
//! [`start`] takes a bound [`std::net::TcpListener`] (built by
//! [`listener::bind`]), a [`Style`] and a [`Config`], and returns a
//! [`ServerHandle`]. The crate has two halves:
//!
//! - [`runtime`]: the pieces every style shares and that name no style:
//!   the context a style runs with and the handle that stops it, admission
//!   and counters, accept-error back-off, the echo state machine, shutdown,
//!   forking, logging.
//! - [`styles`]: one module per concurrency style, each saying its idea and
//!   its cost, and [`Style`], the one table that lists them and dispatches
//!   [`start`]. Only the concurrency model differs from style to style, so
//!   they can be read side by side.
//!
//! Styles depend on the runtime, never the reverse. [`cli`] is the
//! `servers` command line on top of both.

// The module docs link the private pieces they describe: they are read in
// the source and with `cargo doc --document-private-items`.
#![allow(rustdoc::private_intra_doc_links)]

pub mod cli;
pub mod runtime;
pub mod styles;

pub use cli::parse_listening_line;
pub use runtime::config::{self, Config};
pub use runtime::server::ServerError;
pub use runtime::stats::Summary;
pub use runtime::{accept, echo, limits, listener, shutdown, stats};
pub use styles::{Knob, Style, Switches, Waits, start};

/// A running server; dropping it stops it (see
/// [`runtime::server::ServerHandle`]).
pub type ServerHandle = runtime::server::ServerHandle<Style>;
