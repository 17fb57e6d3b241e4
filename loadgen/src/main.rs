//! `loadgen`: the load generator that drives the echo servers.
//!
//! A placeholder for now: the measuring engine (closed and open loop,
//! corrected latency, server sampling) is its own issue.

fn main() -> anyhow::Result<()> {
    eprintln!(
        "loadgen: the measuring engine is not built yet; start a server with `servers <style>`"
    );
    std::process::exit(2)
}
