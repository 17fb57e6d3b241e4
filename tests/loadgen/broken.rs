//! A test server that misbehaves on purpose, one way at a time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Echo, but leave out the stream byte at this offset.
    DropByte(u64),
    /// Echo, but flip the stream byte at this offset.
    FlipByte(u64),
    /// Echo this many bytes, then read on but never answer again.
    StallAfter(u64),
    /// Echo this many bytes, then close.
    CloseAfter(u64),
    /// Echo, except during one pause of every connection: from `at` after
    /// the first connection for `len`.
    PauseOnce { at: Duration, len: Duration },
    /// Echo, but hold each connection's first reply back this long.
    DelayFirst(Duration),
    /// Serve only the first this-many connections accepted; hold the others
    /// open and never answer them (a fixed pool whose workers are all busy).
    ServeFirst(usize),
}

/// A running broken server; stops accepting when dropped.
pub struct Broken {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Drop for Broken {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocking accept.
        let _ = TcpStream::connect(self.addr);
    }
}

pub fn start(fault: Fault) -> Broken {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    thread::spawn(move || {
        let mut first: Option<Instant> = None;
        for (index, stream) in listener.incoming().enumerate() {
            if flag.load(Ordering::Relaxed) {
                return;
            }
            let Ok(stream) = stream else { continue };
            let epoch = *first.get_or_insert_with(Instant::now);
            let flag = Arc::clone(&flag);
            match fault {
                Fault::ServeFirst(n) if index >= n => {
                    thread::spawn(move || hold(stream, &flag));
                }
                _ => {
                    thread::spawn(move || serve(stream, fault, epoch, &flag));
                }
            }
        }
    });
    Broken { addr, stop }
}

/// Keeps a connection open without ever answering, until the peer closes
/// or the server stops.
fn hold(mut s: TcpStream, stop: &AtomicBool) {
    // Bounded reads, so the thread notices the stop flag.
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

fn serve(mut s: TcpStream, fault: Fault, epoch: Instant, stop: &AtomicBool) {
    s.set_nodelay(true).unwrap();
    // Bounded reads, so a thread notices the stop flag.
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut offset = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let n = match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return,
        };
        let mut out = buf[..n].to_vec();
        let (from, to) = (offset, offset + n as u64);
        offset = to;
        match fault {
            Fault::DropByte(at) if (from..to).contains(&at) => {
                out.remove((at - from) as usize);
            }
            Fault::FlipByte(at) if (from..to).contains(&at) => out[(at - from) as usize] ^= 0x40,
            Fault::StallAfter(limit) if to > limit => {
                out.truncate(limit.saturating_sub(from) as usize);
                let _ = s.write_all(&out);
                // Keep the connection open and silent; drain what comes.
                while !stop.load(Ordering::Relaxed) && !matches!(s.read(&mut buf), Ok(0)) {}
                return;
            }
            Fault::CloseAfter(limit) if to > limit => {
                out.truncate(limit.saturating_sub(from) as usize);
                let _ = s.write_all(&out);
                return;
            }
            Fault::DelayFirst(delay) if from == 0 => thread::sleep(delay),
            Fault::PauseOnce { at, len } => {
                let (start, end) = (epoch + at, epoch + at + len);
                let now = Instant::now();
                if now >= start && now < end {
                    thread::sleep(end - now);
                }
            }
            _ => {}
        }
        if s.write_all(&out).is_err() {
            return;
        }
    }
}
