//! Verifying a volume without any key (SPEC.md §7.7): its header's
//! structure, its trailer, the header digest h_v and every chunk's digest,
//! so that a burning station or a courier can check a disc it cannot read.
//!
//! Without a signature this proves only that nothing changed since the
//! trailer was written: anyone can seal a new volume or rewrite an
//! unsigned trailer. It finds damage, not forgery.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use sha2::{Digest, Sha256};

use crate::chunk_digest::{self, DIGEST_LEN, chunk_cv};
use crate::damage::{self, Damage, DamageKind, DamageMap};
use crate::error::{Error, Location, Volume};
use crate::format::{Header, SET_ID_LEN};
use crate::header::{read_header, read_trailer};
use crate::retrying_source::RetryingSource;
use crate::trailer::Trailer;
use crate::volumes::{VolumeSource, location};

/// Chunks one thread checks per step: their entries are read at once.
const RUN_CHUNKS: u64 = 16;

/// What a keyless check of one volume found.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestReport {
    /// Volume number, as its header and trailer say (not authenticated:
    /// no key was used).
    pub volume: u32,
    /// Set id, as the header says.
    pub set_id: [u8; SET_ID_LEN],
    /// SHA-256 of the header's set part, as
    /// [`VolumeReport::set_digest`](crate::VolumeReport::set_digest):
    /// volumes of one set share it.
    pub set_digest: [u8; 32],
    /// Chunks in the volume.
    pub chunks: u64,
    /// Padded header length H_v: the chunk region starts here.
    pub chunk_start: u64,
    /// E: the chunk region ends here; the trailer follows.
    pub chunk_end: u64,
    /// BLAKE3 of the chunk region [H_v, E), as the table says: what
    /// `b3sum` prints for those bytes if they are intact.
    pub chunk_region_blake3: [u8; DIGEST_LEN],
    /// Chunks (and the header, as a run of no chunks at byte 0) that do
    /// not match their digests; empty if the volume is intact.
    pub damage: DamageMap,
}

impl DigestReport {
    /// Whether every digest matched.
    pub fn is_intact(&self) -> bool {
        self.damage.is_empty()
    }
}

/// Checks one volume without any key: header structure (SPEC.md §7.1),
/// trailer (§13.3), header digest and every chunk digest (on `threads`
/// threads), and maps what does not match.
///
/// Chunks are read through unreadable sectors ([`RetryingSource`]): a
/// chunk with one is [`DamageKind::Unreadable`], its lost bytes in
/// [`Damage::unreadable`], and the check goes on with the next sector.
///
/// # Errors
///
/// Header errors as [`inspect`](crate::inspect); [`Error::NoDigests`] if
/// the volume was sealed without trailers; [`Error::Truncated`] and
/// [`Error::MalformedTrailer`] for its trailer; [`Error::Read`].
pub fn scan_digests<S: VolumeSource + Sync + ?Sized>(
    volume: &S,
    threads: usize,
) -> Result<DigestReport, Error> {
    let (mut header, len) = read_header(volume, 1)?;
    read_trailer(
        volume,
        &mut header,
        len,
        &location(volume, Volume::Input(1)),
    )?;
    let Some(trailer) = header.trailer.clone() else {
        return Err(Error::NoDigests {
            at: location(volume, Volume::Input(1)),
        });
    };
    let geometry = header.geometry();
    let at = Location::volume(header.volume).name(volume.name());
    let mut damage = DamageMap::new();
    let mut padded = vec![0u8; geometry.data_offset as usize];
    crate::volumes::read_at(volume, &mut padded, 0, Volume::Input(1), None)?;
    if chunk_digest::header_digest(&padded) != trailer.header_digest {
        let first = geometry.first_chunk(header.volume);
        damage.push(Damage {
            kind: DamageKind::DigestMismatch,
            at: at.at_byte(0),
            chunks: first..first,
            bytes: 0..geometry.data_offset,
            plaintext: damage::chunk_content(&geometry, first, 0),
            unreadable: None,
        });
    }
    let chunks = check_chunks(volume, &header, &trailer, &at, threads)?;
    damage.merge(chunks);
    let chunk_len = geometry.chunk_len();
    let region_len = trailer.chunk_end - geometry.data_offset;
    let origin = location(volume, Volume::Input(1));
    let root = match chunk_digest::root_from_table(region_len, chunk_len, |j| {
        let mut entry = [[0u8; DIGEST_LEN]];
        // Read errors surface in check_chunks first; a failing re-read
        // gives a root that matches nothing.
        let _ = trailer.read_entries(volume, &origin, j, &mut entry);
        entry[0]
    }) {
        Some(root) => root,
        None => {
            let mut chunk = vec![0u8; region_len as usize];
            crate::volumes::read_at(
                volume,
                &mut chunk,
                geometry.data_offset,
                Volume::Input(1),
                None,
            )?;
            *blake3::hash(&chunk).as_bytes()
        }
    };
    Ok(DigestReport {
        volume: header.volume,
        set_id: header.set.set_id,
        set_digest: Sha256::digest(header.set_bytes()).into(),
        chunks: trailer.chunks,
        chunk_start: geometry.data_offset,
        chunk_end: trailer.chunk_end,
        chunk_region_blake3: root,
        damage,
    })
}

/// As [`scan_digests`], but fails at the first mismatch: the header's, or
/// the lowest chunk's, as [`Error::DigestMismatch`].
///
/// # Errors
///
/// As [`scan_digests`], and [`Error::DigestMismatch`].
pub fn verify_digests<S: VolumeSource + Sync + ?Sized>(
    volume: &S,
    threads: usize,
) -> Result<DigestReport, Error> {
    let report = scan_digests(volume, threads)?;
    if let Some(first) = report.damage.iter().next() {
        let chunk = (first.chunks.start < first.chunks.end).then_some(first.chunks.start);
        return Err(Error::DigestMismatch {
            chunk,
            at: first.at.clone(),
        });
    }
    Ok(report)
}

/// Checks every chunk of the volume against its entry, `threads` at a
/// time, each thread taking runs of [`RUN_CHUNKS`].
fn check_chunks<S: VolumeSource + Sync + ?Sized>(
    volume: &S,
    header: &Header,
    trailer: &Trailer,
    at: &Location,
    threads: usize,
) -> Result<DamageMap, Error> {
    let geometry = header.geometry();
    let chunk_len = geometry.chunk_len();
    let first = geometry.first_chunk(header.volume);
    let origin = location(volume, Volume::Input(1));
    let next = AtomicU64::new(0);
    let found = Mutex::new((DamageMap::new(), None::<Error>));
    let reader = RetryingSource::new(volume);
    let work = || {
        let mut buf = vec![0u8; RUN_CHUNKS as usize * chunk_len];
        let mut entries = [[0u8; DIGEST_LEN]; RUN_CHUNKS as usize];
        let mut local = DamageMap::new();
        let result = loop {
            let start = next.fetch_add(RUN_CHUNKS, Ordering::Relaxed);
            if start >= trailer.chunks {
                break Ok(());
            }
            let count = (trailer.chunks - start).min(RUN_CHUNKS);
            let offset = geometry.data_offset + start * chunk_len as u64;
            let len = (trailer.chunk_end - offset).min(count * chunk_len as u64) as usize;
            let entries = &mut entries[..count as usize];
            if let Err(err) = trailer.read_entries(volume, &origin, start, entries) {
                break Err(err);
            }
            // Unreadable sectors read as zeros and are named: the chunks
            // they fall in are damage, and the check goes on.
            let lost = match reader.read_at_with_erasures(&mut buf[..len], offset) {
                Ok(lost) => lost,
                Err(source) => {
                    let at = location(volume, Volume::Number(header.volume))
                        .byte(offset)
                        .chunk(first + start);
                    break Err(Error::Read { at, source });
                }
            };
            for (j, (chunk, entry)) in buf[..len].chunks(chunk_len).zip(entries.iter()).enumerate()
            {
                let index = start + j as u64;
                let chunk_at = offset + (j * chunk_len) as u64;
                let bytes = chunk_at..chunk_at + chunk.len() as u64;
                let unreadable = lost
                    .map
                    .overlapping(bytes.clone())
                    .reduce(|a, b| a.start..b.end);
                let kind = match (&unreadable, &lost.error) {
                    (Some(_), Some(err)) => DamageKind::Unreadable {
                        kind: err.kind(),
                        os_error: err.raw_os_error(),
                        message: err.to_string(),
                    },
                    _ if chunk_cv(index, chunk_len, chunk) != *entry => DamageKind::DigestMismatch,
                    _ => continue,
                };
                let global = first + index;
                local.push(Damage {
                    kind,
                    at: at.at_byte(chunk_at).chunk(global),
                    chunks: global..global + 1,
                    bytes,
                    plaintext: damage::chunk_content(
                        &geometry,
                        global,
                        (chunk.len() as u64).saturating_sub(crate::TAG_LEN as u64),
                    ),
                    unreadable,
                });
            }
        };
        if let Ok(mut found) = found.lock() {
            found.0.merge(local);
            if let Err(err) = result {
                found.1.get_or_insert(err);
            }
        }
    };
    let helpers = threads
        .max(1)
        .min(trailer.chunks.div_ceil(RUN_CHUNKS) as usize)
        .saturating_sub(1);
    thread::scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(work);
        }
        work();
    });
    let (map, error) = found
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match error {
        Some(err) => Err(err),
        None => Ok(map),
    }
}
