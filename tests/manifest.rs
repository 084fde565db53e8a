//! The encrypted manifest and size padding (SPEC.md §15): what the sealer
//! writes, that the opener drops the padding and checks it, that plans
//! count it exactly, and that every padding rule round-trips.

mod common;

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, UNIX_EPOCH};

use kuvert::archive::{ArchiveLimits, ExtractOptions, Payload};
use kuvert::{Error, MemorySink, Opener, OptionError, Padding, PayloadKind, Sealer, padme};
use proptest::prelude::*;

use common::{data, identity};

const C: usize = 4096;
const P: u64 = (C - 16) as u64;
const H: u64 = 2048;
/// 2025-12-01T00:00:00Z.
const CREATED: u64 = 1_764_547_200;

/// These tests count payload bytes from volume lengths, so their volumes
/// carry no trailer (SPEC.md §13; tests/trailer.rs has those).
fn sealer() -> Sealer {
    Sealer::new()
        .recipient(identity(1).to_public())
        .chunk_size(C)
        .created(Some(UNIX_EPOCH + Duration::from_secs(CREATED)))
        .digests(false)
}

fn seal(sealer: &Sealer, content: &[u8]) -> Vec<Vec<u8>> {
    let mut writer = sealer.seal(MemorySink::new()).expect("seal");
    writer.write_all(content).expect("write");
    writer.finish().expect("finish").into_volumes()
}

fn opener() -> Opener {
    Opener::new().identity(identity(1))
}

fn read_all(volumes: Vec<Vec<u8>>) -> Result<Vec<u8>, Error> {
    let mut reader = opener().open(volumes)?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out).map_err(Error::from_io)?;
    Ok(out)
}

fn total(volumes: &[Vec<u8>]) -> u64 {
    volumes.iter().map(|v| v.len() as u64).sum()
}

/// The payload length the volumes carry (every chunk's plaintext).
fn payload_len(volumes: &[Vec<u8>]) -> u64 {
    volumes
        .iter()
        .map(|v| {
            let chunks = (v.len() as u64 - H).div_ceil(C as u64);
            v.len() as u64 - H - 16 * chunks
        })
        .sum()
}

#[test]
fn the_manifest_is_read_back_after_opening() {
    let labelled = sealer()
        .label("DST project 1234, extract 3 of 4")
        .note("Rows 1–40,000.\nCall before opening.");
    let content = data(10_000, 1);
    let reader = opener().open(seal(&labelled, &content)).expect("open");
    let manifest = reader.manifest();
    assert_eq!(manifest.label(), Some("DST project 1234, extract 3 of 4"));
    assert_eq!(
        manifest.note(),
        Some("Rows 1–40,000.\nCall before opening.")
    );
    assert_eq!(manifest.created(), Some(CREATED as i64));
    assert_eq!(
        manifest.created_time(),
        Some(UNIX_EPOCH + Duration::from_secs(CREATED))
    );
    assert_eq!(manifest.padding(), Some(Padding::Padme));
    assert_eq!(reader.len(), content.len() as u64);

    // Defaults: the clock, Padmé, no label, no note.
    let before = std::time::SystemTime::now();
    let plain = Sealer::new().recipient(identity(1).to_public());
    let reader = opener().open(seal(&plain, b"x")).expect("open");
    let created = reader
        .manifest()
        .created_time()
        .expect("created by default");
    assert!(created + Duration::from_secs(1) >= before);
    assert_eq!(reader.manifest().label(), None);
    // None of it: an empty manifest.
    let bare = sealer().created(None).pad(Padding::None);
    let reader = opener().open(seal(&bare, b"x")).expect("open");
    assert!(reader.manifest().is_empty());
}

#[test]
fn nothing_of_the_manifest_is_visible_without_a_key() {
    let label = "visible-label-check";
    let volumes = seal(&sealer().label(label).note("a note"), &data(5000, 2));
    for volume in &volumes {
        assert!(
            !volume.windows(label.len()).any(|w| w == label.as_bytes()),
            "the label is in clear"
        );
    }
    let info = kuvert::inspect(&volumes[0][..]).expect("inspect");
    assert!(!format!("{info:?}").contains(label));
}

#[test]
fn labels_and_notes_that_break_the_rules_are_refused_before_sealing() {
    let refused = |sealer: Sealer| match sealer.seal(MemorySink::new()) {
        Err(Error::InvalidOption { reason }) => reason,
        other => panic!("expected InvalidOption, got {other:?}"),
    };
    for (sealer, field) in [
        (sealer().label(""), "label"),
        (sealer().label("a\nb"), "label"),
        (sealer().label("x".repeat(257)), "label"),
        (sealer().label("bell\u{7}"), "label"),
        (sealer().note("n".repeat(3073)), "note"),
        (sealer().note("c1 \u{9b} control"), "note"),
        (sealer().note(""), "note"),
    ] {
        assert!(
            matches!(refused(sealer), OptionError::ManifestText { field: f, .. } if f == field),
            "{field}"
        );
    }
    assert!(matches!(
        refused(sealer().pad(Padding::Volume)),
        OptionError::PadVolumeUnsplit
    ));
    assert!(matches!(
        sealer().pad(Padding::Volume).plan(1),
        Err(Error::InvalidOption {
            reason: OptionError::PadVolumeUnsplit
        })
    ));
    // The longest allowed fields fit.
    let longest = sealer().label("l".repeat(256)).note("n\n".repeat(1536));
    let reader = opener().open(seal(&longest, b"x")).expect("open");
    assert_eq!(reader.manifest().note().map(str::len), Some(3072));
}

#[test]
fn padme_pads_the_payload_to_its_length_class() {
    for len in [0usize, 1, 1000, 4080, 65_536, 200_000] {
        let content = data(len, 3);
        let volumes = seal(&sealer(), &content);
        // Prefix 4, created record 12, padding record 5, padding length 8.
        let unpadded = len as u64 + 4 + 12 + 5 + 8;
        assert_eq!(payload_len(&volumes), padme(unpadded).expect("fits"));
        assert_eq!(read_all(volumes).expect("open"), content);
    }
}

#[test]
fn volume_padding_fills_the_last_volume() {
    let size = H + 3 * C as u64;
    for len in [0usize, 1, 3 * P as usize, 7 * P as usize + 5] {
        let content = data(len, 4);
        let sealer = sealer().volume_size(size).pad(Padding::Volume);
        let volumes = seal(&sealer, &content);
        for volume in &volumes {
            assert_eq!(volume.len() as u64, size, "{len} bytes");
        }
        let plan = sealer.plan(len as u64).expect("plan");
        assert_eq!(plan.volume_count(), volumes.len() as u64);
        assert_eq!(plan.total_len(), total(&volumes));
        let reader = opener().open(volumes.clone()).expect("open");
        assert_eq!(reader.manifest().padding(), Some(Padding::Volume));
        assert_eq!(read_all(volumes).expect("open"), content);
    }
}

#[test]
fn plans_count_the_manifest_and_the_padding_exactly() {
    let rules = [Padding::Padme, Padding::Volume, Padding::None];
    for rule in rules {
        for volume in [None, Some(H + 2 * C as u64)] {
            if rule == Padding::Volume && volume.is_none() {
                continue;
            }
            for len in [0u64, 1, 4000, 4059, 4060, 8119, 20_000] {
                let mut sealer = sealer().pad(rule).label("plan");
                if let Some(size) = volume {
                    sealer = sealer.volume_size(size);
                }
                let plan = sealer.plan(len).expect("plan");
                let volumes = seal(&sealer, &data(len as usize, 5));
                assert_eq!(plan.volume_count(), volumes.len() as u64, "{rule:?} {len}");
                assert_eq!(plan.total_len(), total(&volumes), "{rule:?} {len}");
                for (index, v) in volumes.iter().enumerate() {
                    assert_eq!(plan.volume_len(index as u32 + 1), Some(v.len() as u64));
                }
                // The plan's memory sink holds exactly that.
                let mut writer = sealer.seal(MemorySink::for_plan(&plan)).expect("seal");
                writer.write_all(&data(len as usize, 5)).expect("write");
                let planned = writer.finish().expect("finish").into_volumes();
                assert_eq!(total(&planned), plan.total_len());
            }
        }
    }
}

#[test]
fn seeking_from_the_end_and_archives_use_the_content_length() {
    let content = data(50_000, 6);
    let mut reader = opener().open(seal(&sealer(), &content)).expect("open");
    assert_eq!(reader.len(), 50_000);
    reader.seek(SeekFrom::End(-10)).expect("seek");
    let mut tail = Vec::new();
    reader.read_to_end(&mut tail).expect("read");
    assert_eq!(tail, content[50_000 - 10..]);
    // Past the end: nothing, not the padding.
    reader.seek(SeekFrom::End(5)).expect("seek");
    assert_eq!(reader.read(&mut [0u8; 16]).expect("read"), 0);
    let mut copied = Vec::new();
    reader.seek(SeekFrom::Start(49_000)).expect("seek");
    assert_eq!(reader.copy_to(&mut copied, u64::MAX).expect("copy"), 1000);
    assert_eq!(copied, content[49_000..]);

    // An archive with a manifest and padding: its trailer is the last 32
    // bytes of the content, not of the payload.
    let mut archive = sealer()
        .label("archive")
        .volume_size(H + 2 * C as u64)
        .pad(Padding::Volume)
        .seal_archive(MemorySink::new())
        .expect("seal");
    let file = data(9000, 7);
    archive
        .append_file("a.bin", &file[..], file.len() as u64, 0o640, 1_700_000_000)
        .expect("file");
    let volumes = archive.finish().expect("finish").into_volumes();
    let reader = opener().open(volumes).expect("open");
    assert_eq!(reader.kind(), PayloadKind::Archive);
    let dest = tempfile::tempdir().expect("tempdir");
    match Payload::detect(reader, &ArchiveLimits::new()).expect("detect") {
        Payload::Archive(mut archive) => {
            let report = archive
                .extract(dest.path(), &ExtractOptions::new())
                .expect("extract");
            assert_eq!(report.extracted.len(), 1);
        }
        Payload::Stream(_) => panic!("an archive read as a stream"),
    }
    assert_eq!(
        std::fs::read(dest.path().join("a.bin")).expect("read"),
        file
    );
}

/// A raw payload: prefix (stream, `flags`, R = 0), `content`, then `zeros`
/// with one byte set at `dirty`, then the padding length `p`.
fn raw_padded(content: &[u8], zeros: usize, dirty: Option<usize>, p: u64) -> Vec<Vec<u8>> {
    let mut payload = vec![0, 1, 0, 0];
    payload.extend_from_slice(content);
    let start = payload.len();
    payload.resize(start + zeros, 0);
    if let Some(at) = dirty {
        payload[start + at] = 0x5A;
    }
    payload.extend_from_slice(&p.to_be_bytes());
    let sealer = sealer();
    let mut writer = kuvert::testing::seal_raw_payload(&sealer, MemorySink::new()).expect("seal");
    writer.write_all(&payload).expect("write");
    writer.finish().expect("finish").into_volumes()
}

fn malformed_at(result: Result<Vec<u8>, Error>) -> u64 {
    match result {
        Err(Error::MalformedPayload { offset, .. }) => offset,
        other => panic!("expected MalformedPayload, got {other:?}"),
    }
}

#[test]
fn padding_bytes_must_be_zero_wherever_they_are_decrypted() {
    let content = data(100, 8);
    // Intact: opens to the content.
    assert_eq!(
        read_all(raw_padded(&content, 5000, None, 5000)).expect("open"),
        content
    );
    // A nonzero byte in the final chunk (payload offset 4 + 100 + 4900):
    // refused when the set is opened.
    assert_eq!(
        malformed_at(read_all(raw_padded(&content, 5000, Some(4900), 5000))),
        5004
    );
    // In chunk 0, right after the content.
    assert_eq!(
        malformed_at(read_all(raw_padded(&content, 5000, Some(0), 5000))),
        104
    );
    // In a padding chunk that is never decrypted: the content still opens
    // (a decoder checks what it decrypts; the chunk is authenticated).
    let many = raw_padded(&content, 4 * P as usize, Some(2 * P as usize), 4 * P);
    assert_eq!(read_all(many).expect("open"), content);
    // In the chunk holding the end of the content, found by the read that
    // decrypts it.
    let long = data(3 * P as usize, 9);
    let volumes = raw_padded(&long, 3 * P as usize, Some(3), 3 * P);
    let mut reader = opener().open(volumes).expect("open");
    let mut out = Vec::new();
    let err = reader.read_to_end(&mut out).map_err(Error::from_io);
    assert_eq!(malformed_at(err.map(|_| Vec::new())), 4 + 3 * P + 3);
    assert!(out.len() < long.len());
}

#[test]
fn a_padding_length_that_does_not_fit_is_refused() {
    let content = data(100, 10);
    // p one more than the bytes before it allow: payload offset len − 8.
    let volumes = raw_padded(&content, 0, None, 101);
    assert_eq!(malformed_at(read_all(volumes)), 104);
    // A padded payload too short for its padding length: offset len.
    let sealer = sealer();
    let mut writer = kuvert::testing::seal_raw_payload(&sealer, MemorySink::new()).expect("seal");
    writer.write_all(&[0, 1, 0, 0, 0, 0, 0]).expect("write");
    let short = writer.finish().expect("finish").into_volumes();
    assert_eq!(malformed_at(read_all(short)), 7);
}

#[test]
fn a_padding_length_split_across_the_last_two_chunks_is_read() {
    // Final chunk of 1 to 7 plaintext bytes: the rest of p is in the chunk
    // before.
    for in_final in 1..8u64 {
        let zeros = (P - 4 - 8 + in_final) as usize;
        let volumes = raw_padded(b"", zeros, None, zeros as u64);
        assert_eq!(payload_len(&volumes), P + in_final, "{in_final}");
        let reader = opener().open(volumes.clone()).expect("open");
        assert_eq!(reader.len(), 0);
        let dirty = raw_padded(b"", zeros, Some(zeros - 1), zeros as u64);
        assert_eq!(malformed_at(read_all(dirty)), 4 + zeros as u64 - 1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_rule_round_trips_any_small_length(
        len in 0usize..20_000,
        rule in prop_oneof![Just(Padding::Padme), Just(Padding::Volume), Just(Padding::None)],
        per_volume in 1u64..4,
        label in proptest::option::of("[a-zA-Z0-9 ,.-]{1,40}"),
    ) {
        let content = data(len, len as u64);
        let mut sealer = sealer().pad(rule).volume_size(H + per_volume * C as u64);
        if let Some(label) = &label {
            sealer = sealer.label(label.clone());
        }
        let plan = sealer.plan(len as u64).expect("plan");
        let volumes = seal(&sealer, &content);
        prop_assert_eq!(plan.total_len(), total(&volumes));
        let reader = opener().open(volumes.clone()).expect("open");
        prop_assert_eq!(reader.manifest().label(), label.as_deref());
        prop_assert_eq!(reader.len(), len as u64);
        prop_assert_eq!(read_all(volumes).expect("open"), content);
    }
}

#[test]
fn the_set_verifier_counts_content_offsets_after_the_manifest() {
    // A label makes R = 12 + 4 + 5 + 5 = 26: the content starts there.
    let content = data(30_000, 11);
    let sealer = sealer().label("label").volume_size(H + 3 * C as u64);
    let mut volumes = seal(&sealer, &content);
    // Damage chunk 4 (volume 2, local index 1).
    volumes[1][H as usize + C + 100] ^= 1;
    let report = opener().verify_set(&volumes).expect("verify");
    let runs: Vec<_> = report.damage.iter().collect();
    assert_eq!(runs.len(), 1);
    let start = 4 * P - (4 + 26);
    assert_eq!(runs[0].plaintext, start..start + P);
    let mut reader = opener().open(volumes).expect("open");
    let mut out = Vec::new();
    let salvaged = reader.salvage_to(&mut out).expect("salvage");
    assert_eq!(salvaged, report.damage);
    assert!(
        out[start as usize..(start + P) as usize]
            .iter()
            .all(|&b| b == 0)
    );
    assert_eq!(out[..start as usize], content[..start as usize]);
}
