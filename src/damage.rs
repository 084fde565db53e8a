//! Damage, reported whole: what a verifier or salvage found wrong with a
//! set, chunk by chunk, and where. [`Damage`] is one run of damaged chunks,
//! [`DamageKind`] why they are damaged, [`DamageMap`] all of it in chunk
//! order. Opening ([`OpenReader::salvage_to`](crate::OpenReader::salvage_to)),
//! archive salvage and the verifiers all build their reports here, so they
//! agree on every range.

use std::fmt;
use std::io;
use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use crate::error::{Error, Location, Volume};
use crate::format::{Geometry, PAYLOAD_PREFIX_LEN};
use crate::pipeline;
use crate::retrying_source::RetryingSource;
use crate::volumes::VolumeSource;

/// Why chunks are damaged.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DamageKind {
    /// The source could not read them (an unreadable sector: EIO).
    Unreadable {
        /// The kind of the operating system's error.
        kind: io::ErrorKind,
        /// The raw OS error number (5 for EIO), if the error has one.
        os_error: Option<i32>,
        /// The error's message, as the OS words it.
        message: String,
    },
    /// They were read but did not authenticate; deliberately silent about why.
    Unauthenticated,
    /// They are not there: a volume was not given, or was cut short.
    Missing,
    /// They authenticated but break a rule only a key holder could break
    /// (SPEC.md §6), such as an end-of-volume chunk too early.
    Malformed {
        /// Which rule is broken.
        reason: &'static str,
    },
    /// Bytes after the last chunk of a volume: no chunk is lost, but the
    /// volume is not as it was sealed.
    TrailingData,
    /// They do not match their digest in the volume trailer (SPEC.md §13.4),
    /// checked without a key: damaged since the trailer was written.
    DigestMismatch,
}

impl DamageKind {
    /// The damage an error stands for, or `None` for errors that are not
    /// damage of the bytes (a wrong key, a failing output, a bad option).
    ///
    /// The one place where errors are classified, so verifiers, stream
    /// salvage and archive salvage agree.
    pub(crate) fn of(err: &Error) -> Option<Self> {
        Some(match err {
            Error::Read { source, .. } => DamageKind::Unreadable {
                kind: source.kind(),
                os_error: source.raw_os_error(),
                message: source.to_string(),
            },
            Error::Unauthenticated { .. } | Error::HeaderDamaged { .. } => {
                DamageKind::Unauthenticated
            }
            Error::Truncated { .. } | Error::VolumeMissing { .. } => DamageKind::Missing,
            Error::MalformedChunk { reason, .. } => DamageKind::Malformed { reason },
            Error::TrailingData { .. } => DamageKind::TrailingData,
            Error::DigestMismatch { .. } => DamageKind::DigestMismatch,
            _ => return None,
        })
    }
}

/// One run of damaged chunks of one volume, all damaged the same way.
///
/// Ranges whose end is not known (the chunks after a cut in the last volume
/// given, or the volumes after it) end at `u64::MAX`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Why the chunks are damaged.
    pub kind: DamageKind,
    /// Where the damage starts: volume, byte, first chunk, volume name.
    pub at: Location,
    /// Global chunk indices (one chunk, a run of neighbours, or a volume).
    pub chunks: Range<u64>,
    /// Bytes of volume `at.volume` the damage covers; may run past the
    /// volume's end for chunks cut off.
    pub bytes: Range<u64>,
    /// Content offsets the damaged chunks hold, as
    /// [`OpenReader`](crate::OpenReader) positions and archive entry
    /// offsets count (after the payload prefix and the manifest, SPEC.md
    /// §6.7). Empty for damage that loses no plaintext (trailing bytes).
    ///
    /// Exact from [`OpenReader::salvage_to`](crate::OpenReader::salvage_to)
    /// and from [`Opener::verify_set`](crate::Opener::verify_set) when
    /// volume 1's chunk 0 is intact. A volume checked alone
    /// ([`Opener::scan_volume`](crate::Opener::scan_volume),
    /// [`VolumeVerifier`](crate::VolumeVerifier)) cannot know the
    /// manifest's length R, so there these count from the end of the 4-byte
    /// prefix: R bytes high. Ranges past the content's end are padding.
    pub plaintext: Range<u64>,
    /// For damage found by reading through unreadable sectors
    /// ([`RetryingSource`](crate::RetryingSource)): the bytes of `bytes`
    /// that could not be read, from the first unreadable sector's start to
    /// the last one's end (the rest was read and is intact or not, as the
    /// kind says). `None` when the reader did not read around the error.
    pub unreadable: Option<Range<u64>>,
}

impl Damage {
    /// Whether `next` continues this run: same kind and volume, and the
    /// chunks and bytes right after these.
    fn continued_by(&self, next: &Damage) -> bool {
        self.kind == next.kind
            && self.at.volume == next.at.volume
            && self.chunks.end == next.chunks.start
            && self.bytes.end == next.bytes.start
    }
}

/// Every damaged run found, in chunk order.
///
/// Memory grows with the number of damaged runs, never with the chunks
/// checked: neighbouring chunks damaged the same way are one [`Damage`],
/// and past [`DamageMap::MAX_RECORDED`] runs only a count is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DamageMap {
    runs: Vec<Damage>,
    unrecorded: u64,
}

/// One line a person reads: where the run starts (the volume's name first,
/// as [`Location`] shows it), which chunks, and what is wrong with them:
/// `r.002.kuv (volume 2) at byte 10,240 (chunk 9): chunks 9 to 11 failed authentication`,
/// or for one chunk `… (chunk 9): failed authentication`.
impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chunks = &self.chunks;
        // One chunk is named by the location already.
        let (what, verb) = match chunks.end {
            u64::MAX => (format!("the chunks from {} on ", chunks.start), "are "),
            end if end <= chunks.start + 1 => (String::new(), ""),
            end => (format!("chunks {} to {} ", chunks.start, end - 1), "are "),
        };
        write!(f, "{}: {what}", self.at)?;
        match &self.kind {
            DamageKind::Unauthenticated => write!(f, "failed authentication"),
            DamageKind::DigestMismatch if verb.is_empty() => {
                write!(f, "does not match its trailer digest")
            }
            DamageKind::DigestMismatch => write!(f, "do not match their trailer digests"),
            DamageKind::Unreadable { message, .. } => match &self.unreadable {
                Some(lost) => write!(
                    f,
                    "cannot be read: {message} (bytes {} to {} lost)",
                    lost.start, lost.end
                ),
                None => write!(f, "cannot be read: {message}"),
            },
            DamageKind::Missing => write!(f, "{verb}missing"),
            DamageKind::Malformed { reason } => write!(f, "{verb}malformed: {reason}"),
            DamageKind::TrailingData => write!(f, "bytes follow the last chunk"),
        }
    }
}

impl DamageMap {
    /// Moves every run's content offsets down by `by` bytes: for maps
    /// built before the manifest's length R was known (content offsets
    /// then count from the end of the 4-byte prefix, SPEC.md §15.1).
    pub(crate) fn shift_content(&mut self, by: u64) {
        for run in &mut self.runs {
            run.plaintext =
                run.plaintext.start.saturating_sub(by)..run.plaintext.end.saturating_sub(by);
        }
    }

    /// Runs recorded in full; more are only counted ([`unrecorded`](Self::unrecorded)).
    pub const MAX_RECORDED: usize = 10_000;

    /// An empty map.
    pub fn new() -> Self {
        DamageMap::default()
    }

    /// Whether nothing is damaged.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty() && self.unrecorded == 0
    }

    /// Runs recorded.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// The runs recorded, in chunk order.
    pub fn iter(&self) -> std::slice::Iter<'_, Damage> {
        self.runs.iter()
    }

    /// The runs recorded in volume `volume`.
    pub fn in_volume(&self, volume: u32) -> impl Iterator<Item = &Damage> {
        self.runs
            .iter()
            .filter(move |d| d.at.volume == Volume::Number(volume))
    }

    /// Runs found past [`MAX_RECORDED`](Self::MAX_RECORDED) and not kept.
    pub fn unrecorded(&self) -> u64 {
        self.unrecorded
    }

    /// Damaged chunks recorded (a run of unknown end counts as one).
    pub fn chunk_count(&self) -> u64 {
        self.runs
            .iter()
            .map(|d| match d.chunks.end {
                u64::MAX => 1,
                end => end - d.chunks.start,
            })
            .sum()
    }

    /// Adds a run, merging it with a neighbour it continues.
    pub(crate) fn push(&mut self, damage: Damage) {
        let at = self
            .runs
            .partition_point(|d| d.chunks.start <= damage.chunks.start);
        if let Some(before) = at.checked_sub(1).map(|i| &mut self.runs[i])
            && before.continued_by(&damage)
        {
            before.chunks.end = damage.chunks.end;
            before.bytes.end = damage.bytes.end;
            before.plaintext.end = damage.plaintext.end.max(before.plaintext.end);
            before.unreadable = match (before.unreadable.take(), damage.unreadable) {
                (Some(a), Some(b)) => Some(a.start.min(b.start)..a.end.max(b.end)),
                (a, b) => a.or(b),
            };
            return;
        }
        if self.runs.len() >= Self::MAX_RECORDED {
            self.unrecorded += 1;
            return;
        }
        self.runs.insert(at, damage);
    }

    /// Adds every run of `other`.
    pub(crate) fn merge(&mut self, other: DamageMap) {
        self.unrecorded += other.unrecorded;
        for damage in other.runs {
            self.push(damage);
        }
    }
}

impl<'a> IntoIterator for &'a DamageMap {
    type Item = &'a Damage;
    type IntoIter = std::slice::Iter<'a, Damage>;

    fn into_iter(self) -> Self::IntoIter {
        self.runs.iter()
    }
}

/// Content offsets of payload bytes `payload` when the content starts at
/// payload offset `start`.
fn content_range_after(start: u64, payload: Range<u64>) -> Range<u64> {
    payload.start.saturating_sub(start)..payload.end.saturating_sub(start)
}

/// Content offsets chunk `chunk` holds, `plain` plaintext bytes long (the
/// payload prefix is not content, SPEC.md §6.7). Without chunk 0 the
/// manifest's length is not known, so this counts the content from the end
/// of the 4-byte prefix: exact for sets without a manifest, R bytes high
/// otherwise (SPEC.md §15.1); [`chunk_content_after`] is exact.
pub(crate) fn chunk_content(geometry: &Geometry, chunk: u64, plain: u64) -> Range<u64> {
    chunk_content_after(PAYLOAD_PREFIX_LEN as u64, geometry, chunk, plain)
}

/// Content offsets chunk `chunk` holds when the content starts at payload
/// offset `start` (after the prefix and the manifest).
pub(crate) fn chunk_content_after(
    start: u64,
    geometry: &Geometry,
    chunk: u64,
    plain: u64,
) -> Range<u64> {
    let first = chunk.saturating_mul(geometry.plain_len() as u64);
    content_range_after(start, first..first.saturating_add(plain))
}

/// Where one chunk lies, for a [`Damage`] of it.
pub(crate) struct ChunkPlace {
    pub(crate) at: Location,
    /// Ciphertext length, tag included.
    pub(crate) len: u64,
    /// Content offsets it holds.
    pub(crate) plaintext: Range<u64>,
}

impl ChunkPlace {
    /// The damage `err` means for this chunk, or `None` if it is no damage.
    pub(crate) fn damage(self, chunk: u64, err: &Error) -> Option<Damage> {
        let kind = DamageKind::of(err)?;
        // Every chunk's place names its byte.
        let offset = self.at.offset.unwrap_or_default();
        Some(Damage {
            kind,
            at: self.at,
            chunks: chunk..chunk + 1,
            bytes: offset..offset.saturating_add(self.len),
            plaintext: self.plaintext,
            unreadable: None,
        })
    }
}

/// The bytes of `bytes` that `source` cannot read (unreadable sectors,
/// [`is_unreadable`](crate::is_unreadable)), from the first such sector's
/// start to the last one's end; `None` if all of it reads. Reads
/// `bytes` (one chunk: bounded by the chunk size) sector by sector around
/// each error.
pub(crate) fn unreadable_in<S: VolumeSource + ?Sized>(
    source: &S,
    bytes: Range<u64>,
) -> Option<Range<u64>> {
    let end = bytes.end.min(source.size().ok()?);
    let len = usize::try_from(end.checked_sub(bytes.start)?).ok()?;
    let mut buf = vec![0u8; len];
    let lost = RetryingSource::new(source)
        .read_at_with_erasures(&mut buf, bytes.start)
        .ok()?;
    lost.map
        .overlapping(bytes.start..end)
        .reduce(|a, b| a.start..b.end)
}

/// Chunks checked per pipeline run: the damage found is sorted and merged
/// into the map after each, so what is held besides the map is bounded.
const WINDOW_CHUNKS: u64 = 4096;

/// Opens chunks `first..=last` on `threads` threads and writes their
/// plaintext to `out` from `skip` bytes into the first, `len` bytes at
/// most, going on past damage: a damaged chunk is written as zeros of its
/// exact plaintext length (`plain_of`), so later offsets stay right, and
/// `record` is told of it, in chunk order. Errors that are not damage
/// (writing `out`) stop the run.
#[allow(clippy::too_many_arguments, reason = "private; one loop of salvage")]
pub(crate) fn open_through_damage<F, W>(
    geometry: &Geometry,
    threads: usize,
    (first, last): (u64, u64),
    skip: usize,
    len: u64,
    open_chunk: &F,
    plain_of: &(dyn Fn(u64) -> usize + Sync),
    out: &mut W,
    record: &mut dyn FnMut(u64, Error),
) -> Result<u64, Error>
where
    F: Fn(u64, &mut [u8]) -> Result<usize, Error> + Sync,
    W: std::io::Write + ?Sized,
{
    let found: Mutex<Vec<(u64, Error)>> = Mutex::new(Vec::new());
    let through = |chunk: u64, buf: &mut [u8]| match open_chunk(chunk, buf) {
        Err(err) if DamageKind::of(&err).is_some() => {
            let plain = plain_of(chunk);
            buf[..plain].fill(0);
            found
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((chunk, err));
            Ok(plain)
        }
        other => other,
    };
    let mut written = 0;
    let mut start = first;
    let mut skip = skip;
    while start <= last && written < len {
        let end = start.saturating_add(WINDOW_CHUNKS - 1).min(last);
        let range = pipeline::ChunkRange {
            first: start,
            last: end,
            skip,
            len: len - written,
        };
        let result = pipeline::open_range(geometry, threads, range, &through, out);
        let mut window = std::mem::take(&mut *found.lock().unwrap_or_else(PoisonError::into_inner));
        window.sort_by_key(|(chunk, _)| *chunk);
        for (chunk, err) in window {
            record(chunk, err);
        }
        written += result?;
        skip = 0;
        match end.checked_add(1) {
            Some(next) => start = next,
            None => break,
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunk: u64, kind: DamageKind) -> Damage {
        Damage {
            kind,
            at: Location::volume(1).byte(2048 + chunk * 4096).chunk(chunk),
            chunks: chunk..chunk + 1,
            bytes: 2048 + chunk * 4096..2048 + (chunk + 1) * 4096,
            plaintext: chunk * 4080..(chunk + 1) * 4080,
            unreadable: None,
        }
    }

    #[test]
    fn neighbours_damaged_alike_are_one_run_and_the_map_stays_sorted() {
        let mut map = DamageMap::new();
        assert!(map.is_empty());
        map.push(run(5, DamageKind::Unauthenticated));
        map.push(run(3, DamageKind::Unauthenticated));
        map.push(run(6, DamageKind::Unauthenticated));
        map.push(run(7, DamageKind::Missing));
        let runs: Vec<_> = map.iter().map(|d| d.chunks.clone()).collect();
        assert_eq!(runs, [3..4, 5..7, 7..8]);
        assert_eq!(
            map.iter().nth(1).expect("run").bytes,
            2048 + 5 * 4096..2048 + 7 * 4096
        );
        assert_eq!(map.chunk_count(), 4);
        assert_eq!(map.in_volume(1).count(), 3);
        assert_eq!(map.in_volume(2).count(), 0);
    }

    #[test]
    fn past_the_cap_runs_are_counted() {
        let mut map = DamageMap::new();
        for chunk in 0..DamageMap::MAX_RECORDED as u64 + 3 {
            // Every other chunk: no two runs merge.
            map.push(run(chunk * 2, DamageKind::Unauthenticated));
        }
        assert_eq!(map.len(), DamageMap::MAX_RECORDED);
        assert_eq!(map.unrecorded(), 3);
        assert!(!map.is_empty());
    }

    #[test]
    fn only_damage_of_the_bytes_is_damage() {
        assert_eq!(
            DamageKind::of(&Error::Unauthenticated {
                chunk: 1,
                at: Location::volume(1).byte(0).chunk(1),
            }),
            Some(DamageKind::Unauthenticated)
        );
        let eio = Error::Read {
            at: Location::volume(1).byte(0),
            source: io::Error::from_raw_os_error(5),
        };
        assert!(matches!(
            DamageKind::of(&eio),
            Some(DamageKind::Unreadable {
                os_error: Some(5),
                ..
            })
        ));
        assert_eq!(DamageKind::of(&Error::WrongPassphrase), None);
        assert_eq!(
            DamageKind::of(&Error::Io(io::Error::other("disk full"))),
            None
        );
    }
}
