//! The payload says what it is (SPEC.md §6.7): the authenticated payload
//! prefix decides stream or archive, `OpenReader` reads exactly the bytes
//! sealed, each prefix rule is refused with its exact offset, and nothing
//! is guessed from the last bytes. Also the Argon2id cost rules of sealing
//! and the warnings of opening.

mod common;

use std::io::{Read, Seek, SeekFrom, Write};

use kuvert::archive::{ArchiveLimits, Payload};
use kuvert::{Argon2Params, Error, MemorySink, Opener, Passphrase, PayloadKind, Sealer, Warning};

use common::{data, identity};

const C: usize = 4096;
const P: usize = C - 16;

fn sealer() -> Sealer {
    Sealer::new()
        .digests(false) // lengths below count chunks only (no trailer)
        .recipient(identity(1).to_public())
        .chunk_size(C)
        .created(None)
        .pad(kuvert::Padding::None)
}

fn opener() -> Opener {
    Opener::new().identity(identity(1))
}

fn seal_stream(content: &[u8]) -> Vec<Vec<u8>> {
    let mut writer = sealer().seal(MemorySink::new()).expect("seal");
    writer.write_all(content).expect("write");
    writer.finish().expect("finish").into_volumes()
}

/// Seals `payload` as the whole payload: its first bytes are the prefix.
fn seal_raw(payload: &[u8]) -> Vec<Vec<u8>> {
    let mut writer = kuvert::testing::seal_raw_payload(&sealer(), MemorySink::new()).expect("seal");
    writer.write_all(payload).expect("write");
    writer.finish().expect("finish").into_volumes()
}

/// The content of a sealed archive: TAR ‖ INDEX ‖ TRAILER.
fn archive_content() -> Vec<u8> {
    let mut archive = sealer().seal_archive(MemorySink::new()).expect("seal");
    archive
        .append_file("a.csv", &b"id\n1\n"[..], 5, 0o640, 1_700_000_000)
        .expect("append");
    let volumes = archive.finish().expect("finish").into_volumes();
    let mut reader = opener().open(volumes).expect("open");
    assert_eq!(reader.kind(), PayloadKind::Archive);
    let mut content = Vec::new();
    reader.read_to_end(&mut content).expect("read");
    content
}

fn open_err(volumes: Vec<Vec<u8>>) -> Error {
    opener().open(volumes).expect_err("must be refused")
}

#[test]
fn a_stream_ending_in_an_archive_trailer_is_the_stream_sealed() {
    let trailer_source = archive_content();
    let trailer = &trailer_source[trailer_source.len() - 32..];
    let mut other_version = trailer.to_vec();
    other_version[31] = 0x02;
    for tail in [trailer, &other_version[..]] {
        // Whole archives, too: a stream is a stream, whatever its bytes.
        for head in [data(3 * P, 1), trailer_source.clone()] {
            let mut content = head;
            content.extend_from_slice(tail);
            let reader = opener().open(seal_stream(&content)).expect("open");
            assert_eq!(reader.kind(), PayloadKind::Stream);
            assert_eq!(reader.len(), content.len() as u64);
            match Payload::detect(reader, &ArchiveLimits::new()).expect("a stream") {
                Payload::Stream(mut reader) => {
                    let mut out = Vec::new();
                    reader.read_to_end(&mut out).expect("read");
                    assert!(out == content, "the stream differs from what was sealed");
                }
                Payload::Archive(_) => panic!("a stream was read as an archive"),
            }
        }
    }
}

#[test]
fn the_archive_kind_needs_its_trailer() {
    let content = archive_content();
    let sealed = |content: &[u8]| {
        let mut writer =
            kuvert::testing::seal_content(&sealer(), MemorySink::new(), PayloadKind::Archive)
                .expect("seal");
        writer.write_all(content).expect("write");
        writer.finish().expect("finish").into_volumes()
    };
    let detect = |volumes| {
        let reader = opener().open(volumes).expect("open");
        assert_eq!(reader.kind(), PayloadKind::Archive);
        Payload::detect(reader, &ArchiveLimits::new())
    };
    match detect(sealed(&content)) {
        Ok(Payload::Archive(archive)) => assert_eq!(archive.entries().len(), 1),
        other => panic!("a valid archive: {other:?}"),
    }
    // Content offsets: 16 bytes before the end, where the magic starts.
    let stream_bytes = data(1000, 2);
    assert!(matches!(
        detect(sealed(&stream_bytes)),
        Err(Error::MalformedArchive { offset: 984, .. })
    ));
    let mut other_version = content.clone();
    let last = other_version.len() - 1;
    other_version[last] = 0x02;
    assert!(matches!(
        detect(sealed(&other_version)),
        Err(Error::MalformedArchive { offset, .. }) if offset == last as u64
    ));
    for short in [0, 1, 39] {
        assert!(
            matches!(
                detect(sealed(&content[content.len() - short..])),
                Err(Error::MalformedArchive { offset: 0, .. })
            ),
            "{short} bytes"
        );
    }
}

#[test]
fn each_prefix_rule_is_refused_at_its_offset() {
    let body = data(100, 3);
    let with = |prefix: [u8; 4]| {
        let mut payload = prefix.to_vec();
        payload.extend_from_slice(&body);
        payload
    };
    let cases: [(Vec<u8>, u64); 10] = [
        (Vec::new(), 0),
        (vec![0], 1),
        (vec![0, 0, 0], 3),
        (with([2, 0, 0, 0]), 0),
        (with([0xFF, 0, 0, 0]), 0),
        (with([0, 2, 0, 0]), 1),
        (with([1, 0x80, 0, 0]), 1),
        // PADDED, and the last 8 bytes, read as the padding length, run
        // past the content's start (SPEC.md §15.2).
        (with([0, 1, 0, 0]), 96),
        // A 1-byte manifest: its record head runs past it (§15.1).
        (with([0, 0, 0, 1]), 4),
        // A manifest longer than the payload.
        (with([1, 0, 1, 0]), 2),
    ];
    for (payload, want) in cases {
        match open_err(seal_raw(&payload)) {
            Error::MalformedPayload { offset, .. } => {
                assert_eq!(
                    offset,
                    want,
                    "payload starting {:?}",
                    &payload[..payload.len().min(4)]
                );
            }
            other => panic!("{payload:?}: {other:?}"),
        }
    }
    // The same rules when the prefix is in an interior chunk 0 of a split set.
    // R = 4096, above the 4,076 that fit chunk 0 of 4 KiB chunks.
    let mut big = with([0, 0, 0x10, 0]);
    big.extend_from_slice(&data(5 * P, 4));
    let mut writer = kuvert::testing::seal_raw_payload(
        &sealer().volume_size(2048 + 2 * C as u64),
        MemorySink::new(),
    )
    .expect("seal");
    writer.write_all(&big).expect("write");
    let volumes = writer.finish().expect("finish").into_volumes();
    assert_eq!(volumes.len(), 3);
    assert!(matches!(
        open_err(volumes),
        Error::MalformedPayload { offset: 2, .. }
    ));
    // Valid prefixes written raw open as what they say.
    for (prefix, kind) in [
        ([0, 0, 0, 0], PayloadKind::Stream),
        ([1, 0, 0, 0], PayloadKind::Archive),
    ] {
        let reader = opener().open(seal_raw(&with(prefix))).expect("open");
        assert_eq!((reader.kind(), reader.len()), (kind, 100));
    }
}

#[test]
fn chunk_0_is_authenticated_when_the_set_is_opened() {
    let mut volumes = seal_stream(&data(3 * P, 5));
    volumes[0][2048 + 7] ^= 1;
    assert!(matches!(
        open_err(volumes),
        Error::Unauthenticated { chunk: 0, at } if at == kuvert::Location::volume(1).byte(2048).chunk(0)
    ));
}

#[test]
fn positions_count_the_content() {
    let content = data(3 * P, 6);
    let mut reader = opener().open(seal_stream(&content)).expect("open");
    assert_eq!(reader.len(), content.len() as u64);
    // Chunk 0 holds the prefix and content [0, P − 4).
    assert_eq!(reader.chunk_span(0), 0..(P - 4) as u64);
    assert_eq!(reader.chunk_span(1), (P - 4) as u64..(2 * P - 4) as u64);
    assert_eq!(
        reader.chunk_span(3),
        (3 * P - 4) as u64..content.len() as u64
    );
    assert_eq!(
        reader.chunk_span(4),
        content.len() as u64..content.len() as u64
    );
    assert_eq!(reader.locate((P - 5) as u64), (1, 2048));
    assert_eq!(reader.locate((P - 4) as u64), (1, 2048 + C as u64));
    reader.seek(SeekFrom::End(-3)).expect("seek");
    let mut tail = Vec::new();
    reader.read_to_end(&mut tail).expect("read");
    assert_eq!(tail, content[content.len() - 3..]);
    reader.seek(SeekFrom::Start(0)).expect("seek");
    let mut out = Vec::new();
    assert_eq!(
        reader.copy_to(&mut out, u64::MAX).expect("copy"),
        content.len() as u64
    );
    assert!(out == content);
}

#[test]
fn argon2_costs_a_default_opener_refuses_are_not_sealed() {
    assert!(matches!(
        Argon2Params::new(4 << 20, 3, 4),
        Err(Error::LimitExceeded {
            what: "argon2id memory (KiB)",
            found: 4_194_304,
            limit: 2_097_152
        })
    ));
    assert!(matches!(
        Argon2Params::new(64 << 10, 9, 4),
        Err(Error::LimitExceeded {
            what: "argon2id passes",
            found: 9,
            limit: 8
        })
    ));
    // Hooks bypass `Argon2Params::new`; the sealer still refuses.
    let over = kuvert::testing::argon2_params_unchecked(64 << 10, 3, 17);
    let sealing = Sealer::new()
        .passphrase(Passphrase::new("pw"))
        .argon2_params(over)
        .seal(MemorySink::new());
    assert!(matches!(
        sealing,
        Err(Error::LimitExceeded {
            what: "argon2id lanes",
            found: 17,
            limit: 16
        })
    ));
}

#[test]
fn weak_argon2_costs_open_with_a_warning() {
    let weak = kuvert::testing::argon2_params_unchecked(64, 1, 1);
    let seal = |sealer: Sealer| {
        let mut writer = sealer
            .passphrase(Passphrase::new("pw"))
            .argon2_params(weak)
            .seal(MemorySink::new())
            .expect("seal");
        writer.write_all(b"weak").expect("write");
        writer.finish().expect("finish").into_volumes()
    };
    let reader = Opener::new()
        .passphrase(Passphrase::new("pw"))
        .open(seal(Sealer::new()))
        .expect("weak costs still open");
    assert_eq!(
        reader.warnings(),
        [Warning::WeakArgon2 {
            memory_kib: 64,
            passes: 1
        }]
    );
    assert!(
        reader.warnings()[0]
            .to_string()
            .contains("64 KiB, 1 passes")
    );
    // Beside a public key, both are said; opened by the key, neither.
    let mixed = seal(Sealer::new().recipient(identity(1).to_public()));
    let reader = Opener::new()
        .passphrase(Passphrase::new("pw"))
        .open(mixed.clone())
        .expect("open");
    assert_eq!(
        reader.warnings(),
        [
            Warning::WeakArgon2 {
                memory_kib: 64,
                passes: 1
            },
            Warning::PassphraseBesidePublicKeys
        ]
    );
    assert_eq!(opener().open(mixed).expect("open").warnings(), []);
}
