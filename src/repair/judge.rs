//! Deciding which sectors of the output are wrong, from the keyless
//! digests alone (the header may be what is lost): the records region
//! against the end record's D, the trailer's zero runs, the header against
//! h_v, each chunk against its entry, and each parity group against the
//! parity digest block. Everything streams from the output in pieces; only
//! the records region and the digest block are held whole.

use std::io::{self, Read, Seek, Write};

use crate::chunk_digest::{DIGEST_LEN, chunk_cv, header_digest};
use crate::format::SECTOR;
use crate::parity::ParityGeometry;
use crate::parity::geometry::DIGEST_GROUP_SECTORS;
use crate::repair::layout::chunk_layout;
use crate::repair::out::{Out, PIECE};
use crate::repair::sector_set::SectorSet;
use crate::trailer::END_RECORD_LEN;

/// The least records region: head (72), table count and h_v fields (8 +
/// 40).
const MIN_REGION_LEN: u64 = 72 + 8 + 40;

/// The records region held in memory: at most its chunk table for the
/// smallest chunks (32 bytes per 4 KiB, 1/128 of the data span) and 1 MiB
/// of other records. A longer one is not a region this repair trusts.
fn region_cap(data_end: u64) -> u64 {
    data_end / 128 + (1 << 20)
}

fn be(bytes: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

fn sectors_of(start: u64, end: u64) -> std::ops::Range<u64> {
    start / SECTOR..end.div_ceil(SECTOR)
}

/// Names in `wrong` the sectors of a failing `sectors` that the first of
/// `suspects` to hold some of them holds, or all of them if none does.
fn blame(wrong: &mut SectorSet, sectors: std::ops::Range<u64>, suspects: &[&SectorSet]) {
    match suspects.iter().find(|set| set.intersects(sectors.clone())) {
        Some(set) => {
            for run in set.overlapping(sectors) {
                wrong.insert_range(run);
            }
        }
        None => wrong.insert_range(sectors),
    }
}

/// The records region `[records_at, region_end)` that the end sector
/// `end` describes, if it fits the data span and the cap.
pub(crate) fn region_bounds(end: &[u8], data_end: u64) -> Option<(u64, u64, u64)> {
    let (chunk_end, region_len) = (be(end, 48), be(end, 56));
    let records_at = chunk_end.div_ceil(SECTOR) * SECTOR;
    let region_end = records_at.checked_add(region_len)?;
    (chunk_end >= SECTOR
        && region_len >= MIN_REGION_LEN
        && region_end <= data_end
        && region_len <= region_cap(data_end))
    .then_some((chunk_end, records_at, region_end))
}

/// The sectors that the output still gets wrong, found from the end record
/// and the records alone: the records region if it fails D (then nothing
/// else can be judged yet), a nonzero sector where the trailer has zeros,
/// the header if h_v fails, and each chunk whose entry fails.
///
/// A failure is blamed on the fewest sectors that can explain it. Sectors
/// in `unknown` (lost for good) make it say nothing about the rest of
/// their chunk, header or region: only they are named there, so one
/// unrecoverable sector never spreads to its correct neighbours. Else, if
/// some of its sectors are `doubtful` (no CRC-32 proved them right), only
/// those are named: the others are right, and a failure there comes from
/// a doubtful sector, or from a stripe a doubtful sector spoiled. Only a
/// failure with neither names all of its sectors.
pub(crate) fn still_wrong<W: Read + Write + Seek + ?Sized>(
    out: &mut Out<'_, W>,
    geometry: &ParityGeometry,
    unknown: &SectorSet,
    doubtful: &SectorSet,
) -> io::Result<SectorSet> {
    let mut wrong = SectorSet::new();
    let fails = |wrong: &mut SectorSet, sectors: std::ops::Range<u64>| {
        blame(wrong, sectors, &[unknown, doubtful]);
    };
    let data_end = geometry.data_sectors() * SECTOR;
    let end = out.sector(out.len() / SECTOR - 1)?;
    let Some((chunk_end, records_at, region_end)) = region_bounds(&end, data_end) else {
        // The end record itself does not fit: nothing to judge against.
        return Ok(wrong);
    };
    let mut region = vec![0u8; (region_end - records_at) as usize];
    out.read_at(&mut region, records_at)?;
    let region_whole = region[..72] == end[..72]
        && blake3::hash(&region).as_bytes()[..] == end[72..END_RECORD_LEN];
    if !region_whole {
        fails(&mut wrong, sectors_of(records_at, data_end));
    }
    // With D failing, the records in sectors a CRC-32 proved right are
    // still the sealer's: they judge what they can, to find the sectors
    // that spoil the region's restoring. (Only blame follows from them;
    // the repaired volume must still pass D.)
    let trusted = |start: usize, len: usize| {
        region_whole || {
            let first = records_at + start as u64;
            !doubtful.intersects(sectors_of(first, first + len as u64))
        }
    };
    let mut buf = Vec::new();
    for (start, stop) in [(chunk_end, records_at), (region_end, data_end)] {
        let first = start / SECTOR * SECTOR;
        out.for_each_piece(
            first,
            stop.div_ceil(SECTOR) * SECTOR,
            PIECE,
            &mut buf,
            |at, bytes| {
                for (index, sector) in bytes.chunks(SECTOR as usize).enumerate() {
                    let sector_at = at + (index as u64) * SECTOR;
                    let from = start.saturating_sub(sector_at).min(SECTOR) as usize;
                    let to = (stop - sector_at.min(stop)).min(SECTOR) as usize;
                    if from < to && sector[from..to].iter().any(|&b| b != 0) {
                        wrong.insert(sector_at / SECTOR);
                    }
                }
            },
        )?;
    }
    let table = &region[72..];
    let entries_at = 8 + 8 + DIGEST_LEN;
    // The count is taken even when its sector is in doubt: a wrong one
    // fits no layout of the entries that are trusted.
    let chunks = be(table, 8);
    let Some(entries_len) = chunks.checked_mul(DIGEST_LEN as u64) else {
        return Ok(wrong);
    };
    if chunks == 0 || (table.len() as u64) < entries_at as u64 + entries_len {
        return Ok(wrong);
    }
    let h_v: [u8; DIGEST_LEN] = table[16..16 + DIGEST_LEN].try_into().expect("32 bytes");
    let entry = |j: u64| -> Option<[u8; DIGEST_LEN]> {
        let at = entries_at + j as usize * DIGEST_LEN;
        trusted(72 + at, DIGEST_LEN)
            .then(|| table[at..at + DIGEST_LEN].try_into().expect("32 bytes"))
    };
    let Some((data_offset, chunk_len)) = chunk_layout(out, chunk_end, chunks, &entry) else {
        // No layout fits any chunk: the header and the chunks are all
        // suspect; the header first (unless the records are what fails).
        if region_whole {
            wrong.insert(0);
        }
        return Ok(wrong);
    };
    if trusted(72 + 16, DIGEST_LEN) {
        let mut header = vec![0u8; data_offset as usize];
        out.read_at(&mut header, 0)?;
        if header_digest(&header) != h_v {
            fails(&mut wrong, sectors_of(0, data_offset));
        }
    }
    // Pieces of whole chunks: at least one chunk, about PIECE bytes.
    let per_piece = (PIECE as u64 / chunk_len).max(1);
    let piece = (per_piece * chunk_len) as usize;
    let chunks_end = (data_offset + chunks * chunk_len).min(chunk_end);
    out.for_each_piece(data_offset, chunks_end, piece, &mut buf, |at, bytes| {
        for (offset, chunk) in bytes.chunks(chunk_len as usize).enumerate() {
            let start = at + offset as u64 * chunk_len;
            let index = (start - data_offset) / chunk_len;
            let Some(recorded) = entry(index) else {
                continue;
            };
            if chunk_cv(index, chunk_len as usize, chunk) != recorded {
                fails(&mut wrong, sectors_of(start, start + chunk.len() as u64));
            }
        }
    })?;
    Ok(wrong)
}

/// The parity digest block, if it matches the end record's hash.
pub(crate) fn trusted_digest_block<W: Read + Write + Seek + ?Sized>(
    out: &mut Out<'_, W>,
    geometry: &ParityGeometry,
    digest_hash: Option<&[u8; DIGEST_LEN]>,
) -> io::Result<Option<Vec<u8>>> {
    let Some(hash) = digest_hash else {
        return Ok(None);
    };
    let block_at = (geometry.data_sectors() + geometry.parity_sectors()) * SECTOR;
    let mut block = vec![0u8; geometry.digest_block_len() as usize];
    out.read_at(&mut block, block_at)?;
    Ok((blake3::hash(&block).as_bytes() == hash).then_some(block))
}

/// The sectors of parity groups whose BLAKE3 differs from the digest
/// block's, if the digest block itself matches the end record's hash.
/// Groups holding `lost` sectors are judged once those are restored; of a
/// failing group holding `doubtful` sectors, only those are named (as
/// [`still_wrong`] blames them).
pub(crate) fn bad_parity_groups<W: Read + Write + Seek + ?Sized>(
    out: &mut Out<'_, W>,
    geometry: &ParityGeometry,
    digest_hash: Option<&[u8; DIGEST_LEN]>,
    lost: &SectorSet,
    doubtful: &SectorSet,
) -> io::Result<SectorSet> {
    let mut bad = SectorSet::new();
    let Some(block) = trusted_digest_block(out, geometry, digest_hash)? else {
        return Ok(bad);
    };
    let parity_first = geometry.data_sectors();
    let parity_end = parity_first + geometry.parity_sectors();
    let group_len = DIGEST_GROUP_SECTORS * SECTOR;
    let piece = (PIECE as u64 / group_len * group_len) as usize;
    let mut buf = Vec::new();
    out.for_each_piece(
        parity_first * SECTOR,
        parity_end * SECTOR,
        piece,
        &mut buf,
        |at, bytes| {
            for (offset, group_bytes) in bytes.chunks(group_len as usize).enumerate() {
                let first = at / SECTOR + offset as u64 * DIGEST_GROUP_SECTORS;
                let group = ((first - parity_first) / DIGEST_GROUP_SECTORS) as usize;
                let sectors = first..first + group_bytes.len() as u64 / SECTOR;
                let recorded = &block[group * DIGEST_LEN..(group + 1) * DIGEST_LEN];
                if !lost.intersects(sectors.clone())
                    && blake3::hash(group_bytes).as_bytes() != recorded
                {
                    blame(&mut bad, sectors, &[doubtful]);
                }
            }
        },
    )?;
    Ok(bad)
}
