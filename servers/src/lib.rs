//! The c10k-echo servers: one TCP echo service written in each classic
//! concurrency style, all behind one entry point.
//!
//! [`start`] takes a bound [`std::net::TcpListener`] (built by
//! [`listener::bind`]), a [`Style`] and a [`Config`], and returns a
//! [`ServerHandle`]. Every style shares the same small pieces: admission and
//! counters ([`stats`]), accept-error back-off ([`accept`]), the echo state
//! machine ([`echo`]) and shutdown ([`shutdown`]). Only the concurrency model
//! differs, one file per style, so the styles can be read side by side.

pub mod accept;
pub mod cli;
pub mod config;
pub mod echo;
pub mod limits;
pub mod listener;
pub mod server;
pub mod shutdown;
pub mod stats;
pub mod style;

mod coroutines;
mod polling;
mod reactor;
mod tasks;
mod threads;

pub use config::Config;
pub use server::{ServerError, ServerHandle, start};
pub use stats::Summary;
pub use style::Style;

/// Parses the line every server prints on start-up,
/// `listening on <ip:port> style=<style> pid=<pid>`, into its parts.
///
/// Tools that spawn `servers` (tests, `loadgen compare`) use this instead of
/// each writing its own parser.
pub fn parse_listening_line(line: &str) -> Option<(std::net::SocketAddr, Style, u32)> {
    let rest = line.trim().strip_prefix("listening on ")?;
    let mut parts = rest.split_whitespace();
    let addr = parts.next()?.parse().ok()?;
    let style = parts.next()?.strip_prefix("style=")?;
    let style = <Style as clap::ValueEnum>::from_str(style, false).ok()?;
    let pid = parts.next()?.strip_prefix("pid=")?.parse().ok()?;
    Some((addr, style, pid))
}
