//! The volume trailer (SPEC.md §13): a sector-aligned region after a
//! volume's last chunk that holds the keyless digest table, found from the
//! volume's last sector and checked without any key. Designed once for the
//! records that signatures (0x8002, 0x8003) and parity (a later record with
//! bulk bytes) add, so they extend it instead of adding a structure.
//!
//! ```text
//!  H_v           E    T0                       T0+M   T1        len_v−2048   len_v
//!  | chunks ...  | 0s | head ‖ records         | 0s   | bulk (B) | end sector |
//! ```
//!
//! Reading never allocates on the strength of a length read from the
//! volume: the records region is hashed in pieces and the table's entries
//! are read on demand.

use crate::chunk_digest::DIGEST_LEN;
use crate::error::{Error, Location, TrailerError};
use crate::format::{Header, SECTOR, SET_ID_LEN};
use crate::parity::{GEOMETRY_BODY_LEN, ParityError, ParityGeometry};
use crate::volumes::VolumeSource;

/// Magic of a trailer's head and end record: like the volume magic, with
/// `T` for `V`, so a raw-disc scan never takes one for the other.
pub(crate) const TRAILER_MAGIC: [u8; 8] = *b"\x89KUT\r\n\x1a\n";
/// The one trailer version.
const TRAILER_VERSION: u16 = 1;
/// Head: magic, version, flags, v, SID, E, M, B.
pub(crate) const HEAD_LEN: usize = 8 + 2 + 2 + 4 + SET_ID_LEN + 8 + 8 + 8;
/// End record: the head and D, the digest of the records region.
pub(crate) const END_RECORD_LEN: usize = HEAD_LEN + DIGEST_LEN;
/// End record of a volume with parity: then the geometry body (SPEC.md
/// §16.11).
pub(crate) const PARITY_END_RECORD_LEN: usize = END_RECORD_LEN + GEOMETRY_BODY_LEN;
/// Record head: type, reserved, body length.
const RECORD_HEAD_LEN: usize = 8;
/// Bit of a record type that makes it critical: a reader that does not
/// know the type refuses the trailer.
const CRITICAL: u16 = 0x8000;
/// The digest table: `k u64 ‖ h_v ‖ k entries`.
pub(crate) const TABLE_RECORD: u16 = 0x8001;
/// The signed statement (SPEC.md §14.1): only in signed sets, right after
/// the table.
pub(crate) const STATEMENT_RECORD: u16 = 0x8002;
/// An armored SSHSIG signature over the statement (SPEC.md §14.2): only in
/// signed sets, after the statement, one per signer in signer-block order.
pub(crate) const SIGNATURE_RECORD: u16 = 0x8003;
/// The parity geometry (SPEC.md §16.11): only with PARITY, the last record,
/// exactly once. Its body is the end record's geometry body with the digest
/// block's BLAKE3 left zero: the record is inside the data span the parity
/// covers, so it cannot hold a digest of that parity.
pub(crate) const PARITY_RECORD: u16 = 0x8010;
/// Bytes the parity record adds to the records region.
pub(crate) const PARITY_RECORD_LEN: u64 = RECORD_HEAD_LEN as u64 + GEOMETRY_BODY_LEN as u64;
/// Longest statement or signature record body a reader accepts.
pub(crate) const MAX_SIGNED_RECORD: u64 = 1024;
/// Records beyond the table that a trailer may hold, and that sealers
/// reserve room for when they fix K: a statement and four signatures of
/// up to 1,024 bytes each, with their record heads.
pub(crate) const RESERVED_RECORDS: u64 = 5 * (RECORD_HEAD_LEN as u64 + 1024);
/// Bytes hashed or checked per read: bounded, whatever the volume says.
const PIECE: usize = 64 << 10;

/// Length of the records region of a volume of `chunks` chunks with only
/// the digest table.
fn table_region_len(chunks: u64) -> u64 {
    HEAD_LEN as u64 + RECORD_HEAD_LEN as u64 + 8 + DIGEST_LEN as u64 + chunks * DIGEST_LEN as u64
}

/// Bytes that records after the table, of these body lengths, add to the
/// records region: each body and its record head.
pub(crate) fn extra_records_len(bodies: impl IntoIterator<Item = u64>) -> u64 {
    bodies
        .into_iter()
        .map(|len| RECORD_HEAD_LEN as u64 + len)
        .sum()
}

/// M_max(k): the longest records region a volume of k chunks may have.
fn max_region_len(chunks: u64) -> Option<u64> {
    chunks
        .checked_mul(DIGEST_LEN as u64)?
        .checked_add(table_region_len(0) + RESERVED_RECORDS)
}

fn sector_ceil(len: u64) -> u64 {
    len.div_ceil(SECTOR) * SECTOR
}

/// Exact trailer length (bytes after E) for a volume of `chunks` chunks
/// whose chunks end at `chunk_end`, as this library writes it, with
/// `extra` bytes of records after the table ([`extra_records_len`]).
pub(crate) fn trailer_len(chunk_end: u64, chunks: u64, extra: u64) -> u64 {
    sector_ceil(chunk_end) - chunk_end + sector_ceil(table_region_len(chunks) + extra) + SECTOR
}

/// The parity geometry of a volume whose data span ends at `data_end` (T1),
/// at `percent`.
pub(crate) fn parity_geometry(data_end: u64, percent: u16) -> Result<ParityGeometry, ParityError> {
    ParityGeometry::from_data(data_end / SECTOR, percent)
}

/// The bulk B of a volume with parity `geometry`: the parity layers, the
/// digest block and the check block (SPEC.md §16.11).
pub(crate) fn bulk_len(geometry: &ParityGeometry) -> u64 {
    (geometry.volume_sectors() - 1 - geometry.data_sectors()) * SECTOR
}

/// Exact length of a volume whose chunks end at `chunk_end` (E), with
/// `chunks` chunks, `extra` bytes of records after the table and parity at
/// `parity` percent if any; `None` if a span that long cannot carry parity.
pub(crate) fn volume_len(
    chunk_end: u64,
    chunks: u64,
    extra: u64,
    parity: Option<u16>,
) -> Option<u64> {
    let Some(percent) = parity else {
        return chunk_end.checked_add(trailer_len(chunk_end, chunks, extra));
    };
    let data_end = sector_ceil(chunk_end).checked_add(sector_ceil(
        table_region_len(chunks) + extra + PARITY_RECORD_LEN,
    ))?;
    let geometry = parity_geometry(data_end, percent).ok()?;
    data_end
        .checked_add(bulk_len(&geometry))?
        .checked_add(SECTOR)
}

/// The most a full volume of `chunks` chunks after a padded header of
/// `data_offset` bytes takes, with room for the reserved records and the
/// parity at `parity` percent: what fixes K for a volume size.
pub(crate) fn volume_bound(
    data_offset: u64,
    chunk_len: u64,
    chunks: u64,
    parity: Option<u16>,
) -> Option<u64> {
    let chunk_end = chunks.checked_mul(chunk_len)?.checked_add(data_offset)?;
    let reserved = RESERVED_RECORDS + parity.map_or(0, |_| PARITY_RECORD_LEN);
    let data_end =
        sector_ceil(chunk_end).checked_add(sector_ceil(table_region_len(chunks) + reserved))?;
    let bulk = match parity {
        None => 0,
        Some(percent) => bulk_len(&parity_geometry(data_end, percent).ok()?),
    };
    data_end.checked_add(bulk)?.checked_add(SECTOR)
}

/// What a parsed trailer says; entries are read on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Trailer {
    /// E: end of the last chunk; the chunk region is [H_v, E).
    pub(crate) chunk_end: u64,
    /// k: chunks in the volume.
    pub(crate) chunks: u64,
    /// h_v: BLAKE3 of [0, H_v).
    pub(crate) header_digest: [u8; DIGEST_LEN],
    /// Offset of table entry 0 in the volume.
    pub(crate) entries_at: u64,
    /// The statement record's body (offset, length), in a signed set.
    pub(crate) statement: Option<(u64, u64)>,
    /// The signature records' bodies (offset, length), in order.
    pub(crate) signatures: Vec<(u64, u64)>,
    /// With PARITY: the geometry and the BLAKE3 of the parity digest block,
    /// from the end record (SPEC.md §16.11).
    pub(crate) parity: Option<(ParityGeometry, [u8; DIGEST_LEN])>,
}

/// T (SPEC.md §14.1): BLAKE3 of the table record's body, `k ‖ h_v ‖
/// entries`, as the sealer has it.
pub(crate) fn table_digest(
    header_digest: &[u8; DIGEST_LEN],
    entries: &[[u8; DIGEST_LEN]],
) -> [u8; DIGEST_LEN] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&(entries.len() as u64).to_be_bytes());
    hasher.update(header_digest);
    for entry in entries {
        hasher.update(entry);
    }
    *hasher.finalize().as_bytes()
}

/// A trailer as the sealer writes it in two steps when the volume has
/// parity: the bytes [E, T1) (they end the data span the parity covers),
/// then, after the bulk, the end sector.
pub(crate) struct TrailerParts {
    /// [E, T1): zeros, the records region, zeros.
    pub(crate) data_tail: Vec<u8>,
    /// The end record's first 104 bytes (head and D).
    end_record: Vec<u8>,
    /// The volume's parity geometry, with parity.
    pub(crate) parity: Option<ParityGeometry>,
}

impl TrailerParts {
    /// The end sector: the end record, with parity the geometry body
    /// holding `digest_block_hash`, then zeros.
    pub(crate) fn end_sector(&self, digest_block_hash: &[u8; DIGEST_LEN]) -> Vec<u8> {
        let mut out = self.end_record.clone();
        if let Some(geometry) = &self.parity {
            out.extend_from_slice(&geometry.to_body(digest_block_hash));
        }
        out.resize(SECTOR as usize, 0);
        out
    }
}

/// The trailer of a volume, with parity at `parity` percent if any: the
/// records then end with the parity record (SPEC.md §16.11) and the head's
/// B is the bulk's length.
///
/// # Errors
///
/// [`ParityError::DataSpan`] if the data span is too long to carry parity.
pub(crate) fn encode_parts(
    volume: u32,
    set_id: &[u8; SET_ID_LEN],
    chunk_end: u64,
    header_digest: &[u8; DIGEST_LEN],
    entries: &[[u8; DIGEST_LEN]],
    records: &[(u16, &[u8])],
    parity: Option<u16>,
) -> Result<TrailerParts, ParityError> {
    let chunks = entries.len() as u64;
    let extra = extra_records_len(records.iter().map(|(_, body)| body.len() as u64))
        + parity.map_or(0, |_| PARITY_RECORD_LEN);
    let region_len = table_region_len(chunks) + extra;
    let records_at = sector_ceil(chunk_end);
    let data_end = records_at + sector_ceil(region_len);
    let geometry = parity
        .map(|percent| parity_geometry(data_end, percent))
        .transpose()?;
    let bulk = geometry.as_ref().map_or(0, bulk_len);
    let mut head = Vec::with_capacity(HEAD_LEN);
    head.extend_from_slice(&TRAILER_MAGIC);
    head.extend_from_slice(&TRAILER_VERSION.to_be_bytes());
    head.extend_from_slice(&0u16.to_be_bytes());
    head.extend_from_slice(&volume.to_be_bytes());
    head.extend_from_slice(set_id);
    head.extend_from_slice(&chunk_end.to_be_bytes());
    head.extend_from_slice(&region_len.to_be_bytes());
    head.extend_from_slice(&bulk.to_be_bytes());

    let mut out = vec![0u8; (records_at - chunk_end) as usize];
    let region_start = out.len();
    out.extend_from_slice(&head);
    out.extend_from_slice(&TABLE_RECORD.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    let body_len = 8 + DIGEST_LEN + entries.len() * DIGEST_LEN;
    // Bounded by the volume's chunks: a u32 holds 2^27 entries (8 TiB of
    // 64 KiB chunks); sealers refuse more chunks per volume.
    out.extend_from_slice(&(body_len as u32).to_be_bytes());
    out.extend_from_slice(&chunks.to_be_bytes());
    out.extend_from_slice(header_digest);
    for entry in entries {
        out.extend_from_slice(entry);
    }
    let parity_body = geometry.map(|geometry| geometry.to_body(&[0; DIGEST_LEN]));
    let parity_record = parity_body.as_ref().map(|body| (PARITY_RECORD, &body[..]));
    for (kind, body) in records.iter().copied().chain(parity_record) {
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        // Statements and signatures are at most 1,024 bytes.
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
    }
    let digest = blake3::hash(&out[region_start..]);
    out.resize(region_start + sector_ceil(region_len) as usize, 0);
    let mut end_record = head;
    end_record.extend_from_slice(digest.as_bytes());
    Ok(TrailerParts {
        data_tail: out,
        end_record,
        parity: geometry,
    })
}

/// Most chunks per volume a trailer can list (its table record's length
/// is a u32).
pub(crate) const MAX_TABLE_CHUNKS: u64 = (u32::MAX as u64 - 8 - DIGEST_LEN as u64) / 32;

/// A big-endian integer at `at` of `bytes`.
fn be(bytes: &[u8], at: usize, len: usize) -> u64 {
    bytes[at..at + len]
        .iter()
        .fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// Reads `len` bytes at `offset`, as a trailer error if the source fails.
fn read<S: VolumeSource + ?Sized>(
    source: &S,
    origin: &Location,
    offset: u64,
    len: usize,
) -> Result<Vec<u8>, Error> {
    let mut buf = vec![0u8; len];
    source
        .read_exact_at(&mut buf, offset)
        .map_err(|source| Error::Read {
            at: origin.at_byte(offset),
            source,
        })?;
    Ok(buf)
}

/// The first nonzero byte of [start, end), checked in pieces.
fn first_nonzero<S: VolumeSource + ?Sized>(
    source: &S,
    origin: &Location,
    start: u64,
    end: u64,
) -> Result<Option<u64>, Error> {
    let mut at = start;
    while at < end {
        let len = (end - at).min(PIECE as u64) as usize;
        let piece = read(source, origin, at, len)?;
        if let Some(i) = piece.iter().position(|&b| b != 0) {
            return Ok(Some(at + i as u64));
        }
        at += len as u64;
    }
    Ok(None)
}

/// Reads and checks the trailer of a volume `len` bytes long whose header
/// (already read, its padding checked) is `header`, in the order of
/// SPEC.md §13.3. `origin` names the volume in errors.
///
/// # Errors
///
/// [`Error::Truncated`] at `len` if the volume does not end in an end
/// record (cut, or never trailered), [`Error::MalformedTrailer`] naming the
/// rule and its byte, or [`Error::Read`].
pub(crate) fn read_trailer<S: VolumeSource + ?Sized>(
    source: &S,
    header: &Header,
    len: u64,
    origin: &Location,
) -> Result<Trailer, Error> {
    let geometry = header.geometry();
    let data_offset = geometry.data_offset;
    let chunk_len = geometry.chunk_len() as u64;
    let bad = |offset: u64, reason| Error::trailer(origin, offset, reason);
    // 1. An end sector, at the end of a whole number of sectors.
    let truncated = Error::Truncated {
        at: origin.at_byte(len),
    };
    if len < data_offset + 3 * SECTOR || !len.is_multiple_of(SECTOR) {
        return Err(truncated);
    }
    let end_at = len - SECTOR;
    let end = read(source, origin, end_at, SECTOR as usize)?;
    if end[..8] != TRAILER_MAGIC {
        return Err(truncated);
    }
    // 2. The end record's fields.
    if be(&end, 8, 2) != u64::from(TRAILER_VERSION) {
        return Err(bad(end_at + 8, TrailerError::Version));
    }
    if be(&end, 10, 2) != 0 {
        return Err(bad(end_at + 10, TrailerError::Flags));
    }
    if be(&end, 12, 4) != u64::from(header.volume) {
        return Err(bad(end_at + 12, TrailerError::VolumeNumber));
    }
    if end[16..16 + SET_ID_LEN] != header.set.set_id {
        return Err(bad(end_at + 16, TrailerError::SetId));
    }
    let chunk_end = be(&end, 48, 8);
    if chunk_end <= data_offset || chunk_end >= end_at {
        return Err(bad(end_at + 48, TrailerError::ChunkEnd));
    }
    let chunks = (chunk_end - data_offset).div_ceil(chunk_len);
    let region_len = be(&end, 56, 8);
    let in_bounds = max_region_len(chunks).is_some_and(|max| region_len <= max);
    if region_len < HEAD_LEN as u64 || !in_bounds {
        return Err(bad(end_at + 56, TrailerError::RecordsLength));
    }
    let records_at = sector_ceil(chunk_end);
    // T1: the end of the records' sectors, and of the data span.
    let data_end = records_at.checked_add(sector_ceil(region_len));
    let bulk = be(&end, 64, 8);
    let (parity, end_record_len) = match header.set.parity {
        None if bulk != 0 => return Err(bad(end_at + 64, TrailerError::BulkLength)),
        None => (None, END_RECORD_LEN),
        Some(percent) => {
            let geometry_at = end_at + END_RECORD_LEN as u64;
            let body = &end[END_RECORD_LEN..PARITY_END_RECORD_LEN];
            let (geometry, digest_hash) = ParityGeometry::from_body(body)
                .map_err(|_| bad(geometry_at, TrailerError::ParityGeometry))?;
            // The body must be the geometry of this data span at p.
            let expected = data_end.and_then(|t1| parity_geometry(t1, percent).ok());
            if expected != Some(geometry) {
                return Err(bad(geometry_at, TrailerError::ParityGeometry));
            }
            if bulk != bulk_len(&geometry) {
                return Err(bad(end_at + 64, TrailerError::BulkLength));
            }
            (Some((geometry, digest_hash)), PARITY_END_RECORD_LEN)
        }
    };
    let parts = data_end
        .and_then(|t1| t1.checked_add(bulk))
        .and_then(|end| end.checked_add(SECTOR));
    if parts != Some(len) {
        // The sector found is not where its own E, M and B put the end
        // record: the head of a volume cut after its records, or bytes
        // appended after the end record.
        return Err(truncated);
    }
    let data_end = len - SECTOR - bulk;
    if let Some(i) = end[end_record_len..].iter().position(|&b| b != 0) {
        return Err(bad(
            end_at + (end_record_len + i) as u64,
            TrailerError::Padding,
        ));
    }
    // 3. Zeros between the last chunk and the records.
    if let Some(at) = first_nonzero(source, origin, chunk_end, records_at)? {
        return Err(bad(at, TrailerError::Padding));
    }
    // 4. The head repeats the end record.
    let head = read(source, origin, records_at, HEAD_LEN)?;
    if let Some(i) = (0..HEAD_LEN).find(|&i| head[i] != end[i]) {
        return Err(bad(records_at + i as u64, TrailerError::HeadMismatch));
    }
    // 5. The records region matches D; only now are records read.
    let mut hasher = blake3::Hasher::new();
    let region_end = records_at + region_len;
    let mut at = records_at;
    while at < region_end {
        let piece_len = (region_end - at).min(PIECE as u64) as usize;
        hasher.update(&read(source, origin, at, piece_len)?);
        at += piece_len as u64;
    }
    if hasher.finalize().as_bytes()[..] != end[HEAD_LEN..END_RECORD_LEN] {
        return Err(bad(end_at + HEAD_LEN as u64, TrailerError::RecordsDigest));
    }
    // 6. Zeros after the records, up to the bulk (parity is not read here).
    if let Some(at) = first_nonzero(source, origin, region_end, data_end)? {
        return Err(bad(at, TrailerError::Padding));
    }
    // 7. The records: the table first, exactly once.
    let mut at = records_at + HEAD_LEN as u64;
    let mut table: Option<Trailer> = None;
    let mut parity_seen = false;
    let signed = !header.set.signers.is_empty();
    while at < region_end {
        if region_end - at < RECORD_HEAD_LEN as u64 {
            return Err(bad(at, TrailerError::RecordBounds));
        }
        let record = read(source, origin, at, RECORD_HEAD_LEN)?;
        let kind = be(&record, 0, 2) as u16;
        let body_len = be(&record, 4, 4);
        let body_at = at + RECORD_HEAD_LEN as u64;
        if be(&record, 2, 2) != 0 || body_len > region_end - body_at {
            return Err(bad(at, TrailerError::RecordBounds));
        }
        match kind {
            TABLE_RECORD if table.is_none() && at == records_at + HEAD_LEN as u64 => {
                if body_len != 8 + DIGEST_LEN as u64 + chunks * DIGEST_LEN as u64 {
                    return Err(bad(at, TrailerError::TableLength));
                }
                let fixed = read(source, origin, body_at, 8 + DIGEST_LEN)?;
                if be(&fixed, 0, 8) != chunks {
                    return Err(bad(at, TrailerError::TableLength));
                }
                let mut header_digest = [0u8; DIGEST_LEN];
                header_digest.copy_from_slice(&fixed[8..]);
                table = Some(Trailer {
                    chunk_end,
                    chunks,
                    header_digest,
                    entries_at: body_at + 8 + DIGEST_LEN as u64,
                    statement: None,
                    signatures: Vec::new(),
                    parity,
                });
            }
            _ if table.is_none() => return Err(bad(at, TrailerError::Table)),
            TABLE_RECORD => return Err(bad(at, TrailerError::Table)),
            STATEMENT_RECORD | SIGNATURE_RECORD if !signed => {
                return Err(bad(at, TrailerError::Unsigned));
            }
            // In a signed set: the statement right after the table, then
            // at most one signature per signer (SPEC.md §13.3 step 7). A
            // missing one is for the signature check to refuse.
            STATEMENT_RECORD | SIGNATURE_RECORD => {
                let table = table.as_mut().expect("matched after the table");
                let in_order = match kind {
                    STATEMENT_RECORD => table.statement.is_none() && at == table.entries_end(),
                    _ => {
                        table.statement.is_some()
                            && table.signatures.len() < header.set.signers.len()
                    }
                };
                if !in_order || body_len > MAX_SIGNED_RECORD {
                    return Err(bad(at, TrailerError::SignedRecords));
                }
                match kind {
                    STATEMENT_RECORD => table.statement = Some((body_at, body_len)),
                    _ => table.signatures.push((body_at, body_len)),
                }
            }
            // With PARITY: once, last, and the end record's body with the
            // digest block's hash zero (SPEC.md §16.11).
            PARITY_RECORD => {
                let is_last = body_at + body_len == region_end;
                let same = match &parity {
                    Some((geometry, _)) if body_len == GEOMETRY_BODY_LEN as u64 => {
                        read(source, origin, body_at, GEOMETRY_BODY_LEN)?
                            == geometry.to_body(&[0; DIGEST_LEN])
                    }
                    _ => false,
                };
                if parity_seen || !is_last || !same {
                    return Err(bad(at, TrailerError::ParityRecord));
                }
                parity_seen = true;
            }
            kind if kind & CRITICAL != 0 => return Err(bad(at, TrailerError::UnknownCritical)),
            _ => {}
        }
        at = body_at + body_len;
    }
    let table = table.ok_or_else(|| bad(records_at + HEAD_LEN as u64, TrailerError::Table))?;
    if table.parity.is_some() && !parity_seen {
        return Err(bad(region_end, TrailerError::ParityRecord));
    }
    Ok(table)
}

impl Trailer {
    /// Offset just past the table record: where a signed set's statement
    /// record starts.
    pub(crate) fn entries_end(&self) -> u64 {
        self.entries_at + self.chunks * DIGEST_LEN as u64
    }

    /// Reads table entries `first..first + out.len()` into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::Read`] naming the entries' offset.
    pub(crate) fn read_entries<S: VolumeSource + ?Sized>(
        &self,
        source: &S,
        origin: &Location,
        first: u64,
        out: &mut [[u8; DIGEST_LEN]],
    ) -> Result<(), Error> {
        debug_assert!(first + out.len() as u64 <= self.chunks);
        let offset = self.entries_at + first * DIGEST_LEN as u64;
        let bytes = read(source, origin, offset, out.len() * DIGEST_LEN)?;
        for (entry, bytes) in out.iter_mut().zip(bytes.chunks_exact(DIGEST_LEN)) {
            entry.copy_from_slice(bytes);
        }
        Ok(())
    }
}

/// Collects a volume's table while it is sealed: one entry per chunk, in
/// order, and the header digest; [`encode`] turns it into the trailer.
#[derive(Debug, Default)]
pub(crate) struct TableBuilder {
    pub(crate) header_digest: [u8; DIGEST_LEN],
    pub(crate) entries: Vec<[u8; DIGEST_LEN]>,
    /// Bytes of chunks written so far, from H_v.
    pub(crate) chunk_bytes: u64,
    /// BLAKE3 of the volume's chunk 0 alone, in a signed set: R_v if the
    /// volume has one chunk, whose root is no merge of entries.
    pub(crate) first_chunk_root: Option<[u8; DIGEST_LEN]>,
}
