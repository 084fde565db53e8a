//! Sealing one payload onto a volume set: [`Sealer`] (the options) →
//! [`SealWriter`] (`Write`). Chunks are gathered into batches, sealed in
//! place (on worker threads if asked, see [`crate::pipeline`]) and written
//! in order, each volume starting with its header (SPEC.md §6.6).

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::SystemTime;

use zeroize::Zeroizing;

use crate::chunk_digest::{self, DIGEST_LEN};
use crate::error::{Error, OptionError};
use crate::format::{
    self, DEFAULT_CHUNK_EXP, Geometry, MAX_CHUNK_EXP, MAX_HEADER_LEN, MIN_CHUNK_EXP,
    PAYLOAD_PREFIX_LEN, PayloadKind, SET_ID_LEN, SetHeader, TAG_LEN,
};
use crate::keys::{self, Argon2Params, FileKey, Limits, Passphrase, PluginSettings, Recipient};
use crate::manifest::{self, ManifestFields, PADDING_LEN_FIELD, Padding};
use crate::parity::{
    MAX_PERCENT, MIN_PERCENT, Parity, ParityGeometry, SectorChecks, StripeEncoder,
};
use crate::pipeline::{self, InFlight, Pending, SealBatch, SealPool};
use crate::rand::Randomness;
use crate::sign::statement::{LastVolume, Statement};
use crate::sign::{SignerKey, VolumeSigner, sshsig};
use crate::stream::ChunkCipher;
use crate::trailer::{self, TableBuilder};
use crate::volumes::VolumeSink;

/// Most stanzas a header may hold (the count is one byte).
const MAX_STANZAS: usize = 255;
/// A write is sealed straight into a lending sink only if it holds more
/// than this many batches: below it, starting helper threads for the call
/// costs more than the copy it saves.
const IN_PLACE_MIN_BATCHES: usize = 4;

/// Configures and starts sealing a payload.
///
/// ```
/// use std::io::Write;
/// use kuvert::{MemorySink, Sealer, X25519Identity};
///
/// let identity = X25519Identity::generate()?;
/// let mut writer = Sealer::new()
///     .recipient(identity.to_public())
///     .seal(MemorySink::new())?;
/// writer.write_all(b"register extract")?;
/// let volumes = writer.finish()?.into_volumes();
/// assert_eq!(volumes.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `Clone`: its secrets (passphrase, test seed) wipe themselves in every copy.
#[derive(Clone)]
pub struct Sealer {
    recipients: Vec<Recipient>,
    passphrase: Option<Passphrase>,
    argon2: Argon2Params,
    chunk_size: usize,
    volume_size: Option<u64>,
    threads: Option<usize>,
    allow_classical: bool,
    plugins: PluginSettings,
    digests: bool,
    seed: Option<Zeroizing<[u8; 32]>>,
    label: Option<String>,
    note: Option<String>,
    created: Created,
    padding: Padding,
    /// Who signs every volume, in signer-block order (SPEC.md §14).
    signers: Vec<Arc<dyn VolumeSigner>>,
    /// Parity percent of every volume (SPEC.md §16); `None` without.
    parity: Option<u16>,
}

/// Most signers a signer block names (SPEC.md §3.2).
const MAX_SIGNERS: usize = 4;

/// What the manifest's created record says (SPEC.md §15.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Created {
    /// The clock when sealing starts (the default).
    Now,
    /// This many seconds since the Unix epoch.
    At(i64),
    /// No created record.
    Omitted,
}

impl Created {
    fn seconds(self) -> Option<i64> {
        match self {
            Created::Now => Some(unix_seconds(SystemTime::now())),
            Created::At(secs) => Some(secs),
            Created::Omitted => None,
        }
    }
}

/// Seconds since the Unix epoch, negative before it, saturating.
fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("recipients", &self.recipients)
            .field("passphrase", &self.passphrase.is_some())
            .field("argon2", &self.argon2)
            .field("chunk_size", &self.chunk_size)
            .field("volume_size", &self.volume_size)
            .field("threads", &self.threads)
            .field("allow_classical", &self.allow_classical)
            .field("plugins", &self.plugins)
            .field("digests", &self.digests)
            .field("label", &self.label)
            .field("note", &self.note.as_ref().map(String::len))
            .field("created", &self.created)
            .field("padding", &self.padding)
            .field("signers", &self.signer_keys())
            .field("parity", &self.parity)
            .finish()
    }
}

impl Default for Sealer {
    fn default() -> Self {
        Sealer::new()
    }
}

impl Sealer {
    /// Default chunk size: 64 KiB of ciphertext, 32 CD sectors.
    pub const DEFAULT_CHUNK_SIZE: usize = 1 << DEFAULT_CHUNK_EXP;

    /// Checks a chunk size as [`chunk_size`](Self::chunk_size) will when
    /// sealing starts: a power of two from 4 KiB to 16 MiB (SPEC.md §3.2),
    /// so that a tool can refuse a bad option before it opens anything.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] with [`OptionError::ChunkSize`].
    pub fn check_chunk_size(bytes: usize) -> Result<(), Error> {
        chunk_exponent(bytes).map(|_| ())
    }

    /// A sealer with no recipients, 64 KiB chunks and one unsplit volume.
    pub fn new() -> Self {
        Sealer {
            recipients: Vec::new(),
            passphrase: None,
            argon2: Argon2Params::DEFAULT,
            chunk_size: Self::DEFAULT_CHUNK_SIZE,
            volume_size: None,
            threads: None,
            allow_classical: false,
            plugins: PluginSettings::default(),
            digests: true,
            seed: None,
            label: None,
            note: None,
            created: Created::Now,
            padding: Padding::default(),
            signers: Vec::new(),
            parity: None,
        }
    }

    /// Signs every volume with `signer` (SPEC.md §14): the header names its
    /// public key in the signer block, and each volume's trailer carries a
    /// statement of what the volume is and the signer's SSHSIG signature
    /// over it, which anyone holding the public key can check without a
    /// decryption key (and `ssh-keygen -Y verify` too). Repeatable, for
    /// up to 4 distinct signers, signing in the order given. Each
    /// signature is checked before it is written, so a faulty signer (an
    /// agent, hardware) never gets a bad one onto the media.
    ///
    /// Needs the trailers ([`digests`](Self::digests), on by default).
    ///
    /// ```
    /// use std::io::Write;
    /// use kuvert::{MemorySink, Opener, Sealer, SigningKey, X25519Identity};
    /// use kuvert::SignatureStatus;
    ///
    /// let identity = X25519Identity::generate()?;
    /// let institute = SigningKey::generate()?;
    /// let trusted = *institute.public();
    /// let mut writer = Sealer::new()
    ///     .recipient(identity.to_public())
    ///     .sign_with(institute)
    ///     .seal(MemorySink::new())?;
    /// writer.write_all(b"register extract")?;
    /// let volumes = writer.finish()?.into_volumes();
    /// let reader = Opener::new().identity(identity).require_signer(trusted).open(volumes)?;
    /// assert!(matches!(reader.signature(), SignatureStatus::Checked { .. }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sign_with(mut self, signer: impl VolumeSigner + 'static) -> Self {
        self.signers.push(Arc::new(signer));
        self
    }

    /// The signers' public keys, in signer-block order.
    fn signer_keys(&self) -> Vec<SignerKey> {
        self.signers.iter().map(|s| *s.public_key()).collect()
    }

    /// A label for the encrypted manifest (SPEC.md §15.1), to tell parcels
    /// apart once opened: 1 to 256 bytes of UTF-8 without control
    /// characters. Not visible without a key.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// A note for the encrypted manifest: 1 to 3,072 bytes of UTF-8 without
    /// control characters but line feeds. Not visible without a key.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// The creation time the manifest records (default: the clock when
    /// sealing starts; `None` writes none). Whole seconds.
    pub fn created(mut self, created: Option<SystemTime>) -> Self {
        self.created = created.map_or(Created::Omitted, |time| Created::At(unix_seconds(time)));
        self
    }

    /// How the payload is padded so that the volume lengths hide its size
    /// (default [`Padding::Padme`]; SPEC.md §15.2). The padding is
    /// encrypted, authenticated and dropped on open.
    pub fn pad(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// Whether every volume ends with a trailer of keyless chunk digests
    /// (SPEC.md §13): on by default. With it, anyone (a burning station, a
    /// courier) can check a volume for damage without the key, and
    /// `b3sum` can check its chunk bytes. Without a signature it proves
    /// only that nothing was damaged since sealing, not who sealed it:
    /// anyone can rewrite an unsigned trailer. It costs 32 bytes per chunk
    /// (0.05 % at 64 KiB chunks) and a BLAKE3 pass on the sealing threads.
    pub fn digests(mut self, digests: bool) -> Self {
        self.digests = digests;
        self
    }

    /// Reed–Solomon parity inside every volume (SPEC.md §16): with
    /// [`Parity::Percent`]`(p)`, m = round(255·p / (100 + p)) of 255 layers
    /// are parity, so one run of unreadable sectors up to about m/255 of
    /// the volume is repaired without any key. The volume size is that of
    /// the whole volume, parity included. Off by default; needs the
    /// trailers and a sink that reads back ([`VolumeSink::read_back`]):
    /// the parity is a second pass over each volume.
    pub fn parity(mut self, parity: Parity) -> Self {
        self.parity = match parity {
            Parity::None => None,
            Parity::Percent(percent) => Some(percent),
        };
        self
    }

    /// Adds a recipient. Giving the same one twice adds it once.
    pub fn recipient(mut self, recipient: impl Into<Recipient>) -> Self {
        let recipient = recipient.into();
        if !self.recipients.contains(&recipient) {
            self.recipients.push(recipient);
        }
        self
    }

    /// Adds several recipients: [`Recipient`]s, or keys of one kind.
    ///
    /// ```
    /// use kuvert::{Sealer, X25519Identity, X25519Recipient};
    ///
    /// let team: Vec<X25519Recipient> = (0..3)
    ///     .map(|_| X25519Identity::generate().map(|id| id.to_public()))
    ///     .collect::<Result<_, _>>()?;
    /// let sealer = Sealer::new().recipients(team);
    /// # let _ = sealer;
    /// # Ok::<(), kuvert::Error>(())
    /// ```
    pub fn recipients(self, recipients: impl IntoIterator<Item = impl Into<Recipient>>) -> Self {
        recipients.into_iter().fold(self, Sealer::recipient)
    }

    /// Allows post-quantum and classical recipients in one set (default:
    /// refused, as age refuses it; SPEC.md §4.7). A passphrase is allowed
    /// beside either without this.
    ///
    /// # Security
    ///
    /// Whoever breaks one classical recipient, with a quantum computer say,
    /// gets the file key: the set is then only as strong as its weakest
    /// recipient, and the post-quantum ones protect nothing.
    pub fn allow_classical(mut self, allow: bool) -> Self {
        self.allow_classical = allow;
        self
    }

    /// The user interface plugin recipients may ask for a PIN, a touch or
    /// a confirmation (default: none, so such requests fail).
    #[cfg(feature = "plugins")]
    pub fn plugin_ui(mut self, ui: std::sync::Arc<dyn crate::plugin::PluginUi>) -> Self {
        self.plugins.ui = Some(ui);
        self
    }

    /// Where plugins are found and how long one may stay silent.
    #[cfg(feature = "plugins")]
    pub fn plugin_options(mut self, options: crate::plugin::PluginOptions) -> Self {
        self.plugins.options = options;
        self
    }

    /// Also seals to a passphrase (Argon2id).
    ///
    /// # Security
    ///
    /// With public-key recipients beside it, anyone holding one of those
    /// keys can seal a set that opens with this passphrase: the passphrase
    /// then proves nothing about who sealed the set.
    pub fn passphrase(mut self, passphrase: Passphrase) -> Self {
        self.passphrase = Some(passphrase);
        self
    }

    /// Argon2id costs for the passphrase stanza (default
    /// [`Argon2Params::DEFAULT`]).
    pub fn argon2_params(mut self, params: Argon2Params) -> Self {
        self.argon2 = params;
        self
    }

    /// Ciphertext chunk size: a power of two from 4 KiB to 16 MiB.
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes;
        self
    }

    /// Largest size of one volume, header included; the set is split into
    /// as many volumes as it needs. Without it the set is one volume.
    pub fn volume_size(mut self, bytes: u64) -> Self {
        self.volume_size = Some(bytes);
        self
    }

    /// Threads that seal chunks, the writing thread included (default: all
    /// cores). With 1, everything happens in the writing thread and no
    /// thread is started; with n, n − 1 workers start only once a second
    /// batch (about 1 MiB) is needed, so a small payload never pays for
    /// them. The bytes written are the same for every thread count.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// Draws every random value from `seed`. Only for test vectors: anyone
    /// who knows the seed can open the result, and two sets sealed with one
    /// seed share their file key.
    ///
    /// Only with the test-only feature `insecure-test-hooks`, which
    /// no library user should enable (this crate's own tests turn it on
    /// through its dev-dependency on itself).
    #[cfg(any(test, feature = "insecure-test-hooks"))]
    #[cfg_attr(docsrs, doc(cfg(feature = "insecure-test-hooks")))]
    #[doc(hidden)]
    pub fn insecure_deterministic_seed(mut self, seed: [u8; 32]) -> Self {
        self.seed = Some(Zeroizing::new(seed));
        self
    }

    /// Starts sealing a byte stream into `sink`: the payload's kind is
    /// [`PayloadKind::Stream`], and opening gives back exactly the bytes
    /// written. Nothing is written until the first chunk.
    ///
    /// For files and directories use
    /// [`seal_archive`](Sealer::seal_archive).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] if there is no recipient, the chunk size is
    /// not a power of two from 4 KiB to 16 MiB, the passphrase is empty, or
    /// the volume size cannot hold the header and one chunk;
    /// [`Error::LimitExceeded`] if the Argon2id costs are above what a
    /// default [`Opener`](crate::Opener) accepts ([`Limits::default`]).
    pub fn seal<S: VolumeSink>(&self, sink: S) -> Result<SealWriter<S>, Error> {
        self.seal_kind(sink, PayloadKind::Stream)
    }

    /// Starts sealing a payload of `kind`: its prefix (SPEC.md §6.7) is
    /// written first, so what the caller writes is the content.
    pub(crate) fn seal_kind<S: VolumeSink>(
        &self,
        sink: S,
        kind: PayloadKind,
    ) -> Result<SealWriter<S>, Error> {
        let fields = self.manifest_fields();
        let records = fields.encode();
        let mut writer = self.seal_unprefixed(sink)?;
        // Bounded fields: the manifest fits chunk 0 and its u16 length.
        let records_len = records.len() as u16;
        writer.push_prefix(
            &format::encode_payload_prefix(kind, fields.flags(), records_len),
            &records,
        );
        writer.padding = fields.padding;
        Ok(writer)
    }

    /// Starts sealing with no payload prefix: the bytes written are the
    /// whole payload. Only for crafting payloads in tests
    /// ([`crate::testing`]).
    pub(crate) fn seal_unprefixed<S: VolumeSink>(
        &self,
        mut sink: S,
    ) -> Result<SealWriter<S>, Error> {
        let chunk_exp = self.check_options()?;
        if self.parity.is_some() && sink.read_back(0, &mut [])?.is_none() {
            return Err(Error::option(OptionError::ParityNeedsPositionedSink));
        }
        let mut rng = match &self.seed {
            Some(seed) => Randomness::Seeded {
                seed: seed.clone(),
                counter: 0,
            },
            None => Randomness::Os,
        };
        let file_key = FileKey::generate(&mut rng)?;
        let set_id = *rng.array::<SET_ID_LEN>()?;
        let passphrase = self.passphrase.as_ref().map(|p| (p, &self.argon2));
        let stanzas = keys::wrap_for_recipients(
            &file_key,
            &self.recipients,
            passphrase,
            &self.plugins,
            self.allow_classical,
            &mut rng,
        )?;

        // The header length does not depend on K, so the geometry can be
        // fixed before K is known.
        let mut set = SetHeader {
            trailers: self.digests,
            set_id,
            chunk_exp,
            chunks_per_volume: 0,
            stanzas,
            signers: self.signer_keys(),
            parity: self.parity,
        };
        let header_len = format::header_len(format::encode_set_header(&set).len());
        let geometry = self.geometry(chunk_exp, header_len)?;
        set.chunks_per_volume = geometry.chunks_per_volume;
        let threads = self.threads.unwrap_or_else(pipeline::default_threads);
        if threads == 0 {
            return Err(Error::option(OptionError::NoThreads));
        }
        let cipher = Arc::new(ChunkCipher::new(&file_key.payload_key(&set_id)));
        let per_batch = pipeline::batch_chunks(&geometry);
        Ok(SealWriter {
            cipher,
            set_bytes: format::encode_set_header(&set),
            set_id,
            file_key,
            geometry,
            // One chunk to start: small payloads never allocate a whole batch.
            batch: Zeroizing::new(vec![0u8; geometry.chunk_len()]),
            filled: 0,
            per_batch,
            counter: 0,
            max_in_flight: if threads > 1 {
                threads * pipeline::DEPTH_PER_THREAD
            } else {
                0
            },
            threads,
            pool: None,
            in_flight: InFlight::new(),
            free: Vec::new(),
            lends: true,
            failed: false,
            padding: Padding::None,
            digests: self.digests,
            open_volume: None,
            table: TableBuilder::default(),
            signers: self.signers.clone(),
            parity: self.parity,
            sink,
        })
    }

    /// The manifest these options write, the creation time read now.
    fn manifest_fields(&self) -> ManifestFields {
        ManifestFields {
            created: self.created.seconds(),
            label: self.label.clone(),
            note: self.note.clone(),
            padding: self.padding,
        }
    }

    /// Checks the options that need no key; returns the chunk exponent.
    fn check_options(&self) -> Result<u8, Error> {
        if self.recipients.is_empty() && self.passphrase.is_none() {
            return Err(Error::option(OptionError::NoRecipients));
        }
        let stanza_count = self.recipients.len() + usize::from(self.passphrase.is_some());
        if stanza_count > MAX_STANZAS {
            return Err(Error::option(OptionError::TooManyRecipients {
                found: stanza_count,
                max: MAX_STANZAS,
            }));
        }
        keys::check_recipient_mix(&self.recipients, &[], self.allow_classical)?;
        let texts = [
            ("label", &self.label, manifest::MAX_LABEL_LEN, false),
            ("note", &self.note, manifest::MAX_NOTE_LEN, true),
        ];
        for (field, text, max, line_feeds) in texts {
            if let Some(reason) = text
                .as_deref()
                .and_then(|text| manifest::text_problem(text, max, line_feeds))
            {
                return Err(Error::option(OptionError::ManifestText { field, reason }));
            }
        }
        if self.padding == Padding::Volume && self.volume_size.is_none() {
            return Err(Error::option(OptionError::PadVolumeUnsplit));
        }
        self.check_signers()?;
        if let Some(percent) = self.parity {
            if !(MIN_PERCENT..=MAX_PERCENT).contains(&percent) {
                return Err(Error::option(OptionError::ParityPercent {
                    found: percent,
                    min: MIN_PERCENT,
                    max: MAX_PERCENT,
                }));
            }
            if !self.digests {
                return Err(Error::option(OptionError::ParityWithoutDigests));
            }
        }
        let chunk_exp = chunk_exponent(self.chunk_size)?;
        if self.passphrase.is_some() {
            // Never write a set that a default opener refuses.
            self.argon2.check_limits(&Limits::default())?;
        }
        Ok(chunk_exp)
    }

    /// The signer rules: 1 to 4 distinct keys, and trailers to carry them.
    fn check_signers(&self) -> Result<(), Error> {
        if self.signers.is_empty() {
            return Ok(());
        }
        if self.signers.len() > MAX_SIGNERS {
            return Err(Error::option(OptionError::TooManySigners {
                found: self.signers.len(),
                max: MAX_SIGNERS,
            }));
        }
        let keys = self.signer_keys();
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].contains(key) {
                return Err(Error::option(OptionError::DuplicateSigner {
                    fingerprint: key.fingerprint(),
                }));
            }
        }
        if !self.digests {
            return Err(Error::option(OptionError::SignedWithoutDigests));
        }
        Ok(())
    }

    /// The geometry of a set whose header is `header_len` (L) bytes long:
    /// chunks per volume from the volume size.
    fn geometry(&self, chunk_exp: u8, header_len: usize) -> Result<Geometry, Error> {
        if header_len > MAX_HEADER_LEN as usize {
            return Err(Error::option(OptionError::HeaderTooLarge {
                found: header_len as u64,
                max: MAX_HEADER_LEN.into(),
            }));
        }
        let data_offset = format::padded_header_len(header_len as u64);
        let mut chunks_per_volume = 0;
        if let Some(volume_size) = self.volume_size {
            let chunk_len = self.chunk_size as u64;
            chunks_per_volume = volume_size.saturating_sub(data_offset) / chunk_len;
            if self.digests {
                // The largest K whose volume, trailer included (with room
                // for the records a signed set adds), fits: SPEC.md §6.5.
                // With parity, the parity layers are inside the size too
                // (SPEC.md §16.11). The length grows with k: bisect.
                let fits = |k: u64| {
                    trailer::volume_bound(data_offset, chunk_len, k, self.parity)
                        .is_some_and(|len| len <= volume_size)
                };
                let (mut low, mut high) = (0u64, volume_size / chunk_len + 1);
                while low + 1 < high {
                    let mid = low + (high - low) / 2;
                    match fits(mid) {
                        true => low = mid,
                        false => high = mid,
                    }
                }
                chunks_per_volume = low;
                chunks_per_volume = chunks_per_volume.min(trailer::MAX_TABLE_CHUNKS);
            }
            if chunks_per_volume == 0 {
                return Err(Error::option(OptionError::VolumeTooSmall {
                    volume_size,
                    header_len: data_offset,
                    chunk_size: self.chunk_size,
                }));
            }
        }
        Ok(Geometry::new(
            chunk_exp,
            chunks_per_volume,
            header_len as u64,
        ))
    }

    /// What sealing `len` bytes of content (a stream, or an archive's tar
    /// and index) with these options writes: how many volumes, how long each
    /// is, and the total, exactly, byte for byte, the manifest and the
    /// padding (SPEC.md §15) included. Nothing is sealed and no
    /// key is derived, so it is cheap even with a passphrase: for progress
    /// bars and for checking that a set fits its media before sealing it.
    ///
    /// ```
    /// use std::io::Write;
    /// use kuvert::{MemorySink, Sealer, X25519Identity};
    ///
    /// let sealer = Sealer::new()
    ///     .recipient(X25519Identity::generate()?.to_public())
    ///     .chunk_size(4096)
    ///     .volume_size(16384);
    /// let plan = sealer.plan(40_000)?;
    /// let mut writer = sealer.seal(MemorySink::new())?;
    /// writer.write_all(&[7; 40_000])?;
    /// let volumes = writer.finish()?.into_volumes();
    /// assert_eq!(plan.volume_count(), volumes.len() as u64);
    /// assert_eq!(plan.total_len(), volumes.iter().map(|v| v.len() as u64).sum::<u64>());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The option errors of [`seal`](Self::seal), and
    /// [`Error::CounterExhausted`] if `len` bytes need more chunks or
    /// volumes than a set can number.
    pub fn plan(&self, len: u64) -> Result<Plan, Error> {
        let chunk_exp = self.check_options()?;
        let set = SetHeader {
            trailers: self.digests,
            set_id: [0; SET_ID_LEN],
            chunk_exp,
            chunks_per_volume: 0,
            stanzas: keys::placeholder_stanzas(&self.recipients, self.passphrase.is_some())
                .ok_or(Error::option(OptionError::PluginRecipientsUnplanned))?,
            signers: self.signer_keys(),
            parity: self.parity,
        };
        let header_len = format::header_len(format::encode_set_header(&set).len());
        let geometry = self.geometry(chunk_exp, header_len)?;
        let fields = self.manifest_fields();
        Plan::new(
            &geometry,
            self.digests,
            len,
            fields.encode().len() as u64,
            fields.padding,
            self.signers.len(),
            self.parity,
        )
    }
}

/// Length of volume `volume`'s statement (SPEC.md §14.1), whose numbers are
/// all known before sealing: only the digests are not, and they have a
/// fixed length.
fn statement_len(geometry: &Geometry, volume: u32, chunks: u64, end: u64, last: bool) -> u64 {
    let first_chunk = geometry.first_chunk(volume);
    let statement = Statement {
        set_id: [0; SET_ID_LEN],
        volume,
        first_chunk,
        chunks,
        chunk_len: geometry.chunk_len() as u64,
        header_len: geometry.data_offset,
        header_digest: [0; DIGEST_LEN],
        end,
        table_digest: [0; DIGEST_LEN],
        last: last.then_some(LastVolume {
            volumes: volume,
            final_chunk: first_chunk + chunks - 1,
        }),
        region_digest: [0; DIGEST_LEN],
    };
    statement.encode().len() as u64
}

/// Bytes the statement and `signers` signature records add to a volume's
/// records region (SPEC.md §13.2).
fn signed_records_len(statement_len: u64, signers: usize) -> u64 {
    let signatures = std::iter::repeat_n(sshsig::ARMORED_LEN as u64, signers);
    trailer::extra_records_len(std::iter::once(statement_len).chain(signatures))
}

/// The sizes a set will have, from [`Sealer::plan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    header_len: u64,
    chunks: u64,
    volumes: u64,
    full_volume_len: u64,
    last_volume_len: u64,
    total_len: u64,
    /// How a signed set's trailers grow; `None` if it is not signed.
    signed: Option<SignedPlan>,
}

/// What a signed set's volume lengths depend on beyond an unsigned one's:
/// each statement's length, which varies with the digits of v and g0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SignedPlan {
    geometry: Geometry,
    signers: usize,
    parity: Option<u16>,
    /// Chunks of a full volume and where they end.
    per: u64,
    full_chunk_end: u64,
    /// Chunks of the last volume and where they end.
    in_last: u64,
    last_chunk_end: u64,
}

impl SignedPlan {
    /// The trailer of volume `volume`, signed records included, exactly.
    fn trailer_len(&self, volume: u32, last: bool) -> u64 {
        let (chunks, end) = match last {
            true => (self.in_last, self.last_chunk_end),
            false => (self.per, self.full_chunk_end),
        };
        let statement = statement_len(&self.geometry, volume, chunks, end, last);
        let extra = signed_records_len(statement, self.signers);
        // K was chosen so that a full volume fits, and a last one is shorter.
        trailer::volume_len(end, chunks, extra, self.parity).map_or(u64::MAX, |len| len - end)
    }

    /// The total length of full volumes 1 ..= `count`, each `base` bytes
    /// before its trailer: summed over runs of volumes whose v and g0 have
    /// as many digits, so whose statements are as long (a few dozen runs
    /// at most, however many volumes).
    fn full_volumes_len(&self, count: u64, base: u64) -> Option<u64> {
        let next_power = |n: u64| {
            10u64
                .checked_pow(n.checked_ilog10().map_or(1, |d| d + 1))
                .unwrap_or(u64::MAX)
        };
        let mut total = 0u64;
        let mut start = 1u64;
        while start <= count {
            // The first volume after `start` with more digits in v or g0.
            let more_v = next_power(start);
            let g0 = (start - 1) * self.per;
            let more_g0 = next_power(g0).div_ceil(self.per.max(1)).saturating_add(1);
            let end = more_v.min(more_g0).min(count + 1).max(start + 1);
            let len = base.checked_add(self.trailer_len(start as u32, false))?;
            total = total.checked_add(len.checked_mul(end - start)?)?;
            start = end;
        }
        Some(total)
    }
}

impl Plan {
    /// The sizes for `content_len` bytes of content after a manifest of
    /// `records_len` bytes, padded by `padding`, with trailers if `digests`.
    fn new(
        geometry: &Geometry,
        digests: bool,
        content_len: u64,
        records_len: u64,
        padding: Padding,
        signers: usize,
        parity: Option<u16>,
    ) -> Result<Plan, Error> {
        let plain = geometry.plain_len() as u64;
        let payload = payload_len(geometry, content_len, records_len, padding)?;
        let chunk = geometry.chunk_len() as u64;
        let header = geometry.data_offset;
        // The final chunk may be short, never empty unless the payload is.
        let chunks = payload.div_ceil(plain).max(1);
        let last_chunk = payload - (chunks - 1) * plain + TAG_LEN as u64;
        let per = match geometry.chunks_per_volume {
            0 => chunks,
            per => per,
        };
        let volumes = chunks.div_ceil(per);
        u32::try_from(volumes).map_err(|_| Error::CounterExhausted)?;
        let in_last = chunks - (volumes - 1) * per;
        let too_long = || Error::CounterExhausted;
        let trailer = |chunk_end: u64, chunks: u64| match digests {
            true => trailer::volume_len(chunk_end, chunks, 0, parity).map(|len| len - chunk_end),
            false => Some(0),
        };
        let full_chunk_end = per
            .checked_mul(chunk)
            .and_then(|data| data.checked_add(header))
            .ok_or_else(too_long)?;
        let full_volume_len = full_chunk_end
            .checked_add(trailer(full_chunk_end, per).ok_or_else(too_long)?)
            .ok_or_else(too_long)?;
        // Below the full length, which fits.
        let last_chunk_end = header + (in_last - 1) * chunk + last_chunk;
        let last_volume_len = last_chunk_end
            .checked_add(trailer(last_chunk_end, in_last).ok_or_else(too_long)?)
            .ok_or_else(too_long)?;
        if signers > 0 {
            let signed = SignedPlan {
                geometry: *geometry,
                signers,
                parity,
                per,
                full_chunk_end,
                in_last,
                last_chunk_end,
            };
            // u32 volumes: checked above.
            let last_volume_len = last_chunk_end + signed.trailer_len(volumes as u32, true);
            let total_len = signed
                .full_volumes_len(volumes - 1, full_chunk_end)
                .and_then(|full| full.checked_add(last_volume_len))
                .ok_or_else(too_long)?;
            return Ok(Plan {
                header_len: header,
                chunks,
                volumes,
                full_volume_len,
                last_volume_len,
                total_len,
                signed: Some(signed),
            });
        }
        let total_len = (volumes - 1)
            .checked_mul(full_volume_len)
            .and_then(|full| full.checked_add(last_volume_len))
            .ok_or_else(too_long)?;
        Ok(Plan {
            header_len: header,
            chunks,
            volumes,
            full_volume_len,
            last_volume_len,
            total_len,
            signed: None,
        })
    }

    /// Number of volumes.
    pub fn volume_count(&self) -> u64 {
        self.volumes
    }

    /// Length of volume `volume` (from 1), or `None` past the last one.
    /// Every volume but the last is full.
    pub fn volume_len(&self, volume: u32) -> Option<u64> {
        match (u64::from(volume), &self.signed) {
            (0, _) => None,
            (v, None) if v < self.volumes => Some(self.full_volume_len),
            (v, Some(signed)) if v < self.volumes => {
                Some(signed.full_chunk_end + signed.trailer_len(volume, false))
            }
            (v, _) if v == self.volumes => Some(self.last_volume_len),
            _ => None,
        }
    }

    /// Bytes of each volume before its first chunk (the padded header, H).
    pub fn header_len(&self) -> u64 {
        self.header_len
    }

    /// Number of chunks in the set.
    pub fn chunk_count(&self) -> u64 {
        self.chunks
    }

    /// Total sealed bytes, all volumes together.
    pub fn total_len(&self) -> u64 {
        self.total_len
    }
}

/// The payload length (SPEC.md §15.2): prefix, manifest, content and, if
/// padded, the padding and its 8-byte length.
fn payload_len(
    geometry: &Geometry,
    content_len: u64,
    records_len: u64,
    padding: Padding,
) -> Result<u64, Error> {
    let field = match padding {
        Padding::None => 0,
        _ => PADDING_LEN_FIELD as u64,
    };
    let unpadded = content_len
        .checked_add(PAYLOAD_PREFIX_LEN as u64 + records_len + field)
        .ok_or(Error::CounterExhausted)?;
    let plain = geometry.plain_len() as u64;
    manifest::padded_len(padding, unpadded, plain, geometry.chunks_per_volume).ok_or(
        if padding == Padding::Volume && geometry.chunks_per_volume == 0 {
            Error::option(OptionError::PadVolumeUnsplit)
        } else {
            Error::CounterExhausted
        },
    )
}

/// One `read`, retried when interrupted.
fn read_some<R: Read + ?Sized>(input: &mut R, buf: &mut [u8]) -> Result<usize, Error> {
    loop {
        match input.read(buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            result => return result.map_err(Error::Io),
        }
    }
}

/// The exponent of a chunk size: a power of two from 4 KiB to 16 MiB.
fn chunk_exponent(chunk_size: usize) -> Result<u8, Error> {
    let exp = chunk_size.trailing_zeros();
    let valid = chunk_size.is_power_of_two()
        && (u32::from(MIN_CHUNK_EXP)..=u32::from(MAX_CHUNK_EXP)).contains(&exp);
    if !valid {
        return Err(Error::option(OptionError::ChunkSize {
            found: chunk_size,
            min: 1 << MIN_CHUNK_EXP,
            max: 1 << MAX_CHUNK_EXP,
        }));
    }
    Ok(exp as u8)
}

/// Seals a payload as it is written; see [`Sealer`].
///
/// Call [`finish`](Self::finish): only it writes the end-of-set chunk, so a
/// writer dropped early never leaves a set that opens as complete.
///
/// Plaintext is gathered into batches of about 1 MiB of chunks, sealed in
/// place (by worker threads if the sealer has more than one, started once a
/// second batch is needed) and written to the sink in order. Memory stays at
/// threads × 2 batches. A single large write (more than 4 batches) into a
/// sink that lends its memory ([`VolumeSink::append_in_place`], as
/// [`MemorySink`](crate::MemorySink) does) skips the batch buffers: each
/// chunk is copied once, to its place in the sink, and sealed there, on
/// every thread.
pub struct SealWriter<S: VolumeSink> {
    sink: S,
    cipher: Arc<ChunkCipher>,
    file_key: FileKey,
    set_id: [u8; SET_ID_LEN],
    set_bytes: Vec<u8>,
    geometry: Geometry,
    /// Plaintext being gathered, chunk j at `j·C`, room for each tag. Wiped
    /// on drop; sealing in place leaves no plaintext in handed-out buffers.
    batch: Zeroizing<Vec<u8>>,
    /// Plaintext bytes in `batch`.
    filled: usize,
    per_batch: usize,
    /// Global index of the batch's first chunk.
    counter: u64,
    /// Threads to seal on; more than one starts a pool, but only once a
    /// second batch is needed, so a payload of one batch starts none.
    threads: usize,
    pool: Option<SealPool>,
    in_flight: InFlight,
    max_in_flight: usize,
    /// Sealed buffers to reuse: no allocation in the steady state.
    free: Vec<Zeroizing<Vec<u8>>>,
    /// Whether the sink lends room to seal into; false once it said no.
    lends: bool,
    failed: bool,
    /// The padding `finish` appends (SPEC.md §15.2).
    padding: Padding,
    /// Whether volumes end with trailers (SPEC.md §13).
    digests: bool,
    /// The volume being written, whose trailer is still to come.
    open_volume: Option<u32>,
    /// That volume's digest table so far.
    table: TableBuilder,
    /// Who signs each volume's statement, in signer-block order.
    signers: Vec<Arc<dyn VolumeSigner>>,
    /// Parity percent of every volume; `None` without parity.
    parity: Option<u16>,
}

impl<S: VolumeSink> fmt::Debug for SealWriter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealWriter")
            .field("geometry", &self.geometry)
            .field("counter", &self.counter)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl<S: VolumeSink> SealWriter<S> {
    /// Puts the payload prefix and the manifest into the first chunk of a
    /// fresh writer.
    fn push_prefix(&mut self, prefix: &[u8; PAYLOAD_PREFIX_LEN], records: &[u8]) {
        debug_assert_eq!(self.filled, 0, "the prefix opens the payload");
        // The first batch buffer is at least one chunk (≥ 4 KiB) long, and
        // the manifest fits chunk 0 of the smallest chunks.
        self.batch[..PAYLOAD_PREFIX_LEN].copy_from_slice(prefix);
        let end = PAYLOAD_PREFIX_LEN + records.len();
        self.batch[PAYLOAD_PREFIX_LEN..end].copy_from_slice(records);
        self.filled = end;
    }

    /// Payload bytes gathered so far, sealed or not.
    fn payload_so_far(&self) -> u64 {
        self.counter * self.geometry.plain_len() as u64 + self.filled as u64
    }

    /// Appends the padding and its length (SPEC.md §15.2), once the content
    /// has ended: zeros, then p as a u64, sealed like any payload bytes.
    fn push_padding(&mut self) -> Result<(), Error> {
        if self.padding == Padding::None {
            return Ok(());
        }
        let unpadded = self
            .payload_so_far()
            .checked_add(PADDING_LEN_FIELD as u64)
            .ok_or(Error::CounterExhausted)?;
        let plain = self.geometry.plain_len() as u64;
        let per_volume = self.geometry.chunks_per_volume;
        let padded = manifest::padded_len(self.padding, unpadded, plain, per_volume)
            .ok_or(Error::CounterExhausted)?;
        let padding = padded - unpadded;
        let mut zeros = padding;
        while zeros > 0 {
            let n = self.gather(|room| {
                let n = room.len().min(usize::try_from(zeros).unwrap_or(usize::MAX));
                room[..n].fill(0);
                Ok(n)
            })?;
            zeros -= n as u64;
        }
        let mut field = &padding.to_be_bytes()[..];
        while !field.is_empty() {
            let n = self.gather(|room| {
                let n = room.len().min(field.len());
                room[..n].copy_from_slice(&field[..n]);
                Ok(n)
            })?;
            field = &field[n..];
        }
        Ok(())
    }

    /// Chunks in every volume but the last; 0 if the set is not split.
    pub fn chunks_per_volume(&self) -> u64 {
        self.geometry.chunks_per_volume
    }

    /// Bytes of each volume before its first chunk (the padded header).
    pub fn header_len(&self) -> u64 {
        self.geometry.data_offset
    }

    /// Grows the batch buffer to at least `needed` bytes (doubling, up to a
    /// whole batch). The old buffer is wiped as it is dropped, so no copy of
    /// the plaintext is left behind the way a plain reallocation would.
    fn grow_batch(&mut self, needed: usize) {
        let full = self.per_batch * self.geometry.chunk_len();
        let len = (self.batch.len() * 2).max(needed).min(full);
        let mut grown = Zeroizing::new(vec![0u8; len]);
        let used = self.batch.len();
        grown[..used].copy_from_slice(&self.batch);
        self.batch = grown;
    }

    /// Refuses more data once a write to the sink has failed.
    fn check_usable(&self) -> Result<(), Error> {
        if self.failed {
            return Err(Error::Io(io::Error::other(
                "an earlier write failed; the set cannot be finished",
            )));
        }
        Ok(())
    }

    /// Gathers plaintext: `fill` puts up to a slice's length of it into the
    /// room left in the current chunk and says how much; returns that. The
    /// one place where `write` and `copy_from` take in data.
    ///
    /// A full batch is handed out only once more data has arrived: the
    /// final chunk is left for `finish`, which sets the end-of-set flag. So
    /// when the batch is full, `fill` writes into the next batch's first
    /// chunk instead, and the full one goes out only if that gave bytes.
    ///
    /// # Errors
    ///
    /// An error of `fill` (nothing is lost: sealing can go on), or of
    /// sealing and writing the full batch (the set can then no longer be
    /// finished).
    fn gather(
        &mut self,
        fill: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
    ) -> Result<usize, Error> {
        let plain_len = self.geometry.plain_len();
        let chunk_len = self.geometry.chunk_len();
        if self.filled == self.per_batch * plain_len {
            let mut next = self.fresh_buffer();
            let n = match fill(&mut next[..plain_len]) {
                Ok(n) if n > 0 => n,
                nothing_or_error => {
                    self.free.push(next);
                    return nothing_or_error;
                }
            };
            if let Err(err) = self.dispatch(Some((next, n))) {
                self.failed = true;
                return Err(err);
            }
            return Ok(n);
        }
        let (chunk, within) = (self.filled / plain_len, self.filled % plain_len);
        if (chunk + 1) * chunk_len > self.batch.len() {
            self.grow_batch((chunk + 1) * chunk_len);
        }
        let at = chunk * chunk_len + within;
        let n = fill(&mut self.batch[at..at + plain_len - within])?;
        self.filled += n;
        Ok(n)
    }

    /// Hands the gathered batch out for sealing and writes what is due.
    /// `next` is the next batch (a whole buffer and the plaintext bytes
    /// already in its first chunk); `None` marks the batch's last chunk as
    /// the end of the set, after which nothing more is gathered.
    fn dispatch(&mut self, next: Option<(Zeroizing<Vec<u8>>, usize)>) -> Result<(), Error> {
        let end_of_set = next.is_none();
        let plain_len = self.geometry.plain_len();
        let chunks = self.filled.div_ceil(plain_len).max(1);
        let last_len = self.filled - (chunks - 1) * plain_len;
        // Advance first, so a failed advance never leaves a used nonce behind.
        let first = self.counter;
        let after = first
            .checked_add(chunks as u64)
            .ok_or(Error::CounterExhausted)?;
        if let Some(volume_index) = (after - 1).checked_div(self.geometry.chunks_per_volume) {
            u32::try_from(volume_index + 1).map_err(|_| Error::CounterExhausted)?;
        }
        let (fresh, filled) = next.unwrap_or_else(|| (Zeroizing::new(Vec::new()), 0));
        let buf = std::mem::replace(&mut self.batch, fresh);
        self.counter = after;
        self.filled = filled;
        let mut batch = SealBatch {
            buf,
            first,
            chunks,
            last_len,
            end_of_set,
            digests: self.digests,
            cvs: Vec::new(),
        };
        // A second batch is coming: only now are threads worth starting.
        // A payload that fits one batch is sealed right here by `finish`.
        // This thread is one of the `threads`: it seals whenever every
        // worker already has a batch waiting (see `crate::pipeline`).
        if self.pool.is_none() && self.threads > 1 && !end_of_set {
            self.pool = Some(SealPool::new(
                self.threads - 1,
                Arc::clone(&self.cipher),
                self.geometry,
            ));
        }
        let pending = match &self.pool {
            Some(pool) if pool.has_room() => pool.submit(batch),
            _ => {
                batch.seal(&self.cipher, &self.geometry);
                Pending::Ready(batch)
            }
        };
        self.in_flight.push_back(pending);
        while self.in_flight.len() > self.max_in_flight {
            self.write_next()?;
        }
        Ok(())
    }

    /// A whole batch buffer: a sealed one to reuse, or a new one.
    fn fresh_buffer(&mut self) -> Zeroizing<Vec<u8>> {
        self.free.pop().unwrap_or_else(|| {
            Zeroizing::new(vec![0u8; self.per_batch * self.geometry.chunk_len()])
        })
    }

    /// Seals everything `input` gives until its end and returns how many
    /// bytes that was; then call [`finish`](Self::finish). The same as
    /// [`io::copy`] into this writer, but `input` reads straight into the
    /// chunk buffers, so each byte is copied once less: the fast path for
    /// whole streams, as [`OpenReader::copy_to`](crate::OpenReader::copy_to)
    /// is for opening.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `input` (nothing read is lost: sealing can go on)
    /// or from the sink (the set can then no longer be finished).
    pub fn copy_from<R: Read + ?Sized>(&mut self, input: &mut R) -> Result<u64, Error> {
        self.check_usable()?;
        let mut total = 0u64;
        loop {
            match self.gather(|room| read_some(input, room))? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    }

    /// Seals the whole chunks of a large `buf` straight into room the sink
    /// lends (see [`VolumeSink::append_in_place`]), on every thread, and
    /// gathers the rest as usual; returns the bytes taken, `None` if this
    /// write is too small or the sink does not lend.
    ///
    /// Only from a full batch: everything gathered goes out first, in
    /// order, and at least one byte is gathered after the lent run, so the
    /// set's last chunk is still sealed by `finish`.
    fn write_in_place(&mut self, buf: &[u8]) -> Result<Option<usize>, Error> {
        let plain_len = self.geometry.plain_len();
        let batch_plain = self.per_batch * plain_len;
        if !self.lends
            || self.filled != batch_plain
            || buf.len() <= IN_PLACE_MIN_BATCHES * batch_plain
        {
            return Ok(None);
        }
        let next = self.fresh_buffer();
        self.dispatch(Some((next, 0)))?;
        while !self.in_flight.is_empty() {
            self.write_next()?;
        }
        // Asked before any volume header is written for the lent run, so a
        // sink that says no never gets a header twice.
        self.lends = self.sink.append_in_place(0)?.is_some();
        // Whole chunks, leaving 1 ..= P bytes to gather.
        let mut rest = buf;
        while self.lends && rest.len() > plain_len {
            let counter = self.counter;
            let per_volume = self.geometry.chunks_per_volume;
            let mut chunks = ((rest.len() - 1) / plain_len) as u64;
            if per_volume > 0 {
                if counter.is_multiple_of(per_volume) {
                    let volume = u32::try_from(counter / per_volume + 1)
                        .map_err(|_| Error::CounterExhausted)?;
                    self.write_header(volume)?;
                }
                chunks = chunks.min(per_volume - counter % per_volume);
            }
            let after = counter.checked_add(chunks).ok_or(Error::CounterExhausted)?;
            let chunk_len = self.geometry.chunk_len();
            let len = chunks as usize * chunk_len;
            let room = match self.sink.append_in_place(len)? {
                Some(room) if room.len() == len => room,
                _ => {
                    return Err(Error::Io(io::Error::other(
                        "the sink lent no room, or room of the wrong length",
                    )));
                }
            };
            let (plain, left) = rest.split_at(chunks as usize * plain_len);
            let mut cvs = vec![[0u8; DIGEST_LEN]; if self.digests { chunks as usize } else { 0 }];
            pipeline::seal_chunks_into(
                &self.cipher,
                &self.geometry,
                counter,
                plain,
                room,
                &mut cvs,
                self.threads,
                self.per_batch,
            );
            // As `note_first_chunk`, with `room` still borrowed from the sink.
            if !self.signers.is_empty() && self.table.chunk_bytes == 0 {
                let chunk = &room[..chunk_len.min(room.len())];
                self.table.first_chunk_root = Some(*blake3::hash(chunk).as_bytes());
            }
            self.table.chunk_bytes += len as u64;
            self.table.entries.extend_from_slice(&cvs);
            self.counter = after;
            rest = left;
        }
        let mut taken = buf.len() - rest.len();
        // The tail goes into the fresh batch, so it is never empty here.
        while !rest.is_empty() {
            let n = self.gather(|room| {
                let n = room.len().min(rest.len());
                room[..n].copy_from_slice(&rest[..n]);
                Ok(n)
            })?;
            rest = &rest[n..];
            taken += n;
        }
        Ok(Some(taken))
    }

    /// Waits for the oldest batch and writes it, with a volume header
    /// before every chunk that starts a volume.
    fn write_next(&mut self) -> Result<(), Error> {
        let Some(pending) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let batch = pending.wait()?;
        let chunk_len = self.geometry.chunk_len();
        let sealed = &batch.buf[..batch.sealed_len(&self.geometry)];
        // One digest per chunk, or none at all without trailers.
        let cvs_of = |chunks: std::ops::Range<usize>| match batch.cvs.is_empty() {
            true => &[][..],
            false => &batch.cvs[chunks],
        };
        let (mut run_start, mut cv_start) = (0, 0);
        for j in 0..batch.chunks {
            let counter = batch.first + j as u64;
            let volume = match self.geometry.chunks_per_volume {
                0 if counter == 0 => 1,
                0 => continue,
                per if counter.is_multiple_of(per) => (counter / per + 1) as u32,
                _ => continue,
            };
            let at = j * chunk_len;
            if at > run_start {
                self.append_chunks(&sealed[run_start..at], cvs_of(cv_start..j))?;
            }
            self.write_header(volume)?;
            (run_start, cv_start) = (at, j);
        }
        self.append_chunks(&sealed[run_start..], cvs_of(cv_start..batch.chunks))?;
        self.free.push(batch.buf);
        Ok(())
    }

    /// Writes sealed chunks of the open volume and records their digests.
    fn append_chunks(&mut self, sealed: &[u8], cvs: &[[u8; DIGEST_LEN]]) -> Result<(), Error> {
        self.note_first_chunk(sealed);
        self.sink.append(sealed)?;
        self.table.chunk_bytes += sealed.len() as u64;
        self.table.entries.extend_from_slice(cvs);
        Ok(())
    }

    /// In a signed set, keeps BLAKE3 of the open volume's chunk 0 when
    /// `sealed` (whole chunks, the set's last one perhaps short) starts it:
    /// R_v of a volume of one chunk (SPEC.md §13.4).
    fn note_first_chunk(&mut self, sealed: &[u8]) {
        if self.signers.is_empty() || self.table.chunk_bytes != 0 || sealed.is_empty() {
            return;
        }
        let chunk = &sealed[..sealed.len().min(self.geometry.chunk_len())];
        self.table.first_chunk_root = Some(*blake3::hash(chunk).as_bytes());
    }

    /// Ends the open volume with its trailer (SPEC.md §13), if it has one;
    /// in a signed set with its statement and signatures (§14), the
    /// `# last volume` line only if `last`.
    fn close_volume(&mut self, last: bool) -> Result<(), Error> {
        let Some(volume) = self.open_volume.take() else {
            return Ok(());
        };
        if !self.digests {
            return Ok(());
        }
        let table = std::mem::take(&mut self.table);
        if table.entries.len() as u64 > trailer::MAX_TABLE_CHUNKS {
            return Err(Error::CounterExhausted);
        }
        let chunk_end = self.geometry.data_offset + table.chunk_bytes;
        let signed = match self.signers.is_empty() {
            true => Vec::new(),
            false => self.sign_volume(volume, &table, chunk_end, last)?,
        };
        let records: Vec<(u16, &[u8])> = signed
            .iter()
            .map(|(kind, body)| (*kind, body.as_slice()))
            .collect();
        let parts = trailer::encode_parts(
            volume,
            &self.set_id,
            chunk_end,
            &table.header_digest,
            &table.entries,
            &records,
            self.parity,
        )
        .map_err(|_| Error::CounterExhausted)?;
        self.sink.append(&parts.data_tail)?;
        let digest_block_hash = match &parts.parity {
            Some(geometry) => self.write_parity(geometry)?,
            None => [0; DIGEST_LEN],
        };
        self.sink.append(&parts.end_sector(&digest_block_hash))?;
        Ok(())
    }

    /// The second pass over a volume whose data span is written (SPEC.md
    /// §16.11): reads back the k data runs of each batch of stripes,
    /// encodes them, writes the m parity runs at their layer-major places,
    /// then appends the parity digest block; returns its BLAKE3. Memory:
    /// one batch, (k + m) · 128 KiB, whatever the volume's size.
    fn write_parity(&mut self, geometry: &ParityGeometry) -> Result<[u8; DIGEST_LEN], Error> {
        const SECTOR: u64 = format::SECTOR;
        let unsupported = || Error::option(OptionError::ParityNeedsPositionedSink);
        let data_len = geometry.data_sectors() * SECTOR;
        let layer = u64::from(geometry.layer_sectors());
        let batch = u64::from(crate::parity::codec::BATCH_STRIPES);
        let run_max = (batch * SECTOR) as usize;
        let mut data = vec![vec![0u8; run_max]; usize::from(geometry.k())];
        let mut parity = vec![vec![0u8; run_max]; usize::from(geometry.m())];
        let mut encoder = StripeEncoder::for_geometry(geometry);
        let mut checks = SectorChecks::new(geometry.checked_sectors());
        let mut first = 0u64;
        while first < layer {
            let count = batch.min(layer - first);
            let run = (count * SECTOR) as usize;
            for (j, buf) in data.iter_mut().enumerate() {
                let start = (j as u64 * layer + first) * SECTOR;
                let stored = data_len.saturating_sub(start).min(run as u64) as usize;
                // Virtual sectors past the data span are zeros.
                buf[stored..run].fill(0);
                if stored > 0 {
                    self.sink
                        .read_back(start, &mut buf[..stored])?
                        .ok_or_else(unsupported)?;
                    checks.record(start / SECTOR, &buf[..stored]);
                }
            }
            let runs: Vec<&[u8]> = data.iter().map(|buf| &buf[..run]).collect();
            let mut outs: Vec<&mut [u8]> = parity.iter_mut().map(|buf| &mut buf[..run]).collect();
            encoder
                .encode(&runs, &mut outs)
                .expect("runs of whole sectors for the geometry's k and m");
            for (q, out) in parity.iter().enumerate() {
                let at = data_len + (q as u64 * layer + first) * SECTOR;
                self.sink
                    .write_at(at, &out[..run])?
                    .ok_or_else(unsupported)?;
                checks.record(at / SECTOR, &out[..run]);
            }
            first += count;
        }
        // The digest block, from the parity as written (SPEC.md §16.7).
        let group_len = crate::parity::geometry::DIGEST_GROUP_SECTORS * SECTOR;
        let parity_len = geometry.parity_sectors() * SECTOR;
        let mut block = Vec::with_capacity(geometry.digest_block_len() as usize);
        let mut group = vec![0u8; group_len as usize];
        let mut at = 0;
        while at < parity_len {
            let len = group_len.min(parity_len - at) as usize;
            self.sink
                .read_back(data_len + at, &mut group[..len])?
                .ok_or_else(unsupported)?;
            block.extend_from_slice(blake3::hash(&group[..len]).as_bytes());
            at += len as u64;
        }
        block.resize(geometry.digest_block_len() as usize, 0);
        self.sink.append(&block)?;
        // The check block, a CRC-32 per sector (SPEC.md §16.13).
        self.sink.append(&checks.block())?;
        Ok(*blake3::hash(&block).as_bytes())
    }

    /// The statement of a finished volume (SPEC.md §14.1) and each signer's
    /// signature over it, in signer-block order, as trailer records. Each
    /// signature is checked, with every rule a reader applies, before it is
    /// written (§14.2).
    ///
    /// # Errors
    ///
    /// A signer's own error, or [`Error::InvalidKey`] if its signature
    /// does not verify.
    fn sign_volume(
        &self,
        volume: u32,
        table: &TableBuilder,
        chunk_end: u64,
        last: bool,
    ) -> Result<Vec<(u16, Vec<u8>)>, Error> {
        let chunk_len = self.geometry.chunk_len();
        let chunks = table.entries.len() as u64;
        let region_len = table.chunk_bytes;
        let region_digest =
            chunk_digest::root_from_table(region_len, chunk_len, |j| table.entries[j as usize])
                .or(table.first_chunk_root)
                .expect("a volume of one chunk had its chunk 0 hashed as it was written");
        let first_chunk = self.geometry.first_chunk(volume);
        let statement = Statement {
            set_id: self.set_id,
            volume,
            first_chunk,
            chunks,
            chunk_len: chunk_len as u64,
            header_len: self.geometry.data_offset,
            header_digest: table.header_digest,
            end: chunk_end,
            table_digest: trailer::table_digest(&table.header_digest, &table.entries),
            last: last.then_some(LastVolume {
                volumes: volume,
                final_chunk: first_chunk + chunks - 1,
            }),
            region_digest,
        }
        .encode();
        let mut records = vec![(trailer::STATEMENT_RECORD, statement.clone().into_bytes())];
        for signer in &self.signers {
            let armored = sshsig::sign(signer.as_ref(), statement.as_bytes())?;
            if sshsig::verify(
                armored.as_bytes(),
                statement.as_bytes(),
                signer.public_key(),
            )
            .is_err()
            {
                return Err(Error::key(crate::error::KeyError::Signing {
                    what: "signing key",
                    reason: "the signer's signature does not verify",
                }));
            }
            records.push((trailer::SIGNATURE_RECORD, armored.into_bytes()));
        }
        Ok(records)
    }

    fn write_header(&mut self, volume: u32) -> Result<(), Error> {
        self.close_volume(false)?;
        let mut header = format::encode_mac_input(&self.set_bytes, volume);
        let mac = self.file_key.compute_header_mac(&self.set_id, &header);
        header.extend_from_slice(&mac);
        header.resize(self.geometry.data_offset as usize, 0);
        self.sink.start_volume(volume)?;
        self.sink.append(&header)?;
        if self.digests {
            self.table = TableBuilder {
                header_digest: chunk_digest::header_digest(&header),
                ..TableBuilder::default()
            };
        }
        self.open_volume = Some(volume);
        Ok(())
    }

    /// Seals the last chunk, marks the end of the set and finishes the sink.
    ///
    /// # Errors
    ///
    /// Any error of the sink, or an earlier failed write.
    pub fn finish(mut self) -> Result<S, Error> {
        if self.failed {
            return Err(Error::Io(io::Error::other(
                "an earlier write failed; the set was not finished",
            )));
        }
        if let Err(err) = self.push_padding() {
            self.failed = true;
            return Err(err);
        }
        self.dispatch(None)?;
        while !self.in_flight.is_empty() {
            self.write_next()?;
        }
        self.close_volume(true)?;
        self.sink.finish()?;
        let SealWriter { sink, pool, .. } = self;
        drop(pool);
        Ok(sink)
    }
}

impl<S: VolumeSink> Write for SealWriter<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check_usable()?;
        if buf.is_empty() {
            return Ok(0);
        }
        match self.write_in_place(buf) {
            Ok(Some(n)) => return Ok(n),
            Ok(None) => {}
            Err(err) => {
                self.failed = true;
                return Err(err.into());
            }
        }
        self.gather(|room| {
            let n = room.len().min(buf.len());
            room[..n].copy_from_slice(&buf[..n]);
            Ok(n)
        })
        .map_err(io::Error::from)
    }

    /// Does nothing: chunks are written whole, and the last one only by
    /// [`finish`](SealWriter::finish).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Also the sealing helpers of the other files' tests.

    use std::io::Read;

    use super::*;
    use crate::format::TAG_LEN;
    use crate::keys::X25519Identity;
    use crate::open::Opener;
    use crate::volumes::MemorySink;

    /// Seals `data` to `identity` with `chunk`-byte chunks and volumes of
    /// at most `volume` bytes, with no manifest, no padding and no
    /// trailers, so that the content starts at payload offset 4 and ends
    /// the payload: these tests check the chunk layer's lengths and cuts
    /// (SPEC.md §6, §7.2); the trailer's tests (src/trailer.rs,
    /// tests/trailer.rs) add it.
    pub(crate) fn seal(
        identity: &X25519Identity,
        data: &[u8],
        chunk: usize,
        volume: Option<u64>,
    ) -> Vec<Vec<u8>> {
        let mut sealer = Sealer::new()
            .recipient(identity.to_public())
            .chunk_size(chunk)
            .created(None)
            .pad(Padding::None)
            .digests(false);
        if let Some(size) = volume {
            sealer = sealer.volume_size(size);
        }
        let mut writer = sealer.seal(MemorySink::new()).expect("seal");
        writer.write_all(data).expect("write");
        writer.finish().expect("finish").into_volumes()
    }

    /// Opens `volumes` and reads all of their content.
    pub(crate) fn open(identity: X25519Identity, volumes: Vec<Vec<u8>>) -> Result<Vec<u8>, Error> {
        let mut reader = Opener::new().identity(identity).open(volumes)?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out).map_err(Error::from_io)?;
        Ok(out)
    }

    /// A copy of `identity` (identities are not `Clone`).
    pub(crate) fn same_identity(identity: &X25519Identity) -> X25519Identity {
        identity.to_secret_string().parse().expect("own identity")
    }

    #[test]
    fn sizes_around_chunk_boundaries_round_trip() {
        let identity = X25519Identity::generate().expect("os randomness");
        let plain = 4096 - TAG_LEN;
        // Content lengths that put the payload (prefix included) around
        // chunk boundaries.
        let prefix = PAYLOAD_PREFIX_LEN;
        for len in [
            0,
            1,
            plain - prefix - 1,
            plain - prefix,
            plain - prefix + 1,
            plain,
            3 * plain - prefix,
            3 * plain + 7,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let volumes = seal(&identity, &data, 4096, None);
            assert_eq!(volumes.len(), 1);
            let payload = prefix + len;
            let chunks = payload.div_ceil(plain);
            assert_eq!(
                volumes[0].len(),
                2048 + payload + chunks * TAG_LEN,
                "len {len}"
            );
            let reader = Opener::new()
                .identity(same_identity(&identity))
                .open(volumes.clone())
                .expect("open");
            assert_eq!(
                (reader.len(), reader.kind()),
                (len as u64, PayloadKind::Stream)
            );
            assert_eq!(open(same_identity(&identity), volumes).expect("open"), data);
        }
    }

    /// Checks `sealer.plan(len)` against what sealing `len` bytes writes.
    fn assert_plan_matches(sealer: &Sealer, len: usize) {
        let plan = sealer.plan(len as u64).expect("plan");
        let mut writer = sealer.seal(MemorySink::new()).expect("seal");
        writer.write_all(&vec![3u8; len]).expect("write");
        let volumes = writer.finish().expect("finish").into_volumes();
        let lens: Vec<u64> = volumes.iter().map(|v| v.len() as u64).collect();
        let planned: Vec<u64> = (1..=plan.volume_count() as u32)
            .map(|v| plan.volume_len(v).expect("planned volume"))
            .collect();
        assert_eq!(planned, lens, "content of {len} bytes");
        assert_eq!(plan.total_len(), lens.iter().sum::<u64>());
        assert_eq!(plan.volume_len(plan.volume_count() as u32 + 1), None);
        assert_eq!(plan.volume_len(0), None);
    }

    #[test]
    fn plan_is_what_sealing_writes() {
        let identity = X25519Identity::generate().expect("os randomness");
        let chunk = 4096;
        let plain = chunk - TAG_LEN;
        let prefix = PAYLOAD_PREFIX_LEN;
        let per_volume = 3;
        let volume = 2048 + per_volume as u64 * chunk as u64 + 100;
        let mut lens = vec![0, 1, 100];
        for chunks in [
            1,
            2,
            per_volume,
            per_volume + 1,
            2 * per_volume,
            7 * per_volume,
        ] {
            let boundary = chunks * plain - prefix;
            lens.extend([boundary - 1, boundary, boundary + 1]);
        }
        let unsplit = Sealer::new()
            .recipient(identity.to_public())
            .chunk_size(chunk)
            .threads(1);
        let split = unsplit.clone().volume_size(volume);
        let two = X25519Identity::generate().expect("os randomness");
        let many = split.clone().recipient(two.to_public()).threads(3);
        for len in lens {
            assert_plan_matches(&unsplit, len);
            assert_plan_matches(&split, len);
            assert_plan_matches(&many, len);
        }
        // A passphrase stanza has its own length; planning runs no Argon2id.
        let passphrase = split
            .clone()
            .passphrase(Passphrase::from("correct horse"))
            .argon2_params(Argon2Params::MINIMUM);
        for len in [0, 5 * plain] {
            assert_plan_matches(&passphrase, len);
        }
        assert_eq!(unsplit.plan(0).expect("plan").header_len(), 2048);
    }

    #[test]
    fn signed_plans_are_what_sealing_writes() {
        use crate::sign::SigningKey;
        let identity = X25519Identity::generate().expect("os randomness");
        let chunk = 4096;
        let plain = chunk - TAG_LEN;
        let unsplit = Sealer::new()
            .recipient(identity.to_public())
            .chunk_size(chunk)
            .threads(1)
            .sign_with(SigningKey::from_seed([1; 32]));
        let four = (2..5).fold(unsplit.clone(), |sealer, seed| {
            sealer.sign_with(SigningKey::from_seed([seed; 32]))
        });
        // The smallest volume that holds a chunk: 12 and more volumes, so
        // that v (and g0) gain a digit and the statements a byte.
        let smallest = 2048 + 4096 + 4 * 2048;
        for sealer in [unsplit, four] {
            let split = sealer.clone().volume_size(smallest).threads(2);
            for len in [0, 1, plain, 3 * plain, 11 * plain, 14 * plain + 5] {
                assert_plan_matches(&sealer, len);
                assert_plan_matches(&split, len);
            }
        }
    }

    #[test]
    fn signer_options_are_checked() {
        use crate::sign::SigningKey;
        let identity = X25519Identity::generate().expect("os randomness");
        let sealer = Sealer::new().recipient(identity.to_public());
        let five = (1..6).fold(sealer.clone(), |sealer, seed| {
            sealer.sign_with(SigningKey::from_seed([seed; 32]))
        });
        assert!(matches!(
            five.seal(MemorySink::new()),
            Err(Error::InvalidOption {
                reason: OptionError::TooManySigners { found: 5, max: 4 }
            })
        ));
        let twice = sealer
            .clone()
            .sign_with(SigningKey::from_seed([1; 32]))
            .sign_with(SigningKey::from_seed([1; 32]));
        assert!(matches!(
            twice.plan(1),
            Err(Error::InvalidOption {
                reason: OptionError::DuplicateSigner { .. }
            })
        ));
        let no_trailers = sealer
            .sign_with(SigningKey::from_seed([1; 32]))
            .digests(false);
        assert!(matches!(
            no_trailers.seal(MemorySink::new()),
            Err(Error::InvalidOption {
                reason: OptionError::SignedWithoutDigests
            })
        ));
    }

    #[test]
    fn plan_refuses_what_seal_refuses() {
        assert!(Sealer::new().plan(1).is_err());
        let identity = X25519Identity::generate().expect("os randomness");
        let sealer = Sealer::new().recipient(identity.to_public());
        assert!(sealer.clone().chunk_size(1000).plan(1).is_err());
        assert!(sealer.clone().volume_size(4096).plan(1).is_err());
        assert!(
            sealer
                .clone()
                .chunk_size(4096)
                .volume_size(2048 + 4096)
                .plan(u64::MAX)
                .is_err()
        );
    }

    #[test]
    fn a_payload_of_one_batch_starts_no_thread() {
        let identity = X25519Identity::generate().expect("os randomness");
        // No manifest and no padding: the payload is the prefix and the content.
        let sealer = Sealer::new()
            .recipient(identity.to_public())
            .threads(4)
            .created(None)
            .pad(Padding::None);
        let seal_len = |len: usize| {
            let mut writer = sealer.seal(MemorySink::new()).expect("seal");
            writer.write_all(&vec![9u8; len]).expect("write");
            writer.finish().expect("finish").into_volumes()
        };
        let geometry = Geometry::new(DEFAULT_CHUNK_EXP, 0, 0);
        let batch = pipeline::batch_chunks(&geometry) * geometry.plain_len() - PAYLOAD_PREFIX_LEN;
        let before = pipeline::seal_threads_started();
        for len in [0, 14, batch] {
            let volumes = seal_len(len);
            assert_eq!(pipeline::seal_threads_started(), before, "{len} bytes");
            assert_eq!(
                open(same_identity(&identity), volumes).expect("open"),
                vec![9u8; len]
            );
        }
        // One byte more needs a second batch: now the workers start, three
        // of them, as the writing thread is the fourth.
        let volumes = seal_len(batch + 1);
        assert_eq!(pipeline::seal_threads_started(), before + 3);
        assert_eq!(
            open(same_identity(&identity), volumes).expect("open"),
            vec![9u8; batch + 1]
        );
    }

    #[test]
    fn volumes_never_exceed_the_size_asked_for() {
        let identity = X25519Identity::generate().expect("os randomness");
        let data = vec![7u8; 10 * 4096];
        let size = 2048 + 3 * 4096 + 100;
        let volumes = seal(&identity, &data, 4096, Some(size));
        assert_eq!(volumes.len(), 4);
        assert!(volumes.iter().all(|v| v.len() as u64 <= size));
        assert_eq!(volumes[0].len(), 2048 + 3 * 4096);
        assert_eq!(open(same_identity(&identity), volumes).expect("open"), data);
    }

    #[test]
    fn payload_ending_on_a_volume_boundary_has_no_empty_volume() {
        let identity = X25519Identity::generate().expect("os randomness");
        let data = vec![1u8; 2 * (4096 - TAG_LEN) - PAYLOAD_PREFIX_LEN];
        let volumes = seal(&identity, &data, 4096, Some(2048 + 2 * 4096));
        assert_eq!(volumes.len(), 1);
        let volumes = seal(&identity, &data, 4096, Some(2048 + 4096));
        assert_eq!(volumes.len(), 2);
        assert_eq!(open(same_identity(&identity), volumes).expect("open"), data);
    }

    #[test]
    fn invalid_options_are_refused() {
        let identity = X25519Identity::generate().expect("os randomness");
        assert!(matches!(
            Sealer::new().seal(MemorySink::new()),
            Err(Error::InvalidOption {
                reason: OptionError::NoRecipients
            })
        ));
        for chunk in [0, 2048, 4095, 3 * 4096, 32 << 20] {
            let sealer = Sealer::new()
                .recipient(identity.to_public())
                .chunk_size(chunk);
            assert!(matches!(
                sealer.seal(MemorySink::new()),
                Err(Error::InvalidOption {
                    reason: OptionError::ChunkSize {
                        found,
                        min: 4096,
                        max: 0x0100_0000,
                    }
                }) if found == chunk
            ));
        }
        let tiny = Sealer::new()
            .recipient(identity.to_public())
            .volume_size(4096);
        assert!(matches!(
            tiny.seal(MemorySink::new()),
            Err(Error::InvalidOption {
                reason: OptionError::VolumeTooSmall {
                    volume_size: 4096,
                    header_len: 2048,
                    chunk_size: 65536,
                }
            })
        ));
        assert!(matches!(
            Sealer::new()
                .recipient(identity.to_public())
                .threads(0)
                .seal(MemorySink::new()),
            Err(Error::InvalidOption {
                reason: OptionError::NoThreads
            })
        ));
    }

    #[test]
    fn dropped_writer_never_opens_as_complete() {
        let identity = X25519Identity::generate().expect("os randomness");
        for threads in [1, 2] {
            let mut sink = MemorySink::new();
            {
                let mut writer = Sealer::new()
                    .recipient(identity.to_public())
                    .chunk_size(4096)
                    .threads(threads)
                    .seal(&mut sink)
                    .expect("seal");
                // Many batches, so that chunks reach the sink.
                writer.write_all(&vec![0u8; 8 << 20]).expect("write");
            }
            let volumes = sink.into_volumes();
            assert!(!volumes.is_empty(), "{threads} threads");
            // No end-of-set chunk and no trailer was written: a cut.
            assert!(matches!(
                open(same_identity(&identity), volumes),
                Err(Error::Truncated {
                    at: crate::Location {
                        volume: crate::Volume::Number(1),
                        ..
                    }
                })
            ));
        }
    }

    /// Gives at most `step` bytes per read, as a pipe may.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.step).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn copy_from_writes_the_same_bytes_as_write() {
        let identity = X25519Identity::generate().expect("os randomness");
        let plain = 4096 - TAG_LEN;
        let per_batch = (1 << 20) / 4096;
        let batch = per_batch * plain;
        for len in [
            0,
            1,
            plain,
            batch - 1,
            batch,
            batch + 1,
            2 * batch,
            3 * batch + 17,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            for (threads, volume, step) in [(1, None, 1 << 20), (2, Some(2048 + 7 * 4096), 1000)] {
                let sealer = || {
                    let sealer = Sealer::new()
                        .recipient(identity.to_public())
                        .chunk_size(4096)
                        .threads(threads)
                        .insecure_deterministic_seed([9; 32])
                        .created(Some(
                            std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_764_547_200),
                        ));
                    match volume {
                        Some(size) => sealer.volume_size(size),
                        None => sealer,
                    }
                };
                let mut writer = sealer().seal(MemorySink::new()).expect("seal");
                writer.write_all(&data).expect("write");
                let written = writer.finish().expect("finish").into_volumes();

                let mut writer = sealer().seal(MemorySink::new()).expect("seal");
                let mut input = Trickle { data: &data, step };
                assert_eq!(writer.copy_from(&mut input).expect("copy"), len as u64);
                // Nothing more to read: a second call adds nothing.
                assert_eq!(writer.copy_from(&mut input).expect("copy"), 0);
                let copied = writer.finish().expect("finish").into_volumes();
                assert!(written == copied, "len {len}, {threads} threads");
                assert_eq!(open(same_identity(&identity), copied).expect("open"), data);
            }
        }
    }

    /// Takes `budget` bytes, then fails every write.
    struct FailingSink {
        budget: usize,
    }

    impl VolumeSink for FailingSink {
        fn start_volume(&mut self, _: u32) -> io::Result<()> {
            Ok(())
        }

        fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.budget = self
                .budget
                .checked_sub(bytes.len())
                .ok_or_else(|| io::Error::other("disc full"))?;
            Ok(())
        }

        fn finish(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_sink_write_refuses_everything_after_it() {
        let identity = X25519Identity::generate().expect("os randomness");
        let mut writer = Sealer::new()
            .recipient(identity.to_public())
            .chunk_size(4096)
            .threads(1)
            .seal(FailingSink { budget: 1 << 20 })
            .expect("seal");
        let data = vec![5u8; 64 << 10];
        let err = loop {
            if let Err(err) = writer.write(&data) {
                break err;
            }
        };
        assert_eq!(err.to_string(), "disc full");
        assert!(writer.write(&data).is_err());
        assert!(writer.write(&[]).is_err(), "not even an empty write");
        assert!(matches!(
            writer.copy_from(&mut &data[..]),
            Err(Error::Io(_))
        ));
        assert!(matches!(writer.finish(), Err(Error::Io(_))));
    }

    #[test]
    fn short_writes_across_batches_give_the_same_bytes() {
        let identity = X25519Identity::generate().expect("os randomness");
        let data: Vec<u8> = (0..3 * (1 << 20) + 12_345)
            .map(|i| (i % 241) as u8)
            .collect();
        let sealer = Sealer::new()
            .recipient(identity.to_public())
            .chunk_size(4096)
            .threads(1)
            .insecure_deterministic_seed([3; 32])
            .created(Some(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_764_547_200),
            ));
        let mut whole = sealer.seal(MemorySink::new()).expect("seal");
        whole.write_all(&data).expect("write");
        let whole = whole.finish().expect("finish").into_volumes();
        for step in [1, 4079, 4080, 4081, 100_000] {
            let mut writer = sealer.seal(MemorySink::new()).expect("seal");
            for piece in data.chunks(step) {
                writer.write_all(piece).expect("write");
            }
            let pieces = writer.finish().expect("finish").into_volumes();
            assert!(whole == pieces, "step {step}");
        }
        assert_eq!(open(same_identity(&identity), whole).expect("open"), data);
    }
}
