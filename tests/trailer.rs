//! The volume trailer and its keyless digest table (SPEC.md §13, §7.7):
//! sealing writes one on every volume by default, opening reads E from it,
//! and the keyless check names every damaged chunk, without a key.

mod common;

use std::io::{Read, Write};

use kuvert::{
    DamageKind, Error, FileSink, MemorySink, Opener, Sealer, TrailerError, Volume, WriteSink,
    X25519Identity, scan_digests, verify_digests,
};

use common::{data, same_identity};

const CHUNK: usize = 4096;
const H: u64 = 2048;

/// No manifest and no padding, so that chunk counts follow from content
/// lengths (the payload is the 4-byte prefix and the content).
fn sealer(identity: &X25519Identity) -> Sealer {
    Sealer::new()
        .recipient(identity.to_public())
        .chunk_size(CHUNK)
        .created(None)
        .pad(kuvert::Padding::None)
        .insecure_deterministic_seed([3; 32])
}

fn seal(sealer: &Sealer, content: &[u8]) -> Vec<Vec<u8>> {
    let mut writer = sealer.seal(MemorySink::new()).expect("options");
    writer.write_all(content).expect("memory");
    writer.finish().expect("memory").into_volumes()
}

fn open(identity: &X25519Identity, volumes: Vec<Vec<u8>>) -> Result<Vec<u8>, Error> {
    let mut reader = Opener::new()
        .identity(same_identity(identity))
        .open(volumes)?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out).map_err(Error::from)?;
    Ok(out)
}

/// E of a trailered volume: the end record's field at 48.
fn chunk_end(volume: &[u8]) -> u64 {
    let end = volume.len() - 2048;
    u64::from_be_bytes(volume[end + 48..end + 56].try_into().expect("8 bytes"))
}

/// Recomputes D (BLAKE3 of the records region) into the end record, as
/// anyone without a key can: what makes an unsigned trailer rewritable.
fn rewrite_records_digest(volume: &mut [u8]) {
    let end = volume.len() - 2048;
    let records_at = chunk_end(volume).div_ceil(2048) * 2048;
    let region_len = u64::from_be_bytes(volume[end + 56..end + 64].try_into().expect("8"));
    let region = &volume[records_at as usize..(records_at + region_len) as usize];
    let digest = *blake3::hash(region).as_bytes();
    volume[end + 72..end + 104].copy_from_slice(&digest);
}

#[test]
fn every_volume_ends_with_a_trailer_and_opens() {
    let identity = X25519Identity::from_bytes([9; 32]);
    let content = data(30_000, 1);
    let sealer = sealer(&identity).volume_size(H + 3 * CHUNK as u64 + 4 * 2048);
    let volumes = seal(&sealer, &content);
    assert_eq!(volumes.len(), 3);
    let plan = sealer.plan(content.len() as u64).expect("plan");
    for (v, volume) in volumes.iter().enumerate() {
        assert_eq!(Some(volume.len() as u64), plan.volume_len(v as u32 + 1));
        assert_eq!(volume.len() % 2048, 0);
        let report = verify_digests(volume.as_slice(), 2).expect("intact");
        assert_eq!(report.volume, v as u32 + 1);
        assert!(report.is_intact());
        let region = &volume[H as usize..report.chunk_end as usize];
        assert_eq!(report.chunk_region_blake3, *blake3::hash(region).as_bytes());
    }
    assert_eq!(open(&identity, volumes).expect("opens"), content);
}

#[test]
fn plan_and_sinks_agree_byte_for_byte() {
    let identity = X25519Identity::from_bytes([9; 32]);
    for len in [0, 1, 4091, 4092, 4093, 20_000, 200_000] {
        let content = data(len, 2);
        let sealer = sealer(&identity);
        let plan = sealer.plan(len as u64).expect("plan");
        let mut writer = sealer.seal(MemorySink::for_plan(&plan)).expect("options");
        writer.write_all(&content).expect("memory");
        let memory = writer.finish().expect("memory").into_volumes();
        assert_eq!(Some(memory[0].len() as u64), plan.volume_len(1), "{len}");
        let mut writer = sealer.seal(WriteSink::new(Vec::new())).expect("options");
        writer.write_all(&content).expect("vec");
        let piped = writer.finish().expect("vec").into_inner();
        assert_eq!(piped, memory[0], "{len}: a pipe gets the same bytes");
        assert_eq!(open(&identity, memory).expect("opens"), content);
    }
}

#[test]
fn large_writes_sealed_in_place_and_on_threads_give_the_same_trailer() {
    let identity = X25519Identity::from_bytes([9; 32]);
    let content = data(3 << 20, 3);
    let base = sealer(&identity).volume_size(1 << 20);
    let one = seal(&base.clone().threads(1), &content);
    let two = seal(&base.clone().threads(2), &content);
    // Through a sink that lends no memory: batches only.
    let mut writer = base
        .clone()
        .threads(2)
        .seal(FileSinkLike::default())
        .expect("options");
    writer.write_all(&content).expect("sink");
    let batches = writer.finish().expect("sink").volumes;
    assert_eq!(one, two);
    assert_eq!(one, batches);
    for volume in &one {
        verify_digests(volume.as_slice(), 2).expect("intact");
    }
    assert_eq!(open(&identity, one).expect("opens"), content);
}

/// A sink that never lends memory, so every chunk goes through a batch.
#[derive(Default)]
struct FileSinkLike {
    volumes: Vec<Vec<u8>>,
}

impl kuvert::VolumeSink for FileSinkLike {
    fn start_volume(&mut self, _: u32) -> std::io::Result<()> {
        self.volumes.push(Vec::new());
        Ok(())
    }
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.volumes
            .last_mut()
            .ok_or_else(|| std::io::Error::other("no volume"))?
            .extend_from_slice(bytes);
        Ok(())
    }
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_damaged_chunk_is_named_without_a_key() {
    let identity = X25519Identity::from_bytes([9; 32]);
    let mut volumes = seal(&sealer(&identity), &data(20_000, 4));
    volumes[0][H as usize + CHUNK + 100] ^= 0x40;
    volumes[0][H as usize + 3 * CHUNK + 7] ^= 0x01;
    let report = scan_digests(volumes[0].as_slice(), 2).expect("trailer intact");
    let damaged: Vec<_> = report.damage.iter().map(|d| d.chunks.clone()).collect();
    assert_eq!(damaged, vec![1..2, 3..4]);
    assert!(
        report
            .damage
            .iter()
            .all(|d| d.kind == DamageKind::DigestMismatch)
    );
    match verify_digests(volumes[0].as_slice(), 1) {
        Err(Error::DigestMismatch { chunk: Some(1), at }) => {
            assert_eq!(at.offset, Some(H + CHUNK as u64));
            assert_eq!(at.volume, Volume::Number(1));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_damaged_header_is_its_own_entry() {
    let identity = X25519Identity::from_bytes([9; 32]);
    let mut volumes = seal(&sealer(&identity), &data(9_000, 5));
    verify_digests(volumes[0].as_slice(), 1).expect("intact");
    // The MAC is not checked without a key: only the header digest sees it.
    let mac_at = 186 - 1;
    volumes[0][mac_at] ^= 0x80;
    match verify_digests(volumes[0].as_slice(), 1) {
        Err(Error::DigestMismatch { chunk: None, at }) => assert_eq!(at.offset, Some(0)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_forged_table_is_caught_even_with_its_digest_rewritten() {
    let identity = X25519Identity::from_bytes([9; 32]);
    let mut volumes = seal(&sealer(&identity), &data(20_000, 6));
    let records_at = (chunk_end(&volumes[0]).div_ceil(2048) * 2048) as usize;
    // Head 72, record head 8, k 8, h_v 32: entry 2 follows.
    let entry_2 = records_at + 72 + 8 + 8 + 32 + 2 * 32;
    volumes[0][entry_2] ^= 1;
    match verify_digests(volumes[0].as_slice(), 1) {
        Err(Error::MalformedTrailer {
            reason: TrailerError::RecordsDigest,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    rewrite_records_digest(&mut volumes[0]);
    match verify_digests(volumes[0].as_slice(), 1) {
        Err(Error::DigestMismatch { chunk: Some(2), .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_cut_trailer_is_truncation_and_an_added_one_trailing_data() {
    let identity = X25519Identity::from_bytes([9; 32]);
    let content = data(20_000, 7);
    let volumes = seal(&sealer(&identity), &content);
    let len = volumes[0].len();
    for cut in (0..len as u64 - 2048).step_by(2048).skip(1) {
        let mut cut_volumes = volumes.clone();
        cut_volumes[0].truncate(cut as usize);
        assert!(
            matches!(
                open(&identity, cut_volumes.clone()),
                Err(Error::Truncated { at }) if at.offset == Some(cut)
            ),
            "cut at {cut}"
        );
        assert!(matches!(
            verify_digests(cut_volumes[0].as_slice(), 1),
            Err(Error::Truncated { .. })
        ));
    }
    // A trailer appended to a set sealed without trailers is data after
    // the final chunk: the header does not announce one. (Found as such
    // when the final chunk is full and the addition shorter than a chunk,
    // as SPEC.md §7.2 step 6.2 says; otherwise as a cut or damage.)
    let big = 16_384;
    let content = data(2 * (big - 16) - 4, 7);
    let trailered = seal(&sealer(&identity).chunk_size(big), &content);
    let bare = seal(&sealer(&identity).chunk_size(big).digests(false), &content);
    let mut appended = bare.clone();
    appended[0].extend_from_slice(&trailered[0][chunk_end(&trailered[0]) as usize..]);
    assert!(matches!(
        open(&identity, appended),
        Err(Error::TrailingData { .. })
    ));
    assert!(matches!(
        verify_digests(bare[0].as_slice(), 1),
        Err(Error::NoDigests { .. })
    ));
    assert_eq!(open(&identity, bare).expect("opens"), content);
}

#[test]
fn every_flipped_trailer_bit_is_refused_never_a_panic() {
    let identity = X25519Identity::from_bytes([9; 32]);
    let content = data(9_000, 8);
    let volumes = seal(&sealer(&identity), &content);
    let start = chunk_end(&volumes[0]) as usize;
    for at in start..volumes[0].len() {
        for bit in [0x01u8, 0x80] {
            let mut flipped = volumes.clone();
            flipped[0][at] ^= bit;
            let keyless = verify_digests(flipped[0].as_slice(), 1);
            assert!(
                matches!(
                    keyless,
                    Err(Error::MalformedTrailer { .. } | Error::Truncated { .. })
                ),
                "byte {at} bit {bit:#x}: {keyless:?}"
            );
            let opened = open(&identity, flipped);
            assert!(
                matches!(
                    opened,
                    Err(Error::MalformedTrailer { .. } | Error::Truncated { .. })
                ),
                "byte {at} bit {bit:#x}: {opened:?}"
            );
        }
    }
}

#[test]
fn every_flipped_chunk_byte_is_named_by_the_keyless_check() {
    let identity = X25519Identity::from_bytes([9; 32]);
    let volumes = seal(&sealer(&identity), &data(9_000, 9));
    let end = chunk_end(&volumes[0]) as usize;
    for at in (H as usize..end).step_by(7) {
        let mut flipped = volumes.clone();
        flipped[0][at] ^= 0x10;
        let chunk = (at - H as usize) / CHUNK;
        match verify_digests(flipped[0].as_slice(), 2) {
            Err(Error::DigestMismatch { chunk: Some(c), .. }) => assert_eq!(c as usize, chunk),
            other => panic!("byte {at}: {other:?}"),
        }
    }
}

#[test]
fn signature_records_are_refused_in_an_unsigned_set() {
    let identity = X25519Identity::from_bytes([9; 32]);
    let mut volumes = seal(&sealer(&identity), &data(9_000, 10));
    let end_at = volumes[0].len() - 2048;
    let records_at = (chunk_end(&volumes[0]).div_ceil(2048) * 2048) as usize;
    let region_len =
        u64::from_be_bytes(volumes[0][end_at + 56..end_at + 64].try_into().expect("8")) as usize;
    // Append a 0x8002 record of 4 bytes (room is left in the sector).
    let record_at = records_at + region_len;
    let record = [0x80, 0x02, 0, 0, 0, 0, 0, 4, b'a', b'b', b'c', b'd'];
    volumes[0][record_at..record_at + record.len()].copy_from_slice(&record);
    let new_len = (region_len + record.len()) as u64;
    for at in [records_at + 56, end_at + 56] {
        volumes[0][at..at + 8].copy_from_slice(&new_len.to_be_bytes());
    }
    rewrite_records_digest(&mut volumes[0]);
    match verify_digests(volumes[0].as_slice(), 1) {
        Err(Error::MalformedTrailer {
            reason: TrailerError::Unsigned,
            at,
        }) => assert_eq!(at.offset, Some(record_at as u64)),
        other => panic!("{other:?}"),
    }
    // An unknown non-critical record is skipped; an unknown critical one refused.
    for (kind, expected) in [
        (0x0042u16, None),
        (0x8042, Some(TrailerError::UnknownCritical)),
    ] {
        volumes[0][record_at..record_at + 2].copy_from_slice(&kind.to_be_bytes());
        rewrite_records_digest(&mut volumes[0]);
        match (verify_digests(volumes[0].as_slice(), 1), expected) {
            (Ok(_), None) => {}
            (Err(Error::MalformedTrailer { reason, .. }), Some(want)) => assert_eq!(reason, want),
            (other, _) => panic!("{kind:#x}: {other:?}"),
        }
    }
}

#[test]
fn disc_presets_leave_room_for_the_trailer() {
    let identity = X25519Identity::from_bytes([9; 32]);
    for preset in kuvert::media::PRESETS {
        let sealer = Sealer::new()
            .recipient(identity.to_public())
            .volume_size(preset.volume_size);
        let plan = sealer.plan(preset.volume_size * 3).expect("plan");
        let full = plan.volume_len(1).expect("a full first volume");
        assert!(full <= preset.volume_size, "{}", preset.name);
        // Less than one chunk and the reserved signing room is left over.
        assert!(preset.volume_size - full < 65_536 + 8192, "{}", preset.name);
    }
}

/// K per preset, without and with trailers, as SPEC.md §6.5 lists them.
#[test]
fn chunks_per_volume_per_preset_are_the_specs() {
    let identity = X25519Identity::from_bytes([9; 32]);
    let expected = [
        ("cd", 11_183, 11_178),
        ("dvd", 71_359, 71_325),
        ("fat32", 65_519, 65_487),
        ("dvd-dl", 129_711, 129_648),
        ("bd", 367_711, 367_532),
        ("bd-nodm", 379_935, 379_750),
        ("bd-dl", 735_439, 735_080),
        ("bd-dl-nodm", 759_887, 759_516),
    ];
    assert_eq!(kuvert::media::PRESETS.len(), expected.len());
    for (name, without, with) in expected {
        let preset = kuvert::media::preset(name).expect("preset");
        for (digests, k) in [(false, without), (true, with)] {
            let writer = Sealer::new()
                .recipient(identity.to_public())
                .volume_size(preset.volume_size)
                .digests(digests)
                .seal(MemorySink::new())
                .expect("options");
            assert_eq!(writer.chunks_per_volume(), k, "{name}, trailers {digests}");
        }
    }
}

#[test]
fn file_sink_volumes_verify_from_disk() {
    let identity = X25519Identity::from_bytes([9; 32]);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("set.kuv");
    let mut writer = sealer(&identity)
        .volume_size(64 << 10)
        .seal(FileSink::new(&path))
        .expect("options");
    writer.write_all(&data(150_000, 11)).expect("disk");
    let sink = writer.finish().expect("disk");
    assert!(sink.paths().len() > 1);
    for path in sink.paths() {
        let source = kuvert::FileSource::open(path).expect("open");
        verify_digests(&source, 2).expect("intact");
    }
}
