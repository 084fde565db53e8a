//! The repair's output, which is also its scratch: the source is copied
//! through once (unreadable sectors as zeros), repaired sectors are patched
//! in place, and every later pass reads the volume back from it.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::{Mutex, PoisonError};

use crate::error::{Error, Location};
use crate::format::SECTOR;
use crate::repair::sector_set::SectorSet;
use crate::retrying_source::RetryingSource;
use crate::volumes::VolumeSource;

/// Bytes per read or write of a sequential pass: a multiple of 64 KiB.
pub(crate) const PIECE: usize = 4 << 20;

/// Positioned access to the output, `len` bytes long once copied through.
pub(crate) struct Out<'a, W: Read + Write + Seek + ?Sized> {
    inner: &'a mut W,
    len: u64,
}

impl<'a, W: Read + Write + Seek + ?Sized> Out<'a, W> {
    pub(crate) fn new(inner: &'a mut W, len: u64) -> Self {
        Out { inner, len }
    }

    /// The volume's length.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Fills `buf` from byte `at`.
    pub(crate) fn read_at(&mut self, buf: &mut [u8], at: u64) -> io::Result<()> {
        self.inner.seek(SeekFrom::Start(at))?;
        self.inner.read_exact(buf)
    }

    /// Writes `bytes` at byte `at`.
    pub(crate) fn write_at(&mut self, bytes: &[u8], at: u64) -> io::Result<()> {
        self.inner.seek(SeekFrom::Start(at))?;
        self.inner.write_all(bytes)
    }

    /// Reads sector `sector`.
    pub(crate) fn sector(&mut self, sector: u64) -> io::Result<Vec<u8>> {
        let mut bytes = vec![0u8; SECTOR as usize];
        self.read_at(&mut bytes, sector * SECTOR)?;
        Ok(bytes)
    }

    /// Calls `each(at, bytes)` over `[start, end)` in pieces of at most
    /// `piece` bytes, each starting at a multiple of `piece` from `start`.
    pub(crate) fn for_each_piece(
        &mut self,
        start: u64,
        end: u64,
        piece: usize,
        buf: &mut Vec<u8>,
        mut each: impl FnMut(u64, &[u8]),
    ) -> io::Result<()> {
        let mut at = start;
        while at < end {
            let len = (end - at).min(piece as u64) as usize;
            buf.resize(len, 0);
            self.read_at(buf, at)?;
            each(at, buf);
            at += len as u64;
        }
        Ok(())
    }

    /// Flushes what was written.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    /// The output as a [`VolumeSource`], for the checks that read one.
    pub(crate) fn as_source(&mut self) -> OutSource<'_, W> {
        OutSource {
            inner: Mutex::new(&mut *self.inner),
            len: self.len,
        }
    }
}

/// Copies `ranges` of `source` (bytes) to the same places of `out`, reading
/// through unreadable sectors: returns the sectors read as zeros.
pub(crate) fn copy_through<S, W>(
    source: &RetryingSource<&S>,
    out: &mut Out<'_, W>,
    range: std::ops::Range<u64>,
    origin: &Location,
) -> Result<SectorSet, Error>
where
    S: VolumeSource + ?Sized,
    W: Read + Write + Seek + ?Sized,
{
    let mut lost = SectorSet::new();
    let mut buf = vec![0u8; PIECE.min((range.end - range.start) as usize)];
    let mut at = range.start;
    while at < range.end {
        let len = (range.end - at).min(PIECE as u64) as usize;
        let piece = &mut buf[..len];
        let erasures = source
            .read_at_with_erasures(piece, at)
            .map_err(|err| Error::Read {
                at: origin.clone(),
                source: err,
            })?;
        for erased in erasures.map.ranges() {
            lost.insert_range(erased.start / SECTOR..erased.end.div_ceil(SECTOR));
        }
        out.write_at(piece, at).map_err(Error::Io)?;
        at += len as u64;
    }
    Ok(lost)
}

/// The output, read as a volume source (one reader at a time).
pub(crate) struct OutSource<'a, W: Read + Write + Seek + ?Sized> {
    inner: Mutex<&'a mut W>,
    len: u64,
}

impl<W: Read + Write + Seek + ?Sized> VolumeSource for OutSource<'_, W> {
    fn size(&self) -> io::Result<u64> {
        Ok(self.len)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&end| end <= self.len)
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        let _ = end;
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.seek(SeekFrom::Start(offset))?;
        inner.read_exact(buf)
    }
}
