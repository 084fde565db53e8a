//! The one error type of the crate.

use std::fmt;
use std::io;

use crate::escape::escape_name;

/// Which volume a [`Location`] is in: its number, or only its position
/// among the volumes given.
///
/// A volume's number comes from its header, and is trusted only once the
/// header authenticated; before that (a header that does not parse, or
/// does not authenticate, or belongs to another set) a volume is named by
/// where it was in the list handed to the opener.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Volume {
    /// Volume number from an authenticated header, from 1, as printed on
    /// a disc label. Displayed as `volume 2`.
    Number(u32),
    /// Position among the volumes given, from 1, in the order given.
    /// Displayed as `input 2`.
    Input(usize),
}

impl Volume {
    /// The volume number, if the header was trusted.
    pub fn number(self) -> Option<u32> {
        match self {
            Volume::Number(number) => Some(number),
            Volume::Input(_) => None,
        }
    }

    /// The position among the volumes given, if that is all that is known.
    pub fn input(self) -> Option<usize> {
        match self {
            Volume::Input(input) => Some(input),
            Volume::Number(_) => None,
        }
    }
}

impl fmt::Display for Volume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Volume::Number(number) => write!(f, "volume {number}"),
            Volume::Input(input) => write!(f, "input {input}"),
        }
    }
}

/// Where in a volume set something happened: the volume, the byte within
/// it and the chunk there where they mean something, and the volume's name
/// if its source has one ([`VolumeSource::name`](crate::VolumeSource::name)).
///
/// Displayed with the name first, as
/// `disc/register.002.kuv (volume 2) at byte 1,234 (chunk 9)`; without a
/// name as `volume 2 at byte 1,234 (chunk 9)`; a fact about a whole volume
/// as `disc/register.002.kuv (input 2)`. The name is escaped with
/// [`escape_name`](crate::escape_name): whoever wrote the disc chose it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The volume: its number, or its position among the inputs.
    pub volume: Volume,
    /// Byte offset within the volume; `None` for a fact about the whole
    /// volume (not a kuvert volume, a header that failed authentication).
    pub offset: Option<u64>,
    /// Global chunk index at that offset, from 0; `None` inside a header.
    pub chunk: Option<u64>,
    /// The source's name, such as the file the volume was opened from.
    pub name: Option<String>,
}

impl Location {
    /// The whole of volume `volume`, with no byte, chunk or name.
    pub fn new(volume: Volume) -> Self {
        Location {
            volume,
            offset: None,
            chunk: None,
            name: None,
        }
    }

    /// The whole of the volume numbered `number` (from an authenticated header).
    pub fn volume(number: u32) -> Self {
        Location::new(Volume::Number(number))
    }

    /// The whole of the volume given at position `input`, from 1.
    pub fn input(input: usize) -> Self {
        Location::new(Volume::Input(input))
    }

    /// The same volume, at byte `offset`.
    #[must_use]
    pub fn byte(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
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

    /// A copy at byte `offset`, for errors raised from one volume's header.
    pub(crate) fn at_byte(&self, offset: u64) -> Self {
        self.clone().byte(offset)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{} ({})", escape_name(name), self.volume)?,
            None => write!(f, "{}", self.volume)?,
        }
        if let Some(offset) = self.offset {
            write!(f, " at byte {}", grouped(offset))?;
        }
        if let Some(chunk) = self.chunk {
            write!(f, " (chunk {chunk})")?;
        }
        Ok(())
    }
}

/// `1234567` as `1,234,567`: byte offsets in volumes of gigabytes are read
/// by people comparing them with `ls -l` and hex dumps.
fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Which rule of the volume trailer (SPEC.md §13.3) a volume breaks.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TrailerError {
    /// The trailer version is not 1.
    #[error("trailer version is not 1")]
    Version,
    /// The trailer flags are not zero.
    #[error("trailer flags are not zero")]
    Flags,
    /// The volume number differs from the header's.
    #[error("volume number differs from the header's")]
    VolumeNumber,
    /// The set id differs from the header's.
    #[error("set id differs from the header's")]
    SetId,
    /// E (the end of the chunks) is not after the header and before the trailer.
    #[error("end of the chunks out of range")]
    ChunkEnd,
    /// The records length is out of its bounds.
    #[error("records length out of range")]
    RecordsLength,
    /// The bulk length is not what the volume's parity geometry gives
    /// (SPEC.md §16.11), or not zero without parity.
    #[error("bulk length does not match the parity geometry")]
    BulkLength,
    /// The end record's parity geometry body (SPEC.md §16.6) breaks a rule,
    /// or is not the geometry of the volume's data span at the header's p.
    #[error("parity geometry malformed or not the volume's")]
    ParityGeometry,
    /// The parity record 0x8010 is missing, repeated, in a set without
    /// PARITY, or differs from the end record's geometry (SPEC.md §16.11).
    #[error("parity record missing, repeated, unexpected or not the end record's")]
    ParityRecord,
    /// A byte that must be zero is not.
    #[error("nonzero padding byte")]
    Padding,
    /// The head at the start of the records region differs from the end record.
    #[error("head differs from the end record")]
    HeadMismatch,
    /// The records region does not match its digest D: damaged.
    #[error("records damaged: their digest does not match")]
    RecordsDigest,
    /// A record runs past the records region, or its reserved field is not zero.
    #[error("record runs past the records region, or its reserved field is nonzero")]
    RecordBounds,
    /// The first record is not the digest table, or a second one follows.
    #[error("digest table missing, not first, or repeated")]
    Table,
    /// The digest table's length or chunk count does not fit the volume.
    #[error("digest table length or chunk count does not fit the volume")]
    TableLength,
    /// A record type reserved for signed sets, in a set that is not signed.
    #[error("signature record in a set that is not signed")]
    Unsigned,
    /// A signed set's statement not right after the table or repeated, a
    /// signature before it or more than the signer block names, or either
    /// over 1,024 bytes.
    #[error("statement or signature record out of place, repeated or too long")]
    SignedRecords,
    /// A critical record of an unknown type.
    #[error("unknown critical record")]
    UnknownCritical,
}

/// Why a key or recipient string is not one. Never holds the string: it
/// may be a mistyped secret key.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not bech32: a character outside its alphabet, mixed case, no `1`
    /// separator, or a checksum that fails (a mistyped or cut key).
    #[error("not a valid {what}: not bech32, or its checksum fails")]
    Bech32 {
        /// What was asked for: `"identity"` or `"recipient"`.
        what: &'static str,
    },
    /// Valid bech32, but with the prefix of something else, such as a
    /// secret key given as a recipient, or of no key kind kuvert knows.
    #[error(
        "not {} {what}: its prefix is \"{}\"",
        article(what),
        escape_name(found)
    )]
    WrongPrefix {
        /// What was asked for: `"identity"` or `"recipient"`.
        what: &'static str,
        /// The human-readable part found, lowercased (a prefix such as
        /// `kuvert-secret-key-`, never key material).
        found: String,
    },
    /// Longer than any key kuvert knows (8,192 characters): refused
    /// before it is decoded.
    #[error("not a valid {what}: longer than 8,192 characters")]
    TooLong {
        /// What was asked for: `"identity"` or `"recipient"`.
        what: &'static str,
    },
    /// The bits that pad the data to whole bytes are not zero (BIP 173).
    #[error("not a valid {what}: nonzero padding bits")]
    Padding {
        /// What was asked for: `"identity"` or `"recipient"`.
        what: &'static str,
    },
    /// The key is not 32 bytes long.
    #[error("not a valid X25519 {what}: {found} bytes, not 32")]
    Length {
        /// What was asked for: `"identity"` or `"recipient"`.
        what: &'static str,
        /// Bytes the string decodes to.
        found: usize,
    },
    /// The recipient is not a canonical encoding of a curve point.
    #[error("X25519 recipient is not a canonical curve point (SPEC.md §4.2)")]
    NotCanonical,
    /// The recipient is a low-order point: sealing to it would give away
    /// the file key.
    #[error("X25519 recipient is a low-order point")]
    LowOrder,
    /// A hybrid post-quantum key (`age1pq1…`, `AGE-SECRET-KEY-PQ-1…`) does
    /// not decode to the length of its kind.
    #[error("not a valid hybrid {what}: {found} bytes, not {expected}")]
    HybridLength {
        /// What was asked for: `"identity"` or `"recipient"`.
        what: &'static str,
        /// Bytes the string decodes to.
        found: usize,
        /// Bytes of that kind: 1,216 for a recipient, 32 for an identity.
        expected: usize,
    },
    /// The ML-KEM-768 half of a hybrid recipient is not an encapsulation
    /// key: a coefficient is not below q (FIPS 203 §7.2).
    #[error("hybrid recipient's ML-KEM-768 key fails the FIPS 203 encapsulation key check")]
    NotEncapsulationKey,
    /// Not an Ed25519 signing key or signer key (SPEC.md §4.5): a wrong
    /// length, a point that is not canonical or of small order, an OpenSSH
    /// line or key file that breaks a rule.
    #[error("not a valid {what}: {reason}")]
    Signing {
        /// What was asked for: `"signing key"` or `"signer key"`.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A key of one kind where another is wanted: signing keys sign and
    /// never decrypt, identities decrypt and never sign, so each is refused
    /// where the other belongs, naming where it does belong.
    #[error("{given} is not {} {what}: pass it with {flag}", article(what))]
    KeptApart {
        /// What was asked for: `"identity"`, `"recipient"`, `"signing key"`.
        what: &'static str,
        /// What was given: `"a signing key"`, `"an identity"`, ….
        given: &'static str,
        /// The CLI flag (and library call) that takes it.
        flag: &'static str,
    },
    /// Not an age plugin key (`age1NAME1…`, `AGE-PLUGIN-NAME-1…`).
    #[error("not a valid plugin {what}: {reason}")]
    Plugin {
        /// What was asked for: `"identity"` or `"recipient"`.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Why some recipients cannot share a set ([`Error::IncompatibleRecipients`]).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MixError {
    /// A post-quantum recipient beside a classical one: whoever breaks the
    /// classical one (with a quantum computer, say) gets the file key, so
    /// the post-quantum recipient's protection is void. Allowed with
    /// [`Sealer::allow_classical`](crate::Sealer::allow_classical).
    #[error(
        "{} is post-quantum and {} is not: one classical recipient voids the protection of \
         all (allow classical recipients to seal anyway)",
        escape_name(post_quantum),
        escape_name(classical)
    )]
    Classical {
        /// Stanza type of the first post-quantum recipient.
        post_quantum: String,
        /// Stanza type of the first classical recipient.
        classical: String,
    },
    /// Two recipients carry different labels other than `postquantum`
    /// (a plugin's own labels, for one): their plugins asked not to share
    /// a set with such recipients.
    #[error(
        "{} and {} carry different labels",
        escape_name(first),
        escape_name(other)
    )]
    Labels {
        /// Stanza type of the first recipient.
        first: String,
        /// Stanza type of the first recipient whose labels differ.
        other: String,
    },
}

/// How an age plugin failed ([`Error::Plugin`]). Whatever the plugin
/// printed or reported is shown escaped: it is another program's text.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginFailure {
    /// No executable `age-plugin-NAME` in an absolute directory of PATH.
    #[error(
        "not found in PATH (relative PATH entries and the current directory are never searched)"
    )]
    NotFound,
    /// The plugin could not be started or talked to.
    #[error("cannot run it: {reason}")]
    Spawn {
        /// The operating system's error, as text.
        reason: String,
    },
    /// The plugin ended before its session did.
    #[error("exited{} before finishing{}", exit_status(*status), stderr_note(stderr_tail))]
    Exited {
        /// Its exit code, if it exited with one (not killed by a signal).
        status: Option<i32>,
        /// The last bytes it wrote to standard error (at most 4 KiB).
        stderr_tail: String,
    },
    /// The plugin said nothing for the timeout: it was killed.
    #[error("said nothing for {secs} s and was stopped")]
    TimedOut {
        /// The timeout in force, in whole seconds.
        secs: u64,
    },
    /// The plugin broke the protocol (age-plugin.md): it was stopped.
    #[error("broke the plugin protocol: {0}")]
    Protocol(String),
    /// The plugin reported errors (a missing token, a wrong PIN, …).
    #[error("{}", reported(.0))]
    Reported(Vec<String>),
}

/// ` with status 3` or ` after a signal`.
fn exit_status(status: Option<i32>) -> String {
    match status {
        Some(code) => format!(" with status {code}"),
        None => " after a signal".to_string(),
    }
}

/// `; it printed: …` (escaped), or nothing when it printed nothing.
fn stderr_note(tail: &str) -> String {
    let tail = tail.trim();
    if tail.is_empty() {
        String::new()
    } else {
        format!("; it printed: {}", escape_name(tail))
    }
}

/// The plugin's own messages, escaped, one after another.
/// Fingerprints, comma-separated, for [`Error::WrongSigner`].
fn fingerprints(signers: &[crate::sign::SignerKey]) -> String {
    let prints: Vec<String> = signers
        .iter()
        .map(crate::sign::SignerKey::fingerprint)
        .collect();
    prints.join(", ")
}

fn reported(messages: &[String]) -> String {
    let messages: Vec<_> = messages
        .iter()
        .map(|message| escape_name(message.trim()).into_owned())
        .collect();
    format!("reported: {}", messages.join("; "))
}

/// Which sealing or opening option is out of range, and by how much.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    /// Threads were set to 0 ([`Sealer::threads`](crate::Sealer::threads),
    /// [`Opener::threads`](crate::Opener::threads)).
    #[error("0 threads: at least 1 is needed")]
    NoThreads,
    /// A sealer with no recipient and no passphrase: nobody could open it.
    #[error("no recipient and no passphrase")]
    NoRecipients,
    /// More recipients than a header holds stanzas.
    #[error("{found} recipients; at most {max} fit a header")]
    TooManyRecipients {
        /// Recipients given, the passphrase counted as one.
        found: usize,
        /// Stanzas a header holds.
        max: usize,
    },
    /// The recipients' stanzas make a header above the format's maximum.
    #[error("the recipients need a {found}-byte header, above the maximum of {max}")]
    HeaderTooLarge {
        /// Header length the recipients need.
        found: u64,
        /// Longest header the format allows (1 MiB).
        max: u64,
    },
    /// The chunk size is not a power of two within the format's range.
    #[error("chunk size {found} is not a power of two from {min} to {max}")]
    ChunkSize {
        /// Chunk size asked for.
        found: usize,
        /// Smallest chunk size (4 KiB).
        min: usize,
        /// Largest chunk size (16 MiB).
        max: usize,
    },
    /// The volume size cannot hold the header and one chunk.
    #[error(
        "a volume of {volume_size} bytes cannot hold the {header_len}-byte header and one {chunk_size}-byte chunk"
    )]
    VolumeTooSmall {
        /// Volume size asked for.
        volume_size: u64,
        /// Padded header length.
        header_len: u64,
        /// Chunk size in force.
        chunk_size: usize,
    },
    /// Argon2id costs below RFC 9106's second option (64 MiB, 3 passes).
    #[error(
        "Argon2id costs of {memory_kib} KiB and {passes} passes are below RFC 9106's second option (64 MiB, 3 passes)"
    )]
    Argon2BelowMinimum {
        /// Memory asked for, in KiB.
        memory_kib: u32,
        /// Passes asked for.
        passes: u32,
    },
    /// Argon2id lanes outside 1..=16.
    #[error("{found} Argon2id lanes, outside 1..=16")]
    Argon2Lanes {
        /// Lanes asked for.
        found: u32,
    },
    /// The Argon2id implementation refuses the parameters.
    #[error("Argon2id refuses {memory_kib} KiB, {passes} passes, {lanes} lanes")]
    Argon2Params {
        /// Memory in KiB.
        memory_kib: u32,
        /// Passes.
        passes: u32,
        /// Lanes.
        lanes: u32,
    },
    /// The passphrase is longer than Argon2id takes.
    #[error("the passphrase is longer than Argon2id takes")]
    Argon2Input,
    /// The passphrase is empty.
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    /// [`Sealer::plan`](crate::Sealer::plan) with a plugin recipient: the
    /// size of its stanza is known only once the plugin wrapped a key.
    #[error(
        "no plan for plugin recipients: their stanzas' size is known only once the plugin wrapped the key"
    )]
    PluginRecipientsUnplanned,
    /// A label or note the manifest cannot hold (SPEC.md §15.1): empty,
    /// too long, or with a control character (a note may hold line feeds).
    #[error("the {field} cannot go into the manifest: {reason}")]
    ManifestText {
        /// `label` or `note`.
        field: &'static str,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// [`Padding::Volume`](crate::Padding::Volume) for a set that is not
    /// split: there is no volume size to fill.
    #[error("padding to the volume size needs a volume size")]
    PadVolumeUnsplit,
    /// More signers than a signer block holds
    /// ([`Sealer::sign_with`](crate::Sealer::sign_with)).
    #[error("{found} signers; a set names at most {max}")]
    TooManySigners {
        /// Signers given.
        found: usize,
        /// Most a signer block holds (4).
        max: usize,
    },
    /// The same signing key given twice.
    #[error("signer {fingerprint} given twice")]
    DuplicateSigner {
        /// The key's SHA-256 fingerprint, as `ssh-keygen -l` prints it.
        fingerprint: String,
    },
    /// Signing asked of a sealer without trailers
    /// ([`Sealer::digests`](crate::Sealer::digests)`(false)`): the
    /// signatures live in the trailer.
    #[error("a signed set needs its volume trailers: digests cannot be off")]
    SignedWithoutDigests,
    /// A parity percentage outside 3..=200 ([`Sealer::parity`](crate::Sealer::parity)).
    #[error("parity of {found} % is outside {min}..={max} %")]
    ParityPercent {
        /// Percentage asked for.
        found: u16,
        /// Least parity (3 %).
        min: u16,
        /// Most parity (200 %).
        max: u16,
    },
    /// Parity with the trailers off: the parity lives in the trailer.
    #[error("parity needs the volume trailers: digests cannot be off")]
    ParityWithoutDigests,
    /// Parity into a sink that cannot read back and write in place
    /// ([`VolumeSink::read_back`](crate::VolumeSink::read_back)): the
    /// parity is a second pass over each volume.
    #[error("parity needs a file or memory output, not a stream")]
    ParityNeedsPositionedSink,
    // Parity volumes across a set (SPEC.md §17).
    /// A number of parity volumes the code cannot give this set: at least
    /// 1, at most the data volumes, and data + parity volumes at most 255.
    #[error(
        "{parity_volumes} parity volumes for {data_volumes} data volumes: need 1 to {data_volumes} and at most 255 volumes in all"
    )]
    ParityVolumes {
        /// Parity volumes asked for.
        parity_volumes: usize,
        /// Data volumes in the set.
        data_volumes: usize,
    },
}

/// Everything that can go wrong sealing, opening or inspecting a volume set.
///
/// Variants say what a caller can act on and where it happened: every
/// variant about a place in a volume carries it as one [`Location`] (`at`),
/// which names the volume's source where it has a name, and says whether
/// the volume is known by its authenticated number or only by its position
/// among the volumes given ([`Volume`]). Variants about a chunk also carry
/// its index as a plain `chunk` field to match on. No variant ever carries
/// key material or plaintext. Names someone else chose (entry paths,
/// volume file names) are displayed through
/// [`escape_name`](crate::escape_name), so a message cannot move the
/// cursor or forge a line.
///
/// ```
/// # use kuvert::{Error, Location, MemorySink, OptionError, Sealer};
/// let err = Sealer::new().seal(MemorySink::new()).map(|_| ()).unwrap_err();
/// assert!(matches!(
///     err,
///     Error::InvalidOption { reason: OptionError::NoRecipients }
/// ));
/// let at = Location::volume(2).byte(1234).chunk(9).name(Some("disc/r.002.kuv"));
/// let err = Error::Unauthenticated { chunk: 9, at };
/// assert_eq!(
///     err.to_string(),
///     "disc/r.002.kuv (volume 2) at byte 1,234 (chunk 9): failed authentication"
/// );
/// ```
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
    #[error("{at}: not a kuvert volume")]
    NotKuvert {
        /// The volume, by its position among the inputs.
        at: Location,
    },

    /// The volume was written by a format version this library does not read.
    #[error("{at}: format version {version}, this library reads version 1")]
    UnsupportedVersion {
        /// The volume, by its position among the inputs.
        at: Location,
        /// Version number found in the header.
        version: u16,
    },

    /// The header breaks a rule of SPEC.md §3 before any key was tried.
    #[error("{at}: malformed header: {reason}")]
    MalformedHeader {
        /// The volume, by its position among the inputs, and the byte of
        /// the offending field.
        at: Location,
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
    #[error(
        "wrong key: no identity given matches a recipient of the set (recipient types: {})",
        stanza_types.join(", ")
    )]
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
    #[error("{at}: header failed authentication (it claims to be volume {volume})")]
    HeaderDamaged {
        /// The volume, by its position among the inputs: a header that
        /// does not authenticate says nothing trustworthy, its number
        /// included.
        at: Location,
        /// Volume number the header claims (not authenticated), from 1.
        volume: u32,
    },

    /// A chunk failed authentication; deliberately silent about why.
    #[error("{at}: failed authentication")]
    Unauthenticated {
        /// Global chunk index, from 0 (also in `at`).
        chunk: u64,
        /// The volume by number, the chunk's first byte, and the chunk.
        at: Location,
    },

    /// A volume ends before its last chunk: it was cut short.
    #[error("{at}: truncated, the volume ends there before its last chunk")]
    Truncated {
        /// The volume by number, at its end: the offset is the length of
        /// the volume as found.
        at: Location,
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
    #[error("{at}: volume {volume} again, already given as {first}")]
    DuplicateVolume {
        /// Volume number both headers give (authenticated), from 1.
        volume: u32,
        /// The later copy, by its position among the inputs.
        at: Location,
        /// The earlier copy, by its position among the inputs (boxed: two
        /// locations inline would double the size of every `Result`).
        first: Box<Location>,
    },

    /// A volume belongs to a different set than the others.
    #[error("{at}: belongs to another set (its header says volume {volume})")]
    ForeignVolume {
        /// The volume, by its position among the inputs.
        at: Location,
        /// Volume number that volume claims (not authenticated), from 1.
        volume: u32,
    },

    /// Bytes follow the last chunk of a volume.
    #[error("{at}: trailing bytes after the last chunk")]
    TrailingData {
        /// The volume by number, and where the trailing bytes start.
        at: Location,
    },

    /// A chunk authenticated but breaks a rule only the key holder could
    /// break, such as an empty final chunk after data (SPEC.md §6).
    #[error("{at}: malformed chunk: {reason}")]
    MalformedChunk {
        /// Global chunk index, from 0 (also in `at`).
        chunk: u64,
        /// The volume by number, the chunk's first byte, and the chunk.
        at: Location,
        /// Which rule was broken.
        reason: &'static str,
    },

    /// A volume trailer (SPEC.md §13) breaks a rule of its layout. Checked
    /// without any key; without a signature an intact trailer proves only
    /// that nothing was damaged since it was written.
    #[error("{at}: malformed volume trailer: {reason}")]
    MalformedTrailer {
        /// The volume (by its position among the inputs) and the byte of
        /// the offending field.
        at: Location,
        /// Which rule was broken.
        reason: TrailerError,
    },

    /// A keyless check was asked of a volume sealed without trailers
    /// (`--no-digests`): only a key holder can check it.
    #[error("{at}: sealed without digests: only a key can check it")]
    NoDigests {
        /// The volume, by its position among the inputs.
        at: Location,
    },

    /// A stripe of a volume's parity (SPEC.md §16.10) lost more sectors
    /// than its m parity sectors can restore: the volume cannot be repaired.
    #[error("{at}: stripe {stripe} lost {lost} sectors, more than its {m} parity sectors restore")]
    Unrecoverable {
        /// The volume (by its position among the inputs) and the byte of
        /// the stripe's first lost sector.
        at: Location,
        /// The stripe, 0 ≤ stripe < L.
        stripe: u64,
        /// Sectors of the stripe lost.
        lost: usize,
        /// Parity sectors per stripe.
        m: u16,
    },

    /// Every stripe of a volume is within its margin, yet after repair
    /// `sectors` sectors still fail the digests they fall under (parity
    /// groups, say, or sectors whose wrong bytes no check could place):
    /// the volume cannot be repaired.
    #[error("{at}: {sectors} sectors still fail their digests after repair")]
    RepairIncomplete {
        /// The volume (by its position among the inputs) and the first
        /// such sector's byte.
        at: Location,
        /// Sectors that still fail.
        sectors: u64,
    },

    // Parity volumes across a set (SPEC.md §17).
    /// A parity volume (`STEM.pNN.kuv`) breaks a rule of SPEC.md §17: no
    /// head copy is intact, or its fields or length do not fit together.
    #[error("{at}: not a usable parity volume: {reason}")]
    MalformedParityVolume {
        /// The parity volume, by its position among the parity volumes
        /// given, and the byte of the offending field.
        at: Location,
        /// Which rule was broken.
        reason: &'static str,
    },

    /// More volumes of a set (or, in some stripe, sectors) are missing than
    /// its usable parity volumes can rebuild (SPEC.md §17.5).
    #[error(
        "data volumes {} missing or unusable, more than {parity_volumes} usable parity volumes rebuild",
        list_numbers(missing)
    )]
    TooManyMissing {
        /// The data volumes that were missing or unusable, from 1.
        missing: Vec<u32>,
        /// Parity volumes that could be used (in the worst stripe).
        parity_volumes: u16,
    },

    /// A data volume rebuilt from parity volumes does not match the BLAKE3
    /// of the whole volume their heads record (SPEC.md §17.5): a volume
    /// used to rebuild it is damaged in a way no digest showed.
    #[error("volume {volume}, rebuilt from parity volumes, does not match their record of it")]
    RebuiltMismatch {
        /// The data volume rebuilt, from 1.
        volume: u32,
    },

    /// A volume to repair carries no parity (SPEC.md §16.11), or neither its
    /// end sector nor its header says how it was cut into layers.
    #[error("{at}: no parity to repair from")]
    NoParity {
        /// The volume, by its position among the inputs.
        at: Location,
    },

    /// Bytes of a volume do not match the digest its trailer records for
    /// them (SPEC.md §13.4): damage since the trailer was written.
    #[error("{at}: does not match its digest in the volume trailer")]
    DigestMismatch {
        /// Global chunk index, or `None` for the volume's header (with its
        /// padding).
        chunk: Option<u64>,
        /// The volume, and the first byte of the chunk (0 for the header).
        at: Location,
    },

    /// A signer was required ([`Opener::require_signer`](crate::Opener::require_signer))
    /// and the set is not signed: nothing proves who sealed it.
    #[error("{at}: not signed, but a signer is required")]
    Unsigned {
        /// The volume.
        at: Location,
    },

    /// The set is signed, but by none of the keys required.
    #[error("{at}: signed by {}, none of them trusted", fingerprints(signers))]
    WrongSigner {
        /// The volume.
        at: Location,
        /// The keys its signer block names, in order.
        signers: Vec<crate::sign::SignerKey>,
    },

    /// A volume's signature by `signer` is missing, malformed or does not
    /// verify, or its statement does not describe this volume (SPEC.md
    /// §14): the volume is not as the signer sealed it.
    #[error("{at}: bad signature by {}: the volume is not as its signer sealed it", signer.fingerprint())]
    BadSignature {
        /// The volume (and the byte of the offending record, where one is).
        at: Location,
        /// The key whose signature fails.
        signer: crate::sign::SignerKey,
    },

    /// A key or recipient string could not be parsed.
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// What is wrong with it.
        reason: KeyError,
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
        reason: KeyError,
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
        /// Which option, and what is wrong with it.
        reason: OptionError,
    },

    /// The recipients cannot share a set (age's label rule, SPEC.md §4.7):
    /// sealing to a post-quantum recipient and a classical one gives up the
    /// post-quantum protection of every recipient.
    #[error("recipients cannot share a set: {reason}")]
    IncompatibleRecipients {
        /// Which recipients, and why not.
        reason: MixError,
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

    /// The payload prefix, manifest or padding (SPEC.md §6.7, §15) breaks
    /// a rule: an unknown kind or flag, a bad manifest record, a padding
    /// length that does not fit, a nonzero padding byte, or a payload
    /// shorter than the prefix. It authenticated, so only a key holder can
    /// have written it.
    #[error("malformed payload at payload byte {offset}: {reason}")]
    MalformedPayload {
        /// Payload offset of the offending field or byte (the payload
        /// length if the payload ends inside the prefix or the padding
        /// length). The prefix and manifest are in chunk 0.
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

    /// An age plugin (`age-plugin-NAME`) failed to wrap or unwrap the file key.
    #[error("age-plugin-{plugin}: {failure}")]
    Plugin {
        /// The plugin's name (`yubikey` for `age-plugin-yubikey`).
        plugin: String,
        /// What went wrong.
        failure: PluginFailure,
    },
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
    /// [`Error::MalformedHeader`] at byte `offset` of the volume `volume`.
    pub(crate) fn malformed(volume: &Location, offset: u64, reason: &'static str) -> Self {
        Error::MalformedHeader {
            at: volume.at_byte(offset),
            reason,
        }
    }

    pub(crate) fn trailer(volume: &Location, offset: u64, reason: TrailerError) -> Self {
        Error::MalformedTrailer {
            at: volume.at_byte(offset),
            reason,
        }
    }

    pub(crate) fn key(reason: KeyError) -> Self {
        Error::InvalidKey { reason }
    }

    pub(crate) fn option(reason: OptionError) -> Self {
        Error::InvalidOption { reason }
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

/// `1, 2 and 5` for a list of volume numbers.
fn list_numbers(numbers: &[u32]) -> String {
    let texts: Vec<String> = numbers.iter().map(u32::to_string).collect();
    match texts.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_lead_with_the_name_and_say_what_is_known() {
        let name = Some("disc/register.002.kuv");
        assert_eq!(
            Location::volume(2)
                .byte(1234)
                .chunk(9)
                .name(name)
                .to_string(),
            "disc/register.002.kuv (volume 2) at byte 1,234 (chunk 9)"
        );
        assert_eq!(
            Location::volume(2).byte(1234).chunk(9).to_string(),
            "volume 2 at byte 1,234 (chunk 9)"
        );
        assert_eq!(
            Location::input(3).byte(10).name(name).to_string(),
            "disc/register.002.kuv (input 3) at byte 10"
        );
        assert_eq!(Location::input(3).to_string(), "input 3");
        assert_eq!(
            Location::volume(1).name(name).to_string(),
            "disc/register.002.kuv (volume 1)"
        );
        assert_eq!(
            Location::volume(7).byte(68_222_976).to_string(),
            "volume 7 at byte 68,222,976"
        );
        // A name chosen by whoever wrote the disc cannot move the cursor.
        assert_eq!(
            Location::input(1).name(Some("a\x1b[2Jb")).to_string(),
            "a\\x1b[2Jb (input 1)"
        );
    }

    #[test]
    fn volumes_say_whether_their_number_is_known() {
        assert_eq!(Volume::Number(4).number(), Some(4));
        assert_eq!(Volume::Number(4).input(), None);
        assert_eq!(Volume::Input(2).input(), Some(2));
        assert_eq!(Volume::Input(2).number(), None);
        assert_eq!(Location::volume(4).volume, Volume::Number(4));
        let at = Location::input(2).byte(5).chunk(1).name(Some("x"));
        assert_eq!(
            (at.offset, at.chunk, at.name.as_deref()),
            (Some(5), Some(1), Some("x"))
        );
    }

    #[test]
    fn offsets_are_grouped_in_threes() {
        for (value, text) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (123_456, "123,456"),
            (u64::MAX, "18,446,744,073,709,551,615"),
        ] {
            assert_eq!(grouped(value), text);
        }
    }

    #[test]
    fn located_errors_read_as_one_line() {
        let at = Location::volume(2).byte(10_240).name(Some("p.002.kuv"));
        assert_eq!(
            Error::Truncated { at: at.clone() }.to_string(),
            "p.002.kuv (volume 2) at byte 10,240: truncated, the volume ends there before its last chunk"
        );
        assert_eq!(
            Error::Unauthenticated {
                chunk: 9,
                at: at.clone().chunk(9)
            }
            .to_string(),
            "p.002.kuv (volume 2) at byte 10,240 (chunk 9): failed authentication"
        );
        assert_eq!(
            Error::TooManyMissing {
                missing: vec![1, 3, 4],
                parity_volumes: 2,
            }
            .to_string(),
            "data volumes 1, 3 and 4 missing or unusable, more than 2 usable parity volumes rebuild"
        );
        assert_eq!(
            Error::DuplicateVolume {
                volume: 2,
                at: Location::input(3).name(Some("b.kuv")),
                first: Box::new(Location::input(1).name(Some("a.kuv"))),
            }
            .to_string(),
            "b.kuv (input 3): volume 2 again, already given as a.kuv (input 1)"
        );
        assert_eq!(
            Error::InvalidOption {
                reason: OptionError::ChunkSize {
                    found: 5000,
                    min: 4096,
                    max: 1 << 24
                }
            }
            .to_string(),
            "invalid option: chunk size 5000 is not a power of two from 4096 to 16777216"
        );
    }

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
