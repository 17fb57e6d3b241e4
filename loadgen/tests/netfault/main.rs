//! Network faults between loadgen and every style: packet loss, a
//! blackout and a bandwidth cap made by iptables and tc inside a network
//! namespace the test creates ([`netns`], [`inside`]; root only, skipped
//! with a message elsewhere), and delay, 1-byte segments, a stall and a
//! reset made by a fault-injecting proxy ([`proxy`]; anywhere). In every
//! case each style echoes every byte as sent, the fault shows where it
//! should (tail latency, corrected latency, longest stall, the error
//! count) and every run ends within bounded time.
//!
//! Each test prints its figures as a markdown table (`-- --nocapture`):
//! `cargo test -p loadgen --test netfault -- --nocapture --test-threads 1`.

#[path = "../common/mod.rs"]
mod common;

mod inside;
mod netns;
mod ns_faults;
mod proxy;
mod proxy_faults;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use loadgen::RunResult;
use servers::Style;

/// Held by every test here for its whole length: each runs every style
/// at once, which takes the machine's two CPUs, and their figures are
/// docs/netfault.md's. A test that failed holding it does not matter.
pub fn alone() -> MutexGuard<'static, ()> {
    static ALONE: Mutex<()> = Mutex::new(());
    ALONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A line on stderr that shows even when the harness captures output
/// (its print macros are captured, and a passing test's capture is never
/// shown): why a test was skipped, what was cleaned up.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Prints one table row per style: what docs/netfault.md's figures come from.
pub fn table(title: &str, results: &[(Style, RunResult)]) {
    let ms = |us: u64| us as f64 / 1000.0;
    let mut out = format!(
        "\n{title}\n| style | msgs/s | MB/s | p50 ms | p99 ms | max ms | longest stall ms | errors |\n\
         |---|---|---|---|---|---|---|---|\n"
    );
    for (style, r) in results {
        out += &format!(
            "| {style} | {:.0} | {:.3} | {:.1} | {:.1} | {:.1} | {:.0} | {} |\n",
            r.throughput_msgs_per_s,
            r.throughput_mb_per_s,
            ms(r.latency_us.p50),
            ms(r.latency_us.p99),
            ms(r.latency_us.max),
            r.fairness.longest_stall_ms,
            r.errors.describe(),
        );
    }
    println!("{out}");
}

/// Every byte of every style came back as sent.
pub fn no_mismatch(results: &[(Style, RunResult)]) {
    for (style, r) in results {
        assert_eq!(r.errors.mismatch, 0, "{style}: {}", r.errors.describe());
        assert!(r.messages > 0, "{style}: no message echoed");
    }
}

/// No error of any kind (so no mismatch either), and messages echoed.
pub fn no_errors(results: &[(Style, RunResult)]) {
    no_mismatch(results);
    for (style, r) in results {
        assert_eq!(r.errors.total(), 0, "{style}: {}", r.errors.describe());
    }
}

/// One fresh connection, `len` bytes out and back, each checked; bounded
/// by socket timeouts.
pub fn echo_once(addr: SocketAddr, len: usize) -> Result<(), String> {
    let limit = Duration::from_secs(5);
    let mut s = TcpStream::connect_timeout(&addr, limit).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(limit)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(limit))
        .map_err(|e| e.to_string())?;
    let sent: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    s.write_all(&sent).map_err(|e| format!("write: {e}"))?;
    let mut got = vec![0; len];
    s.read_exact(&mut got).map_err(|e| format!("read: {e}"))?;
    if got != sent {
        return Err("the echo differs from what was sent".into());
    }
    Ok(())
}
