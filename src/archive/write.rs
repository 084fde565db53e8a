//! Writing an archive into a sealed payload (SPEC.md §12): the tar stream,
//! the directory walk, and the index and trailer at the end. The writer
//! checks every name as the extractor will, so it never writes an archive
//! that its own extractor refuses.

#[cfg(unix)]
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::index::{BLOCK, encode_index, encode_trailer};
use super::names::{PortabilityWarning, check_link_target, portability};
use super::tree::{ArchiveLimits, Tree};
use super::{Entry, EntryKind};
use crate::error::Error;
use crate::seal::SealWriter;
use crate::volumes::VolumeSink;

/// Largest value an 11-digit octal ustar field holds.
const USTAR_MAX: u64 = 0o777_7777_7777;

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

/// A file or directory met by [`ArchiveWriter::append_path_filtered`],
/// offered to its filter before anything of it is written.
#[non_exhaustive]
#[derive(Debug)]
pub struct WalkEntry<'a> {
    /// Where it is on disk.
    pub disk: &'a Path,
    /// The name it would have in the archive.
    pub name: &'a str,
    /// What the disk says about it (not following a symlink).
    pub metadata: &'a fs::Metadata,
}

/// What [`ArchiveWriter::append_path_filtered`] left out because its filter
/// said so (a directory left out takes everything under it along).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Where it is on disk.
    pub disk: PathBuf,
    /// The name it would have had in the archive.
    pub name: String,
}

/// Writes entries into a sealed payload.
///
/// A failed append (a read error, a file that changed size while it was
/// read, a full sink) poisons the writer: every later call fails, so the
/// index can never leave out what the tar stream holds. A name refused
/// before anything was written (an unsafe path, a collision) does not.
///
/// ```
/// use kuvert::{MemorySink, Sealer, X25519Identity};
///
/// let identity = X25519Identity::generate()?;
/// let sealer = Sealer::new().recipient(identity.to_public());
/// let mut archive = sealer.seal_archive(MemorySink::new())?;
/// archive.append_file("extract/patients.csv", &b"id,icd10\n"[..], 9, 0o640, 1_700_000_000)?;
/// let volumes = archive.finish()?.into_volumes();
/// # Ok::<(), kuvert::Error>(())
/// ```
pub struct ArchiveWriter<S: VolumeSink> {
    tar: tar::Builder<Counting<SealWriter<S>>>,
    entries: Vec<Entry>,
    tree: Tree,
    warnings: Vec<PortabilityWarning>,
    failed: bool,
    /// First archive name of each multiply-linked file met on disk.
    #[cfg(unix)]
    inodes: HashMap<(u64, u64), String>,
}

impl<S: VolumeSink> std::fmt::Debug for ArchiveWriter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveWriter")
            .field("entries", &self.entries.len())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl<S: VolumeSink> ArchiveWriter<S> {
    /// Starts an archive in a payload that nothing has been written to.
    pub(crate) fn new(writer: SealWriter<S>) -> Self {
        let mut tar = tar::Builder::new(Counting {
            inner: writer,
            written: 0,
        });
        tar.mode(tar::HeaderMode::Complete);
        ArchiveWriter {
            tar,
            entries: Vec::new(),
            // The writer holds no limit the extractor would not.
            tree: Tree::new(ArchiveLimits::default()),
            warnings: Vec::new(),
            failed: false,
            #[cfg(unix)]
            inodes: HashMap::new(),
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

    /// Names appended so far that another system (Windows) could not hold
    /// as they are. They are sealed all the same; tell the sender.
    pub fn warnings(&self) -> &[PortabilityWarning] {
        &self.warnings
    }

    /// Appends a file, directory (recursively, in name order) or symlink
    /// from disk under `name`. Files linked more than once within what is
    /// appended become hard-link entries, not copies.
    ///
    /// # Errors
    ///
    /// As [`append_path_filtered`](Self::append_path_filtered); a device,
    /// socket or FIFO is [`Error::UnsafeEntry`].
    pub fn append_path(&mut self, disk: &Path, name: &str) -> Result<(), Error> {
        self.append_path_filtered(disk, name, |_| true).map(drop)
    }

    /// Appends like [`append_path`](Self::append_path), asking `filter`
    /// first about everything it meets; what the filter refuses is left out
    /// (a directory with everything under it) and returned.
    ///
    /// # Errors
    ///
    /// [`Error::UnsafeEntry`] for a name that is not a plain relative path
    /// or is not UTF-8, or for a device, socket or FIFO the filter let
    /// through; [`Error::NameCollision`]; [`Error::Input`], naming the
    /// file, for errors reading the disk; [`Error::Io`] for errors writing
    /// the payload, and for a file that changes size while it is read
    /// (both poison the writer).
    pub fn append_path_filtered(
        &mut self,
        disk: &Path,
        name: &str,
        mut filter: impl FnMut(&WalkEntry<'_>) -> bool,
    ) -> Result<Vec<Skipped>, Error> {
        let mut skipped = Vec::new();
        self.walk(disk, name, &mut filter, &mut skipped)?;
        Ok(skipped)
    }

    fn walk(
        &mut self,
        disk: &Path,
        name: &str,
        filter: &mut dyn FnMut(&WalkEntry<'_>) -> bool,
        skipped: &mut Vec<Skipped>,
    ) -> Result<(), Error> {
        let input = |source: io::Error| Error::Input {
            path: disk.to_path_buf(),
            source,
        };
        let metadata = fs::symlink_metadata(disk).map_err(input)?;
        let offered = WalkEntry {
            disk,
            name,
            metadata: &metadata,
        };
        if !filter(&offered) {
            skipped.push(Skipped {
                disk: disk.to_path_buf(),
                name: name.to_owned(),
            });
            return Ok(());
        }
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
                self.walk(
                    &disk.join(&child),
                    &format!("{name}/{child_name}"),
                    filter,
                    skipped,
                )?;
            }
            Ok(())
        } else if kind.is_file() {
            if let Some(first) = self.earlier_link(&metadata, name) {
                return self.append_hard_link(name, &first, mode, mtime);
            }
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

    /// The archive name of a file already appended that is the same inode.
    #[cfg(unix)]
    fn earlier_link(&mut self, metadata: &fs::Metadata, name: &str) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        if metadata.nlink() < 2 {
            return None;
        }
        let key = (metadata.dev(), metadata.ino());
        match self.inodes.get(&key) {
            Some(first) => Some(first.clone()),
            None => {
                self.inodes
                    .insert(key, name.trim_end_matches('/').to_owned());
                None
            }
        }
    }

    #[cfg(not(unix))]
    fn earlier_link(&mut self, _metadata: &fs::Metadata, _name: &str) -> Option<String> {
        None
    }

    /// Appends a directory entry.
    ///
    /// # Errors
    ///
    /// [`Error::UnsafeEntry`] for a bad name; [`Error::NameCollision`];
    /// [`Error::Io`].
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
    /// [`Error::UnsafeEntry`] for a bad name; [`Error::NameCollision`];
    /// [`Error::Io`], also when `data` yields more or fewer than `size`
    /// bytes (which poisons the writer).
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

    /// Appends a symbolic link. Its target must stay inside the archive's
    /// tree (SPEC.md §12.5); that is checked in full by
    /// [`finish`](Self::finish), once the whole tree is known.
    ///
    /// # Errors
    ///
    /// [`Error::UnsafeEntry`] for a bad name or an absolute, empty or
    /// NUL-holding target; [`Error::NameCollision`]; [`Error::Io`].
    pub fn append_symlink(&mut self, name: &str, target: &str, mtime: i64) -> Result<(), Error> {
        check_link_target(target).map_err(|reason| Error::UnsafeEntry {
            path: name.to_owned(),
            reason,
        })?;
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

    /// Appends a hard link to the file entry `target`, appended earlier.
    ///
    /// # Errors
    ///
    /// [`Error::UnsafeEntry`] for a bad name or a target that is not an
    /// earlier file entry; [`Error::NameCollision`]; [`Error::Io`].
    pub fn append_hard_link(
        &mut self,
        name: &str,
        target: &str,
        mode: u32,
        mtime: i64,
    ) -> Result<(), Error> {
        let is_file = self.tree.lookup(target).is_some_and(|node| {
            self.tree.node(node).kind == super::tree::NodeKind::Entry(EntryKind::File)
        });
        if !is_file {
            return Err(Error::UnsafeEntry {
                path: name.to_owned(),
                reason: "hard link to something not an earlier file entry",
            });
        }
        self.append(
            name,
            EntryKind::Hardlink,
            Some(target),
            mode,
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
        if self.failed {
            return Err(poisoned());
        }
        let name = name.trim_end_matches('/');
        let header_offset = self.bytes_written();
        let mut entry = Entry {
            path: name.to_owned(),
            kind,
            size,
            mode: mode & 0o7777,
            mtime,
            link: link.map(str::to_owned),
            header_offset,
            data_offset: 0,
        };
        // Every check before the first byte, so a refused name costs nothing.
        self.tree.insert(self.entries.len(), &entry)?;
        if let Some(warning) = portability(name) {
            self.warnings.push(warning);
        }
        self.failed = true;
        self.write_entry(&entry, data)?;
        self.failed = false;
        entry.data_offset = self.bytes_written() - size.div_ceil(BLOCK) * BLOCK;
        self.entries.push(entry);
        Ok(())
    }

    /// Writes the tar blocks of `entry` with its data.
    fn write_entry(&mut self, entry: &Entry, data: impl Read) -> Result<(), Error> {
        let name = entry.path.as_str();
        let mut header = tar::Header::new_ustar();
        let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
        let tar_name = match entry.kind {
            EntryKind::Directory => format!("{name}/"),
            _ => name.to_owned(),
        };
        if header.set_path(&tar_name).is_err() || !tar_name.is_ascii() {
            pax.push(("path", tar_name.clone().into_bytes()));
            header.set_path(short_name(&tar_name)).map_err(Error::Io)?;
        }
        if let Some(target) = entry.link.as_deref()
            && (header.set_link_name_literal(target).is_err() || !target.is_ascii())
        {
            pax.push(("linkpath", target.as_bytes().to_vec()));
        }
        if entry.size > USTAR_MAX {
            pax.push(("size", entry.size.to_string().into_bytes()));
        }
        header.set_entry_type(match entry.kind {
            EntryKind::File => tar::EntryType::Regular,
            EntryKind::Directory => tar::EntryType::Directory,
            EntryKind::Symlink => tar::EntryType::Symlink,
            EntryKind::Hardlink => tar::EntryType::Link,
        });
        header.set_size(entry.size);
        header.set_mode(entry.mode);
        header.set_mtime(entry.mtime.clamp(0, USTAR_MAX as i64) as u64);
        header.set_cksum();
        if !pax.is_empty() {
            self.append_pax(&pax)?;
        }
        let mut counted = CountingReader {
            inner: data.take(entry.size),
            read: 0,
        };
        // Errors of the data reader ride inside io::Error; take them back out.
        self.tar
            .append(&header, &mut counted)
            .map_err(Error::from_io)?;
        let mut probe = [0u8; 1];
        if counted.read != entry.size || counted.inner.into_inner().read(&mut probe)? != 0 {
            return Err(Error::Io(io::Error::other(format!(
                "{name:?} changed size while it was sealed"
            ))));
        }
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

    /// Checks every link against the whole tree, ends the tar stream, writes
    /// the index and trailer, and finishes the payload.
    ///
    /// # Errors
    ///
    /// [`Error::UnsafeEntry`] for a symlink whose target leaves the tree
    /// (SPEC.md §12.5): nothing is finished, so no volume of it is
    /// published; an earlier failed append; any error of
    /// [`SealWriter::finish`].
    pub fn finish(self) -> Result<S, Error> {
        if self.failed {
            return Err(poisoned());
        }
        self.tree.check_links(&self.entries)?;
        let ArchiveWriter { tar, entries, .. } = self;
        let mut counting = tar.into_inner()?;
        let index_offset = counting.written;
        let index = zeroize::Zeroizing::new(encode_index(&entries));
        counting.write_all(&index)?;
        counting.write_all(&encode_trailer(index_offset, index.len() as u64))?;
        counting.inner.finish()
    }
}

fn poisoned() -> Error {
    Error::Io(io::Error::other(
        "an earlier append failed; the archive cannot be finished",
    ))
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
        .map(|c| {
            if c.is_ascii() && c != '/' && !c.is_ascii_control() {
                c
            } else {
                '_'
            }
        })
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

impl crate::seal::Sealer {
    /// Starts sealing an archive payload into `sink`: entries are appended
    /// through the returned writer (SPEC.md §12).
    ///
    /// # Errors
    ///
    /// As [`Sealer::seal`](crate::Sealer::seal).
    pub fn seal_archive<S: VolumeSink>(&self, sink: S) -> Result<ArchiveWriter<S>, Error> {
        Ok(ArchiveWriter::new(
            self.seal_kind(sink, crate::PayloadKind::Archive)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemorySink, Opener, X25519Identity};

    fn identity() -> X25519Identity {
        X25519Identity::from_bytes([3; 32])
    }

    fn writer() -> ArchiveWriter<MemorySink> {
        crate::Sealer::new()
            .recipient(identity().to_public())
            .chunk_size(4096)
            .threads(1)
            .seal_archive(MemorySink::new())
            .expect("seal")
    }

    fn entries_of(volumes: Vec<Vec<u8>>) -> Vec<Entry> {
        let reader = Opener::new()
            .identity(identity())
            .open(volumes)
            .expect("open");
        match super::super::Payload::detect(reader, &ArchiveLimits::new()).expect("detect") {
            super::super::Payload::Archive(archive) => archive.entries().to_vec(),
            super::super::Payload::Stream(_) => panic!("an archive was sealed"),
        }
    }

    /// Yields `declared - 1` bytes: a file that shrank while it was read.
    struct Shrunk;

    impl Read for Shrunk {
        fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
            Ok(0)
        }
    }

    #[test]
    fn a_failed_append_poisons_the_writer() {
        let mut archive = writer();
        archive.append_file("a", &b"x"[..], 1, 0o600, 0).expect("a");
        assert!(matches!(
            archive.append_file("b", Shrunk, 10, 0o600, 0),
            Err(Error::Io(_))
        ));
        assert!(matches!(
            archive.append_file("c", &b"y"[..], 1, 0o600, 0),
            Err(Error::Io(_))
        ));
        assert!(matches!(archive.finish(), Err(Error::Io(_))));
    }

    #[test]
    fn a_refused_name_costs_nothing() {
        let mut archive = writer();
        archive
            .append_file("Report.csv", &b"x"[..], 1, 0o600, 0)
            .expect("first");
        let written = archive.bytes_written();
        for (name, collides) in [
            ("report.csv", true),
            ("REPORT.CSV", true),
            ("../escape", false),
            ("/abs", false),
            ("Report.csv/child", false),
        ] {
            let result = archive.append_file(name, &b"y"[..], 1, 0o600, 0);
            match result {
                Err(Error::NameCollision { .. }) if collides => {}
                Err(Error::UnsafeEntry { .. }) if !collides => {}
                other => panic!("{name}: {other:?}"),
            }
            assert_eq!(archive.bytes_written(), written, "{name}");
        }
        // Still usable: the refusals did not poison it.
        archive
            .append_file("other.csv", &b"z"[..], 1, 0o600, 0)
            .expect("after");
        let paths: Vec<String> = entries_of(archive.finish().expect("finish").into_volumes())
            .into_iter()
            .map(|entry| entry.path)
            .collect();
        assert_eq!(paths, ["Report.csv", "other.csv"]);
    }

    #[test]
    fn links_that_leave_the_tree_are_refused_at_finish() {
        let mut archive = writer();
        archive.append_dir("d", 0o755, 0).expect("d");
        archive.append_symlink("d/up", "..", 0).expect("up");
        archive
            .append_symlink("esc", "d/up/../..", 0)
            .expect("form is fine");
        assert!(matches!(archive.finish(), Err(Error::UnsafeEntry { .. })));
        let mut archive = writer();
        assert!(matches!(
            archive.append_symlink("abs", "/etc/passwd", 0),
            Err(Error::UnsafeEntry { .. })
        ));
        assert!(matches!(
            archive.append_hard_link("h", "missing", 0o644, 0),
            Err(Error::UnsafeEntry { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn the_walk_filters_links_and_warns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("tree");
        fs::create_dir(&root).expect("root");
        fs::write(root.join("data.csv"), b"1,2\n").expect("file");
        fs::hard_link(root.join("data.csv"), root.join("same.csv")).expect("link");
        fs::write(root.join("skip.tmp"), b"x").expect("tmp");
        fs::write(root.join("CON.txt"), b"c").expect("con");
        let mut archive = writer();
        let skipped = archive
            .append_path_filtered(&root, "tree", |walk| !walk.name.ends_with(".tmp"))
            .expect("walk");
        assert_eq!(
            skipped,
            [Skipped {
                disk: root.join("skip.tmp"),
                name: "tree/skip.tmp".into()
            }]
        );
        assert_eq!(
            archive.warnings(),
            [PortabilityWarning::ReservedOnWindows {
                path: "tree/CON.txt".into()
            }]
        );
        let entries = entries_of(archive.finish().expect("finish").into_volumes());
        let kinds: Vec<(&str, EntryKind, Option<&str>)> = entries
            .iter()
            .map(|e| (e.path.as_str(), e.kind, e.link.as_deref()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("tree", EntryKind::Directory, None),
                ("tree/CON.txt", EntryKind::File, None),
                ("tree/data.csv", EntryKind::File, None),
                ("tree/same.csv", EntryKind::Hardlink, Some("tree/data.csv")),
            ]
        );
    }
}
