//! The servers' log lines on stderr.
//!
//! Each line goes out in one `write(2)` on fd 2, without the lock that
//! `eprintln!` takes: a process forked from a multi-threaded server may
//! have been forked while another thread held that lock, and would then
//! block forever on its first log line. One write per line also keeps lines
//! from several processes whole.

/// Writes one formatted line to stderr (errors are ignored: a log line that
/// cannot be written must not take the server down).
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::runtime::log::line(format_args!($($arg)*))
    };
}
pub(crate) use log;

pub(crate) fn line(args: std::fmt::Arguments<'_>) {
    let mut text = args.to_string();
    text.push('\n');
    let stderr = std::io::stderr();
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        match nix::unistd::write(&stderr, rest) {
            Ok(0) => return,
            Ok(n) => rest = &rest[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}
