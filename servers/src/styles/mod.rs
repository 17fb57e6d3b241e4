//! The concurrency styles: one module each, and [`Style`], the one list of
//! them.
//!
//! Each style module says the idea it demonstrates and what that costs, and
//! has one entry point, `start(ctx, listener) -> Runner`, built from the
//! shared pieces in [`crate::runtime`]. This file is the only place that
//! lists the styles: a single `styles!` table declares the modules, the
//! [`Style`] enum, [`Style::ALL`], each style's name, help line and idea, its
//! clap value and the `start` dispatch, so none of them can be forgotten or
//! disagree. A style's command-line name is its module's name.
//!
//! Dependencies point one way: styles use the runtime, never the reverse.
//! `prefork` runs `reactor`'s event loop in each worker process, through
//! [`reactor::run_on_this_thread`].

mod mechanism;

pub use mechanism::{Switches, Waits};

use std::fmt;
use std::net::TcpListener;

use crate::runtime::config::Config;
use crate::runtime::server::{self, ServerError, ServerHandle};

/// Declares every style from one table: `Variant => module, "help line",
/// "idea";` in the order reports list them.
macro_rules! styles {
    ($($variant:ident => $module:ident, $help:literal, $idea:literal;)+) => {
        $(mod $module;)+

        /// One concurrency style of the echo service.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Style {
            $(#[doc = $help] $variant,)+
        }

        impl Style {
            /// Every style, in the order reports list them. Tests loop over
            /// this, so a new style gets the whole conformance suite by being
            /// added to the table.
            pub const ALL: &'static [Style] = &[$(Style::$variant),+];

            /// The name used on the command line and in reports: the name
            /// of the style's module.
            pub fn name(self) -> &'static str {
                match self {
                    $(Style::$variant => stringify!($module),)+
                }
            }

            /// One line on what the style is (the CLI's help).
            pub fn help(self) -> &'static str {
                match self {
                    $(Style::$variant => $help,)+
                }
            }

            /// One line on the idea the style demonstrates (printed by
            /// `servers list`).
            pub fn idea(self) -> &'static str {
                match self {
                    $(Style::$variant => $idea,)+
                }
            }

            /// Starts the style's own set-up and main loop.
            fn start(self, ctx: crate::runtime::server::Ctx, listener: TcpListener)
                -> Result<crate::runtime::server::Runner, ServerError> {
                match self {
                    $(Style::$variant => $module::start(ctx, listener),)+
                }
            }
        }
    };
}

styles! {
    Threads => threads,
        "One OS thread per connection, blocking sockets",
        "synchronous blocking: one OS thread per connection; the kernel preempts, so one busy client cannot starve the others";
    Polling => polling,
        "One thread asking every non-blocking socket in turn, no readiness API",
        "synchronous non-blocking: one thread keeps asking every socket \"ready yet?\" and burns CPU doing it, even when idle";
    Poll => poll,
        "poll(2) over a vector of every socket, scanned in full on each wake-up",
        "I/O multiplexing the older way: poll(2) over every socket, scanned in full on each wake-up (O(n) per call, the cost epoll removed)";
    Reactor => reactor,
        "An epoll (mio) event loop dispatching readiness to per-connection callbacks",
        "I/O multiplexing: one epoll event loop (mio) dispatches readiness to per-connection callbacks, like Nginx, libevent, node.js";
    Epoll => epoll,
        "The reference: edge-triggered epoll straight on the system calls",
        "the reference: the reactor written straight on epoll_wait/accept4/read/write, no framework, as lean as a C server; every style is compared to it";
    Tasks => tasks,
        "async/await on tokio, one task per connection",
        "async/await on tokio: the callbacks hidden behind futures on a work-stealing runtime; cooperative, so a CPU-heavy task holds its worker";
    Coroutines => coroutines,
        "Stackful coroutines on `may`, one per connection",
        "stackful coroutines on may: blocking-looking code, user-space switching; cooperative, so a CPU-heavy coroutine starves its neighbours";
    Uring => uring,
        "Completion-based I/O on io_uring: the kernel does the reads and writes",
        "completion-based I/O (proactor) on io_uring: the loop submits reads and writes in batches and the kernel reports them done, data already copied";
    Prefork => prefork,
        "A master process and N forked worker processes, each running a reactor",
        "a master forks N worker processes (--workers), each an epoll reactor on the shared listener, like Nginx; the master restarts a worker that dies";
    Process => process,
        "One forked process per connection",
        "one forked process per connection, like inetd or classic Apache: full isolation, a fork and a whole process per client";
    Pool => pool,
        "A fixed pool of threads taking connections from a queue",
        "a fixed pool of --workers threads (default 16) taking connections from a queue; each serves one connection until it closes, so connection N+1 waits";
}

/// A flag only some styles read; the command line refuses it for the
/// others rather than ignore it silently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Knob {
    /// `--workers`: event loops, rings, runtime or scheduler workers,
    /// worker processes, pool threads.
    Workers,
    /// `--stack-size`: a connection thread's or coroutine's stack.
    StackSize,
    /// `--poll-sleep-us`: the busy-polling loop's nap.
    PollSleep,
}

impl Knob {
    pub fn flag(self) -> &'static str {
        match self {
            Knob::Workers => "--workers",
            Knob::StackSize => "--stack-size",
            Knob::PollSleep => "--poll-sleep-us",
        }
    }
}

impl Style {
    /// The style with this command-line name.
    pub fn from_name(name: &str) -> Option<Style> {
        Style::ALL.iter().copied().find(|s| s.name() == name)
    }

    /// The style-specific flags it reads.
    pub fn knobs(self) -> &'static [Knob] {
        match self {
            Style::Threads => &[Knob::StackSize],
            Style::Polling => &[Knob::PollSleep],
            Style::Poll | Style::Process => &[],
            Style::Reactor | Style::Epoll | Style::Tasks | Style::Uring | Style::Prefork => {
                &[Knob::Workers]
            }
            Style::Coroutines | Style::Pool => &[Knob::Workers, Knob::StackSize],
        }
    }
}

/// clap's view of [`Style`], from the same table: its values are
/// [`Style::ALL`], named by [`Style::name`], with [`Style::help`] as help.
impl clap::ValueEnum for Style {
    fn value_variants<'a>() -> &'a [Self] {
        Style::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.help()))
    }
}

impl fmt::Display for Style {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Starts `style` serving connections from `listener` (which the caller
/// bound, see [`crate::runtime::listener::bind`]). Returns once the server
/// is set up; connections queued on the listener are served from then on.
pub fn start(
    style: Style,
    config: Config,
    listener: TcpListener,
) -> Result<ServerHandle<Style>, ServerError> {
    server::launch(style, style.name(), config, listener, |ctx, listener| {
        style.start(ctx, listener)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn every_style_round_trips_through_its_name_and_clap() {
        for &style in Style::ALL {
            assert_eq!(Style::from_name(style.name()), Some(style));
            assert_eq!(Style::from_str(style.name(), false), Ok(style), "clap");
            assert_eq!(style.to_string(), style.name());
        }
        assert_eq!(Style::from_name("fibers"), None);
    }

    #[test]
    fn all_holds_each_style_once_and_is_what_clap_offers() {
        // ALL, the enum and the names come from one table, so a variant
        // cannot be missing; what is left to check is that nothing repeats.
        let names: Vec<_> = Style::ALL.iter().map(|s| s.name()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert_eq!(Style::value_variants(), Style::ALL);
    }
}
