//! Rebuilding the sectors after the layers from the restored volume: the
//! parity digest block from the parity, and the end sector from the
//! records' head, their digest and the geometry body (SPEC.md §13.2,
//! §16.11). Both are functions of what the layers hold.

use std::io::{self, Read, Seek, Write};

use crate::chunk_digest::DIGEST_LEN;
use crate::format::SECTOR;
use crate::parity::ParityGeometry;
use crate::parity::geometry::DIGEST_GROUP_SECTORS;
use crate::repair::judge::trusted_digest_block;
use crate::repair::out::{Out, PIECE};
use crate::repair::sector_set::SectorSet;
use crate::trailer::{END_RECORD_LEN, PARITY_END_RECORD_LEN, TRAILER_MAGIC};

/// Rewrites the digest block unless it matches `digest_hash`, and the end
/// sector if `end_lost` (not if no records head is found). Returns the
/// sectors whose bytes changed.
pub(crate) fn rebuild_tail<W: Read + Write + Seek + ?Sized>(
    out: &mut Out<'_, W>,
    geometry: &ParityGeometry,
    digest_hash: Option<[u8; DIGEST_LEN]>,
    end_lost: bool,
) -> io::Result<SectorSet> {
    let mut changed = SectorSet::new();
    let parity_at = geometry.data_sectors() * SECTOR;
    let block_at = parity_at + geometry.parity_sectors() * SECTOR;
    let block = match trusted_digest_block(out, geometry, digest_hash.as_ref())? {
        Some(block) => block,
        None => {
            let block = digest_block(out, geometry)?;
            let mut old = vec![0u8; block.len()];
            out.read_at(&mut old, block_at)?;
            changed = changed_sectors(&old, &block, block_at / SECTOR);
            out.write_at(&block, block_at)?;
            block
        }
    };
    if !end_lost {
        // The end sector is whole: it is the reference the records and
        // the parity are checked against, never rewritten.
        return Ok(changed);
    }
    let hash = *blake3::hash(&block).as_bytes();
    let Some(head_at) = records_head(out, geometry)? else {
        return Ok(changed);
    };
    let mut head = vec![0u8; SECTOR as usize];
    out.read_at(&mut head, head_at)?;
    let region_len = u64::from_be_bytes(head[56..64].try_into().expect("8 bytes"));
    let Some(region_end) = head_at.checked_add(region_len) else {
        return Ok(changed);
    };
    if region_end > parity_at || region_len < 72 {
        return Ok(changed);
    }
    let mut hasher = blake3::Hasher::new();
    let mut buf = Vec::new();
    out.for_each_piece(head_at, region_end, PIECE, &mut buf, |_, bytes| {
        hasher.update(bytes);
    })?;
    let mut end = vec![0u8; SECTOR as usize];
    end[..72].copy_from_slice(&head[..72]);
    end[72..END_RECORD_LEN].copy_from_slice(hasher.finalize().as_bytes());
    end[END_RECORD_LEN..PARITY_END_RECORD_LEN].copy_from_slice(&geometry.to_body(&hash));
    let end_at = out.len() - SECTOR;
    let old = out.sector(end_at / SECTOR)?;
    changed.extend(&changed_sectors(&old, &end, end_at / SECTOR));
    out.write_at(&end, end_at)?;
    Ok(changed)
}

/// The sectors, counted from `first`, where `old` and `new` differ.
fn changed_sectors(old: &[u8], new: &[u8], first: u64) -> SectorSet {
    old.chunks(SECTOR as usize)
        .zip(new.chunks(SECTOR as usize))
        .enumerate()
        .filter(|(_, (old, new))| old != new)
        .map(|(index, _)| first + index as u64)
        .collect()
}

/// The parity digest block computed from the parity layers as they are.
fn digest_block<W: Read + Write + Seek + ?Sized>(
    out: &mut Out<'_, W>,
    geometry: &ParityGeometry,
) -> io::Result<Vec<u8>> {
    let parity_at = geometry.data_sectors() * SECTOR;
    let parity_end = parity_at + geometry.parity_sectors() * SECTOR;
    let group_len = (DIGEST_GROUP_SECTORS * SECTOR) as usize;
    let mut block = Vec::with_capacity(geometry.digest_block_len() as usize);
    let mut buf = Vec::new();
    out.for_each_piece(
        parity_at,
        parity_end,
        PIECE / group_len * group_len,
        &mut buf,
        |_, bytes| {
            for group in bytes.chunks(group_len) {
                block.extend_from_slice(blake3::hash(group).as_bytes());
            }
        },
    )?;
    block.resize(geometry.digest_block_len() as usize, 0);
    Ok(block)
}

/// The records' head: the last sector of the data span that starts with
/// the trailer magic, searched backwards piece by piece.
fn records_head<W: Read + Write + Seek + ?Sized>(
    out: &mut Out<'_, W>,
    geometry: &ParityGeometry,
) -> io::Result<Option<u64>> {
    let data_end = geometry.data_sectors() * SECTOR;
    let mut buf = vec![0u8; PIECE];
    let mut end = data_end;
    while end > 0 {
        let start = end.saturating_sub(PIECE as u64);
        let piece = &mut buf[..(end - start) as usize];
        out.read_at(piece, start)?;
        let found = piece
            .chunks(SECTOR as usize)
            .rposition(|sector| sector[..8] == TRAILER_MAGIC);
        if let Some(index) = found {
            return Ok(Some(start + index as u64 * SECTOR));
        }
        end = start;
    }
    Ok(None)
}
