//! Finding what a damaged volume is made of without trusting any one
//! copy: its parity geometry (end sector, else header p and length,
//! SPEC.md §16.8) and its chunk layout H_v and C (header, else the last
//! chunks' entries).

use std::io::{Read, Seek, Write};

use crate::chunk_digest::{DIGEST_LEN, chunk_cv};
use crate::format::{MAX_CHUNK_EXP, MAX_HEADER_LEN, MIN_CHUNK_EXP, SECTOR, SET_FLAG_PARITY};
use crate::header::read_header;
use crate::parity::ParityGeometry;
use crate::repair::geometry_trial::geometry_by_trial;
use crate::repair::out::Out;
use crate::repair::sector_set::SectorSet;
use crate::trailer::{END_RECORD_LEN, PARITY_END_RECORD_LEN, TRAILER_MAGIC};

/// The geometry and digest-block hash from the end sector if it is whole
/// and fits the length; else from the header's p and the length alone
/// (SPEC.md §16.8), without a digest-block hash; else, both lost, the
/// geometry of that length under which a stripe checks.
pub(crate) fn find_geometry<W: Read + Write + Seek + ?Sized>(
    out: &mut Out<'_, W>,
    lost: &SectorSet,
) -> Option<(ParityGeometry, Option<[u8; DIGEST_LEN]>)> {
    let len = out.len();
    if len < 2 * SECTOR || !len.is_multiple_of(SECTOR) {
        return None;
    }
    let last = len / SECTOR - 1;
    let end = out.sector(last).ok()?;
    let from_end = (!lost.contains(last) && end[..8] == TRAILER_MAGIC)
        .then(|| ParityGeometry::from_body(&end[END_RECORD_LEN..PARITY_END_RECORD_LEN]).ok())
        .flatten()
        .filter(|(geometry, _)| geometry.volume_sectors() == len / SECTOR);
    if let Some((geometry, hash)) = from_end {
        return Some((geometry, Some(hash)));
    }
    let from_header = header_percent(out, lost)
        .and_then(|percent| ParityGeometry::for_volume_len(len, percent).ok())
        .and_then(|geometries| geometries.into_iter().next());
    from_header
        .or_else(|| geometry_by_trial(out, lost))
        .map(|geometry| (geometry, None))
}

/// The header's p, if its first sector is readable and says PARITY. The
/// set part's fixed fields come first; p follows the stanzas and signer
/// block, which [`read_header`] walks.
fn header_percent<W: Read + Write + Seek + ?Sized>(
    out: &mut Out<'_, W>,
    lost: &SectorSet,
) -> Option<u16> {
    if lost.contains(0) {
        return None;
    }
    let first = out.sector(0).ok()?;
    if u16::from_be_bytes([first[14], first[15]]) & SET_FLAG_PARITY == 0 {
        return None;
    }
    let (header, _) = read_header(&out.as_source(), 1).ok()?;
    header.set.parity
}

/// Chunks spread over the volume that [`chunk_layout`] tries after the
/// last eight.
const SPREAD_CHUNKS: u64 = 24;

/// H_v and C: the header's if it parses, else the (H_v, C) for which one
/// of the last chunks, or of some spread over the rest, matches its entry. H_v is a whole number of
/// sectors, and the k chunks of C bytes end at E, the last one 1 to C
/// bytes long.
pub(crate) fn chunk_layout<W: Read + Write + Seek + ?Sized>(
    out: &mut Out<'_, W>,
    chunk_end: u64,
    chunks: u64,
    entry: &dyn Fn(u64) -> Option<[u8; DIGEST_LEN]>,
) -> Option<(u64, u64)> {
    let mut buf = Vec::new();
    // The last chunks, then some spread over the rest: under dense damage
    // some may still be wrong where they were restored.
    let spread = (0..SPREAD_CHUNKS).map(|i| i * chunks / SPREAD_CHUNKS);
    let probes: Vec<u64> = (chunks.saturating_sub(8)..chunks)
        .rev()
        .chain(spread)
        .collect();
    let mut matches = |out: &mut Out<'_, W>, data_offset: u64, chunk_len: u64| {
        probes.iter().any(|&j| {
            let Some(recorded) = entry(j) else {
                return false;
            };
            let Some(start) = j
                .checked_mul(chunk_len)
                .and_then(|at| at.checked_add(data_offset))
            else {
                return false;
            };
            let stop = start.saturating_add(chunk_len).min(chunk_end);
            if start >= stop {
                return false;
            }
            buf.resize((stop - start) as usize, 0);
            out.read_at(&mut buf, start).is_ok()
                && chunk_cv(j, chunk_len as usize, &buf) == recorded
        })
    };
    let from_header = read_header(&out.as_source(), 1)
        .ok()
        .map(|(header, _)| header.geometry());
    if let Some(geometry) = from_header {
        let layout = (geometry.data_offset, geometry.chunk_len() as u64);
        if layout.0 < chunk_end && matches(out, layout.0, layout.1) {
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
            if matches(out, data_offset, chunk_len) {
                return Some((data_offset, chunk_len));
            }
            data_offset += SECTOR;
        }
    }
    None
}
