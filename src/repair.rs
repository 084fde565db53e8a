//! Repairing one volume from its own parity, without any key (SPEC.md
//! §16.10): what is wrong becomes erasures (sectors the source cannot read,
//! chunks whose BLAKE3 entry fails, the header if h_v fails, the records if
//! D fails, parity groups whose digest fails), each stripe is restored from
//! any k of its sectors, and the result is checked again as any keyless
//! reader checks a volume before it is written out.
//!
//! The volume is held in memory while it is repaired: one volume (a disc's
//! worth at most), its length the source's own, never a length read from it.

use std::collections::BTreeSet;
use std::io::{self, Write};

use crate::chunk_digest::{DIGEST_LEN, chunk_cv, header_digest};
use crate::error::{Error, Location, Volume};
use crate::format::{MAX_CHUNK_EXP, MAX_HEADER_LEN, MIN_CHUNK_EXP, SECTOR, SET_FLAG_PARITY};
use crate::header::read_header;
use crate::parity::codec::BATCH_STRIPES;
use crate::parity::geometry::DIGEST_GROUP_SECTORS;
use crate::parity::{ParityError, ParityGeometry, restore};
use crate::retrying_source::RetryingSource;
use crate::trailer::{END_RECORD_LEN, PARITY_END_RECORD_LEN, TRAILER_MAGIC};
use crate::verify::verify_digests;
use crate::volumes::{VolumeSource, location};

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

/// What [`repair_volume`] found and did.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// The volume's length in bytes, as written out.
    pub volume_len: u64,
    /// Sectors lost: unreadable, or proved wrong by a digest.
    pub sectors_lost: u64,
    /// Sectors rewritten from parity (lost sectors outside the layers, in
    /// the digest block or end sector, are rebuilt without it).
    pub sectors_repaired: u64,
    /// Sectors that could not be repaired: 0 when a report is returned.
    pub sectors_unrecoverable: u64,
    /// The worst stripe's use of its parity.
    pub margin: Margin,
}

impl RepairReport {
    /// Whether the volume was intact: nothing lost, nothing rewritten.
    pub fn was_intact(&self) -> bool {
        self.sectors_lost == 0
    }
}

/// Repairs the volume `source` from its own parity and writes the whole
/// repaired volume, byte-identical to what was sealed, to `out`. No key is
/// needed: a custodian can refresh ageing discs without reading them.
/// Unreadable sectors of `source` are read around ([`RetryingSource`]).
///
/// # Errors
///
/// [`Error::NoParity`] if the volume carries no parity geometry that fits
/// its length; [`Error::Unrecoverable`] naming the first stripe that lost
/// more than m sectors; the keyless check's errors ([`verify_digests`]) if
/// the repaired volume still fails it; [`Error::Read`] for a source that
/// fails as a whole; [`Error::Io`] writing `out`. Nothing is written to
/// `out` unless the repaired volume passed the check.
pub fn repair_volume<S: VolumeSource + ?Sized, W: Write + ?Sized>(
    source: &S,
    out: &mut W,
) -> Result<RepairReport, Error> {
    let origin = location(source, Volume::Input(1));
    let (volume, lost) = read_through(source, &origin)?;
    let (geometry, digest_hash) =
        find_geometry(&volume, &lost).ok_or_else(|| Error::NoParity { at: origin.clone() })?;
    let data_len = (geometry.data_sectors() * SECTOR) as usize;
    let parity_len = (geometry.parity_sectors() * SECTOR) as usize;
    let mut erased: BTreeSet<u64> = lost.clone();
    erased.extend(bad_parity_groups(
        &geometry,
        &volume,
        digest_hash.as_ref(),
        &lost,
    ));
    if digest_hash.is_none() {
        // The end sector did not give the geometry: it is rebuilt.
        erased.insert(geometry.volume_sectors() - 1);
    }
    let attempt = |erased: &BTreeSet<u64>| -> Result<(Vec<u8>, BTreeSet<u64>, u64), Error> {
        let mut work = volume.clone();
        zero_erased(&mut work, erased);
        let (data, rest) = work.split_at_mut(data_len);
        let list: Vec<u64> = erased.iter().copied().collect();
        let restored = restore(
            &geometry,
            data,
            &mut rest[..parity_len],
            &list,
            BATCH_STRIPES,
        )
        .map_err(|err| unrecoverable(err, &geometry, &origin))?;
        rebuild_tail(&geometry, &mut work, digest_hash, erased);
        let mut more = still_wrong(&work, &geometry);
        // Restored parity must match its digests: a group that still does
        // not held a wrong sector besides the lost ones.
        more.extend(bad_parity_groups(
            &geometry,
            &work,
            digest_hash.as_ref(),
            &BTreeSet::new(),
        ));
        Ok((work, more, restored))
    };
    let mut repaired_from_parity = 0;
    let mut repaired = volume.clone();
    for _ in 0..MAX_ROUNDS {
        let (work, more, restored) = attempt(&erased)?;
        repaired = work;
        repaired_from_parity = restored;
        match more.first() {
            None => break,
            Some(&first) if more.is_subset(&erased) => {
                // Restored from sectors that are wrong but that nothing
                // could judge (the records were lost, so the chunks before
                // them could not be checked): a burst runs on before what
                // failed. Find the least run before it whose erasure makes
                // it check, by doubling, then bisecting.
                let passes = |x: u64| -> Option<bool> {
                    let mut more_erased = erased.clone();
                    more_erased.extend(first.saturating_sub(x)..first);
                    match attempt(&more_erased) {
                        Ok((_, still, _)) => Some(!still.contains(&first)),
                        Err(_) => None,
                    }
                };
                let mut high = 1u64;
                while high < first && passes(high) == Some(false) {
                    high = high.saturating_mul(2).min(first);
                }
                let mut low = high / 2;
                while low + 1 < high {
                    let mid = low + (high - low) / 2;
                    match passes(mid) {
                        Some(true) => high = mid,
                        _ if passes(mid).is_none() => high = mid,
                        _ => low = mid,
                    }
                }
                if passes(high) != Some(true) {
                    break;
                }
                erased.extend(first.saturating_sub(high)..first);
            }
            Some(_) => erased.extend(more),
        }
    }
    let volume = repaired;
    // The repaired volume must pass what any keyless reader checks.
    verify_digests(volume.as_slice(), 1).map_err(|err| match err {
        Error::DigestMismatch { .. }
        | Error::MalformedTrailer { .. }
        | Error::MalformedHeader { .. } => {
            first_unrecoverable(&geometry, &erased, &origin).unwrap_or(err)
        }
        other => other,
    })?;
    out.write_all(&volume).map_err(Error::Io)?;
    Ok(RepairReport {
        volume_len: volume.len() as u64,
        sectors_lost: erased.len() as u64,
        sectors_repaired: repaired_from_parity,
        sectors_unrecoverable: 0,
        margin: margin(&geometry, &erased),
    })
}

/// Reads the whole volume through unreadable sectors: the bytes (zeros
/// where unreadable) and the sectors lost.
fn read_through<S: VolumeSource + ?Sized>(
    source: &S,
    origin: &Location,
) -> Result<(Vec<u8>, BTreeSet<u64>), Error> {
    let read_error = |source: io::Error| Error::Read {
        at: origin.clone(),
        source,
    };
    let len = source.size().map_err(read_error)?;
    let len_usize = usize::try_from(len)
        .map_err(|_| read_error(io::Error::other("a volume longer than memory")))?;
    let mut volume = vec![0u8; len_usize];
    let reader = RetryingSource::new(source);
    let mut lost = BTreeSet::new();
    const PIECE: usize = 4 << 20;
    for (index, piece) in volume.chunks_mut(PIECE).enumerate() {
        let at = (index * PIECE) as u64;
        let erasures = reader
            .read_at_with_erasures(piece, at)
            .map_err(read_error)?;
        for range in erasures.map.ranges() {
            lost.extend(range.start / SECTOR..range.end.div_ceil(SECTOR));
        }
    }
    Ok((volume, lost))
}

/// The geometry and digest-block hash from the end sector if it is whole
/// and fits the length; else from the header's p and the length alone
/// (SPEC.md §16.8), without a digest-block hash.
fn find_geometry(
    volume: &[u8],
    lost: &BTreeSet<u64>,
) -> Option<(ParityGeometry, Option<[u8; DIGEST_LEN]>)> {
    let len = volume.len() as u64;
    if len < 2 * SECTOR || !len.is_multiple_of(SECTOR) {
        return None;
    }
    let last = len / SECTOR - 1;
    let end = &volume[(last * SECTOR) as usize..];
    let from_end = (!lost.contains(&last) && end[..8] == TRAILER_MAGIC)
        .then(|| ParityGeometry::from_body(&end[END_RECORD_LEN..PARITY_END_RECORD_LEN]).ok())
        .flatten()
        .filter(|(geometry, _)| geometry.volume_sectors() == len / SECTOR);
    if let Some((geometry, hash)) = from_end {
        return Some((geometry, Some(hash)));
    }
    let percent = header_percent(volume, lost)?;
    ParityGeometry::for_volume_len(len, percent)
        .ok()?
        .into_iter()
        .next()
        .map(|geometry| (geometry, None))
}

/// The header's p, if its first sector is readable and says PARITY. The
/// set part's fixed fields come first; p follows the stanzas and signer
/// block, which [`read_header`] walks.
fn header_percent(volume: &[u8], lost: &BTreeSet<u64>) -> Option<u16> {
    if lost.contains(&0) || volume.len() < 16 {
        return None;
    }
    if u16::from_be_bytes([volume[14], volume[15]]) & SET_FLAG_PARITY == 0 {
        return None;
    }
    let (header, _) = read_header(volume, 1).ok()?;
    header.set.parity
}

/// The sectors of parity groups whose BLAKE3 differs from the digest
/// block's, if the digest block itself matches the end record's hash.
/// Groups holding `lost` sectors are judged once those are restored.
fn bad_parity_groups(
    geometry: &ParityGeometry,
    volume: &[u8],
    digest_hash: Option<&[u8; DIGEST_LEN]>,
    lost: &BTreeSet<u64>,
) -> Vec<u64> {
    let Some(hash) = digest_hash else {
        return Vec::new();
    };
    let parity_at = (geometry.data_sectors() * SECTOR) as usize;
    let parity_len = (geometry.parity_sectors() * SECTOR) as usize;
    let block_at = parity_at + parity_len;
    let block = &volume[block_at..block_at + geometry.digest_block_len() as usize];
    if blake3::hash(block).as_bytes() != hash {
        return Vec::new();
    }
    let parity = &volume[parity_at..block_at];
    let group_len = (DIGEST_GROUP_SECTORS * SECTOR) as usize;
    let mut bad = Vec::new();
    for (group, bytes) in parity.chunks(group_len).enumerate() {
        let recorded = &block[group * DIGEST_LEN..(group + 1) * DIGEST_LEN];
        let first = geometry.data_sectors() + group as u64 * DIGEST_GROUP_SECTORS;
        let sectors = first..first + bytes.len() as u64 / SECTOR;
        if lost.range(sectors.clone()).next().is_none()
            && blake3::hash(bytes).as_bytes() != recorded
        {
            bad.extend(sectors);
        }
    }
    bad
}

fn zero_erased(volume: &mut [u8], erased: &BTreeSet<u64>) {
    for &sector in erased {
        let at = (sector * SECTOR) as usize;
        if let Some(bytes) = volume.get_mut(at..at + SECTOR as usize) {
            bytes.fill(0);
        }
    }
}

/// Rebuilds the sectors after the layers from the restored volume: the
/// parity digest block from the parity, and the end sector from the
/// records' head, their digest and the geometry body (SPEC.md §13.2,
/// §16.11). Both are functions of what the layers hold.
fn rebuild_tail(
    geometry: &ParityGeometry,
    volume: &mut [u8],
    digest_hash: Option<[u8; DIGEST_LEN]>,
    erased: &BTreeSet<u64>,
) {
    let data_len = (geometry.data_sectors() * SECTOR) as usize;
    let parity_len = (geometry.parity_sectors() * SECTOR) as usize;
    let block_at = data_len + parity_len;
    let block_len = geometry.digest_block_len() as usize;
    let recorded_ok = digest_hash.is_some_and(|hash| {
        blake3::hash(&volume[block_at..block_at + block_len]).as_bytes() == &hash
    });
    if !recorded_ok {
        let block = geometry.digest_block(&volume[data_len..block_at]);
        volume[block_at..block_at + block_len].copy_from_slice(&block);
    }
    let hash = *blake3::hash(&volume[block_at..block_at + block_len]).as_bytes();
    if !erased.contains(&(geometry.volume_sectors() - 1)) {
        // The end sector is whole: it is the reference the records and
        // the parity are checked against, never rewritten.
        return;
    }
    // The records' head: the last sector of the data span that starts
    // with the trailer magic and whose M ends inside the data span.
    let head_at = (0..geometry.data_sectors())
        .rev()
        .map(|s| (s * SECTOR) as usize)
        .find(|&at| volume[at..at + 8] == TRAILER_MAGIC);
    let Some(head_at) = head_at else {
        return;
    };
    let region_len = u64::from_be_bytes(volume[head_at + 56..head_at + 64].try_into().expect("8"));
    let Some(region_end) = (head_at as u64).checked_add(region_len) else {
        return;
    };
    if region_end > data_len as u64 || region_len < 72 {
        return;
    }
    let mut end = vec![0u8; SECTOR as usize];
    end[..72].copy_from_slice(&volume[head_at..head_at + 72]);
    end[72..END_RECORD_LEN]
        .copy_from_slice(blake3::hash(&volume[head_at..region_end as usize]).as_bytes());
    end[END_RECORD_LEN..PARITY_END_RECORD_LEN].copy_from_slice(&geometry.to_body(&hash));
    let end_at = volume.len() - SECTOR as usize;
    volume[end_at..].copy_from_slice(&end);
}

/// The sectors that a restored volume still gets wrong, found from the
/// end record and the records alone (the header may be what is lost): the
/// records region if it fails D (then nothing else can be judged yet), a
/// nonzero sector where the trailer has zeros, the header if h_v fails, and
/// each chunk whose entry fails.
fn still_wrong(volume: &[u8], geometry: &ParityGeometry) -> BTreeSet<u64> {
    let mut wrong = BTreeSet::new();
    let sectors_of = |start: u64, end: u64| start / SECTOR..end.div_ceil(SECTOR);
    let data_end = geometry.data_sectors() * SECTOR;
    let end = &volume[volume.len() - SECTOR as usize..];
    let be = |bytes: &[u8], at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8"));
    let (chunk_end, region_len) = (be(end, 48), be(end, 56));
    let records_at = chunk_end.div_ceil(SECTOR) * SECTOR;
    let region_end = records_at.saturating_add(region_len);
    let table_at = records_at + 72;
    if chunk_end < SECTOR || region_len < 72 + 8 + 40 || region_end > data_end {
        // The end record itself does not fit: nothing to judge against.
        return wrong;
    }
    let region = &volume[records_at as usize..region_end as usize];
    if region[..72] != end[..72] || blake3::hash(region).as_bytes()[..] != end[72..END_RECORD_LEN] {
        wrong.extend(sectors_of(records_at, data_end));
        return wrong;
    }
    for (start, stop) in [(chunk_end, records_at), (region_end, data_end)] {
        for sector in sectors_of(start, stop) {
            let from = (sector * SECTOR).max(start) as usize;
            let to = ((sector + 1) * SECTOR).min(stop) as usize;
            if volume[from..to].iter().any(|&b| b != 0) {
                wrong.insert(sector);
            }
        }
    }
    let table = &volume[table_at as usize..region_end as usize];
    let chunks = be(table, 8);
    let entries_at = 8 + 8 + DIGEST_LEN;
    let Some(entries_len) = chunks.checked_mul(DIGEST_LEN as u64) else {
        return wrong;
    };
    if chunks == 0 || (table.len() as u64) < entries_at as u64 + entries_len {
        return wrong;
    }
    let h_v: [u8; DIGEST_LEN] = table[16..16 + DIGEST_LEN].try_into().expect("32");
    let entry = |j: u64| &table[entries_at + j as usize * DIGEST_LEN..][..DIGEST_LEN];
    let Some((data_offset, chunk_len)) = chunk_layout(volume, chunk_end, chunks, &entry) else {
        // No layout fits any chunk: the header and the chunks are all
        // suspect; the header first.
        wrong.insert(0);
        return wrong;
    };
    if header_digest(&volume[..data_offset as usize]) != h_v {
        wrong.extend(sectors_of(0, data_offset));
    }
    for index in 0..chunks {
        let start = data_offset + index * chunk_len;
        let stop = (start + chunk_len).min(chunk_end);
        let cv = chunk_cv(
            index,
            chunk_len as usize,
            &volume[start as usize..stop as usize],
        );
        if cv[..] != *entry(index) {
            wrong.extend(sectors_of(start, stop));
        }
    }
    wrong
}

/// H_v and C: the header's if it parses, else the (H_v, C) for which some
/// of the last chunks match their entries. H_v is a whole number of
/// sectors, and the k chunks of C bytes end at E, the last one 1 to C
/// bytes long.
fn chunk_layout<'a>(
    volume: &[u8],
    chunk_end: u64,
    chunks: u64,
    entry: &dyn Fn(u64) -> &'a [u8],
) -> Option<(u64, u64)> {
    let matches = |data_offset: u64, chunk_len: u64| {
        (chunks.saturating_sub(8)..chunks).any(|j| {
            let Some(start) = j
                .checked_mul(chunk_len)
                .and_then(|at| at.checked_add(data_offset))
            else {
                return false;
            };
            let stop = start.saturating_add(chunk_len).min(chunk_end);
            start < stop
                && chunk_cv(
                    j,
                    chunk_len as usize,
                    &volume[start as usize..stop as usize],
                )[..]
                    == *entry(j)
        })
    };
    if let Ok((header, _)) = read_header(volume, 1) {
        let geometry = header.geometry();
        let layout = (geometry.data_offset, geometry.chunk_len() as u64);
        if matches(layout.0, layout.1) {
            return Some(layout);
        }
    }
    for exp in MIN_CHUNK_EXP..=MAX_CHUNK_EXP {
        let chunk_len = 1u64 << exp;
        let Some(full) = (chunks - 1).checked_mul(chunk_len) else {
            break;
        };
        // E − H_v ∈ ((k−1)·C, k·C].
        let Some(highest) = chunk_end.checked_sub(full + 1) else {
            break;
        };
        let lowest = chunk_end.saturating_sub(full + chunk_len).max(SECTOR);
        let mut data_offset = lowest.div_ceil(SECTOR) * SECTOR;
        while data_offset <= highest && data_offset <= u64::from(MAX_HEADER_LEN) + SECTOR {
            if matches(data_offset, chunk_len) {
                return Some((data_offset, chunk_len));
            }
            data_offset += SECTOR;
        }
    }
    None
}

/// The worst stripe's lost sectors among `erased`.
fn margin(geometry: &ParityGeometry, erased: &BTreeSet<u64>) -> Margin {
    let mut per_stripe = std::collections::BTreeMap::<u32, u16>::new();
    for place in erased.iter().filter_map(|&s| geometry.place_of(s)) {
        *per_stripe.entry(place.stripe).or_default() += 1;
    }
    let (worst_stripe, used) = per_stripe
        .iter()
        .max_by_key(|&(&stripe, &used)| (used, std::cmp::Reverse(stripe)))
        .map_or((0, 0), |(&stripe, &used)| (u64::from(stripe), used));
    Margin {
        worst_stripe,
        used,
        of: geometry.m(),
    }
}

/// The codec's refusal as [`Error::Unrecoverable`], at the stripe's first
/// sector.
fn unrecoverable(err: ParityError, geometry: &ParityGeometry, origin: &Location) -> Error {
    match err {
        ParityError::Unrecoverable { stripe, lost, m } => Error::Unrecoverable {
            at: origin.at_byte(stripe * SECTOR),
            stripe,
            lost,
            m,
        },
        other => {
            let _ = geometry;
            Error::Io(io::Error::other(other.to_string()))
        }
    }
}

/// The first stripe that lost more than m sectors, if any.
fn first_unrecoverable(
    geometry: &ParityGeometry,
    erased: &BTreeSet<u64>,
    origin: &Location,
) -> Option<Error> {
    let mut per_stripe = std::collections::BTreeMap::<u32, usize>::new();
    for place in erased.iter().filter_map(|&s| geometry.place_of(s)) {
        *per_stripe.entry(place.stripe).or_default() += 1;
    }
    per_stripe
        .into_iter()
        .find(|&(_, lost)| lost > usize::from(geometry.m()))
        .map(|(stripe, lost)| Error::Unrecoverable {
            at: origin.at_byte(u64::from(stripe) * SECTOR),
            stripe: u64::from(stripe),
            lost,
            m: geometry.m(),
        })
}
