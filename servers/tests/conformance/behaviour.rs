//! Echo semantics and robustness, against servers started in-process.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

use servers::{Config, Style};

use crate::for_each_style;
use crate::support::{
    IO_TIMEOUT, Rng, connect, raise_fd_limit, read_to_eof, round_trip, start, wait_until,
};

#[test]
fn one_round_trip() {
    for_each_style(|style| {
        let server = start(style, Config::default());
        let mut client = connect(server.local_addr());
        assert_eq!(
            round_trip(&mut client, b"hello, c10k"),
            b"hello, c10k",
            "{style}"
        );
        drop(client);
        let summary = server.shutdown().expect("clean shutdown");
        assert_eq!(summary.accepted, 1, "{style}: accepted");
        assert_eq!(summary.bytes_echoed, 11, "{style}: bytes echoed");
    });
}

/// 4 MiB of random bytes in random-sized writes, read back concurrently and
/// compared byte for byte.
#[test]
fn random_bytes_in_random_chunks() {
    for_each_style(|style| {
        let server = start(style, Config::default());
        let client = connect(server.local_addr());
        let mut rng = Rng::new(0xC10C ^ style as u64);
        let data = rng.bytes(4 << 20);
        let mut writer = client.try_clone().unwrap();
        let sent = data.clone();
        let sender = thread::spawn(move || {
            let mut rng = Rng::new(7);
            let mut rest = &sent[..];
            while !rest.is_empty() {
                let n = (1 + rng.below(70_000)).min(rest.len());
                writer.write_all(&rest[..n]).expect("write chunk");
                rest = &rest[n..];
            }
            writer.shutdown(Shutdown::Write).unwrap();
        });
        let mut reader = client;
        let back = read_to_eof(&mut reader).expect("read echo to EOF");
        sender.join().expect("writer thread");
        assert_eq!(back.len(), data.len(), "{style}: length");
        assert!(back == data, "{style}: bytes differ");
    });
}

/// A configuration that can serve `conns` connections at once. Every style
/// can, except `pool`: serving at most `--workers` connections at once is
/// what the style is (see `pool_serves_n_at_once_and_queues_the_rest`), so
/// here it gets a pool as large as the test's concurrency.
fn serving_at_once(style: Style, conns: usize) -> Config {
    Config {
        workers: (style == Style::Pool).then_some(conns),
        ..Config::default()
    }
}

/// 200 clients, each with its own message, interleaved over several rounds.
#[test]
fn two_hundred_concurrent_clients_interleaved() {
    raise_fd_limit();
    for_each_style(|style| {
        let server = start(style, serving_at_once(style, 200));
        let mut clients: Vec<TcpStream> = (0..200).map(|_| connect(server.local_addr())).collect();
        for round in 0..5u32 {
            for (i, c) in clients.iter_mut().enumerate() {
                c.write_all(format!("client {i} round {round};").as_bytes())
                    .unwrap();
            }
            for (i, c) in clients.iter_mut().enumerate().rev() {
                let expect = format!("client {i} round {round};");
                let mut back = vec![0u8; expect.len()];
                c.read_exact(&mut back)
                    .unwrap_or_else(|e| panic!("{style}: client {i}: {e}"));
                assert_eq!(
                    back,
                    expect.as_bytes(),
                    "{style}: client {i} got another's bytes"
                );
            }
        }
        drop(clients);
        assert!(
            server.summary().peak_conns >= 200,
            "{style}: the 200 clients were open at once"
        );
    });
}

/// A client that shuts its write side gets everything back, then EOF.
#[test]
fn half_close_returns_everything_then_eof() {
    for_each_style(|style| {
        let server = start(style, Config::default());
        let mut client = connect(server.local_addr());
        let data = Rng::new(3).bytes(100_000);
        client.write_all(&data).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let back = read_to_eof(&mut client)
            .unwrap_or_else(|e| panic!("{style}: no EOF after half-close: {e}"));
        assert!(
            back == data,
            "{style}: got {} of {} bytes back",
            back.len(),
            data.len()
        );
    });
}

/// A client that resets mid-stream (SO_LINGER 0) ends its own connection
/// only; the server goes on serving others.
#[test]
fn reset_mid_stream_leaves_others_served() {
    for_each_style(|style| {
        let server = start(style, Config::default());
        let mut other = connect(server.local_addr());
        assert_eq!(round_trip(&mut other, b"before"), b"before");
        for i in 0..5 {
            let mut rude = connect(server.local_addr());
            // Unread echo in its receive buffer, and more on the way.
            rude.write_all(&vec![i as u8; 256 * 1024]).unwrap();
            socket2::SockRef::from(&rude)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(rude); // RST
        }
        assert_eq!(round_trip(&mut other, b"after"), b"after", "{style}");
        let mut fresh = connect(server.local_addr());
        assert_eq!(round_trip(&mut fresh, b"fresh"), b"fresh", "{style}");
        let closed = wait_until(IO_TIMEOUT, || server.summary().active == 2);
        assert!(
            closed,
            "{style}: reset connections were closed ({:?})",
            server.summary()
        );
    });
}

/// Past --max-conns a connection is closed at once and counted; when one
/// closes, a new one is served again.
#[test]
fn max_conns_rejects_and_recovers() {
    for_each_style(|style| {
        let config = Config {
            max_conns: Some(2),
            ..Config::default()
        };
        let server = start(style, config);
        let mut a = connect(server.local_addr());
        let mut b = connect(server.local_addr());
        assert_eq!(round_trip(&mut a, b"a"), b"a");
        assert_eq!(round_trip(&mut b, b"b"), b"b");
        let mut c = connect(server.local_addr());
        let _ = c.write_all(b"c");
        let mut buf = [0u8; 1];
        match c.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("{style}: third connection should be closed, got {other:?}"),
        }
        assert_eq!(server.summary().rejected, 1, "{style}: rejected count");
        drop(a);
        assert!(
            wait_until(IO_TIMEOUT, || server.summary().active == 1),
            "{style}: the closed connection is no longer counted"
        );
        let mut d = connect(server.local_addr());
        assert_eq!(
            round_trip(&mut d, b"d"),
            b"d",
            "{style}: served again below the limit"
        );
    });
}

/// 2,000 connections open at once, each echoed once.
#[test]
fn two_thousand_simultaneous_connections() {
    let limit = raise_fd_limit();
    assert!(
        limit >= 4_200,
        "this test needs 4,200 fds (client and in-process server), have {limit}"
    );
    for_each_style(|style| {
        let server = start(style, serving_at_once(style, 2000));
        let mut clients: Vec<TcpStream> = (0..2000).map(|_| connect(server.local_addr())).collect();
        for (i, c) in clients.iter_mut().enumerate() {
            c.write_all(&(i as u32).to_le_bytes()).unwrap();
        }
        for (i, c) in clients.iter_mut().enumerate() {
            let mut back = [0u8; 4];
            c.read_exact(&mut back)
                .unwrap_or_else(|e| panic!("{style}: client {i}: {e}"));
            assert_eq!(u32::from_le_bytes(back), i as u32, "{style}: client {i}");
        }
        assert_eq!(
            server.summary().peak_conns,
            2000,
            "{style}: all open at once"
        );
        drop(clients);
        let summary = server.shutdown().expect("clean shutdown");
        assert_eq!(summary.accepted, 2000, "{style}");
        assert_eq!(summary.bytes_echoed, 8000, "{style}");
    });
}

/// Shutdown closes open connections (clients see EOF) and returns.
#[test]
fn shutdown_closes_open_connections() {
    for_each_style(|style| {
        let server = start(style, Config::default());
        let mut idle = connect(server.local_addr());
        let mut busy = connect(server.local_addr());
        assert_eq!(round_trip(&mut busy, b"x"), b"x");
        // Wait until the server counts both, so shutdown has both to close.
        assert!(
            wait_until(IO_TIMEOUT, || server.summary().active == 2),
            "{style}"
        );
        server.shutdown().expect("clean shutdown");
        for c in [&mut idle, &mut busy] {
            let mut buf = [0u8; 8];
            match c.read(&mut buf) {
                Ok(0) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
                other => panic!("{style}: expected EOF after shutdown, got {other:?}"),
            }
        }
    });
}

/// --work-us burns CPU per chunk and the echo is still exact.
#[test]
fn work_us_keeps_echo_exact() {
    for_each_style(|style| {
        let config = Config {
            work_us: 200,
            nodelay: true,
            ..Config::default()
        };
        let server = start(style, config);
        let mut client = connect(server.local_addr());
        client.set_nodelay(true).unwrap();
        for i in 0..20u8 {
            assert_eq!(round_trip(&mut client, &[i; 100]), vec![i; 100], "{style}");
        }
    });
}

/// `pool` with 3 workers and 4 clients (the background documents' pool of 3
/// given 4 tasks): three are echoed, the fourth is accepted but waits
/// unserved until one of the three closes, and is echoed then.
#[test]
fn pool_serves_n_at_once_and_queues_the_rest() {
    let config = Config {
        workers: Some(3),
        ..Config::default()
    };
    let server = start(Style::Pool, config);
    let mut served: Vec<TcpStream> = (0..3).map(|_| connect(server.local_addr())).collect();
    for (i, c) in served.iter_mut().enumerate() {
        let msg = format!("served {i}");
        assert_eq!(round_trip(c, msg.as_bytes()), msg.as_bytes());
    }
    let mut fourth = connect(server.local_addr());
    fourth.write_all(b"queued").unwrap();
    assert!(
        wait_until(IO_TIMEOUT, || server.summary().active == 4),
        "the fourth connection is accepted and counted open"
    );
    // Every worker is busy: no reply may come while the three stay open.
    fourth
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 6];
    let early = fourth.read(&mut buf);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "the fourth connection was served while all 3 workers were busy: {early:?}"
    );
    drop(served.remove(0));
    fourth.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    fourth
        .read_exact(&mut buf)
        .expect("served once a worker is free");
    assert_eq!(&buf, b"queued");
    for (i, c) in served.iter_mut().enumerate() {
        let msg = format!("still {i}");
        assert_eq!(round_trip(c, msg.as_bytes()), msg.as_bytes());
    }
}

#[test]
fn style_list_covers_every_style() {
    let list = servers::cli::list_styles();
    for style in Style::ALL {
        let line = list.lines().find(|l| l.starts_with(style.name()));
        let line = line.unwrap_or_else(|| panic!("`servers list` misses {style}"));
        assert!(
            line.len() > style.name().len() + 20,
            "{style} has an explanation"
        );
    }
}
