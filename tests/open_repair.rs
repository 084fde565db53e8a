//! Opening through damage (SPEC.md §7.8): the opener repairs a volume with
//! parity once damage shows (unreadable sectors, a chunk whose tag fails)
//! and reads on from the repaired copy; past the parity's margin the exact
//! error, and salvage keeps everything the lost sectors do not touch.

mod common;

use std::io::{Read, Write};
use std::ops::Range;

use kuvert::{
    DamageKind, Error, MemorySink, Opener, Parity, Sealer, SectorState, Volume, VolumeSource,
    X25519Identity,
};

use common::eio::EIO;
use common::faulty::{Fault, Faulty, SECTOR};
use common::{data, identity, same_identity};

/// Chunk size of the small volumes: two sectors.
const C: u64 = 4096;
/// Plaintext of a full chunk.
const P: u64 = C - 16;
/// Chunks of content in the small volume.
const CHUNKS: u64 = 1200;

/// A one-volume set with 20 % parity, its content, and its parity
/// geometry (k, m, L, n_d).
fn sealed(seed: u8) -> (X25519Identity, Vec<u8>, Vec<u8>, Geometry) {
    let key = identity(seed);
    let content = data((CHUNKS * P) as usize, u64::from(seed));
    let sealer = common::sealer(&key, C as usize, None)
        .digests(true)
        .parity(Parity::Percent(20));
    let mut writer = sealer.seal(MemorySink::new()).expect("seal");
    writer.write_all(&content).expect("write");
    let mut volumes = writer.finish().expect("finish").into_volumes();
    assert_eq!(volumes.len(), 1);
    let volume = volumes.remove(0);
    let geometry = Geometry::of(&volume);
    (key, content, volume, geometry)
}

/// The parity geometry from the end sector (SPEC.md §16.7).
#[derive(Debug, Clone, Copy)]
struct Geometry {
    m: u64,
    layer: u64,
}

impl Geometry {
    fn of(volume: &[u8]) -> Geometry {
        let body = &volume[volume.len() - SECTOR as usize + 104..][..56];
        let be = |a: usize, n: usize| {
            body[a..a + n]
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
        };
        Geometry {
            m: be(4, 2),
            layer: be(8, 4),
        }
    }

    /// The longest burst always repaired: (m − 1)·L sectors.
    fn burst(self) -> u64 {
        (self.m - 1) * self.layer
    }
}

/// First sector of chunk `chunk` (one volume, H = 2,048).
fn sector_of(chunk: u64) -> u64 {
    1 + chunk * C / SECTOR
}

/// Content offsets chunk `chunk` holds (after the 4-byte prefix).
fn content_of(chunk: u64) -> Range<u64> {
    (chunk * P).saturating_sub(4)..(chunk + 1) * P - 4
}

fn opener(key: &X25519Identity) -> Opener {
    Opener::new().identity(same_identity(key)).threads(2)
}

#[test]
fn an_unreadable_burst_within_the_margin_opens_byte_identical() {
    let (key, content, volume, geometry) = sealed(71);
    let burst = geometry.burst();
    let start = sector_of(300);
    let faulty = Faulty::new(volume.clone(), "disc.kuv").fault(start..start + burst, Fault::Eio);
    let mut reader = opener(&key).open(vec![faulty]).expect("open");
    // Nothing was damaged on the way to the first read.
    assert!(reader.repairs().is_empty());
    let mut out = Vec::new();
    reader.copy_to(&mut out, u64::MAX).expect("read through");
    assert_eq!(out, content);
    let repairs = reader.repairs();
    assert_eq!(repairs.len(), 1);
    assert_eq!(repairs[0].volume, 1);
    let report = &repairs[0].report;
    assert_eq!(report.sectors_lost, burst);
    assert_eq!(report.sectors_repaired, burst);
    assert_eq!(report.sectors_unrecoverable, 0);
    assert_eq!(report.volume_len, volume.len() as u64);
    assert!(report.margin.used <= report.margin.of);
    assert_eq!(u64::from(report.margin.of), geometry.m);
    assert!(reader.repair_failures().is_empty());
    // The volume given comes back as it was given.
    let given = reader.into_volumes().remove(0);
    assert_eq!(given.faults.len(), 1);
}

#[test]
fn a_chunk_of_garbage_is_repaired_and_then_authenticates() {
    let (key, content, volume, _) = sealed(72);
    let faulty = Faulty::new(volume, "disc.kuv")
        .fault(sector_of(500)..sector_of(500) + 2, Fault::Garbage)
        .fault(sector_of(900) + 1..sector_of(900) + 2, Fault::Zeroed);
    let mut reader = opener(&key).open(vec![faulty]).expect("open");
    // Small reads: the `Read` path repairs as `copy_to` does.
    let mut out = Vec::new();
    reader.read_to_end(&mut out).expect("read");
    assert_eq!(out, content);
    let repairs = reader.repairs();
    assert_eq!(repairs.len(), 1);
    assert!(repairs[0].report.sectors_lost >= 3);
}

#[test]
fn damage_to_the_header_and_the_final_chunk_is_repaired_while_opening() {
    let (key, content, volume, _) = sealed(73);
    let end = volume.len() as u64 / SECTOR;
    let faulty = Faulty::new(volume, "disc.kuv")
        .fault(0..1, Fault::Eio)
        .fault(sector_of(CHUNKS)..sector_of(CHUNKS) + 1, Fault::Garbage);
    assert!(sector_of(CHUNKS) < end);
    let mut reader = opener(&key).open(vec![faulty]).expect("open");
    assert_eq!(reader.repairs().len(), 1);
    let mut out = Vec::new();
    reader.copy_to(&mut out, u64::MAX).expect("read");
    assert_eq!(out, content);
}

#[test]
fn past_the_margin_the_error_is_exact_and_salvage_keeps_the_rest() {
    let (key, content, volume, geometry) = sealed(74);
    // m·L + L sectors: every stripe loses more than m.
    let burst = (geometry.m + 1) * geometry.layer;
    let first = 300;
    let start = sector_of(first);
    let lost = start..start + burst;
    let faulty = Faulty::new(volume.clone(), "disc.kuv").fault(lost.clone(), Fault::Eio);
    let opener = opener(&key);

    // Reading stops at the first chunk the lost sectors touch, naming it.
    let mut reader = opener.open(vec![faulty.clone()]).expect("open");
    let err = reader
        .copy_to(&mut Vec::new(), u64::MAX)
        .expect_err("past the margin");
    assert!(
        matches!(&err, Error::Read { at, source }
            if at.chunk == Some(first) && source.raw_os_error() == Some(EIO)),
        "{err:?}"
    );
    let failures = reader.repair_failures();
    assert_eq!(failures.len(), 1);
    assert!(
        matches!(failures[0], (1, Error::Unrecoverable { m, lost, .. })
            if u64::from(*m) == geometry.m && *lost as u64 > geometry.m),
        "{failures:?}"
    );
    // The repair went as far as the parity reaches: here nowhere, every
    // stripe lost more than m.
    let repairs = reader.repairs();
    assert_eq!(repairs.len(), 1);
    assert_eq!(repairs[0].report.sectors_unrecoverable, burst);

    // Salvage: every chunk the lost sectors do not touch, byte-identical;
    // the others zeros, named with the bytes that could not be read.
    let mut reader = opener.open(vec![faulty]).expect("open");
    let mut out = Vec::new();
    let map = reader.salvage_to(&mut out).expect("salvage");
    assert_eq!(out.len(), content.len());
    let last_touched = (lost.end * SECTOR - 1 - 2048) / C;
    let runs: Vec<_> = map.iter().collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(matches!(
        runs[0].kind,
        DamageKind::Unreadable {
            os_error: Some(EIO),
            ..
        }
    ));
    assert_eq!(runs[0].chunks, first..last_touched + 1);
    assert_eq!(
        runs[0].unreadable,
        Some(lost.start * SECTOR..lost.end * SECTOR)
    );
    for chunk in 0..CHUNKS {
        let range = content_of(chunk);
        let range = range.start as usize..(range.end as usize).min(out.len());
        if (first..=last_touched).contains(&chunk) {
            assert!(out[range].iter().all(|&b| b == 0), "chunk {chunk}");
        } else {
            assert_eq!(out[range.clone()], content[range], "chunk {chunk}");
        }
    }

    // Damage past the margin that opening must read: the repair's error.
    let end_chunk = sector_of(CHUNKS - 1);
    let faulty =
        Faulty::new(volume, "disc.kuv").fault(end_chunk - burst + 4..end_chunk + 4, Fault::Eio);
    assert!(matches!(
        opener.open(vec![faulty]),
        Err(Error::Unrecoverable { m, .. }) if u64::from(m) == geometry.m
    ));
}

#[test]
fn past_the_margin_only_the_stripes_that_lost_too_much_stay_lost() {
    let (key, content, volume, geometry) = sealed(75);
    let (m, layer) = (geometry.m, geometry.layer);
    assert!(layer > 2, "layers of more than 2 sectors");
    // m·L + 1 sectors from the start of layer 1: stripe 0 loses m + 1
    // sectors, every other stripe m, which it can spare.
    let lost = layer..layer + m * layer + 1;
    let faulty = Faulty::new(volume, "disc.kuv").fault(lost.clone(), Fault::Eio);
    let mut reader = opener(&key).open(vec![faulty]).expect("open");
    let mut out = Vec::new();
    let map = reader.salvage_to(&mut out).expect("salvage");
    let repairs = reader.repairs();
    assert_eq!(repairs.len(), 1);
    let report = &repairs[0].report;
    assert_eq!(report.sectors_unrecoverable, m + 1);
    assert!(matches!(
        reader.repair_failures()[..],
        [(1, Error::Unrecoverable { .. })]
    ));
    // Exactly the chunks (two sectors each, from sector 1) that hold a
    // sector of stripe 0 stay lost; all the rest of the burst is repaired.
    let unrecoverable: Vec<u64> = (lost.clone())
        .filter(|&sector| report.map.state(sector) == SectorState::Unrecoverable)
        .collect();
    assert_eq!(unrecoverable.len() as u64, m + 1);
    let mut expected: Vec<u64> = unrecoverable.iter().map(|s| (s - 1) / 2).collect();
    expected.dedup();
    let damaged: Vec<u64> = map.iter().flat_map(|run| run.chunks.clone()).collect();
    assert_eq!(damaged, expected);
    assert!(damaged.len() as u64 * 2 < (lost.end - lost.start) / 2);
    assert_eq!(out.len(), content.len());
    for chunk in (0..CHUNKS).filter(|chunk| !damaged.contains(chunk)) {
        let range = content_of(chunk);
        let range = range.start as usize..(range.end as usize).min(out.len());
        assert_eq!(out[range.clone()], content[range], "chunk {chunk}");
    }
}

#[test]
fn without_repair_damage_is_the_old_error() {
    let (key, _, volume, geometry) = sealed(75);
    let start = sector_of(300);
    let faulty =
        Faulty::new(volume.clone(), "disc.kuv").fault(start..start + geometry.burst(), Fault::Eio);
    let mut reader = opener(&key).repair(false).open(vec![faulty]).expect("open");
    let err = reader.copy_to(&mut Vec::new(), u64::MAX).expect_err("eio");
    assert!(
        matches!(&err, Error::Read { at, .. } if at.chunk == Some(300) && at.volume == Volume::Number(1)),
        "{err:?}"
    );
    assert!(reader.repairs().is_empty() && reader.repair_failures().is_empty());

    let faulty =
        Faulty::new(volume, "disc.kuv").fault(sector_of(40)..sector_of(40) + 1, Fault::Garbage);
    let mut reader = opener(&key).repair(false).open(vec![faulty]).expect("open");
    assert!(matches!(
        reader.copy_to(&mut Vec::new(), u64::MAX),
        Err(Error::Unauthenticated { chunk: 40, .. })
    ));
}

#[test]
fn a_volume_without_parity_fails_as_before() {
    let key = identity(76);
    let content = data((40 * P) as usize, 76);
    let volumes = common::seal_with(&common::sealer(&key, C as usize, None), &content, &[4096]);
    let faulty = Faulty::new(volumes[0].clone(), "disc.kuv")
        .fault(sector_of(7)..sector_of(7) + 1, Fault::Eio);
    let mut reader = opener(&key).open(vec![faulty]).expect("open");
    assert!(matches!(
        reader.copy_to(&mut Vec::new(), u64::MAX),
        Err(Error::Read { at, .. }) if at.chunk == Some(7)
    ));
    assert!(matches!(
        reader.repair_failures()[..],
        [(1, Error::NoParity { .. })]
    ));
}

#[test]
fn the_scratch_copy_leaves_nothing_in_the_scratch_dir() {
    let (key, content, volume, geometry) = sealed(77);
    let dir = tempfile::tempdir().expect("tempdir");
    let start = sector_of(10);
    let faulty = Faulty::new(volume, "disc.kuv").fault(start..start + geometry.burst(), Fault::Eio);
    let entries = || std::fs::read_dir(dir.path()).expect("read dir").count();
    let mut reader = opener(&key)
        .scratch_dir(dir.path())
        .open(vec![faulty])
        .expect("open");
    let mut out = Vec::new();
    reader.copy_to(&mut out, u64::MAX).expect("read");
    assert_eq!(out, content);
    assert_eq!(reader.repairs().len(), 1);
    // While the copy is in use, and after.
    assert_eq!(entries(), 0);
    drop(reader);
    assert_eq!(entries(), 0);

    // A scratch dir that cannot be written: the repair fails, the damage
    // is the error, and it says why.
    let (key, _, volume, geometry) = sealed(78);
    let faulty = Faulty::new(volume, "disc.kuv").fault(start..start + geometry.burst(), Fault::Eio);
    let mut reader = opener(&key)
        .scratch_dir(dir.path().join("absent"))
        .open(vec![faulty])
        .expect("open");
    assert!(matches!(
        reader.copy_to(&mut Vec::new(), u64::MAX),
        Err(Error::Read { .. })
    ));
    assert!(matches!(reader.repair_failures()[..], [(1, Error::Io(_))]));
}

/// A volume whose sectors marked in `bad` give EIO: a bitmap, so that a
/// cd-size volume with thousands of bad sectors reads at memory speed.
struct BadSectors {
    bytes: Vec<u8>,
    bad: Vec<bool>,
}

impl VolumeSource for BadSectors {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.bytes.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let end = offset + buf.len() as u64;
        let sectors = (offset / SECTOR) as usize..end.div_ceil(SECTOR) as usize;
        if self.bad.get(sectors).is_some_and(|s| s.contains(&true)) {
            return Err(std::io::Error::from_raw_os_error(EIO));
        }
        self.bytes.as_slice().read_exact_at(buf, offset)
    }
}

/// The "done when" for the library: a `cd` volume with default
/// parity, a 5 % contiguous burst of unreadable sectors and 0.5 % scattered
/// ones, opens byte-identical.
#[test]
#[ignore = "cd-size volume: seals and repairs 700 MB (about a minute)"]
fn a_cd_volume_with_a_five_percent_burst_and_scattered_sectors_opens() {
    let preset = kuvert::media::preset("cd").expect("cd preset");
    let key = identity(79);
    let dir = tempfile::tempdir().expect("tempdir");
    let sealer = Sealer::new()
        .recipient(key.to_public())
        .volume_size(preset.volume_size)
        .parity(Parity::Percent(20))
        .threads(2);
    // As much content as one cd volume holds, parity included.
    let mut len = preset.volume_size / 5 * 4;
    while sealer.plan(len).expect("plan").volume_count() > 1 {
        len -= 1 << 20;
    }
    let content = data(len as usize, 79);
    let started = std::time::Instant::now();
    let mut writer = sealer.seal(MemorySink::new()).expect("seal");
    writer.write_all(&content).expect("write");
    let mut volumes = writer.finish().expect("finish").into_volumes();
    let volume = volumes.remove(0);
    let sealed_in = started.elapsed();
    let sectors = volume.len() as u64 / SECTOR;
    let burst = sectors / 20;
    let start = sectors / 3;
    // 0.5 % scattered: every 200th sector outside the burst.
    let mut bad = vec![false; sectors as usize];
    bad[start as usize..(start + burst) as usize].fill(true);
    let mut scattered = 0;
    for sector in (7..sectors).step_by(200) {
        if !bad[sector as usize] {
            bad[sector as usize] = true;
            scattered += 1;
        }
    }
    let faulty = BadSectors { bytes: volume, bad };
    let started = std::time::Instant::now();
    let report = kuvert::repair_volume(
        &faulty,
        &mut tempfile::tempfile_in(dir.path()).expect("scratch"),
    )
    .expect("repair");
    let repaired_in = started.elapsed();
    assert_eq!(report.sectors_lost, burst + scattered);
    let started = std::time::Instant::now();
    let mut reader = opener(&key)
        .scratch_dir(dir.path())
        .open(vec![faulty])
        .expect("open");
    let mut out = Vec::with_capacity(content.len());
    reader.copy_to(&mut out, u64::MAX).expect("read through");
    let opened_in = started.elapsed();
    assert!(out == content, "byte-identical");
    let repairs = reader.repairs();
    assert_eq!(repairs.len(), 1);
    assert_eq!(repairs[0].report.sectors_lost, burst + scattered);
    eprintln!(
        "cd volume: {} sectors, burst {burst} + {scattered} scattered lost; sealed in {sealed_in:.1?}, \
         repair_volume alone {repaired_in:.1?} ({:.0} MB/s), opened through the damage in \
         {opened_in:.1?} ({:.0} MB/s), margin {} of {}",
        sectors,
        (sectors * SECTOR) as f64 / repaired_in.as_secs_f64() / 1e6,
        content.len() as f64 / opened_in.as_secs_f64() / 1e6,
        repairs[0].report.margin.used,
        repairs[0].report.margin.of,
    );
}

#[test]
fn the_keyed_scan_reads_through_and_says_whether_parity_repairs_it() {
    let (key, _, volume, geometry) = sealed(80);
    let start = sector_of(300);
    let lost = start..start + geometry.burst();
    let faulty = Faulty::new(volume.clone(), "disc.kuv").fault(lost.clone(), Fault::Eio);
    let report = opener(&key).scan_volume(&faulty).expect("scan");
    let runs: Vec<_> = report.damage.iter().collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(matches!(
        runs[0].kind,
        DamageKind::Unreadable {
            os_error: Some(EIO),
            ..
        }
    ));
    assert_eq!(
        runs[0].unreadable,
        Some(lost.start * SECTOR..lost.end * SECTOR)
    );
    let repair = report.repair.expect("repairable");
    assert_eq!(repair.sectors_lost, geometry.burst());
    // Off: the damage alone.
    let report = opener(&key)
        .repair(false)
        .scan_volume(&faulty)
        .expect("scan");
    assert_eq!(report.damage.len(), 1);
    assert_eq!(report.repair, None);
    // Past the margin: not repairable.
    let past = Faulty::new(volume, "disc.kuv")
        .fault(start..start + (geometry.m + 1) * geometry.layer, Fault::Eio);
    let report = opener(&key).volume_verifier().scan(&past).expect("scan");
    assert_eq!(report.damage.len(), 1);
    assert_eq!(report.repair, None);
}

#[test]
fn archive_salvage_past_the_margin_extracts_the_rest_and_names_the_damaged() {
    use kuvert::archive::{ArchiveLimits, ExtractOptions, Payload};

    let key = identity(81);
    let files: Vec<Vec<u8>> = (0..10u64).map(|i| data(200_000, 100 + i)).collect();
    let sealer = common::sealer(&key, C as usize, None)
        .digests(true)
        .parity(Parity::Percent(20));
    let mut archive = sealer.seal_archive(MemorySink::new()).expect("seal");
    for (i, file) in files.iter().enumerate() {
        let name = format!("f{i}.bin");
        archive
            .append_file(
                &name,
                file.as_slice(),
                file.len() as u64,
                0o644,
                1_700_000_000,
            )
            .expect("append");
    }
    let volume = archive.finish().expect("finish").into_volumes().remove(0);
    let geometry = Geometry::of(&volume);
    // Past the margin, from inside f4's data on.
    let burst = (geometry.m + 1) * geometry.layer;
    let start = sector_of(4 * 200_000 / P + 5);
    let lost = start..start + burst;
    let faulty = Faulty::new(volume, "disc.kuv").fault(lost.clone(), Fault::Eio);
    let reader = opener(&key).open(vec![faulty]).expect("open");
    let Payload::Archive(mut archive) =
        Payload::detect(reader, &ArchiveLimits::new()).expect("detect")
    else {
        panic!("an archive");
    };
    // The entries whose data the lost chunks hold.
    let first_chunk = (lost.start * SECTOR - 2048) / C;
    let last_chunk = (lost.end * SECTOR - 1 - 2048) / C;
    let hit =
        archive.reader().chunk_span(first_chunk).start..archive.reader().chunk_span(last_chunk).end;
    let touched: Vec<String> = archive
        .entries()
        .iter()
        .filter(|e| e.data_offset < hit.end && hit.start < e.data_offset + e.size)
        .map(|e| e.path.clone())
        .collect();
    assert!(touched.len() >= 2 && touched[0] == "f4.bin", "{touched:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("out");
    std::fs::create_dir(&dest).expect("mkdir");
    let report = archive
        .extract(&dest, &ExtractOptions::new().salvage(true))
        .expect("salvage");
    let damaged: Vec<String> = report.damaged.iter().map(|d| d.path.clone()).collect();
    assert_eq!(damaged, touched);
    assert!(report.damaged.iter().all(|d| matches!(
        d.damage.as_ref().map(|d| &d.kind),
        Some(DamageKind::Unreadable { .. })
    )));
    for (i, file) in files.iter().enumerate() {
        let name = format!("f{i}.bin");
        let path = dest.join(&name);
        if touched.contains(&name) {
            assert!(!path.exists(), "{name} left out");
        } else {
            assert_eq!(&std::fs::read(&path).expect("extracted"), file, "{name}");
        }
    }
    assert!(matches!(
        archive.reader().repair_failures()[..],
        [(1, Error::Unrecoverable { .. })]
    ));
}
