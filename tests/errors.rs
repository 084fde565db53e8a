//! Errors a tool author meets through the public API: typed errors that
//! survive `?` out of `Read` adapters, read failures of a source reported
//! with their location, and cuts reported as truncation.

mod common;

use std::io::{BufRead, BufReader};

use kuvert::{Error, Opener};

use common::{H1, identity, same_identity, seal};

const C: usize = 4096;

/// Text lines, long enough for several chunks.
fn lines(count: usize) -> Vec<u8> {
    (0..count)
        .flat_map(|i| format!("row {i:06},some,csv,fields\n").into_bytes())
        .collect()
}

/// Counts the lines of an opened set with `?` straight into `kuvert::Error`.
fn count_lines(volumes: Vec<Vec<u8>>, identity: kuvert::X25519Identity) -> Result<usize, Error> {
    let reader = Opener::new().identity(identity).open(volumes)?;
    let mut count = 0;
    for line in BufReader::new(reader).lines() {
        line?;
        count += 1;
    }
    Ok(count)
}

#[test]
fn question_mark_through_buf_read_lines_keeps_the_typed_error() {
    let key = identity(9);
    let data = lines(2000);
    let mut volumes = seal(&data, C, None, &key);
    assert_eq!(
        count_lines(volumes.clone(), same_identity(&key)).expect("an intact set opens"),
        2000
    );
    // Damage chunk 3.
    let offset = H1 + 3 * C as u64;
    volumes[0][offset as usize + 100] ^= 0x40;
    match count_lines(volumes, same_identity(&key)) {
        Err(Error::Unauthenticated {
            chunk: 3,
            volume: 1,
            offset: found,
        }) => assert_eq!(found, offset),
        other => panic!("expected chunk 3 unauthenticated, got {other:?}"),
    }
}
