//! The check block (SPEC.md §16.13): a CRC-32 of every sector of the data
//! span and the parity layers, so a repair judges a zeroed or garbage
//! sector on its own instead of the whole chunk around it (dvdisaster
//! RS03 keeps one per sector for the same reason). A CRC only ever proves a
//! sector wrong; the chunk digests still prove the result right.

use crate::format::SECTOR as SECTOR_BYTES;

/// A sector, as a length in memory.
const SECTOR: usize = SECTOR_BYTES as usize;

/// CRC-32 entries per check-block sector: 511 of 4 bytes, then the
/// sector's own CRC-32 over the 2,044 bytes before it.
pub const CHECKS_PER_SECTOR: u64 = 511;

/// Where a check-block sector's own CRC-32 sits.
const SELF_CHECK_AT: usize = SECTOR - 4;

/// CRC-32 (IEEE 802.3, as zlib and PNG compute it) of `bytes`.
pub fn sector_crc(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// Sectors of the check block for `covered` sectors (n_d + m·L):
/// ceil(covered / 511).
pub fn check_block_sectors(covered: u64) -> u64 {
    covered.div_ceil(CHECKS_PER_SECTOR)
}

/// The CRC-32s of a volume's covered sectors, recorded in any order as
/// the sealer reads back data runs and encodes parity runs. Memory: 4
/// bytes per sector, 1/512 of the volume.
#[derive(Debug, Clone)]
pub struct SectorChecks {
    crcs: Vec<u32>,
}

impl SectorChecks {
    /// Checks for `covered` sectors, all zero until recorded.
    ///
    /// # Panics
    ///
    /// If `covered` does not fit memory: a volume a parity geometry
    /// accepts always does.
    pub fn new(covered: u64) -> Self {
        let len = usize::try_from(covered).expect("sector count fits memory");
        SectorChecks { crcs: vec![0; len] }
    }

    /// Records the CRC-32 of each sector of `bytes` (whole sectors), the
    /// first of which is volume sector `sector`.
    ///
    /// # Panics
    ///
    /// If `bytes` is not whole sectors or runs past the covered sectors: a
    /// caller's bug.
    pub fn record(&mut self, sector: u64, bytes: &[u8]) {
        assert!(
            bytes.len().is_multiple_of(SECTOR),
            "whole sectors are recorded"
        );
        let first = usize::try_from(sector).expect("sector index fits memory");
        let slots = &mut self.crcs[first..first + bytes.len() / SECTOR];
        for (slot, bytes) in slots.iter_mut().zip(bytes.chunks_exact(SECTOR)) {
            *slot = sector_crc(bytes);
        }
    }

    /// Stores CRC-32s computed elsewhere (on the parity pass's worker
    /// threads), the first for volume sector `sector`.
    ///
    /// # Panics
    ///
    /// If they run past the covered sectors: a caller's bug.
    pub fn set(&mut self, sector: u64, crcs: &[u32]) {
        let first = usize::try_from(sector).expect("sector index fits memory");
        self.crcs[first..first + crcs.len()].copy_from_slice(crcs);
    }

    /// The check block: 511 little-endian CRC-32s per sector, zero-padded,
    /// each sector closed by its own CRC-32 over its first 2,044 bytes.
    pub fn block(&self) -> Vec<u8> {
        let sectors = check_block_sectors(self.crcs.len() as u64) as usize;
        let mut block = vec![0u8; sectors * SECTOR];
        for (sector, crcs) in block
            .chunks_exact_mut(SECTOR)
            .zip(self.crcs.chunks(CHECKS_PER_SECTOR as usize))
        {
            for (entry, crc) in sector.chunks_exact_mut(4).zip(crcs) {
                entry.copy_from_slice(&crc.to_le_bytes());
            }
            let own = sector_crc(&sector[..SELF_CHECK_AT]);
            sector[SELF_CHECK_AT..].copy_from_slice(&own.to_le_bytes());
        }
        block
    }
}

/// The entries of one check-block sector, if its own CRC-32 holds; `None`
/// for a sector that fails it (its entries are unknown).
pub fn parse_check_sector(sector: &[u8]) -> Option<[u32; CHECKS_PER_SECTOR as usize]> {
    if sector.len() != SECTOR {
        return None;
    }
    let own = u32::from_le_bytes(sector[SELF_CHECK_AT..].try_into().expect("4 bytes"));
    if sector_crc(&sector[..SELF_CHECK_AT]) != own {
        return None;
    }
    let mut entries = [0u32; CHECKS_PER_SECTOR as usize];
    for (entry, bytes) in entries.iter_mut().zip(sector.chunks_exact(4)) {
        *entry = u32::from_le_bytes(bytes.try_into().expect("4 bytes"));
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_ieee() {
        // The check value of CRC-32/ISO-HDLC.
        assert_eq!(sector_crc(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn a_block_round_trips_and_guards_itself() {
        let covered = 513u64;
        let mut checks = SectorChecks::new(covered);
        // Out of order, in runs.
        let run: Vec<u8> = (0..3 * SECTOR).map(|i| (i % 251) as u8).collect();
        checks.record(510, &run);
        checks.record(0, &run[..SECTOR]);
        let block = checks.block();
        assert_eq!(block.len(), 2 * SECTOR);
        assert_eq!(check_block_sectors(covered), 2);
        let first = parse_check_sector(&block[..SECTOR]).expect("whole");
        assert_eq!(first[0], sector_crc(&run[..SECTOR]));
        assert_eq!(first[510], sector_crc(&run[..SECTOR]));
        assert_eq!(first[1], 0);
        let second = parse_check_sector(&block[SECTOR..]).expect("whole");
        assert_eq!(second[0], sector_crc(&run[SECTOR..2 * SECTOR]));
        assert_eq!(second[1], sector_crc(&run[2 * SECTOR..]));
        assert_eq!(second[2], 0, "zero padding");
        let mut bad = block[..SECTOR].to_vec();
        bad[7] ^= 1;
        assert_eq!(parse_check_sector(&bad), None);
        // A zeroed sector fails its own CRC (that of zeros is not zero).
        assert_eq!(parse_check_sector(&[0u8; SECTOR]), None);
    }
}
