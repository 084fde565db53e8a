//! Damage reported whole: the set verifier goes on past bad chunks and maps
//! every one (kind, chunk, volume, bytes, plaintext, archive entries);
//! missing volumes are reported; stream and archive salvage keep the rest
//! and report the same damage; EIO is located by every path.

mod common;

use std::io::{Read, Seek, SeekFrom};

use kuvert::archive::{ArchiveLimits, ExtractOptions};
use kuvert::{
    Damage, DamageKind, DamageMap, Error, Location, MemorySink, Opener, Rejection, Volume,
};

use common::eio::{EIO, Unreadable, named};
use common::{H1, SECTOR, data, identity, same_identity, seal};

const C: u64 = 4096;
/// Plaintext of a full chunk.
const P: u64 = C - 16;
/// Four chunks a volume.
const VOLUME: u64 = H1 + 4 * C;

/// Content offsets chunk `chunk` holds (the 4-byte payload prefix is in
/// chunk 0 and is not content).
fn content(chunk: u64) -> std::ops::Range<u64> {
    (chunk * P).saturating_sub(4)..(chunk + 1) * P - 4
}

/// Byte range of chunk `chunk` in its volume.
fn chunk_bytes(chunk: u64) -> std::ops::Range<u64> {
    let local = chunk % 4;
    H1 + local * C..H1 + (local + 1) * C
}

/// Four files whose tar layout is known: a.bin header at 0, data to 14,512
/// (padded to 14,848); b.bin from 14,848 to 23,552; c.bin from 23,552 to
/// 44,544; d.bin from 44,544 to 59,392. Sixteen chunks, four volumes.
fn archive_volumes(key: &kuvert::X25519Identity) -> Vec<Vec<u8>> {
    let mut writer = common::sealer(key, C as usize, Some(VOLUME))
        .seal_archive(MemorySink::new())
        .expect("seal");
    for (name, len, seed) in [
        ("a.bin", 14_000, 1),
        ("b.bin", 8_000, 2),
        ("c.bin", 20_000, 3),
        ("d.bin", 14_000, 4),
    ] {
        writer
            .append_file(name, &data(len, seed)[..], len as u64, 0o600, 1_700_000_000)
            .expect("append");
    }
    let volumes = writer.finish().expect("finish").into_volumes();
    assert_eq!(volumes.len(), 4, "the fixture has four volumes");
    volumes
}

/// Chunk 3 (volume 1) flipped, chunk 10 (volume 3) unreadable.
fn damaged(volumes: &[Vec<u8>], stem: &str) -> Vec<Unreadable> {
    let mut sources = named(volumes, stem);
    sources[0].bytes[(chunk_bytes(3).start + 100) as usize] ^= 0x20;
    let bad = chunk_bytes(10).start + 50;
    sources[2] = sources[2].clone().fail(bad..bad + 10);
    sources
}

fn expected_damage(stem: &str) -> [Damage; 2] {
    let name = |volume: u32| Some(format!("{stem}.{volume:03}.kuv"));
    let at = |volume: u32, chunk: u64| {
        Location::volume(volume)
            .byte(chunk_bytes(chunk).start)
            .chunk(chunk)
            .name(name(volume))
    };
    let eio = std::io::Error::from_raw_os_error(EIO);
    let mut unreadable = damage(
        DamageKind::Unreadable {
            kind: eio.kind(),
            os_error: Some(EIO),
            message: eio.to_string(),
        },
        at(3, 10),
        10,
    );
    // The verifier reads around the error: the one sector that fails.
    let sector = chunk_bytes(10).start / SECTOR * SECTOR;
    unreadable.unreadable = Some(sector..sector + SECTOR);
    [damage(DamageKind::Unauthenticated, at(1, 3), 3), unreadable]
}

/// Damage is non-exhaustive: built field by field from a verifier's own.
fn damage(kind: DamageKind, at: Location, chunk: u64) -> Damage {
    let mut made = template();
    made.kind = kind;
    made.at = at;
    made.chunks = chunk..chunk + 1;
    made.bytes = chunk_bytes(chunk);
    made.plaintext = content(chunk);
    made
}

/// Any damage, to fill in.
fn template() -> Damage {
    let key = identity(40);
    let mut volumes = seal(b"x", C as usize, None, &key);
    volumes[0][H1 as usize] ^= 1;
    let report = Opener::new()
        .identity(key)
        .scan_volume(&volumes[0])
        .expect("scan");
    report.damage.iter().next().expect("one run").clone()
}

#[test]
fn the_set_verifier_maps_every_bad_chunk_and_the_entries_it_touches() {
    let key = identity(41);
    let volumes = archive_volumes(&key);
    let sources = damaged(&volumes, "parcel");
    let opener = Opener::new().identity(same_identity(&key)).threads(2);
    let report = opener.verify_set(&sources).expect("verify");
    let found: Vec<Damage> = report.damage.iter().cloned().collect();
    assert_eq!(found, expected_damage("parcel"));
    assert!(report.check.is_complete());
    assert_eq!(report.check.present, [1, 2, 3, 4]);
    assert_eq!(report.check.damaged, [1, 3]);
    assert!(report.check.rejected.is_empty() && report.unusable.is_empty());
    assert!(!report.is_intact());
    assert_eq!(report.volumes.len(), 4);
    assert_eq!(
        report.volumes[2].1.damage.iter().collect::<Vec<_>>(),
        [&expected_damage("parcel")[1]]
    );

    // The per-volume scan finds the same, and the strict verifier still
    // stops at it.
    let mut verifier = opener.volume_verifier();
    let alone = verifier.scan(&sources[0]).expect("scan");
    assert_eq!(
        alone.damage.iter().collect::<Vec<_>>(),
        [&expected_damage("parcel")[0]]
    );
    assert!(matches!(
        verifier.verify(&sources[0]),
        Err(Error::Unauthenticated { chunk: 3, ref at }) if at.volume == Volume::Number(1)
    ));
    assert!(matches!(
        verifier.verify(&sources[2]),
        Err(Error::Read { .. })
    ));
    assert!(verifier.scan(&sources[1]).expect("scan").damage.is_empty());

    // Which entries each run touches.
    let archive = opener
        .open_archive(sources, &ArchiveLimits::new())
        .expect("the index is intact");
    let touched: Vec<(Vec<&str>, bool)> = report
        .damage
        .iter()
        .map(|d| {
            let touched = archive.touched_by(d.plaintext.clone());
            let paths = touched.entries.iter().map(|e| e.path.as_str()).collect();
            (paths, touched.index)
        })
        .collect();
    assert_eq!(
        touched,
        [
            (vec!["a.bin", "b.bin"], false),
            (vec!["c.bin", "d.bin"], false)
        ]
    );
    // The index after the tar stream says so.
    let end = archive.reader().len();
    assert!(archive.touched_by(end - 1..end).index);
    assert!(archive.touched_by(end - 1..end).entries.is_empty());
}

#[test]
fn missing_volumes_are_reported_in_the_set_check_and_the_map() {
    let key = identity(42);
    let volumes = archive_volumes(&key);
    let opener = Opener::new().identity(same_identity(&key));
    let pick = |indices: &[usize]| -> Vec<Vec<u8>> {
        indices.iter().map(|&i| volumes[i].clone()).collect()
    };

    let report = opener.verify_set(&pick(&[3, 0, 2])).expect("verify");
    assert_eq!(report.check.missing, [2]);
    assert_eq!(report.check.end_missing, None);
    assert!(!report.check.is_complete());
    let runs: Vec<&Damage> = report.damage.iter().collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].kind, DamageKind::Missing);
    assert_eq!(runs[0].at, Location::volume(2).byte(H1).chunk(4));
    assert_eq!(runs[0].chunks, 4..8);
    assert_eq!(runs[0].bytes, H1..VOLUME);
    assert_eq!(runs[0].plaintext, content(4).start..content(7).end);

    // Without its last volume, the set goes on after volume 3.
    let report = opener.verify_set(&pick(&[0, 1, 2])).expect("verify");
    assert!(report.check.missing.is_empty());
    assert_eq!(report.check.end_missing, Some(3));
    let runs: Vec<&Damage> = report.damage.iter().collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].kind, DamageKind::Missing);
    assert_eq!(runs[0].at.volume, Volume::Number(4));
    assert_eq!(runs[0].chunks, 12..u64::MAX);
    assert_eq!(runs[0].plaintext, content(12).start..u64::MAX);

    // A duplicate, and a volume of another set, are named and not counted.
    let other = archive_volumes(&key);
    let mut given = pick(&[0, 1, 2, 3, 1]);
    given.push(other[2].clone());
    let report = opener.verify_set(&given).expect("verify");
    assert!(report.check.is_complete());
    assert!(report.damage.is_empty());
    let rejected: Vec<(usize, u32, Rejection)> = report
        .check
        .rejected
        .iter()
        .map(|r| (r.index, r.volume, r.reason.clone()))
        .collect();
    assert_eq!(
        rejected,
        [
            (4, 2, Rejection::Duplicate { first: 1 }),
            (5, 3, Rejection::OtherSet)
        ]
    );
    assert!(!report.is_intact());
    assert!(
        opener
            .verify_set(&pick(&[0, 1, 2, 3]))
            .expect("verify")
            .is_intact()
    );

    // A header that fails is damage of its volume, not a stop.
    let mut broken = pick(&[0, 1, 2, 3]);
    broken[1][100] ^= 1;
    let report = opener.verify_set(&broken).expect("verify");
    assert_eq!(report.unusable.len(), 1);
    assert_eq!(report.unusable[0].0, 1);
    assert_eq!(report.check.missing, [2]);
    assert!(matches!(
        Opener::new().identity(identity(99)).verify_set(&broken),
        Err(Error::NoMatchingKey { .. })
    ));
    assert!(matches!(
        opener.verify_set(&Vec::<Vec<u8>>::new()),
        Err(Error::NoVolumes)
    ));
}

#[test]
fn stream_salvage_writes_zeros_exactly_where_the_verifier_finds_damage() {
    let key = identity(43);
    let content_bytes = data((14 * P) as usize, 7);
    let volumes = seal(&content_bytes, C as usize, Some(VOLUME), &key);
    assert_eq!(volumes.len(), 4);
    let opener = Opener::new().identity(same_identity(&key)).threads(2);
    let verified = opener.verify_set(&damaged(&volumes, "s")).expect("verify");
    assert_eq!(
        verified.damage.iter().cloned().collect::<Vec<_>>(),
        expected_damage("s")
    );

    for threads in [1, 2] {
        let mut reader = Opener::new()
            .identity(same_identity(&key))
            .threads(threads)
            .open(damaged(&volumes, "s"))
            .expect("chunks 0 and the last are intact");
        let mut out = Vec::new();
        let map: DamageMap = reader.salvage_to(&mut out).expect("salvage");
        assert_eq!(map, verified.damage, "threads {threads}");
        assert_eq!(out.len(), content_bytes.len());
        let mut expected = content_bytes.clone();
        for run in &map {
            expected[run.plaintext.start as usize..run.plaintext.end as usize].fill(0);
        }
        assert!(out == expected, "zeros exactly where the damage is");
        assert_eq!(reader.stream_position().expect("position"), reader.len());
    }

    // From the middle of a chunk: the rest, the damage the same.
    let mut reader = opener.open(damaged(&volumes, "s")).expect("open");
    let from = content(3).start + 10;
    reader.seek(SeekFrom::Start(from)).expect("seek");
    let mut out = Vec::new();
    assert_eq!(
        reader.salvage_to(&mut out).expect("salvage"),
        verified.damage
    );
    assert_eq!(out.len() as u64, content_bytes.len() as u64 - from);
    assert!(
        out[..(content(3).end - from) as usize]
            .iter()
            .all(|&b| b == 0)
    );
    assert_eq!(
        out[(content(4).start - from) as usize..(content(10).start - from) as usize],
        content_bytes[content(4).start as usize..content(10).start as usize]
    );
    // An intact set salvages to nothing damaged.
    let mut reader = opener.open(volumes.clone()).expect("open");
    let mut out = Vec::new();
    assert!(reader.salvage_to(&mut out).expect("salvage").is_empty());
    assert!(out == content_bytes);
}

#[test]
fn read_and_copy_to_name_an_unreadable_chunk() {
    let key = identity(44);
    let content_bytes = data((14 * P) as usize, 8);
    let volumes = seal(&content_bytes, C as usize, Some(VOLUME), &key);
    let opener = Opener::new().identity(same_identity(&key));
    let located = Location::volume(3)
        .byte(chunk_bytes(10).start)
        .chunk(10)
        .name(Some("s.003.kuv"));
    let mut reader = opener.open(damaged(&volumes, "s")).expect("open");
    reader
        .seek(SeekFrom::Start(content(9).start))
        .expect("seek");
    let mut out = Vec::new();
    let err = Error::from(reader.read_to_end(&mut out).expect_err("EIO"));
    assert!(
        matches!(&err, Error::Read { at, source } if *at == located && source.raw_os_error() == Some(EIO)),
        "{err:?}"
    );
    assert_eq!(out.len() as u64, P, "chunk 9, and nothing of chunk 10");
    let mut reader = opener.open(damaged(&volumes, "s")).expect("open");
    reader
        .seek(SeekFrom::Start(content(4).start))
        .expect("seek");
    let err = reader.copy_to(&mut Vec::new(), u64::MAX).expect_err("EIO");
    assert!(
        matches!(&err, Error::Read { at, .. } if *at == located),
        "{err:?}"
    );
}

#[test]
fn archive_salvage_leaves_out_the_entries_an_unreadable_chunk_holds() {
    let key = identity(45);
    let volumes = archive_volumes(&key);
    let opener = Opener::new().identity(same_identity(&key));
    let unreadable = || {
        let mut sources = named(&volumes, "parcel");
        let bad = chunk_bytes(10).start + 50;
        sources[2] = sources[2].clone().fail(bad..bad + 10);
        sources
    };
    let dest = tempfile::tempdir().expect("tempdir");
    let mut archive = opener
        .open_archive(unreadable(), &ArchiveLimits::new())
        .expect("open");
    assert!(matches!(
        archive.extract(dest.path(), &ExtractOptions::new()),
        Err(Error::Read { .. })
    ));
    assert_eq!(std::fs::read_dir(dest.path()).expect("list").count(), 0);

    let report = archive
        .extract(dest.path(), &ExtractOptions::new().salvage(true))
        .expect("salvage");
    assert_eq!(report.extracted, ["a.bin", "b.bin"]);
    let left_out: Vec<&str> = report.damaged.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(left_out, ["c.bin", "d.bin"]);
    let expected = &expected_damage("parcel")[1];
    for entry in &report.damaged {
        assert!(
            matches!(entry.error, Error::Read { .. }),
            "{:?}",
            entry.error
        );
        assert_eq!(entry.damage.as_ref(), Some(expected));
    }
    assert_eq!(
        std::fs::read(dest.path().join("b.bin")).expect("kept"),
        data(8_000, 2)
    );
    assert!(!dest.path().join("c.bin").exists());
}

#[test]
fn every_chunk_damaged_alone_is_found_by_the_verifier_and_salvage_alike() {
    let key = identity(46);
    let content_bytes = data((14 * P) as usize, 9);
    let volumes = seal(&content_bytes, C as usize, Some(VOLUME), &key);
    let opener = Opener::new().identity(same_identity(&key)).threads(2);
    // Payload 14·P + 4 bytes: chunks 0 to 14, the last one 4 bytes long.
    // Opening authenticates chunk 0 and the last, so salvage starts after
    // them; the verifier sees those too.
    for chunk in 0..15u64 {
        for unreadable in [false, true] {
            let mut sources = named(&volumes, "s");
            let volume = (chunk / 4) as usize;
            let at = chunk_bytes(chunk).start + 3;
            if unreadable {
                sources[volume] = sources[volume].clone().fail(at..at + 1);
            } else {
                sources[volume].bytes[at as usize] ^= 0x01;
            }
            let report = opener.verify_set(&sources).expect("verify");
            let runs: Vec<&Damage> = report.damage.iter().collect();
            assert_eq!(runs.len(), 1, "chunk {chunk}: {runs:?}");
            assert_eq!(runs[0].chunks, chunk..chunk + 1, "chunk {chunk}");
            assert_eq!(runs[0].at.volume.number(), Some(volume as u32 + 1));
            assert_eq!(runs[0].bytes.start, chunk_bytes(chunk).start);
            assert_eq!(
                matches!(runs[0].kind, DamageKind::Unreadable { .. }),
                unreadable,
                "chunk {chunk}"
            );
            if chunk == 0 || chunk == 14 {
                assert!(
                    opener.open(sources).is_err(),
                    "chunk {chunk} is checked by open"
                );
                continue;
            }
            let mut out = Vec::new();
            let map = opener
                .open(sources)
                .expect("open")
                .salvage_to(&mut out)
                .expect("salvage");
            assert_eq!(map, report.damage, "chunk {chunk}");
            let zeros = content(chunk);
            assert!(
                out[zeros.start as usize..zeros.end as usize]
                    .iter()
                    .all(|&b| b == 0)
            );
            assert!(out[..zeros.start as usize] == content_bytes[..zeros.start as usize]);
            assert!(out[zeros.end as usize..] == content_bytes[zeros.end as usize..]);
        }
    }
}
