//! Parity volumes across a set (SPEC.md §17): any P missing data volumes
//! rebuilt byte for byte without a key; more missing refused by name; a
//! damaged parity sector is an erasure, not a wrong rebuild; a malformed
//! head refused.

use std::io::{Cursor, Read, Write};

use kuvert::{
    Error, MemorySink, Opener, OptionError, PARITY_VOLUME_MAGIC, ParitySet, Sealer, X25519Identity,
    write_parity_volumes,
};

const SECTOR: usize = 2048;

fn identity() -> X25519Identity {
    X25519Identity::from_bytes([5; 32])
}

/// A set of `volumes` data volumes (the last one shorter) and its content.
fn seal(volumes: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
    let content: Vec<u8> = (0..(volumes as u32 * 250_000 - 60_000))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let sealer = Sealer::new()
        .recipient(identity().to_public())
        .chunk_size(4096)
        .volume_size(256 << 10)
        .threads(1);
    let mut writer = sealer.seal(MemorySink::new()).expect("seal");
    writer.write_all(&content).expect("write");
    let set = writer.finish().expect("finish").into_volumes();
    assert_eq!(set.len(), volumes);
    (set, content)
}

fn parity_volumes(data: &[Vec<u8>], p: usize) -> Vec<Vec<u8>> {
    let mut out: Vec<Cursor<Vec<u8>>> = (0..p).map(|_| Cursor::new(Vec::new())).collect();
    write_parity_volumes(data, &mut out).expect("parity volumes");
    out.into_iter().map(Cursor::into_inner).collect()
}

fn rebuild(set: &ParitySet<Vec<u8>, Vec<u8>>, volume: u32) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    set.rebuild(volume, &mut out)?;
    Ok(out)
}

fn open(volumes: Vec<Vec<u8>>) -> Vec<u8> {
    let mut opened = Vec::new();
    Opener::new()
        .identity(identity())
        .open(volumes)
        .expect("open")
        .read_to_end(&mut opened)
        .expect("read");
    opened
}

#[test]
fn any_one_of_three_missing_is_rebuilt_byte_identical() {
    let (data, content) = seal(3);
    let parity = parity_volumes(&data, 1);
    assert!(parity[0].starts_with(&PARITY_VOLUME_MAGIC));
    for missing in 1..=3u32 {
        let given: Vec<Vec<u8>> = data
            .iter()
            .enumerate()
            .filter(|(i, _)| *i as u32 + 1 != missing)
            .map(|(_, v)| v.clone())
            .collect();
        let set = ParitySet::assemble(given.clone(), parity.clone()).expect("assemble");
        assert_eq!(set.missing(), vec![missing]);
        assert_eq!(set.data_volumes(), 3);
        let rebuilt = rebuild(&set, missing).expect("rebuild");
        assert_eq!(rebuilt, data[missing as usize - 1], "volume {missing}");
        let mut whole = given;
        whole.insert(missing as usize - 1, rebuilt);
        assert_eq!(open(whole), content);
    }
}

#[test]
fn two_missing_with_one_parity_volume_are_refused_by_name() {
    let (data, _) = seal(3);
    let parity = parity_volumes(&data, 1);
    let set = ParitySet::assemble(vec![data[1].clone()], parity).expect("assemble");
    assert_eq!(set.missing(), vec![1, 3]);
    match rebuild(&set, 1) {
        Err(Error::TooManyMissing {
            missing,
            parity_volumes: 1,
        }) => assert_eq!(missing, vec![1, 3]),
        other => panic!("expected TooManyMissing, got {other:?}"),
    }
}

#[test]
fn two_missing_with_two_parity_volumes_are_rebuilt() {
    let (data, _) = seal(3);
    let parity = parity_volumes(&data, 2);
    let set = ParitySet::assemble(vec![data[2].clone()], parity).expect("assemble");
    assert_eq!(rebuild(&set, 1).expect("rebuild 1"), data[0]);
    assert_eq!(rebuild(&set, 2).expect("rebuild 2"), data[1]);
}

#[test]
fn a_damaged_parity_sector_is_an_erasure_not_a_wrong_rebuild() {
    let (data, _) = seal(3);
    let mut parity = parity_volumes(&data, 2);
    // Body sector 3 of p01 (after its one-sector head) is garbage: stripe 3
    // lost volume 2 and p01, still two erasures for two parity volumes.
    parity[0][4 * SECTOR + 100] ^= 0x40;
    let given = vec![data[0].clone(), data[2].clone()];
    let set = ParitySet::assemble(given.clone(), parity.clone()).expect("assemble");
    let checks = set.check_parity().expect("check");
    assert!(checks[0].body_sectors > 64);
    assert_eq!(checks[0].damaged_sectors, 32);
    assert!(checks[1].is_intact());
    assert_eq!(rebuild(&set, 2).expect("rebuild"), data[1]);
    // With only the damaged one, stripe group 0 lost volume 2, p01's bad
    // group and the absent p02: three of two.
    let set = ParitySet::assemble(given, vec![parity[0].clone()]).expect("assemble");
    match rebuild(&set, 2) {
        Err(Error::Unrecoverable {
            stripe: 0,
            lost: 3,
            m: 2,
            ..
        }) => {}
        other => panic!("expected Unrecoverable, got {other:?}"),
    }
}

#[test]
fn a_damaged_head_is_read_from_its_copy_at_the_end() {
    let (data, _) = seal(2);
    let mut parity = parity_volumes(&data, 1);
    parity[0][..SECTOR].fill(0);
    let set = ParitySet::assemble(vec![data[1].clone()], parity).expect("assemble");
    assert_eq!(rebuild(&set, 1).expect("rebuild"), data[0]);
}

#[test]
fn a_malformed_head_is_refused() {
    let (data, _) = seal(2);
    let mut parity = parity_volumes(&data, 1);
    let len = parity[0].len();
    parity[0][20] ^= 1;
    parity[0][len - SECTOR + 20] ^= 1;
    match ParitySet::assemble(vec![data[1].clone()], parity.clone()) {
        Err(Error::MalformedParityVolume { at, reason }) => {
            assert_eq!(at.offset, Some(168));
            assert_eq!(reason, "the head's BLAKE3 does not match");
        }
        other => panic!("expected MalformedParityVolume, got {other:?}"),
    }
    // Cut short: neither copy fits the length.
    parity[0] = parity_volumes(&data, 1).remove(0);
    parity[0].truncate(len - SECTOR);
    assert!(matches!(
        ParitySet::assemble(vec![data[1].clone()], parity),
        Err(Error::MalformedParityVolume {
            reason: "the file's length does not fit its head",
            ..
        })
    ));
}

#[test]
fn a_rebuild_from_a_silently_damaged_volume_is_refused() {
    let (data, _) = seal(3);
    let parity = parity_volumes(&data, 1);
    let mut bad = data[2].clone();
    bad[5 * SECTOR] ^= 1;
    let set = ParitySet::assemble(vec![data[0].clone(), bad], parity).expect("assemble");
    assert!(matches!(
        rebuild(&set, 2),
        Err(Error::RebuiltMismatch { volume: 2 })
    ));
}

#[test]
fn parity_volume_counts_out_of_range_are_refused() {
    let (data, _) = seal(2);
    for p in [0, 3] {
        let mut out: Vec<Cursor<Vec<u8>>> = (0..p).map(|_| Cursor::new(Vec::new())).collect();
        match write_parity_volumes(&data, &mut out) {
            Err(Error::InvalidOption {
                reason:
                    OptionError::ParityVolumes {
                        parity_volumes,
                        data_volumes: 2,
                    },
            }) => assert_eq!(parity_volumes, p),
            other => panic!("P = {p}: expected ParityVolumes, got {other:?}"),
        }
    }
}

#[test]
fn volumes_out_of_order_are_refused() {
    let (data, _) = seal(2);
    let swapped = vec![data[1].clone(), data[0].clone()];
    let mut out = vec![Cursor::new(Vec::new())];
    assert!(matches!(
        write_parity_volumes(&swapped, &mut out),
        Err(Error::VolumeMissing { volume: 1 })
    ));
}

#[test]
fn an_excluded_damaged_volume_is_rebuilt_and_not_used() {
    let (data, _) = seal(3);
    let parity = parity_volumes(&data, 2);
    let mut bad = data[2].clone();
    bad[5 * SECTOR] ^= 1;
    let mut set = ParitySet::assemble(vec![data[1].clone(), bad], parity).expect("assemble");
    assert_eq!(set.missing(), vec![1]);
    set.exclude(3);
    assert_eq!(set.missing(), vec![1, 3]);
    assert_eq!(rebuild(&set, 1).expect("rebuild 1"), data[0]);
    assert_eq!(rebuild(&set, 3).expect("rebuild 3"), data[2]);
}
