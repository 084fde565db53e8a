//! The parity volume file (SPEC.md §17.2): head, body, digest block and a
//! copy of the head at the end, encoded and parsed side by side.

use crate::chunk_digest::DIGEST_LEN;
use crate::error::Error;
use crate::format::{SECTOR, SET_ID_LEN};
use crate::parity::across::parity_location;
use crate::volumes::VolumeSource;

/// The first bytes of a parity volume, `"\x89KUP\r\n\x1a\n"`: not a data
/// volume's MAGIC, nor the trailer's, so no reader takes one for the other.
pub const PARITY_VOLUME_MAGIC: [u8; 8] = *b"\x89KUP\r\n\x1a\n";
/// The only version of the parity volume format.
pub(crate) const PARITY_VOLUME_VERSION: u8 = 1;
/// Codec 1: Leopard GF(2^16) high rate over 2,048-byte sectors (SPEC.md §16.4).
pub(crate) const CODEC_LEOPARD_HIGH_RATE: u8 = 1;
/// Sectors per digest group of the body: 64 KiB.
pub(crate) const GROUP_SECTORS: u64 = 32;
/// Most data + parity volumes of one code (SPEC.md §16.4).
pub(crate) const MAX_SHARDS: usize = 255;
/// Longest data volume a head may record, 2^50 bytes (1 PiB): far above
/// any medium, and low enough that no offset of the layout overflows.
pub(crate) const MAX_DATA_LEN: u64 = 1 << 50;

/// Magic, version, codec, n, P, q, set id, S, digest-block hash.
const FIXED_LEN: usize = 8 + 1 + 1 + 2 + 2 + 2 + SET_ID_LEN + 8 + DIGEST_LEN;
/// Per data volume: length u64 and BLAKE3 of the whole file.
const ENTRY_LEN: usize = 8 + DIGEST_LEN;
/// The head of the most data volumes a code allows, in sectors.
const MAX_HEAD_SECTORS: u64 = head_len(MAX_SHARDS - 1).div_ceil(SECTOR as usize) as u64;

/// A data volume as its parity volumes record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DataEntry {
    /// Length of the whole file in bytes.
    pub(crate) len: u64,
    /// BLAKE3 of the whole file: what a rebuilt volume must match.
    pub(crate) blake3: [u8; DIGEST_LEN],
}

/// The head of a parity volume (SPEC.md §17.2): everything keyless that a
/// rebuild needs, stored at the start and again at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParityHead {
    /// Parity volumes of the set, P.
    pub(crate) parity: u16,
    /// This one's index q, 1 ≤ q ≤ P (its file is `STEM.pNN.kuv`, NN = q).
    pub(crate) index: u16,
    /// The data volumes' set id.
    pub(crate) set_id: [u8; SET_ID_LEN],
    /// Stripes, S: sectors of the longest data volume.
    pub(crate) body_sectors: u64,
    /// BLAKE3 of the digest block.
    pub(crate) digest_block_hash: [u8; DIGEST_LEN],
    /// The n data volumes, volume 1 first.
    pub(crate) volumes: Vec<DataEntry>,
}

/// Bytes of a head for n data volumes, before its padding.
const fn head_len(n: usize) -> usize {
    FIXED_LEN + n * ENTRY_LEN + DIGEST_LEN
}

impl ParityHead {
    /// Data volumes, n.
    pub(crate) fn data_volumes(&self) -> u16 {
        u16::try_from(self.volumes.len()).expect("n ≤ 254 by construction and parsing")
    }

    /// Sectors of the head, and of its copy at the end.
    pub(crate) fn head_sectors(&self) -> u64 {
        (head_len(self.volumes.len()) as u64).div_ceil(SECTOR)
    }

    /// Sectors of the digest block: ceil(S / 32) digests, zero-padded.
    pub(crate) fn digest_sectors(&self) -> u64 {
        (self.groups() * DIGEST_LEN as u64).div_ceil(SECTOR)
    }

    /// Digest groups of the body.
    pub(crate) fn groups(&self) -> u64 {
        self.body_sectors.div_ceil(GROUP_SECTORS)
    }

    /// Where the body starts.
    pub(crate) fn body_offset(&self) -> u64 {
        self.head_sectors() * SECTOR
    }

    /// Where the digest block starts.
    pub(crate) fn digest_offset(&self) -> u64 {
        self.body_offset() + self.body_sectors * SECTOR
    }

    /// Where the copy of the head starts.
    pub(crate) fn tail_offset(&self) -> u64 {
        self.digest_offset() + self.digest_sectors() * SECTOR
    }

    /// Length of the whole parity volume file.
    pub(crate) fn file_len(&self) -> u64 {
        self.tail_offset() + self.head_sectors() * SECTOR
    }

    /// Whether `other` is a parity volume of the same code over the same
    /// data volumes (its index aside).
    pub(crate) fn same_set(&self, other: &ParityHead) -> bool {
        self.parity == other.parity
            && self.set_id == other.set_id
            && self.body_sectors == other.body_sectors
            && self.volumes == other.volumes
    }

    /// The head, padded with zeros to whole sectors.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity((self.head_sectors() * SECTOR) as usize);
        out.extend_from_slice(&PARITY_VOLUME_MAGIC);
        out.push(PARITY_VOLUME_VERSION);
        out.push(CODEC_LEOPARD_HIGH_RATE);
        out.extend_from_slice(&self.data_volumes().to_be_bytes());
        out.extend_from_slice(&self.parity.to_be_bytes());
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.set_id);
        out.extend_from_slice(&self.body_sectors.to_be_bytes());
        out.extend_from_slice(&self.digest_block_hash);
        for entry in &self.volumes {
            out.extend_from_slice(&entry.len.to_be_bytes());
            out.extend_from_slice(&entry.blake3);
        }
        let digest = blake3::hash(&out);
        out.extend_from_slice(digest.as_bytes());
        out.resize((self.head_sectors() * SECTOR) as usize, 0);
        out
    }

    /// Parses a head from `bytes`, which hold at least its sectors; returns
    /// the byte offset and rule of the first field that breaks SPEC.md §17.2.
    pub(crate) fn parse(bytes: &[u8]) -> Result<ParityHead, (usize, &'static str)> {
        let field = |offset: usize, len: usize| {
            bytes
                .get(offset..offset + len)
                .ok_or((offset, "the head is cut short"))
        };
        let u16_at = |offset: usize| -> Result<u16, (usize, &'static str)> {
            Ok(u16::from_be_bytes(
                field(offset, 2)?.try_into().expect("2 bytes"),
            ))
        };
        let u64_at = |offset: usize| -> Result<u64, (usize, &'static str)> {
            Ok(u64::from_be_bytes(
                field(offset, 8)?.try_into().expect("8 bytes"),
            ))
        };
        if field(0, 8)? != PARITY_VOLUME_MAGIC {
            return Err((0, "no parity volume magic"));
        }
        if field(8, 1)?[0] != PARITY_VOLUME_VERSION {
            return Err((8, "unknown version"));
        }
        if field(9, 1)?[0] != CODEC_LEOPARD_HIGH_RATE {
            return Err((9, "unknown codec"));
        }
        let n = usize::from(u16_at(10)?);
        let parity = u16_at(12)?;
        let index = u16_at(14)?;
        if n == 0 || n >= MAX_SHARDS {
            return Err((10, "data volumes outside 1..=254"));
        }
        if parity == 0 || usize::from(parity) > n || n + usize::from(parity) > MAX_SHARDS {
            return Err((12, "parity volumes outside 1..=n, or n + P above 255"));
        }
        if index == 0 || index > parity {
            return Err((14, "index outside 1..=P"));
        }
        let len = head_len(n);
        let body = field(0, len - DIGEST_LEN)?;
        if blake3::hash(body).as_bytes() != field(len - DIGEST_LEN, DIGEST_LEN)? {
            return Err((len - DIGEST_LEN, "the head's BLAKE3 does not match"));
        }
        let padded = (len as u64).div_ceil(SECTOR) as usize * SECTOR as usize;
        if field(len, padded - len)?.iter().any(|&b| b != 0) {
            return Err((len, "nonzero padding after the head"));
        }
        let set_id = field(16, SET_ID_LEN)?.try_into().expect("SET_ID_LEN bytes");
        let body_sectors = u64_at(48)?;
        let digest_block_hash = field(56, DIGEST_LEN)?.try_into().expect("32 bytes");
        let mut volumes = Vec::with_capacity(n);
        for v in 0..n {
            let at = FIXED_LEN + v * ENTRY_LEN;
            let len = u64_at(at)?;
            if len == 0 || len > MAX_DATA_LEN {
                return Err((at, "a data volume of no bytes, or above 2^50"));
            }
            volumes.push(DataEntry {
                len,
                blake3: field(at + 8, DIGEST_LEN)?.try_into().expect("32 bytes"),
            });
        }
        let longest = volumes.iter().map(|e| e.len.div_ceil(SECTOR)).max();
        if longest != Some(body_sectors) {
            return Err((48, "stripes not the sectors of the longest data volume"));
        }
        Ok(ParityHead {
            parity,
            index,
            set_id,
            body_sectors,
            digest_block_hash,
            volumes,
        })
    }
}

/// Reads the head of parity volume `source` (input `input` among the parity
/// volumes given): the one at its start, else the copy at its end, whichever
/// is intact and fits the file's length (SPEC.md §17.2).
///
/// # Errors
///
/// [`Error::MalformedParityVolume`] at the first broken field of the head
/// at the start if neither is usable; [`Error::Read`] if the length cannot
/// be read.
pub(crate) fn read_head<S: VolumeSource + ?Sized>(
    source: &S,
    input: usize,
) -> Result<ParityHead, Error> {
    let at = parity_location(source, input);
    let size = source.size().map_err(|err| Error::Read {
        at: at.clone(),
        source: err,
    })?;
    let parse_at = |offset: u64, len: u64| -> Result<ParityHead, (u64, &'static str)> {
        let mut bytes = vec![0u8; len as usize];
        source
            .read_exact_at(&mut bytes, offset)
            .map_err(|_| (offset, "the head cannot be read"))?;
        let head = ParityHead::parse(&bytes).map_err(|(at, why)| (offset + at as u64, why))?;
        if head.file_len() != size {
            return Err((offset, "the file's length does not fit its head"));
        }
        Ok(head)
    };
    let first = parse_at(0, size.min(MAX_HEAD_SECTORS * SECTOR));
    let first_err = match first {
        Ok(head) => return Ok(head),
        Err(err) => err,
    };
    for sectors in 1..=MAX_HEAD_SECTORS {
        let Some(offset) = size.checked_sub(sectors * SECTOR) else {
            break;
        };
        if let Ok(head) = parse_at(offset, sectors * SECTOR)
            && head.head_sectors() == sectors
            && head.tail_offset() == offset
        {
            return Ok(head);
        }
    }
    Err(Error::MalformedParityVolume {
        at: at.byte(first_err.0),
        reason: first_err.1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(n: usize) -> ParityHead {
        ParityHead {
            parity: 2,
            index: 1,
            set_id: [7; SET_ID_LEN],
            body_sectors: 5,
            digest_block_hash: [9; DIGEST_LEN],
            volumes: (0..n)
                .map(|v| DataEntry {
                    len: if v == 0 { 5 * SECTOR } else { 3 * SECTOR + 1 },
                    blake3: [v as u8; DIGEST_LEN],
                })
                .collect(),
        }
    }

    #[test]
    fn head_round_trips_at_sizes() {
        for n in [2, 3, 48, 253] {
            let head = head(n);
            let bytes = head.encode();
            assert_eq!(bytes.len() as u64, head.head_sectors() * SECTOR);
            assert_eq!(ParityHead::parse(&bytes), Ok(head));
        }
        assert_eq!(MAX_HEAD_SECTORS, 6);
    }

    #[test]
    fn layout_adds_up() {
        let head = head(3);
        // 3 volumes: 240 bytes of head, 1 sector; 5 stripes, 1 group.
        assert_eq!(head.head_sectors(), 1);
        assert_eq!(head.digest_sectors(), 1);
        assert_eq!(head.file_len(), (1 + 5 + 1 + 1) * SECTOR);
    }

    #[test]
    fn any_flipped_byte_is_refused() {
        let bytes = head(3).encode();
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 1;
            assert!(ParityHead::parse(&bad).is_err(), "byte {at}");
        }
    }

    #[test]
    fn lengths_that_would_overflow_the_layout_are_refused() {
        let mut head = head(3);
        head.volumes[1].len = u64::MAX;
        head.body_sectors = u64::MAX.div_ceil(SECTOR);
        assert_eq!(
            ParityHead::parse(&head.encode()),
            Err((
                FIXED_LEN + ENTRY_LEN,
                "a data volume of no bytes, or above 2^50"
            ))
        );
    }

    #[test]
    fn counts_out_of_range_are_refused() {
        let mut bytes = head(3).encode();
        bytes[12..14].copy_from_slice(&4u16.to_be_bytes());
        assert_eq!(
            ParityHead::parse(&bytes),
            Err((12, "parity volumes outside 1..=n, or n + P above 255"))
        );
    }
}
