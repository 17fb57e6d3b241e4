//! The C yardstick (`benches/c/epoll_echo.c`, what the `epoll` style is
//! held against): it builds with the system `cc` and is the same echo
//! service as the styles, including the cases its short-read rule must get
//! right (a read that fills the buffer, data and FIN in one edge, a peer
//! that reads slowly), and stops on SIGTERM with its summary line. Started
//! the way `compare --external` starts it: on a port from loadgen's
//! `free_port`, ready once the port accepts. Skipped, saying so, where
//! there is no `cc`. Every wait is bounded; no timing is asserted.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use loadgen::compare::external::{READY_LIMIT, Ready, free_port, wait_ready};

const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The C server's read buffer (`BUF` in epoll_echo.c).
const BUF: usize = 16384;

/// The server built once for every test here; None (after saying why)
/// where there is no `cc`.
fn binary(test: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let has_cc = Command::new("cc")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !has_cc {
            return None;
        }
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("epoll_echo");
        let status = Command::new("cc")
            .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&out)
            .arg(root.join("benches/c/epoll_echo.c"))
            .status()
            .expect("run cc");
        assert!(
            status.success(),
            "cc failed to build benches/c/epoll_echo.c"
        );
        Some(out)
    });
    if built.is_none() {
        eprintln!("{test}: skipped: no `cc` on this machine (apt-get install gcc)");
    }
    built.clone()
}

/// The C server as a child; killed on drop if a test failed before
/// stopping it.
struct Server {
    child: Option<Child>,
    addr: SocketAddr,
}

impl Server {
    fn start(bin: &PathBuf) -> Server {
        let port = free_port().expect("a free port");
        let mut child = Command::new(bin)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn epoll_echo");
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let ready = wait_ready(addr, READY_LIMIT, || child.try_wait().ok().flatten());
        let server = Server {
            child: Some(child),
            addr,
        };
        assert!(
            matches!(ready, Ready::Listening),
            "not listening: {ready:?}"
        );
        server
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect_timeout(&self.addr, IO_TIMEOUT).expect("connect");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s
    }

    /// SIGTERM, then its exit status and stderr (waited for 10 s at most).
    fn stop(mut self) -> std::process::Output {
        let child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(IO_TIMEOUT) {
            Ok(output) => output.expect("wait"),
            Err(_) => {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                panic!("no exit within 10 s of SIGTERM");
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn echoes_full_buffers_and_stops_on_sigterm_with_its_count() {
    let Some(bin) = binary("echoes_full_buffers_and_stops_on_sigterm_with_its_count") else {
        return;
    };
    let server = Server::start(&bin);
    let mut client = server.connect();
    let mut total = 0;
    // 1 byte, less than a buffer, then whole buffers in one write: a read
    // that fills the buffer must be followed by another, though no new
    // edge comes.
    for (i, n) in [1, 64, BUF, 2 * BUF, 3 * BUF].into_iter().enumerate() {
        let msg = bytes(n, i as u64 + 1);
        client.write_all(&msg).unwrap();
        let mut back = vec![0u8; n];
        client
            .read_exact(&mut back)
            .unwrap_or_else(|e| panic!("{n} bytes in one write, not all echoed: {e}"));
        assert!(back == msg, "{n} bytes: bytes differ");
        total += n;
    }
    drop(client);
    let out = server.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit after SIGTERM: {:?} {stderr}",
        out.status
    );
    assert!(
        stderr.contains(&format!(
            "summary style=c-epoll bytes_echoed={total} accept_errors=0"
        )),
        "summary counts every byte: {stderr}"
    );
}

/// Data and FIN in one edge, on 20 connections at once: the short read of
/// the data must be followed by the read of the EOF.
#[test]
fn data_then_half_close_gets_data_then_eof() {
    let Some(bin) = binary("data_then_half_close_gets_data_then_eof") else {
        return;
    };
    let server = Server::start(&bin);
    let mut clients: Vec<(TcpStream, Vec<u8>)> = (0..20u64)
        .map(|i| {
            let mut c = server.connect();
            let msg = bytes(50, i + 1);
            c.write_all(&msg).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            (c, msg)
        })
        .collect();
    for (i, (c, msg)) in clients.iter_mut().enumerate() {
        let mut back = Vec::new();
        c.read_to_end(&mut back)
            .unwrap_or_else(|e| panic!("client {i}: no EOF after its data: {e}"));
        assert!(back == *msg, "client {i}: bytes differ");
    }
}

/// 8 MiB sent while read back concurrently: the server's writes outrun the
/// reader, so it keeps what the peer cannot take and finishes on EPOLLOUT;
/// every byte comes back in order, then EOF.
#[test]
fn a_slow_reader_gets_every_byte_in_order() {
    let Some(bin) = binary("a_slow_reader_gets_every_byte_in_order") else {
        return;
    };
    let server = Server::start(&bin);
    let client = server.connect();
    let data = bytes(8 << 20, 99);
    let mut writer = client.try_clone().unwrap();
    let sent = data.clone();
    let sender = std::thread::spawn(move || {
        for chunk in sent.chunks(50_000) {
            writer.write_all(chunk).expect("write chunk");
        }
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut reader = client;
    let mut back = Vec::new();
    reader.read_to_end(&mut back).expect("read echo to EOF");
    sender.join().expect("writer thread");
    assert_eq!(back.len(), data.len(), "length");
    assert!(back == data, "bytes differ");
}
