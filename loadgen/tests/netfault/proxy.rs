//! A TCP proxy that puts one fault between loadgen and a real server:
//! every chunk held back, every byte its own segment, a stall of every
//! connection at once, or a reset in the middle of the stream.
//!
//! Written here rather than taken from a crate: the Rust port of Toxiproxy
//! (`noxious`, last released 2021) is a REST-driven server on tokio-util
//! 0.6, and `toxiproxy_rust` is only a client of the Go server; neither
//! writes byte by byte with TCP_NODELAY or resets after a byte count in a
//! way a test can read back. This is two blocking threads per connection,
//! one per direction, on std alone.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use socket2::SockRef;

#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Each chunk read is held this long before it is written on (both
    /// directions): a round trip takes at least twice this.
    Delay(Duration),
    /// What is read is written on one byte per write, TCP_NODELAY set, so
    /// each byte leaves as a segment of its own (both directions): the
    /// server and loadgen get messages in pieces, at every offset.
    Bytes,
    /// Nothing is forwarded, either way, from `at` after the first
    /// connection for `len`; what arrives meanwhile waits in the kernel.
    Stall { at: Duration, len: Duration },
    /// After this many bytes from the client, the connection is reset on
    /// both sides (SO_LINGER 0, then close: an RST, not a FIN).
    ResetAfter(u64),
}

/// A running proxy; stops accepting when dropped (connections already
/// made go on until their ends close).
pub struct Proxy {
    pub addr: SocketAddr,
    /// Connections reset by [`Fault::ResetAfter`] so far.
    pub resets: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocking accept.
        let _ = TcpStream::connect(self.addr);
    }
}

/// What the connections of one proxy share.
struct Shared {
    upstream: SocketAddr,
    fault: Fault,
    /// When the first connection came (the stall's clock).
    epoch: Instant,
    resets: Arc<AtomicU64>,
}

/// A proxy on 127.0.0.1 (a free port) to `upstream`, with `fault`.
pub fn start(upstream: SocketAddr, fault: Fault) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
    let addr = listener.local_addr().expect("the proxy's address");
    let stop = Arc::new(AtomicBool::new(false));
    let resets = Arc::new(AtomicU64::new(0));
    let (flag, counter) = (Arc::clone(&stop), Arc::clone(&resets));
    thread::spawn(move || {
        let mut shared: Option<Arc<Shared>> = None;
        for client in listener.incoming() {
            if flag.load(Ordering::Relaxed) {
                return;
            }
            let Ok(client) = client else { continue };
            let shared = Arc::clone(shared.get_or_insert_with(|| {
                Arc::new(Shared {
                    upstream,
                    fault,
                    epoch: Instant::now(),
                    resets: Arc::clone(&counter),
                })
            }));
            thread::spawn(move || relay(client, &shared));
        }
    });
    Proxy { addr, resets, stop }
}

/// One connection: client to server on this thread, server to client on
/// another; returns when both directions are done.
fn relay(client: TcpStream, shared: &Shared) {
    let Ok(server) = TcpStream::connect(shared.upstream) else {
        return;
    };
    for s in [&client, &server] {
        // Latency-faithful, and each 1-byte write its own segment.
        let _ = s.set_nodelay(true);
    }
    let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let reset = Arc::new(AtomicBool::new(false));
    let back = {
        let (reset, fault, epoch) = (Arc::clone(&reset), shared.fault, shared.epoch);
        thread::spawn(move || pump(&s, &c, fault, epoch, None, &reset))
    };
    let limit = match shared.fault {
        Fault::ResetAfter(n) => Some(n),
        _ => None,
    };
    pump(&client, &server, shared.fault, shared.epoch, limit, &reset);
    if reset.load(Ordering::Relaxed) {
        for s in [&client, &server] {
            let _ = SockRef::from(s).set_linger(Some(Duration::ZERO));
        }
        // Ends the other direction's read (with 0, and no packet sent), so
        // that it drops its copies: the last close is then ours, an RST.
        let _ = server.shutdown(Shutdown::Read);
        shared.resets.fetch_add(1, Ordering::Relaxed);
    }
    let _ = back.join();
}

/// Copies `from` to `to` with the fault, until `from` ends; then passes the
/// end on (unless the connection is being reset). With `limit`, stops
/// after that many bytes and sets `reset`.
fn pump(
    mut from: &TcpStream,
    mut to: &TcpStream,
    fault: Fault,
    epoch: Instant,
    limit: Option<u64>,
    reset: &AtomicBool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut forwarded = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if reset.load(Ordering::Relaxed) {
            return;
        }
        let mut chunk = &buf[..n];
        if let Some(limit) = limit
            && forwarded + n as u64 >= limit
        {
            chunk = &chunk[..(limit - forwarded) as usize];
            let _ = to.write_all(chunk);
            reset.store(true, Ordering::Relaxed);
            return;
        }
        let sent = match fault {
            Fault::Delay(d) => {
                thread::sleep(d);
                to.write_all(chunk)
            }
            Fault::Bytes => chunk.iter().try_for_each(|b| to.write_all(&[*b])),
            Fault::Stall { at, len } => {
                let (from, until) = (epoch + at, epoch + at + len);
                let now = Instant::now();
                if now >= from && now < until {
                    thread::sleep(until - now);
                }
                to.write_all(chunk)
            }
            Fault::ResetAfter(_) => to.write_all(chunk),
        };
        if sent.is_err() {
            break;
        }
        forwarded += n as u64;
    }
    if !reset.load(Ordering::Relaxed) {
        let _ = to.shutdown(Shutdown::Write);
    }
}
