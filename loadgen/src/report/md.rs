//! Writing markdown, shared by every table of report.md and perf.md: the
//! `put!`/`putln!` macros that append to a `String`, number formats, and
//! the header of a table with a column per connection count.

/// Appends formatted text to a `String` (writing into one cannot fail).
macro_rules! put {
    ($s:expr, $($fmt:tt)*) => {{
        use ::std::fmt::Write as _;
        let _ = write!($s, $($fmt)*);
    }};
}

/// Appends formatted text and a newline to a `String`.
macro_rules! putln {
    ($s:expr, $($fmt:tt)*) => {{
        use ::std::fmt::Write as _;
        let _ = writeln!($s, $($fmt)*);
    }};
}

pub(crate) use {put, putln};

/// Messages per second, compactly.
pub fn fmt_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// "1.52 KiB" from bytes.
pub fn kib(bytes: f64) -> String {
    format!("{:.2} KiB", bytes / 1024.0)
}

/// The rest of a table's header after "| style |": a right-aligned column
/// per connection count.
pub fn conns_header(s: &mut String, conns: &[usize]) {
    for c in conns {
        put!(s, " {c} conn{} |", if *c == 1 { "" } else { "s" });
    }
    s.push_str("\n|---|");
    for _ in conns {
        s.push_str("---:|");
    }
    s.push('\n');
}

pub use crate::results::thousands;

/// "1 conn", "1,000 conns": a connection count for a table's header.
pub fn conns_label(n: usize) -> String {
    format!("{} conn{}", thousands(n), if n == 1 { "" } else { "s" })
}
