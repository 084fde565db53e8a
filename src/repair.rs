//! Repairing one volume from its own parity, without any key (SPEC.md
//! §16.10): what is wrong becomes erasures (sectors the source cannot read,
//! chunks whose BLAKE3 entry fails, the header if h_v fails, the records if
//! D fails, parity groups whose digest fails), each stripe is restored from
//! any k of its sectors, and the result is checked again as any keyless
//! reader checks a volume.
//!
//! The volume is never held in memory. The source is copied through to the
//! output once; the output is then the scratch: erased sectors are patched
//! in place, batch of stripes by batch of stripes, and every check reads the
//! volume back from it. Memory is bounded by one batch (k + m runs of
//! [`BATCH_STRIPES`](crate::parity::codec::BATCH_STRIPES) sectors, 32 MiB at
//! 255 layers), 4 MiB read pieces (or one chunk, if larger), the records
//! region (at most 1/128 of the data span + 1 MiB), the parity digest block
//! (1/1024 of the parity), two bytes per stripe and the erasure runs.

mod geometry_trial;
mod judge;
mod layout;
mod out;
mod restore;
mod sector_checks;
mod sector_map;
mod sector_set;
mod tail;

use std::io::{Read, Seek, Write};

use crate::chunk_digest::DIGEST_LEN;
use crate::error::{Error, Location, Volume};
use crate::format::SECTOR;
use crate::parity::{ParityGeometry, Place, sector_crc};
use crate::retrying_source::RetryingSource;
use crate::verify::verify_digests;
use crate::volumes::{VolumeSource, location};

use judge::{bad_parity_groups, still_wrong, trusted_digest_block};
use layout::find_geometry;
use out::{Out, copy_through};
use restore::{Restorer, affordable, in_stripes, lost_per_stripe, stripes_of};
use sector_checks::{crc_judge, rebuild_check_block};
pub use sector_map::{SectorMap, SectorState};
use sector_set::SectorSet;
use tail::rebuild_tail;

/// Rounds of "restore, check again, erase what still fails": each finds
/// the damage the previous one could not see (a header or records region
/// that must be whole before the chunks can be checked against it).
const MAX_ROUNDS: usize = 48;

/// The worst stripe of a repair: it lost `used` of its `of` parity
/// sectors' worth; `of − used` more lost sectors there would still be
/// repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Margin {
    /// The stripe that lost the most sectors.
    pub worst_stripe: u64,
    /// Sectors it lost.
    pub used: u16,
    /// Parity sectors per stripe, m.
    pub of: u16,
}

/// What [`repair_volume`] or [`repair_volume_best_effort`] found and did.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// The volume's length in bytes, as written out.
    pub volume_len: u64,
    /// Sectors lost: unreadable, or proved wrong by a digest.
    pub sectors_lost: u64,
    /// Sectors rewritten: restored from parity, or (parity digest block,
    /// end sector) rebuilt from the rest.
    pub sectors_repaired: u64,
    /// Sectors that could not be repaired: 0 from [`repair_volume`].
    pub sectors_unrecoverable: u64,
    /// The worst stripe's use of its parity.
    pub margin: Margin,
    /// Every sector's state, for a map of the volume.
    pub map: SectorMap,
}

impl RepairReport {
    /// Whether the volume was intact: nothing lost, nothing rewritten.
    pub fn was_intact(&self) -> bool {
        self.sectors_lost == 0 && self.sectors_repaired == 0
    }

    /// Whether every lost sector was repaired.
    pub fn is_whole(&self) -> bool {
        self.sectors_unrecoverable == 0
    }
}

/// Repairs the volume `source` from its own parity and writes the whole
/// repaired volume, byte-identical to what was sealed, to `out` (from its
/// byte 0; `out` should start empty). No key is needed: a custodian can
/// refresh ageing discs without reading them. Unreadable sectors of
/// `source` are read around ([`RetryingSource`]).
///
/// `out` is the repair's scratch as well (it is read back), so memory stays
/// bounded by a batch of stripes whatever the volume's size: see the
/// module's documentation.
///
/// # Errors
///
/// [`Error::NoParity`] if the volume carries no parity geometry that fits
/// its length; [`Error::Unrecoverable`] naming the first stripe that lost
/// more than m sectors; the keyless check's errors ([`verify_digests`]) if
/// the repaired volume still fails it; [`Error::Read`] for a source that
/// fails as a whole; [`Error::Io`] reading or writing `out`. On an error
/// `out` holds a partial copy, to be discarded.
pub fn repair_volume<S, W>(source: &S, out: &mut W) -> Result<RepairReport, Error>
where
    S: VolumeSource + ?Sized,
    W: Read + Write + Seek + Send + ?Sized,
{
    repair(source, out, false)
}

/// Like [`repair_volume`], but restores every stripe it can and reports
/// the rest instead of failing: [`RepairReport::sectors_unrecoverable`]
/// counts them and [`RepairReport::map`] says where they are. What `out`
/// holds there is the source's bytes (zeros where unreadable), so a reader
/// with the key can still salvage around them.
///
/// # Errors
///
/// [`Error::NoParity`] if the volume carries no parity geometry that fits
/// its length; [`Error::Read`] for a source that fails as a whole;
/// [`Error::Io`] reading or writing `out`.
pub fn repair_volume_best_effort<S, W>(source: &S, out: &mut W) -> Result<RepairReport, Error>
where
    S: VolumeSource + ?Sized,
    W: Read + Write + Seek + Send + ?Sized,
{
    repair(source, out, true)
}

fn repair<S, W>(source: &S, out: &mut W, best_effort: bool) -> Result<RepairReport, Error>
where
    S: VolumeSource + ?Sized,
    W: Read + Write + Seek + Send + ?Sized,
{
    let origin = location(source, Volume::Input(1));
    let len = source.size().map_err(|err| Error::Read {
        at: origin.clone(),
        source: err,
    })?;
    let reader = RetryingSource::new(source);
    let mut out = Out::new(out, len);
    let lost = copy_through(&reader, &mut out, 0..len, &origin)?;
    let (geometry, digest_hash) =
        find_geometry(&mut out, &lost).ok_or_else(|| Error::NoParity { at: origin.clone() })?;
    // A sector whose CRC-32 fails is wrong on its own, before any chunk
    // digest is needed (SPEC.md §16.13).
    let crcs = crc_judge(&mut out, &geometry, &lost).map_err(Error::Io)?;
    let mut erased = lost.clone();
    erased.extend(&crcs.wrong);
    let parity_judged = trusted_digest_block(&mut out, &geometry, digest_hash.as_ref())
        .map_err(Error::Io)?
        .is_some();
    // What no CRC-32 proved right: a failing chunk is blamed on these.
    let mut doubtful = erased.clone();
    doubtful.extend(&crcs.unjudged);
    erased.extend(
        &bad_parity_groups(
            &mut out,
            &geometry,
            digest_hash.as_ref(),
            &doubtful,
            &SectorSet::new(),
        )
        .map_err(Error::Io)?,
    );
    // A sector nothing judged (its check sector is damaged) may be wrong,
    // and one wrong sector left in a stripe spoils everything restored from
    // it: where the stripe can afford it, such sectors are erased too, and
    // those that come back as they were are given back after the first
    // attempt.
    let doubted = affordable(&geometry, &erased, &crcs.unjudged.difference(&erased));
    erased.extend(&doubted);
    if digest_hash.is_none() {
        // The end sector did not give the geometry: it is rebuilt.
        erased.insert(geometry.volume_sectors() - 1);
    }
    let mut state = Repair {
        reader,
        out,
        origin,
        geometry,
        digest_hash,
        restorer: Restorer::new(&geometry, threads()),
        check_block_damaged: crcs.block_damaged(),
        doubtful,
        parity_judged,
        applied: SectorSet::new(),
        repaired: SectorSet::new(),
        rebuilt: SectorSet::new(),
    };
    let mut last = state.attempt(&erased)?;
    if !doubted.is_empty() {
        let unchanged = state.give_back_unchanged(&doubted, &erased)?;
        erased = erased.difference(&unchanged);
    }
    for _ in 0..MAX_ROUNDS {
        if !best_effort && last.unrecoverable {
            break;
        }
        if last.more.is_empty() {
            break;
        }
        if last.more.is_subset(&erased)
            && let Some(spoilers) = state.spoilers(&last.more, &erased)
        {
            // What fails was restored, and restored wrong: its stripes
            // hold a wrong sector that nothing named. Only a doubtful one
            // can be, so those stripes restore their doubtful sectors too.
            erased.extend(&spoilers);
        } else if last.more.is_subset(&erased) {
            // Restored from sectors that are wrong but that nothing could
            // judge (the records were lost, so the chunks before them
            // could not be checked): a burst runs on before what failed.
            // Find the least run before it whose erasure makes it check,
            // by doubling, then bisecting.
            let Some(first) = state.first_restorable(&last.more, &erased) else {
                break;
            };
            let Some(run) = state.least_run_before(&erased, first)? else {
                break;
            };
            erased.insert_range(first - run..first);
        } else {
            erased.extend(&last.more);
        }
        last = state.attempt(&erased)?;
    }
    if state.applied != erased {
        last = state.attempt(&erased)?;
    }
    state.finish(&erased, last, best_effort)
}

/// A repair under way: the output reflects the erasures `applied`.
struct Repair<'s, 'w, S: VolumeSource + ?Sized, W: Read + Write + Seek + Send + ?Sized> {
    reader: RetryingSource<&'s S>,
    out: Out<'w, W>,
    origin: Location,
    geometry: ParityGeometry,
    digest_hash: Option<[u8; DIGEST_LEN]>,
    restorer: Restorer,
    /// The erasures the output was last restored for.
    applied: SectorSet,
    /// Sectors that now hold bytes restored from parity.
    repaired: SectorSet,
    /// Sectors of the digest block, check block and end sector rebuilt.
    rebuilt: SectorSet,
    /// Whether a check-block sector was unreadable or failed its own CRC.
    check_block_damaged: bool,
    /// Sectors of the layers no CRC-32 proved right: unreadable, failing
    /// their entry, or under a damaged check sector.
    doubtful: SectorSet,
    /// Whether the parity digest block was whole, so that every parity
    /// group was judged by its digest.
    parity_judged: bool,
}

/// What one attempt left: the sectors still wrong, and whether a stripe
/// lost more than m.
struct Attempt {
    more: SectorSet,
    unrecoverable: bool,
}

impl<S: VolumeSource + ?Sized, W: Read + Write + Seek + Send + ?Sized> Repair<'_, '_, S, W> {
    /// Brings the output to "source, with `erased` restored", touching only
    /// the stripes whose erasures changed, then judges it again.
    fn attempt(&mut self, erased: &SectorSet) -> Result<Attempt, Error> {
        let geometry = self.geometry;
        // Sectors restored before but no longer erased get the source's
        // bytes back.
        let back = self.applied.difference(erased);
        for range in back.ranges() {
            copy_through(
                &self.reader,
                &mut self.out,
                range.start * SECTOR..range.end * SECTOR,
                &self.origin,
            )?;
        }
        self.repaired = self.repaired.difference(&back);
        let mut changed = erased.difference(&self.applied);
        changed.extend(&back);
        let stripes = stripes_of(&geometry, &changed);
        let restored = self
            .restorer
            .restore(&mut self.out, &geometry, erased, &stripes)
            .map_err(Error::Io)?;
        self.repaired.extend(&restored.sectors);
        self.applied = erased.clone();
        let lost = lost_per_stripe(&geometry, erased);
        let unrecoverable = self.lost_in_unrecoverable(&lost, erased);
        // What an earlier attempt restored in a stripe now past its margin
        // goes back to the source's bytes, the best there is.
        let stale = self.repaired.clone();
        let stale = stale.difference(&stale.difference(&unrecoverable));
        for range in stale.ranges() {
            copy_through(
                &self.reader,
                &mut self.out,
                range.start * SECTOR..range.end * SECTOR,
                &self.origin,
            )?;
        }
        self.repaired = self.repaired.difference(&stale);
        let end_lost = erased.contains(geometry.volume_sectors() - 1);
        let rebuilt = rebuild_tail(&mut self.out, &geometry, self.digest_hash, end_lost)
            .map_err(Error::Io)?;
        self.rebuilt.extend(&rebuilt);
        let mut more = still_wrong(&mut self.out, &geometry, &unrecoverable, &self.doubtful)
            .map_err(Error::Io)?;
        // Restored parity must match its digests: a group that still does
        // not held a wrong sector besides the lost ones (groups with a
        // sector lost for good say nothing).
        more.extend(
            &bad_parity_groups(
                &mut self.out,
                &geometry,
                self.digest_hash.as_ref(),
                &unrecoverable,
                &self.doubtful,
            )
            .map_err(Error::Io)?,
        );
        Ok(Attempt {
            more,
            unrecoverable: !unrecoverable.is_empty() || lost.iter().any(|&n| n > geometry.m()),
        })
    }

    /// Of the `doubted` sectors just restored, those whose restored bytes
    /// are the source's: they were right all along, so they are no longer
    /// erased (nor counted repaired). Their stripes are within the margin,
    /// with every sector outside `erased` proved right by its CRC-32, so
    /// what was restored there is exact.
    fn give_back_unchanged(
        &mut self,
        doubted: &SectorSet,
        erased: &SectorSet,
    ) -> Result<SectorSet, Error> {
        let lost = lost_per_stripe(&self.geometry, erased);
        let within = |sector: u64| {
            self.geometry
                .stripe_of(sector)
                .is_some_and(|stripe| lost[stripe as usize] <= self.geometry.m())
        };
        let mut unchanged = SectorSet::new();
        let (mut theirs, mut ours) = (Vec::new(), Vec::new());
        for range in doubted.ranges() {
            let len = ((range.end - range.start) * SECTOR) as usize;
            theirs.resize(len, 0);
            ours.resize(len, 0);
            let unread = self
                .reader
                .read_at_with_erasures(&mut theirs, range.start * SECTOR)
                .map_err(|err| Error::Read {
                    at: self.origin.clone(),
                    source: err,
                })?;
            self.out
                .read_at(&mut ours, range.start * SECTOR)
                .map_err(Error::Io)?;
            let sectors = theirs
                .chunks(SECTOR as usize)
                .zip(ours.chunks(SECTOR as usize));
            for (sector, (theirs, ours)) in range.clone().zip(sectors) {
                let at = sector * SECTOR;
                if theirs == ours && !unread.map.intersects(at..at + SECTOR) && within(sector) {
                    unchanged.insert(sector);
                }
            }
        }
        self.applied = self.applied.difference(&unchanged);
        self.repaired = self.repaired.difference(&unchanged);
        Ok(unchanged)
    }

    /// The doubtful sectors not yet erased in the stripes of `failing`,
    /// if their stripes can afford to erase them all and there are any.
    fn spoilers(&self, failing: &SectorSet, erased: &SectorSet) -> Option<SectorSet> {
        let stripes = stripes_of(&self.geometry, failing);
        let left = in_stripes(&self.geometry, &self.doubtful.difference(erased), &stripes);
        let spoilers = affordable(&self.geometry, erased, &left);
        (!spoilers.is_empty()).then_some(spoilers)
    }

    /// The erased sectors of stripes that lost more than m, given each
    /// stripe's count.
    fn lost_in_unrecoverable(&self, lost: &[u16], erased: &SectorSet) -> SectorSet {
        let geometry = &self.geometry;
        let mut sectors = SectorSet::new();
        for (stripe, _) in lost.iter().enumerate().filter(|&(_, &n)| n > geometry.m()) {
            for layer in 0..geometry.layers() {
                let place = Place {
                    stripe: stripe as u32,
                    layer,
                };
                if let Some(sector) = geometry.sector_at(place)
                    && erased.contains(sector)
                {
                    sectors.insert(sector);
                }
            }
        }
        sectors
    }

    /// The first sector of `more` whose stripe is within its margin (or
    /// that is outside the layers).
    fn first_restorable(&self, more: &SectorSet, erased: &SectorSet) -> Option<u64> {
        let lost = lost_per_stripe(&self.geometry, erased);
        more.ranges().flatten().find(|&sector| {
            self.geometry
                .place_of(sector)
                .is_none_or(|place| lost[place.stripe as usize] <= self.geometry.m())
        })
    }

    /// The least run before `first` whose erasure makes `first` check, if
    /// any: doubling, then bisecting.
    fn least_run_before(&mut self, erased: &SectorSet, first: u64) -> Result<Option<u64>, Error> {
        let passes = |state: &mut Self, run: u64| -> Result<Option<bool>, Error> {
            let mut more_erased = erased.clone();
            more_erased.insert_range(first.saturating_sub(run)..first);
            let attempt = state.attempt(&more_erased)?;
            Ok((!attempt.unrecoverable).then(|| !attempt.more.contains(first)))
        };
        let mut high = 1u64;
        while high < first && passes(self, high)? == Some(false) {
            high = high.saturating_mul(2).min(first);
        }
        let mut low = high / 2;
        while low + 1 < high {
            let mid = low + (high - low) / 2;
            match passes(self, mid)? {
                Some(false) => low = mid,
                _ => high = mid,
            }
        }
        Ok((passes(self, high)? == Some(true)).then_some(high))
    }

    /// The report, after the keyless check of the output.
    fn finish(
        mut self,
        erased: &SectorSet,
        last: Attempt,
        best_effort: bool,
    ) -> Result<RepairReport, Error> {
        let geometry = self.geometry;
        let mut lost = lost_per_stripe(&geometry, erased);
        if !best_effort && let Some(err) = first_unrecoverable(&geometry, &lost, &self.origin) {
            return Err(err);
        }
        let mut erased = erased.clone();
        let mut unrecoverable = self.lost_in_unrecoverable(&lost, &erased);
        unrecoverable.extend(&last.more);
        self.out.flush().map_err(Error::Io)?;
        if !best_effort && !unrecoverable.is_empty() {
            // Every stripe within its margin, yet something still fails:
            // the keyless check names it if it is in the data span.
            verify_digests(&self.out.as_source(), threads())?;
            return Err(Error::RepairIncomplete {
                at: self.origin.at_byte(unrecoverable.first() * SECTOR),
                sectors: unrecoverable.len(),
            });
        }
        if unrecoverable.is_empty() {
            // The repaired volume must pass what any keyless reader checks.
            let checked = verify_digests(&self.out.as_source(), threads());
            match checked {
                Ok(_) => {}
                Err(Error::Io(err)) => return Err(Error::Io(err)),
                Err(err) if !best_effort => return Err(err),
                Err(err) => {
                    let at = match &err {
                        Error::DigestMismatch { at, .. } => at.offset.unwrap_or(0) / SECTOR,
                        _ => 0,
                    };
                    unrecoverable.insert(at);
                }
            }
        }
        if unrecoverable.is_empty() {
            // The data span is proved: what no digest proved of the parity
            // follows from it, and the blocks after the layers from both.
            let changed = self.reencode_unproven_parity(&erased)?;
            erased.extend(&changed);
            lost = lost_per_stripe(&geometry, &erased);
            if !changed.is_empty() {
                // The last attempt rebuilt the tail from the parity before.
                let end_lost = erased.contains(geometry.volume_sectors() - 1);
                let rebuilt = rebuild_tail(&mut self.out, &geometry, self.digest_hash, end_lost)
                    .map_err(Error::Io)?;
                self.rebuilt.extend(&rebuilt);
            }
            if !erased.is_empty() || self.check_block_damaged {
                let rebuilt = rebuild_check_block(&mut self.out, &geometry).map_err(Error::Io)?;
                self.rebuilt.extend(&rebuilt);
            }
            self.out.flush().map_err(Error::Io)?;
            if trusted_digest_block(&mut self.out, &geometry, self.digest_hash.as_ref())
                .map_err(Error::Io)?
                .is_none()
                && self.digest_hash.is_some()
            {
                // Parity from proved data, yet not what the end sector
                // recorded: the end sector is not this volume's.
                let block_at = geometry.checked_sectors();
                if !best_effort {
                    return Err(Error::RepairIncomplete {
                        at: self.origin.at_byte(block_at * SECTOR),
                        sectors: geometry.digest_block_sectors(),
                    });
                }
                unrecoverable.insert_range(block_at..block_at + geometry.digest_block_sectors());
            }
        }
        let mut repaired = self.repaired.clone();
        repaired.extend(&self.rebuilt);
        repaired.extend(&erased);
        let map = SectorMap::from_sets(self.out.len() / SECTOR, &repaired, &unrecoverable);
        Ok(RepairReport {
            volume_len: self.out.len(),
            sectors_lost: erased.len(),
            sectors_repaired: map.count(SectorState::Repaired),
            sectors_unrecoverable: map.count(SectorState::Unrecoverable),
            margin: margin(&geometry, &lost),
            map,
        })
    }

    /// Re-encodes, from the proved data span, the parity of every stripe
    /// holding a parity sector that nothing proved (no CRC-32, no trusted
    /// digest group) and that was not restored: such a sector may be
    /// wrong, and the digest block and check block are about to be rebuilt
    /// from the parity. Returns the parity sectors that changed.
    fn reencode_unproven_parity(&mut self, erased: &SectorSet) -> Result<SectorSet, Error> {
        let geometry = self.geometry;
        let parity = geometry.data_sectors()..geometry.checked_sectors();
        let mut unproven = SectorSet::new();
        if !self.parity_judged {
            for run in self.doubtful.overlapping(parity.clone()) {
                unproven.insert_range(run);
            }
        }
        let unproven = unproven.difference(erased);
        if unproven.is_empty() {
            return Ok(unproven);
        }
        let stripes = stripes_of(&geometry, &unproven);
        let mut all_parity = SectorSet::new();
        for stripe in stripes.ranges().flatten() {
            let stripe = u32::try_from(stripe).expect("below L, a u32");
            for sector in (0..geometry.m()).filter_map(|q| geometry.parity_sector(q, stripe)) {
                all_parity.insert(sector);
            }
        }
        let mut before = Vec::new();
        for sector in unproven.ranges().flatten() {
            before.push(sector_crc(&self.out.sector(sector).map_err(Error::Io)?));
        }
        self.restorer
            .restore(&mut self.out, &geometry, &all_parity, &stripes)
            .map_err(Error::Io)?;
        let mut changed = SectorSet::new();
        for (sector, crc) in unproven.ranges().flatten().zip(before) {
            if sector_crc(&self.out.sector(sector).map_err(Error::Io)?) != crc {
                changed.insert(sector);
            }
        }
        self.repaired.extend(&changed);
        Ok(changed)
    }
}

/// Threads for decoding and checking: the machine's.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The worst stripe's lost sectors, given each stripe's count.
fn margin(geometry: &ParityGeometry, lost: &[u16]) -> Margin {
    let (worst_stripe, used) = lost
        .iter()
        .enumerate()
        .max_by_key(|&(stripe, &used)| (used, std::cmp::Reverse(stripe)))
        .map_or((0, 0), |(stripe, &used)| (stripe as u64, used));
    Margin {
        worst_stripe,
        used,
        of: geometry.m(),
    }
}

/// The first stripe that lost more than m sectors, if any.
fn first_unrecoverable(
    geometry: &ParityGeometry,
    lost: &[u16],
    origin: &Location,
) -> Option<Error> {
    lost.iter()
        .position(|&n| n > geometry.m())
        .map(|stripe| Error::Unrecoverable {
            at: origin.at_byte(stripe as u64 * SECTOR),
            stripe: stripe as u64,
            lost: usize::from(lost[stripe]),
            m: geometry.m(),
        })
}
