//! Reading an archive payload (SPEC.md §12.1, §12.2, §12.8): the trailer and
//! index on opening, entries on demand, and the tar stream checked against
//! the index as it is read.

use std::io::{self, Read, Seek, SeekFrom};

use zeroize::Zeroize;

use super::index::{
    BLOCK, MAX_HEADER_REGION, TAR_END_LEN, TRAILER_LEN, parse_index, parse_trailer,
};
use super::tar_check::check_header;
use super::tree::{ArchiveLimits, Tree};
use super::{Entry, EntryKind};
use crate::error::Error;
use crate::format::PayloadKind;
use crate::open::{OpenReader, Opener};
use crate::volumes::VolumeSource;

/// What a payload is, as its authenticated prefix says (SPEC.md §6.7).
#[derive(Debug)]
pub enum Payload<S> {
    /// Entries with an index.
    Archive(Archive<S>),
    /// A single byte stream (sealed from standard input), reader at 0.
    Stream(OpenReader<S>),
}

impl<S: VolumeSource> Payload<S> {
    /// Reads the index of an archive payload (the trailer and the index
    /// cost the chunks they occupy); a stream is given back as it is.
    ///
    /// On an error the reader is dropped; to keep it (and not derive the
    /// key again, which with a passphrase means another Argon2id run) use
    /// [`try_detect`](Self::try_detect).
    ///
    /// # Errors
    ///
    /// [`Error::MalformedArchive`] if an archive's trailer or index breaks
    /// SPEC.md §12.1–§12.2; [`Error::LimitExceeded`] if the index is longer,
    /// or holds more entries, than `limits` allow; chunk errors while
    /// reading them.
    pub fn detect(reader: OpenReader<S>, limits: &ArchiveLimits) -> Result<Self, Error> {
        Self::try_detect(reader, limits).map_err(Error::from)
    }

    /// [`detect`](Self::detect), giving the reader back with the error:
    /// after a limit is hit, say, the caller can retry with other `limits`
    /// or read the payload as bytes, with the key it already has.
    ///
    /// The error is a [`DetectError`] holding both, as
    /// [`io::IntoInnerError`] does for a buffered writer, rather than a
    /// `(Error, OpenReader)` pair: it converts into [`Error`] with `?`, so a
    /// caller that does not want the reader back writes nothing more.
    ///
    /// ```
    /// use kuvert::archive::{ArchiveLimits, Payload};
    /// use kuvert::{MemorySink, Opener, Sealer, X25519Identity};
    ///
    /// let identity = X25519Identity::generate()?;
    /// let sealer = Sealer::new().recipient(identity.to_public());
    /// let mut archive = sealer.seal_archive(MemorySink::new())?;
    /// archive.append_file("a.txt", &b"a"[..], 1, 0o644, 0)?;
    /// let volumes = archive.finish()?.into_volumes();
    /// let reader = Opener::new().identity(identity).open(volumes)?;
    /// // No index fits 0 bytes: the reader comes back with the error.
    /// let err = Payload::try_detect(reader, &ArchiveLimits::new().max_index_len(0)).unwrap_err();
    /// let reader = err.into_reader();
    /// let Payload::Archive(archive) = Payload::detect(reader, &ArchiveLimits::new())? else {
    ///     unreachable!("sealed as an archive");
    /// };
    /// assert_eq!(archive.entries().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Those of [`detect`](Self::detect), with the reader; its position is
    /// then unspecified (seek before reading).
    pub fn try_detect(
        mut reader: OpenReader<S>,
        limits: &ArchiveLimits,
    ) -> Result<Self, DetectError<S>> {
        match read_index(&mut reader, limits) {
            Ok(None) => Ok(Payload::Stream(reader)),
            Ok(Some((entries, tar_len))) => Ok(Payload::Archive(Archive {
                reader,
                entries,
                tar_len,
                limits: *limits,
            })),
            Err(error) => Err(DetectError {
                error,
                reader: Box::new(reader),
            }),
        }
    }
}

/// Reads an archive's trailer and index and rewinds the reader; `None` for a
/// stream.
fn read_index<S: VolumeSource>(
    reader: &mut OpenReader<S>,
    limits: &ArchiveLimits,
) -> Result<Option<(Vec<Entry>, u64)>, Error> {
    if reader.kind() != PayloadKind::Archive {
        reader.seek(SeekFrom::Start(0))?;
        return Ok(None);
    }
    let len = reader.len();
    if len < TRAILER_LEN + 8 {
        return Err(Error::MalformedArchive {
            offset: 0,
            reason: "an archive payload shorter than its index and trailer",
        });
    }
    let mut trailer = [0u8; TRAILER_LEN as usize];
    reader.seek(SeekFrom::Start(len - TRAILER_LEN))?;
    reader.read_exact(&mut trailer).map_err(Error::from_io)?;
    let (index_offset, index_len) = parse_trailer(&trailer, len, limits.max_index_len)?;
    let mut index = zeroize::Zeroizing::new(vec![0u8; index_len as usize]);
    reader.seek(SeekFrom::Start(index_offset))?;
    reader.read_exact(&mut index).map_err(Error::from_io)?;
    let entries = parse_index(&index, index_offset, limits.max_entries)?;
    reader.seek(SeekFrom::Start(0))?;
    Ok(Some((entries, index_offset)))
}

/// Why [`Payload::try_detect`] failed, with the reader it was given.
#[derive(Debug)]
pub struct DetectError<S> {
    error: Error,
    // Boxed: an error should stay small on the success path's stack.
    reader: Box<OpenReader<S>>,
}

impl<S> DetectError<S> {
    /// The error.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The reader, opened and authenticated as it was; seek before reading.
    pub fn into_reader(self) -> OpenReader<S> {
        *self.reader
    }

    /// The error and the reader.
    pub fn into_parts(self) -> (Error, OpenReader<S>) {
        (self.error, *self.reader)
    }
}

impl<S> std::fmt::Display for DetectError<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.error, f)
    }
}

impl<S: std::fmt::Debug> std::error::Error for DetectError<S> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

impl<S> From<DetectError<S>> for Error {
    fn from(err: DetectError<S>) -> Self {
        err.error
    }
}

impl Opener {
    /// Opens `volumes` as an archive and reads its index:
    /// [`open`](Self::open) and then [`Payload::detect`], for a caller that
    /// expects an archive.
    ///
    /// # Errors
    ///
    /// Those of [`open`](Self::open) and [`Payload::detect`], and
    /// [`Error::NotAnArchive`] if the payload is a stream.
    pub fn open_archive<S: VolumeSource>(
        &self,
        volumes: Vec<S>,
        limits: &ArchiveLimits,
    ) -> Result<Archive<S>, Error> {
        match Payload::detect(self.open(volumes)?, limits)? {
            Payload::Archive(archive) => Ok(archive),
            Payload::Stream(_) => Err(Error::NotAnArchive),
        }
    }
}

/// An opened archive: its index, and its entries read on demand.
#[derive(Debug)]
pub struct Archive<S> {
    pub(crate) reader: OpenReader<S>,
    pub(crate) entries: Vec<Entry>,
    pub(crate) tar_len: u64,
    pub(crate) limits: ArchiveLimits,
}

impl<S> Drop for Archive<S> {
    fn drop(&mut self) {
        // Names and link targets are plaintext too.
        for entry in &mut self.entries {
            entry.path.zeroize();
            if let Some(link) = &mut entry.link {
                link.zeroize();
            }
        }
    }
}

impl<S: VolumeSource> Archive<S> {
    /// The entries, in archive order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Length of the tar stream at the start of the payload.
    pub fn tar_len(&self) -> u64 {
        self.tar_len
    }

    /// The payload reader, e.g. for progress.
    pub fn reader(&self) -> &OpenReader<S> {
        &self.reader
    }

    /// The limits the archive is read under.
    pub fn limits(&self) -> &ArchiveLimits {
        &self.limits
    }

    /// The entry named `path`, if any.
    pub fn entry(&self, path: &str) -> Option<&Entry> {
        let path = path.trim_end_matches('/');
        self.entries.iter().find(|entry| entry.path == path)
    }

    /// Reads the data of the entry named `path`: a file's bytes, the bytes
    /// of the file a hard link names, nothing for other kinds. Its tar
    /// header is checked against the index first (SPEC.md §12.8). Costs the
    /// chunks the entry spans.
    ///
    /// # Errors
    ///
    /// [`Error::EntryNotFound`]; [`Error::TarMismatch`]; chunk errors,
    /// here or later through `Read`.
    pub fn read_entry(&mut self, path: &str) -> Result<impl Read + '_, Error> {
        let path = path.trim_end_matches('/');
        let index = self
            .entries
            .iter()
            .position(|entry| entry.path == path)
            .ok_or_else(|| Error::EntryNotFound {
                path: path.to_owned(),
            })?;
        self.check_header_of(index)?;
        let data = match self.entries[index].kind {
            EntryKind::Hardlink => {
                let target = self.entries[index].link.clone().unwrap_or_default();
                let target = self.entries[..index]
                    .iter()
                    .position(|entry| entry.path == target && entry.kind == EntryKind::File)
                    .ok_or_else(|| Error::UnsafeEntry {
                        path: path.to_owned(),
                        reason: "hard link to something not an earlier file entry",
                    })?;
                self.check_header_of(target)?;
                target
            }
            _ => index,
        };
        let (offset, size) = (self.entries[data].data_offset, self.entries[data].size);
        self.reader.seek(SeekFrom::Start(offset))?;
        Ok((&mut self.reader).take(size))
    }

    /// Reads entry `index`'s header blocks and checks them against the
    /// index; leaves the reader at the entry's data.
    pub(crate) fn check_header_of(&mut self, index: usize) -> Result<(), Error> {
        let entry = &self.entries[index];
        self.reader.seek(SeekFrom::Start(entry.header_offset))?;
        let region = self.read_header_region(index)?;
        check_header(&region, &self.entries[index])
    }

    /// The header blocks of entry `index`, read from the current position
    /// (its header offset). Bounded by the index's own rule (§12.2).
    pub(crate) fn read_header_region(&mut self, index: usize) -> Result<Vec<u8>, Error> {
        let entry = &self.entries[index];
        let len = entry.data_offset - entry.header_offset;
        debug_assert!(
            len <= MAX_HEADER_REGION,
            "parse_index bounds header regions"
        );
        let mut region = vec![0u8; len as usize];
        self.reader
            .read_exact(&mut region)
            .map_err(Error::from_io)?;
        Ok(region)
    }

    /// Reads the zero padding after entry `index`'s data (the reader is
    /// just past the data) and checks it.
    pub(crate) fn check_padding_of(&mut self, index: usize) -> Result<(), Error> {
        let entry = &self.entries[index];
        let len = entry.end() - entry.data_offset - entry.size;
        let mut padding = [0u8; BLOCK as usize];
        let padding = &mut padding[..len as usize];
        self.reader.read_exact(padding).map_err(Error::from_io)?;
        if padding.iter().any(|&b| b != 0) {
            return Err(Error::TarMismatch {
                path: entry.path.clone(),
                offset: entry.data_offset + entry.size,
                reason: "padding after the entry's data is not zero",
            });
        }
        Ok(())
    }

    /// Reads the two end blocks (the reader is at them) and checks them.
    pub(crate) fn check_end_blocks(&mut self) -> Result<(), Error> {
        let mut end = [0u8; TAR_END_LEN as usize];
        self.reader.read_exact(&mut end).map_err(Error::from_io)?;
        if end.iter().any(|&b| b != 0) {
            return Err(Error::MalformedArchive {
                offset: self.tar_len - TAR_END_LEN,
                reason: "the tar stream's two end blocks are not zero",
            });
        }
        Ok(())
    }

    /// Checks every entry as extracting them all would (SPEC.md
    /// §12.3–§12.7): paths, aliases, parents, links and limits, without a
    /// file system and without reading any entry.
    ///
    /// # Errors
    ///
    /// [`Error::UnsafeEntry`], [`Error::NameCollision`] or
    /// [`Error::LimitExceeded`], naming the first entry that breaks a rule.
    pub fn check_entries(&self) -> Result<(), Error> {
        let mut tree = Tree::new(self.limits);
        for (index, entry) in self.entries.iter().enumerate() {
            tree.insert(index, entry)?;
        }
        tree.check_links(&self.entries)
    }

    /// The tar stream alone (without index and trailer), from its start,
    /// checked as extraction checks: first every entry by the rules of
    /// [`check_entries`](Self::check_entries), so no archive that `extract`
    /// refuses reaches `tar -x` either; then, as it is read, every entry's
    /// header blocks must say what the index says and all padding must be
    /// zero, so `tar -x` on it meets exactly the entries of
    /// [`entries`](Self::entries). A header is released only after it was
    /// checked.
    ///
    /// # Errors
    ///
    /// As [`check_entries`](Self::check_entries); I/O errors of seeking;
    /// [`Error::TarMismatch`] and chunk errors arrive through `Read`
    /// (recover them with [`Error::from_io`]).
    pub fn tar_reader(&mut self) -> Result<TarReader<'_, S>, Error> {
        self.check_entries()?;
        self.reader.seek(SeekFrom::Start(0))?;
        Ok(TarReader {
            archive: self,
            next: 0,
            state: TarState::Start,
            pending: Vec::new(),
            pending_at: 0,
        })
    }
}

/// Where a [`TarReader`] is.
#[derive(Debug, Clone, Copy)]
enum TarState {
    /// About to read entry `next`'s header, or the end blocks.
    Start,
    /// Inside entry `next - 1`'s data, with this many bytes left.
    Data(u64),
    /// Past the end blocks.
    Done,
}

/// The checked tar stream of an [`Archive`] (see [`Archive::tar_reader`]).
#[derive(Debug)]
pub struct TarReader<'a, S> {
    archive: &'a mut Archive<S>,
    next: usize,
    state: TarState,
    /// Checked bytes (headers, padding, end blocks) not yet handed out.
    pending: Vec<u8>,
    pending_at: usize,
}

impl<S: VolumeSource> TarReader<'_, S> {
    fn advance(&mut self) -> Result<(), Error> {
        match self.state {
            TarState::Start if self.next == self.archive.entries.len() => {
                self.archive.check_end_blocks()?;
                self.pending = vec![0u8; TAR_END_LEN as usize];
                self.state = TarState::Done;
            }
            TarState::Start => {
                let region = self.archive.read_header_region(self.next)?;
                check_header(&region, &self.archive.entries[self.next])?;
                self.pending = region;
                self.state = TarState::Data(self.archive.entries[self.next].size);
                self.next += 1;
            }
            TarState::Data(0) => {
                let index = self.next - 1;
                let entry = &self.archive.entries[index];
                let len = (entry.end() - entry.data_offset - entry.size) as usize;
                self.archive.check_padding_of(index)?;
                self.pending = vec![0u8; len];
                self.state = TarState::Start;
            }
            TarState::Data(_) | TarState::Done => {}
        }
        self.pending_at = 0;
        Ok(())
    }
}

impl<S: VolumeSource> Read for TarReader<'_, S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.pending_at < self.pending.len() {
                let n = out.len().min(self.pending.len() - self.pending_at);
                out[..n].copy_from_slice(&self.pending[self.pending_at..self.pending_at + n]);
                self.pending_at += n;
                return Ok(n);
            }
            match self.state {
                TarState::Done => return Ok(0),
                TarState::Data(left) if left > 0 => {
                    let want = out.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = self.archive.reader.read(&mut out[..want])?;
                    if n == 0 {
                        return Err(io::Error::from(Error::MalformedArchive {
                            offset: self.archive.reader.stream_position()?,
                            reason: "entry data runs past the payload",
                        }));
                    }
                    self.state = TarState::Data(left - n as u64);
                    return Ok(n);
                }
                _ => self.advance().map_err(io::Error::from)?,
            }
        }
    }
}
