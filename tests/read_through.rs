//! Reading through unreadable sectors: the keyless verifier names every
//! chunk an EIO sector falls in, with the bytes lost, and goes on; zeroed
//! and garbage sectors (a ddrescue image) are digest mismatches; salvage
//! keeps every byte the damage does not touch.

mod common;

use std::ops::Range;

use kuvert::{DamageKind, Opener, RetryingSource, VolumeSource, scan_digests};

use common::eio::EIO;
use common::faulty::{Fault, Faulty, SECTOR};
use common::{H1, data, identity, same_identity, seal_with, sealer};

const C: u64 = 4096;
/// Plaintext of a full chunk.
const P: u64 = C - 16;

/// Byte range of chunk `chunk` (one volume).
fn chunk_bytes(chunk: u64) -> Range<u64> {
    H1 + chunk * C..H1 + (chunk + 1) * C
}

/// Sector `i` (0 or 1) of chunk `chunk`.
fn sector_of(chunk: u64, i: u64) -> u64 {
    (H1 + chunk * C) / SECTOR + i
}

/// Content offsets chunk `chunk` holds (after the 4-byte prefix).
fn content(chunk: u64) -> Range<u64> {
    (chunk * P).saturating_sub(4)..(chunk + 1) * P - 4
}

/// A one-volume set of 13 chunks with trailer digests, its content, and
/// the volume with EIO in chunk 2 and across chunks 5 and 6, a zeroed
/// sector in chunk 8 and a garbage sector in chunk 10.
fn scratched() -> (kuvert::X25519Identity, Vec<u8>, Vec<u8>, Faulty) {
    let key = identity(61);
    let content_bytes = data((12 * P) as usize, 61);
    let volumes = seal_with(
        &sealer(&key, C as usize, None).digests(true),
        &content_bytes,
        &[usize::MAX],
    );
    assert_eq!(volumes.len(), 1);
    let volume = volumes[0].clone();
    let faulty = Faulty::new(volume.clone(), "disc.kuv")
        .fault(sector_of(2, 0)..sector_of(2, 1), Fault::Eio)
        .fault(sector_of(5, 1)..sector_of(6, 1), Fault::Eio)
        .fault(sector_of(8, 0)..sector_of(8, 1), Fault::Zeroed)
        .fault(sector_of(10, 1)..sector_of(10, 2), Fault::Garbage);
    (key, content_bytes, volume, faulty)
}

#[test]
fn the_keyless_verifier_names_every_unreadable_chunk_and_goes_on() {
    let (_, _, volume, faulty) = scratched();
    assert!(
        scan_digests(volume.as_slice(), 2)
            .expect("intact")
            .is_intact()
    );
    let report = scan_digests(&faulty, 2).expect("read through");
    let runs: Vec<_> = report
        .damage
        .iter()
        .map(|d| {
            (
                d.kind.clone(),
                d.chunks.clone(),
                d.bytes.clone(),
                d.unreadable.clone(),
            )
        })
        .collect();
    let eio = std::io::Error::from_raw_os_error(EIO);
    let unreadable = DamageKind::Unreadable {
        kind: eio.kind(),
        os_error: Some(EIO),
        message: eio.to_string(),
    };
    let sector = |s: u64| s * SECTOR..(s + 1) * SECTOR;
    assert_eq!(
        runs,
        [
            (
                unreadable.clone(),
                2..3,
                chunk_bytes(2),
                Some(sector(sector_of(2, 0)))
            ),
            // Two neighbours lost alike are one run; the lost bytes span
            // the two sectors either side of their boundary.
            (
                unreadable,
                5..7,
                chunk_bytes(5).start..chunk_bytes(6).end,
                Some(sector(sector_of(5, 1)).start..sector(sector_of(6, 0)).end)
            ),
            (DamageKind::DigestMismatch, 8..9, chunk_bytes(8), None),
            (DamageKind::DigestMismatch, 10..11, chunk_bytes(10), None),
        ]
    );
    let first = report.damage.iter().next().expect("damage");
    assert_eq!(first.at.offset, Some(chunk_bytes(2).start));
    assert_eq!(first.at.name.as_deref(), Some("disc.kuv"));
    assert_eq!(first.plaintext, content(2));
    let shown = first.to_string();
    assert!(
        shown.contains(&format!(
            "bytes {} to {} lost",
            sector_of(2, 0) * SECTOR,
            sector_of(2, 1) * SECTOR
        )),
        "{shown}"
    );
}

#[test]
fn the_retrying_source_maps_what_it_could_not_read() {
    let (_, _, volume, faulty) = scratched();
    let source = RetryingSource::new(&faulty);
    let mut whole = vec![0u8; volume.len()];
    source.read_exact_at(&mut whole, 0).expect("read through");
    let erased: Vec<Range<u64>> = source.erasures().ranges().to_vec();
    assert_eq!(
        erased,
        [
            Faulty::bytes_of(sector_of(2, 0)..sector_of(2, 1)),
            Faulty::bytes_of(sector_of(5, 1)..sector_of(6, 1)),
        ]
    );
    // Everything else reads as the faulty source gives it (zeroed and
    // garbage sectors are not read errors).
    for (at, (&got, &was)) in whole.iter().zip(&volume).enumerate() {
        let at = at as u64;
        if source.erasures().contains(at) {
            assert_eq!(got, 0, "byte {at}");
        } else if !(Faulty::bytes_of(sector_of(8, 0)..sector_of(8, 1)).contains(&at)
            || Faulty::bytes_of(sector_of(10, 1)..sector_of(10, 2)).contains(&at))
        {
            assert_eq!(got, was, "byte {at}");
        }
    }
}

#[test]
fn salvage_keeps_everything_the_damage_does_not_touch() {
    let (key, content_bytes, _, faulty) = scratched();
    let opener = Opener::new().identity(same_identity(&key));
    let mut reader = opener.open(vec![faulty]).expect("open");
    let mut out = Vec::new();
    let damage = reader.salvage_to(&mut out).expect("salvage");
    let chunks: Vec<Range<u64>> = damage.iter().map(|d| d.chunks.clone()).collect();
    assert_eq!(chunks, [2..3, 5..7, 8..9, 10..11]);
    assert!(matches!(
        damage.iter().next().expect("run").kind,
        DamageKind::Unreadable {
            os_error: Some(EIO),
            ..
        }
    ));
    assert_eq!(out.len(), content_bytes.len());
    let lost = [2u64, 5, 6, 8, 10];
    for chunk in 0..13u64 {
        let range = content(chunk);
        let range = range.start as usize..(range.end as usize).min(out.len());
        if lost.contains(&chunk) {
            assert!(out[range].iter().all(|&b| b == 0), "chunk {chunk} zeroed");
        } else {
            assert_eq!(
                out[range.clone()],
                content_bytes[range],
                "chunk {chunk} intact"
            );
        }
    }
}
