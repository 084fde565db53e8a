//! Byte layout of a volume (SPEC.md §3–§6): the header, its padding, and
//! where each chunk lives. Parsing here is bounded and key-free; keys are
//! tried in [`crate::keys`], chunks opened in [`crate::stream`].

use crate::error::{Error, Location};
use crate::sign::{BLOB_LEN, SignerKey};

/// Magic bytes at offset 0 of every volume: a high byte and CR LF ^Z LF, so
/// text-mode transfers and wrong files are caught at once (as PNG does).
pub(crate) const MAGIC: [u8; 8] = *b"\x89KUV\r\n\x1a\n";
/// The one format version this library writes and reads.
pub const FORMAT_VERSION: u16 = 2;
/// Volume headers are padded to a multiple of this many bytes, the sector
/// size of CDs, DVDs and BDs, so every chunk starts on a sector boundary
/// (SPEC.md §5).
pub const SECTOR: u64 = 2048;
/// Poly1305 tag length: a ciphertext chunk of C bytes carries C − 16 bytes
/// of plaintext.
pub const TAG_LEN: usize = 16;
/// HMAC-SHA-256 output length.
pub(crate) const MAC_LEN: usize = 32;
/// Length of the random set id.
pub(crate) const SET_ID_LEN: usize = 32;
/// Smallest ciphertext chunk: 2^12 = 4 KiB.
pub(crate) const MIN_CHUNK_EXP: u8 = 12;
/// Largest ciphertext chunk: 2^24 = 16 MiB.
pub(crate) const MAX_CHUNK_EXP: u8 = 24;
/// Default ciphertext chunk: 2^16 = 64 KiB, 32 CD sectors.
pub(crate) const DEFAULT_CHUNK_EXP: u8 = 16;
/// Hard upper bound on the header length L (SPEC.md §3.1).
pub(crate) const MAX_HEADER_LEN: u32 = 1 << 20;
/// Most arguments a stanza holds, its type included (the count is one byte).
pub(crate) const MAX_STANZA_ARGS: usize = 255;
/// Longest stanza argument (its length is two bytes).
pub(crate) const MAX_STANZA_ARG_LEN: usize = 65_535;
/// Longest stanza body (its length is two bytes).
pub(crate) const MAX_STANZA_BODY_LEN: usize = 65_535;
/// Offset of the first byte that is identical across all volumes of a set.
const SET_START: usize = 14;
/// Set flag: every volume ends with a trailer (SPEC.md §13).
pub(crate) const SET_FLAG_TRAILERS: u16 = 0x0001;
/// Set flag: a signer block follows the stanzas, and every trailer
/// carries a statement and one signature per signer (SPEC.md §3.2, §14).
pub(crate) const SET_FLAG_SIGNED: u16 = 0x0002;
/// The set flags this version defines.
const KNOWN_SET_FLAGS: u16 = SET_FLAG_TRAILERS | SET_FLAG_SIGNED | SET_FLAG_PARITY;
/// Set flag PARITY: every volume carries Reed–Solomon parity layers in its
/// trailer's bulk, and a u16 p (percent) follows the signer block (SPEC.md
/// §16.11).
pub(crate) const SET_FLAG_PARITY: u16 = 0x0004;
/// Most signers a set names.
pub(crate) const MAX_SIGNERS: usize = 4;
/// Fixed part before the stanzas: magic, version, L, set flags, set id,
/// chunk exponent, chunks per volume, stanza count.
const FIXED_PREFIX_LEN: usize = SET_START + 2 + SET_ID_LEN + 1 + 8 + 1;
/// Volume record without extensions: number, flags, extension length.
const VOLUME_RECORD_LEN: usize = 4 + 2 + 2;
/// The shortest possible header: one stanza with a one-byte type, no
/// further argument and no body (count, type length, type, body length).
pub(crate) const MIN_HEADER_LEN: usize =
    FIXED_PREFIX_LEN + 1 + 2 + 1 + 2 + VOLUME_RECORD_LEN + MAC_LEN;

/// One recipient stanza in age's model (SPEC.md §3.2, §4): a type, its
/// arguments, and a body. Arguments are text, kept byte for byte, so any
/// age stanza within the bounds crosses a kuvert header without loss.
#[derive(Clone)]
pub(crate) struct Stanza {
    /// Offset of the stanza within the header, for error messages; not
    /// part of equality, which compares bytes.
    pub(crate) at: u64,
    /// Argument 0: the type, matched by exact bytes (`X25519`, `argon2id`).
    pub(crate) kind: String,
    /// Arguments 1.., each 1 ..= 65,535 bytes of 0x21–0x7E.
    pub(crate) args: Vec<String>,
    /// The body, 0 ..= 65,535 bytes.
    pub(crate) body: Vec<u8>,
}

impl Stanza {
    /// Why the stanza cannot be written (SPEC.md §3.2 bounds), if it
    /// cannot: stanzas from elsewhere (a plugin, a test) are checked before
    /// they are encoded.
    pub(crate) fn unencodable(&self) -> Option<&'static str> {
        if 1 + self.args.len() > MAX_STANZA_ARGS {
            return Some("more than 255 stanza arguments");
        }
        for arg in std::iter::once(&self.kind).chain(&self.args) {
            if arg.is_empty() {
                return Some("empty stanza argument");
            }
            if arg.len() > MAX_STANZA_ARG_LEN {
                return Some("stanza argument longer than 65,535 bytes");
            }
            if !arg.bytes().all(is_vchar) {
                return Some("stanza argument has a byte outside 0x21-0x7E");
            }
        }
        if self.body.len() > MAX_STANZA_BODY_LEN {
            return Some("stanza body longer than 65,535 bytes");
        }
        None
    }

    /// Appends the stanza's bytes (SPEC.md §3.2). Callers checked
    /// [`Self::unencodable`], or built the stanza themselves.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        debug_assert_eq!(self.unencodable(), None, "stanza within bounds");
        out.push((1 + self.args.len()) as u8);
        for arg in std::iter::once(&self.kind).chain(&self.args) {
            out.extend_from_slice(&(arg.len() as u16).to_be_bytes());
            out.extend_from_slice(arg.as_bytes());
        }
        out.extend_from_slice(&(self.body.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.body);
    }

    /// Encoded length in bytes.
    pub(crate) fn encoded_len(&self) -> usize {
        let args: usize = std::iter::once(&self.kind)
            .chain(&self.args)
            .map(|arg| 2 + arg.len())
            .sum();
        1 + args + 2 + self.body.len()
    }
}

/// age's VCHAR: the printable ASCII bytes, space excluded.
fn is_vchar(byte: u8) -> bool {
    (0x21..=0x7E).contains(&byte)
}

impl PartialEq for Stanza {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.args == other.args && self.body == other.body
    }
}

impl Eq for Stanza {}

impl std::fmt::Debug for Stanza {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Arguments and bodies hold shares and wrapped keys: not secret,
        // but noise in a debug print.
        write!(
            f,
            "Stanza({}, {} arguments, {} bytes)",
            self.kind,
            self.args.len(),
            self.body.len()
        )
    }
}

/// The part of the header shared by every volume of a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SetHeader {
    /// Set flag TRAILERS: every volume ends with a trailer (SPEC.md §13).
    pub(crate) trailers: bool,
    pub(crate) set_id: [u8; SET_ID_LEN],
    pub(crate) chunk_exp: u8,
    /// Chunks in every volume but the last; 0 for an unsplit container.
    pub(crate) chunks_per_volume: u64,
    pub(crate) stanzas: Vec<Stanza>,
    /// The signer block's keys, in order; empty unless SIGNED.
    pub(crate) signers: Vec<SignerKey>,
    /// PARITY's redundancy p in percent (SPEC.md §16.11); `None` without
    /// the flag.
    pub(crate) parity: Option<u16>,
}

/// A parsed, not yet authenticated, volume header.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub(crate) set: SetHeader,
    /// Volume number, from 1 (trusted once the MAC verified).
    pub(crate) volume: u32,
    /// Where the header was read: the volume by its position among the
    /// inputs, and its source's name, for errors found later.
    pub(crate) origin: Location,
    /// Exact header bytes `0..L`, MAC included.
    pub(crate) bytes: Vec<u8>,
    /// Range of `bytes` that must be identical across the set.
    pub(crate) set_bytes: std::ops::Range<usize>,
    /// The volume's trailer, read and checked with the header when the set
    /// has the TRAILERS flag (SPEC.md §13.3).
    pub(crate) trailer: Option<crate::trailer::Trailer>,
}

impl Header {
    /// [`Error::HeaderDamaged`] for this header: where it was read, and
    /// the number it claims.
    pub(crate) fn damaged(&self) -> Error {
        Error::HeaderDamaged {
            at: self.origin.clone(),
            volume: self.volume,
        }
    }

    /// Bytes covered by the header MAC.
    pub(crate) fn mac_input(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - MAC_LEN]
    }

    /// The stored header MAC.
    pub(crate) fn mac(&self) -> &[u8] {
        &self.bytes[self.bytes.len() - MAC_LEN..]
    }

    /// The set part (SPEC.md §3.2): the bytes every volume of a set shares.
    pub(crate) fn set_bytes(&self) -> &[u8] {
        &self.bytes[self.set_bytes.clone()]
    }

    pub(crate) fn geometry(&self) -> Geometry {
        Geometry::new(
            self.set.chunk_exp,
            self.set.chunks_per_volume,
            self.bytes.len() as u64,
        )
    }
}

/// Where chunks live in a set (SPEC.md §6.3). A pure function of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) chunk_exp: u8,
    /// 0 means unsplit: one volume of any length.
    pub(crate) chunks_per_volume: u64,
    /// Padded header length H: offset of chunk 0 of every volume.
    pub(crate) data_offset: u64,
}

impl Geometry {
    pub(crate) fn new(chunk_exp: u8, chunks_per_volume: u64, header_len: u64) -> Self {
        Geometry {
            chunk_exp,
            chunks_per_volume,
            data_offset: padded_header_len(header_len),
        }
    }

    /// Ciphertext chunk length C.
    pub(crate) fn chunk_len(&self) -> usize {
        1 << self.chunk_exp
    }

    /// Plaintext bytes in a full chunk, C − 16.
    pub(crate) fn plain_len(&self) -> usize {
        self.chunk_len() - TAG_LEN
    }

    /// First global chunk index of volume `volume` (from 1).
    pub(crate) fn first_chunk(&self, volume: u32) -> u64 {
        // Parsing guarantees (volume − 1) · K fits in u64.
        u64::from(volume - 1) * self.chunks_per_volume
    }

    /// Volume number and byte offset of global chunk `chunk`.
    pub(crate) fn locate(&self, chunk: u64) -> (u32, u64) {
        let (volume_index, local) = match self.chunks_per_volume {
            0 => (0, chunk),
            per => (chunk / per, chunk % per),
        };
        // Callers only locate chunks inside volumes that exist, whose
        // numbers are u32; saturate rather than wrap if one ever does not.
        let volume = u32::try_from(volume_index + 1).unwrap_or(u32::MAX);
        (volume, self.data_offset + local * self.chunk_len() as u64)
    }

    /// Index of chunk `chunk` within its volume, from 0.
    pub(crate) fn local_index(&self, chunk: u64) -> u64 {
        match self.chunks_per_volume {
            0 => chunk,
            per => chunk % per,
        }
    }

    /// Whether chunk `chunk` is the last one a full volume holds.
    pub(crate) fn ends_volume(&self, chunk: u64) -> bool {
        self.chunks_per_volume != 0 && (chunk + 1).is_multiple_of(self.chunks_per_volume)
    }

    /// Length of a full (non-final) volume, or `None` if unsplit.
    pub(crate) fn full_volume_len(&self) -> Option<u64> {
        match self.chunks_per_volume {
            0 => None,
            per => Some(self.data_offset + per * self.chunk_len() as u64),
        }
    }
}

/// H: the header length L rounded up to a whole number of [`SECTOR`]s, the
/// offset of every volume's first chunk. A sealed volume's H is
/// [`SealWriter::header_len`](crate::SealWriter::header_len).
pub const fn padded_header_len(header_len: u64) -> u64 {
    header_len.div_ceil(SECTOR) * SECTOR
}

/// Plaintext bytes in a full chunk of `chunk_size` ciphertext bytes:
/// `chunk_size −` [`TAG_LEN`] (0 if `chunk_size` cannot hold a tag).
/// `chunk_size` is what [`Sealer::chunk_size`](crate::Sealer::chunk_size) set, or
/// [`OpenReader::chunk_size`](crate::OpenReader::chunk_size).
pub const fn plaintext_per_chunk(chunk_size: usize) -> usize {
    chunk_size.saturating_sub(TAG_LEN)
}

/// A bounds-checked cursor over untrusted bytes. Every read either returns
/// exactly what was asked for or an error naming the offset.
pub(crate) struct Reader<'a, 'l> {
    bytes: &'a [u8],
    pos: usize,
    /// The volume the bytes are from, for errors.
    volume: &'l Location,
}

impl<'a, 'l> Reader<'a, 'l> {
    pub(crate) fn new(bytes: &'a [u8], volume: &'l Location) -> Self {
        Reader {
            bytes,
            pos: 0,
            volume,
        }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn error(&self, reason: &'static str) -> Error {
        Error::malformed(self.volume, self.pos as u64, reason)
    }

    pub(crate) fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| self.error(what))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Error> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// Rejects trailing bytes.
    pub(crate) fn finish(self, what: &'static str) -> Result<(), Error> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(self.error(what))
        }
    }
}

/// Reads the fixed 14-byte preamble and returns the header length L
/// (SPEC.md §3.1). `volume_len` bounds L before anything is allocated.
/// `input` names the volume, by its position among the inputs, in errors.
pub(crate) fn parse_preamble(preamble: &[u8], input: &Location) -> Result<u32, Error> {
    if preamble.len() < 8 || preamble[..8] != MAGIC {
        return Err(Error::NotKuvert { at: input.clone() });
    }
    let mut reader = Reader::new(preamble, input);
    reader.take(8, "magic")?;
    let version = reader.u16("volume shorter than its preamble")?;
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            at: input.clone(),
            version,
        });
    }
    let header_len = reader.u32("volume shorter than its preamble")?;
    if (header_len as usize) < MIN_HEADER_LEN {
        return Err(Error::malformed(
            input,
            10,
            "header length below the minimum",
        ));
    }
    if header_len > MAX_HEADER_LEN {
        // A rule of the format, not a caller's limit: no encoder writes more.
        return Err(Error::malformed(input, 10, "header length above 1 MiB"));
    }
    Ok(header_len)
}

/// Length of the preamble that [`parse_preamble`] reads.
pub(crate) const PREAMBLE_LEN: usize = SET_START;

/// Parses a whole header of exactly L bytes (SPEC.md §3). Does no
/// cryptography: the result is authenticated later by its MAC. `input`
/// names the volume, by its position among the inputs, in errors, and is
/// kept in the header for later ones.
pub(crate) fn parse_header(bytes: &[u8], input: &Location) -> Result<Header, Error> {
    let header_len = parse_preamble(bytes, input)?;
    if bytes.len() != header_len as usize {
        return Err(Error::malformed(input, 10, "header length does not match"));
    }
    let mut r = Reader::new(bytes, input);
    r.take(SET_START, "preamble")?;

    let set_flags = r.u16("set flags")?;
    check_set_flags(set_flags, input)?;
    let set_id = r.array::<SET_ID_LEN>("set id")?;
    let chunk_exp = r.u8("chunk size exponent")?;
    if !(MIN_CHUNK_EXP..=MAX_CHUNK_EXP).contains(&chunk_exp) {
        return Err(Error::malformed(
            input,
            r.pos() as u64 - 1,
            "chunk size exponent out of range 12..=24",
        ));
    }
    let chunks_per_volume = r.u64("chunks per volume")?;
    let stanza_count = r.u8("stanza count")?;
    if stanza_count == 0 {
        return Err(Error::malformed(
            input,
            r.pos() as u64 - 1,
            "no recipient stanzas",
        ));
    }
    let mut stanzas = Vec::with_capacity(stanza_count.into());
    for _ in 0..stanza_count {
        stanzas.push(parse_stanza(&mut r)?);
    }
    let signers = if set_flags & SET_FLAG_SIGNED != 0 {
        parse_signer_block(&mut r)?
    } else {
        Vec::new()
    };
    let parity = if set_flags & SET_FLAG_PARITY != 0 {
        let at = r.pos() as u64;
        let percent = r.u16("parity percent")?;
        if !(crate::parity::MIN_PERCENT..=crate::parity::MAX_PERCENT).contains(&percent) {
            return Err(Error::malformed(
                input,
                at,
                "parity percent out of range 3..=200",
            ));
        }
        Some(percent)
    } else {
        None
    };
    let set_end = r.pos();

    let volume_at = r.pos() as u64;
    let volume = r.u32("volume number")?;
    if volume == 0 {
        return Err(Error::malformed(input, volume_at, "volume number 0"));
    }
    if chunks_per_volume == 0 && volume != 1 {
        return Err(Error::malformed(
            input,
            volume_at,
            "unsplit container with volume number other than 1",
        ));
    }
    let geometry = Geometry::new(chunk_exp, chunks_per_volume, header_len.into());
    if chunks_per_volume != 0 {
        // Every chunk of the volume must be addressable: the last global
        // index (volume · K − 1) and the volume's last byte fit in u64.
        let chunk_len = geometry.chunk_len() as u64;
        let last_chunk = u64::from(volume).checked_mul(chunks_per_volume);
        let volume_len = chunks_per_volume
            .checked_mul(chunk_len)
            .and_then(|data| data.checked_add(geometry.data_offset));
        if last_chunk.is_none() || volume_len.is_none() {
            return Err(Error::malformed(
                input,
                volume_at,
                "volume number and chunks per volume overflow the chunk counter",
            ));
        }
    }
    let flags_at = r.pos() as u64;
    let volume_flags = r.u16("volume flags")?;
    if volume_flags != 0 {
        return Err(Error::malformed(
            input,
            flags_at,
            "volume flags: unknown bits set",
        ));
    }
    let extensions_len = r.u16("extension length")?;
    let extensions = r.take(extensions_len.into(), "extension area")?;
    parse_extensions(extensions, input, r.pos() - extensions.len())?;
    r.take(MAC_LEN, "header MAC")?;
    r.finish("bytes after the header MAC")?;

    Ok(Header {
        set: SetHeader {
            trailers: set_flags & SET_FLAG_TRAILERS != 0,
            set_id,
            chunk_exp,
            chunks_per_volume,
            stanzas,
            signers,
            parity,
        },
        volume,
        origin: input.clone(),
        bytes: bytes.to_vec(),
        set_bytes: SET_START..set_end,
        trailer: None,
    })
}

/// The set flags rule (SPEC.md §3.2): only defined bits, and SIGNED only
/// with TRAILERS (the signatures live in the trailers).
fn check_set_flags(flags: u16, input: &Location) -> Result<(), Error> {
    if flags & !KNOWN_SET_FLAGS != 0 {
        return Err(Error::malformed(
            input,
            SET_START as u64,
            "set flags: unknown bits set",
        ));
    }
    if flags & SET_FLAG_SIGNED != 0 && flags & SET_FLAG_TRAILERS == 0 {
        return Err(Error::malformed(
            input,
            SET_START as u64,
            "set flags: SIGNED without TRAILERS",
        ));
    }
    if flags & SET_FLAG_PARITY != 0 && flags & SET_FLAG_TRAILERS == 0 {
        return Err(Error::malformed(
            input,
            SET_START as u64,
            "set flags: PARITY without TRAILERS",
        ));
    }
    Ok(())
}

/// Parses the signer block (SPEC.md §3.2): a count 1..=4, each key blob's
/// length (51), then the blobs, each an `ssh-ed25519` key that passes the
/// point checks, no key twice.
fn parse_signer_block(r: &mut Reader<'_, '_>) -> Result<Vec<SignerKey>, Error> {
    let block_at = r.pos() as u64;
    let count = r.u8("signer block")? as usize;
    if !(1..=MAX_SIGNERS).contains(&count) {
        return Err(Error::malformed(
            r.volume,
            block_at,
            "signer count not in 1..=4",
        ));
    }
    for _ in 0..count {
        let len_at = r.pos() as u64;
        if usize::from(r.u16("signer key length")?) != BLOB_LEN {
            return Err(Error::malformed(
                r.volume,
                len_at,
                "signer key length is not 51",
            ));
        }
    }
    let mut signers: Vec<SignerKey> = Vec::with_capacity(count);
    for _ in 0..count {
        let blob_at = r.pos() as u64;
        let blob = r.take(BLOB_LEN, "signer key")?;
        let key = SignerKey::from_blob(blob).map_err(|_| {
            Error::malformed(
                r.volume,
                blob_at,
                "signer key is not an ssh-ed25519 key of a canonical point of large order",
            )
        })?;
        if signers.contains(&key) {
            return Err(Error::malformed(
                r.volume,
                blob_at,
                "signer key named twice",
            ));
        }
        signers.push(key);
    }
    Ok(signers)
}

/// Parses one stanza (SPEC.md §3.2); errors name the stanza's first byte,
/// or the argument whose bytes break a rule.
pub(crate) fn parse_stanza(r: &mut Reader<'_, '_>) -> Result<Stanza, Error> {
    let at = r.pos();
    let count = r.u8("stanza argument count")?;
    if count == 0 {
        return Err(Error::malformed(
            r.volume,
            at as u64,
            "stanza has no arguments: argument 0 is its type",
        ));
    }
    let mut args = Vec::with_capacity(count.into());
    for _ in 0..count {
        let arg_at = r.pos();
        let len = r.u16("stanza argument length")?;
        if len == 0 {
            return Err(Error::malformed(
                r.volume,
                arg_at as u64,
                "empty stanza argument",
            ));
        }
        let bytes = r.take(len.into(), "stanza argument")?;
        if let Some(bad) = bytes.iter().position(|&b| !is_vchar(b)) {
            return Err(Error::malformed(
                r.volume,
                (arg_at + 2 + bad) as u64,
                "stanza argument has a byte outside 0x21-0x7E",
            ));
        }
        // VCHAR bytes are ASCII, so this never replaces anything.
        args.push(String::from_utf8_lossy(bytes).into_owned());
    }
    let body_len = r.u16("stanza body length")?;
    let body = r.take(body_len.into(), "stanza body")?.to_vec();
    let kind = args.remove(0);
    Ok(Stanza {
        at: at as u64,
        kind,
        args,
        body,
    })
}

/// Walks the volume record's extension area (SPEC.md §3.3). Version 1 defines
/// no extension: optional ones (type high bit clear) are skipped, critical
/// ones (high bit set) are refused.
fn parse_extensions(area: &[u8], input: &Location, base: usize) -> Result<(), Error> {
    let mut r = Reader::new(area, input);
    while r.pos() < area.len() {
        let at = base + r.pos();
        let kind = r.u16("extension type").map_err(|_| {
            Error::malformed(input, at as u64, "extension area ends inside a record")
        })?;
        let len = r.u16("extension length").map_err(|_| {
            Error::malformed(input, at as u64, "extension area ends inside a record")
        })?;
        r.take(len.into(), "extension body")
            .map_err(|_| Error::malformed(input, at as u64, "extension body past the area"))?;
        if kind & 0x8000 != 0 {
            return Err(Error::malformed(
                input,
                at as u64,
                "unknown critical extension",
            ));
        }
    }
    Ok(())
}

/// Serialises the set part of a header (SPEC.md §3.2) once per set.
pub(crate) fn encode_set_header(set: &SetHeader) -> Vec<u8> {
    let stanzas: usize = set.stanzas.iter().map(Stanza::encoded_len).sum();
    let signers = signer_block_len(set.signers.len());
    let mut out = Vec::with_capacity(2 + SET_ID_LEN + 1 + 8 + 1 + stanzas + signers);
    let mut flags = match (
        set.trailers || !set.signers.is_empty(),
        set.signers.is_empty(),
    ) {
        (false, _) => 0,
        (true, true) => SET_FLAG_TRAILERS,
        (true, false) => SET_FLAG_TRAILERS | SET_FLAG_SIGNED,
    };
    if set.parity.is_some() {
        // Builders set parity only with trailers.
        flags |= SET_FLAG_TRAILERS | SET_FLAG_PARITY;
    }
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&set.set_id);
    out.push(set.chunk_exp);
    out.extend_from_slice(&set.chunks_per_volume.to_be_bytes());
    // Builders limit stanzas to 255 and check each one's bounds.
    out.push(set.stanzas.len() as u8);
    for stanza in &set.stanzas {
        stanza.encode_into(&mut out);
    }
    if !set.signers.is_empty() {
        // Builders allow 1..=4 distinct signers.
        out.push(set.signers.len() as u8);
        for _ in &set.signers {
            out.extend_from_slice(&(BLOB_LEN as u16).to_be_bytes());
        }
        for signer in &set.signers {
            out.extend_from_slice(&signer.blob());
        }
    }
    if let Some(percent) = set.parity {
        out.extend_from_slice(&percent.to_be_bytes());
    }
    out
}

/// Bytes of a signer block naming `count` signers (0: no block).
pub(crate) fn signer_block_len(count: usize) -> usize {
    if count == 0 {
        0
    } else {
        1 + count * (2 + BLOB_LEN)
    }
}

/// Header length L for a set part of `set_len` bytes (no extensions).
pub(crate) fn header_len(set_len: usize) -> usize {
    SET_START + set_len + VOLUME_RECORD_LEN + MAC_LEN
}

/// The bytes of a volume header up to (not including) the MAC.
pub(crate) fn encode_mac_input(set_bytes: &[u8], volume: u32) -> Vec<u8> {
    let len = header_len(set_bytes.len());
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    // Builders keep L under MAX_HEADER_LEN.
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.extend_from_slice(set_bytes);
    out.extend_from_slice(&volume.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out
}

/// Nonce flag of a chunk (SPEC.md §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkFlag {
    /// Any chunk that is not the last of its volume.
    Interior = 0x00,
    /// The last chunk of the whole set.
    EndOfSet = 0x01,
    /// The last chunk of a volume that is not the last volume.
    EndOfVolume = 0x02,
}

/// The 12-byte nonce of chunk `counter`: three zero bytes, the counter as a
/// big-endian u64, and the flag.
pub(crate) fn chunk_nonce(counter: u64, flag: ChunkFlag) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[3..11].copy_from_slice(&counter.to_be_bytes());
    nonce[11] = flag as u8;
    nonce
}

/// Length of the payload prefix that opens every payload (SPEC.md §6.7): the
/// payload bytes a set carries are its content plus these.
pub const PAYLOAD_PREFIX_LEN: usize = 4;

/// What a payload holds, as its authenticated prefix says (SPEC.md §6.7).
///
/// The kind sits inside the encrypted payload, so it is not visible without
/// a key; it is authenticated by chunk 0's tag.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadKind {
    /// One opaque byte stream (for example sealed from standard input).
    Stream,
    /// Entries: TAR ‖ INDEX ‖ TRAILER (SPEC.md §12).
    Archive,
}

impl PayloadKind {
    const STREAM: u8 = 0x00;
    const ARCHIVE: u8 = 0x01;

    fn code(self) -> u8 {
        match self {
            PayloadKind::Stream => Self::STREAM,
            PayloadKind::Archive => Self::ARCHIVE,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            Self::STREAM => Some(PayloadKind::Stream),
            Self::ARCHIVE => Some(PayloadKind::Archive),
            _ => None,
        }
    }
}

/// The payload prefix: kind, payload flags, records length R (SPEC.md
/// §6.7); the R bytes of the manifest follow it.
pub(crate) fn encode_payload_prefix(
    kind: PayloadKind,
    flags: u8,
    records_len: u16,
) -> [u8; PAYLOAD_PREFIX_LEN] {
    let r = records_len.to_be_bytes();
    [kind.code(), flags, r[0], r[1]]
}

/// Parses the payload prefix from the first plaintext bytes of chunk 0
/// (`first`, at most the whole payload) of a payload `payload_len` bytes
/// long, and returns the kind, the payload flags and the records length R
/// (SPEC.md §6.7), which the manifest's parser checks (§15).
pub(crate) fn parse_payload_prefix(
    first: &[u8],
    payload_len: u64,
) -> Result<(PayloadKind, u8, u16), Error> {
    let malformed = |offset, reason| Error::MalformedPayload { offset, reason };
    let Some(prefix) = first.get(..PAYLOAD_PREFIX_LEN) else {
        return Err(malformed(
            payload_len,
            "payload ends inside its 4-byte prefix",
        ));
    };
    let kind = PayloadKind::from_code(prefix[0]).ok_or(malformed(0, "unknown payload kind"))?;
    Ok((kind, prefix[1], u16::from_be_bytes([prefix[2], prefix[3]])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_set() -> SetHeader {
        SetHeader {
            trailers: false,
            set_id: [7; SET_ID_LEN],
            chunk_exp: DEFAULT_CHUNK_EXP,
            chunks_per_volume: 3,
            stanzas: vec![
                Stanza {
                    at: 0,
                    kind: "X25519".into(),
                    args: vec!["A".repeat(43)],
                    body: vec![1; 32],
                },
                Stanza {
                    at: 0,
                    kind: "grease-!~".into(),
                    args: vec![],
                    body: vec![],
                },
            ],
            signers: Vec::new(),
            parity: None,
        }
    }

    fn sample_header(volume: u32) -> Vec<u8> {
        let mut bytes = encode_mac_input(&encode_set_header(&sample_set()), volume);
        bytes.extend_from_slice(&[0xAA; MAC_LEN]);
        bytes
    }

    #[test]
    fn header_round_trips() {
        let bytes = sample_header(2);
        let header = parse_header(&bytes, &Location::input(1)).expect("valid header");
        assert_eq!(header.set, sample_set());
        assert_eq!(header.volume, 2);
        assert_eq!(header.mac(), &[0xAA; MAC_LEN]);
        assert_eq!(header.mac_input().len(), bytes.len() - MAC_LEN);
        assert_eq!(header.geometry().data_offset, 2048);
    }

    #[test]
    fn the_set_part_is_shared_and_the_volume_record_is_not() {
        let one = parse_header(&sample_header(1), &Location::input(1)).expect("valid header");
        let two = parse_header(&sample_header(2), &Location::input(1)).expect("valid header");
        assert_eq!(one.set_bytes(), two.set_bytes());
        assert_ne!(one.bytes, two.bytes);
        assert_eq!(one.set_bytes(), encode_set_header(&sample_set()));
    }

    #[test]
    fn every_prefix_of_a_header_is_refused() {
        let bytes = sample_header(1);
        for len in 0..bytes.len() {
            assert!(
                parse_header(&bytes[..len], &Location::input(1)).is_err(),
                "prefix {len}"
            );
        }
    }

    #[test]
    fn minimum_header_length_is_exact() {
        let set = SetHeader {
            trailers: false,
            stanzas: vec![Stanza {
                at: 0,
                kind: "x".into(),
                args: vec![],
                body: vec![],
            }],
            ..sample_set()
        };
        assert_eq!(header_len(encode_set_header(&set).len()), MIN_HEADER_LEN);
        assert_eq!(MIN_HEADER_LEN, 104);
    }

    /// One stanza's bytes parsed alone, as the header parser reads them.
    fn parse_one(bytes: &[u8]) -> Result<Stanza, Error> {
        let input = Location::input(1);
        let mut r = Reader::new(bytes, &input);
        let stanza = parse_stanza(&mut r)?;
        r.finish("bytes after the stanza")?;
        Ok(stanza)
    }

    fn encoded(stanza: &Stanza) -> Vec<u8> {
        let mut out = Vec::new();
        stanza.encode_into(&mut out);
        assert_eq!(out.len(), stanza.encoded_len());
        out
    }

    #[test]
    fn stanzas_round_trip_at_their_bounds() {
        let every_vchar: String = (0x21u8..=0x7E).map(char::from).collect();
        for stanza in [
            Stanza {
                at: 0,
                kind: every_vchar.clone(),
                args: vec![every_vchar; 3],
                body: (0..=255).collect(),
            },
            Stanza {
                at: 0,
                kind: "t".into(),
                args: vec!["a".into(); MAX_STANZA_ARGS - 1],
                body: vec![7; MAX_STANZA_BODY_LEN],
            },
            Stanza {
                at: 0,
                kind: "L".repeat(MAX_STANZA_ARG_LEN),
                args: vec![],
                body: vec![],
            },
        ] {
            assert_eq!(stanza.unencodable(), None);
            let bytes = encoded(&stanza);
            assert_eq!(parse_one(&bytes).expect("round trip"), stanza);
        }
    }

    #[test]
    fn stanzas_outside_the_bounds_are_not_encoded() {
        let base = Stanza {
            at: 0,
            kind: "t".into(),
            args: vec![],
            body: vec![],
        };
        let cases = [
            (
                Stanza {
                    args: vec!["a".into(); MAX_STANZA_ARGS],
                    ..base.clone()
                },
                "more than 255 stanza arguments",
            ),
            (
                Stanza {
                    kind: String::new(),
                    ..base.clone()
                },
                "empty stanza argument",
            ),
            (
                Stanza {
                    args: vec!["a b".into()],
                    ..base.clone()
                },
                "stanza argument has a byte outside 0x21-0x7E",
            ),
            (
                Stanza {
                    args: vec!["é".into()],
                    ..base.clone()
                },
                "stanza argument has a byte outside 0x21-0x7E",
            ),
            (
                Stanza {
                    kind: "L".repeat(MAX_STANZA_ARG_LEN + 1),
                    ..base.clone()
                },
                "stanza argument longer than 65,535 bytes",
            ),
            (
                Stanza {
                    body: vec![0; MAX_STANZA_BODY_LEN + 1],
                    ..base.clone()
                },
                "stanza body longer than 65,535 bytes",
            ),
        ];
        for (stanza, reason) in cases {
            assert_eq!(stanza.unencodable(), Some(reason), "{stanza:?}");
        }
    }

    #[test]
    fn malformed_stanzas_name_the_offending_byte() {
        let rule = |bytes: &[u8]| match parse_one(bytes) {
            Err(Error::MalformedHeader { at, reason }) => (at.offset, reason),
            other => panic!("{bytes:?}: {other:?}"),
        };
        assert_eq!(
            rule(&[0, 0, 0]),
            (Some(0), "stanza has no arguments: argument 0 is its type")
        );
        assert_eq!(
            rule(&[2, 0, 1, b'X', 0, 0, 0, 0]),
            (Some(4), "empty stanza argument")
        );
        assert_eq!(
            rule(&[1, 0, 3, b'a', b' ', b'b', 0, 0]),
            (Some(4), "stanza argument has a byte outside 0x21-0x7E")
        );
        assert_eq!(
            rule(&[1, 0, 1, 0x7F, 0, 0]),
            (Some(3), "stanza argument has a byte outside 0x21-0x7E")
        );
        assert_eq!(rule(&[1, 0, 5, b'a']), (Some(3), "stanza argument"));
        assert_eq!(rule(&[1, 0, 1, b'a', 0, 2, 9]), (Some(6), "stanza body"));
        assert_eq!(rule(&[1, 0, 1, b'a', 0]), (Some(4), "stanza body length"));
        assert_eq!(rule(&[2, 0, 1, b'a']), (Some(4), "stanza argument length"));
    }

    fn signed_set(seeds: &[u8]) -> SetHeader {
        SetHeader {
            // A signer block needs trailers: the encoder sets both flags.
            trailers: true,
            signers: seeds
                .iter()
                .map(|&seed| *crate::sign::SigningKey::from_seed([seed; 32]).public())
                .collect(),
            ..sample_set()
        }
    }

    /// A header of `set` with its set part edited by `edit`.
    fn edited_header(set: &SetHeader, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut set_bytes = encode_set_header(set);
        edit(&mut set_bytes);
        let mut bytes = encode_mac_input(&set_bytes, 1);
        bytes.extend_from_slice(&[0xAA; MAC_LEN]);
        bytes
    }

    /// Where the signer block starts in a header of `set`.
    fn block_at(set: &SetHeader) -> usize {
        SET_START
            + encode_set_header(&SetHeader {
                signers: Vec::new(),
                parity: None,
                ..set.clone()
            })
            .len()
    }

    fn refusal(bytes: &[u8]) -> (u64, &'static str) {
        match parse_header(bytes, &Location::input(1)) {
            Err(Error::MalformedHeader { at, reason }) => (at.offset.expect("an offset"), reason),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn signer_blocks_round_trip_in_the_set_part() {
        for seeds in [&[2u8][..], &[2, 3], &[2, 3, 4, 5]] {
            let set = signed_set(seeds);
            let bytes = edited_header(&set, |_| {});
            let header = parse_header(&bytes, &Location::input(1)).expect("signed header");
            assert_eq!(header.set, set);
            assert_eq!(
                u16::from_be_bytes([bytes[SET_START], bytes[SET_START + 1]]),
                SET_FLAG_SIGNED | SET_FLAG_TRAILERS
            );
            assert_eq!(header.set_bytes().len(), encode_set_header(&set).len());
            let unsigned = encode_set_header(&sample_set()).len();
            assert_eq!(
                header.set_bytes().len() - unsigned,
                signer_block_len(seeds.len())
            );
            assert_eq!(signer_block_len(seeds.len()), 1 + 53 * seeds.len());
            // Every prefix is refused, never a panic.
            for len in 0..bytes.len() {
                assert!(parse_header(&bytes[..len], &Location::input(1)).is_err());
            }
        }
        assert_eq!(signer_block_len(0), 0);
    }

    #[test]
    fn set_flags_rules() {
        let unsigned = sample_header(1);
        for (flags, reason) in [
            (SET_FLAG_SIGNED, "set flags: SIGNED without TRAILERS"),
            (SET_FLAG_PARITY, "set flags: PARITY without TRAILERS"),
            (0x0008 | SET_FLAG_TRAILERS, "set flags: unknown bits set"),
            (0x8000 | SET_FLAG_TRAILERS, "set flags: unknown bits set"),
        ] {
            let mut bytes = unsigned.clone();
            bytes[SET_START..SET_START + 2].copy_from_slice(&u16::to_be_bytes(flags));
            assert_eq!(refusal(&bytes), (SET_START as u64, reason), "{flags:#x}");
        }
    }

    /// An edit of a set part's bytes.
    type Edit<'a> = dyn Fn(&mut Vec<u8>) + 'a;

    #[test]
    fn malformed_signer_blocks_name_the_offending_byte() {
        let set = signed_set(&[2, 3]);
        let at = block_at(&set);
        let local = at - SET_START;
        let blob0 = at + 1 + 4;
        let blob1 = blob0 + BLOB_LEN;
        let cases: Vec<(Box<Edit<'_>>, u64, &str)> = vec![
            (
                Box::new(|b: &mut Vec<u8>| b[local] = 0),
                at as u64,
                "signer count not in 1..=4",
            ),
            (
                Box::new(|b: &mut Vec<u8>| b[local] = 5),
                at as u64,
                "signer count not in 1..=4",
            ),
            (
                Box::new(|b: &mut Vec<u8>| b[local + 4] = 52),
                (at + 3) as u64,
                "signer key length is not 51",
            ),
            (
                Box::new(|b: &mut Vec<u8>| b[blob0 - SET_START + 4] ^= 1),
                blob0 as u64,
                "signer key is not an ssh-ed25519 key of a canonical point of large order",
            ),
            (
                // The identity point: small order.
                Box::new(|b: &mut Vec<u8>| {
                    let key = blob1 - SET_START + 19;
                    b[key..key + 32].fill(0);
                    b[key] = 1;
                }),
                blob1 as u64,
                "signer key is not an ssh-ed25519 key of a canonical point of large order",
            ),
            (
                Box::new(|b: &mut Vec<u8>| {
                    let (first, second) = (blob0 - SET_START, blob1 - SET_START);
                    let copy = b[first..first + BLOB_LEN].to_vec();
                    b[second..second + BLOB_LEN].copy_from_slice(&copy);
                }),
                blob1 as u64,
                "signer key named twice",
            ),
        ];
        for (edit, offset, reason) in cases {
            let bytes = edited_header(&set, edit);
            assert_eq!(refusal(&bytes), (offset, reason));
        }
        // A block with no room for its count: the volume record is read as it.
        let flagged = edited_header(&sample_set(), |b| {
            b[..2].copy_from_slice(&(SET_FLAG_SIGNED | SET_FLAG_TRAILERS).to_be_bytes())
        });
        assert!(parse_header(&flagged, &Location::input(1)).is_err());
    }

    #[test]
    fn nonce_layout() {
        let nonce = chunk_nonce(0x0102_0304_0506_0708, ChunkFlag::EndOfVolume);
        assert_eq!(nonce, [0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 2]);
    }

    #[test]
    fn geometry_locates_chunks() {
        let geometry = Geometry::new(12, 5, 100);
        assert_eq!(geometry.data_offset, 2048);
        assert_eq!(geometry.locate(0), (1, 2048));
        assert_eq!(geometry.locate(4), (1, 2048 + 4 * 4096));
        assert_eq!(geometry.locate(5), (2, 2048));
        assert_eq!(geometry.first_chunk(3), 10);
        assert_eq!(geometry.full_volume_len(), Some(2048 + 5 * 4096));
        let unsplit = Geometry::new(16, 0, 4000);
        assert_eq!(unsplit.locate(9), (1, 4096 + 9 * 65536));
        assert_eq!(unsplit.full_volume_len(), None);
    }

    #[test]
    fn critical_extensions_are_refused() {
        assert!(parse_extensions(&[0x00, 0x01, 0x00, 0x01, 0xFF], &Location::input(1), 0).is_ok());
        assert!(parse_extensions(&[0x80, 0x01, 0x00, 0x00], &Location::input(1), 0).is_err());
        assert!(parse_extensions(&[0x00, 0x01, 0x00, 0x02, 0xFF], &Location::input(1), 0).is_err());
        assert!(parse_extensions(&[0x00], &Location::input(1), 0).is_err());
    }

    #[test]
    fn payload_prefix_round_trips_and_refuses_each_rule() {
        for kind in [PayloadKind::Stream, PayloadKind::Archive] {
            let prefix = encode_payload_prefix(kind, 1, 0x0102);
            assert_eq!(prefix[2..], [1, 2]);
            let parsed = parse_payload_prefix(&prefix, 4).expect("valid");
            assert_eq!(parsed, (kind, 1, 0x0102));
            let mut longer = prefix.to_vec();
            longer.extend_from_slice(b"content");
            assert_eq!(parse_payload_prefix(&longer, 11).expect("valid"), parsed);
        }
        let rule = |bytes: &[u8], len: u64| match parse_payload_prefix(bytes, len) {
            Err(Error::MalformedPayload { offset, .. }) => offset,
            other => panic!("{bytes:?}: {other:?}"),
        };
        assert_eq!(rule(&[], 0), 0);
        assert_eq!(rule(&[0, 0, 0], 3), 3);
        assert_eq!(rule(&[2, 0, 0, 0], 4), 0);
        assert_eq!(rule(&[0xFF, 0, 0, 0], 4), 0);
    }
}
