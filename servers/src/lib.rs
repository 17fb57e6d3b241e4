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
mod blocking;
pub mod cli;
pub mod config;
pub mod echo;
pub mod limits;
pub mod listener;
mod log;
pub mod server;
pub mod shutdown;
pub mod stats;
pub mod style;

mod coroutines;
mod epoll;
mod fork;
mod poll;
mod polling;
mod pool;
mod prefork;
mod process;
mod reactor;
mod tasks;
mod threads;
mod uring;

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
    let style = Style::from_name(style)?;
    let pid = parts.next()?.strip_prefix("pid=")?.parse().ok()?;
    Some((addr, style, pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_line_round_trips() {
        let line = "listening on 127.0.0.1:4242 style=reactor pid=77\n";
        let (addr, style, pid) = parse_listening_line(line).expect("parses");
        assert_eq!(addr, "127.0.0.1:4242".parse().unwrap());
        assert_eq!(style, Style::Reactor);
        assert_eq!(pid, 77);
    }

    #[test]
    fn malformed_listening_lines_are_rejected() {
        for bad in [
            "",
            "listening on nowhere style=reactor pid=1",
            "listening on 127.0.0.1:1 style=fibers pid=1",
            "listening on 127.0.0.1:1 style=tasks",
            "ready 127.0.0.1:1 style=tasks pid=1",
        ] {
            assert!(parse_listening_line(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn every_style_parses_from_its_name() {
        for &style in Style::ALL {
            assert_eq!(Style::from_name(style.name()), Some(style));
            let parsed = <Style as clap::ValueEnum>::from_str(style.name(), false);
            assert_eq!(parsed, Ok(style), "clap agrees");
        }
    }
}
