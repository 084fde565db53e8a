//! Entries in a payload (SPEC.md §12): files, directories and links as a
//! PAX tar stream, followed by an index of the entries and a fixed trailer,
//! all inside the encrypted payload. The index lets `list` and single-entry
//! extraction cost O(index + entry) instead of a pass over the payload; the
//! tar stream lets `kuvert open --tar | tar -x` work with any tar.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::format::{PayloadKind, Reader};
use crate::payload::{OpenReader, SealWriter, Sealer};
use crate::volumes::{VolumeSink, VolumeSource};

/// Last 16 bytes of an archive payload: marks the 32-byte trailer.
pub(crate) const TRAILER_MAGIC: [u8; 16] = *b"kuvert-index\0\0\0\x01";
/// Index offset, index length, magic.
pub(crate) const TRAILER_LEN: u64 = 32;
/// Default bound on the index length a decoder reads (SPEC.md §12.2): room
/// for millions of entries.
pub const DEFAULT_MAX_INDEX_LEN: u64 = 256 << 20;
/// Longest path or link target in the index, in bytes.
pub(crate) const MAX_PATH_LEN: usize = 4096;
/// Fixed part of an index entry: kind, mode, mtime, size, two offsets and
/// two length prefixes.
const ENTRY_FIXED_LEN: usize = 1 + 4 + 8 + 8 + 8 + 8 + 4 + 4;
const BLOCK: u64 = 512;
/// Largest value an 11-digit octal ustar field holds.
const USTAR_MAX: u64 = 0o777_7777_7777;

/// What an entry is.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link; its target is in [`Entry::link`].
    Symlink,
    /// A hard link to an earlier entry named in [`Entry::link`].
    Hardlink,
}

impl EntryKind {
    fn code(self) -> u8 {
        match self {
            EntryKind::File => 0,
            EntryKind::Directory => 1,
            EntryKind::Symlink => 2,
            EntryKind::Hardlink => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => EntryKind::File,
            1 => EntryKind::Directory,
            2 => EntryKind::Symlink,
            3 => EntryKind::Hardlink,
            _ => return None,
        })
    }

    /// Short name for listings.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Directory => "dir",
            EntryKind::Symlink => "symlink",
            EntryKind::Hardlink => "hardlink",
        }
    }
}

/// One entry of an archive, as its index records it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative path with `/` separators.
    pub path: String,
    /// File, directory or link.
    pub kind: EntryKind,
    /// Data bytes (0 for all but files).
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// Link target of a symlink or hard link.
    pub link: Option<String>,
    /// Plaintext offset of the entry's first tar header block.
    pub header_offset: u64,
    /// Plaintext offset of the entry's data.
    pub data_offset: u64,
}

/// Checks that `path` is a plain relative path: `/`-separated, no empty,
/// `.` or `..` component, no leading `/`, no NUL or backslash.
fn check_relative(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("empty path");
    }
    if path.len() > MAX_PATH_LEN {
        return Err("path longer than 4096 bytes");
    }
    if path.starts_with('/') {
        return Err("absolute path");
    }
    if path.contains('\0') || path.contains('\\') {
        return Err("NUL or backslash in path");
    }
    for component in path.split('/') {
        match component {
            "" => return Err("empty path component"),
            "." | ".." => return Err("`.` or `..` in path"),
            _ if cfg!(windows) && component.contains(':') => return Err("drive or stream in path"),
            _ => {}
        }
    }
    Ok(())
}

/// Counts bytes written, so index offsets are known without seeking.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes entries into a sealed payload.
///
/// ```
/// use kuvert::archive::ArchiveWriter;
/// use kuvert::{MemorySink, Sealer, X25519Identity};
///
/// let identity = X25519Identity::generate();
/// let mut archive = Sealer::new()
///     .recipient(identity.to_public())
///     .seal_archive(MemorySink::new())?;
/// archive.append_file("extract/patients.csv", &b"id,icd10\n"[..], 9, 0o640, 1_700_000_000)?;
/// let volumes = archive.finish()?.into_volumes();
/// # Ok::<(), kuvert::Error>(())
/// ```
pub struct ArchiveWriter<S: VolumeSink> {
    tar: tar::Builder<Counting<SealWriter<S>>>,
    entries: Vec<Entry>,
    names: HashSet<String>,
}

impl Sealer {
    /// Starts sealing an archive of files and directories into `sink`: the
    /// payload's kind is [`PayloadKind::Archive`] (SPEC.md §6.7, §12).
    ///
    /// # Errors
    ///
    /// As [`Sealer::seal`].
    pub fn seal_archive<S: VolumeSink>(&self, sink: S) -> Result<ArchiveWriter<S>, Error> {
        Ok(ArchiveWriter::new(
            self.seal_kind(sink, PayloadKind::Archive)?,
        ))
    }
}

impl<S: VolumeSink> ArchiveWriter<S> {
    /// Starts an archive in an archive-kind payload whose content nothing
    /// has been written to; see [`Sealer::seal_archive`].
    pub(crate) fn new(writer: SealWriter<S>) -> Self {
        let mut tar = tar::Builder::new(Counting {
            inner: writer,
            written: 0,
        });
        tar.mode(tar::HeaderMode::Complete);
        ArchiveWriter {
            tar,
            entries: Vec::new(),
            names: HashSet::new(),
        }
    }

    /// Entries appended so far.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Plaintext bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.tar.get_ref().written
    }

    /// Appends a file, directory (recursively, in name order) or symlink
    /// from disk under `name`.
    ///
    /// # Errors
    ///
    /// [`Error::UnsafeEntry`] for a name that is not a plain relative path
    /// or is not UTF-8, or for a device, socket or FIFO; [`Error::Input`],
    /// naming the file, for errors reading the disk; [`Error::Io`] for
    /// errors writing the payload, and for a file that changes size while
    /// it is read.
    pub fn append_path(&mut self, disk: &Path, name: &str) -> Result<(), Error> {
        let input = |source: io::Error| Error::Input {
            path: disk.to_path_buf(),
            source,
        };
        let metadata = fs::symlink_metadata(disk).map_err(input)?;
        let mode = permissions(&metadata);
        let mtime = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_secs() as i64);
        let kind = metadata.file_type();
        if kind.is_dir() {
            self.append_dir(name, mode, mtime)?;
            let mut children = fs::read_dir(disk)
                .and_then(|entries| {
                    entries
                        .map(|entry| entry.map(|entry| entry.file_name()))
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(input)?;
            children.sort();
            for child in children {
                let child_name = child.to_str().ok_or_else(|| Error::UnsafeEntry {
                    path: disk.join(&child).display().to_string(),
                    reason: "name is not UTF-8",
                })?;
                self.append_path(&disk.join(&child), &format!("{name}/{child_name}"))?;
            }
            Ok(())
        } else if kind.is_file() {
            let file = InputReader {
                inner: File::open(disk).map_err(input)?,
                path: disk,
            };
            self.append_file(name, file, metadata.len(), mode, mtime)
        } else if kind.is_symlink() {
            let target = fs::read_link(disk).map_err(input)?;
            let target = target.to_str().ok_or_else(|| Error::UnsafeEntry {
                path: name.into(),
                reason: "symlink target is not UTF-8",
            })?;
            self.append_symlink(name, target, mtime)
        } else {
            Err(Error::UnsafeEntry {
                path: disk.display().to_string(),
                reason: "not a file, directory or symlink",
            })
        }
    }

    /// Appends a directory entry.
    ///
    /// # Errors
    ///
    /// [`Error::UnsafeEntry`] for a bad or repeated name; [`Error::Io`].
    pub fn append_dir(&mut self, name: &str, mode: u32, mtime: i64) -> Result<(), Error> {
        self.append(
            name,
            EntryKind::Directory,
            None,
            mode,
            mtime,
            0,
            io::empty(),
        )
    }

    /// Appends a file of exactly `size` bytes read from `data`.
    ///
    /// # Errors
    ///
    /// [`Error::UnsafeEntry`] for a bad or repeated name; [`Error::Io`],
    /// also when `data` yields more or fewer than `size` bytes.
    pub fn append_file(
        &mut self,
        name: &str,
        data: impl Read,
        size: u64,
        mode: u32,
        mtime: i64,
    ) -> Result<(), Error> {
        self.append(name, EntryKind::File, None, mode, mtime, size, data)
    }

    /// Appends a symbolic link.
    ///
    /// # Errors
    ///
    /// [`Error::UnsafeEntry`] for a bad or repeated name; [`Error::Io`].
    pub fn append_symlink(&mut self, name: &str, target: &str, mtime: i64) -> Result<(), Error> {
        self.append(
            name,
            EntryKind::Symlink,
            Some(target),
            0o777,
            mtime,
            0,
            io::empty(),
        )
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "private; every field of an entry"
    )]
    fn append(
        &mut self,
        name: &str,
        kind: EntryKind,
        link: Option<&str>,
        mode: u32,
        mtime: i64,
        size: u64,
        data: impl Read,
    ) -> Result<(), Error> {
        let name = name.trim_end_matches('/');
        check_relative(name).map_err(|reason| Error::UnsafeEntry {
            path: name.into(),
            reason,
        })?;
        if let Some(target) = link
            && (target.is_empty() || target.len() > MAX_PATH_LEN || target.contains('\0'))
        {
            return Err(Error::UnsafeEntry {
                path: name.into(),
                reason: "link target empty, longer than 4096 bytes or with NUL",
            });
        }
        if !self.names.insert(name.to_owned()) {
            return Err(Error::UnsafeEntry {
                path: name.into(),
                reason: "the same name twice",
            });
        }

        let header_offset = self.bytes_written();
        let mut header = tar::Header::new_ustar();
        let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
        let tar_name = match kind {
            EntryKind::Directory => format!("{name}/"),
            _ => name.to_owned(),
        };
        if header.set_path(&tar_name).is_err() || !tar_name.is_ascii() {
            pax.push(("path", tar_name.clone().into_bytes()));
            header.set_path(short_name(&tar_name)).map_err(Error::Io)?;
        }
        if let Some(target) = link
            && (header.set_link_name_literal(target).is_err() || !target.is_ascii())
        {
            pax.push(("linkpath", target.as_bytes().to_vec()));
        }
        if size > USTAR_MAX {
            pax.push(("size", size.to_string().into_bytes()));
        }
        header.set_entry_type(match kind {
            EntryKind::File => tar::EntryType::Regular,
            EntryKind::Directory => tar::EntryType::Directory,
            EntryKind::Symlink => tar::EntryType::Symlink,
            EntryKind::Hardlink => tar::EntryType::Link,
        });
        header.set_size(size);
        header.set_mode(mode & 0o7777);
        header.set_mtime(mtime.clamp(0, USTAR_MAX as i64) as u64);
        header.set_cksum();
        if !pax.is_empty() {
            self.append_pax(&pax)?;
        }

        let mut counted = CountingReader {
            inner: data.take(size),
            read: 0,
        };
        // Errors of the data reader ride inside io::Error; take them back out.
        self.tar
            .append(&header, &mut counted)
            .map_err(Error::from_io)?;
        let mut probe = [0u8; 1];
        if counted.read != size || counted.inner.into_inner().read(&mut probe)? != 0 {
            return Err(Error::Io(io::Error::other(format!(
                "{name} changed size while it was sealed"
            ))));
        }
        let data_offset = self.bytes_written() - size.div_ceil(BLOCK) * BLOCK;
        self.entries.push(Entry {
            path: name.to_owned(),
            kind,
            size,
            mode: mode & 0o7777,
            mtime,
            link: link.map(str::to_owned),
            header_offset,
            data_offset,
        });
        Ok(())
    }

    /// Writes a PAX extended header (typeflag `x`) with `records`.
    fn append_pax(&mut self, records: &[(&str, Vec<u8>)]) -> Result<(), Error> {
        let mut body = Vec::new();
        for (key, value) in records {
            // "LEN key=value\n", where LEN counts itself.
            let rest = key.len() + value.len() + 3;
            let mut len = rest + 1;
            while len.to_string().len() + rest != len {
                len = len.to_string().len() + rest;
            }
            body.extend_from_slice(format!("{len} {key}=").as_bytes());
            body.extend_from_slice(value);
            body.push(b'\n');
        }
        let mut header = tar::Header::new_ustar();
        header.set_path("PaxHeader").map_err(Error::Io)?;
        header.set_entry_type(tar::EntryType::XHeader);
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        self.tar.append(&header, body.as_slice())?;
        Ok(())
    }

    /// Ends the tar stream, writes the index and trailer, and finishes the
    /// payload.
    ///
    /// # Errors
    ///
    /// Any error of the underlying [`SealWriter::finish`].
    pub fn finish(self) -> Result<S, Error> {
        let ArchiveWriter { tar, entries, .. } = self;
        let mut counting = tar.into_inner()?;
        let index_offset = counting.written;
        let index = encode_index(&entries);
        counting.write_all(&index)?;
        counting.write_all(&index_offset.to_be_bytes())?;
        counting.write_all(&(index.len() as u64).to_be_bytes())?;
        counting.write_all(&TRAILER_MAGIC)?;
        counting.inner.finish()
    }
}

/// A file being sealed whose read errors name it ([`Error::Input`]).
struct InputReader<'a> {
    inner: File,
    path: &'a Path,
}

impl Read for InputReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|source| {
            if source.kind() == io::ErrorKind::Interrupted {
                return source;
            }
            let kind = source.kind();
            io::Error::new(
                kind,
                Error::Input {
                    path: self.path.to_path_buf(),
                    source,
                },
            )
        })
    }
}

struct CountingReader<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// A ustar-safe stand-in name for a path carried in a PAX record.
fn short_name(path: &str) -> String {
    let ascii: String = path
        .chars()
        .rev()
        .take(90)
        .map(|c| if c.is_ascii() && c != '/' { c } else { '_' })
        .collect::<String>()
        .chars()
        .rev()
        .collect();
    format!("kuvert-pax/{ascii}")
}

#[cfg(unix)]
fn permissions(metadata: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn permissions(metadata: &fs::Metadata) -> u32 {
    match (metadata.is_dir(), metadata.permissions().readonly()) {
        (true, _) => 0o755,
        (false, true) => 0o444,
        (false, false) => 0o644,
    }
}

/// Serialises the index (SPEC.md §12.2).
fn encode_index(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + entries.len() * (ENTRY_FIXED_LEN + 32));
    out.extend_from_slice(&(entries.len() as u64).to_be_bytes());
    for entry in entries {
        out.push(entry.kind.code());
        out.extend_from_slice(&entry.mode.to_be_bytes());
        out.extend_from_slice(&entry.mtime.to_be_bytes());
        out.extend_from_slice(&entry.size.to_be_bytes());
        out.extend_from_slice(&entry.header_offset.to_be_bytes());
        out.extend_from_slice(&entry.data_offset.to_be_bytes());
        let link = entry.link.as_deref().unwrap_or("");
        out.extend_from_slice(&(entry.path.len() as u32).to_be_bytes());
        out.extend_from_slice(&(link.len() as u32).to_be_bytes());
        out.extend_from_slice(entry.path.as_bytes());
        out.extend_from_slice(link.as_bytes());
    }
    out
}

/// Parses and checks an index read from offset `index_offset` of a payload
/// (SPEC.md §12.2). Offsets are checked against the tar stream's extent.
fn parse_index(bytes: &[u8], index_offset: u64) -> Result<Vec<Entry>, Error> {
    let malformed = |at: usize, reason: &'static str| Error::MalformedArchive {
        offset: index_offset + at as u64,
        reason,
    };
    let mut r = Reader::new(bytes, 0);
    let count = r
        .u64("entry count")
        .map_err(|_| malformed(0, "index shorter than its count"))?;
    if count > (bytes.len() / ENTRY_FIXED_LEN) as u64 {
        return Err(malformed(0, "entry count larger than the index can hold"));
    }
    let mut entries = Vec::with_capacity(count as usize);
    let mut previous_end = 0u64;
    for _ in 0..count {
        let at = r.pos();
        let short = |_| malformed(at, "index ends inside an entry");
        let kind = EntryKind::from_code(r.u8("kind").map_err(short)?)
            .ok_or_else(|| malformed(at, "unknown entry kind"))?;
        let mode = r.u32("mode").map_err(short)?;
        if mode > 0o7777 {
            return Err(malformed(at, "mode has bits above 0o7777"));
        }
        let mtime = r.u64("mtime").map_err(short)? as i64;
        let size = r.u64("size").map_err(short)?;
        let header_offset = r.u64("header offset").map_err(short)?;
        let data_offset = r.u64("data offset").map_err(short)?;
        let path_len = r.u32("path length").map_err(short)? as usize;
        let link_len = r.u32("link length").map_err(short)? as usize;
        if path_len > MAX_PATH_LEN || link_len > MAX_PATH_LEN {
            return Err(malformed(at, "path or link longer than 4096 bytes"));
        }
        let path = r.take(path_len, "path").map_err(short)?;
        let link = r.take(link_len, "link").map_err(short)?;
        let path = std::str::from_utf8(path).map_err(|_| malformed(at, "path is not UTF-8"))?;
        let link = std::str::from_utf8(link).map_err(|_| malformed(at, "link is not UTF-8"))?;
        let end = data_offset.checked_add(size);
        let ordered = header_offset >= previous_end
            && header_offset < data_offset
            && end.is_some_and(|end| end <= index_offset);
        if !ordered {
            return Err(malformed(
                at,
                "entry offsets out of order or past the tar stream",
            ));
        }
        if kind != EntryKind::File && size != 0 {
            return Err(malformed(at, "data on an entry that is not a file"));
        }
        if matches!(kind, EntryKind::Symlink | EntryKind::Hardlink) == link.is_empty() {
            return Err(malformed(
                at,
                "link target missing or on an entry that is not a link",
            ));
        }
        previous_end = data_offset + size;
        entries.push(Entry {
            path: path.to_owned(),
            kind,
            size,
            mode,
            mtime,
            link: (!link.is_empty()).then(|| link.to_owned()),
            header_offset,
            data_offset,
        });
    }
    let end = r.pos();
    r.finish("bytes after the last entry")
        .map_err(|_| malformed(end, "bytes after the last index entry"))?;
    Ok(entries)
}

/// What a payload is, as its authenticated prefix says.
#[derive(Debug)]
pub enum Payload<S> {
    /// Entries with an index.
    Archive(Archive<S>),
    /// A single byte stream (sealed from standard input), reader at 0.
    Stream(OpenReader<S>),
}

impl<S: VolumeSource> Payload<S> {
    /// Goes by the payload's kind ([`OpenReader::kind`], from its
    /// authenticated prefix, SPEC.md §6.7): a stream is returned as it is,
    /// whatever its last bytes; an archive must end in a trailer, whose
    /// index is read (one or two chunk decryptions and the index's own).
    ///
    /// # Errors
    ///
    /// For an archive: [`Error::MalformedArchive`] if it has no trailer or
    /// the index is inconsistent; [`Error::LimitExceeded`] if the index is
    /// longer than `max_index_len`; chunk errors while reading them.
    pub fn detect(mut reader: OpenReader<S>, max_index_len: u64) -> Result<Self, Error> {
        if reader.kind() != PayloadKind::Archive {
            reader.seek(SeekFrom::Start(0))?;
            return Ok(Payload::Stream(reader));
        }
        let len = reader.len();
        if len < TRAILER_LEN + 8 {
            return Err(Error::MalformedArchive {
                offset: 0,
                reason: "archive shorter than an index count and its trailer",
            });
        }
        let mut trailer = [0u8; TRAILER_LEN as usize];
        reader.seek(SeekFrom::Start(len - TRAILER_LEN))?;
        reader.read_exact(&mut trailer).map_err(Error::from_io)?;
        let trailer_at = len - TRAILER_LEN;
        if trailer[16..31] != TRAILER_MAGIC[..15] {
            return Err(Error::MalformedArchive {
                offset: trailer_at + 16,
                reason: "archive does not end in the trailer magic",
            });
        }
        if trailer[31] != TRAILER_MAGIC[15] {
            return Err(Error::MalformedArchive {
                offset: trailer_at + 31,
                reason: "archive layout version is not 1",
            });
        }
        let index_offset = u64::from_be_bytes(trailer[..8].try_into().expect("8 bytes"));
        let index_len = u64::from_be_bytes(trailer[8..16].try_into().expect("8 bytes"));
        if index_offset.checked_add(index_len) != Some(trailer_at) {
            return Err(Error::MalformedArchive {
                offset: trailer_at,
                reason: "index offset and length do not meet the trailer",
            });
        }
        if index_len > max_index_len {
            return Err(Error::LimitExceeded {
                what: "archive index length",
                found: index_len,
                limit: max_index_len,
            });
        }
        let mut index = vec![0u8; index_len as usize];
        reader.seek(SeekFrom::Start(index_offset))?;
        reader.read_exact(&mut index).map_err(Error::from_io)?;
        let entries = parse_index(&index, index_offset)?;
        reader.seek(SeekFrom::Start(0))?;
        Ok(Payload::Archive(Archive {
            reader,
            entries,
            tar_len: index_offset,
        }))
    }
}

/// An opened archive: its index, and its entries read on demand.
#[derive(Debug)]
pub struct Archive<S> {
    reader: OpenReader<S>,
    entries: Vec<Entry>,
    tar_len: u64,
}

/// Options for [`Archive::extract`].
#[non_exhaustive]
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Paths to extract (a directory brings everything under it); empty
    /// means all.
    pub entries: Vec<String>,
    /// Keep every entry that authenticated completely instead of nothing.
    pub salvage: bool,
    /// Replace entries that already exist in the destination.
    pub overwrite: bool,
}

impl ExtractOptions {
    /// Extract everything, refuse to replace, keep nothing if damaged.
    pub fn new() -> Self {
        ExtractOptions::default()
    }

    /// Extracts only these paths (and everything under directories among them).
    pub fn entries(mut self, paths: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.entries = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Keeps every entry that authenticated completely, reporting the rest.
    pub fn salvage(mut self, salvage: bool) -> Self {
        self.salvage = salvage;
        self
    }

    /// Replaces existing entries in the destination.
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }
}

/// An entry that could not be extracted because its data is damaged.
#[non_exhaustive]
#[derive(Debug)]
pub struct DamagedEntry {
    /// The entry's path.
    pub path: String,
    /// The first failure, naming the chunk, volume and offset.
    pub error: Error,
    /// Volume and byte offset where the entry's data starts.
    pub start: (u32, u64),
    /// Volume and byte offset of the chunk holding the entry's last byte.
    pub end: (u32, u64),
}

/// What [`Archive::extract`] did.
#[non_exhaustive]
#[derive(Debug, Default)]
pub struct ExtractReport {
    /// Paths extracted, in archive order.
    pub extracted: Vec<String>,
    /// Entries left out as damaged (only with `salvage`).
    pub damaged: Vec<DamagedEntry>,
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

    /// Gives the payload reader back.
    pub fn into_reader(self) -> OpenReader<S> {
        self.reader
    }

    /// The entry named `path`, if any.
    pub fn entry(&self, path: &str) -> Option<&Entry> {
        let path = path.trim_end_matches('/');
        self.entries.iter().find(|entry| entry.path == path)
    }

    /// Reads the data of a file entry (empty for other kinds); costs the
    /// chunks the entry spans.
    ///
    /// # Errors
    ///
    /// I/O errors of seeking; chunk errors arrive through `Read`.
    pub fn read_entry(&mut self, entry: &Entry) -> Result<impl Read + '_, Error> {
        self.reader.seek(SeekFrom::Start(entry.data_offset))?;
        Ok((&mut self.reader).take(entry.size))
    }

    /// The tar stream alone (without index and trailer), from its start.
    ///
    /// # Errors
    ///
    /// I/O errors of seeking.
    pub fn tar_reader(&mut self) -> Result<impl Read + '_, Error> {
        self.reader.seek(SeekFrom::Start(0))?;
        Ok((&mut self.reader).take(self.tar_len))
    }
}

impl<S: VolumeSource + Sync> Archive<S> {
    /// Chooses the entries `options` asks for, refusing names it lacks.
    fn select(&self, options: &ExtractOptions) -> Result<Vec<usize>, Error> {
        if options.entries.is_empty() {
            return Ok((0..self.entries.len()).collect());
        }
        let mut chosen = Vec::new();
        for wanted in &options.entries {
            let wanted = wanted.trim_end_matches('/');
            let prefix = format!("{wanted}/");
            let before = chosen.len();
            for (index, entry) in self.entries.iter().enumerate() {
                if entry.path == wanted || entry.path.starts_with(&prefix) {
                    chosen.push(index);
                }
            }
            if chosen.len() == before {
                return Err(Error::EntryNotFound {
                    path: wanted.to_owned(),
                });
            }
        }
        chosen.sort_unstable();
        chosen.dedup();
        Ok(chosen)
    }

    /// Extracts entries into the directory `dest`, which must exist.
    ///
    /// Entries are written into a hidden staging directory inside `dest`
    /// and moved into place only once everything they came from has
    /// authenticated (extracting everything reads the whole payload once).
    /// On any failure `dest` is left as it was. With `salvage`, entries
    /// whose data failed authentication are left out and reported, and the
    /// rest is kept.
    ///
    /// # Errors
    ///
    /// [`Error::UnsafeEntry`] for paths that would leave `dest` (absolute,
    /// `..`, through or to links leading out), duplicates (also differing
    /// only in case) and special files; [`Error::DestinationExists`] unless
    /// `overwrite`; [`Error::EntryNotFound`]; chunk errors without `salvage`;
    /// [`Error::Io`].
    pub fn extract(
        &mut self,
        dest: &Path,
        options: &ExtractOptions,
    ) -> Result<ExtractReport, Error> {
        let chosen = self.select(options)?;
        check_safe(&self.entries, &chosen)?;
        let tops: Vec<String> = top_level(&self.entries, &chosen);
        if !options.overwrite {
            for top in &tops {
                if fs::symlink_metadata(dest.join(top)).is_ok() {
                    return Err(Error::DestinationExists {
                        path: dest.join(top),
                    });
                }
            }
        }
        let staging = Staging::create(dest)?;
        let report = self.stage(&staging.path, &chosen, options)?;
        // Everything authenticated (or was reported as damaged): publish.
        for top in &tops {
            let from = staging.path.join(top);
            if fs::symlink_metadata(&from).is_err() {
                continue;
            }
            let to = dest.join(top);
            if options.overwrite {
                remove_existing(&to)?;
            }
            fs::rename(&from, &to)?;
        }
        drop(staging);
        Ok(report)
    }

    fn stage(
        &mut self,
        root: &Path,
        chosen: &[usize],
        options: &ExtractOptions,
    ) -> Result<ExtractReport, Error> {
        let whole = options.entries.is_empty();
        let mut report = ExtractReport::default();
        let mut directories = Vec::new();
        let mut position = 0u64;
        self.reader.seek(SeekFrom::Start(0))?;
        let by_path: HashMap<String, usize> = self
            .entries
            .iter()
            .enumerate()
            .map(|(index, entry)| (entry.path.clone(), index))
            .collect();
        for &index in chosen {
            let entry = self.entries[index].clone();
            let target = root.join(&entry.path);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent)?;
            }
            match entry.kind {
                EntryKind::Directory => {
                    fs::create_dir_all(&target)?;
                    directories.push((target, entry.mode, entry.mtime));
                }
                EntryKind::Symlink => {
                    make_symlink(entry.link.as_deref().unwrap_or(""), &target)?;
                }
                EntryKind::File | EntryKind::Hardlink => {
                    // A hard link is extracted as a copy of its target.
                    let source = match entry.kind {
                        EntryKind::File => entry.clone(),
                        _ => {
                            let target = entry.link.as_deref().unwrap_or("");
                            let index = by_path.get(target).ok_or_else(|| Error::UnsafeEntry {
                                path: entry.path.clone(),
                                reason: "hard link to something not a file in the archive",
                            })?;
                            self.entries[*index].clone()
                        }
                    };
                    if whole && source.data_offset >= position {
                        // Authenticate the tar headers between entries too.
                        self.skip_to(source.data_offset, &mut position)?;
                    } else {
                        self.reader.seek(SeekFrom::Start(source.data_offset))?;
                    }
                    match self.copy_entry(&source, &target) {
                        Ok(()) => {
                            if entry.kind == EntryKind::File {
                                position = source.data_offset + source.size;
                            }
                            set_file_metadata(&target, entry.mode, entry.mtime)?;
                        }
                        Err(err) if options.salvage && !matches!(err, Error::Io(_)) => {
                            let _ = fs::remove_file(&target);
                            let last = source.data_offset + source.size.saturating_sub(1);
                            report.damaged.push(DamagedEntry {
                                path: entry.path.clone(),
                                error: err,
                                start: self.reader.locate(source.data_offset),
                                end: self.reader.locate(last),
                            });
                            position = u64::MAX;
                            continue;
                        }
                        Err(err) => return Err(err),
                    }
                }
            }
            report.extracted.push(entry.path.clone());
        }
        if whole && position != u64::MAX {
            let end = self.reader.len();
            self.skip_to(end, &mut position)?;
        }
        // Directory modes last, deepest first, so read-only ones can be filled.
        for (path, mode, mtime) in directories.iter().rev() {
            set_file_metadata(path, *mode, *mtime)?;
        }
        Ok(report)
    }

    /// Reads and discards plaintext up to `offset`, authenticating it.
    fn skip_to(&mut self, offset: u64, position: &mut u64) -> Result<(), Error> {
        self.reader.seek(SeekFrom::Start(*position))?;
        self.reader.copy_to(&mut io::sink(), offset - *position)?;
        *position = offset;
        Ok(())
    }

    /// Writes an entry's data (the reader is at its start) to a new file.
    fn copy_entry(&mut self, entry: &Entry, target: &Path) -> Result<(), Error> {
        let mut file = File::options().write(true).create_new(true).open(target)?;
        let written = self.reader.copy_to(&mut file, entry.size)?;
        if written != entry.size {
            return Err(Error::MalformedArchive {
                offset: entry.data_offset,
                reason: "entry data runs past the payload",
            });
        }
        Ok(())
    }
}

/// First path components of the chosen entries, each once, in order.
fn top_level(entries: &[Entry], chosen: &[usize]) -> Vec<String> {
    let mut seen = HashSet::new();
    chosen
        .iter()
        .map(|&index| {
            entries[index]
                .path
                .split('/')
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .filter(|top| seen.insert(top.clone()))
        .collect()
}

/// Refuses any chosen entry that could write outside the destination or
/// clobber another (SPEC.md §12.4).
fn check_safe(entries: &[Entry], chosen: &[usize]) -> Result<(), Error> {
    let unsafe_entry = |path: &str, reason| Error::UnsafeEntry {
        path: path.to_owned(),
        reason,
    };
    let mut seen_exact = HashSet::new();
    let mut seen_folded = HashSet::new();
    let mut links = HashSet::new();
    let all: HashMap<&str, &Entry> = entries.iter().map(|e| (e.path.as_str(), e)).collect();
    for entry in entries {
        check_relative(&entry.path).map_err(|reason| unsafe_entry(&entry.path, reason))?;
        if !seen_exact.insert(entry.path.as_str()) {
            return Err(unsafe_entry(&entry.path, "the same name twice"));
        }
        if !seen_folded.insert(entry.path.to_lowercase()) {
            return Err(unsafe_entry(&entry.path, "names that differ only in case"));
        }
    }
    for &index in chosen {
        let entry = &entries[index];
        // No entry may sit below a link: writing it would follow the link.
        let mut prefix = String::new();
        for component in entry.path.split('/') {
            if !prefix.is_empty() && links.contains(prefix.as_str()) {
                return Err(unsafe_entry(&entry.path, "path runs through a link"));
            }
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(component);
        }
        let link = entry.link.as_deref().unwrap_or("");
        match entry.kind {
            EntryKind::Symlink => {
                if link.starts_with('/') || link.contains('\\') {
                    return Err(unsafe_entry(&entry.path, "symlink to an absolute path"));
                }
                // Resolve lexically from the link's directory: never above the root.
                let mut depth = entry.path.matches('/').count() as i64;
                for component in link.split('/') {
                    match component {
                        "" | "." => {}
                        ".." => depth -= 1,
                        _ => depth += 1,
                    }
                    if depth < 0 {
                        return Err(unsafe_entry(
                            &entry.path,
                            "symlink leads out of the destination",
                        ));
                    }
                }
                links.insert(entry.path.as_str());
            }
            EntryKind::Hardlink => match all.get(link) {
                Some(target) if target.kind == EntryKind::File => {}
                _ => {
                    return Err(unsafe_entry(
                        &entry.path,
                        "hard link to something not a file in the archive",
                    ));
                }
            },
            EntryKind::File | EntryKind::Directory => {}
        }
    }
    Ok(())
}

/// A hidden directory inside the destination, removed on drop unless empty
/// of everything (after publishing, only the empty directory remains).
struct Staging {
    path: PathBuf,
}

impl Staging {
    fn create(dest: &Path) -> Result<Self, Error> {
        let mut suffix = [0u8; 6];
        getrandom::fill(&mut suffix).map_err(|err| Error::Io(io::Error::other(err.to_string())))?;
        let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let path = dest.join(format!(".kuvert-staging-{}-{suffix}", std::process::id()));
        fs::create_dir(&path)?;
        Ok(Staging { path })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = make_writable(&self.path);
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Directories extracted read-only would block removal of a failed staging.
fn make_writable(path: &Path) -> io::Result<()> {
    let metadata = fs::symlink_metadata(path)?;
    if metadata.is_dir() {
        let mut permissions = metadata.permissions();
        #[allow(
            clippy::permissions_set_readonly_false,
            reason = "owner-only on unix via the mode below"
        )]
        permissions.set_readonly(false);
        fs::set_permissions(path, permissions)?;
        for child in fs::read_dir(path)? {
            make_writable(&child?.path())?;
        }
    }
    Ok(())
}

fn remove_existing(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    }
}

#[cfg(unix)]
fn make_symlink(target: &str, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn make_symlink(_target: &str, link: &Path) -> io::Result<()> {
    Err(io::Error::other(format!(
        "{}: symlinks are not extracted on this platform",
        link.display()
    )))
}

/// Sets permission bits (without set-id and sticky bits) and mtime.
fn set_file_metadata(path: &Path, mode: u32, mtime: i64) -> io::Result<()> {
    let file = File::open(path)?;
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(mtime.max(0) as u64);
    file.set_modified(time)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o777))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind, link: Option<&str>) -> Entry {
        Entry {
            path: path.into(),
            kind,
            size: 0,
            mode: 0o644,
            mtime: 0,
            link: link.map(str::to_owned),
            header_offset: 0,
            data_offset: 512,
        }
    }

    #[test]
    fn relative_paths_only() {
        for bad in [
            "",
            "/etc/passwd",
            "a/../../b",
            "./a",
            "a//b",
            "a/.",
            "a\\b",
            "a\0b",
        ] {
            assert!(check_relative(bad).is_err(), "{bad:?}");
        }
        for good in [
            "a",
            "a/b",
            "dir/file.csv",
            "ünïcode/名前",
            "..hidden",
            "a/...b",
        ] {
            assert!(check_relative(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn escaping_links_and_collisions_are_refused() {
        let cases = [
            vec![entry("l", EntryKind::Symlink, Some("/etc"))],
            vec![entry("l", EntryKind::Symlink, Some("../x"))],
            vec![entry("d/l", EntryKind::Symlink, Some("../../x"))],
            vec![
                entry("l", EntryKind::Symlink, Some("d")),
                entry("l/x", EntryKind::File, None),
            ],
            vec![entry("h", EntryKind::Hardlink, Some("/etc/shadow"))],
            vec![
                entry("a", EntryKind::File, None),
                entry("A", EntryKind::File, None),
            ],
            vec![
                entry("a", EntryKind::File, None),
                entry("a", EntryKind::File, None),
            ],
        ];
        for entries in cases {
            let chosen: Vec<usize> = (0..entries.len()).collect();
            assert!(
                matches!(
                    check_safe(&entries, &chosen),
                    Err(Error::UnsafeEntry { .. })
                ),
                "{entries:?}"
            );
        }
        let fine = vec![
            entry("d", EntryKind::Directory, None),
            entry("d/f", EntryKind::File, None),
            entry("d/l", EntryKind::Symlink, Some("../d/f")),
            entry("h", EntryKind::Hardlink, Some("d/f")),
        ];
        check_safe(&fine, &[0, 1, 2, 3]).expect("links inside the tree");
    }

    #[test]
    fn index_round_trips_and_refuses_lies() {
        let entries = vec![
            Entry {
                size: 10,
                ..entry("f", EntryKind::File, None)
            },
            Entry {
                header_offset: 1024,
                data_offset: 1536,
                ..entry("l", EntryKind::Symlink, Some("f"))
            },
        ];
        let bytes = encode_index(&entries);
        assert_eq!(parse_index(&bytes, 4096).expect("valid index"), entries);
        assert!(
            parse_index(&bytes, 1000).is_err(),
            "offsets past the tar stream"
        );
        assert!(parse_index(&bytes[..bytes.len() - 1], 4096).is_err());
        let mut huge = bytes.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(
            parse_index(&huge, 4096).is_err(),
            "count larger than the index"
        );
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        // 9 digits of value + "path=" + " " + "\n": the length field is two digits.
        let identity = crate::X25519Identity::generate();
        let mut archive = crate::Sealer::new()
            .recipient(identity.to_public())
            .seal_archive(crate::MemorySink::new())
            .expect("seal");
        let long = format!("{}/file", "d".repeat(200));
        archive
            .append_file(&long, &b"x"[..], 1, 0o600, 0)
            .expect("long name");
        archive
            .append_file("名前.csv", &b"y"[..], 1, 0o600, 0)
            .expect("unicode name");
        assert_eq!(archive.entries()[0].path, long);
    }
}
