//! Property: whatever the chunking, every style echoes the exact bytes.

use std::io::{Read, Write};
use std::sync::OnceLock;

use proptest::prelude::*;
use servers::{Config, ServerHandle};

use crate::support::{connect, start};

/// One server per style for the whole property run (starting one per case
/// would test start-up, not chunking). Small buffers make chunk boundaries
/// and partial writes frequent.
fn servers() -> &'static Vec<ServerHandle> {
    static SERVERS: OnceLock<Vec<ServerHandle>> = OnceLock::new();
    SERVERS.get_or_init(|| {
        crate::styles()
            .into_iter()
            .map(|style| {
                let config = Config {
                    buffer_size: 100,
                    ..Config::default()
                };
                start(style, config)
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_chunking_echoes_exactly(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..3000), 1..24)
    ) {
        for server in servers() {
            let style = server.style();
            let mut client = connect(server.local_addr());
            client.set_nodelay(true).unwrap();
            let expected: Vec<u8> = chunks.concat();
            let mut writer = client.try_clone().unwrap();
            let to_send = chunks.clone();
            let sender = std::thread::spawn(move || {
                for chunk in &to_send {
                    writer.write_all(chunk).unwrap();
                }
                writer.shutdown(std::net::Shutdown::Write).unwrap();
            });
            let mut back = Vec::new();
            client.read_to_end(&mut back).unwrap();
            sender.join().unwrap();
            prop_assert_eq!(back, expected, "{}", style);
        }
    }
}
