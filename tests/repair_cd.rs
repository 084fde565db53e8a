//! Keyless repair of a real-size volume (issue 12's case): a `cd` volume
//! with default parity, a 5 % contiguous burst of unreadable sectors and
//! 0.5 % scattered unreadable sectors besides, restored byte-identical in
//! memory bounded by batches (the output is the scratch).

mod common;

use std::io::{Cursor, Write};

use common::eio::Unreadable;
use kuvert::{MemorySink, Parity, Sealer, X25519Identity, repair_volume};

const SECTOR: u64 = 2048;

#[test]
#[ignore = "cd-size volume, ~1 min"]
fn a_cd_volume_with_a_burst_and_scattered_unreadable_sectors_repairs_byte_identical() {
    let cd = kuvert::media::preset("cd").expect("cd preset").volume_size;
    let identity = X25519Identity::from_bytes([3; 32]);
    let mut writer = Sealer::new()
        .recipient(identity.to_public())
        .volume_size(cd)
        .parity(Parity::Percent(20))
        .seal(MemorySink::new())
        .expect("seal");
    // Fills most of the disc: one volume.
    let piece: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for _ in 0..560 {
        writer.write_all(&piece).expect("write");
    }
    let mut volumes = writer.finish().expect("finish").into_volumes();
    assert_eq!(volumes.len(), 1, "one cd volume");
    let volume = volumes.remove(0);
    let sectors = volume.len() as u64 / SECTOR;
    let burst_len = sectors * 5 / 100;
    let burst = sectors / 3..sectors / 3 + burst_len;
    // One sector in 200 outside the burst, by a fixed stride.
    let scattered: Vec<u64> = (0..sectors / 200)
        .map(|i| i * 200 + (i * 37) % 200)
        .filter(|s| !burst.contains(s))
        .collect();
    let source = Unreadable::new(volume.clone(), "cd.kuv")
        .fail(burst.start * SECTOR..burst.end * SECTOR)
        .fail_sectors(scattered.iter().copied());
    let mut out = Cursor::new(Vec::new());
    let report = repair_volume(&source, &mut out).expect("repairs");
    assert!(out.into_inner() == volume, "byte-identical");
    assert_eq!(report.sectors_lost, burst_len + scattered.len() as u64);
    assert_eq!(report.sectors_unrecoverable, 0);
    assert!(report.margin.used < report.margin.of);
}
