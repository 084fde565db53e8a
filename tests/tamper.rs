//! Damage sweeps: every byte of every volume flipped, every volume cut at
//! every length, volumes dropped, duplicated, mixed with another set's,
//! lengthened with garbage, and chunks swapped. Each failure must be the
//! exact error SPEC.md §7 prescribes for the damaged region, and no
//! byte of a chunk that fails authentication may ever be released.
//!
//! Geometry of the main fixture (one X25519 recipient, chunk C = 4096,
//! P = 4080, K = 2, header L = 186, padded H = 2048):
//!
//! ```text
//! volume 1: header | chunk 0 (0x00) | chunk 1 (0x02)           10240 bytes
//! volume 2: header | chunk 2 (0x00) | chunk 3 (0x02)           10240 bytes
//! volume 3: header | chunk 4 (0x00) | chunk 5 (0x01, 1016 B)    7160 bytes
//! ```

mod common;

use kuvert::{Opener, inspect};

use common::{
    Failure, H1, L1, content, data, expect_io_err, failure, identity, open_err,
    open_released_payload, payload, read_released_payload, seal, seal_payload, types,
};

const C: usize = 4096;
const P: usize = C - 16;
const H: u64 = H1;
const L: u64 = L1;

/// A sealed set and everything needed to predict how it fails.
struct Fixture {
    /// The whole payload, prefix included: the chunk layer's plaintext.
    plaintext: Vec<u8>,
    /// Volumes in volume order (volume n at index n − 1).
    volumes: Vec<Vec<u8>>,
    /// Chunks per volume; 0 if unsplit.
    k: u64,
}

/// Nonce flag of a chunk, as the sealer chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    Interior,
    EndOfSet,
    EndOfVolume,
}

impl Fixture {
    fn new(len: usize, volume_size: Option<u64>, seed: u64) -> Self {
        let plaintext = payload(len, seed);
        let volumes = seal_payload(&plaintext, C, volume_size, &identity(1));
        let k = inspect(&volumes[0]).expect("inspect").chunks_per_volume;
        Fixture {
            plaintext,
            volumes,
            k,
        }
    }

    /// The main fixture: three volumes of two chunks, the last chunk partial.
    fn three_volumes() -> Self {
        let fixture = Fixture::new(5 * P + 1000, Some(H + 2 * C as u64), 1);
        let lens: Vec<usize> = fixture.volumes.iter().map(Vec::len).collect();
        assert_eq!(lens, [10240, 10240, 7160]);
        assert_eq!(inspect(&fixture.volumes[0]).expect("inspect").header_len, H);
        fixture
    }

    fn opener() -> Opener {
        Opener::new().identity(identity(1))
    }

    /// Number of chunks in the whole set.
    fn chunk_count(&self) -> u64 {
        (self.plaintext.len() as u64).div_ceil(P as u64).max(1)
    }

    /// First global chunk index of volume `volume`.
    fn first_chunk(&self, volume: u32) -> u64 {
        u64::from(volume - 1) * self.k
    }

    /// Ciphertext lengths and flags of the chunks of volume `volume`.
    fn chunks_of(&self, volume: u32) -> Vec<(u64, Flag)> {
        let total = self.chunk_count();
        let first = self.first_chunk(volume);
        let end = if self.k == 0 {
            total
        } else {
            (first + self.k).min(total)
        };
        (first..end)
            .map(|g| {
                if g + 1 == total {
                    let final_plain = self.plaintext.len() as u64 - g * P as u64;
                    (final_plain + 16, Flag::EndOfSet)
                } else if self.k != 0 && (g + 1) % self.k == 0 {
                    (C as u64, Flag::EndOfVolume)
                } else {
                    (C as u64, Flag::Interior)
                }
            })
            .collect()
    }

    fn is_last(&self, volume: u32) -> bool {
        volume as usize == self.volumes.len()
    }

    /// What §7.1 of SPEC.md says about a volume of `len` bytes whose header
    /// is intact up to its end: `None` once the header and padding are whole.
    fn header_outcome(input: usize, len: u64) -> Option<Failure> {
        if len < 8 {
            return Some(Failure::NotKuvert { input });
        }
        if len < 10 {
            return Some(Failure::MalformedHeader { input, offset: 8 });
        }
        if len < L {
            // The length field itself is cut (offset 10), or L points past
            // the end of the volume, which is reported at the length field.
            return Some(Failure::MalformedHeader { input, offset: 10 });
        }
        if len < H {
            return Some(Failure::MalformedHeader { input, offset: len });
        }
        None
    }

    /// SPEC.md §7.2 step 6: how the physically last chunk of volume
    /// `volume`, cut to or lengthened with garbage to `len` ≥ H bytes,
    /// classifies: `Ok(EndOfSet)`, `Ok(EndOfVolume)` or the error.
    fn classify_last(&self, volume: u32, len: u64) -> Result<Flag, Failure> {
        let c = C as u64;
        let data = len - H;
        if data == 0 {
            return Err(Failure::Truncated {
                volume,
                length: len,
            });
        }
        if self.k > 0 && data > self.k * c {
            return Err(Failure::TrailingData {
                volume,
                offset: H + self.k * c,
            });
        }
        let n = data.div_ceil(c);
        let r = data - (n - 1) * c;
        let chunk = self.first_chunk(volume) + n - 1;
        let offset = H + (n - 1) * c;
        let chunks = self.chunks_of(volume);
        // Bytes are only ever removed from, or added after, the end: a chunk
        // slot opens exactly when it still holds its original length.
        let original = chunks.get(n as usize - 1).copied();
        if r >= 16 {
            match original {
                Some((ct, Flag::EndOfSet)) if ct == r => {
                    if r == 16 && chunk != 0 {
                        return Err(Failure::MalformedChunk { chunk, volume });
                    }
                    return Ok(Flag::EndOfSet);
                }
                Some((ct, Flag::EndOfVolume)) if ct == r => {
                    // Genuine end-of-volume chunks sit at full volume ends.
                    return Ok(Flag::EndOfVolume);
                }
                Some((ct, Flag::Interior)) if ct == r => {
                    return Err(Failure::Truncated {
                        volume,
                        length: len,
                    });
                }
                _ => {}
            }
        }
        if n >= 2 && chunks.get(n as usize - 2) == Some(&(c, Flag::EndOfSet)) {
            return Err(Failure::TrailingData { volume, offset });
        }
        if r < 16 || (r == 16 && chunk != 0) {
            return Err(Failure::Truncated {
                volume,
                length: len,
            });
        }
        Err(Failure::Unauthenticated {
            chunk,
            volume,
            offset,
        })
    }

    /// What opening must say when volume `volume` (given as input `input`)
    /// is cut to, or lengthened with garbage to, `len` bytes and every other
    /// volume is intact (SPEC.md §7.1, §7.2 steps 5 and 6). `Ok(())` means
    /// it opens.
    fn outcome_at_length(&self, volume: u32, input: usize, len: u64) -> Result<(), Failure> {
        if let Some(failure) = Fixture::header_outcome(input, len) {
            return Err(failure);
        }
        if !self.is_last(volume) {
            let full = H + self.k * C as u64;
            return match len.cmp(&full) {
                std::cmp::Ordering::Less => Err(Failure::Truncated {
                    volume,
                    length: len,
                }),
                std::cmp::Ordering::Greater => Err(Failure::TrailingData {
                    volume,
                    offset: full,
                }),
                std::cmp::Ordering::Equal => Ok(()),
            };
        }
        match self.classify_last(volume, len)? {
            Flag::EndOfSet => Ok(()),
            _ => Err(Failure::VolumeMissing { volume: volume + 1 }),
        }
    }

    /// What `verify_volume` must say for volume `volume` cut to (or
    /// lengthened with garbage to) `len` bytes (SPEC.md §7.4): the last
    /// physical chunk is classified first, as in `open`, then every chunk
    /// before it must open as interior. `Ok(last_in_set)` if intact.
    fn verify_outcome_at_length(&self, volume: u32, len: u64) -> Result<bool, Failure> {
        if let Some(failure) = Fixture::header_outcome(1, len) {
            return Err(failure);
        }
        let last = self.classify_last(volume, len)?;
        let c = C as u64;
        let chunks = self.chunks_of(volume);
        let n = (len - H).div_ceil(c);
        for j in 0..n - 1 {
            if chunks.get(j as usize) != Some(&(c, Flag::Interior)) {
                return Err(Failure::Unauthenticated {
                    chunk: self.first_chunk(volume) + j,
                    volume,
                    offset: H + j * c,
                });
            }
        }
        Ok(last == Flag::EndOfSet)
    }
}

/// The inputs in the order handed to the opener: volume numbers, so that
/// input positions and volume numbers differ (3, 1, 2).
const ORDER: [u32; 3] = [3, 1, 2];

fn input_of(volume: u32) -> usize {
    ORDER
        .iter()
        .position(|&v| v == volume)
        .expect("every volume is given")
        + 1
}

/// Opens `fixture` with volume `volume` replaced by `damaged`, reads the
/// whole plaintext, and returns the error, checking on the way that what was
/// released is exactly a prefix of the plaintext ending at a chunk boundary
/// before the failing chunk.
fn open_damaged(fixture: &Fixture, volume: u32, damaged: &[u8]) -> Result<(), Failure> {
    let inputs: Vec<&[u8]> = if fixture.volumes.len() == 3 {
        ORDER
            .iter()
            .map(|&v| {
                if v == volume {
                    damaged
                } else {
                    fixture.volumes[v as usize - 1].as_slice()
                }
            })
            .collect()
    } else {
        (1..=fixture.volumes.len() as u32)
            .map(|v| {
                if v == volume {
                    damaged
                } else {
                    fixture.volumes[v as usize - 1].as_slice()
                }
            })
            .collect()
    };
    let mut reader = Fixture::opener().open(inputs).map_err(failure)?;
    let released = read_released_payload(&mut reader, &[1000, 5000, 1]);
    match released.error {
        None => {
            assert!(released.bytes == fixture.plaintext, "opened to other bytes");
            Ok(())
        }
        Some(err) => {
            let err = failure(err);
            if let Failure::Unauthenticated { chunk, .. } = err {
                let start = chunk as usize * P;
                assert_eq!(
                    released.bytes.len(),
                    start,
                    "released bytes must stop at the start of failing chunk {chunk}"
                );
                assert!(
                    released.bytes == fixture.plaintext[..start],
                    "released bytes are not the plaintext prefix"
                );
            }
            Err(err)
        }
    }
}

/// What a header byte flip may yield.
#[derive(Debug)]
enum Expect {
    Exactly(Failure),
    /// Malformed, at an offset that depends on random bytes of the header
    /// (a shifted parse reads the MAC as fields): computed by
    /// [`spec_malformed_at`] from the damaged bytes.
    MalformedWhereTheSpecSays,
}

/// A bounds-checked cursor for [`spec_malformed_at`]; a read past `end`
/// fails at the offset where the field starts (SPEC.md §7.6 H12).
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], u64> {
        let at = self.pos;
        if at + n > self.end {
            return Err(at as u64);
        }
        self.pos += n;
        Ok(&self.bytes[at..at + n])
    }

    fn uint(&mut self, n: usize) -> Result<u64, u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }
}

/// An independent reading of SPEC.md §7.1 steps 3–8 (and the offsets of
/// §7.6) for a volume whose magic and version are right: `Some(offset)` of
/// the `MalformedHeader` it must get, `None` if the header is well-formed.
fn spec_malformed_at(volume: &[u8]) -> Option<u64> {
    spec_check(volume).err()
}

fn spec_check(volume: &[u8]) -> Result<(), u64> {
    let len = volume.len() as u64;
    if len < 14 {
        return Err(if len < 10 { 8 } else { 10 });
    }
    let l = u64::from(u32::from_be_bytes([
        volume[10], volume[11], volume[12], volume[13],
    ]));
    if !(104..=1 << 20).contains(&l) || l > len {
        return Err(10);
    }
    let mut r = Cursor {
        bytes: volume,
        pos: 14,
        end: l as usize,
    };
    // TRAILERS (0x0001) alone parses; a signer block (SIGNED, 0x0002, only
    // with TRAILERS) is never reached by one flipped bit of a 0 field.
    if !matches!(r.uint(2)?, 0 | 0x0001) {
        return Err(14);
    }
    r.take(32)?;
    let c = r.uint(1)?;
    if !(12..=24).contains(&c) {
        return Err(48);
    }
    let k = r.uint(8)?;
    let count = r.uint(1)?;
    if count == 0 {
        return Err(57);
    }
    let mut stanzas = Vec::new();
    for _ in 0..count {
        let at = r.pos as u64;
        let count = r.uint(1)? as usize;
        if count == 0 {
            return Err(at);
        }
        let mut args = Vec::new();
        for _ in 0..count {
            let arg_at = r.pos as u64;
            let n = r.uint(2)? as usize;
            if n == 0 {
                return Err(arg_at);
            }
            let arg = r.take(n)?;
            if let Some(bad) = arg.iter().position(|&b| !vchar(b)) {
                return Err(arg_at + 2 + bad as u64);
            }
            args.push(arg);
        }
        let b = r.uint(2)? as usize;
        let body = r.take(b)?;
        stanzas.push((at, args, body));
    }
    let s = r.pos as u64;
    let v = r.uint(4)?;
    let h = l.div_ceil(2048) * 2048;
    let overflow = k != 0
        && (v.checked_mul(k).is_none()
            || k.checked_mul(1 << c)
                .and_then(|data| data.checked_add(h))
                .is_none());
    if v == 0 || (k == 0 && v != 1) || overflow {
        return Err(s);
    }
    if r.uint(2)? != 0 {
        return Err(s + 4);
    }
    let e = r.uint(2)? as usize;
    let area_at = r.pos;
    let area = r.take(e)?;
    let mut at = 0;
    while at < e {
        let record = (area_at + at) as u64;
        if at + 4 > e {
            return Err(record);
        }
        let kind = u16::from_be_bytes([area[at], area[at + 1]]);
        let body = usize::from(u16::from_be_bytes([area[at + 2], area[at + 3]]));
        if at + 4 + body > e || kind & 0x8000 != 0 {
            return Err(record);
        }
        at += 4 + body;
    }
    r.take(32)?;
    if r.pos as u64 != l {
        return Err(r.pos as u64);
    }
    let mut passphrase_stanzas = 0;
    for (at, args, body) in stanzas {
        match args[0] {
            b"X25519" => {
                let share = match args[1..] {
                    [share] => share_bytes(share),
                    _ => None,
                };
                let Some(share) = share else {
                    return Err(at);
                };
                if body.len() != 32 || is_low_order(share) {
                    return Err(at);
                }
            }
            b"argon2id" => {
                passphrase_stanzas += 1;
                if passphrase_stanzas > 1 || args.len() != 1 || body.len() != 92 {
                    return Err(at);
                }
                let word =
                    |i: usize| u64::from(u32::from_be_bytes(body[i..i + 4].try_into().expect("4")));
                let (m, t, p) = (word(16), word(20), word(24));
                if !(1..(1 << 24)).contains(&p) || t == 0 || m < 8 * p {
                    return Err(at);
                }
            }
            _ => {}
        }
    }
    if len < h {
        return Err(len);
    }
    match volume[l as usize..h as usize].iter().position(|&b| b != 0) {
        Some(first) => Err(l + first as u64),
        None => Ok(()),
    }
}

/// Header fields of a one-recipient header after the fixed prefix, as
/// (start, end): argument count, type length, type, share length, share,
/// body length, body, volume number, volume flags, extension length, MAC.
const FIELDS: [(u64, u64); 11] = [
    (58, 59),
    (59, 61),
    (61, 67),
    (67, 69),
    (69, 112),
    (112, 114),
    (114, 146),
    (146, 150),
    (150, 152),
    (152, 154),
    (154, 186),
];

/// age's VCHAR, the bytes a stanza argument may hold (SPEC.md §3.2).
fn vchar(b: u8) -> bool {
    (0x21..=0x7E).contains(&b)
}

/// An X25519 share argument's 32 bytes, if it is canonical unpadded base64.
fn share_bytes(text: &[u8]) -> Option<[u8; 32]> {
    use base64ct::{Base64Unpadded, Encoding};
    let mut out = [0u8; 32];
    let decoded = Base64Unpadded::decode(text, &mut out).ok()?;
    (decoded.len() == 32).then_some(out)
}

/// Whether a share is a low-order point (SPEC.md §4.2).
fn is_low_order(share: [u8; 32]) -> bool {
    let probe = x25519_dalek::StaticSecret::from([0x5A; 32]);
    !probe
        .diffie_hellman(&x25519_dalek::PublicKey::from(share))
        .was_contributory()
}

/// What opening the fixture must say when byte `pos` of volume `volume`
/// (given as input `input`) reads `new` instead of `old`, in the header or
/// its padding (SPEC.md §3, §7.1 and §7.2).
fn expect_header_flip(
    fixture: &Fixture,
    volume: u32,
    input: usize,
    pos: u64,
    old: u8,
    new: u8,
) -> Expect {
    use Expect::{Exactly, MalformedWhereTheSpecSays};
    let original = &fixture.volumes[volume as usize - 1];
    let vol_len = original.len() as u64;
    let malformed = |offset| Exactly(Failure::MalformedHeader { input, offset });
    // A header byte changed under a valid stanza: another volume of the set
    // still unlocks the file key (at most three distinct set headers are
    // tried), and this volume's MAC then fails.
    let damaged = Exactly(Failure::HeaderDamaged { volume });
    match pos {
        0..8 => Exactly(Failure::NotKuvert { input }),
        8..10 => {
            let mut version = [original[8], original[9]];
            version[pos as usize - 8] = new;
            Exactly(Failure::UnsupportedVersion {
                input,
                version: u16::from_be_bytes(version),
            })
        }
        10..14 => {
            let mut bytes = [original[10], original[11], original[12], original[13]];
            bytes[pos as usize - 10] = new;
            let l = u64::from(u32::from_be_bytes(bytes));
            if !(104..=1 << 20).contains(&l) || l > vol_len {
                // Out of the format's range (SPEC.md §7.6 H4, H5) or past
                // the end of the volume (H6): all named at the field.
                malformed(10)
            } else if l > L {
                // Parsed as before; then bytes follow the MAC within L.
                malformed(L)
            } else {
                // Cut short: the first field that no longer fits is named.
                let (start, _) = FIELDS
                    .iter()
                    .find(|&&(_, end)| end > l)
                    .copied()
                    .expect("l < L");
                malformed(start)
            }
        }
        // Set flags: none or TRAILERS alone (0x0001) parses, and the MAC fails;
        // any other change from 0 is unknown or SIGNED without TRAILERS.
        14..16 => {
            let mut flags = [original[14], original[15]];
            flags[pos as usize - 14] = new;
            if matches!(u16::from_be_bytes(flags), 0 | 0x0001) {
                damaged
            } else {
                malformed(14)
            }
        }
        // Another set id: the other two volumes agree with each other and
        // unlock, so this one is foreign (step 3).
        16..48 => Exactly(Failure::ForeignVolume { input, volume }),
        48 => {
            if (12..=24).contains(&new) {
                damaged
            } else {
                malformed(48)
            }
        }
        49..57 => {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&original[49..57]);
            bytes[pos as usize - 49] = new;
            let k = u64::from_be_bytes(bytes);
            let fits = u64::from(volume).checked_mul(k).is_some()
                && k.checked_mul(C as u64)
                    .and_then(|d| d.checked_add(H))
                    .is_some();
            if (k == 0 && volume != 1) || !fits {
                malformed(146)
            } else {
                damaged
            }
        }
        57 => match new {
            0 => malformed(57),
            // A second stanza would start at 146, where the volume number's
            // high byte (0) is read as an argument count of 0.
            _ => malformed(146),
        },
        58 => match new {
            0 => malformed(58),
            // More or fewer arguments: the rest of the stanza is read shifted.
            _ => MalformedWhereTheSpecSays,
        },
        59..61 => {
            let mut bytes = [original[59], original[60]];
            bytes[pos as usize - 59] = new;
            match u16::from_be_bytes(bytes) {
                0 => malformed(59),
                _ => MalformedWhereTheSpecSays,
            }
        }
        61..67 => {
            if vchar(new) {
                // An unknown stanza type: skipped by this volume's unlock,
                // but the key comes from the other volumes.
                damaged
            } else {
                malformed(pos)
            }
        }
        // The share's length: 0 is refused at once; any other reads the
        // stanza shifted.
        67..69 => MalformedWhereTheSpecSays,
        69..112 => {
            if !vchar(new) {
                malformed(pos)
            } else {
                let mut share = original[69..112].to_vec();
                share[pos as usize - 69] = new;
                match share_bytes(&share) {
                    // Another share: this volume's stanza no longer opens,
                    // but the key comes from the other volumes.
                    Some(point) if !is_low_order(point) => damaged,
                    _ => malformed(58),
                }
            }
        }
        112..114 => {
            let mut bytes = [original[112], original[113]];
            bytes[pos as usize - 112] = new;
            let body = u64::from(u16::from_be_bytes(bytes));
            if 114 + body > L {
                malformed(114)
            } else {
                // The body swallows or leaves bytes of the volume record, and
                // what the parser then meets depends on the random MAC bytes.
                MalformedWhereTheSpecSays
            }
        }
        114..146 => damaged,
        146..150 => {
            let mut bytes = [original[146], original[147], original[148], original[149]];
            bytes[pos as usize - 146] = new;
            match u32::from_be_bytes(bytes) {
                0 => malformed(146),
                // Named by the number it claims (not authenticated).
                claimed => Exactly(Failure::HeaderDamaged { volume: claimed }),
            }
        }
        150..152 => malformed(150),
        152..154 => {
            let mut bytes = [original[152], original[153]];
            bytes[pos as usize - 152] = new;
            let ext = u64::from(u16::from_be_bytes(bytes));
            if ext < 4 || 154 + ext > L {
                malformed(154)
            } else {
                // Records are read from the MAC's random bytes.
                MalformedWhereTheSpecSays
            }
        }
        154..186 => damaged,
        186..2048 => {
            assert_eq!(old, 0, "padding is zero");
            malformed(pos)
        }
        _ => unreachable!("not in the header"),
    }
}

/// What opening must say when byte `pos` (past the header) of volume
/// `volume` is changed: the chunk holding it fails authentication, at open
/// if it is the physically last chunk of the last volume, else when read.
fn expect_chunk_flip(fixture: &Fixture, volume: u32, pos: u64) -> Failure {
    let local = (pos - H) / C as u64;
    Failure::Unauthenticated {
        chunk: fixture.first_chunk(volume) + local,
        volume,
        offset: H + local * C as u64,
    }
}

fn check_flip(fixture: &Fixture, volume: u32, damaged: &mut [u8], pos: usize, mask: u8) {
    let input = input_of(volume);
    let old = damaged[pos];
    let new = old ^ mask;
    damaged[pos] = new;
    let got = open_damaged(fixture, volume, damaged);
    damaged[pos] = old;
    let got = match got {
        Ok(()) => panic!("volume {volume} byte {pos} ^ {mask:#04x}: opened"),
        Err(err) => err,
    };
    if pos as u64 >= H {
        let want = expect_chunk_flip(fixture, volume, pos as u64);
        assert_eq!(got, want, "volume {volume} byte {pos} ^ {mask:#04x}");
        return;
    }
    damaged[pos] = new;
    let spec = spec_malformed_at(damaged);
    damaged[pos] = old;
    let want = match expect_header_flip(fixture, volume, input, pos as u64, old, new) {
        Expect::Exactly(want) => {
            // The two models of the header agree with each other.
            match want {
                Failure::NotKuvert { .. } | Failure::UnsupportedVersion { .. } => {}
                Failure::MalformedHeader { offset, .. } => assert_eq!(
                    spec,
                    Some(offset),
                    "models disagree on volume {volume} byte {pos} ^ {mask:#04x}"
                ),
                _ => assert_eq!(
                    spec, None,
                    "models disagree on volume {volume} byte {pos} ^ {mask:#04x}"
                ),
            }
            want
        }
        Expect::MalformedWhereTheSpecSays => Failure::MalformedHeader {
            input,
            offset: spec.expect("the spec reading finds it malformed"),
        },
    };
    assert_eq!(got, want, "volume {volume} byte {pos} ^ {mask:#04x}");
}

fn flip_sweep(volume: u32, mask: u8, positions: impl Iterator<Item = usize>) {
    let fixture = Fixture::three_volumes();
    let mut damaged = fixture.volumes[volume as usize - 1].clone();
    let mut count = 0;
    for pos in positions {
        check_flip(&fixture, volume, &mut damaged, pos, mask);
        count += 1;
    }
    assert!(count > 0);
    // The sweep restored every byte: the set is whole again.
    assert_eq!(damaged, fixture.volumes[volume as usize - 1]);
    assert_eq!(open_damaged(&fixture, volume, &damaged), Ok(()));
}

#[test]
fn flipping_the_low_bit_of_any_byte_of_volume_1_is_caught() {
    flip_sweep(1, 0x01, 0..10240);
}

#[test]
fn flipping_the_low_bit_of_any_byte_of_volume_2_is_caught() {
    flip_sweep(2, 0x01, 0..10240);
}

#[test]
fn flipping_the_low_bit_of_any_byte_of_volume_3_is_caught() {
    flip_sweep(3, 0x01, 0..7160);
}

#[test]
fn flipping_the_high_bit_of_header_bytes_and_sampled_chunk_bytes_is_caught() {
    for volume in 1..=3u32 {
        let len = if volume == 3 { 7160 } else { 10240 };
        let positions = (0..H as usize).chain((H as usize..len).step_by(61));
        let positions = positions.chain([len - 1, H as usize + C - 1, H as usize + C]);
        flip_sweep(volume, 0x80, positions);
    }
}

#[test]
fn the_header_model_covers_every_region() {
    // The sweep relies on the header layout in FIELDS; check it against the
    // real header once: two arguments at 58, type at 61, share length 43 at
    // 67, body length 32 at 112, volume 1 at 146, MAC ends at L = 186,
    // padding zero to H.
    let fixture = Fixture::three_volumes();
    let v1 = &fixture.volumes[0];
    assert_eq!(&v1[..8], b"\x89KUV\r\n\x1a\n");
    assert_eq!(&v1[8..14], [0, 2, 0, 0, 0, L as u8]);
    assert_eq!(&v1[14..16], [0, 0]);
    assert_eq!(v1[48], 12);
    assert_eq!(&v1[49..57], 2u64.to_be_bytes());
    assert_eq!(v1[57], 1);
    assert_eq!(v1[58], 2);
    assert_eq!(&v1[59..61], 6u16.to_be_bytes());
    assert_eq!(&v1[61..67], b"X25519");
    assert_eq!(&v1[67..69], 43u16.to_be_bytes());
    assert!(share_bytes(&v1[69..112]).is_some());
    assert_eq!(&v1[112..114], 32u16.to_be_bytes());
    assert_eq!(&v1[146..150], 1u32.to_be_bytes());
    assert_eq!(&v1[150..154], [0, 0, 0, 0]);
    assert!(v1[L as usize..H as usize].iter().all(|&b| b == 0));
    // Set parts agree; volume records and MACs differ.
    let v2 = &fixture.volumes[1];
    assert_eq!(v1[14..146], v2[14..146]);
    assert_eq!(&v2[146..150], 2u32.to_be_bytes());
    assert_ne!(v1[154..186], v2[154..186]);
}

#[test]
fn released_bytes_stop_at_the_failing_chunk_with_any_read_size() {
    // Damage chunk 3 (volume 2, the end-of-volume chunk) and read with many
    // buffer sizes: exactly 3·P bytes come out, then the error, every time.
    let fixture = Fixture::three_volumes();
    let mut damaged = fixture.volumes[1].clone();
    damaged[H as usize + C + 100] ^= 0x40;
    for sizes in [
        &[1usize][..],
        &[P - 1],
        &[P],
        &[P + 1],
        &[3 * P + 1],
        &[usize::from(u16::MAX)],
        &[7, 4093, 12000],
    ] {
        let inputs = vec![
            fixture.volumes[0].as_slice(),
            damaged.as_slice(),
            fixture.volumes[2].as_slice(),
        ];
        let mut reader = Fixture::opener().open(inputs).expect("opens");
        let released = read_released_payload(&mut reader, sizes);
        assert_eq!(
            released.error.map(failure),
            Some(Failure::Unauthenticated {
                chunk: 3,
                volume: 2,
                offset: H + C as u64
            }),
            "read sizes {sizes:?}"
        );
        assert!(released.bytes == fixture.plaintext[..3 * P]);
        // Reading again fails again and releases nothing more.
        let mut buf = [0u8; 10];
        assert_eq!(
            expect_io_err(std::io::Read::read(&mut reader, &mut buf)),
            Failure::Unauthenticated {
                chunk: 3,
                volume: 2,
                offset: H + C as u64
            }
        );
        assert_eq!(buf, [0u8; 10]);
    }
}

/// Every length from 0 to `len` − 1 of volume `volume` of `fixture`.
fn truncation_sweep(fixture: &Fixture, volume: u32, lengths: impl Iterator<Item = u64>) {
    let input = if fixture.volumes.len() == 3 {
        input_of(volume)
    } else {
        volume as usize
    };
    let original = &fixture.volumes[volume as usize - 1];
    let mut count = 0;
    for len in lengths {
        assert!(len < original.len() as u64);
        let want = fixture.outcome_at_length(volume, input, len);
        assert!(want.is_err(), "volume {volume} cut to {len} must not open");
        let got = open_damaged(fixture, volume, &original[..len as usize]);
        assert_eq!(got, want, "volume {volume} cut to {len} bytes");
        count += 1;
    }
    assert!(count > 0);
}

#[test]
fn cutting_volume_1_at_every_length_is_caught() {
    let fixture = Fixture::three_volumes();
    truncation_sweep(&fixture, 1, 0..10240);
}

#[test]
fn cutting_volume_2_at_every_length_is_caught() {
    let fixture = Fixture::three_volumes();
    truncation_sweep(&fixture, 2, 0..10240);
}

#[test]
fn cutting_volume_3_at_every_length_is_caught() {
    let fixture = Fixture::three_volumes();
    truncation_sweep(&fixture, 3, 0..7160);
}

#[test]
fn cutting_sets_that_end_on_a_chunk_or_volume_boundary_is_caught() {
    // The header region is swept in full above; here the chunk region, every
    // 5th length plus every length within 20 bytes of a chunk boundary or
    // of the tag size (the full sweep of these costs ~4 s more and finds
    // nothing the boundaries do not).
    let near_boundaries = |end: u64| {
        (H - 2..end).filter(|len| {
            let within = len.saturating_sub(H) % C as u64;
            len % 5 == 0 || within <= 36 || within >= C as u64 - 20
        })
    };

    // Unsplit, three full chunks: the final chunk is full.
    let unsplit = Fixture::new(3 * P, None, 2);
    assert_eq!(unsplit.volumes[0].len() as u64, H + 3 * C as u64);
    truncation_sweep(&unsplit, 1, near_boundaries(H + 3 * C as u64));

    // Split, K = 2, four full chunks: the last volume is full and ends with
    // the end-of-set chunk; volume 1 ends with an end-of-volume chunk.
    let full = Fixture::new(4 * P, Some(H + 2 * C as u64), 3);
    assert_eq!(full.volumes.len(), 2);
    truncation_sweep(&full, 2, near_boundaries(H + 2 * C as u64));
    truncation_sweep(&full, 1, near_boundaries(H + 2 * C as u64));

    // The empty stream: one chunk of its payload prefix and a tag.
    let empty = Fixture::new(4, None, 4);
    assert_eq!(empty.volumes[0].len() as u64, H + 4 + 16);
    truncation_sweep(&empty, 1, 0..H + 4 + 16);
}

#[test]
fn the_length_model_agrees_with_the_spec_text() {
    // Spot checks of `outcome_at_length` against SPEC.md §7.2 step 6 itself,
    // so the sweeps above do not only compare the library with a copy of
    // itself.
    let f = Fixture::three_volumes();
    let c = C as u64;
    // Cut at a chunk boundary: the chunk before opens as interior.
    assert_eq!(
        f.outcome_at_length(3, 1, H + c),
        Err(Failure::Truncated {
            volume: 3,
            length: H + c
        })
    );
    // Cut inside a chunk after data, exactly a tag left: no final chunk
    // after data is a bare tag, so the length proves the cut.
    assert_eq!(
        f.outcome_at_length(3, 1, H + c + 16),
        Err(Failure::Truncated {
            volume: 3,
            length: H + c + 16
        })
    );
    // Cut inside a chunk, more than a tag left: damage.
    assert_eq!(
        f.outcome_at_length(3, 1, H + c + 17),
        Err(Failure::Unauthenticated {
            chunk: 5,
            volume: 3,
            offset: H + c
        })
    );
    // Less than a tag left: cut short.
    assert_eq!(
        f.outcome_at_length(3, 1, H + c + 15),
        Err(Failure::Truncated {
            volume: 3,
            length: H + c + 15
        })
    );
    // Only the header: cut short.
    assert_eq!(
        f.outcome_at_length(3, 1, H),
        Err(Failure::Truncated {
            volume: 3,
            length: H
        })
    );
    // A full volume one byte short.
    assert_eq!(
        f.outcome_at_length(1, 2, H + 2 * c - 1),
        Err(Failure::Truncated {
            volume: 1,
            length: H + 2 * c - 1
        })
    );
    assert_eq!(f.outcome_at_length(3, 1, 7160), Ok(()));
}

#[test]
fn a_missing_volume_is_named() {
    let fixture = Fixture::three_volumes();
    let opener = Fixture::opener();
    let v = &fixture.volumes;
    assert_eq!(
        open_err(&opener, vec![&v[1], &v[2]]),
        Failure::VolumeMissing { volume: 1 }
    );
    assert_eq!(
        open_err(&opener, vec![&v[2], &v[0]]),
        Failure::VolumeMissing { volume: 2 }
    );
    // Without the last volume, volume 2 ends with an end-of-volume chunk.
    assert_eq!(
        open_err(&opener, vec![&v[1], &v[0]]),
        Failure::VolumeMissing { volume: 3 }
    );
    assert_eq!(
        open_err(&opener, vec![&v[0]]),
        Failure::VolumeMissing { volume: 2 }
    );
    assert_eq!(
        open_err(&opener, vec![&v[2]]),
        Failure::VolumeMissing { volume: 1 }
    );
    // Each volume still verifies on its own.
    for (index, volume) in v.iter().enumerate() {
        let report = opener.verify_volume(volume).expect("intact");
        assert_eq!(report.volume as usize, index + 1);
        assert_eq!(report.chunks, 2);
    }
}

#[test]
fn a_volume_given_twice_is_named_with_both_inputs() {
    let fixture = Fixture::three_volumes();
    let opener = Fixture::opener();
    let v = &fixture.volumes;
    assert_eq!(
        open_err(&opener, vec![&v[0], &v[1], &v[1], &v[2]]),
        Failure::DuplicateVolume {
            volume: 2,
            first: 2,
            second: 3
        }
    );
    assert_eq!(
        open_err(&opener, vec![&v[2], &v[0], &v[1], &v[2]]),
        Failure::DuplicateVolume {
            volume: 3,
            first: 1,
            second: 4
        }
    );
    assert_eq!(
        open_err(&opener, vec![&v[0], &v[0]]),
        Failure::DuplicateVolume {
            volume: 1,
            first: 1,
            second: 2
        }
    );
}

#[test]
fn a_volume_of_another_set_is_foreign_even_with_the_same_key_and_data() {
    let fixture = Fixture::three_volumes();
    // Sealed again to the same key from the same data: same sizes, new set.
    let other = seal_payload(&fixture.plaintext, C, Some(H + 2 * C as u64), &identity(1));
    assert_eq!(other.len(), 3);
    let opener = Fixture::opener();
    let v = &fixture.volumes;
    assert_eq!(
        open_err(&opener, vec![&v[0], &v[1], &other[2]]),
        Failure::ForeignVolume {
            input: 3,
            volume: 3
        }
    );
    // The set most volumes agree on is the reference, whatever the order.
    assert_eq!(
        open_err(&opener, vec![&other[0], &v[1], &v[2]]),
        Failure::ForeignVolume {
            input: 1,
            volume: 1
        }
    );
    assert_eq!(
        open_err(&opener, vec![&v[1], &other[0], &other[1]]),
        Failure::ForeignVolume {
            input: 1,
            volume: 2
        }
    );
    // A foreign volume sealed to a stranger is foreign too: the set that
    // unlocks is the reference even if it is not the majority.
    let stranger = seal_payload(&fixture.plaintext, C, Some(H + 2 * C as u64), &identity(2));
    assert_eq!(
        open_err(&opener, vec![&v[0], &stranger[1], &stranger[2]]),
        Failure::ForeignVolume {
            input: 2,
            volume: 2
        }
    );
}

/// Garbage sizes around the chunk and tag boundaries.
const GARBAGE: [u64; 14] = [
    1, 2, 15, 16, 17, 100, 3079, 3080, 3081, 4095, 4096, 4097, 4112, 9000,
];

fn garbage_sweep(fixture: &Fixture) {
    for volume in 1..=fixture.volumes.len() as u32 {
        let input = if fixture.volumes.len() == 3 {
            input_of(volume)
        } else {
            volume as usize
        };
        for extra in GARBAGE {
            let mut longer = fixture.volumes[volume as usize - 1].clone();
            longer.extend_from_slice(&data(extra as usize, extra));
            let want = fixture.outcome_at_length(volume, input, longer.len() as u64);
            assert_eq!(
                open_damaged(fixture, volume, &longer),
                want,
                "volume {volume} + {extra} bytes"
            );
        }
    }
}

#[test]
fn trailing_garbage_is_caught() {
    // Full volumes: always TrailingData at the end of their last chunk.
    // The last volume, whose final chunk is partial: garbage that stays
    // within its chunk slot cannot be told from damage to that chunk, so the
    // spec reports Unauthenticated (§7.2 step 6), unless the volume grows past
    // K chunks (TrailingData at H + K·C).
    let fixture = Fixture::three_volumes();
    let full = H + 2 * C as u64;
    assert_eq!(
        fixture.outcome_at_length(1, 2, full + 1),
        Err(Failure::TrailingData {
            volume: 1,
            offset: full
        })
    );
    assert_eq!(
        fixture.outcome_at_length(3, 1, 7160 + 100),
        Err(Failure::Unauthenticated {
            chunk: 5,
            volume: 3,
            offset: H + C as u64
        })
    );
    assert_eq!(
        fixture.outcome_at_length(3, 1, 7160 + 3081),
        Err(Failure::TrailingData {
            volume: 3,
            offset: full
        })
    );
    garbage_sweep(&fixture);

    // Unsplit with a full final chunk: up to one chunk of garbage is named
    // TrailingData at the end of the final chunk (the chunk before the
    // physically last one opens as end of set).
    let unsplit = Fixture::new(3 * P, None, 2);
    let end = H + 3 * C as u64;
    for extra in [1, 15, 16, 100, C as u64] {
        assert_eq!(
            unsplit.outcome_at_length(1, 1, end + extra),
            Err(Failure::TrailingData {
                volume: 1,
                offset: end
            })
        );
    }
    garbage_sweep(&unsplit);

    // Unsplit with a partial final chunk.
    garbage_sweep(&Fixture::new(2 * P + 5, None, 5));
    // Split, last volume full.
    garbage_sweep(&Fixture::new(4 * P, Some(H + 2 * C as u64), 3));
}

/// Swaps the `C`-byte chunk slots `a` and `b` (global indices) of a set with
/// K = 2, returning the new volumes.
fn swap_chunks(fixture: &Fixture, a: u64, b: u64) -> Vec<Vec<u8>> {
    let mut volumes = fixture.volumes.clone();
    let at = |g: u64| {
        let volume = (g / fixture.k) as usize;
        let start = (H + (g % fixture.k) * C as u64) as usize;
        (volume, start)
    };
    let (va, sa) = at(a);
    let (vb, sb) = at(b);
    let chunk_a = volumes[va][sa..sa + C].to_vec();
    let chunk_b = volumes[vb][sb..sb + C].to_vec();
    volumes[va][sa..sa + C].copy_from_slice(&chunk_b);
    volumes[vb][sb..sb + C].copy_from_slice(&chunk_a);
    volumes
}

#[test]
fn swapped_chunks_fail_at_the_first_moved_one() {
    let fixture = Fixture::three_volumes();
    let c = C as u64;
    // (a, b): both full chunks; reading fails at the smaller index, in its
    // slot. Within a volume (0↔1: interior ↔ end of volume), between volumes
    // at the same local index (0↔2, 1↔3) and at different ones (3↔4).
    for (a, b) in [(0, 1), (0, 2), (1, 3), (3, 4), (2, 4), (0, 4)] {
        let swapped = swap_chunks(&fixture, a, b);
        // Chunk 0 holds the payload prefix: `open` authenticates it.
        let released = open_released_payload(&Fixture::opener(), swapped, &[2000]);
        let volume = (a / 2 + 1) as u32;
        assert_eq!(
            released.error.map(failure),
            Some(Failure::Unauthenticated {
                chunk: a,
                volume,
                offset: H + (a % 2) * c
            }),
            "swap {a} <-> {b}"
        );
        assert!(released.bytes == fixture.plaintext[..a as usize * P]);
    }

    // Whole data areas of volumes 1 and 2 exchanged under their headers.
    let mut volumes = fixture.volumes.clone();
    let (first, second) = volumes.split_at_mut(1);
    first[0][H as usize..].swap_with_slice(&mut second[0][H as usize..]);
    assert_eq!(
        open_damaged(&fixture, 1, &volumes[0]),
        Err(Failure::Unauthenticated {
            chunk: 0,
            volume: 1,
            offset: H
        })
    );

    // Chunk 4 removed: the final chunk moves into slot 4, and as the first
    // chunk of its volume it is simply damage there.
    let mut shorter = fixture.volumes[2].clone();
    shorter.drain(H as usize..H as usize + C);
    assert_eq!(
        open_damaged(&fixture, 3, &shorter),
        Err(Failure::Unauthenticated {
            chunk: 4,
            volume: 3,
            offset: H
        })
    );

    // Chunk 1 duplicated over chunk 0 (same bytes twice).
    let mut doubled = fixture.volumes[0].clone();
    doubled.copy_within(H as usize + C..H as usize + 2 * C, H as usize);
    assert_eq!(
        open_damaged(&fixture, 1, &doubled),
        Err(Failure::Unauthenticated {
            chunk: 0,
            volume: 1,
            offset: H
        })
    );

    // In an unsplit set too.
    let unsplit = Fixture::new(4 * P + 7, None, 6);
    let mut volume = unsplit.volumes[0].clone();
    let (h, c) = (H as usize, C);
    let (one, two) = volume[h + c..h + 3 * c].split_at_mut(c);
    one.swap_with_slice(two);
    assert_eq!(
        open_damaged(&unsplit, 1, &volume),
        Err(Failure::Unauthenticated {
            chunk: 1,
            volume: 1,
            offset: H + C as u64
        })
    );
}

#[test]
fn chunks_from_another_set_with_the_same_key_do_not_authenticate() {
    // Same recipient, same plaintext, same geometry: only the file key and
    // set id differ, and so every chunk's key.
    let fixture = Fixture::three_volumes();
    let other = seal_payload(&fixture.plaintext, C, Some(H + 2 * C as u64), &identity(1));
    let mut mixed = fixture.volumes[1].clone();
    mixed[H as usize..].copy_from_slice(&other[1][H as usize..]);
    assert_eq!(
        open_damaged(&fixture, 2, &mixed),
        Err(Failure::Unauthenticated {
            chunk: 2,
            volume: 2,
            offset: H
        })
    );
    let mut mixed = fixture.volumes[2].clone();
    mixed[H as usize..].copy_from_slice(&other[2][H as usize..]);
    assert_eq!(
        open_damaged(&fixture, 3, &mixed),
        Err(Failure::Unauthenticated {
            chunk: 5,
            volume: 3,
            offset: H + C as u64
        })
    );
    // A whole header from the other set over this set's chunks.
    let mut mixed = fixture.volumes[0].clone();
    mixed[..H as usize].copy_from_slice(&other[0][..H as usize]);
    assert_eq!(
        open_damaged(&fixture, 1, &mixed),
        Err(Failure::ForeignVolume {
            input: input_of(1),
            volume: 1
        })
    );
}

#[test]
fn damage_in_a_single_unsplit_volume_names_the_key_or_the_header() {
    // With one volume there is no other header to get the key from: a
    // damaged stanza is NoMatchingKey, anything else under the MAC is
    // HeaderDamaged, the set id included.
    let fixture = Fixture::new(100, None, 7);
    let opener = Fixture::opener();
    let flip = |pos: usize| {
        let mut volume = fixture.volumes[0].clone();
        volume[pos] ^= 0x01;
        open_err(&opener, vec![volume])
    };
    assert_eq!(
        flip(62),
        Failure::NoMatchingKey {
            stanza_types: types(&["X35519"])
        }
    );
    for pos in [114, 130, 145] {
        assert_eq!(
            flip(pos),
            Failure::NoMatchingKey {
                stanza_types: types(&["X25519"])
            },
            "byte {pos}"
        );
    }
    for pos in [16, 47, 48, 56, 154, 185] {
        assert_eq!(
            flip(pos),
            Failure::HeaderDamaged { volume: 1 },
            "byte {pos}"
        );
    }
    // Volume number 1 → 0 is malformed; → 3 in an unsplit set is too.
    assert_eq!(
        flip(149),
        Failure::MalformedHeader {
            input: 1,
            offset: 146
        }
    );
    let mut volume = fixture.volumes[0].clone();
    volume[149] = 3;
    assert_eq!(
        open_err(&opener, vec![volume]),
        Failure::MalformedHeader {
            input: 1,
            offset: 146
        }
    );
}

use common::forge;

fn no_extensions(_: u32) -> Vec<u8> {
    Vec::new()
}

fn forged_opener() -> Opener {
    Opener::new().identity(forge::identity())
}

#[test]
fn the_forger_reproduces_the_spec_worked_example() {
    // Checks the independent implementation against SPEC.md §3.5, so the
    // key-holder tests below build what the spec says, not what the library
    // happens to do.
    let set = forge::Set::new(0);
    assert_eq!(
        set.header_key(),
        forge::array32("eaed95f55877d18c5bc1991d72bcb233154cabe44cfdb0bad039e47bccae9488")
    );
    assert_eq!(
        set.payload_key(),
        forge::array32("3616f73a60bad1808dc78b293fd5b2b2cfbad08ede9c19cbb302516949778cee")
    );
    // The payload: the stream prefix (SPEC.md §6.7), then the content.
    let volumes = set.seal(b"\0\0\0\0hello", &no_extensions);
    assert_eq!(volumes.len(), 1);
    let volume = &volumes[0];
    assert_eq!(volume.len(), 2073);
    assert_eq!(
        volume[154..186],
        forge::hex("19c8694a251832670481074a50e340df2ecc114bae6c39da9d03e9258d767161")
    );
    assert_eq!(
        volume[2048..],
        forge::hex("0c0344d5d7b686c2a79d6c14ce8a105a10b98eb4cbe923bdf1")
    );
    assert_eq!(
        common::open(volumes, forge::identity()).expect("the example opens"),
        b"hello"
    );
}

#[test]
fn sets_built_from_the_spec_alone_open_in_the_library() {
    // Chunk nonces, flags, placement and key schedule: built here from
    // SPEC.md, read by the library.
    for (k, len) in [
        (0u64, 4usize),
        (0, 5),
        (0, 3 * P),
        (0, 3 * P + 1),
        (1, 3 * P),
        (2, 5 * P + 1000),
        (3, 3 * P),
        (3, 7 * P + 9),
    ] {
        let set = forge::Set::new(k);
        let plaintext = payload(len, k * 1000 + len as u64);
        let volumes = set.seal(&plaintext, &no_extensions);
        for (index, volume) in volumes.iter().enumerate() {
            let report = forged_opener().verify_volume(volume).expect("verify");
            assert_eq!(report.volume as usize, index + 1);
            assert_eq!(report.last_in_set, index + 1 == volumes.len());
        }
        let mut reversed = volumes.clone();
        reversed.reverse();
        assert!(
            common::open(reversed, forge::identity()).expect("open") == content(&plaintext),
            "K = {k}, len = {len}"
        );
        // And the library's own sets match the spec's layout: same lengths.
        let ours = seal_payload(
            &plaintext,
            C,
            (k > 0).then(|| H + k * C as u64),
            &identity(1),
        );
        let lens = |v: &Vec<Vec<u8>>| v.iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(lens(&ours), lens(&volumes));
    }
}

#[test]
fn optional_extension_records_in_a_volume_record_are_skipped() {
    // SPEC.md §3.3: non-critical records are authenticated by the MAC and
    // skipped; they differ per volume without making the set part differ.
    let set = forge::Set::new(2);
    let plaintext = payload(5 * P + 1000, 8);
    let volumes = set.seal(&plaintext, &|v| match v {
        2 => vec![0x00, 0x07, 0x00, 0x03, 0xAA, 0xBB, 0xCC],
        3 => vec![0x12, 0x34, 0x00, 0x00, 0x7F, 0xFF, 0x00, 0x01, 0x00],
        _ => Vec::new(),
    });
    assert_eq!(volumes.len(), 3);
    assert_eq!(
        common::open(volumes, forge::identity()).expect("open"),
        content(&plaintext)
    );
}

/// A set whose volume `odd` carries a 1900-byte optional extension record,
/// so that its L is 2091 and its H 4096 while the others have H = 2048.
fn set_with_one_long_header(odd: u32) -> (Vec<Vec<u8>>, Vec<u8>) {
    let set = forge::Set::new(2);
    let plaintext = payload(5 * P + 1000, 9);
    let volumes = set.seal(&plaintext, &|v| {
        if v == odd {
            let mut record = vec![0x00, 0x01];
            record.extend_from_slice(&1900u16.to_be_bytes());
            record.resize(4 + 1900, 0xEE);
            record
        } else {
            Vec::new()
        }
    });
    let info = inspect(&volumes[odd as usize - 1]).expect("well-formed");
    assert_eq!(info.header_len, 4096);
    (volumes, plaintext)
}

#[test]
fn a_volume_with_a_longer_header_verifies_on_its_own() {
    for odd in 1..=3 {
        let (volumes, _) = set_with_one_long_header(odd);
        for (index, volume) in volumes.iter().enumerate() {
            let report = forged_opener().verify_volume(volume).expect("verify");
            assert_eq!(report.volume as usize, index + 1);
            assert_eq!(report.chunks, 2);
        }
    }
}

#[test]
fn each_volume_places_its_chunks_after_its_own_header() {
    // SPEC.md §3.4, §6.3, §7.2 step 3: H_v comes from each volume's own L.
    let mut wrong = Vec::new();
    for odd in 1..=3 {
        let (volumes, plaintext) = set_with_one_long_header(odd);
        match common::open(volumes, forge::identity()) {
            Ok(opened) => assert!(opened == content(&plaintext), "volume {odd} with H = 4096"),
            Err(err) => wrong.push((odd, failure(err))),
        }
    }
    assert!(wrong.is_empty(), "(volume with H = 4096, error): {wrong:?}");
}

#[test]
fn an_empty_final_chunk_after_data_is_malformed() {
    // F1: only a key holder can write it; the reference encoder never does.
    let set = forge::Set::new(0);
    let p = set.plain_len();
    let volume = set.volume(
        1,
        &[],
        &[set.chunk(0, 0x00, &data(p, 1)), set.chunk(1, 0x01, &[])],
    );
    let want = Failure::MalformedChunk {
        chunk: 1,
        volume: 1,
    };
    assert_eq!(open_err(&forged_opener(), vec![volume.clone()]), want);
    assert_eq!(
        failure(
            forged_opener()
                .verify_volume(&volume)
                .expect_err("malformed")
        ),
        want
    );

    // At the start of a later volume.
    let set = forge::Set::new(2);
    let v1 = set.volume(
        1,
        &[],
        &[
            set.chunk(0, 0x00, &data(p, 2)),
            set.chunk(1, 0x02, &data(p, 3)),
        ],
    );
    let v2 = set.volume(2, &[], &[set.chunk(2, 0x01, &[])]);
    assert_eq!(
        open_err(&forged_opener(), vec![v1, v2]),
        Failure::MalformedChunk {
            chunk: 2,
            volume: 2
        }
    );
}

#[test]
fn an_end_of_volume_chunk_anywhere_but_a_full_volume_end_is_malformed() {
    // F2, K = 3.
    let set = forge::Set::new(3);
    let p = set.plain_len();
    let full = |g: u64, flag: u8| set.chunk(g, flag, &data(p, g));
    let v1 = set.volume(1, &[], &[full(0, 0x00), full(1, 0x00), full(2, 0x02)]);

    // Volume 2 ends after two chunks with an end-of-volume chunk.
    let v2 = set.volume(2, &[], &[full(3, 0x00), full(4, 0x02)]);
    let want = Failure::MalformedChunk {
        chunk: 4,
        volume: 2,
    };
    assert_eq!(
        open_err(&forged_opener(), vec![v1.clone(), v2.clone()]),
        want
    );
    assert_eq!(
        failure(forged_opener().verify_volume(&v2).expect_err("malformed")),
        want
    );

    // At local index K − 1 but not a full chunk.
    let short = set.chunk(5, 0x02, &data(100, 5));
    let v2 = set.volume(2, &[], &[full(3, 0x00), full(4, 0x00), short]);
    assert_eq!(
        open_err(&forged_opener(), vec![v1.clone(), v2]),
        Failure::MalformedChunk {
            chunk: 5,
            volume: 2
        }
    );

    // At a full volume end it is an intact volume whose successor is missing.
    let v2 = set.volume(2, &[], &[full(3, 0x00), full(4, 0x00), full(5, 0x02)]);
    assert_eq!(
        open_err(&forged_opener(), vec![v1, v2.clone()]),
        Failure::VolumeMissing { volume: 3 }
    );
    let report = forged_opener().verify_volume(&v2).expect("intact");
    assert!(!report.last_in_set);
}

#[test]
fn wrong_flags_on_interior_chunks_fail_when_read() {
    let set = forge::Set::new(0);
    let p = set.plain_len();
    let plaintext = payload(3 * p - 7, 4);
    let chunk = |g: usize, flag: u8| {
        let end = ((g + 1) * p).min(plaintext.len());
        set.chunk(g as u64, flag, &plaintext[g * p..end])
    };
    let c = set.chunk_len() as u64;

    // A second end-of-set chunk before the final one; an end-of-volume
    // chunk in an unsplit set.
    for (flags, bad) in [([0x00, 0x01, 0x01], 1u64), ([0x02, 0x00, 0x01], 0)] {
        let volume = set.volume(
            1,
            &[],
            &[chunk(0, flags[0]), chunk(1, flags[1]), chunk(2, flags[2])],
        );
        if bad > 0 {
            let reader = forged_opener()
                .open(vec![volume.clone()])
                .expect("the final chunk and chunk 0 are right");
            assert_eq!(reader.len(), content(&plaintext).len() as u64);
        }
        let released = open_released_payload(&forged_opener(), vec![volume], &[700]);
        assert_eq!(
            released.error.map(failure),
            Some(Failure::Unauthenticated {
                chunk: bad,
                volume: 1,
                offset: H + bad * c
            }),
            "flags {flags:?}"
        );
        assert!(released.bytes == plaintext[..bad as usize * p]);
    }

    // The final chunk flagged end-of-volume in an unsplit set: 0x02 is never
    // tried without K (F7).
    let volume = set.volume(1, &[], &[chunk(0, 0x00), chunk(1, 0x00), chunk(2, 0x02)]);
    assert_eq!(
        open_err(&forged_opener(), vec![volume]),
        Failure::Unauthenticated {
            chunk: 2,
            volume: 1,
            offset: H + 2 * c
        }
    );
}

#[test]
fn a_set_part_that_differs_under_a_valid_mac_is_damage() {
    // S3: the MAC of volume 2 verifies under the file key, but its set part
    // is not the reference's.
    let set = forge::Set::new(2);
    let plaintext = data(5 * P + 1000, 10);
    let volumes = set.seal(&plaintext, &no_extensions);
    let mut other = set.clone();
    other.stanzas.push((b"note".to_vec(), b"hi".to_vec()));
    let mut exponent = set.clone();
    exponent.chunk_exp = 13;
    let mut per_volume = set.clone();
    per_volume.k = 3;
    for changed in [&other, &exponent, &per_volume] {
        let mut v2 = changed.header(2, &[]);
        v2.resize(v2.len().div_ceil(2048) * 2048, 0);
        v2.extend_from_slice(&volumes[1][H as usize..]);
        assert_eq!(
            open_err(
                &forged_opener(),
                vec![volumes[0].clone(), v2.clone(), volumes[2].clone()]
            ),
            Failure::HeaderDamaged { volume: 2 }
        );
        // Given first, the odd header ties with the others on set id and
        // wins on input position: it becomes the reference, and the first
        // volume that disagrees with it (volume 1, input 2) is named.
        assert_eq!(
            open_err(
                &forged_opener(),
                vec![v2, volumes[0].clone(), volumes[2].clone()]
            ),
            Failure::HeaderDamaged { volume: 1 }
        );
    }
}

#[test]
fn stanzas_are_tried_in_header_order_and_a_cap_stops_the_search() {
    // SPEC.md §4.4: an over-cap argon2id stanza stops unlocking when a
    // passphrase is given, even if a later stanza would match; without a
    // passphrase it is skipped.
    let mut body = vec![0x11; 16];
    body.extend_from_slice(&u32::MAX.to_be_bytes());
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&[0x22; 64]);
    let mut set = forge::Set::new(0);
    set.stanzas = vec![(b"argon2id".to_vec(), body), forge::x25519_stanza()];
    let volumes = set.seal(b"\0\0\0\0ordered", &no_extensions);
    assert_eq!(
        common::open(volumes.clone(), forge::identity()).expect("the x25519 stanza opens"),
        b"ordered"
    );
    let both = forged_opener().passphrase("anything".into());
    assert_eq!(
        open_err(&both, volumes),
        Failure::LimitExceeded {
            what: "argon2id memory (KiB)",
            found: u64::from(u32::MAX),
            limit: 2 * 1024 * 1024
        }
    );

    // A modest argon2id stanza whose commitment does not match comes first:
    // the wrong passphrase is noted, and the x25519 stanza still opens.
    let mut body = vec![0x11; 16];
    body.extend_from_slice(&1024u32.to_be_bytes());
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&[0x22; 64]);
    set.stanzas[0].1 = body;
    let volumes = set.seal(b"\0\0\0\0ordered", &no_extensions);
    assert_eq!(
        common::open_with(&both, volumes.clone()).expect("opens"),
        b"ordered"
    );
    assert_eq!(
        open_err(&Opener::new().passphrase("anything".into()), volumes),
        Failure::WrongPassphrase
    );
}

#[test]
fn altered_passphrase_stanzas_name_the_passphrase_or_the_damage() {
    // One volume sealed to a passphrase only (Argon2id at MINIMUM costs,
    // ~0.1 s per derivation; this test runs ten).
    let volumes = common::seal_with(
        &kuvert::Sealer::new()
            .passphrase("river stone".into())
            .argon2_params(kuvert::Argon2Params::MINIMUM)
            .chunk_size(C),
        b"ledger",
        &[usize::MAX],
    );
    let original = &volumes[0];
    // The argon2id stanza: one argument, its type at 61 ("argon2id", 8
    // bytes), body at 71: salt 71..87, m 87..91, t 91..95, p 95..99,
    // commitment 99..131, wrapped key 131..163.
    assert_eq!(original[58], 1);
    assert_eq!(&original[61..69], b"argon2id");
    assert_eq!(&original[69..71], 92u16.to_be_bytes());
    assert_eq!(original[87..91], (64u32 * 1024).to_be_bytes());
    let opener = Opener::new().passphrase("river stone".into());
    let flip = |pos: usize, mask: u8| {
        let mut volume = original.clone();
        volume[pos] ^= mask;
        open_err(&opener, vec![volume])
    };
    // Salt, costs (still valid and under the caps) and commitment change
    // what the passphrase derives or what it is compared with.
    for pos in [71, 86, 90, 94, 98, 99, 130] {
        assert_eq!(flip(pos, 0x01), Failure::WrongPassphrase, "byte {pos}");
    }
    // The wrapped key: the commitment matched, so this is damage (U3).
    for pos in [131, 162] {
        assert_eq!(
            flip(pos, 0x01),
            Failure::HeaderDamaged { volume: 1 },
            "byte {pos}"
        );
    }
    // Costs pushed over a cap are refused before any work.
    assert_eq!(
        flip(87, 0x80),
        Failure::LimitExceeded {
            what: "argon2id memory (KiB)",
            found: u64::from(0x8001_0000u32),
            limit: 2 * 1024 * 1024
        }
    );
    assert_eq!(
        flip(91, 0x01),
        Failure::LimitExceeded {
            what: "argon2id passes",
            found: 0x0100_0003,
            limit: 8
        }
    );
    // Lanes pushed to 2^24 + 4: malformed before any key is tried.
    assert_eq!(
        flip(95, 0x01),
        Failure::MalformedHeader {
            input: 1,
            offset: 58
        }
    );
}

#[test]
fn verify_volume_classifies_cut_and_lengthened_volumes() {
    let fixture = Fixture::three_volumes();
    let opener = Fixture::opener();
    let c = C as u64;
    for volume in 1..=3u32 {
        let original = &fixture.volumes[volume as usize - 1];
        let full = original.len() as u64;
        let lengths = (H - 3..full)
            .filter(|&len| {
                let off = len.saturating_sub(H) % c;
                len < H || off < 20 || off > c - 20 || len % 97 == 0
            })
            .chain(GARBAGE.iter().map(|g| full + g))
            .chain([full]);
        for len in lengths {
            let mut bytes = original.clone();
            bytes.resize(len as usize, 0);
            if len > full {
                bytes[full as usize..].copy_from_slice(&data((len - full) as usize, len));
            }
            let got = opener
                .verify_volume(&bytes)
                .map(|report| report.last_in_set)
                .map_err(failure);
            assert_eq!(
                got,
                fixture.verify_outcome_at_length(volume, len),
                "volume {volume} at {len} bytes"
            );
        }
    }
    // SPEC.md §7.4: the last chunk is classified first, as in `open`, so
    // bytes after a full final chunk are TrailingData and a cut inside a
    // full volume's last chunk is damage to that chunk, not a failing
    // interior chunk.
    let unsplit = Fixture::new(3 * P, None, 2);
    let mut longer = unsplit.volumes[0].clone();
    longer.extend_from_slice(&[0u8; 100]);
    let trailing = Failure::TrailingData {
        volume: 1,
        offset: H + 3 * c,
    };
    assert_eq!(
        failure(opener.verify_volume(&longer).expect_err("garbage")),
        trailing
    );
    assert_eq!(open_err(&opener, vec![longer]), trailing);
    assert_eq!(
        fixture.verify_outcome_at_length(1, H + c + 100),
        Err(Failure::Unauthenticated {
            chunk: 1,
            volume: 1,
            offset: H + c
        })
    );
}

#[test]
fn at_most_three_candidate_headers_are_tried() {
    // Four single-volume sets, each its own set id: three sealed to a
    // stranger, the fourth to us. All groups count 1, so they are tried in
    // input order, and only the first three (SPEC.md §7.2 step 2): the
    // error is that of the first attempt. Had the fourth been tried, it
    // would have unlocked and input 1 would be named as foreign.
    let stranger: Vec<Vec<u8>> = (0..3)
        .map(|i| seal(&data(10, i), C, None, &identity(2)).remove(0))
        .collect();
    let ours = seal(&data(10, 9), C, None, &identity(1)).remove(0);
    let mut inputs = stranger.clone();
    inputs.push(ours.clone());
    assert_eq!(
        open_err(&Fixture::opener(), inputs),
        Failure::NoMatchingKey {
            stanza_types: types(&["X25519"])
        }
    );
    // Third in line, ours is tried and becomes the reference.
    let inputs = vec![stranger[0].clone(), stranger[1].clone(), ours];
    assert_eq!(
        open_err(&Fixture::opener(), inputs),
        Failure::ForeignVolume {
            input: 1,
            volume: 1
        }
    );
}
