//! Whole sets: whether verified volumes make one complete set (SPEC.md §7.2
//! step 4), [`SetCheck`], and the set verifier [`Opener::verify_set`], which
//! checks every volume given to its end and maps all damage, the volumes
//! missing included.

use std::collections::BTreeSet;

use zeroize::Zeroizing;

use crate::damage::{self, Damage, DamageKind, DamageMap};
use crate::error::Volume;
use crate::error::{Error, Location, OptionError};
use crate::format::{ChunkFlag, Geometry, SET_ID_LEN, TAG_LEN};
use crate::header::read_header;
use crate::keys::Unlocked;
use crate::open::Opener;
use crate::stream::ChunkCipher;
use crate::volumes::VolumeSource;

use super::VolumeReport;

/// Why a volume is not counted as part of the set.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// It belongs to another set (another set id).
    OtherSet,
    /// It has the set id of the others, and its header authenticates, but
    /// its set part (recipients or geometry) differs: it does not open with
    /// them (SPEC.md §7.2). A set part that fails authentication is
    /// damage instead ([`SetReport::unusable`]).
    OtherSetHeader,
    /// Another volume given earlier has the same number.
    Duplicate {
        /// Index of that earlier volume, from 0, as [`Rejected::index`].
        first: usize,
    },
}

/// A volume that is not counted as part of the set.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Index of the volume among those checked, from 0.
    pub index: usize,
    /// The number it claims (authenticated if it was verified).
    pub volume: u32,
    /// Why it is not counted.
    pub reason: Rejection,
}

/// Whether volumes verified one by one make one whole set: which are there,
/// which are missing, which do not belong.
///
/// The set is the one most volumes belong to (the first given on a tie),
/// by their whole set part, not only their id: volumes whose set parts
/// differ never open together.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCheck {
    /// Id of the set.
    pub set_id: [u8; SET_ID_LEN],
    /// SHA-256 of its header's set part, as [`VolumeReport::set_digest`].
    pub set_digest: [u8; 32],
    /// Volume numbers present, ascending.
    pub present: Vec<u32>,
    /// Volumes present whose reports hold damage, ascending.
    pub damaged: Vec<u32>,
    /// Volumes given that are not counted, in the order given.
    pub rejected: Vec<Rejected>,
    /// Numbers below the highest present that no volume given has.
    pub missing: Vec<u32>,
    /// The highest volume present, when it is not the last of its set:
    /// the volumes after it are missing (how many, nobody can tell).
    pub end_missing: Option<u32>,
}

impl SetCheck {
    /// Checks that `reports` (of [`Opener::scan_volume`] or
    /// [`VolumeVerifier`](crate::VolumeVerifier), in the order the volumes
    /// were given) make one whole set; `None` if there are none.
    pub fn of<'a>(reports: impl IntoIterator<Item = &'a VolumeReport>) -> Option<SetCheck> {
        let reports: Vec<&VolumeReport> = reports.into_iter().collect();
        let count = |digest: &[u8; 32]| reports.iter().filter(|r| r.set_digest == *digest).count();
        // Most volumes first; on a tie, the one given first.
        let (_, reference) = reports
            .iter()
            .enumerate()
            .max_by_key(|(index, r)| (count(&r.set_digest), std::cmp::Reverse(*index)))?;
        let (set_id, set_digest) = (reference.set_id, reference.set_digest);
        let mut check = SetCheck {
            set_id,
            set_digest,
            present: Vec::new(),
            damaged: Vec::new(),
            rejected: Vec::new(),
            missing: Vec::new(),
            end_missing: None,
        };
        let mut numbers = BTreeSet::new();
        let mut seen: Vec<(u32, usize)> = Vec::new();
        let mut has_last = false;
        for (index, report) in reports.iter().enumerate() {
            let reject = |reason| Rejected {
                index,
                volume: report.volume,
                reason,
            };
            if report.set_id != set_id {
                check.rejected.push(reject(Rejection::OtherSet));
                continue;
            }
            if report.set_digest != set_digest {
                check.rejected.push(reject(Rejection::OtherSetHeader));
                continue;
            }
            if let Some(&(_, first)) = seen.iter().find(|(number, _)| *number == report.volume) {
                check.rejected.push(reject(Rejection::Duplicate { first }));
                continue;
            }
            seen.push((report.volume, index));
            numbers.insert(report.volume);
            if !report.damage.is_empty() {
                check.damaged.push(report.volume);
            }
            has_last |= report.last_in_set;
        }
        let highest = numbers.last().copied().unwrap_or(0);
        check.missing = (1..highest).filter(|n| !numbers.contains(n)).collect();
        if !has_last {
            check.end_missing = Some(highest);
        }
        check.present = numbers.into_iter().collect();
        check.damaged.sort_unstable();
        Some(check)
    }

    /// Whether every volume of the set is present (intact or not).
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.end_missing.is_none()
    }
}

/// The outcome of [`Opener::verify_set`].
#[non_exhaustive]
#[derive(Debug)]
pub struct SetReport {
    /// Which volumes are there, missing or rejected; indices are the
    /// volumes' positions among those given, from 0.
    pub check: SetCheck,
    /// Each volume of the set checked, with its own damage, in the order
    /// given: its index and its report.
    pub volumes: Vec<(usize, VolumeReport)>,
    /// Volumes given that could not be checked at all (a header that
    /// cannot be read or does not authenticate): index and error.
    pub unusable: Vec<(usize, Error)>,
    /// All damage of the set in chunk order: every damaged run of the
    /// volumes checked, and each missing volume (the volumes after the
    /// highest given, when its intact end says more follow, as one run of
    /// unknown end).
    pub damage: DamageMap,
}

impl SetReport {
    /// Whether the set is whole and every chunk authenticated.
    pub fn is_intact(&self) -> bool {
        self.check.is_complete()
            && self.damage.is_empty()
            && self.unusable.is_empty()
            && self.check.rejected.is_empty()
    }
}

/// Volume `volume`, not given: all its chunks are missing, or with
/// `to_end` all chunks from its first on.
fn missing_volume(geometry: &Geometry, volume: u32, to_end: bool) -> Damage {
    let first = geometry.first_chunk(volume);
    let start = damage::chunk_content(geometry, first, 0).start;
    let (chunks, bytes, plaintext) = match geometry.full_volume_len() {
        Some(full) if !to_end => {
            let per = geometry.chunks_per_volume;
            let plain = per * geometry.plain_len() as u64;
            (
                first..first + per,
                geometry.data_offset..full,
                damage::chunk_content(geometry, first, plain),
            )
        }
        _ => (
            first..u64::MAX,
            geometry.data_offset..u64::MAX,
            start..u64::MAX,
        ),
    };
    Damage {
        kind: DamageKind::Missing,
        at: Location::volume(volume)
            .byte(geometry.data_offset)
            .chunk(first),
        chunks,
        bytes,
        plaintext,
        unreadable: None,
    }
}

impl Opener {
    /// Verifies a set from the volumes given, in any order: unlocks its
    /// header once, checks every volume to its end, going on past chunks
    /// that cannot be read or do not authenticate, and reports which
    /// volumes are missing, duplicated or foreign ([`SetCheck`]) and every
    /// damaged run ([`DamageMap`]). A volume whose header fails is reported
    /// in [`SetReport::unusable`], not a stop.
    ///
    /// Memory grows with the damage found, not with the set.
    ///
    /// # Errors
    ///
    /// Only when nothing can be checked: [`Error::NoVolumes`], the header
    /// error if no header can be read, [`Error::NoMatchingKey`],
    /// [`Error::WrongPassphrase`] (no header unlocks), [`Error::InvalidOption`]
    /// for 0 threads.
    pub fn verify_set<S: VolumeSource + Sync>(&self, volumes: &[S]) -> Result<SetReport, Error> {
        if volumes.is_empty() {
            return Err(Error::NoVolumes);
        }
        if self.thread_count() == 0 {
            return Err(Error::option(OptionError::NoThreads));
        }
        let mut headers = Vec::with_capacity(volumes.len());
        let mut inputs = Vec::with_capacity(volumes.len());
        let mut unusable = Vec::new();
        for (index, volume) in volumes.iter().enumerate() {
            match read_header(volume, index + 1) {
                Ok(header) => {
                    headers.push(header);
                    inputs.push(index);
                }
                Err(err) => unusable.push((index, err)),
            }
        }
        if headers.is_empty() {
            return Err(unusable.swap_remove(0).1);
        }
        let (reference, Unlocked { file_key, .. }) = self.unlock_set(&headers)?;
        let reference_set = headers[reference].0.set_bytes().to_vec();
        let set_id = headers[reference].0.set.set_id;
        let geometry = headers[reference].0.geometry();

        let mut reports: Vec<(usize, VolumeReport)> = Vec::new();
        let mut rejected = Vec::new();
        for ((header, len), &index) in headers.iter().zip(&inputs) {
            let reject = |reason| Rejected {
                index,
                volume: header.volume,
                reason,
            };
            if header.set.set_id != set_id {
                rejected.push(reject(Rejection::OtherSet));
                continue;
            }
            let verified = file_key.verify_header(header);
            if verified.is_ok() && header.set_bytes() != reference_set.as_slice() {
                // Authentic, yet another set part: not damage, another set.
                rejected.push(reject(Rejection::OtherSetHeader));
                continue;
            }
            let scanned = verified.and_then(|()| {
                self.scan_with(
                    &volumes[index],
                    header,
                    *len,
                    &file_key,
                    self.repair_settings().enabled,
                )
            });
            match scanned {
                Ok(scanned) => reports.push((index, scanned.report)),
                Err(err) => unusable.push((index, err)),
            }
        }
        let mut check =
            SetCheck::of(reports.iter().map(|(_, report)| report)).ok_or(Error::NoVolumes)?;
        for rejection in &mut check.rejected {
            rejection.index = reports[rejection.index].0;
            if let Rejection::Duplicate { first } = &mut rejection.reason {
                *first = reports[*first].0;
            }
        }
        let duplicates: Vec<usize> = check.rejected.iter().map(|r| r.index).collect();
        check.rejected.extend(rejected);
        check.rejected.sort_by_key(|r| r.index);
        unusable.sort_by_key(|(index, _)| *index);

        let mut damage = DamageMap::new();
        for (index, report) in &reports {
            if !duplicates.contains(index) {
                damage.merge(report.damage.clone());
            }
        }
        if geometry.chunks_per_volume != 0 {
            for &volume in &check.missing {
                damage.push(missing_volume(&geometry, volume, false));
            }
            // The volumes after the highest are missing if its end is
            // intact (an end-of-volume chunk); if its end is damaged, that
            // damage is what was found, and whether more follow is unknown.
            let end_damaged = |report: &VolumeReport| {
                let last = geometry.first_chunk(report.volume) + report.chunks;
                report.damage.iter().any(|run| run.chunks.end >= last)
            };
            let highest = reports
                .iter()
                .find(|(index, report)| {
                    Some(report.volume) == check.end_missing && !duplicates.contains(index)
                })
                .map(|(_, report)| report);
            if let Some(report) = highest
                && !end_damaged(report)
                && let Some(next) = report.volume.checked_add(1)
            {
                damage.push(missing_volume(&geometry, next, true));
            }
        }
        // The scans counted content offsets from the end of the prefix;
        // with volume 1 here, chunk 0 gives the manifest's length.
        let first = reports
            .iter()
            .find(|(index, report)| report.volume == 1 && !duplicates.contains(index));
        if let Some(records) = first.and_then(|(index, _)| {
            // Volume 1's own geometry: its H may differ (SPEC.md §3.4).
            let (header, _) = headers
                .iter()
                .zip(&inputs)
                .find(|(_, input)| **input == *index)?
                .0;
            let cipher = ChunkCipher::new(&file_key.payload_key(&set_id));
            manifest_len(&volumes[*index], &header.geometry(), &cipher)
        }) {
            damage.shift_content(records);
            for (_, report) in &mut reports {
                report.damage.shift_content(records);
            }
        }
        Ok(SetReport {
            check,
            volumes: reports,
            unusable,
            damage,
        })
    }
}

/// The manifest length R from chunk 0 of volume 1, if chunk 0 is intact
/// and its prefix valid (SPEC.md §6.7); it is the first chunk there, and
/// opens with one of the three flags.
fn manifest_len<S: VolumeSource + ?Sized>(
    volume: &S,
    geometry: &Geometry,
    cipher: &ChunkCipher,
) -> Option<u64> {
    let (_, offset) = geometry.locate(0);
    let available = volume.size().ok()?.checked_sub(offset)?;
    let len = available.min(geometry.chunk_len() as u64) as usize;
    let mut buf = Zeroizing::new(vec![0u8; len]);
    crate::volumes::read_at(volume, &mut buf, offset, Volume::Number(1), Some(0)).ok()?;
    let flags = [
        ChunkFlag::Interior,
        ChunkFlag::EndOfVolume,
        ChunkFlag::EndOfSet,
    ];
    let opened = flags.into_iter().any(|flag| {
        let mut attempt = buf.clone();
        let opened = cipher.open(0, flag, &mut attempt);
        if opened {
            buf.copy_from_slice(&attempt);
        }
        opened
    });
    if !opened || len < TAG_LEN {
        return None;
    }
    let plain = &buf[..len - TAG_LEN];
    let (_, _, records_len) =
        crate::format::parse_payload_prefix(plain, plain.len() as u64).ok()?;
    Some(u64::from(records_len))
}
