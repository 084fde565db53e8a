//! One plaintext byte stream over a volume set: [`Sealer`] → [`SealWriter`]
//! (`Write`), [`Opener`] → [`OpenReader`] (`Read + Seek`).

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::error::Error;
use crate::format::{
    self, ChunkFlag, DEFAULT_CHUNK_EXP, Geometry, Header, MAX_CHUNK_EXP, MAX_HEADER_LEN,
    MIN_CHUNK_EXP, PAYLOAD_PREFIX_LEN, PREAMBLE_LEN, PayloadKind, SET_ID_LEN, SetHeader, TAG_LEN,
};
use crate::keys::{
    self, Argon2Params, FileKey, Identity, Limits, Passphrase, Recipient, Unlocked, Warning,
};
use crate::pipeline::{self, InFlight, Pending, SealBatch, SealPool};
use crate::rand::Randomness;
use crate::stream::ChunkCipher;
use crate::volumes::{VolumeSink, VolumeSource};

/// Most stanzas a header may hold (the count is one byte).
const MAX_STANZAS: usize = 255;

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
    seed: Option<Zeroizing<[u8; 32]>>,
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

    /// A sealer with no recipients, 64 KiB chunks and one unsplit volume.
    pub fn new() -> Self {
        Sealer {
            recipients: Vec::new(),
            passphrase: None,
            argon2: Argon2Params::DEFAULT,
            chunk_size: Self::DEFAULT_CHUNK_SIZE,
            volume_size: None,
            threads: None,
            seed: None,
        }
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

    /// Threads that seal chunks (default: all cores). With 1, everything
    /// happens in the writing thread and no thread is started. The bytes
    /// written are the same for every thread count.
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
    /// default [`Opener`] accepts ([`Limits::default`]).
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
        let mut writer = self.seal_unprefixed(sink)?;
        writer.push_prefix(&format::encode_payload_prefix(kind));
        Ok(writer)
    }

    /// Starts sealing with no payload prefix: the bytes written are the
    /// whole payload. Only for crafting payloads in tests
    /// ([`crate::testing`]).
    pub(crate) fn seal_unprefixed<S: VolumeSink>(&self, sink: S) -> Result<SealWriter<S>, Error> {
        if self.recipients.is_empty() && self.passphrase.is_none() {
            return Err(Error::option("no recipient and no passphrase"));
        }
        let stanza_count = self.recipients.len() + usize::from(self.passphrase.is_some());
        if stanza_count > MAX_STANZAS {
            return Err(Error::option(format!(
                "{stanza_count} recipients; at most {MAX_STANZAS} fit a header"
            )));
        }
        let chunk_exp = chunk_exponent(self.chunk_size)?;
        if self.passphrase.is_some() {
            // Never write a set that a default opener refuses.
            self.argon2.check_limits(&Limits::default())?;
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
        let stanzas = keys::wrap_for_recipients(&file_key, &self.recipients, passphrase, &mut rng)?;

        // The header length does not depend on K, so the geometry can be
        // fixed before K is known.
        let mut set = SetHeader {
            set_id,
            chunk_exp,
            chunks_per_volume: 0,
            stanzas,
        };
        let header_len = format::header_len(format::encode_set_header(&set).len());
        if header_len > MAX_HEADER_LEN as usize {
            return Err(Error::option("the recipients do not fit a 1 MiB header"));
        }
        let data_offset = format::padded_header_len(header_len as u64);
        if let Some(volume_size) = self.volume_size {
            let per_volume = volume_size.saturating_sub(data_offset) / self.chunk_size as u64;
            if per_volume == 0 {
                return Err(Error::option(format!(
                    "a volume of {volume_size} bytes cannot hold the {data_offset}-byte header \
                     and one {}-byte chunk",
                    self.chunk_size
                )));
            }
            set.chunks_per_volume = per_volume;
        }
        let geometry = Geometry::new(chunk_exp, set.chunks_per_volume, header_len as u64);
        let threads = self.threads.unwrap_or_else(pipeline::default_threads);
        if threads == 0 {
            return Err(Error::option("0 threads"));
        }
        let cipher = Arc::new(ChunkCipher::new(&file_key.payload_key(&set_id)));
        let per_batch = pipeline::batch_chunks(&geometry);
        let pool = (threads > 1).then(|| SealPool::new(threads, Arc::clone(&cipher), geometry));
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
            max_in_flight: if pool.is_some() {
                threads * pipeline::DEPTH_PER_THREAD
            } else {
                0
            },
            pool,
            in_flight: InFlight::new(),
            free: Vec::new(),
            failed: false,
            sink,
        })
    }
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

fn chunk_exponent(chunk_size: usize) -> Result<u8, Error> {
    let exp = chunk_size.trailing_zeros();
    let valid = chunk_size.is_power_of_two()
        && (u32::from(MIN_CHUNK_EXP)..=u32::from(MAX_CHUNK_EXP)).contains(&exp);
    if !valid {
        return Err(Error::option(format!(
            "chunk size {chunk_size} is not a power of two from 4 KiB to 16 MiB"
        )));
    }
    Ok(exp as u8)
}

/// Seals a payload as it is written; see [`Sealer`].
///
/// Call [`finish`](Self::finish): only it writes the end-of-set chunk, so a
/// writer dropped early never leaves a set that opens as complete.
///
/// Plaintext is gathered into batches of about 1 MiB of chunks, sealed in
/// place (by worker threads if the sealer has more than one) and written to
/// the sink in order. Memory stays at threads × 2 batches.
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
    pool: Option<SealPool>,
    in_flight: InFlight,
    max_in_flight: usize,
    /// Sealed buffers to reuse: no allocation in the steady state.
    free: Vec<Zeroizing<Vec<u8>>>,
    failed: bool,
}

impl<S: VolumeSink> fmt::Debug for SealWriter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealWriter")
            .field("geometry", &self.geometry)
            .field("counter", &self.counter)
            .field("threads", &self.pool.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: VolumeSink> SealWriter<S> {
    /// Puts the payload prefix into the first chunk of a fresh writer.
    fn push_prefix(&mut self, prefix: &[u8; PAYLOAD_PREFIX_LEN]) {
        debug_assert_eq!(self.filled, 0, "the prefix opens the payload");
        // The first batch buffer is at least one chunk (≥ 4 KiB) long.
        self.batch[..PAYLOAD_PREFIX_LEN].copy_from_slice(prefix);
        self.filled = PAYLOAD_PREFIX_LEN;
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

    /// Hands the gathered batch out for sealing, its last chunk marked as
    /// the end of the set if `end_of_set`, and writes what is due.
    fn dispatch(&mut self, end_of_set: bool) -> Result<(), Error> {
        self.dispatch_then(end_of_set, None)
    }

    /// As `dispatch`; the next batch is `next_batch` (a whole buffer and the
    /// plaintext bytes already in its first chunk) instead of an empty one.
    fn dispatch_then(
        &mut self,
        end_of_set: bool,
        next_batch: Option<(Zeroizing<Vec<u8>>, usize)>,
    ) -> Result<(), Error> {
        let plain_len = self.geometry.plain_len();
        let chunks = self.filled.div_ceil(plain_len).max(1);
        let last_len = self.filled - (chunks - 1) * plain_len;
        // Advance first, so a failed advance never leaves a used nonce behind.
        let first = self.counter;
        let next = first
            .checked_add(chunks as u64)
            .ok_or(Error::CounterExhausted)?;
        if let Some(volume_index) = (next - 1).checked_div(self.geometry.chunks_per_volume) {
            u32::try_from(volume_index + 1).map_err(|_| Error::CounterExhausted)?;
        }
        // After the last batch nothing more is gathered.
        let (fresh, filled) = match next_batch {
            Some(next_batch) => next_batch,
            // After the last batch nothing more is gathered.
            None if end_of_set => (Zeroizing::new(Vec::new()), 0),
            None => (self.fresh_buffer(), 0),
        };
        let buf = std::mem::replace(&mut self.batch, fresh);
        self.counter = next;
        self.filled = filled;
        let mut batch = SealBatch {
            buf,
            first,
            chunks,
            last_len,
            end_of_set,
        };
        let pending = match &self.pool {
            Some(pool) => pool.submit(batch),
            None => {
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
    /// whole streams, as [`OpenReader::copy_to`] is for opening.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from `input` (nothing read is lost: sealing can go on)
    /// or from the sink (the set can then no longer be finished).
    pub fn copy_from<R: Read + ?Sized>(&mut self, input: &mut R) -> Result<u64, Error> {
        if self.failed {
            return Err(Error::Io(io::Error::other(
                "an earlier write failed; the set cannot be finished",
            )));
        }
        let plain_len = self.geometry.plain_len();
        let chunk_len = self.geometry.chunk_len();
        let mut total = 0u64;
        loop {
            if self.filled == self.per_batch * plain_len {
                // A full batch goes out only once more data arrives: the
                // final chunk is left for `finish`, which marks the end.
                let mut next = self.fresh_buffer();
                let n = match read_some(input, &mut next[..plain_len]) {
                    Ok(n) => n,
                    Err(err) => {
                        self.free.push(next);
                        return Err(err);
                    }
                };
                if n == 0 {
                    self.free.push(next);
                    return Ok(total);
                }
                if let Err(err) = self.dispatch_then(false, Some((next, n))) {
                    self.failed = true;
                    return Err(err);
                }
                total += n as u64;
                continue;
            }
            let (chunk, within) = (self.filled / plain_len, self.filled % plain_len);
            if (chunk + 1) * chunk_len > self.batch.len() {
                self.grow_batch((chunk + 1) * chunk_len);
            }
            let at = chunk * chunk_len + within;
            let n = read_some(input, &mut self.batch[at..at + plain_len - within])?;
            if n == 0 {
                return Ok(total);
            }
            self.filled += n;
            total += n as u64;
        }
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
        let mut run_start = 0;
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
                self.sink.append(&sealed[run_start..at])?;
            }
            self.write_header(volume)?;
            run_start = at;
        }
        self.sink.append(&sealed[run_start..])?;
        self.free.push(batch.buf);
        Ok(())
    }

    fn write_header(&mut self, volume: u32) -> Result<(), Error> {
        let mut header = format::encode_mac_input(&self.set_bytes, volume);
        let mac = self.file_key.compute_header_mac(&self.set_id, &header);
        header.extend_from_slice(&mac);
        header.resize(self.geometry.data_offset as usize, 0);
        self.sink.start_volume(volume)?;
        self.sink.append(&header)?;
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
        self.dispatch(true)?;
        while !self.in_flight.is_empty() {
            self.write_next()?;
        }
        self.sink.finish()?;
        let SealWriter { sink, pool, .. } = self;
        drop(pool);
        Ok(sink)
    }
}

impl<S: VolumeSink> Write for SealWriter<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other(
                "an earlier write failed; the set cannot be finished",
            ));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let plain_len = self.geometry.plain_len();
        // Hand a full batch out only once more data arrives: the final
        // chunk is left for `finish`, which sets the end-of-set flag.
        if self.filled == self.per_batch * plain_len
            && let Err(err) = self.dispatch(false)
        {
            self.failed = true;
            return Err(err.into());
        }
        let (chunk, within) = (self.filled / plain_len, self.filled % plain_len);
        let chunk_len = self.geometry.chunk_len();
        if (chunk + 1) * chunk_len > self.batch.len() {
            self.grow_batch((chunk + 1) * chunk_len);
        }
        let n = buf.len().min(plain_len - within);
        let at = chunk * chunk_len + within;
        self.batch[at..at + n].copy_from_slice(&buf[..n]);
        self.filled += n;
        Ok(n)
    }

    /// Does nothing: chunks are written whole, and the last one only by
    /// [`finish`](SealWriter::finish).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a volume's header says, read without any key.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    /// Format version (always 1 here).
    pub version: u16,
    /// Random id shared by every volume of the set.
    pub set_id: [u8; SET_ID_LEN],
    /// This volume's number, from 1 (not authenticated without a key).
    pub volume: u32,
    /// Ciphertext chunk size in bytes.
    pub chunk_size: usize,
    /// Chunks in every volume but the last; 0 if the set is not split.
    pub chunks_per_volume: u64,
    /// Recipient stanza types, in header order.
    pub stanza_types: Vec<String>,
    /// Padded header length: offset of the first chunk.
    pub header_len: u64,
    /// Length of the volume in bytes.
    pub len: u64,
}

impl VolumeInfo {
    /// Whether the set was sealed with a volume size.
    pub fn is_split(&self) -> bool {
        self.chunks_per_volume != 0
    }

    /// Whether the volume holds as many chunks as a non-final volume: if
    /// not, it can only be the last volume of its set.
    pub fn is_full(&self) -> bool {
        let full = self
            .chunks_per_volume
            .checked_mul(self.chunk_size as u64)
            .and_then(|data| data.checked_add(self.header_len));
        self.chunks_per_volume != 0 && full == Some(self.len)
    }

    /// Whether a passphrase stanza sits beside public-key stanzas: then the
    /// set carries no proof that its sender knew the passphrase.
    pub fn passphrase_is_unauthenticated(&self) -> bool {
        let passphrase = self.stanza_types.iter().any(|t| t == "argon2id");
        passphrase && self.stanza_types.len() > 1
    }
}

/// Reads a volume's header without any key (SPEC.md §3).
///
/// # Errors
///
/// [`Error::NotKuvert`], [`Error::UnsupportedVersion`],
/// [`Error::MalformedHeader`], [`Error::LimitExceeded`] or [`Error::Io`].
pub fn inspect<S: VolumeSource + ?Sized>(volume: &S) -> Result<VolumeInfo, Error> {
    let (header, len) = read_header(volume, 1)?;
    let geometry = header.geometry();
    Ok(VolumeInfo {
        version: format::FORMAT_VERSION,
        set_id: header.set.set_id,
        volume: header.volume,
        chunk_size: geometry.chunk_len(),
        chunks_per_volume: geometry.chunks_per_volume,
        stanza_types: header.set.stanzas.iter().map(|s| s.kind.clone()).collect(),
        header_len: geometry.data_offset,
        len,
    })
}

/// Reads, bounds and parses one volume's header, and checks its padding.
fn read_header<S: VolumeSource + ?Sized>(source: &S, input: usize) -> Result<(Header, u64), Error> {
    let len = source.size()?;
    let mut preamble = [0u8; PREAMBLE_LEN];
    let available = len.min(PREAMBLE_LEN as u64) as usize;
    source.read_exact_at(&mut preamble[..available], 0)?;
    let header_len = format::parse_preamble(&preamble[..available], input)?;
    if u64::from(header_len) > len {
        return Err(Error::malformed(
            input,
            10,
            "header runs past the end of the volume",
        ));
    }
    let mut bytes = vec![0u8; header_len as usize];
    source.read_exact_at(&mut bytes, 0)?;
    let header = format::parse_header(&bytes, input)?;
    keys::check_stanzas(&header, input)?;

    let data_offset = header.geometry().data_offset;
    if len < data_offset {
        return Err(Error::malformed(
            input,
            len,
            "volume ends inside the header padding",
        ));
    }
    let mut padding = vec![0u8; (data_offset - u64::from(header_len)) as usize];
    source.read_exact_at(&mut padding, header_len.into())?;
    if let Some(at) = padding.iter().position(|&b| b != 0) {
        return Err(Error::malformed(
            input,
            u64::from(header_len) + at as u64,
            "header padding is not zero",
        ));
    }
    Ok((header, len))
}

/// Configures opening: keys to try and limits on what a header may ask.
///
/// `Clone`: its identities and passphrase wipe themselves in every copy.
#[derive(Clone, Debug, Default)]
pub struct Opener {
    identities: Vec<Identity>,
    passphrase: Option<Passphrase>,
    limits: Limits,
    threads: Option<usize>,
}

/// The outcome of verifying one volume on its own.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeReport {
    /// Volume number, from 1 (authenticated).
    pub volume: u32,
    /// Id of the set the volume belongs to.
    pub set_id: [u8; SET_ID_LEN],
    /// SHA-256 of the header's set part (SPEC.md §3.2), authenticated.
    /// Volumes open as one set only if this is equal (SPEC.md §7.2): two
    /// that share a set id but differ here (other stanzas, say) do not.
    pub set_digest: [u8; 32],
    /// Chunks in the volume, all authenticated.
    pub chunks: u64,
    /// Payload bytes the volume carries (on volume 1 these include the
    /// 4-byte payload prefix, SPEC.md §6.7).
    pub plaintext_len: u64,
    /// Whether this is the last volume of its set.
    pub last_in_set: bool,
}

impl Opener {
    /// An opener with no keys and default [`Limits`].
    pub fn new() -> Self {
        Opener::default()
    }

    /// Adds an identity to try.
    pub fn identity(mut self, identity: impl Into<Identity>) -> Self {
        self.identities.push(identity.into());
        self
    }

    /// Adds several identities to try: [`Identity`]s, or keys of one kind.
    pub fn identities(mut self, identities: impl IntoIterator<Item = impl Into<Identity>>) -> Self {
        self.identities
            .extend(identities.into_iter().map(Into::into));
        self
    }

    /// Sets the passphrase to try.
    pub fn passphrase(mut self, passphrase: Passphrase) -> Self {
        self.passphrase = Some(passphrase);
        self
    }

    /// Threads that authenticate chunks in [`OpenReader::copy_to`]
    /// (default: all cores; 1 starts none).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// Replaces the limits on untrusted headers.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    fn unlock(&self, header: &Header) -> Result<Unlocked, Error> {
        keys::unlock(
            header,
            &self.identities,
            self.passphrase.as_ref(),
            &self.limits,
        )
    }

    /// Opens a set from its volumes, given in any order.
    ///
    /// Before returning, every header is authenticated, the set is checked
    /// to be whole (no volume missing, duplicated or foreign), and the last
    /// chunk is authenticated, so [`OpenReader::len`] is known. Chunks are
    /// authenticated as they are read; no byte is returned before its chunk
    /// has been.
    ///
    /// # Errors
    ///
    /// Any header error of [`inspect`]; [`Error::NoMatchingKey`],
    /// [`Error::WrongPassphrase`], [`Error::HeaderDamaged`],
    /// [`Error::ForeignVolume`], [`Error::DuplicateVolume`],
    /// [`Error::VolumeMissing`], [`Error::Truncated`],
    /// [`Error::TrailingData`], [`Error::Unauthenticated`] (last chunk or
    /// chunk 0, which holds the payload prefix), [`Error::MalformedChunk`],
    /// [`Error::MalformedPayload`].
    pub fn open<S: VolumeSource>(&self, volumes: Vec<S>) -> Result<OpenReader<S>, Error> {
        if volumes.is_empty() {
            return Err(Error::NoVolumes);
        }
        let threads = self.threads.unwrap_or_else(pipeline::default_threads);
        if threads == 0 {
            return Err(Error::option("0 threads"));
        }
        let mut headers = Vec::with_capacity(volumes.len());
        for (index, volume) in volumes.iter().enumerate() {
            headers.push(read_header(volume, index + 1)?);
        }
        let (reference, Unlocked { file_key, warnings }) = self.unlock_set(&headers)?;
        let reference_set = headers[reference].0.set_bytes().to_vec();
        let set_id = headers[reference].0.set.set_id;
        for (index, (header, _)) in headers.iter().enumerate() {
            if header.set.set_id != set_id {
                return Err(Error::ForeignVolume {
                    input: index + 1,
                    volume: header.volume,
                });
            }
            file_key.verify_header(header)?;
            if header.set_bytes() != reference_set.as_slice() {
                return Err(Error::HeaderDamaged {
                    volume: header.volume,
                });
            }
        }

        // Order by the authenticated volume numbers: no gap, no duplicate.
        // Geometry is per volume: optional extensions may give volumes
        // different header lengths H (SPEC.md §3.4).
        let mut ordered: Vec<(u32, usize, u64, Geometry, S)> = headers
            .iter()
            .zip(volumes)
            .enumerate()
            .map(|(index, ((header, len), volume))| {
                (header.volume, index + 1, *len, header.geometry(), volume)
            })
            .collect();
        ordered.sort_by_key(|&(number, input, ..)| (number, input));
        for (expected, pair) in (1u32..).zip(ordered.windows(2)) {
            if pair[0].0 == pair[1].0 {
                return Err(Error::DuplicateVolume {
                    volume: pair[0].0,
                    first: pair[0].1,
                    second: pair[1].1,
                });
            }
            if pair[0].0 != expected {
                return Err(Error::VolumeMissing { volume: expected });
            }
        }
        let last = ordered.len() - 1;
        let last_number = ordered[last].0;
        if last_number as usize != ordered.len() {
            return Err(Error::VolumeMissing {
                volume: (ordered.len() as u32).min(last_number),
            });
        }
        for (number, _, len, geometry, _) in &ordered[..last] {
            check_full_volume(geometry, *number, *len)?;
        }

        let cipher = ChunkCipher::new(&file_key.payload_key(&set_id));
        let (number, len, geometry) = (ordered[last].0, ordered[last].2, ordered[last].3);
        let final_chunk = LastChunk::locate(&geometry, number, len)?;
        // Wiped on every path out, including the errors below, which may
        // come after the chunk opened: it then holds plaintext.
        let mut buf = Zeroizing::new(Vec::with_capacity(geometry.chunk_len()));
        match final_chunk.authenticate(&cipher, &geometry, &ordered[last].4, &mut buf)? {
            ChunkFlag::EndOfSet => {}
            _ => {
                return Err(Error::VolumeMissing {
                    volume: number.saturating_add(1),
                });
            }
        }
        let final_plain = final_chunk.len - TAG_LEN;
        let payload_len = final_chunk.chunk * geometry.plain_len() as u64 + final_plain as u64;
        buf.zeroize();
        let data_offsets = ordered.iter().map(|entry| entry.3.data_offset).collect();
        let mut reader = OpenReader {
            set: ChunkSet {
                volumes: ordered.into_iter().map(|(.., volume)| volume).collect(),
                data_offsets,
                geometry,
                cipher,
                final_chunk: final_chunk.chunk,
                final_chunk_len: final_chunk.len,
            },
            set_id,
            threads,
            kind: PayloadKind::Stream,
            start: 0,
            len: 0,
            pos: 0,
            buf,
            buffered: None,
            warnings,
        };
        // The payload prefix (SPEC.md §6.7): chunk 0 authenticates before
        // any of it is looked at, and stays buffered for the first read.
        reader.load(0)?;
        let (kind, start) = format::parse_payload_prefix(&reader.buf, payload_len)?;
        reader.kind = kind;
        reader.start = start;
        reader.len = payload_len - start;
        Ok(reader)
    }

    /// Opens a set of one volume.
    ///
    /// # Errors
    ///
    /// As [`Opener::open`].
    pub fn open_one<S: VolumeSource>(&self, volume: S) -> Result<OpenReader<S>, Error> {
        self.open(vec![volume])
    }

    /// Finds the file key, trying each distinct set header (at most three,
    /// the most common first) so that one damaged header among several
    /// volumes is named as such rather than hiding the key.
    fn unlock_set(&self, headers: &[(Header, u64)]) -> Result<(usize, Unlocked), Error> {
        let mut candidates: Vec<(usize, usize)> = Vec::new();
        for (index, (header, _)) in headers.iter().enumerate() {
            if candidates
                .iter()
                .any(|&(seen, _)| headers[seen].0.set_bytes() == header.set_bytes())
            {
                continue;
            }
            let same_set = headers
                .iter()
                .filter(|(other, _)| other.set.set_id == header.set.set_id)
                .count();
            candidates.push((index, same_set));
        }
        // Stable: equal counts keep input order.
        candidates.sort_by_key(|&(_, same_set)| std::cmp::Reverse(same_set));
        let mut first_error = None;
        for &(index, _) in candidates.iter().take(3) {
            match self.unlock(&headers[index].0) {
                Ok(unlocked) => return Ok((index, unlocked)),
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        Err(first_error.unwrap_or(Error::NoVolumes))
    }

    /// Authenticates every chunk of one volume without the rest of its set,
    /// for checking a disc right after burning it. Chunks are authenticated
    /// on the opener's threads.
    ///
    /// # Errors
    ///
    /// As [`Opener::open`], for this volume alone; a full volume that ends
    /// with an end-of-volume chunk is intact and reported with
    /// `last_in_set: false`.
    pub fn verify_volume<S: VolumeSource + Sync + ?Sized>(
        &self,
        volume: &S,
    ) -> Result<VolumeReport, Error> {
        let (header, len) = read_header(volume, 1)?;
        let file_key = self.unlock(&header)?.file_key;
        self.verify_with(volume, &header, len, &file_key)
    }

    /// A verifier for several volumes that unlocks each distinct set header
    /// once: with a passphrase, one Argon2id run per set, not per volume.
    pub fn volume_verifier(&self) -> VolumeVerifier<'_> {
        VolumeVerifier {
            opener: self,
            keys: Vec::new(),
        }
    }

    fn verify_with<S: VolumeSource + Sync + ?Sized>(
        &self,
        volume: &S,
        header: &Header,
        len: u64,
        file_key: &FileKey,
    ) -> Result<VolumeReport, Error> {
        let geometry = header.geometry();
        let cipher = ChunkCipher::new(&file_key.payload_key(&header.set.set_id));
        let last = LastChunk::locate(&geometry, header.volume, len)?;
        let first = geometry.first_chunk(header.volume);
        // Wiped on drop too: an error after the chunk opened leaves plaintext.
        let mut buf = Zeroizing::new(Vec::with_capacity(geometry.chunk_len()));
        // The last chunk first, as `open` does, so that trailing bytes and
        // cuts are named as such rather than as a failed interior chunk.
        let flag = last.authenticate(&cipher, &geometry, volume, &mut buf)?;
        buf.zeroize();
        if last.chunk > first {
            let open = |chunk: u64, buf: &mut [u8]| {
                let (_, offset) = geometry.locate(chunk);
                let buf = &mut buf[..geometry.chunk_len()];
                volume.read_exact_at(buf, offset)?;
                if cipher.open(chunk, ChunkFlag::Interior, buf) {
                    Ok(geometry.plain_len())
                } else {
                    Err(Error::Unauthenticated {
                        chunk,
                        volume: header.volume,
                        offset,
                    })
                }
            };
            let interior = pipeline::ChunkRange {
                first,
                last: last.chunk - 1,
                skip: 0,
                len: (last.chunk - first) * geometry.plain_len() as u64,
            };
            let threads = self
                .threads
                .unwrap_or_else(pipeline::default_threads)
                .max(1);
            pipeline::open_range(&geometry, threads, interior, &open, &mut io::sink())?;
        }
        let chunks = last.chunk - first + 1;
        Ok(VolumeReport {
            volume: header.volume,
            set_id: header.set.set_id,
            set_digest: Sha256::digest(header.set_bytes()).into(),
            chunks,
            plaintext_len: (chunks - 1) * geometry.plain_len() as u64 + (last.len - TAG_LEN) as u64,
            last_in_set: flag == ChunkFlag::EndOfSet,
        })
    }
}

/// Verifies volumes one at a time, remembering the file key of each set
/// header it has unlocked; see [`Opener::volume_verifier`].
pub struct VolumeVerifier<'a> {
    opener: &'a Opener,
    /// Set part of a header, and the file key it unlocked to.
    keys: Vec<(Vec<u8>, FileKey)>,
}

impl fmt::Debug for VolumeVerifier<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VolumeVerifier")
            .field("sets", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl VolumeVerifier<'_> {
    /// As [`Opener::verify_volume`], reusing keys already found.
    ///
    /// # Errors
    ///
    /// As [`Opener::verify_volume`].
    pub fn verify<S: VolumeSource + Sync + ?Sized>(
        &mut self,
        volume: &S,
    ) -> Result<VolumeReport, Error> {
        let (header, len) = read_header(volume, 1)?;
        let known = self
            .keys
            .iter()
            .position(|(set_bytes, _)| set_bytes.as_slice() == header.set_bytes());
        let at = match known {
            Some(at) => {
                // Same set part, so the same file key: a failing MAC is damage.
                self.keys[at].1.verify_header(&header)?;
                at
            }
            None => {
                let file_key = self.opener.unlock(&header)?.file_key;
                self.keys.push((header.set_bytes().to_vec(), file_key));
                self.keys.len() - 1
            }
        };
        self.opener
            .verify_with(volume, &header, len, &self.keys[at].1)
    }
}

/// A volume other than the last must hold exactly K chunks.
fn check_full_volume(geometry: &Geometry, volume: u32, len: u64) -> Result<(), Error> {
    let full = geometry.full_volume_len().unwrap_or(len);
    if len < full {
        return Err(Error::Truncated {
            volume,
            length: len,
        });
    }
    if len > full {
        return Err(Error::TrailingData {
            volume,
            offset: full,
        });
    }
    Ok(())
}

/// The physically last chunk of a volume, found from the volume's length.
struct LastChunk {
    volume: u32,
    volume_len: u64,
    /// Global index.
    chunk: u64,
    /// Ciphertext length, tag included; may be below a tag if truncated.
    len: usize,
}

impl LastChunk {
    fn locate(geometry: &Geometry, volume: u32, volume_len: u64) -> Result<Self, Error> {
        let data = volume_len - geometry.data_offset;
        let chunk_len = geometry.chunk_len() as u64;
        if data == 0 {
            return Err(Error::Truncated {
                volume,
                length: volume_len,
            });
        }
        if let Some(full) = geometry.full_volume_len()
            && volume_len > full
        {
            return Err(Error::TrailingData {
                volume,
                offset: full,
            });
        }
        let chunks = data.div_ceil(chunk_len);
        let chunk = geometry
            .first_chunk(volume)
            .checked_add(chunks - 1)
            .ok_or(Error::CounterExhausted)?;
        Ok(LastChunk {
            volume,
            volume_len,
            chunk,
            len: (data - (chunks - 1) * chunk_len) as usize,
        })
    }

    /// Authenticates the last chunk as end of set or end of volume, and
    /// otherwise names what is wrong: cut short, trailing bytes, or damage.
    fn authenticate<S: VolumeSource + ?Sized>(
        &self,
        cipher: &ChunkCipher,
        geometry: &Geometry,
        source: &S,
        buf: &mut Vec<u8>,
    ) -> Result<ChunkFlag, Error> {
        let (_, offset) = geometry.locate(self.chunk);
        let truncated = Error::Truncated {
            volume: self.volume,
            length: self.volume_len,
        };
        let mut try_open = |chunk: u64, len: usize, offset: u64, flag: ChunkFlag| {
            buf.resize(len, 0);
            source
                .read_exact_at(buf, offset)
                .map(|()| cipher.open(chunk, flag, buf))
        };
        if self.len >= TAG_LEN {
            if try_open(self.chunk, self.len, offset, ChunkFlag::EndOfSet)? {
                if self.len == TAG_LEN && self.chunk != 0 {
                    return Err(Error::MalformedChunk {
                        chunk: self.chunk,
                        volume: self.volume,
                        reason: "empty final chunk after data",
                    });
                }
                return Ok(ChunkFlag::EndOfSet);
            }
            if geometry.chunks_per_volume != 0
                && try_open(self.chunk, self.len, offset, ChunkFlag::EndOfVolume)?
            {
                let at_volume_end =
                    geometry.ends_volume(self.chunk) && self.len == geometry.chunk_len();
                if !at_volume_end {
                    return Err(Error::MalformedChunk {
                        chunk: self.chunk,
                        volume: self.volume,
                        reason: "end-of-volume chunk before the volume is full",
                    });
                }
                return Ok(ChunkFlag::EndOfVolume);
            }
            if try_open(self.chunk, self.len, offset, ChunkFlag::Interior)? {
                return Err(truncated);
            }
        }
        if self.chunk > geometry.first_chunk(self.volume) {
            let previous = self.chunk - 1;
            let (_, previous_offset) = geometry.locate(previous);
            if try_open(
                previous,
                geometry.chunk_len(),
                previous_offset,
                ChunkFlag::EndOfSet,
            )? {
                return Err(Error::TrailingData {
                    volume: self.volume,
                    offset,
                });
            }
        }
        if self.len < TAG_LEN {
            return Err(truncated);
        }
        Err(Error::Unauthenticated {
            chunk: self.chunk,
            volume: self.volume,
            offset,
        })
    }
}

/// The content of an opened set; see [`Opener::open`].
///
/// Positions, [`len`](Self::len), `Read`, `Seek`, [`copy_to`](Self::copy_to)
/// and [`locate`](Self::locate) all count the payload's *content*: the
/// bytes after its prefix (SPEC.md §6.7), which are exactly the bytes that
/// were sealed. [`kind`](Self::kind) says what they are.
///
/// Reads and seeks cost at most one chunk decryption; a chunk that fails
/// authentication yields an `io::Error` wrapping
/// [`Error::Unauthenticated`] (recover it with [`Error::from_io`]) and no
/// byte of it.
pub struct OpenReader<S> {
    set: ChunkSet<S>,
    set_id: [u8; SET_ID_LEN],
    threads: usize,
    kind: PayloadKind,
    /// Payload offset of the content: the prefix length.
    start: u64,
    /// Content length.
    len: u64,
    /// Content position.
    pos: u64,
    /// The plaintext of chunk `buffered` (after its tag is dropped). Wiped on drop.
    buf: Zeroizing<Vec<u8>>,
    buffered: Option<u64>,
    warnings: Vec<Warning>,
}

impl<S> fmt::Debug for OpenReader<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenReader")
            .field("volumes", &self.set.volumes.len())
            .field("geometry", &self.set.geometry)
            .field("kind", &self.kind)
            .field("len", &self.len)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl<S: VolumeSource> OpenReader<S> {
    /// Content length (the bytes sealed), known because the last chunk
    /// authenticated.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the content is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What the payload holds, from its authenticated prefix: a stream, or
    /// an archive to read with [`Payload::detect`](crate::archive::Payload::detect).
    pub fn kind(&self) -> PayloadKind {
        self.kind
    }

    /// What opening found worth telling the user though the set opened,
    /// such as a passphrase stanza with weak Argon2id costs.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Number of volumes in the set.
    pub fn volume_count(&self) -> usize {
        self.set.volumes.len()
    }

    /// Id of the set.
    pub fn set_id(&self) -> &[u8; SET_ID_LEN] {
        &self.set_id
    }

    /// Ciphertext chunk size.
    pub fn chunk_size(&self) -> usize {
        self.set.geometry.chunk_len()
    }

    /// Volume and byte offset of the chunk holding content offset `pos`,
    /// for reports on damaged data.
    pub fn locate(&self, pos: u64) -> (u32, u64) {
        let at = pos.saturating_add(self.start);
        self.set
            .chunk_position(at / self.set.geometry.plain_len() as u64)
    }

    /// Content offsets that chunk `chunk` holds (empty past the end; chunk
    /// 0 starts with the payload prefix, which is not content), e.g. to
    /// know which bytes a failed chunk stands for.
    pub fn chunk_span(&self, chunk: u64) -> std::ops::Range<u64> {
        let plain_len = self.set.geometry.plain_len() as u64;
        let payload_end = self.start + self.len;
        let at = |chunk: u64| {
            chunk
                .saturating_mul(plain_len)
                .clamp(self.start, payload_end)
                - self.start
        };
        at(chunk)..at(chunk.saturating_add(1))
    }

    /// Gives the volumes back.
    pub fn into_volumes(self) -> Vec<S> {
        self.set.volumes
    }

    fn load(&mut self, chunk: u64) -> Result<(), Error> {
        self.buffered = None;
        self.buf.resize(self.set.geometry.chunk_len(), 0);
        match self.set.open_chunk(chunk, &mut self.buf) {
            Ok(plain) => {
                self.buf.truncate(plain);
                self.buffered = Some(chunk);
                Ok(())
            }
            Err(err) => {
                self.buf.zeroize();
                Err(err)
            }
        }
    }
}

impl<S: VolumeSource + Sync> OpenReader<S> {
    /// Writes the plaintext from the current position to `out`, at most
    /// `limit` bytes (`u64::MAX` for all), and moves the position past it.
    ///
    /// This is the fast path for whole payloads: chunks are read and
    /// authenticated on the opener's threads, about 1 MiB at a time, and
    /// written in order in large blocks. A chunk that fails authentication
    /// stops the copy after everything before it was written; nothing of
    /// it is.
    ///
    /// # Errors
    ///
    /// [`Error::Unauthenticated`] for a damaged chunk, [`Error::Io`] for
    /// errors reading volumes or writing `out`.
    pub fn copy_to<W: Write + ?Sized>(&mut self, out: &mut W, limit: u64) -> Result<u64, Error> {
        if self.pos >= self.len || limit == 0 {
            return Ok(0);
        }
        let len = limit.min(self.len - self.pos);
        let plain_len = self.set.geometry.plain_len() as u64;
        let at = self.start + self.pos;
        let first = at / plain_len;
        let last = (at + len - 1) / plain_len;
        if last - first < 2 {
            // A piece within one or two chunks, such as a small archive
            // entry: the `Read` path, whose buffered chunk serves the next
            // small piece too, costs less than starting a pipeline.
            return self.copy_small(out, len);
        }
        let skip = (at % plain_len) as usize;
        let set = &self.set;
        let open = |chunk: u64, buf: &mut [u8]| set.open_chunk(chunk, buf);
        let range = pipeline::ChunkRange {
            first,
            last,
            skip,
            len,
        };
        let result = pipeline::open_range(&set.geometry, self.threads, range, &open, out);
        // On failure the position is left where the copy started.
        let written = result?;
        self.pos += written;
        Ok(written)
    }
}

impl<S: VolumeSource> OpenReader<S> {
    /// Copies `len` bytes through the buffered chunk.
    fn copy_small<W: Write + ?Sized>(&mut self, out: &mut W, len: u64) -> Result<u64, Error> {
        let start = self.pos;
        let mut written = 0;
        while written < len {
            let plain_len = self.set.geometry.plain_len() as u64;
            let at = self.start + self.pos;
            let chunk = at / plain_len;
            if self.buffered != Some(chunk)
                && let Err(err) = self.load(chunk)
            {
                self.pos = start;
                return Err(err);
            }
            let within = (at % plain_len) as usize;
            let n = ((self.buf.len() - within) as u64).min(len - written) as usize;
            if let Err(err) = out.write_all(&self.buf[within..within + n]) {
                self.pos = start;
                return Err(Error::Io(err));
            }
            self.pos += n as u64;
            written += n as u64;
        }
        Ok(written)
    }
}

/// The volumes of an opened set and what is needed to open any chunk.
struct ChunkSet<S> {
    volumes: Vec<S>,
    /// Padded header length H of each volume, volume 1 first.
    data_offsets: Vec<u64>,
    geometry: Geometry,
    cipher: ChunkCipher,
    final_chunk: u64,
    final_chunk_len: usize,
}

impl<S: VolumeSource> ChunkSet<S> {
    /// Volume and byte offset of a chunk, with that volume's own H.
    fn chunk_position(&self, chunk: u64) -> (u32, u64) {
        let (volume, offset) = self.geometry.locate(chunk);
        let data_offset = self
            .data_offsets
            .get(volume as usize - 1)
            .copied()
            .unwrap_or(self.geometry.data_offset);
        (volume, offset - self.geometry.data_offset + data_offset)
    }

    fn flag(&self, chunk: u64) -> ChunkFlag {
        if chunk == self.final_chunk {
            ChunkFlag::EndOfSet
        } else if self.geometry.ends_volume(chunk) {
            ChunkFlag::EndOfVolume
        } else {
            ChunkFlag::Interior
        }
    }

    /// Reads chunk `chunk` into `buf` (at least C bytes), authenticates it
    /// in place and returns the length of its plaintext at `buf[..n]`.
    fn open_chunk(&self, chunk: u64, buf: &mut [u8]) -> Result<usize, Error> {
        let (volume, offset) = self.chunk_position(chunk);
        let len = if chunk == self.final_chunk {
            self.final_chunk_len
        } else {
            self.geometry.chunk_len()
        };
        let buf = &mut buf[..len];
        self.volumes[volume as usize - 1].read_exact_at(buf, offset)?;
        if !self.cipher.open(chunk, self.flag(chunk), buf) {
            return Err(Error::Unauthenticated {
                chunk,
                volume,
                offset,
            });
        }
        Ok(len - TAG_LEN)
    }
}

impl<S: VolumeSource> Read for OpenReader<S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || out.is_empty() {
            return Ok(0);
        }
        let plain_len = self.set.geometry.plain_len() as u64;
        let at = self.start + self.pos;
        let chunk = at / plain_len;
        let within = (at % plain_len) as usize;
        if self.buffered != Some(chunk) {
            self.load(chunk)?;
        }
        let n = out.len().min(self.buf.len() - within);
        out[..n].copy_from_slice(&self.buf[within..within + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<S: VolumeSource> Seek for OpenReader<S> {
    fn seek(&mut self, target: SeekFrom) -> io::Result<u64> {
        let (base, delta) = match target {
            SeekFrom::Start(offset) => {
                self.pos = offset;
                return Ok(offset);
            }
            SeekFrom::End(delta) => (self.len, delta),
            SeekFrom::Current(delta) => (self.pos, delta),
        };
        match base.checked_add_signed(delta) {
            Some(pos) => {
                self.pos = pos;
                Ok(pos)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start or past u64",
            )),
        }
    }
}

impl Header {
    fn set_bytes(&self) -> &[u8] {
        &self.bytes[self.set_bytes.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::X25519Identity;
    use crate::volumes::MemorySink;

    fn seal(
        identity: &X25519Identity,
        data: &[u8],
        chunk: usize,
        volume: Option<u64>,
    ) -> Vec<Vec<u8>> {
        let mut sealer = Sealer::new()
            .recipient(identity.to_public())
            .chunk_size(chunk);
        if let Some(size) = volume {
            sealer = sealer.volume_size(size);
        }
        let mut writer = sealer.seal(MemorySink::new()).expect("seal");
        writer.write_all(data).expect("write");
        writer.finish().expect("finish").into_volumes()
    }

    fn open(identity: X25519Identity, volumes: Vec<Vec<u8>>) -> Result<Vec<u8>, Error> {
        let mut reader = Opener::new().identity(identity).open(volumes)?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out).map_err(Error::from_io)?;
        Ok(out)
    }

    fn same_identity(identity: &X25519Identity) -> X25519Identity {
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
        assert!(Sealer::new().seal(MemorySink::new()).is_err());
        for chunk in [0, 2048, 4095, 3 * 4096, 32 << 20] {
            let sealer = Sealer::new()
                .recipient(identity.to_public())
                .chunk_size(chunk);
            assert!(matches!(
                sealer.seal(MemorySink::new()),
                Err(Error::InvalidOption { .. })
            ));
        }
        let tiny = Sealer::new()
            .recipient(identity.to_public())
            .volume_size(4096);
        assert!(matches!(
            tiny.seal(MemorySink::new()),
            Err(Error::InvalidOption { .. })
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
            assert!(matches!(
                open(same_identity(&identity), volumes),
                Err(Error::Truncated { volume: 1, .. })
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
                        .insecure_deterministic_seed([9; 32]);
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
}
