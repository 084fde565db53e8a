//! The one error type of the crate.

use std::fmt;
use std::io;

use crate::escape::escape_name;

/// Where in a volume set something happened: the volume, the byte within
/// it, the chunk there if known, and the volume's name if its source has
/// one ([`VolumeSource::name`](crate::VolumeSource::name)).
///
/// Displayed as `volume 2 (disc/register.002.kuv) at byte 1234 (chunk 9)`,
/// the name escaped with [`escape_name`](crate::escape_name).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Volume number, from 1. Before a volume's header was read (and so
    /// its number could be trusted), the volume's position among the
    /// inputs given, from 1.
    pub volume: u32,
    /// Byte offset within the volume.
    pub offset: u64,
    /// Global chunk index at that offset, from 0; `None` inside a header.
    pub chunk: Option<u64>,
    /// The source's name, such as the file the volume was opened from.
    pub name: Option<String>,
}

impl Location {
    /// A location in volume `volume` at byte `offset`, with no chunk or name.
    pub fn new(volume: u32, offset: u64) -> Self {
        Location {
            volume,
            offset,
            chunk: None,
            name: None,
        }
    }

    /// The same location, in chunk `chunk`.
    #[must_use]
    pub fn chunk(mut self, chunk: u64) -> Self {
        self.chunk = Some(chunk);
        self
    }

    /// The same location, in the volume named `name`.
    #[must_use]
    pub fn name(mut self, name: Option<impl Into<String>>) -> Self {
        self.name = name.map(Into::into);
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "volume {}", self.volume)?;
        if let Some(name) = &self.name {
            write!(f, " ({})", escape_name(name))?;
        }
        write!(f, " at byte {}", self.offset)?;
        if let Some(chunk) = self.chunk {
            write!(f, " (chunk {chunk})")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong sealing, opening or inspecting a volume set.
///
/// Variants say what a caller can act on and where it happened. Volume
/// numbers count from 1 (as printed on a disc label); `input` counts the
/// volumes handed to the opener from 1, in the order given, for problems
/// found before a volume's own number can be trusted. No variant ever
/// carries key material or plaintext. Names a sender chose (entry paths)
/// are displayed through [`escape_name`](crate::escape_name), so a message
/// cannot move the cursor or forge a line.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The underlying reader or writer failed, and no more is known of
    /// where; the OS error is the [`source`](std::error::Error::source).
    ///
    /// `?` on an `io::Error` that carries one of this crate's errors (as
    /// the [`Read`](std::io::Read) adapters make them) gives that error
    /// back, never this variant.
    #[error("i/o error")]
    Io(#[source] io::Error),

    /// A volume could not be read (an unreadable sector, a file cut under
    /// an open reader): where, and the OS error as the
    /// [`source`](std::error::Error::source).
    #[error("cannot read {at}")]
    Read {
        /// Where the failed read started.
        at: Location,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The input does not start with the kuvert magic bytes.
    #[error("input {input} is not a kuvert volume")]
    NotKuvert {
        /// Position of the volume among the inputs, from 1.
        input: usize,
    },

    /// The volume was written by a format version this library does not read.
    #[error("input {input} uses format version {version}, this library reads version 1")]
    UnsupportedVersion {
        /// Position of the volume among the inputs, from 1.
        input: usize,
        /// Version number found in the header.
        version: u16,
    },

    /// The header breaks a rule of SPEC.md §3 before any key was tried.
    #[error("input {input}: malformed header at byte {offset}: {reason}")]
    MalformedHeader {
        /// Position of the volume among the inputs, from 1.
        input: usize,
        /// Byte offset of the offending field within the volume.
        offset: u64,
        /// Which rule was broken.
        reason: &'static str,
    },

    /// A value read from untrusted bytes is above what the opener allows.
    ///
    /// Raise the limit with [`Limits`](crate::Limits) if the source is trusted.
    #[error("{what} is {found}, above the limit of {limit}")]
    LimitExceeded {
        /// The limited quantity, as named in [`Limits`](crate::Limits).
        what: &'static str,
        /// Value the input asks for.
        found: u64,
        /// Limit in force.
        limit: u64,
    },

    /// None of the given identities or passphrases matches a recipient stanza.
    #[error("no identity matches any recipient (stanza types: {})", stanza_types.join(", "))]
    NoMatchingKey {
        /// Types of the recipient stanzas in the header, in header order.
        stanza_types: Vec<String>,
    },

    /// The passphrase does not match the container's passphrase stanza.
    #[error("wrong passphrase")]
    WrongPassphrase,

    /// The header did not authenticate under the unwrapped file key.
    ///
    /// The volume was altered after sealing, or crafted.
    #[error("volume {volume}: header failed authentication")]
    HeaderDamaged {
        /// Volume number from the header, from 1.
        volume: u32,
    },

    /// A chunk failed authentication; deliberately silent about why.
    #[error("chunk {chunk} (volume {volume}, byte {offset}) failed authentication")]
    Unauthenticated {
        /// Global chunk index, from 0.
        chunk: u64,
        /// Volume number, from 1.
        volume: u32,
        /// Byte offset of the chunk within its volume.
        offset: u64,
    },

    /// A volume ends before its last chunk: it was cut short.
    #[error("volume {volume} is truncated: it ends at byte {length} before its last chunk")]
    Truncated {
        /// Volume number, from 1.
        volume: u32,
        /// Length of the volume as found.
        length: u64,
    },

    /// A volume of the set was not given.
    ///
    /// When `volume` is one past the highest volume given, the set's final
    /// volume is missing: what was given ends with an end-of-volume chunk,
    /// not the end-of-set chunk.
    #[error("volume {volume} is missing")]
    VolumeMissing {
        /// Number of the first missing volume, from 1.
        volume: u32,
    },

    /// The sink writes a single volume (a [`WriteSink`]), but the set
    /// needs another: seal without a volume size, or to a [`FileSink`].
    ///
    /// [`WriteSink`]: crate::WriteSink
    /// [`FileSink`]: crate::FileSink
    #[error("cannot start volume {volume}: the sink writes a single volume")]
    SplitRefused {
        /// The volume the sealer asked for, from 1.
        volume: u32,
    },

    /// The same volume number was given more than once.
    #[error("volume {volume} was given twice (inputs {first} and {second})")]
    DuplicateVolume {
        /// Volume number, from 1.
        volume: u32,
        /// Position of the first copy among the inputs, from 1.
        first: usize,
        /// Position of the second copy among the inputs, from 1.
        second: usize,
    },

    /// A volume belongs to a different set than the others.
    #[error("input {input} (volume {volume}) belongs to another set")]
    ForeignVolume {
        /// Position of the volume among the inputs, from 1.
        input: usize,
        /// Volume number that volume claims, from 1.
        volume: u32,
    },

    /// Bytes follow the last chunk of a volume.
    #[error("volume {volume} has trailing bytes after byte {offset}")]
    TrailingData {
        /// Volume number, from 1.
        volume: u32,
        /// Offset where the trailing bytes start.
        offset: u64,
    },

    /// A chunk authenticated but breaks a rule only the key holder could
    /// break, such as an empty final chunk after data (SPEC.md §6).
    #[error("chunk {chunk} (volume {volume}) is malformed: {reason}")]
    MalformedChunk {
        /// Global chunk index, from 0.
        chunk: u64,
        /// Volume number, from 1.
        volume: u32,
        /// Which rule was broken.
        reason: &'static str,
    },

    /// A key or recipient string could not be parsed.
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// What is wrong with it.
        reason: String,
    },

    /// A line of an identity or recipients file is not a key of its kind.
    /// The line itself is not repeated: it may be a mistyped secret key.
    #[error("line {line} is not {} {what}: {reason}", article(what))]
    KeyFileLine {
        /// What the file holds: `"identity"` or `"recipient"`.
        what: &'static str,
        /// Line number, from 1.
        line: usize,
        /// Why the line is not a key.
        reason: String,
    },

    /// An identity or recipients file holds no key, only blank lines and
    /// comments.
    #[error("no {what} in the file")]
    EmptyKeyFile {
        /// What the file should hold: `"identity"` or `"recipient"`.
        what: &'static str,
    },

    /// A sealing or opening option is out of range.
    #[error("invalid option: {reason}")]
    InvalidOption {
        /// What is wrong with it.
        reason: String,
    },

    /// An archive entry would be unsafe to extract or to seal: a path that
    /// is absolute or climbs with `..`, a link leading out of the
    /// destination, a duplicate name, or a special file.
    #[error("unsafe entry \"{}\": {reason}", escape_name(path))]
    UnsafeEntry {
        /// The entry's path as recorded (or the file on disk when sealing).
        path: String,
        /// What makes it unsafe.
        reason: &'static str,
    },

    /// Two entries would be one file: the same path, or paths equal after
    /// Unicode normalisation and case folding (SPEC.md §12.3), in the name
    /// itself or in a parent directory.
    #[error(
        "entries \"{}\" and \"{}\" would be one file on a file system that folds case or normalises names",
        escape_name(path),
        escape_name(other)
    )]
    NameCollision {
        /// The later entry's path.
        path: String,
        /// The earlier name it collides with (an entry or a parent of one).
        other: String,
    },

    /// An entry's tar header says something else than the index
    /// (SPEC.md §12.8): `tar -x` would extract another file than kuvert.
    #[error(
        "entry \"{}\": the tar header at content byte {offset} disagrees with the index: {reason}",
        escape_name(path)
    )]
    TarMismatch {
        /// The entry's path, as the index gives it.
        path: String,
        /// Payload offset of the offending header block or field.
        offset: u64,
        /// Which field differs.
        reason: &'static str,
    },

    /// The caller asked the operation to stop (a Ctrl-C handler); nothing
    /// was published.
    #[error("cancelled")]
    Cancelled,

    /// A file or directory being sealed, or a volume file being opened
    /// ([`FileSource::open`](crate::FileSource::open)), could not be read.
    #[error("cannot read {}", escape_name(&path.to_string_lossy()))]
    Input {
        /// The file or directory on disk.
        path: std::path::PathBuf,
        /// Why it could not be read.
        #[source]
        source: io::Error,
    },

    /// The payload prefix (its first 4 plaintext bytes, SPEC.md §6.7)
    /// breaks a rule: an unknown kind, nonzero flags, a nonzero records
    /// length, or a payload shorter than the prefix. It authenticated, so
    /// only a key holder can have written it.
    #[error("malformed payload prefix at payload byte {offset}: {reason}")]
    MalformedPayload {
        /// Payload offset of the offending field (the payload length if
        /// the payload ends inside the prefix). The prefix is in chunk 0.
        offset: u64,
        /// Which rule was broken.
        reason: &'static str,
    },

    /// The archive index is inconsistent with the payload it describes.
    #[error("malformed archive index at payload byte {offset}: {reason}")]
    MalformedArchive {
        /// Offset of the offending index field within the payload's content
        /// (after the payload prefix, SPEC.md §6.7), as [`OpenReader`]
        /// positions count.
        ///
        /// [`OpenReader`]: crate::OpenReader
        offset: u64,
        /// Which rule was broken.
        reason: &'static str,
    },

    /// A requested entry is not in the archive.
    #[error("no entry \"{}\" in the archive", escape_name(path))]
    EntryNotFound {
        /// The path asked for.
        path: String,
    },

    /// Extraction would replace something that already exists.
    #[error("{} already exists", escape_name(&path.to_string_lossy()))]
    DestinationExists {
        /// The existing path.
        path: std::path::PathBuf,
    },

    /// The payload needs more chunks than the nonce counter can address.
    #[error("the chunk counter is exhausted")]
    CounterExhausted,

    /// Nothing to open: no volume was given.
    #[error("no volumes given")]
    NoVolumes,

    /// An archive was asked for ([`Opener::open_archive`](crate::Opener::open_archive))
    /// but the payload is a stream.
    #[error("the payload is a stream, not an archive")]
    NotAnArchive,
}

/// `a` or `an` before a word in a message: `a recipient`, `an identity`.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

impl Error {
    pub(crate) fn malformed(input: usize, offset: u64, reason: &'static str) -> Self {
        Error::MalformedHeader {
            input,
            offset,
            reason,
        }
    }

    pub(crate) fn key(reason: impl Into<String>) -> Self {
        Error::InvalidKey {
            reason: reason.into(),
        }
    }

    pub(crate) fn option(reason: impl Into<String>) -> Self {
        Error::InvalidOption {
            reason: reason.into(),
        }
    }
}

/// Adapters speak `io::Error`; the typed error rides inside for downcasting.
impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        let kind = match err {
            Error::Io(inner) => return inner,
            Error::Read { ref source, .. } => source.kind(),
            Error::Truncated { .. } | Error::VolumeMissing { .. } => io::ErrorKind::UnexpectedEof,
            Error::InvalidOption { .. }
            | Error::InvalidKey { .. }
            | Error::KeyFileLine { .. }
            | Error::EmptyKeyFile { .. }
            | Error::SplitRefused { .. } => io::ErrorKind::InvalidInput,
            Error::DestinationExists { .. } => io::ErrorKind::AlreadyExists,
            Error::EntryNotFound { .. } => io::ErrorKind::NotFound,
            Error::Cancelled => io::ErrorKind::Other,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, err)
    }
}

/// `?` on an `io::Error` that carries one of ours (made by this crate's
/// `Read`/`Write` adapters) gives ours back; any other I/O error becomes
/// [`Error::Io`], unchanged.
impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        if !err.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            return Error::Io(err);
        }
        match err.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(typed)) => *typed,
            // Unreachable: the inner error was checked to be ours above.
            Some(Err(other)) => Error::Io(io::Error::other(other)),
            None => Error::Io(io::Error::other("i/o error")),
        }
    }
}

impl Error {
    /// Recovers the typed error from an `io::Error` made by this crate's
    /// `Read`/`Write` adapters; other I/O errors become [`Error::Io`].
    ///
    /// The same as `Error::from(err)` (and `?`); kept for callers that
    /// name it in `map_err`.
    pub fn from_io(err: io::Error) -> Self {
        Error::from(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_chosen_paths_are_displayed_escaped() {
        let err = Error::UnsafeEntry {
            path: "a\n\x1b[2Jb".into(),
            reason: "the same name twice",
        };
        assert_eq!(
            err.to_string(),
            "unsafe entry \"a\\n\\x1b[2Jb\": the same name twice"
        );
        let err = Error::EntryNotFound {
            path: "x\u{202e}y".into(),
        };
        assert_eq!(err.to_string(), "no entry \"x\\u{202e}y\" in the archive");
        let err = Error::DestinationExists {
            path: "dest/\r".into(),
        };
        assert_eq!(err.to_string(), "dest/\\r already exists");
    }
}
