//! The `servers` command line, defined in the library so tests can parse
//! arguments in-process and the binary stays thin.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::runtime::config::{self, Config};
use crate::runtime::limits;
use crate::runtime::listener::{self, DEFAULT_BACKLOG, ListenerOptions};
use crate::styles::{self, Knob, Style};

/// Start the echo server in one concurrency style (`servers list` names them).
#[derive(Debug, Parser)]
#[command(
    name = "servers",
    version,
    after_help = "Run `servers list` to see every style and the idea it demonstrates.\n\
                  On start the server prints one line: `listening on <ip:port> style=<style> pid=<pid>`;\n\
                  on SIGINT/SIGTERM it closes its connections, prints a summary line to stderr and exits 0."
)]
pub struct ServeArgs {
    /// Concurrency style to run.
    #[arg(value_enum)]
    pub style: Style,
    /// Address to listen on; loopback by default (use 0.0.0.0:PORT in containers).
    #[arg(long, default_value = "127.0.0.1:7000")]
    pub addr: SocketAddr,
    /// listen() backlog (the kernel caps it at net.core.somaxconn).
    #[arg(long, default_value_t = DEFAULT_BACKLOG, value_parser = clap::value_parser!(i32).range(1..))]
    pub backlog: i32,
    /// Close connections past this many open ones at once (counted as rejected).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_conns: Option<u64>,
    /// Per-connection buffer in bytes; bounds memory per connection.
    #[arg(long, default_value_t = config::DEFAULT_BUFFER_SIZE as u64,
          value_parser = clap::value_parser!(u64).range(64..=64 * 1024 * 1024))]
    pub buffer_size: u64,
    /// Workers: event loops (reactor, epoll; default 1), runtime workers (tasks,
    /// 0 = current-thread, default one per CPU), scheduler workers
    /// (coroutines, default one per CPU), rings (uring, default 1), worker
    /// processes (prefork, default one per CPU), pool threads (pool, default 16).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=1024))]
    pub workers: Option<u64>,
    /// Stack size in bytes of a connection thread (threads, default 128 KiB)
    /// or coroutine (coroutines, default 32 KiB).
    #[arg(long, value_parser = clap::value_parser!(u64).range(16 * 1024..=64 * 1024 * 1024))]
    pub stack_size: Option<u64>,
    /// Set TCP_NODELAY on accepted sockets.
    #[arg(long)]
    pub nodelay: bool,
    /// Microseconds of busy CPU spent per chunk received (the fairness knob).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    pub work_us: u64,
    /// polling only: sleep this long after a pass that found nothing to do;
    /// 0 spins (the style's honest cost).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub poll_sleep_us: u64,
    /// Close a connection that moved no byte in either direction for this
    /// long (e.g. 30s, 500ms), in every style, each in its own idiom;
    /// counted as idle_closed in the summary line. Off by default: the
    /// benchmarks measure the styles, not a timer.
    #[arg(long, value_name = "DUR", value_parser = parse_timeout)]
    pub idle_timeout: Option<Duration>,
    /// Set SO_REUSEPORT on the listener.
    #[arg(long)]
    pub reuse_port: bool,
}

impl ServeArgs {
    pub fn config(&self) -> Config {
        Config {
            max_conns: self.max_conns.map(|n| n as usize),
            buffer_size: self.buffer_size as usize,
            workers: self.workers.map(|n| n as usize),
            stack_size: self.stack_size.map(|n| n as usize),
            nodelay: self.nodelay,
            work_us: self.work_us,
            poll_sleep_us: self.poll_sleep_us,
            idle_timeout: self.idle_timeout,
        }
    }

    /// Refuses a style-specific flag given to a style that does not read
    /// it (it would be ignored, and the run not be what was asked).
    pub fn check(&self) -> Result<(), String> {
        let given = [
            (Knob::Workers, self.workers.is_some()),
            (Knob::StackSize, self.stack_size.is_some()),
            (Knob::PollSleep, self.poll_sleep_us != 0),
        ];
        for (knob, set) in given {
            if set && !self.style.knobs().contains(&knob) {
                return Err(format!(
                    "{}: the {} style does not use it (see `servers --help`)",
                    knob.flag(),
                    self.style
                ));
            }
        }
        Ok(())
    }

    pub fn listener_options(&self) -> ListenerOptions {
        ListenerOptions {
            backlog: self.backlog,
            reuse_port: self.reuse_port,
        }
    }
}

/// `--idle-timeout`: a humantime duration, at least 1 ms (a zero timeout
/// would close every connection before it could speak).
fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (want e.g. 30s, 500ms, 2m)"))?;
    if d < Duration::from_millis(1) {
        return Err("must be at least 1ms".into());
    }
    Ok(d)
}

/// The text of `servers list`.
pub fn list_styles() -> String {
    let width = Style::ALL.iter().map(|s| s.name().len()).max().unwrap_or(0);
    Style::ALL
        .iter()
        .map(|s| format!("{:width$}  {}\n", s.name(), s.idea()))
        .collect()
}

/// Runs the `servers` binary with `args` (including the program name):
/// `list`, or serve until SIGINT/SIGTERM.
pub fn run(args: Vec<std::ffi::OsString>) -> anyhow::Result<()> {
    if args.get(1).is_some_and(|a| a == "list") && args.len() == 2 {
        print!("{}", list_styles());
        return Ok(());
    }
    let serve = ServeArgs::parse_from(args);
    if let Err(e) = serve.check() {
        clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, format!("{e}\n")).exit();
    }
    serve_until_signal(&serve)
}

fn serve_until_signal(args: &ServeArgs) -> anyhow::Result<()> {
    let limit = limits::raise_nofile_limit().context("raising the open-files limit")?;
    if limit.raised() {
        eprintln!(
            "servers: raised the open-files limit from {} to {} (hard limit)",
            limit.before, limit.soft
        );
    }
    if let Some(max) = args.max_conns
        && max > limit.soft
    {
        eprintln!(
            "servers: --max-conns {max} exceeds the open-files limit {}; accept will fail (EMFILE) before it is reached",
            limit.soft
        );
    }
    // Signals are caught before the listening line goes out, so a signal
    // sent as soon as the line is read cannot kill the process unsummarised.
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing signal handlers")?;
    let listener = listener::bind(args.addr, &args.listener_options())
        .with_context(|| format!("cannot listen on {} (--addr)", args.addr))?;
    let server =
        styles::start(args.style, args.config(), listener).context("starting the server")?;

    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{}",
        listening_line(server.local_addr(), args.style, std::process::id())
    )
    .and_then(|()| stdout.flush())
    .context("writing the listening line")?;
    drop(stdout);

    let signal = loop {
        if let Some(signal) = signals.pending().next() {
            break signal;
        }
        if server.is_finished() {
            break -1;
        }
        // The handle offers no blocking wait on both; a short poll keeps the
        // reaction well within the 2 s exit budget.
        std::thread::sleep(Duration::from_millis(20));
    };
    let started = Instant::now();
    let style = server.style();
    let summary = server.shutdown();
    let summary = match (signal, summary) {
        (-1, Ok(_)) => anyhow::bail!("the {style} server stopped by itself"),
        (_, Err(e)) => return Err(e).context("stopping the server"),
        (_, Ok(summary)) => summary,
    };
    eprintln!(
        "summary style={style} {summary} shutdown_ms={}",
        started.elapsed().as_millis()
    );
    Ok(())
}

/// The line every server prints on start-up:
/// `listening on <ip:port> style=<style> pid=<pid>`.
fn listening_line(addr: SocketAddr, style: Style, pid: u32) -> String {
    format!("listening on {addr} style={style} pid={pid}")
}

/// Parses the line every server prints on start-up,
/// `listening on <ip:port> style=<style> pid=<pid>`, into its parts.
///
/// Tools that spawn `servers` (tests, `loadgen compare`) use this instead of
/// each writing its own parser.
pub fn parse_listening_line(line: &str) -> Option<(SocketAddr, Style, u32)> {
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
    fn a_flag_the_style_does_not_read_is_refused_naming_both() {
        let check = |args: &[&str]| {
            let mut argv = vec!["servers"];
            argv.extend(args);
            ServeArgs::try_parse_from(argv).unwrap().check()
        };
        let e = check(&["threads", "--workers", "4"]).unwrap_err();
        assert!(e.contains("--workers") && e.contains("threads"), "{e}");
        let e = check(&["reactor", "--stack-size", "65536"]).unwrap_err();
        assert!(e.contains("--stack-size") && e.contains("reactor"), "{e}");
        let e = check(&["epoll", "--poll-sleep-us", "100"]).unwrap_err();
        assert!(e.contains("--poll-sleep-us"), "{e}");
        for ok in [
            &["pool", "--workers", "4", "--stack-size", "65536"][..],
            &["polling", "--poll-sleep-us", "100"],
            &["tasks", "--workers", "0"],
            &["process"],
        ] {
            assert_eq!(check(ok), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn idle_timeout_is_off_unless_given_and_must_be_positive() {
        let parse = |args: &[&str]| {
            let mut argv = vec!["servers", "reactor"];
            argv.extend(args);
            ServeArgs::try_parse_from(argv).map(|a| a.config().idle_timeout)
        };
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(
            parse(&["--idle-timeout", "1m30s"]).unwrap(),
            Some(Duration::from_secs(90))
        );
        for bad in ["0s", "soon", "10"] {
            let e = parse(&["--idle-timeout", bad]).unwrap_err().to_string();
            assert!(e.contains("--idle-timeout"), "{bad}: {e}");
        }
    }

    #[test]
    fn listening_line_round_trips() {
        let line = "listening on 127.0.0.1:4242 style=reactor pid=77\n";
        let (addr, style, pid) = parse_listening_line(line).expect("parses");
        assert_eq!(addr, "127.0.0.1:4242".parse().unwrap());
        assert_eq!(style, Style::Reactor);
        assert_eq!(pid, 77);
        for &style in Style::ALL {
            let line = listening_line(addr, style, 9);
            assert_eq!(parse_listening_line(&line), Some((addr, style, 9)));
        }
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
    fn list_names_every_style_in_order() {
        let listed: Vec<_> = list_styles()
            .lines()
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
            .collect();
        let names: Vec<_> = Style::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(listed, names);
    }

    #[test]
    fn every_style_parses_from_the_command_line() {
        for &style in Style::ALL {
            let args = ServeArgs::try_parse_from(["servers", style.name()]).expect("parses");
            assert_eq!(args.style, style);
        }
    }
}
