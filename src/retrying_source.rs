//! Reading through unreadable sectors: a failed read is retried unit by
//! unit (a sector on CD and in files, an ECC block on DVD, a cluster on
//! BD), what stays unreadable is zero-filled and recorded as an erasure,
//! and the read goes on, as dvdisaster and ddrescue read a damaged disc.

use std::io;
use std::sync::{Mutex, PoisonError};

use crate::erasure_map::ErasureMap;
use crate::format::SECTOR;
use crate::volumes::VolumeSource;

/// How a [`RetryingSource`] reads around an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadPolicy {
    /// Bytes read at a time after a failure, and the alignment of those
    /// reads (a multiple of nothing in particular, but a drive fails whole
    /// sectors, ECC blocks or clusters, so read those).
    pub unit: u64,
    /// Units after a failed unit marked erased without being tried: a
    /// drive that failed one ECC block usually fails the next few, and
    /// each failed read can cost seconds.
    pub skip: u64,
    /// Further attempts at a failed unit before it counts as erased.
    pub retries: u32,
}

impl ReadPolicy {
    /// Files, CDs and the default: sector by sector, nothing skipped.
    pub const SECTORS: ReadPolicy = ReadPolicy {
        unit: SECTOR,
        skip: 0,
        retries: 0,
    };

    /// DVD: whole 16-sector ECC blocks, skipping one block after a failure
    /// (dvdisaster's default jump of 16 sectors).
    pub const DVD: ReadPolicy = ReadPolicy {
        unit: 16 * SECTOR,
        skip: 1,
        retries: 0,
    };

    /// BD: whole 32-sector clusters, skipping one cluster after a failure.
    pub const BD: ReadPolicy = ReadPolicy {
        unit: 32 * SECTOR,
        skip: 1,
        retries: 0,
    };
}

impl ReadPolicy {
    /// The policy for an optical disc of `len` bytes, by its size class:
    /// up to 1 GiB a CD ([`SECTORS`](Self::SECTORS)), up to 9 GB a DVD
    /// ([`DVD`](Self::DVD)), beyond a BD ([`BD`](Self::BD)). For a drive;
    /// an image file fails (if at all) by sectors.
    pub fn for_disc_len(len: u64) -> ReadPolicy {
        match len {
            0..=0x4000_0000 => ReadPolicy::SECTORS,
            0x4000_0001..=9_000_000_000 => ReadPolicy::DVD,
            _ => ReadPolicy::BD,
        }
    }
}

impl Default for ReadPolicy {
    fn default() -> Self {
        ReadPolicy::SECTORS
    }
}

/// What one read through damage lost: the byte ranges zero-filled in the
/// buffer (absolute offsets in the source), and the first error behind
/// them.
#[derive(Debug, Default)]
pub struct Erasures {
    /// The ranges read as zeros because they could not be read.
    pub map: ErasureMap,
    /// The first unreadable-sector error met, as the operating system
    /// gave it; `None` if nothing was lost.
    pub error: Option<io::Error>,
}

impl Erasures {
    /// Whether the whole read succeeded.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Whether `err` means "these sectors cannot be read" (a medium error,
/// which later reads past it may survive), as opposed to a failure of the
/// source as a whole, or the end of the volume.
///
/// EIO on Unix; on Windows the CRC, sector-not-found and read-fault errors
/// a damaged disc gives.
pub fn is_unreadable(err: &io::Error) -> bool {
    err.raw_os_error()
        .is_some_and(|code| MEDIUM_ERRORS.contains(&code))
}

/// The operating system's errors for a sector the medium cannot give.
#[cfg(unix)]
const MEDIUM_ERRORS: &[i32] = &[5]; // EIO
#[cfg(windows)]
const MEDIUM_ERRORS: &[i32] = &[23, 27, 30]; // CRC, SECTOR_NOT_FOUND, READ_FAULT
#[cfg(not(any(unix, windows)))]
const MEDIUM_ERRORS: &[i32] = &[];

/// An unreadable-sector error, as [`is_unreadable`] knows it: what a
/// repaired copy gives for the sectors its parity could not restore, so
/// that they are damage exactly as on the medium.
pub(crate) fn unreadable_error() -> io::Error {
    match MEDIUM_ERRORS.first() {
        Some(&code) => io::Error::from_raw_os_error(code),
        None => io::Error::other("a sector parity could not restore"),
    }
}

/// A source that reads through unreadable sectors.
///
/// A read that fails with an unreadable-sector error ([`is_unreadable`]) is
/// retried in units of [`ReadPolicy::unit`], aligned to the source's
/// offsets; a unit that still fails (and the [`ReadPolicy::skip`] units
/// after it) is zero-filled and recorded. The end of the source is still
/// [`io::ErrorKind::UnexpectedEof`], and every other error is returned as
/// it is. A read costs one read of the source when nothing fails.
///
/// As a [`VolumeSource`] it never reports an unreadable sector: the bytes
/// read as zeros, and [`erasures`](Self::erasures) says which. Use
/// [`read_at_with_erasures`](Self::read_at_with_erasures) to learn what
/// each read lost.
#[derive(Debug)]
pub struct RetryingSource<S> {
    inner: S,
    policy: ReadPolicy,
    /// Everything lost so far, over all reads.
    lost: Mutex<ErasureMap>,
}

impl<S: VolumeSource> RetryingSource<S> {
    /// Reads `inner` sector by sector around errors ([`ReadPolicy::SECTORS`]).
    pub fn new(inner: S) -> Self {
        RetryingSource::with_policy(inner, ReadPolicy::default())
    }

    /// Reads `inner` around errors as `policy` says (a unit of 0 is taken
    /// as one sector).
    pub fn with_policy(inner: S, policy: ReadPolicy) -> Self {
        let policy = ReadPolicy {
            unit: if policy.unit == 0 {
                SECTOR
            } else {
                policy.unit
            },
            ..policy
        };
        RetryingSource {
            inner,
            policy,
            lost: Mutex::new(ErasureMap::new()),
        }
    }

    /// The source read.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The source read, and the erasures found.
    pub fn into_parts(self) -> (S, ErasureMap) {
        let lost = self
            .lost
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        (self.inner, lost)
    }

    /// Every byte range found unreadable so far.
    pub fn erasures(&self) -> ErasureMap {
        self.lost
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Fills `buf` from `offset`, zero-filling what cannot be read, and
    /// says what that was.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::UnexpectedEof`] if the source ends before
    /// `offset + buf.len()`; any error that is not an unreadable sector.
    pub fn read_at_with_erasures(&self, buf: &mut [u8], offset: u64) -> io::Result<Erasures> {
        match self.inner.read_exact_at(buf, offset) {
            Ok(()) => return Ok(Erasures::default()),
            Err(err) if !is_unreadable(&err) => return Err(err),
            Err(_) => {}
        }
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        let mut found = Erasures::default();
        let mut skipping = 0u64;
        let mut at = offset;
        while at < end {
            let unit_end = (at / self.policy.unit + 1)
                .saturating_mul(self.policy.unit)
                .min(end);
            let piece = &mut buf[(at - offset) as usize..(unit_end - offset) as usize];
            let lost = if skipping > 0 {
                skipping -= 1;
                true
            } else {
                match self.read_unit(piece, at)? {
                    None => false,
                    Some(err) => {
                        found.error.get_or_insert(err);
                        skipping = self.policy.skip;
                        true
                    }
                }
            };
            if lost {
                piece.fill(0);
                found.map.insert(at..unit_end);
            }
            at = unit_end;
        }
        if !found.map.is_empty() {
            self.record(&found.map);
        }
        // A read past the end fails as a read past the end, even if the
        // bytes before it were unreadable.
        if end > self.inner.size()? {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(found)
    }

    /// One unit: `None` if it read, the last unreadable-sector error if it
    /// did not after every retry.
    fn read_unit(&self, piece: &mut [u8], at: u64) -> io::Result<Option<io::Error>> {
        let mut last = None;
        for _ in 0..=self.policy.retries {
            match self.inner.read_exact_at(piece, at) {
                Ok(()) => return Ok(None),
                Err(err) if is_unreadable(&err) => last = Some(err),
                Err(err) => return Err(err),
            }
        }
        Ok(last)
    }

    fn record(&self, map: &ErasureMap) {
        self.lost
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .merge(map);
    }
}

impl<S: VolumeSource> VolumeSource for RetryingSource<S> {
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }

    /// Unreadable sectors read as zeros; [`RetryingSource::erasures`] names
    /// them.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.read_at_with_erasures(buf, offset).map(drop)
    }

    fn name(&self) -> Option<&str> {
        self.inner.name()
    }
}

#[cfg(test)]
#[allow(
    clippy::single_range_in_vec_init,
    reason = "a list of one erased range is what is meant"
)]
mod tests {
    use super::*;

    /// A source whose sectors in `bad` give EIO, and that counts reads.
    struct Scratched {
        bytes: Vec<u8>,
        bad: Vec<u64>,
        reads: std::sync::atomic::AtomicUsize,
    }

    impl VolumeSource for Scratched {
        fn size(&self) -> io::Result<u64> {
            Ok(self.bytes.len() as u64)
        }

        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
            self.reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let end = offset + buf.len() as u64;
            if self
                .bad
                .iter()
                .any(|&s| s * SECTOR < end && offset < (s + 1) * SECTOR)
            {
                return Err(io::Error::from_raw_os_error(5));
            }
            self.bytes.read_exact_at(buf, offset)
        }
    }

    fn scratched(sectors: u64, bad: &[u64]) -> Scratched {
        Scratched {
            bytes: (0..sectors * SECTOR).map(|i| (i % 251) as u8 | 1).collect(),
            bad: bad.to_vec(),
            reads: Default::default(),
        }
    }

    #[test]
    fn unreadable_sectors_read_as_zeros_and_are_recorded() {
        let source = RetryingSource::new(scratched(8, &[2, 3, 6]));
        let mut buf = vec![0xAA; (7 * SECTOR - 100) as usize];
        let found = source.read_at_with_erasures(&mut buf, 100).expect("read");
        assert_eq!(
            found.map.ranges(),
            [2 * SECTOR..4 * SECTOR, 6 * SECTOR..7 * SECTOR]
        );
        assert_eq!(found.error.expect("error").raw_os_error(), Some(5));
        for (i, &b) in buf.iter().enumerate() {
            let at = i as u64 + 100;
            let lost = found.map.contains(at);
            assert_eq!(b == 0, lost, "byte {at}");
        }
        assert_eq!(source.erasures(), found.map);
        // An intact read loses nothing and reads once.
        let before = source
            .get_ref()
            .reads
            .load(std::sync::atomic::Ordering::Relaxed);
        let found = source
            .read_at_with_erasures(&mut buf[..100], 0)
            .expect("read");
        assert!(found.is_empty() && found.error.is_none());
        let after = source
            .get_ref()
            .reads
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(after - before, 1);
    }

    #[test]
    fn a_failed_unit_skips_the_next_as_policy_says() {
        let policy = ReadPolicy {
            unit: 2 * SECTOR,
            skip: 1,
            retries: 1,
        };
        let source = RetryingSource::with_policy(scratched(12, &[2]), policy);
        let mut buf = vec![0u8; (12 * SECTOR) as usize];
        let found = source.read_at_with_erasures(&mut buf, 0).expect("read");
        // Unit [2, 4) fails, [4, 6) is skipped, [6, 12) reads.
        assert_eq!(found.map.ranges(), [2 * SECTOR..6 * SECTOR]);
        assert_eq!(
            buf[(6 * SECTOR) as usize],
            source.get_ref().bytes[(6 * SECTOR) as usize]
        );
        // First try, then per unit: [0,2), [2,4) twice, [6,8), [8,10), [10,12).
        assert_eq!(
            source
                .get_ref()
                .reads
                .load(std::sync::atomic::Ordering::Relaxed),
            1 + 6
        );
    }

    #[test]
    fn disc_sizes_pick_their_failure_unit() {
        let presets = |name| crate::media::preset(name).expect("preset").capacity;
        assert_eq!(ReadPolicy::for_disc_len(presets("cd")), ReadPolicy::SECTORS);
        assert_eq!(ReadPolicy::for_disc_len(presets("dvd")), ReadPolicy::DVD);
        assert_eq!(ReadPolicy::for_disc_len(presets("dvd-dl")), ReadPolicy::DVD);
        assert_eq!(ReadPolicy::for_disc_len(presets("bd")), ReadPolicy::BD);
    }

    #[test]
    fn the_end_is_still_the_end_and_other_errors_pass() {
        let source = RetryingSource::new(scratched(2, &[1]));
        let mut buf = vec![0u8; (2 * SECTOR + 1) as usize];
        let err = source
            .read_at_with_erasures(&mut buf, 0)
            .expect_err("past the end");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let err = source
            .read_exact_at(&mut [0u8; 4], 2 * SECTOR)
            .expect_err("at the end");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);

        struct Gone;
        impl VolumeSource for Gone {
            fn size(&self) -> io::Result<u64> {
                Ok(1 << 20)
            }
            fn read_exact_at(&self, _: &mut [u8], _: u64) -> io::Result<()> {
                Err(io::Error::from(io::ErrorKind::PermissionDenied))
            }
        }
        let err = RetryingSource::new(Gone)
            .read_exact_at(&mut [0u8; 4], 0)
            .expect_err("not a sector error");
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(!is_unreadable(&err));
    }
}
