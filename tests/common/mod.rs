//! Helpers shared by the integration tests: sealing into memory, reading with
//! awkward buffer sizes, and turning errors into comparable values.
//!
//! Only the public API of kuvert is used here.

#![allow(
    dead_code,
    reason = "every test crate includes this module and uses a different subset of it"
)]

pub mod craft;
pub mod eio;
pub mod faulty;
pub mod forge;
pub mod parity;
#[cfg(unix)]
pub mod snapshot;

use std::io::{self, Read, Write};

use kuvert::{
    Error, Location, MemorySink, OpenReader, Opener, Sealer, VolumeSource, X25519Identity,
};

/// Poly1305 tag length: ciphertext chunk C carries C − 16 plaintext bytes.
pub const TAG: usize = kuvert::TAG_LEN;
/// Headers are padded to a multiple of this.
pub const SECTOR: u64 = kuvert::SECTOR;
/// Padded header length of a set with one X25519 recipient (L = 186).
pub const H1: u64 = 2048;
/// Header length L of a set with exactly one X25519 recipient.
pub const L1: u64 = 186;

/// Plaintext bytes in a full chunk of `chunk` ciphertext bytes.
pub fn plain(chunk: usize) -> usize {
    kuvert::plaintext_per_chunk(chunk)
}

/// Bytes that differ from chunk to chunk and from offset to offset, so that
/// a swapped or shifted chunk can never decrypt to the right plaintext by
/// accident and a wrong offset never compares equal.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// The payload prefix of a stream (SPEC.md §6.7): kind 0x00, flags 0,
/// records length 0. [`Sealer::seal`] writes it before the content.
pub const STREAM_PREFIX: [u8; 4] = [0; 4];

/// A whole stream payload of `len` ≥ 4 bytes, as the chunk layer sees it:
/// [`STREAM_PREFIX`] and then `len − 4` bytes of [`data`]. Tests of chunk
/// framing model payload offsets; [`seal_payload`] seals it and
/// [`read_released_payload`] gives it back whole.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    assert!(
        len >= STREAM_PREFIX.len(),
        "a payload holds at least its prefix"
    );
    let mut payload = STREAM_PREFIX.to_vec();
    payload.extend_from_slice(&data(len - STREAM_PREFIX.len(), seed));
    payload
}

/// The content of a stream payload made by [`payload`]: what was sealed.
pub fn content(payload: &[u8]) -> &[u8] {
    assert_eq!(
        payload[..STREAM_PREFIX.len()],
        STREAM_PREFIX,
        "a stream payload"
    );
    &payload[STREAM_PREFIX.len()..]
}

/// Seals a stream payload made by [`payload`], so that the set's payload is
/// exactly those bytes (the sealer writes the prefix, the rest is content).
pub fn seal_payload(
    payload: &[u8],
    chunk: usize,
    volume_size: Option<u64>,
    identity: &X25519Identity,
) -> Vec<Vec<u8>> {
    seal(content(payload), chunk, volume_size, identity)
}

/// As [`read_released`] on a stream's reader, with the payload prefix put
/// back in front: the released bytes as payload bytes, so that offsets are
/// chunk offsets.
pub fn read_released_payload<R: Read>(reader: &mut R, sizes: &[usize]) -> Released {
    let mut released = read_released(reader, sizes);
    released.bytes.splice(0..0, STREAM_PREFIX);
    released
}

/// Opens a stream set and reads it as [`read_released_payload`] does; if
/// opening fails (chunk 0, which holds the prefix, is authenticated by
/// `open`), nothing was released and that error is the outcome.
pub fn open_released_payload<S: VolumeSource>(
    opener: &Opener,
    volumes: Vec<S>,
    sizes: &[usize],
) -> Released {
    match opener.open(volumes) {
        Ok(mut reader) => read_released_payload(&mut reader, sizes),
        Err(err) => Released {
            bytes: Vec::new(),
            error: Some(err),
        },
    }
}

/// A fixed identity, so that tests can make as many copies as they need
/// (identities are deliberately not `Clone`).
pub fn identity(seed: u8) -> X25519Identity {
    let mut bytes = [seed; 32];
    bytes[0] = 0xA5;
    X25519Identity::from_bytes(bytes)
}

/// A second handle on the same secret key.
pub fn same_identity(identity: &X25519Identity) -> X25519Identity {
    identity
        .to_secret_string()
        .parse()
        .expect("an identity parses its own encoding")
}

/// A sealer for `identity` with the given chunk size and optional volume
/// size, writing no manifest, no padding (SPEC.md §15) and no volume
/// trailers (§13): the payload is then exactly the 4-byte prefix and the
/// content, so the chunk-layer tests built on these helpers can count
/// payload offsets from the content and volume lengths from the chunks.
/// tests/manifest.rs covers the manifest and padding, tests/trailer.rs the
/// trailer, which `Sealer` writes by default.
pub fn sealer(identity: &X25519Identity, chunk: usize, volume_size: Option<u64>) -> Sealer {
    let sealer = Sealer::new()
        .recipient(identity.to_public())
        .chunk_size(chunk)
        .created(None)
        .pad(kuvert::Padding::None)
        .digests(false);
    match volume_size {
        Some(size) => sealer.volume_size(size),
        None => sealer,
    }
}

/// Seals `data` in one `write_all` and returns the volumes, volume 1 first.
pub fn seal(
    data: &[u8],
    chunk: usize,
    volume_size: Option<u64>,
    identity: &X25519Identity,
) -> Vec<Vec<u8>> {
    seal_with(&sealer(identity, chunk, volume_size), data, &[usize::MAX])
}

/// Seals `data` with `sealer`, writing it in pieces of the given sizes (used
/// cyclically) with plain `write` calls.
pub fn seal_with(sealer: &Sealer, data: &[u8], splits: &[usize]) -> Vec<Vec<u8>> {
    let mut writer = sealer
        .seal(MemorySink::new())
        .expect("valid sealer options");
    write_split(&mut writer, data, splits).expect("writing to memory succeeds");
    writer
        .finish()
        .expect("finishing into memory succeeds")
        .into_volumes()
}

/// Writes `data` to `writer` in pieces of the given sizes (cyclically), each
/// with repeated `write` calls, as a caller that does not use `write_all`
/// would. Every `write` must make progress.
pub fn write_split<W: Write>(writer: &mut W, data: &[u8], splits: &[usize]) -> io::Result<()> {
    assert!(!splits.is_empty() && splits.iter().all(|&s| s > 0));
    let mut rest = data;
    for &split in splits.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (mut piece, after) = rest.split_at(split.min(rest.len()));
        while !piece.is_empty() {
            let n = writer.write(piece)?;
            assert!(
                n > 0 && n <= piece.len(),
                "write of {} bytes returned {n}",
                piece.len()
            );
            piece = &piece[n..];
        }
        rest = after;
    }
    // An empty write is a no-op, never an error.
    assert_eq!(writer.write(&[])?, 0);
    writer.flush()
}

/// Hands out at most `max` bytes per `read`: catches code that assumes
/// `read` fills the buffer.
pub struct ShortReads<R> {
    pub inner: R,
    pub max: usize,
}

impl<R: Read> Read for ShortReads<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(self.max);
        self.inner.read(&mut buf[..len])
    }
}

/// Takes at most `max` bytes per `write`: catches code that assumes `write`
/// takes the whole buffer.
pub struct ShortWrites<W> {
    pub inner: W,
    pub max: usize,
}

impl<W: Write> Write for ShortWrites<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = buf.len().min(self.max);
        self.inner.write(&buf[..len])
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What a reader released before it stopped.
#[derive(Debug)]
pub struct Released {
    /// Every byte returned by `read`, in order.
    pub bytes: Vec<u8>,
    /// The error that stopped reading, if it was not the end of the data.
    pub error: Option<Error>,
}

/// Reads to the end or the first error, with buffers of the given sizes
/// (cyclically), and keeps everything released before the error.
pub fn read_released<R: Read>(reader: &mut R, sizes: &[usize]) -> Released {
    assert!(!sizes.is_empty() && sizes.iter().all(|&s| s > 0));
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; sizes.iter().copied().max().unwrap_or(1)];
    for &size in sizes.iter().cycle() {
        match reader.read(&mut buf[..size]) {
            Ok(0) => {
                return Released { bytes, error: None };
            }
            Ok(n) => {
                assert!(n <= size, "read into {size} bytes returned {n}");
                bytes.extend_from_slice(&buf[..n]);
            }
            Err(err) => {
                return Released {
                    bytes,
                    error: Some(Error::from_io(err)),
                };
            }
        }
    }
    unreachable!("the cycle over a non-empty slice never ends")
}

/// Reads everything, failing the test on any error.
pub fn read_all<R: Read>(reader: &mut R) -> Vec<u8> {
    let released = read_released(reader, &[8192]);
    if let Some(err) = released.error {
        panic!(
            "reading failed after {} bytes: {err:?}",
            released.bytes.len()
        );
    }
    released.bytes
}

/// Opens `volumes` with `identity` and reads the whole plaintext, returning
/// the first error as a typed [`Error`].
pub fn open<S: VolumeSource>(volumes: Vec<S>, identity: X25519Identity) -> Result<Vec<u8>, Error> {
    open_with(&Opener::new().identity(identity), volumes)
}

/// Opens `volumes` with `opener` and reads the whole plaintext.
pub fn open_with<S: VolumeSource>(opener: &Opener, volumes: Vec<S>) -> Result<Vec<u8>, Error> {
    let mut reader = opener.open(volumes)?;
    let released = read_released(&mut reader, &[8192]);
    match released.error {
        Some(err) => Err(err),
        None => Ok(released.bytes),
    }
}

/// Opens with `opener`, which must fail; returns why.
pub fn open_err<S: VolumeSource>(opener: &Opener, volumes: Vec<S>) -> Failure {
    failure(opener.open(volumes).expect_err("opening must fail"))
}

/// The error of a result that must have failed.
pub fn expect_err<T: std::fmt::Debug>(result: Result<T, Error>) -> Failure {
    failure(result.expect_err("must fail"))
}

/// The typed error inside an `io::Error` made by a kuvert adapter.
pub fn expect_io_err<T: std::fmt::Debug>(result: io::Result<T>) -> Failure {
    failure(Error::from_io(result.expect_err("must fail")))
}

/// Opens, or panics with the error.
pub fn must_open<S: VolumeSource>(opener: &Opener, volumes: Vec<S>) -> OpenReader<S> {
    match opener.open(volumes) {
        Ok(reader) => reader,
        Err(err) => panic!("opening failed: {err:?}"),
    }
}

/// An [`Error`] reduced to comparable facts, so tests can assert the exact
/// variant and fields with `assert_eq!`. The free-text `reason` of header,
/// chunk, key and option errors is left out: tests assert offsets, not
/// wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Io(io::ErrorKind),
    NotKuvert {
        input: usize,
    },
    UnsupportedVersion {
        input: usize,
        version: u16,
    },
    MalformedHeader {
        input: usize,
        offset: u64,
    },
    LimitExceeded {
        what: &'static str,
        found: u64,
        limit: u64,
    },
    NoMatchingKey {
        stanza_types: Vec<String>,
    },
    WrongPassphrase,
    HeaderDamaged {
        volume: u32,
    },
    Unauthenticated {
        chunk: u64,
        volume: u32,
        offset: u64,
    },
    Truncated {
        volume: u32,
        length: u64,
    },
    VolumeMissing {
        volume: u32,
    },
    DuplicateVolume {
        volume: u32,
        first: usize,
        second: usize,
    },
    ForeignVolume {
        input: usize,
        volume: u32,
    },
    TrailingData {
        volume: u32,
        offset: u64,
    },
    MalformedChunk {
        chunk: u64,
        volume: u32,
    },
    InvalidKey,
    InvalidOption,
    CounterExhausted,
    NoVolumes,
    MalformedPayload {
        offset: u64,
    },
    Other(String),
}

/// The input position of a location: errors found before a header is
/// trusted name the volume by it, never by the number the header claims.
fn input(at: &Location) -> usize {
    at.volume
        .input()
        .unwrap_or_else(|| panic!("{at}: named by number, not by input position"))
}

/// The authenticated volume number of a location.
fn number(at: &Location) -> u32 {
    at.volume
        .number()
        .unwrap_or_else(|| panic!("{at}: named by input position, not by number"))
}

/// The byte offset of a location that has one.
fn offset(at: &Location) -> u64 {
    at.offset.unwrap_or_else(|| panic!("{at}: no byte offset"))
}

/// Reduces an [`Error`] to a [`Failure`], checking that each location says
/// what SPEC.md §10.1 says of the variant: an input position or a volume
/// number, and a byte where one is named.
pub fn failure(err: Error) -> Failure {
    match err {
        Error::Io(inner) => Failure::Io(inner.kind()),
        // Where a read failed is checked by tests/errors.rs; the sweeps
        // compare the OS error's kind, as for any other I/O error.
        Error::Read { source, .. } => Failure::Io(source.kind()),
        Error::NotKuvert { at } => Failure::NotKuvert { input: input(&at) },
        Error::UnsupportedVersion { at, version } => Failure::UnsupportedVersion {
            input: input(&at),
            version,
        },
        Error::MalformedHeader { at, .. } => Failure::MalformedHeader {
            input: input(&at),
            offset: offset(&at),
        },
        Error::LimitExceeded { what, found, limit } => {
            Failure::LimitExceeded { what, found, limit }
        }
        Error::NoMatchingKey { stanza_types } => Failure::NoMatchingKey { stanza_types },
        Error::WrongPassphrase => Failure::WrongPassphrase,
        Error::HeaderDamaged { at, volume } => {
            input(&at);
            Failure::HeaderDamaged { volume }
        }
        Error::Unauthenticated { chunk, at } => {
            assert_eq!(at.chunk, Some(chunk), "{at}");
            Failure::Unauthenticated {
                chunk,
                volume: number(&at),
                offset: offset(&at),
            }
        }
        Error::Truncated { at } => Failure::Truncated {
            volume: number(&at),
            length: offset(&at),
        },
        Error::VolumeMissing { volume } => Failure::VolumeMissing { volume },
        Error::DuplicateVolume { volume, at, first } => Failure::DuplicateVolume {
            volume,
            first: input(&first),
            second: input(&at),
        },
        Error::ForeignVolume { at, volume } => Failure::ForeignVolume {
            input: input(&at),
            volume,
        },
        Error::TrailingData { at } => Failure::TrailingData {
            volume: number(&at),
            offset: offset(&at),
        },
        Error::MalformedChunk { chunk, at, .. } => {
            assert_eq!(at.chunk, Some(chunk), "{at}");
            Failure::MalformedChunk {
                chunk,
                volume: number(&at),
            }
        }
        Error::InvalidKey { .. } => Failure::InvalidKey,
        Error::InvalidOption { .. } => Failure::InvalidOption,
        Error::CounterExhausted => Failure::CounterExhausted,
        Error::NoVolumes => Failure::NoVolumes,
        Error::MalformedPayload { offset, .. } => Failure::MalformedPayload { offset },
        other => Failure::Other(format!("{other:?}")),
    }
}

/// Stanza types as owned strings, for comparing with `NoMatchingKey`.
pub fn types(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// A permutation of `0..len` from `seed` (Fisher–Yates over a small LCG).
pub fn permutation(len: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    for i in (1..len).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = ((state >> 33) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// The names in `dir`, sorted.
pub fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}
