//! Opening a set: [`Opener`] (keys and limits) assembles the volumes given
//! in any order into one set (SPEC.md §7.2) and hands out an [`OpenReader`]
//! (`Read + Seek`) over its content (§7.3).

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};

use zeroize::{Zeroize, Zeroizing};

use crate::damage::{self, ChunkPlace, Damage, DamageMap};
use crate::error::{Error, Location, OptionError, Volume};
use crate::format::{self, ChunkFlag, Geometry, Header, PayloadKind, SET_ID_LEN, TAG_LEN};
use crate::header::{read_header, read_trailer};
use crate::keys::{self, Identity, Limits, Passphrase, PluginSettings, Unlocked, Warning};
use crate::last_chunk::{LastChunk, check_full_volume};
use crate::manifest::{self, Manifest, PADDING_LEN_FIELD};
use crate::open_repair::{RepairSettings, VolumeRepair, VolumeSlot, is_repairable_damage};
use crate::pipeline;
use crate::sign::{AllowedSigners, SignerKey};
use crate::signature_check::{self, SetPosition, SignatureStatus, TrustedSigners};
use crate::stream::ChunkCipher;
use crate::trailer::Trailer;
use crate::volumes::{VolumeSource, location};

/// Configures opening: keys to try and limits on what a header may ask.
///
/// `Clone`: its identities and passphrase wipe themselves in every copy.
#[derive(Clone, Debug, Default)]
pub struct Opener {
    identities: Vec<Identity>,
    passphrase: Option<Passphrase>,
    limits: Limits,
    threads: Option<usize>,
    plugins: PluginSettings,
    /// Signers one of which must have signed the set; none: not checked.
    signers: TrustedSigners,
    /// Whether damaged volumes with parity are repaired on the fly.
    repair: RepairSettings,
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

    /// Threads that authenticate chunks in [`OpenReader::copy_to`], the
    /// calling thread included (default: all cores; with n, n − 1 workers
    /// start, and none for 1 or a range of one batch).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// The user interface plugin identities may ask for a PIN, a touch or
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

    /// Requires the set to be signed by `signer` (or another required
    /// signer): repeatable. Opening then fails closed, before any plaintext
    /// is released, if the set is unsigned ([`Error::Unsigned`]), names
    /// no required signer ([`Error::WrongSigner`]), or a volume's
    /// signature is missing, bad, or over a statement that does not
    /// describe the volume ([`Error::BadSignature`]); and every chunk is
    /// checked against the signed digest table before it is decrypted, so
    /// a co-recipient who knows the file key cannot substitute one
    /// ([`Error::DigestMismatch`]). A set whose last signed volume is
    /// missing is [`Error::VolumeMissing`].
    pub fn require_signer(mut self, signer: SignerKey) -> Self {
        self.signers.add(signer);
        self
    }

    /// Requires one of the keys of a signer file (`allowed_signers`), as
    /// [`require_signer`](Self::require_signer); the principals of the key
    /// that signed are reported by [`OpenReader::signature`].
    pub fn require_allowed_signers(mut self, file: &AllowedSigners) -> Self {
        self.signers.add_allowed(file);
        self
    }

    /// The required signers (empty: signatures are not checked).
    pub fn required_signers(&self) -> &TrustedSigners {
        &self.signers
    }

    /// Whether a damaged volume that carries parity (SPEC.md §16) is
    /// repaired on the fly (default: yes; SPEC.md §7.8). Once a read of a
    /// volume fails (an unreadable sector, a chunk that fails
    /// authentication, a header or trailer that fails its check), the
    /// whole volume is repaired from its parity into a scratch file and
    /// read from there; chunks are authenticated from the copy as from any
    /// volume. [`OpenReader::repairs`] says what was repaired. Off, damage
    /// is an error at once, as for volumes without parity.
    pub fn repair(mut self, repair: bool) -> Self {
        self.repair.enabled = repair;
        self
    }

    /// The directory of the scratch copies of repaired volumes (default:
    /// [`std::env::temp_dir`]). A copy is as large as its volume; it is
    /// unlinked as it is created, so nothing is left there.
    pub fn scratch_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.repair.scratch_dir = Some(dir.into());
        self
    }

    /// Whether [`repair`](Self::repair) is on.
    pub(crate) fn repair_settings(&self) -> &RepairSettings {
        &self.repair
    }

    /// Replaces the limits on untrusted headers.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The threads asked for, or all cores.
    pub(crate) fn thread_count(&self) -> usize {
        self.threads.unwrap_or_else(pipeline::default_threads)
    }

    /// Unlocks one header with the opener's keys (SPEC.md §4.4).
    pub(crate) fn unlock(&self, header: &Header) -> Result<Unlocked, Error> {
        keys::unlock(
            header,
            &self.identities,
            self.passphrase.as_ref(),
            &self.plugins,
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
    /// Any header error of [`inspect`](crate::inspect); [`Error::NoMatchingKey`],
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
        let threads = self.thread_count();
        if threads == 0 {
            return Err(Error::option(OptionError::NoThreads));
        }
        // Each volume in a slot that repairs it once damage shows (§7.8).
        let volumes: Vec<VolumeSlot<S>> = volumes
            .into_iter()
            .enumerate()
            .map(|(index, source)| VolumeSlot::new(source, index + 1, self.repair.clone()))
            .collect();
        let mut headers = Vec::with_capacity(volumes.len());
        for (index, volume) in volumes.iter().enumerate() {
            headers.push(volume.mending(|| read_header(volume, index + 1))?);
        }
        let (reference, Unlocked { file_key, warnings }) = self.unlock_set(&headers)?;
        let reference_set = headers[reference].0.set_bytes().to_vec();
        let set_id = headers[reference].0.set.set_id;
        for (index, volume) in volumes.iter().enumerate() {
            if headers[index].0.set.set_id != set_id {
                let header = &headers[index].0;
                return Err(Error::ForeignVolume {
                    at: header.origin.clone(),
                    volume: header.volume,
                });
            }
            if file_key.verify_header(&headers[index].0).is_err() {
                // A header that fails its MAC is damage: read again from
                // the repaired volume.
                headers[index] = volume.mending(|| {
                    let read = read_header(volume, index + 1)?;
                    file_key.verify_header(&read.0)?;
                    Ok(read)
                })?;
            }
            let header = &headers[index].0;
            if header.set_bytes() != reference_set.as_slice() {
                return Err(header.damaged());
            }
            volume.set_number(header.volume);
        }

        // 4a. Trailers, in volume order, now that the numbers are
        // authenticated: E stands for each volume's length from here on.
        let mut ordered = assemble(&headers, volumes)?;
        for volume in &mut ordered {
            let header = &mut headers[volume.input - 1].0;
            let at = Location::volume(volume.number).name(volume.origin.name.clone());
            let (source, len) = (&volume.source, volume.len);
            let (len, read) = source.mending(|| {
                let mut read = header.clone();
                Ok((read_trailer(source, &mut read, len, &at)?, read))
            })?;
            *header = read;
            volume.len = len;
        }
        if ordered.is_empty() {
            return Err(Error::NoVolumes);
        }
        // 4b. Signatures, before any chunk is decrypted.
        let signers = headers[reference].0.set.signers.clone();
        let (signature, checks) = self.check_signatures(&headers, &ordered)?;
        let Some((last, before)) = ordered.split_last() else {
            return Err(Error::NoVolumes);
        };
        for volume in before {
            let name = volume.origin.name.as_deref();
            check_full_volume(&volume.geometry, volume.number, volume.len, name)?;
        }

        let cipher = ChunkCipher::new(&file_key.payload_key(&set_id));
        let (number, geometry) = (last.number, last.geometry);
        let name = last.origin.name.as_deref();
        let final_chunk = LastChunk::locate(&geometry, number, last.len, name)?;
        // Wiped on every path out, including the errors below, which may
        // come after the chunk opened: it then holds plaintext.
        let mut buf = Zeroizing::new(Vec::with_capacity(geometry.chunk_len()));
        let authenticated = last.source.mending(|| {
            if let Some(trailer) = checks.last() {
                // Only bytes the signed table vouches for reach the cipher.
                check_final_chunk(&last.source, trailer, &geometry, number, &final_chunk)?;
            }
            final_chunk.authenticate(&cipher, &geometry, &last.source, &mut buf)
        })?;
        match authenticated {
            ChunkFlag::EndOfSet => {}
            _ => {
                return Err(Error::VolumeMissing {
                    volume: number.saturating_add(1),
                });
            }
        }
        let final_plain = final_chunk.len - TAG_LEN;
        let payload_len = final_chunk.chunk * geometry.plain_len() as u64 + final_plain as u64;
        // The payload's last bytes, which hold the padding length if it is
        // padded (SPEC.md §15.2); the flag is known only from chunk 0.
        let in_final = final_plain.min(PADDING_LEN_FIELD);
        let mut tail = Zeroizing::new([0u8; PADDING_LEN_FIELD]);
        tail[PADDING_LEN_FIELD - in_final..]
            .copy_from_slice(&buf[final_plain - in_final..final_plain]);
        buf.zeroize();
        let data_offsets = ordered.iter().map(|v| v.geometry.data_offset).collect();
        let mut reader = OpenReader {
            set: ChunkSet {
                volumes: ordered.into_iter().map(|v| v.source).collect(),
                data_offsets,
                geometry,
                cipher,
                final_chunk: final_chunk.chunk,
                final_chunk_len: final_chunk.len,
                padding: payload_len..payload_len,
                content_start: format::PAYLOAD_PREFIX_LEN as u64,
                checks,
            },
            set_id,
            signature,
            signers,
            threads,
            kind: PayloadKind::Stream,
            manifest: Manifest::default(),
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
        let (kind, flags, records_len) = format::parse_payload_prefix(&reader.buf, payload_len)?;
        let parsed = manifest::parse(flags, records_len, &reader.buf, payload_len)?;
        let start = format::PAYLOAD_PREFIX_LEN as u64 + parsed.records_len;
        let mut checked = vec![0, reader.set.final_chunk];
        let tail = match parsed.padded {
            false => None,
            // A final chunk of fewer than 8 plaintext bytes leaves the rest
            // of the padding length in the chunk before it (g_f ≥ 1 then,
            // since a padded payload is at least 12 bytes long).
            true if in_final < PADDING_LEN_FIELD && payload_len >= start + 8 => {
                let before = reader.set.final_chunk - 1;
                reader.load(before)?;
                let need = PADDING_LEN_FIELD - in_final;
                let from = reader.buf.len() - need;
                tail[..need].copy_from_slice(&reader.buf[from..]);
                checked.insert(1, before);
                Some(*tail)
            }
            true => Some(*tail),
        };
        let (content_len, padding) = manifest::content_len(parsed.records_len, payload_len, tail)?;
        reader.kind = kind;
        reader.manifest = parsed.manifest;
        reader.start = start;
        reader.len = content_len;
        let padding_start = start + content_len;
        reader.set.padding = padding_start..padding_start + padding;
        reader.set.content_start = start;
        if padding > 0 {
            // Every padding byte decrypted so far must be zero: those of
            // chunk 0, of the final chunk and of the one before it if read.
            checked.dedup();
            for chunk in checked {
                reader.load(chunk)?;
            }
        }
        Ok(reader)
    }

    /// Checks every volume's signatures if signers are required (SPEC.md
    /// §7.2 step 4b) and returns what the set's signature status is, with
    /// the trailers whose tables every chunk is then checked against
    /// (volume 1 first; empty if not required).
    fn check_signatures<S: VolumeSource>(
        &self,
        headers: &[(Header, u64)],
        ordered: &[SetVolume<VolumeSlot<S>>],
    ) -> Result<(SignatureStatus, Vec<Trailer>), Error> {
        if self.signers.is_empty() {
            let signers = ordered
                .first()
                .map(|v| headers[v.input - 1].0.set.signers.clone())
                .unwrap_or_default();
            return Ok((SignatureStatus::unchecked(&signers), Vec::new()));
        }
        let mut checked = None;
        let mut trailers = Vec::with_capacity(ordered.len());
        for (index, volume) in ordered.iter().enumerate() {
            let header = &headers[volume.input - 1].0;
            let at = Location::volume(volume.number).name(volume.origin.name.clone());
            let position = match index + 1 == ordered.len() {
                true => SetPosition::Last,
                false => SetPosition::NotLast,
            };
            let result = volume.source.mending(|| {
                signature_check::check_volume(
                    &volume.source,
                    header,
                    header.trailer.as_ref(),
                    &self.signers,
                    position,
                    &at,
                )
            })?;
            checked.get_or_insert(result.signer);
            // Checked: a signed set has trailers.
            trailers.extend(header.trailer.clone());
        }
        let signer = checked.ok_or(Error::NoVolumes)?;
        let principals = self.signers.principals(&signer).map(str::to_owned);
        Ok((SignatureStatus::Checked { signer, principals }, trailers))
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
    pub(crate) fn unlock_set(&self, headers: &[(Header, u64)]) -> Result<(usize, Unlocked), Error> {
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
}

/// Refuses the final chunk, before it is decrypted, if its ciphertext does
/// not match the signed digest table (SPEC.md §7.2 step 5).
fn check_final_chunk<S: VolumeSource>(
    source: &S,
    trailer: &Trailer,
    geometry: &Geometry,
    volume: u32,
    final_chunk: &LastChunk,
) -> Result<(), Error> {
    let (_, offset) = geometry.locate(final_chunk.chunk);
    let number = Volume::Number(volume);
    let at = location(source, number)
        .byte(offset)
        .chunk(final_chunk.chunk);
    let mut chunk = vec![0u8; final_chunk.len];
    crate::volumes::read_at(source, &mut chunk, offset, number, Some(final_chunk.chunk))?;
    let local = final_chunk.chunk - geometry.first_chunk(volume);
    let chunk_len = geometry.chunk_len();
    if !crate::digest_checked_source::entry_matches(trailer, source, &at, local, chunk_len, &chunk)?
    {
        return Err(Error::DigestMismatch {
            chunk: Some(final_chunk.chunk),
            at,
        });
    }
    Ok(())
}

/// One volume of a set being assembled, with what its header says.
struct SetVolume<S> {
    /// Volume number, from 1 (authenticated).
    number: u32,
    /// Position among the volumes given, from 1, for errors.
    input: usize,
    /// Where the header was read from, for errors.
    origin: Location,
    /// Length in bytes.
    len: u64,
    /// The volume's own geometry: optional extensions may give volumes
    /// different header lengths H (SPEC.md §3.4).
    geometry: Geometry,
    source: S,
}

/// Orders authenticated volumes by their numbers and checks that they are
/// exactly 1 … n, with no gap and no duplicate (SPEC.md §7.2 step 4).
fn assemble<S>(headers: &[(Header, u64)], volumes: Vec<S>) -> Result<Vec<SetVolume<S>>, Error> {
    let mut ordered: Vec<SetVolume<S>> = headers
        .iter()
        .zip(volumes)
        .enumerate()
        .map(|(index, ((header, len), source))| SetVolume {
            number: header.volume,
            input: index + 1,
            origin: header.origin.clone(),
            len: *len,
            geometry: header.geometry(),
            source,
        })
        .collect();
    ordered.sort_by_key(|v| (v.number, v.input));
    for (expected, pair) in (1u32..).zip(ordered.windows(2)) {
        if pair[0].number == pair[1].number {
            return Err(Error::DuplicateVolume {
                volume: pair[0].number,
                at: pair[1].origin.clone(),
                first: Box::new(pair[0].origin.clone()),
            });
        }
        if pair[0].number != expected {
            return Err(Error::VolumeMissing { volume: expected });
        }
    }
    let count = ordered.len();
    if let Some(last) = ordered.last()
        && last.number as usize != count
    {
        return Err(Error::VolumeMissing {
            volume: (count as u32).min(last.number),
        });
    }
    Ok(ordered)
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
/// [`Error::Unauthenticated`] (recovered by `?` into [`Error`]) and no
/// byte of it.
pub struct OpenReader<S> {
    set: ChunkSet<VolumeSlot<S>>,
    set_id: [u8; SET_ID_LEN],
    signature: SignatureStatus,
    /// The signer block's keys, in order.
    signers: Vec<SignerKey>,
    threads: usize,
    kind: PayloadKind,
    manifest: Manifest,
    /// Payload offset of the content: the prefix and manifest length.
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

    /// Who sealed the set, as far as it was checked: with
    /// [`Opener::require_signer`], [`SignatureStatus::Checked`] (opening
    /// failed otherwise); without, the signer block's claim
    /// ([`SignatureStatus::NotChecked`]) or [`SignatureStatus::Unsigned`].
    pub fn signature(&self) -> &SignatureStatus {
        &self.signature
    }

    /// The keys the set's signer block names, in order (empty if the set
    /// is not signed); checked only if [`signature`](Self::signature) says so.
    pub fn signers(&self) -> &[SignerKey] {
        &self.signers
    }

    /// What the set's encrypted manifest says (SPEC.md §15.1): its label,
    /// creation time and note, authenticated with chunk 0.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
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

    /// Gives the volumes back, as they were given (not their repaired
    /// copies), in volume order.
    pub fn into_volumes(self) -> Vec<S> {
        self.set
            .volumes
            .into_iter()
            .map(VolumeSlot::into_original)
            .collect()
    }

    /// The volumes repaired from their parity so far (SPEC.md §7.8), in
    /// volume order: a volume is repaired when damage first shows, while
    /// the set is opened or read, so this grows as more of it is read.
    pub fn repairs(&self) -> Vec<VolumeRepair> {
        self.set
            .volumes
            .iter()
            .filter_map(VolumeSlot::repair_report)
            .collect()
    }

    /// The volumes whose repair was tried and failed, with why: no parity
    /// ([`Error::NoParity`]), more lost than it covers
    /// ([`Error::Unrecoverable`]), a scratch file that could not be
    /// written. Their damage is read as it is.
    pub fn repair_failures(&self) -> Vec<(u32, &Error)> {
        (1u32..)
            .zip(&self.set.volumes)
            .filter_map(|(number, slot)| Some((number, slot.repair_failure()?)))
            .collect()
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
    /// [`Error::Unauthenticated`] for a damaged chunk, [`Error::Read`]
    /// (with the volume, byte and chunk) for errors reading volumes,
    /// [`Error::Io`] for errors writing `out`.
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

impl<S: VolumeSource + Sync> OpenReader<S> {
    /// Writes the plaintext from the current position to the end to `out`,
    /// going on past damage: each chunk that cannot be read or does not
    /// authenticate is written as zeros of its exact plaintext length, so
    /// every later byte is at its right offset, and is reported in the map
    /// returned (the same runs [`Opener::verify_set`] finds there). Moves
    /// the position to the end.
    ///
    /// The zeros are not authenticated data: a caller that keeps the
    /// output should say which ranges they are ([`Damage::plaintext`]).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] for errors writing `out`; damage is never an error.
    pub fn salvage_to<W: Write + ?Sized>(&mut self, out: &mut W) -> Result<DamageMap, Error> {
        let mut map = DamageMap::new();
        if self.pos >= self.len {
            return Ok(map);
        }
        let plain_len = self.set.geometry.plain_len() as u64;
        let at = self.start + self.pos;
        let set = &self.set;
        let open = |chunk: u64, buf: &mut [u8]| set.open_chunk(chunk, buf);
        let plain_of = |chunk: u64| set.plain_of(chunk);
        let mut record = |chunk: u64, err: Error| {
            if let Some(mut damage) = set.place(chunk).damage(chunk, &err) {
                if matches!(damage.kind, damage::DamageKind::Unreadable { .. }) {
                    damage.unreadable = set.unreadable_in(chunk);
                }
                map.push(damage);
            }
        };
        let written = damage::open_through_damage(
            &set.geometry,
            self.threads,
            (at / plain_len, set.final_chunk),
            (at % plain_len) as usize,
            self.len - self.pos,
            &open,
            &plain_of,
            out,
            &mut record,
        )?;
        self.pos += written;
        // The buffered chunk, if any, is still authenticated plaintext.
        Ok(map)
    }
}

impl<S: VolumeSource> OpenReader<S> {
    /// The damage `err` (from reading this set) stands for, located in the
    /// set; `None` if it is not damage of a chunk.
    pub(crate) fn damage_of(&self, err: &Error) -> Option<Damage> {
        let chunk = match err {
            Error::Unauthenticated { chunk, .. } | Error::MalformedChunk { chunk, .. } => *chunk,
            Error::DigestMismatch {
                chunk: Some(chunk), ..
            } => *chunk,
            Error::Read { at, .. } => at.chunk?,
            _ => return None,
        };
        let mut damage = self.set.place(chunk).damage(chunk, err)?;
        if matches!(damage.kind, damage::DamageKind::Unreadable { .. }) {
            damage.unreadable = self.set.unreadable_in(chunk);
        }
        Some(damage)
    }

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
    /// Payload offsets of the padding zeros (SPEC.md §15.2), checked in
    /// every chunk opened; empty until the padding length is known.
    padding: std::ops::Range<u64>,
    /// Payload offset of the content, for the content offsets of damage.
    content_start: u64,
    /// With a required signer, each volume's trailer (volume 1 first): a
    /// chunk is decrypted only after it matched its signed table entry.
    checks: Vec<Trailer>,
}

impl<S: VolumeSource> ChunkSet<VolumeSlot<S>> {
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

    /// Plaintext length of chunk `chunk`.
    fn plain_of(&self, chunk: u64) -> usize {
        if chunk == self.final_chunk {
            self.final_chunk_len - TAG_LEN
        } else {
            self.geometry.plain_len()
        }
    }

    /// Where chunk `chunk` lies, for reporting damage of it.
    fn place(&self, chunk: u64) -> ChunkPlace {
        let (volume, offset) = self.chunk_position(chunk);
        let name = self
            .volumes
            .get(volume as usize - 1)
            .and_then(|source| source.name());
        let plain = self.plain_of(chunk) as u64;
        ChunkPlace {
            at: Location::volume(volume)
                .byte(offset)
                .chunk(chunk)
                .name(name),
            len: plain + TAG_LEN as u64,
            plaintext: damage::chunk_content_after(
                self.content_start,
                &self.geometry,
                chunk,
                plain,
            ),
        }
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
    /// in place and returns the length of its plaintext at `buf[..n]`; if
    /// it is damaged, once more from its volume repaired (SPEC.md §7.8).
    fn open_chunk(&self, chunk: u64, buf: &mut [u8]) -> Result<usize, Error> {
        match self.read_and_open(chunk, buf) {
            Err(err) if is_repairable_damage(&err) => {
                let (volume, _) = self.chunk_position(chunk);
                match self.volumes[volume as usize - 1].repaired() {
                    Some(_) => self.read_and_open(chunk, buf),
                    None => Err(err),
                }
            }
            other => other,
        }
    }

    /// The bytes of chunk `chunk` that cannot be read from the volume as
    /// given, first unreadable sector to last (for damage reports).
    fn unreadable_in(&self, chunk: u64) -> Option<std::ops::Range<u64>> {
        let (volume, offset) = self.chunk_position(chunk);
        let len = (self.plain_of(chunk) + TAG_LEN) as u64;
        let slot = self.volumes.get(volume as usize - 1)?;
        damage::unreadable_in(slot.original(), offset..offset + len)
    }

    /// [`open_chunk`](Self::open_chunk) from the volume as it is now.
    fn read_and_open(&self, chunk: u64, buf: &mut [u8]) -> Result<usize, Error> {
        let (volume, offset) = self.chunk_position(chunk);
        let len = if chunk == self.final_chunk {
            self.final_chunk_len
        } else {
            self.geometry.chunk_len()
        };
        let buf = &mut buf[..len];
        let source = &self.volumes[volume as usize - 1];
        let number = Volume::Number(volume);
        crate::volumes::read_at(source, buf, offset, number, Some(chunk))?;
        if let Some(trailer) = self.checks.get(volume as usize - 1) {
            let at = location(source, number).byte(offset).chunk(chunk);
            let local = chunk - self.geometry.first_chunk(volume);
            let chunk_len = self.geometry.chunk_len();
            if !crate::digest_checked_source::entry_matches(
                trailer, source, &at, local, chunk_len, buf,
            )? {
                return Err(Error::DigestMismatch {
                    chunk: Some(chunk),
                    at,
                });
            }
        }
        if !self.cipher.open(chunk, self.flag(chunk), buf) {
            return Err(Error::Unauthenticated {
                chunk,
                at: location(source, number).byte(offset).chunk(chunk),
            });
        }
        let plain = len - TAG_LEN;
        self.check_padding(chunk, &buf[..plain])?;
        Ok(plain)
    }

    /// Refuses a padding byte that is not zero among the plaintext of
    /// `chunk` (SPEC.md §15.2): only a key holder can have written it, and
    /// it would be a covert channel.
    fn check_padding(&self, chunk: u64, plain: &[u8]) -> Result<(), Error> {
        let start = chunk * self.geometry.plain_len() as u64;
        let from = self.padding.start.max(start);
        let to = self.padding.end.min(start + plain.len() as u64);
        if from >= to {
            return Ok(());
        }
        let zeros = &plain[(from - start) as usize..(to - start) as usize];
        match zeros.iter().position(|&byte| byte != 0) {
            None => Ok(()),
            Some(at) => Err(Error::MalformedPayload {
                offset: from + at as u64,
                reason: "a padding byte is not zero",
            }),
        }
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
        // The content may end inside the chunk: padding follows it.
        let left = usize::try_from(self.len - self.pos).unwrap_or(usize::MAX);
        let n = out.len().min(self.buf.len() - within).min(left);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::X25519Identity;
    use crate::seal::tests::{open, same_identity, seal};

    /// A set of four volumes of 3, 3, 3 and 1 chunks.
    fn four_volumes(identity: &X25519Identity) -> (Vec<u8>, Vec<Vec<u8>>) {
        let data: Vec<u8> = (0..10 * (4096 - TAG_LEN) - 4).map(|i| i as u8).collect();
        let volumes = seal(identity, &data, 4096, Some(2048 + 3 * 4096));
        assert_eq!(volumes.len(), 4);
        (data, volumes)
    }

    #[test]
    fn volumes_open_in_any_order() {
        let identity = X25519Identity::generate().expect("os randomness");
        let (data, volumes) = four_volumes(&identity);
        for order in [[3, 2, 1, 0], [1, 3, 0, 2]] {
            let shuffled = order.iter().map(|&i| volumes[i].clone()).collect();
            assert_eq!(
                open(same_identity(&identity), shuffled).expect("open"),
                data
            );
        }
    }

    #[test]
    fn the_assembly_names_gaps_duplicates_and_a_missing_end() {
        let identity = X25519Identity::generate().expect("os randomness");
        let (_, volumes) = four_volumes(&identity);
        let pick = |indices: &[usize]| indices.iter().map(|&i| volumes[i].clone()).collect();
        let opened = |indices: &[usize]| open(same_identity(&identity), pick(indices));
        assert!(matches!(
            opened(&[0, 2, 3]),
            Err(Error::VolumeMissing { volume: 2 })
        ));
        assert!(matches!(
            opened(&[1, 2, 3]),
            Err(Error::VolumeMissing { volume: 1 })
        ));
        assert!(matches!(
            opened(&[3, 0, 1, 2, 1]),
            Err(Error::DuplicateVolume { volume: 2, at, first })
                if at == Location::input(5) && *first == Location::input(3)
        ));
        // Volume 3 ends with an end-of-volume chunk: the set goes on.
        assert!(matches!(
            opened(&[0, 1, 2]),
            Err(Error::VolumeMissing { volume: 4 })
        ));
        // A volume cut short in the middle of the set.
        let mut cut = pick(&[0, 1, 2, 3]);
        cut[1].truncate(2048 + 2 * 4096);
        assert!(matches!(
            open(same_identity(&identity), cut),
            Err(Error::Truncated { at }) if at == Location::volume(2).byte(10240)
        ));
        assert!(matches!(
            Opener::new().open(Vec::<Vec<u8>>::new()),
            Err(Error::NoVolumes)
        ));
    }

    #[test]
    fn a_volume_of_another_set_is_foreign() {
        let identity = X25519Identity::generate().expect("os randomness");
        let (_, mut volumes) = four_volumes(&identity);
        let (_, other) = four_volumes(&identity);
        volumes[2] = other[2].clone();
        assert!(matches!(
            open(same_identity(&identity), volumes),
            Err(Error::ForeignVolume { at, volume: 3 }) if at == Location::input(3)
        ));
    }

    #[test]
    fn seeks_read_and_copy_agree_with_the_plaintext() {
        let identity = X25519Identity::generate().expect("os randomness");
        let (data, volumes) = four_volumes(&identity);
        let mut reader = Opener::new()
            .identity(same_identity(&identity))
            .threads(2)
            .open(volumes)
            .expect("open");
        assert_eq!(reader.len(), data.len() as u64);
        for (target, at) in [
            (SeekFrom::Start(5000), 5000),
            (SeekFrom::Current(-4001), 1000),
            (SeekFrom::End(-1), data.len() - 1),
            (SeekFrom::Start(0), 0),
        ] {
            assert_eq!(reader.seek(target).expect("seek"), at as u64);
            let mut byte = [0u8];
            reader.read_exact(&mut byte).expect("read");
            assert_eq!(byte[0], data[at], "at {at}");
        }
        assert!(reader.seek(SeekFrom::Current(-2)).is_err());
        reader.seek(SeekFrom::Start(100)).expect("seek");
        let mut copied = Vec::new();
        assert_eq!(
            reader.copy_to(&mut copied, u64::MAX).expect("copy"),
            data.len() as u64 - 100
        );
        assert_eq!(copied, data[100..]);
        // Past the end: nothing, and no error.
        assert_eq!(reader.copy_to(&mut copied, u64::MAX).expect("copy"), 0);
        reader.seek(SeekFrom::Start(u64::MAX)).expect("seek");
        assert_eq!(reader.read(&mut [0u8; 8]).expect("read"), 0);
    }

    #[test]
    fn chunk_positions_count_content_and_each_volume_header() {
        let identity = X25519Identity::generate().expect("os randomness");
        let (data, volumes) = four_volumes(&identity);
        let reader = Opener::new()
            .identity(same_identity(&identity))
            .open(volumes)
            .expect("open");
        let plain = (4096 - TAG_LEN) as u64;
        // Content offset 0 is payload offset 4, in chunk 0.
        assert_eq!(reader.locate(0), (1, 2048));
        assert_eq!(reader.locate(plain - 4), (1, 2048 + 4096));
        assert_eq!(reader.locate(3 * plain - 4), (2, 2048));
        assert_eq!(reader.chunk_span(0), 0..plain - 4);
        assert_eq!(reader.chunk_span(1), plain - 4..2 * plain - 4);
        assert_eq!(reader.chunk_span(9), 9 * plain - 4..data.len() as u64);
        assert_eq!(reader.chunk_span(10), data.len() as u64..data.len() as u64);
    }
}
