//! Finding volumes on a raw disc: an ISO 9660 / UDF image or a block
//! device holds each volume file as a run of whole sectors, and a scratch
//! over the directory hides where. Every volume starts with MAGIC on a
//! sector boundary and ends with its trailer's end sector, whose head says
//! the volume's length (SPEC.md §13.2): a scan of sector starts finds both,
//! without the filesystem.

use std::io;

use crate::erasure_map::ErasureMap;
use crate::error::{Error, Location, Volume};
use crate::format::{MAGIC, SECTOR, SET_ID_LEN};
use crate::header::read_header;
use crate::retrying_source::{ReadPolicy, RetryingSource};
use crate::trailer::{END_RECORD_LEN, HEAD_LEN, PARITY_END_RECORD_LEN, TRAILER_MAGIC};
use crate::volumes::VolumeSource;

/// Volumes a scan reports at most: more is [`Error::LimitExceeded`].
pub const MAX_DISC_VOLUMES: usize = 64;
/// Bytes a scan reads at a time: sequential, large reads, as a drive
/// reads fastest.
const SCAN_BLOCK: usize = 4 << 20;
/// Sectors with a magic a scan keeps before it gives up: a disc with more
/// candidates than this holds something other than a few volumes.
const MAX_CANDIDATES: usize = 4 * MAX_DISC_VOLUMES;
/// A volume found on a raw disc.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundVolume {
    /// Where the volume starts in the image or device (a sector boundary).
    pub offset: u64,
    /// Its length: from its trailer if one was found (exact), else up to
    /// the next volume found or the end of the disc (a guess; a volume
    /// without its end is then read as truncated or with trailing data).
    pub len: u64,
    /// Volume number, as its header or trailer says (not authenticated).
    pub volume: u32,
    /// Set id, as its header or trailer says (not authenticated).
    pub set_id: [u8; SET_ID_LEN],
    /// Whether a header was found at `offset`.
    pub header_found: bool,
    /// Whether the trailer's end sector was found, at `offset + len − 2048`.
    pub end_found: bool,
}

impl FoundVolume {
    /// The volume as a source of its own: `disc` read from `offset` for
    /// `len` bytes, named `NAME@OFFSET` after `disc`.
    pub fn source<S: VolumeSource>(&self, disc: S) -> OffsetSource<S> {
        OffsetSource::new(disc, self.offset, self.len)
    }
}

/// What a scan of a disc found.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscScan {
    /// The volumes, in the order they lie on the disc.
    pub volumes: Vec<FoundVolume>,
    /// Byte ranges of the disc that could not be read (skipped, not fatal).
    pub unreadable: ErasureMap,
}

/// Bytes [offset, offset + len) of another source, as a volume of their
/// own: a volume found on a disc, read through the disc.
#[derive(Debug, Clone)]
pub struct OffsetSource<S> {
    inner: S,
    offset: u64,
    len: u64,
    name: String,
}

impl<S: VolumeSource> OffsetSource<S> {
    /// `len` bytes of `inner` from `offset`, named `NAME@OFFSET` (`disc`
    /// for an unnamed source).
    pub fn new(inner: S, offset: u64, len: u64) -> Self {
        let name = format!("{}@{offset}", inner.name().unwrap_or("disc"));
        OffsetSource {
            inner,
            offset,
            len,
            name,
        }
    }

    /// Where the view starts in the source.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The source viewed.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: VolumeSource> VolumeSource for OffsetSource<S> {
    fn size(&self) -> io::Result<u64> {
        Ok(self.len)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|end| end > self.len) {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.inner.read_exact_at(buf, self.offset + offset)
    }

    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }
}

/// Whether `source` looks like a raw disc rather than a volume: no MAGIC
/// at byte 0, and whole sectors (an image, a block device).
///
/// # Errors
///
/// Any error reading its size or first bytes.
pub fn is_raw_disc<S: VolumeSource + ?Sized>(source: &S) -> io::Result<bool> {
    let size = source.size()?;
    if size == 0 || size % SECTOR != 0 {
        return Ok(false);
    }
    let mut magic = [0u8; 8];
    match RetryingSource::new(source).read_exact_at(&mut magic, 0) {
        Ok(()) => Ok(magic != MAGIC),
        Err(err) => Err(err),
    }
}

/// Scans every sector start of `disc` for volume headers and trailer end
/// sectors, reading around unreadable sectors sector by sector
/// ([`ReadPolicy::SECTORS`]).
///
/// # Errors
///
/// As [`find_volumes_with`].
pub fn find_volumes<S: VolumeSource + ?Sized>(disc: &S) -> Result<DiscScan, Error> {
    find_volumes_with(disc, ReadPolicy::default())
}

/// A trailer head or end sector seen by the scan.
#[derive(Debug, Clone)]
struct TrailerSeen {
    at: u64,
    head: [u8; HEAD_LEN],
    /// Zero after the end record: an end sector, not a head.
    zero_after_end_record: bool,
}

/// Length of the end record a trailer sector would hold: 104 bytes, or
/// 160 with the parity geometry body when its B is nonzero (SPEC.md
/// §16.11).
fn end_record_len(sector: &[u8]) -> usize {
    match sector[64..HEAD_LEN].iter().any(|&b| b != 0) {
        true => PARITY_END_RECORD_LEN,
        false => END_RECORD_LEN,
    }
}

impl TrailerSeen {
    fn volume(&self) -> u32 {
        u32::from_be_bytes(self.head[12..16].try_into().expect("4 bytes"))
    }

    fn set_id(&self) -> [u8; SET_ID_LEN] {
        self.head[16..16 + SET_ID_LEN].try_into().expect("32 bytes")
    }

    fn field(&self, at: usize) -> u64 {
        u64::from_be_bytes(self.head[at..at + 8].try_into().expect("8 bytes"))
    }

    /// (T0, len_v) as the head's E, M and B give them (SPEC.md §13.2), if
    /// they make sense at all.
    fn layout(&self) -> Option<(u64, u64)> {
        let (e, m, b) = (self.field(48), self.field(56), self.field(64));
        if e == 0 || m < HEAD_LEN as u64 {
            return None;
        }
        let t0 = e.checked_next_multiple_of(SECTOR)?;
        let len = t0
            .checked_add(m.checked_next_multiple_of(SECTOR)?)?
            .checked_add(b)?
            .checked_add(SECTOR)?;
        Some((t0, len))
    }
}

/// A header seen by the scan, parsed without a key.
#[derive(Debug, Clone)]
struct HeaderSeen {
    at: u64,
    volume: u32,
    set_id: [u8; SET_ID_LEN],
    /// H + K·C: the length of a full volume of a split set without
    /// trailers; `None` if unsplit or with trailers.
    full_len: Option<u64>,
}

/// As [`find_volumes`], reading around errors as `policy` says.
///
/// Reads the disc once, in order, in 4 MiB blocks; holds one block and at
/// most a few hundred candidate sectors whatever the disc's size. A
/// volume is paired from its header (MAGIC at a sector start, parsed
/// without a key) and its trailer's end sector (TRAILER_MAGIC, zero after
/// the end record) by set id and volume number, and is as long as its
/// trailer says. A volume whose header is lost is found from its end
/// sector or its trailer's head (which repeat the set id and number); one
/// whose trailer is lost ends where the next begins, or at the disc's end.
///
/// # Errors
///
/// [`Error::Read`] for an error that is not an unreadable sector;
/// [`Error::LimitExceeded`] for more than [`MAX_DISC_VOLUMES`] volumes or
/// more candidate sectors than a scan keeps.
pub fn find_volumes_with<S: VolumeSource + ?Sized>(
    disc: &S,
    policy: ReadPolicy,
) -> Result<DiscScan, Error> {
    let reader = RetryingSource::with_policy(disc, policy);
    let read_fail = |offset: u64, source: io::Error| Error::Read {
        at: Location::new(Volume::Input(1))
            .name(disc.name())
            .byte(offset),
        source,
    };
    let size = disc.size().map_err(|err| read_fail(0, err))? / SECTOR * SECTOR;
    let mut headers_at = Vec::new();
    let mut trailers = Vec::new();
    let mut buf = vec![0u8; SCAN_BLOCK];
    let mut offset = 0u64;
    while offset < size {
        let len = (size - offset).min(SCAN_BLOCK as u64) as usize;
        let block = &mut buf[..len];
        reader
            .read_at_with_erasures(block, offset)
            .map_err(|err| read_fail(offset, err))?;
        for (i, sector) in block.chunks_exact(SECTOR as usize).enumerate() {
            let at = offset + (i as u64) * SECTOR;
            if sector[..8] == MAGIC {
                headers_at.push(at);
            } else if sector[..8] == TRAILER_MAGIC {
                trailers.push(TrailerSeen {
                    at,
                    head: sector[..HEAD_LEN]
                        .try_into()
                        .expect("a sector holds a head"),
                    zero_after_end_record: sector[end_record_len(sector)..].iter().all(|&b| b == 0),
                });
            }
            if headers_at.len() + trailers.len() > MAX_CANDIDATES {
                return Err(Error::LimitExceeded {
                    what: "sectors with a volume or trailer magic on a disc",
                    found: (headers_at.len() + trailers.len()) as u64,
                    limit: MAX_CANDIDATES as u64,
                });
            }
        }
        offset += len as u64;
    }
    let headers: Vec<HeaderSeen> = headers_at
        .iter()
        .filter_map(|&at| {
            let view = OffsetSource::new(&reader, at, size - at);
            let (header, _) = read_header(&view, 1).ok()?;
            let geometry = header.geometry();
            // Without trailers a full volume's length follows from K; with
            // them, from the trailer, which was not found with the header.
            let split = geometry.chunks_per_volume > 0 && !header.set.trailers;
            let full_len = split.then(|| {
                geometry.data_offset.saturating_add(
                    geometry
                        .chunks_per_volume
                        .saturating_mul(geometry.chunk_len() as u64),
                )
            });
            Some(HeaderSeen {
                at,
                volume: header.volume,
                set_id: header.set.set_id,
                full_len,
            })
        })
        .collect();
    let mut volumes = pair(&headers, &trailers, size);
    volumes.sort_by_key(|v| v.offset);
    volumes.dedup_by_key(|v| v.offset);
    // A header without its trailer ends where the next volume starts.
    for i in 0..volumes.len() {
        if !volumes[i].end_found {
            let next = volumes.get(i + 1).map_or(size, |next| next.offset);
            let guess = next - volumes[i].offset;
            volumes[i].len = volumes[i].len.min(guess);
        }
    }
    if volumes.len() > MAX_DISC_VOLUMES {
        return Err(Error::LimitExceeded {
            what: "volumes on a disc",
            found: volumes.len() as u64,
            limit: MAX_DISC_VOLUMES as u64,
        });
    }
    Ok(DiscScan {
        volumes,
        unreadable: reader.erasures(),
    })
}

/// Pairs headers and trailer sectors into volumes.
fn pair(headers: &[HeaderSeen], trailers: &[TrailerSeen], size: u64) -> Vec<FoundVolume> {
    let header_at = |at: u64, seen: &TrailerSeen| {
        headers
            .iter()
            .any(|h| h.at == at && h.volume == seen.volume() && h.set_id == seen.set_id())
    };
    let mut volumes: Vec<FoundVolume> = Vec::new();
    for seen in trailers {
        let Some((t0, len)) = seen.layout() else {
            continue;
        };
        // Where the volume starts if this is its end sector, or its head.
        let as_end = (seen.at + SECTOR).checked_sub(len);
        let as_head = seen.at.checked_sub(t0);
        // Its twin: the head repeats the end record's first 72 bytes.
        let twin = |other_at: u64| {
            trailers
                .iter()
                .any(|t| t.at == other_at && t.head == seen.head)
        };
        let start = match (as_end, as_head) {
            (Some(start), _) if header_at(start, seen) || twin(start + t0) => Some((start, true)),
            (_, Some(start))
                if header_at(start, seen) || start.checked_add(len - SECTOR).is_some_and(twin) =>
            {
                Some((start, false))
            }
            (Some(start), _) if seen.zero_after_end_record => Some((start, true)),
            (_, Some(start)) if !seen.zero_after_end_record => Some((start, false)),
            _ => None,
        };
        let Some((start, is_end)) = start else {
            continue;
        };
        if start.checked_add(len).is_none_or(|end| end > size) {
            continue;
        }
        let found = FoundVolume {
            offset: start,
            len,
            volume: seen.volume(),
            set_id: seen.set_id(),
            header_found: header_at(start, seen),
            end_found: is_end,
        };
        match volumes
            .iter_mut()
            .find(|v| v.offset == start && v.len == len)
        {
            Some(known) => known.end_found |= found.end_found,
            None => volumes.push(found),
        }
    }
    for header in headers {
        if volumes.iter().any(|v| v.offset == header.at) {
            continue;
        }
        volumes.push(FoundVolume {
            offset: header.at,
            len: header.full_len.unwrap_or(u64::MAX),
            volume: header.volume,
            set_id: header.set_id,
            header_found: true,
            end_found: false,
        });
    }
    volumes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_source_reads_its_window_only() {
        let disc: Vec<u8> = (0..100u8).collect();
        let view = OffsetSource::new(disc.as_slice(), 10, 20);
        let mut buf = [0u8; 5];
        view.read_exact_at(&mut buf, 15).expect("inside");
        assert_eq!(buf, [25, 26, 27, 28, 29]);
        assert_eq!(view.size().expect("len"), 20);
        let err = view
            .read_exact_at(&mut buf, 16)
            .expect_err("past the window");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(view.read_exact_at(&mut buf, u64::MAX).is_err());
        assert_eq!(view.name(), Some("disc@10"));
    }

    #[test]
    fn a_disc_of_zeros_holds_nothing_and_is_a_raw_disc() {
        let disc = vec![0u8; 3 * SECTOR as usize];
        let scan = find_volumes(disc.as_slice()).expect("scan");
        assert!(scan.volumes.is_empty() && scan.unreadable.is_empty());
        assert!(is_raw_disc(disc.as_slice()).expect("size"));
        assert!(
            !is_raw_disc(&disc[..100]).expect("size"),
            "not whole sectors"
        );
    }

    #[test]
    fn trailer_sectors_with_any_lengths_find_nothing_impossible() {
        let extremes = [
            0u64,
            1,
            2047,
            2048,
            4096,
            u64::MAX / 2,
            u64::MAX - 2047,
            u64::MAX,
        ];
        for &e in &extremes {
            for &m in &extremes {
                for &b in &[0u64, 2048, u64::MAX] {
                    let mut disc = vec![0u8; 8 * SECTOR as usize];
                    let at = 5 * SECTOR as usize;
                    disc[at..at + 8].copy_from_slice(&TRAILER_MAGIC);
                    disc[at + 48..at + 56].copy_from_slice(&e.to_be_bytes());
                    disc[at + 56..at + 64].copy_from_slice(&m.to_be_bytes());
                    disc[at + 64..at + 72].copy_from_slice(&b.to_be_bytes());
                    let scan = find_volumes(disc.as_slice()).expect("scan");
                    for found in scan.volumes {
                        assert!(found.offset + found.len <= disc.len() as u64, "{e} {m} {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn too_many_magics_are_refused() {
        let mut disc = vec![0u8; (MAX_CANDIDATES as u64 + 1) as usize * SECTOR as usize];
        for sector in disc.chunks_mut(SECTOR as usize) {
            sector[..8].copy_from_slice(&MAGIC);
        }
        assert!(matches!(
            find_volumes(disc.as_slice()),
            Err(Error::LimitExceeded { .. })
        ));
    }
}
