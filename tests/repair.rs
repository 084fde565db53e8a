//! Repair of one volume from its own parity, without a key (SPEC.md
//! §16.10): bursts up to the bound in every region, one sector past it,
//! zeroed and garbage sectors, scattered damage, unreadable sectors, and
//! a signed volume that verifies with its signer after repair.

mod common;

use std::io::{self, Write};

use kuvert::{
    Error, MemorySink, Parity, Sealer, SectorState, SigningKey, TrustedSigners, VolumeSource,
    X25519Identity, repair_volume, repair_volume_best_effort, verify_signed_volume,
};

use common::parity::end_geometry as geometry;

const SECTOR: usize = 2048;

fn seal(signed: bool) -> Vec<u8> {
    seal_chunks(signed, 4096)
}

fn seal_chunks(signed: bool, chunk_size: usize) -> Vec<u8> {
    let identity = X25519Identity::from_bytes([3; 32]);
    let mut sealer = Sealer::new()
        .recipient(identity.to_public())
        .chunk_size(chunk_size)
        .threads(1)
        .parity(Parity::Percent(20));
    if signed {
        sealer = sealer.sign_with(SigningKey::from_seed([4; 32]));
    }
    let data: Vec<u8> = (0..14_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut writer = sealer.seal(MemorySink::new()).expect("seal");
    writer.write_all(&data).expect("write");
    let mut volumes = writer.finish().expect("finish").into_volumes();
    assert_eq!(volumes.len(), 1);
    volumes.remove(0)
}

/// A volume whose sectors in `bad` fail to read (EIO).
struct Scratched<'a> {
    bytes: &'a [u8],
    bad: std::ops::Range<u64>,
}

impl VolumeSource for Scratched<'_> {
    fn size(&self) -> io::Result<u64> {
        Ok(self.bytes.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let (first, last) = (
            offset / SECTOR as u64,
            (offset + buf.len() as u64).div_ceil(SECTOR as u64),
        );
        if (first..last).any(|s| self.bad.contains(&s)) {
            return Err(io::Error::from_raw_os_error(5));
        }
        let at = offset as usize;
        let bytes = self
            .bytes
            .get(at..at + buf.len())
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

fn damaged(volume: &[u8], sectors: impl IntoIterator<Item = u64>, garbage: bool) -> Vec<u8> {
    let mut out = volume.to_vec();
    for s in sectors {
        let bytes = &mut out[s as usize * SECTOR..][..SECTOR];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = if garbage {
                (i as u8).wrapping_mul(31) ^ (s as u8) ^ 0x5a
            } else {
                0
            };
        }
    }
    out
}

fn repaired(
    source: &(impl VolumeSource + ?Sized),
) -> Result<(Vec<u8>, kuvert::RepairReport), Error> {
    let mut out = io::Cursor::new(Vec::new());
    let report = repair_volume(source, &mut out)?;
    Ok((out.into_inner(), report))
}

#[test]
fn an_intact_volume_repairs_to_itself() {
    let volume = seal(false);
    let (out, report) = repaired(volume.as_slice()).expect("repair");
    assert_eq!(out, volume);
    assert!(report.was_intact());
    assert_eq!(report.margin.used, 0);
}

#[test]
fn bursts_up_to_the_bound_repair_byte_identical_anywhere() {
    let volume = seal(false);
    let (_, m, l, n_d) = geometry(&volume);
    let burst = (m - 1) * l;
    let parity_end = n_d + m * l;
    // In the header, the chunks, across the data span's end (records) into
    // the parity, and inside the parity.
    for start in [0, 1, n_d / 3, n_d - burst / 2, n_d + 3, parity_end - burst] {
        let range = start..start + burst;
        // Damaged parity is found by 32-sector groups: a zeroed or garbage
        // run costs up to 62 sectors more than an unreadable one.
        let judged = start + 62..start + burst;
        for garbage in [false, true] {
            let bad = damaged(&volume, judged.clone(), garbage);
            let (out, report) = repaired(bad.as_slice())
                .unwrap_or_else(|err| panic!("burst at {start}, garbage {garbage}: {err}"));
            assert!(
                out == volume,
                "burst at {start} (garbage {garbage}) byte-identical"
            );
            assert!(report.margin.used <= m as u16);
        }
        let scratched = Scratched {
            bytes: &volume,
            bad: range.clone(),
        };
        let (out, report) = repaired(&scratched).expect("unreadable burst");
        assert!(out == volume, "unreadable burst at {start}");
        assert_eq!(
            report.sectors_lost, burst,
            "unreadable sectors are exactly the burst at {start}"
        );
    }
}

#[test]
fn one_past_the_bound_fails_naming_the_stripe() {
    let volume = seal(false);
    let (_, m, l, _) = geometry(&volume);
    // m + 1 whole layers from layer 0: every stripe lost m + 1 sectors.
    let scratched = Scratched {
        bytes: &volume,
        bad: 0..(m + 1) * l,
    };
    match repaired(&scratched) {
        Err(Error::Unrecoverable {
            stripe: 0,
            lost,
            m: of,
            at,
        }) => {
            assert_eq!(lost as u64, m + 1);
            assert_eq!(u64::from(of), m);
            assert_eq!(at.offset, Some(0));
        }
        other => panic!("expected Unrecoverable at stripe 0, got {other:?}"),
    }
}

/// SPEC.md §16.9: m·L − t sectors from the last stored data layer's first
/// sector repair; one more loses m + 1 sectors of stripe 0.
#[test]
fn the_exact_burst_bound_holds_and_one_more_fails() {
    let volume = seal(false);
    let (_, m, l, n_d) = geometry(&volume);
    let last_layer = n_d.div_ceil(l) - 1;
    let tail = n_d.div_ceil(l) * l - n_d;
    let start = last_layer * l;
    let bound = m * l - tail;
    let at_bound = Scratched {
        bytes: &volume,
        bad: start..start + bound,
    };
    let (out, report) = repaired(&at_bound).expect("at the bound");
    assert!(out == volume);
    assert_eq!(report.margin.used as u64, m);
    assert_eq!(report.margin.of as u64, m);
    let past = Scratched {
        bytes: &volume,
        bad: start..start + bound + 1,
    };
    match repaired(&past) {
        Err(Error::Unrecoverable {
            stripe: 0,
            lost,
            m: of,
            ..
        }) => {
            assert_eq!((lost as u64, u64::from(of)), (m + 1, m));
        }
        other => panic!("expected Unrecoverable at stripe 0, got {other:?}"),
    }
}

#[test]
fn the_end_sector_and_digest_block_are_rebuilt() {
    let volume = seal(false);
    let sectors = (volume.len() / SECTOR) as u64;
    let (_, m, l, n_d) = geometry(&volume);
    let block = n_d + m * l..sectors;
    for garbage in [false, true] {
        let bad = damaged(&volume, block.clone(), garbage);
        let (out, _) = repaired(bad.as_slice()).expect("tail rebuilt");
        assert!(
            out == volume,
            "digest block and end sector (garbage {garbage})"
        );
    }
}

/// The header sector and the end sector lost together: neither copy of
/// the geometry is left, and the repair finds it by trying every p until a
/// stripe checks (at 35 %, not the default 20 %).
#[test]
fn a_volume_that_lost_both_geometry_copies_is_repaired_by_trial() {
    let identity = X25519Identity::from_bytes([3; 32]);
    let mut writer = Sealer::new()
        .recipient(identity.to_public())
        .threads(1)
        .parity(Parity::Percent(35))
        .seal(MemorySink::new())
        .expect("seal");
    writer.write_all(&vec![7u8; 3_000_000]).expect("write");
    let volume = writer.finish().expect("finish").into_volumes().remove(0);
    let sectors = (volume.len() / SECTOR) as u64;
    for garbage in [false, true] {
        let bad = [0, sectors / 3, sectors / 2, sectors - 1];
        let scratched = damaged(&volume, bad, garbage);
        let (out, report) = repaired(scratched.as_slice()).expect("geometry by trial");
        assert!(out == volume, "garbage {garbage}");
        assert_eq!(report.map.state(0), SectorState::Repaired);
        assert_eq!(report.map.state(sectors - 1), SectorState::Repaired);
    }
}

#[test]
fn scattered_half_a_percent_repairs() {
    let volume = seal(false);
    let sectors = (volume.len() / SECTOR) as u64;
    // One sector in 200, spread by a fixed stride (no two in one chunk).
    let bad: Vec<u64> = (0..sectors / 200)
        .map(|i| i * 200 + (i * 37) % 200)
        .collect();
    let damaged = damaged(&volume, bad.iter().copied(), true);
    let (out, report) = repaired(damaged.as_slice()).expect("scattered");
    assert!(out == volume);
    assert!(report.sectors_lost >= bad.len() as u64);
}

#[test]
fn a_repaired_signed_volume_verifies_with_its_signer() {
    let volume = seal(true);
    let (_, m, l, n_d) = geometry(&volume);
    let bad = damaged(&volume, n_d - (m - 1) * l / 2..n_d + (m - 1) * l / 2, true);
    let trusted: TrustedSigners = (*SigningKey::from_seed([4; 32]).public()).into();
    assert!(verify_signed_volume(bad.as_slice(), &trusted, 1).is_err());
    let (out, _) = repaired(bad.as_slice()).expect("repair");
    assert!(out == volume);
    verify_signed_volume(out.as_slice(), &trusted, 1).expect("verifies with its signer");
}

#[test]
fn a_volume_without_parity_is_refused() {
    let identity = X25519Identity::from_bytes([3; 32]);
    let mut writer = Sealer::new()
        .recipient(identity.to_public())
        .seal(MemorySink::new())
        .expect("seal");
    writer.write_all(b"no parity").expect("write");
    let volume = writer.finish().expect("finish").into_volumes().remove(0);
    assert!(matches!(
        repaired(volume.as_slice()),
        Err(Error::NoParity { .. })
    ));
}

/// Past the bound in a few stripes only: the all-or-nothing repair names
/// the first, the best-effort one restores every other stripe and maps
/// exactly the lost sectors of those it could not.
#[test]
fn best_effort_restores_every_stripe_it_can_and_maps_the_rest() {
    let volume = seal(false);
    let (_, m, l, _) = geometry(&volume);
    // Layers 0..m whole (m per stripe), and stripes 0..5 of layer m too.
    let bad = 0..m * l + 5;
    let scratched = Scratched {
        bytes: &volume,
        bad: bad.clone(),
    };
    match repaired(&scratched) {
        Err(Error::Unrecoverable {
            stripe: 0, lost, ..
        }) => assert_eq!(lost as u64, m + 1),
        other => panic!("expected Unrecoverable at stripe 0, got {other:?}"),
    }
    let mut out = io::Cursor::new(Vec::new());
    let report = repair_volume_best_effort(&scratched, &mut out).expect("best effort");
    let out = out.into_inner();
    let lost_for_good = |s: u64| bad.contains(&s) && s % l < 5;
    assert_eq!(report.sectors_lost, bad.end);
    assert_eq!(report.sectors_unrecoverable, 5 * (m + 1));
    assert!(!report.is_whole());
    assert_eq!(report.margin.used as u64, m + 1);
    for s in 0..(volume.len() / SECTOR) as u64 {
        let state = report.map.state(s);
        let at = s as usize * SECTOR;
        if lost_for_good(s) {
            assert_eq!(state, SectorState::Unrecoverable, "sector {s}");
            // The source's bytes: zeros where unreadable.
            assert!(out[at..at + SECTOR].iter().all(|&b| b == 0), "sector {s}");
        } else {
            assert_ne!(state, SectorState::Unrecoverable, "sector {s}");
            assert_eq!(out[at..at + SECTOR], volume[at..at + SECTOR], "sector {s}");
        }
    }
    let cells = report.map.cells(64);
    assert_eq!(cells[0], SectorState::Unrecoverable);
    assert_eq!(cells[63], SectorState::Good);
}

#[test]
fn best_effort_on_a_repairable_volume_is_the_repair() {
    let volume = seal(false);
    let (_, m, l, n_d) = geometry(&volume);
    let bad = damaged(&volume, n_d / 3..n_d / 3 + (m - 1) * l, false);
    let mut out = io::Cursor::new(Vec::new());
    let report = repair_volume_best_effort(bad.as_slice(), &mut out).expect("best effort");
    assert!(out.into_inner() == volume);
    assert!(report.is_whole());
    assert_eq!(report.sectors_unrecoverable, 0);
    assert!(report.sectors_repaired >= (m - 1) * l);
    assert_eq!(
        report.map.count(SectorState::Repaired),
        report.sectors_repaired
    );
    assert_eq!(report.map.state(n_d / 3), SectorState::Repaired);
    assert_eq!(report.map.state(0), SectorState::Good);
}

/// The check block's first sector and length (SPEC.md §16.8): after the
/// digest block, ceil((n_d + m·L) / 511) sectors.
fn check_block(volume: &[u8]) -> std::ops::Range<u64> {
    let (_, m, l, n_d) = geometry(volume);
    let digest_sectors = (32 * (m * l).div_ceil(32)).div_ceil(SECTOR as u64);
    let start = n_d + m * l + digest_sectors;
    start..start + (n_d + m * l).div_ceil(511)
}

/// 64 KiB chunks (32 sectors): 0.5 % scattered zeroed sectors would erase
/// a whole chunk each by its digest, past m with a 5 % burst besides; the
/// check block judges each sector alone. With the check block zeroed too,
/// the same damage is past the bound: the check block is what repairs it.
#[test]
fn scattered_zeroed_sectors_and_a_burst_are_judged_by_the_check_block() {
    let volume = seal_chunks(false, 64 << 10);
    let (_, m, l, n_d) = geometry(&volume);
    let covered = n_d + m * l;
    let sectors = (volume.len() / SECTOR) as u64;
    let checks = check_block(&volume);
    assert_eq!(
        checks.end,
        sectors - 1,
        "the check block ends before the end sector"
    );
    let burst = n_d / 3..n_d / 3 + sectors * 5 / 100;
    let scattered: Vec<u64> = (0..covered / 200)
        .map(|i| i * 200 + (i * 37) % 200)
        .filter(|s| !burst.contains(s) && *s < covered)
        .collect();
    let bad = damaged(
        &volume,
        burst.clone().chain(scattered.iter().copied()),
        false,
    );
    let (out, report) = repaired(bad.as_slice()).expect("judged per sector");
    assert!(out == volume, "byte-identical");
    assert_eq!(
        report.sectors_lost,
        burst.end - burst.start + scattered.len() as u64,
        "exactly the zeroed sectors are lost"
    );
    let without_checks = damaged(&bad, checks.clone(), false);
    match repaired(without_checks.as_slice()) {
        Err(Error::Unrecoverable { lost, m: of, .. }) => assert!(lost > usize::from(of)),
        other => panic!("expected Unrecoverable without the check block, got {other:?}"),
    }
}

/// A check block that is unreadable or garbage is rebuilt, and the sectors
/// it covers fall back to their chunk digests.
#[test]
fn a_damaged_check_block_is_rebuilt() {
    let volume = seal(false);
    let checks = check_block(&volume);
    for garbage in [false, true] {
        let bad = damaged(&volume, checks.clone(), garbage);
        let (out, report) = repaired(bad.as_slice()).expect("check block rebuilt");
        assert!(out == volume, "garbage {garbage}");
        assert_eq!(report.map.state(checks.start), SectorState::Repaired);
    }
    let scratched = Scratched {
        bytes: &volume,
        bad: checks.start..checks.start + 1,
    };
    let (out, report) = repaired(&scratched).expect("unreadable check sector");
    assert!(out == volume);
    assert_eq!(report.sectors_lost, 1);
}

/// The check sector that judges the header and the first 510 sectors lost
/// together with the header and every 16th of those sectors: with 64 KiB
/// chunks each of them is in a failing chunk, and the header that places
/// the chunks is lost as well. The stripes afford to restore all 511
/// unjudged sectors; those that come back as they were are not counted
/// lost, so the report names exactly the sectors that were damaged.
#[test]
fn an_unjudged_header_and_chunks_are_restored_and_counted_exactly() {
    let volume = seal_chunks(false, 65536);
    let checks = check_block(&volume);
    let bad: Vec<u64> = (0..511).step_by(16).collect();
    for garbage in [false, true] {
        let damage = bad.iter().copied().chain([checks.start]);
        let scratched = damaged(&volume, damage, garbage);
        let (out, report) = repaired(scratched.as_slice()).expect("an unjudged header");
        assert!(out == volume, "garbage {garbage}");
        assert_eq!(report.sectors_lost, bad.len() as u64, "garbage {garbage}");
        assert_eq!(report.map.state(0), SectorState::Repaired);
        assert_eq!(report.map.state(1), SectorState::Good);
        assert_eq!(report.map.state(checks.start), SectorState::Repaired);
    }
}

/// A parity sector nothing can judge (its check sector and the whole
/// digest block are zeroed) is wrong, in a stripe that cannot afford to
/// restore its unjudged sectors (39 data sectors lost besides): its data
/// is restored from other parity and proved by the chunk digests, and the
/// wrong parity sector is then re-encoded from that data before the
/// digest block is rebuilt from the parity. Once this returned Ok with
/// the wrong sector left in place.
#[test]
fn a_parity_sector_nothing_judges_is_re_encoded_from_the_proved_data() {
    let volume = seal_chunks(false, 65536);
    let (k, m, l, n_d) = geometry(&volume);
    let layers_end = n_d + m * l;
    let digest_sectors = (32 * (m * l).div_ceil(32)).div_ceil(SECTOR as u64);
    let checks = check_block(&volume);
    let stripe = 5;
    let wrong_parity = n_d + (m - 1) * l + stripe;
    let blind = checks.start + wrong_parity / 511;
    assert!((layers_end - 1) / 511 == wrong_parity / 511 && wrong_parity / 511 > 0);
    let mut bad: Vec<u64> = (0..39).map(|layer| layer * l + stripe).collect();
    assert!(
        bad.iter()
            .all(|&s| s / 511 != wrong_parity / 511 && s < n_d && k > 39)
    );
    bad.push(wrong_parity);
    bad.extend(layers_end..layers_end + digest_sectors);
    bad.push(blind);
    let scratched = damaged(&volume, bad, false);
    let (out, report) = repaired(scratched.as_slice()).expect("parity re-encoded");
    assert!(out == volume);
    assert_eq!(report.sectors_lost, 40);
    assert_eq!(report.map.state(wrong_parity), SectorState::Repaired);
    assert_eq!(report.map.state(layers_end), SectorState::Repaired);
}

/// A radial scratch on a CD: `width` bad sectors once per turn, and a turn
/// is about 9.4 sectors near the centre and 22.5 at the edge (75 sectors a
/// second at 500 down to 200 turns a minute), never a whole number, so the
/// scratch's phase drifts from layer to layer. Starts at sector `from`.
fn radial_scratch(sectors: u64, from: f64, width: u64) -> Vec<u64> {
    let mut bad = Vec::new();
    let mut at = from;
    while (at as u64) < sectors {
        let first = at as u64;
        bad.extend((first..first + width).filter(|&s| s < sectors));
        at += 9.37 + 13.1 * at / sectors as f64;
    }
    bad
}

/// One sector per turn across the chunks, records, parity and the blocks
/// after them (about 7 % of the volume), zeroed as in a ddrescue image:
/// judged sector by sector by the check block and repaired; three per turn
/// is more than 43 of 255 parity layers cover.
#[test]
fn a_radial_scratch_repairs_byte_identical() {
    let volume = seal_chunks(false, 65536);
    let sectors = (volume.len() / SECTOR) as u64;
    let bad = radial_scratch(sectors, 5.0, 1);
    let scratched = damaged(&volume, bad.iter().copied(), false);
    let (out, report) = repaired(scratched.as_slice()).expect("a radial scratch");
    assert!(out == volume);
    assert!(report.sectors_lost >= bad.len() as u64);
    let wide = damaged(&volume, radial_scratch(sectors, 5.0, 3), false);
    assert!(matches!(
        repaired(wide.as_slice()),
        Err(Error::Unrecoverable { .. })
    ));
}

/// The same scratch through the header sector as well: the check sector
/// that judges the header is scratched too, and its 511 sectors are
/// restored rather than trusted.
#[test]
fn a_radial_scratch_through_the_header_repairs_byte_identical() {
    let volume = seal_chunks(false, 65536);
    let sectors = (volume.len() / SECTOR) as u64;
    let bad = radial_scratch(sectors, 0.0, 1);
    let scratched = damaged(&volume, bad.iter().copied(), false);
    let (out, report) =
        repaired(scratched.as_slice()).expect("a radial scratch through the header");
    assert!(out == volume);
    // Lost: the scratched sectors of the layers that held anything but
    // zeros (the check block, digest block and end sector are rebuilt).
    let (_, m, l, n_d) = geometry(&volume);
    let layers_end = n_d + m * l;
    let lost = bad
        .iter()
        .filter(|&&s| {
            s < layers_end
                && volume[s as usize * SECTOR..][..SECTOR]
                    .iter()
                    .any(|&b| b != 0)
        })
        .count();
    assert_eq!(report.sectors_lost, lost as u64);
}
