//! The byte pattern of the message stream, so every echoed byte can be
//! checked without keeping a copy of what was sent.
//!
//! Byte `i` of message `k` on connection `c` is a function of `(c, k, i)`:
//! a dropped, duplicated, reordered or flipped byte shows as a mismatch.

/// Walks `len` stream bytes from `offset` one message at a time, calling
/// `f(base, first_index_in_message, range_in_buffer)` for each piece.
/// `f` returns false to stop early.
fn segments(
    conn: u32,
    size: usize,
    mut offset: u64,
    len: usize,
    mut f: impl FnMut(u8, usize, std::ops::Range<usize>) -> bool,
) {
    let mut pos = 0;
    while pos < len {
        let msg = offset / size as u64;
        let within = (offset % size as u64) as usize;
        let take = (size - within).min(len - pos);
        if !f(message_base(conn, msg), within, pos..pos + take) {
            return;
        }
        pos += take;
        offset += take as u64;
    }
}

/// Fills `out` with the stream bytes starting at `offset`.
pub fn fill(conn: u32, size: usize, offset: u64, out: &mut [u8]) {
    let len = out.len();
    segments(conn, size, offset, len, |base, within, range| {
        for (j, b) in out[range].iter_mut().enumerate() {
            *b = byte(base, within + j);
        }
        true
    });
}

/// Checks `got` against the stream bytes starting at `offset`; returns the
/// index of the first wrong byte.
pub fn verify(conn: u32, size: usize, offset: u64, got: &[u8]) -> Result<(), usize> {
    let mut wrong = None;
    segments(conn, size, offset, got.len(), |base, within, range| {
        let start = range.start;
        match got[range]
            .iter()
            .enumerate()
            .find(|&(j, &b)| b != byte(base, within + j))
        {
            Some((j, _)) => {
                wrong = Some(start + j);
                false
            }
            None => true,
        }
    });
    wrong.map_or(Ok(()), Err)
}

fn message_base(conn: u32, msg: u64) -> u8 {
    let h = (msg ^ ((conn as u64) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 56) as u8
}

fn byte(base: u8, i: usize) -> u8 {
    base ^ (i as u8).wrapping_mul(31) ^ ((i >> 8) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_then_verify_at_any_offset() {
        let mut buf = vec![0u8; 1000];
        fill(7, 64, 123, &mut buf);
        assert_eq!(verify(7, 64, 123, &buf), Ok(()));
        assert_eq!(verify(7, 64, 123, &buf[..10]), Ok(()));
        assert_eq!(verify(7, 64, 123 + 10, &buf[10..]), Ok(()));
    }

    #[test]
    fn flipped_dropped_and_foreign_bytes_are_caught() {
        let mut buf = vec![0u8; 256];
        fill(1, 64, 0, &mut buf);
        let mut flipped = buf.clone();
        flipped[100] ^= 0x01;
        assert_eq!(verify(1, 64, 0, &flipped), Err(100));
        let dropped: Vec<u8> = buf
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 5)
            .map(|(_, b)| *b)
            .collect();
        assert!(verify(1, 64, 0, &dropped).is_err());
        assert!(
            verify(2, 64, 0, &buf).is_err(),
            "another connection's bytes"
        );
    }
}
