//! Edge-triggered reading: the cases a loop that stops reading at a short
//! read (the lean `epoll` reference does, see its module docs) must still
//! get right, checked in every style. A message larger than the buffer that
//! arrives in two segments needs no test of its own: the second arrival
//! raises its own edge (and `chunking` covers it); these two cases raise no
//! further edge, so a wrong rule hangs them, and the bounded reads fail.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};

use servers::Config;

use crate::for_each_style;
use crate::support::{Rng, connect, read_to_eof, start};

const BUFFER: usize = 100;

/// A read that fills the buffer exactly may leave more behind: it must be
/// followed by another read, though no new edge comes. Each message is a
/// whole multiple of the buffer sent in one write (one segment on
/// loopback), so every read the server makes of it is full.
#[test]
fn a_read_that_fills_the_buffer_is_followed_by_another() {
    for_each_style(|style| {
        let config = Config {
            buffer_size: BUFFER,
            ..Config::default()
        };
        let server = start(style, config);
        let mut client = connect(server.local_addr());
        let mut rng = Rng::new(0xED6E);
        for multiple in [1, 2, 3, 7] {
            let msg = rng.bytes(BUFFER * multiple);
            client.write_all(&msg).unwrap();
            let mut back = vec![0u8; msg.len()];
            client.read_exact(&mut back).unwrap_or_else(|e| {
                panic!("{style}: {multiple} buffers' worth in one write, not all echoed: {e}")
            });
            assert!(back == msg, "{style}: bytes differ");
        }
    });
}

/// Data and the peer's FIN in one edge: the read of the data comes up short,
/// yet the EOF behind it must still be read (no edge follows it), so the
/// client gets its bytes and then EOF. Every client writes and shuts down
/// before any reads back, so the FINs are there by the time the server
/// reads the data.
#[test]
fn data_and_eof_in_one_edge_end_with_eof() {
    for_each_style(|style| {
        let server = start(style, Config::default());
        let mut clients: Vec<(TcpStream, Vec<u8>)> = (0..20u64)
            .map(|i| {
                let mut client = connect(server.local_addr());
                let msg = Rng::new(i + 1).bytes(50);
                client.write_all(&msg).unwrap();
                client.shutdown(Shutdown::Write).unwrap();
                (client, msg)
            })
            .collect();
        for (i, (client, msg)) in clients.iter_mut().enumerate() {
            let back = read_to_eof(client)
                .unwrap_or_else(|e| panic!("{style}: client {i}: no EOF after its data: {e}"));
            assert!(back == *msg, "{style}: client {i}: bytes differ");
        }
    });
}
