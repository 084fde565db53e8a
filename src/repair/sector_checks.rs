//! Judging sectors one by one against the check block (SPEC.md §16.13),
//! before any chunk digest is needed, and rebuilding the check block from
//! the repaired volume. A check-block sector that is unreadable or fails
//! its own CRC-32 says nothing: its sectors are left to the chunk digests.

use std::io::{self, Read, Seek, Write};

use crate::format::SECTOR;
use crate::parity::{
    CHECKS_PER_SECTOR, ParityGeometry, SectorChecks, parse_check_sector, sector_crc,
};
use crate::repair::out::{Out, PIECE};
use crate::repair::sector_set::SectorSet;

/// What the check block said.
pub(crate) struct CrcJudgement {
    /// Covered sectors whose CRC-32 differs from their entry.
    pub(crate) wrong: SectorSet,
    /// Covered sectors whose check-block sector was unreadable or failed
    /// its own CRC-32: nothing judged them.
    pub(crate) unjudged: SectorSet,
}

impl CrcJudgement {
    /// Whether some check-block sector was damaged (so the block must be
    /// rebuilt).
    pub(crate) fn block_damaged(&self) -> bool {
        !self.unjudged.is_empty()
    }
}

/// Compares every covered sector outside `lost` with its entry, one
/// check-block sector (511 covered sectors, about 1 MiB) at a time.
pub(crate) fn crc_judge<W: Read + Write + Seek + ?Sized>(
    out: &mut Out<'_, W>,
    geometry: &ParityGeometry,
    lost: &SectorSet,
) -> io::Result<CrcJudgement> {
    let covered = geometry.checked_sectors();
    let first_check = geometry.check_block_start();
    let mut judgement = CrcJudgement {
        wrong: SectorSet::new(),
        unjudged: SectorSet::new(),
    };
    let mut run = Vec::new();
    for index in 0..geometry.check_block_sectors() {
        let check = first_check + index;
        let entries = (!lost.contains(check))
            .then(|| out.sector(check))
            .transpose()?
            .and_then(|bytes| parse_check_sector(&bytes));
        let start = index * CHECKS_PER_SECTOR;
        let end = (start + CHECKS_PER_SECTOR).min(covered);
        let Some(entries) = entries else {
            judgement.unjudged.insert_range(start..end);
            continue;
        };
        run.resize(((end - start) * SECTOR) as usize, 0);
        out.read_at(&mut run, start * SECTOR)?;
        for (offset, bytes) in run.chunks_exact(SECTOR as usize).enumerate() {
            let sector = start + offset as u64;
            if !lost.contains(sector) && sector_crc(bytes) != entries[offset] {
                judgement.wrong.insert(sector);
            }
        }
    }
    Ok(judgement)
}

/// Recomputes the check block from the output as it now is and writes the
/// sectors of it that differ; returns them.
pub(crate) fn rebuild_check_block<W: Read + Write + Seek + ?Sized>(
    out: &mut Out<'_, W>,
    geometry: &ParityGeometry,
) -> io::Result<SectorSet> {
    let covered = geometry.checked_sectors();
    let mut checks = SectorChecks::new(covered);
    let mut buf = Vec::new();
    out.for_each_piece(0, covered * SECTOR, PIECE, &mut buf, |at, bytes| {
        checks.record(at / SECTOR, bytes);
    })?;
    let block = checks.block();
    let first = geometry.check_block_start();
    let mut old = vec![0u8; block.len()];
    out.read_at(&mut old, first * SECTOR)?;
    let mut changed = SectorSet::new();
    for (index, (old, new)) in old
        .chunks(SECTOR as usize)
        .zip(block.chunks(SECTOR as usize))
        .enumerate()
    {
        if old != new {
            let sector = first + index as u64;
            out.write_at(new, sector * SECTOR)?;
            changed.insert(sector);
        }
    }
    Ok(changed)
}
