//! Entries in a payload (SPEC.md §12): files, directories and links as a
//! PAX tar stream, followed by an index of the entries and a fixed trailer,
//! all inside the encrypted payload. The index lets `list` and single-entry
//! extraction cost O(index + entry) instead of a pass over the payload; the
//! tar stream lets `kuvert open --tar | tar -x` work with any tar.
//!
//! One job per file: [`names`](self) holds the path and name rules, `tree`
//! the entries as a tree (collisions, parents, links), `index` the index and
//! trailer codec, `write` the writer, `read` the reader and the checked tar
//! stream, `tar_check` the agreement of tar headers with the index, `extract`
//! the extraction plan, `touched` which entries a damaged range hits, and `staging` the file-system operations, all done
//! through directory handles.

mod extract;
mod index;
mod names;
mod read;
mod staging;
mod tar_check;
mod touched;
mod tree;
mod write;

pub use extract::{DamagedEntry, ExtractOptions, ExtractReport};
pub use names::PortabilityWarning;
pub use read::{Archive, DetectError, Payload};
pub use touched::Touched;
pub use tree::ArchiveLimits;
pub use write::{ArchiveWriter, Skipped, WalkEntry};

/// Default bound on the index length a decoder reads (SPEC.md §12.2): room
/// for millions of entries.
pub const DEFAULT_MAX_INDEX_LEN: u64 = 256 << 20;

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
    /// A hard link to an earlier file entry named in [`Entry::link`].
    Hardlink,
}

impl EntryKind {
    /// Short name for listings.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Directory => "dir",
            EntryKind::Symlink => "symlink",
            EntryKind::Hardlink => "hardlink",
        }
    }

    /// Whether the entry is a link of either kind.
    pub fn is_link(self) -> bool {
        matches!(self, EntryKind::Symlink | EntryKind::Hardlink)
    }
}

/// One entry of an archive, as its index records it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative path with `/` separators, as the sender chose it: escape it
    /// before printing (`kuvert::escape_name`).
    pub path: String,
    /// File, directory or link.
    pub kind: EntryKind,
    /// Data bytes (0 for all but files).
    pub size: u64,
    /// Permission bits as archived (at most 0o7777).
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

impl Entry {
    /// Plaintext offset just past the entry's data and its padding to the
    /// next 512-byte block: where the next entry's header starts.
    pub(crate) fn end(&self) -> u64 {
        self.data_offset + self.size.div_ceil(index::BLOCK) * index::BLOCK
    }
}
