//! Hostile headers built byte by byte from the layout in SPEC.md §3:
//! every bound and every "malformed" rule, each with its exact error and
//! offset, checked before any key is tried or any Argon2 work is done.

mod common;

use std::time::{Duration, Instant};

use kuvert::{Limits, Opener, X25519Identity, inspect};

use common::{Failure, failure, forge, identity, types};

const MAGIC: [u8; 8] = *b"\x89KUV\r\n\x1a\n";
const MIB: u64 = 1 << 20;
/// Offset of the first stanza: magic, version, L, set flags, set id, chunk
/// exponent, K, stanza count.
const STANZAS_AT: u64 = 58;

/// A header in the v2 layout with every field settable, valid by default
/// except for its MAC (which no pre-key check reads).
#[derive(Clone)]
struct Header {
    magic: [u8; 8],
    version: u16,
    /// Overrides the computed header length L.
    header_len: Option<u32>,
    set_flags: u16,
    set_id: [u8; 32],
    chunk_exp: u8,
    chunks_per_volume: u64,
    /// Overrides the stanza count.
    stanza_count: Option<u8>,
    /// Each stanza's bytes (SPEC.md §3.2), from [`stanza`] or [`raw_stanza`].
    stanzas: Vec<Vec<u8>>,
    volume: u32,
    volume_flags: u16,
    /// Overrides the extension area length.
    extension_len: Option<u16>,
    extensions: Vec<u8>,
    mac: [u8; 32],
    /// Bytes between the MAC and the end of L.
    after_mac: Vec<u8>,
    /// Bytes after the padded header: one chunk's worth by default.
    payload: Vec<u8>,
}

/// A well-formed X25519 share argument: a real public key, as unpadded
/// base64.
fn x25519_share() -> String {
    use base64ct::{Base64Unpadded, Encoding};
    Base64Unpadded::encode_string(&identity(77).to_public().to_bytes())
}

/// A well-formed X25519 stanza: a valid share and a wrapped key that opens
/// for nobody.
fn x25519_stanza() -> Vec<u8> {
    stanza(&format!("X25519 {}", x25519_share()), vec![0x3C; 32])
}

/// An argon2id stanza body with the given costs: salt, m, t, p,
/// commitment, wrapped key.
fn argon2id_body(memory_kib: u32, passes: u32, lanes: u32) -> Vec<u8> {
    let mut body = vec![0x11; 16];
    body.extend_from_slice(&memory_kib.to_be_bytes());
    body.extend_from_slice(&passes.to_be_bytes());
    body.extend_from_slice(&lanes.to_be_bytes());
    body.extend_from_slice(&[0x22; 32]);
    body.extend_from_slice(&[0x33; 32]);
    body
}

/// A stanza from its line (type and arguments, separated by single spaces)
/// and its body.
fn stanza(line: &str, body: Vec<u8>) -> Vec<u8> {
    forge::encode_stanza(line.as_bytes(), &body)
}

/// A stanza from any arguments at all (type first; none, empty ones, bytes
/// outside VCHAR) and a body, as SPEC.md §3.2 lays them out.
fn raw_stanza(args: &[&[u8]], body: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::try_from(args.len()).expect("at most 255 arguments")];
    for arg in args {
        out.extend_from_slice(&u16::try_from(arg.len()).expect("short").to_be_bytes());
        out.extend_from_slice(arg);
    }
    out.extend_from_slice(&u16::try_from(body.len()).expect("short").to_be_bytes());
    out.extend_from_slice(body);
    out
}

impl Header {
    fn new() -> Self {
        Header {
            magic: MAGIC,
            version: 2,
            header_len: None,
            set_flags: 0,
            set_id: [0x5E; 32],
            chunk_exp: 12,
            chunks_per_volume: 0,
            stanza_count: None,
            stanzas: vec![x25519_stanza()],
            volume: 1,
            volume_flags: 0,
            extension_len: None,
            extensions: Vec::new(),
            mac: [0xAA; 32],
            after_mac: Vec::new(),
            payload: vec![0x77; 4096],
        }
    }

    fn stanzas(mut self, stanzas: Vec<Vec<u8>>) -> Self {
        self.stanzas = stanzas;
        self
    }

    /// Offset of stanza `index` (its argument count).
    fn stanza_at(&self, index: usize) -> u64 {
        STANZAS_AT
            + self.stanzas[..index]
                .iter()
                .map(|stanza| stanza.len() as u64)
                .sum::<u64>()
    }

    /// Offset of the volume record (the volume number).
    fn volume_at(&self) -> u64 {
        self.stanza_at(self.stanzas.len())
    }

    /// Offset of the extension area.
    fn extensions_at(&self) -> u64 {
        self.volume_at() + 8
    }

    /// Offset of the MAC.
    fn mac_at(&self) -> u64 {
        self.extensions_at() + self.extensions.len() as u64
    }

    /// The header length the fields add up to.
    fn natural_len(&self) -> u64 {
        self.mac_at() + 32 + self.after_mac.len() as u64
    }

    /// Header bytes `0..L` as the fields make them.
    fn header_bytes(&self) -> Vec<u8> {
        let len = self
            .header_len
            .unwrap_or(u32::try_from(self.natural_len()).expect("test headers fit u32"));
        let mut out = Vec::new();
        out.extend_from_slice(&self.magic);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.set_flags.to_be_bytes());
        out.extend_from_slice(&self.set_id);
        out.push(self.chunk_exp);
        out.extend_from_slice(&self.chunks_per_volume.to_be_bytes());
        out.push(
            self.stanza_count
                .unwrap_or(u8::try_from(self.stanzas.len()).expect("at most 255 stanzas")),
        );
        for stanza in &self.stanzas {
            out.extend_from_slice(stanza);
        }
        out.extend_from_slice(&self.volume.to_be_bytes());
        out.extend_from_slice(&self.volume_flags.to_be_bytes());
        let extension_len = self
            .extension_len
            .unwrap_or(u16::try_from(self.extensions.len()).expect("test extensions fit u16"));
        out.extend_from_slice(&extension_len.to_be_bytes());
        out.extend_from_slice(&self.extensions);
        out.extend_from_slice(&self.mac);
        out.extend_from_slice(&self.after_mac);
        out
    }

    /// The whole volume: header, zero padding to a sector multiple of the
    /// natural length, payload.
    fn volume_bytes(&self) -> Vec<u8> {
        let mut out = self.header_bytes();
        let padded = out.len().div_ceil(2048) * 2048;
        out.resize(padded, 0);
        out.extend_from_slice(&self.payload);
        out
    }
}

fn opener() -> Opener {
    Opener::new().identity(identity(1))
}

fn passphrase_opener(limits: Limits) -> Opener {
    Opener::new()
        .passphrase("not the passphrase".into())
        .limits(limits)
}

/// The error of opening `volume`, which `inspect` and `verify_volume`
/// must report identically when it is found before any key is tried.
fn rejected(volume: &[u8]) -> Failure {
    let opened = failure(
        opener()
            .open(vec![volume])
            .expect_err("a hostile header must not open"),
    );
    let verified = failure(
        opener()
            .verify_volume(volume)
            .expect_err("a hostile header must not verify"),
    );
    assert_eq!(opened, verified, "open and verify_volume agree");
    opened
}

/// Like [`rejected`], for errors that `inspect` finds too (no key needed).
fn rejected_without_key(volume: &[u8]) -> Failure {
    let opened = rejected(volume);
    let inspected = failure(inspect(volume).expect_err("inspect must refuse it"));
    assert_eq!(opened, inspected, "open and inspect agree");
    opened
}

fn malformed(offset: u64) -> Failure {
    Failure::MalformedHeader { input: 1, offset }
}

#[test]
fn the_baseline_header_parses_and_only_lacks_a_key() {
    // Every test below changes one thing in this header; it must get as far
    // as trying keys, so each error is caused by that one change.
    let header = Header::new();
    let volume = header.volume_bytes();
    assert_eq!(header.natural_len(), 186);
    assert_eq!(volume.len(), 2048 + 4096);
    let info = inspect(&volume).expect("well-formed header");
    assert_eq!(info.version, 2);
    assert_eq!(info.set_id, [0x5E; 32]);
    assert_eq!(info.volume, 1);
    assert_eq!(info.chunk_size, 4096);
    assert_eq!(info.chunks_per_volume, 0);
    assert_eq!(info.stanza_types, types(&["X25519"]));
    assert_eq!(info.header_len, 2048);
    assert_eq!(info.len, 6144);
    assert_eq!(
        rejected(&volume),
        Failure::NoMatchingKey {
            stanza_types: types(&["X25519"])
        }
    );
}

#[test]
fn empty_short_and_foreign_inputs_are_not_kuvert() {
    assert_eq!(rejected_without_key(&[]), Failure::NotKuvert { input: 1 });
    assert_eq!(
        rejected_without_key(&MAGIC[..7]),
        Failure::NotKuvert { input: 1 }
    );
    assert_eq!(
        rejected_without_key(b"age-encryption.org/v1\n-> X25519 abc\n"),
        Failure::NotKuvert { input: 1 }
    );
    for bit in 0..64 {
        let mut volume = Header::new().volume_bytes();
        volume[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            rejected_without_key(&volume),
            Failure::NotKuvert { input: 1 },
            "magic bit {bit}"
        );
    }
    // The magic alone, or with the version: the preamble is cut short.
    assert_eq!(rejected_without_key(&MAGIC), malformed(8));
    let mut short = MAGIC.to_vec();
    short.extend_from_slice(&[0, 2]);
    assert_eq!(rejected_without_key(&short), malformed(10));
    short.extend_from_slice(&[0, 0, 0]);
    assert_eq!(rejected_without_key(&short), malformed(10));
}

#[test]
fn other_format_versions_are_unsupported() {
    // Version 1, the unreleased first layout, included (SPEC.md §11).
    for version in [0u16, 1, 3, 0x0100, 0x0200, u16::MAX] {
        let header = Header {
            version,
            ..Header::new()
        };
        assert_eq!(
            rejected_without_key(&header.volume_bytes()),
            Failure::UnsupportedVersion { input: 1, version }
        );
    }
}

#[test]
fn header_length_above_one_mebibyte_is_malformed() {
    // SPEC.md §7.1 step 3 and §7.6 H5: a rule of the format, not a caller's
    // limit (the design notes' first draft said LimitExceeded).
    for len in [MIB + 1, 16 * MIB, u64::from(u32::MAX)] {
        let header = Header {
            header_len: Some(u32::try_from(len).expect("u32")),
            ..Header::new()
        };
        assert_eq!(
            rejected_without_key(&header.volume_bytes()),
            malformed(10),
            "L = {len}"
        );
    }
}

#[test]
fn a_header_of_exactly_one_mebibyte_is_allowed_and_one_byte_more_is_not() {
    // Unknown stanzas of the largest body fill the header to exactly 1 MiB.
    let fixed = 186 - 88; // everything but the stanzas
    let mut stanzas = Vec::new();
    let mut left = MIB as usize - fixed;
    // Each stanza takes 1 + 2 + 3 + 2 bytes besides its body; never leave
    // fewer than 8 bytes for the last one.
    let largest = 8 + usize::from(u16::MAX);
    while left > 0 {
        let take = if left > largest + 8 {
            largest
        } else if left > largest {
            left - 8
        } else {
            left
        };
        stanzas.push(stanza("pad", vec![0; take - 8]));
        left -= take;
    }
    let header = Header::new().stanzas(stanzas);
    assert_eq!(header.natural_len(), MIB);
    let volume = header.volume_bytes();
    let info = inspect(&volume).expect("1 MiB is the largest header allowed");
    assert_eq!(info.header_len, MIB);
    assert_eq!(
        rejected(&volume),
        Failure::NoMatchingKey {
            stanza_types: info.stanza_types.clone()
        }
    );

    let mut bigger = header;
    bigger.after_mac = vec![0];
    assert_eq!(rejected_without_key(&bigger.volume_bytes()), malformed(10));
}

#[test]
fn header_length_below_the_minimum_or_past_the_end_is_malformed() {
    for len in [0u32, 14, 102, 103] {
        let header = Header {
            header_len: Some(len),
            ..Header::new()
        };
        assert_eq!(
            rejected_without_key(&header.volume_bytes()),
            malformed(10),
            "L = {len}"
        );
    }
    // L points past the end of the volume.
    let mut volume = Header::new().volume_bytes();
    volume.truncate(150);
    assert_eq!(rejected_without_key(&volume), malformed(10));
    let header = Header {
        header_len: Some(7000),
        ..Header::new()
    };
    assert_eq!(rejected_without_key(&header.volume_bytes()), malformed(10));
}

#[test]
fn the_smallest_header_is_exactly_the_minimum() {
    // One stanza with a one-byte type, no other argument and an empty
    // body: L = 104.
    let header = Header::new().stanzas(vec![stanza("x", Vec::new())]);
    assert_eq!(header.natural_len(), 104);
    let volume = header.volume_bytes();
    assert_eq!(
        inspect(&volume).expect("minimum").stanza_types,
        types(&["x"])
    );
    assert_eq!(
        rejected(&volume),
        Failure::NoMatchingKey {
            stanza_types: types(&["x"])
        }
    );
}

#[test]
fn header_length_must_match_the_parsed_length() {
    let header = Header::new();
    // One byte more: a byte follows the MAC inside L.
    let longer = Header {
        header_len: Some(187),
        ..header.clone()
    };
    assert_eq!(rejected_without_key(&longer.volume_bytes()), malformed(186));
    let trailing = Header {
        after_mac: vec![0],
        ..header.clone()
    };
    assert_eq!(
        rejected_without_key(&trailing.volume_bytes()),
        malformed(186)
    );
    // One byte less: the MAC no longer fits.
    let shorter = Header {
        header_len: Some(185),
        ..header.clone()
    };
    assert_eq!(
        rejected_without_key(&shorter.volume_bytes()),
        malformed(header.mac_at())
    );
}

#[test]
fn set_flags_other_than_trailers_must_be_zero() {
    // SPEC.md §7.6 H7: named at the field, offset 14. Bit 0x0001 is
    // TRAILERS (§13), tested in tests/trailer.rs.
    for flags in [2u16, 0x0003, 0x0100, 0x8000] {
        let header = Header {
            set_flags: flags,
            ..Header::new()
        };
        assert_eq!(
            rejected_without_key(&header.volume_bytes()),
            malformed(14),
            "flags {flags:#06x}"
        );
    }
}

#[test]
fn volume_flags_must_be_zero() {
    // SPEC.md §7.6 H16: named at the field, S + 4.
    for flags in [1u16, 0x0100, 0x8000] {
        let header = Header {
            volume_flags: flags,
            ..Header::new()
        };
        assert_eq!(
            rejected_without_key(&header.volume_bytes()),
            malformed(header.volume_at() + 4),
            "flags {flags:#06x}"
        );
    }
}

#[test]
fn chunk_exponent_must_be_12_to_24() {
    for exp in [0u8, 11, 25, 64, 255] {
        let header = Header {
            chunk_exp: exp,
            ..Header::new()
        };
        assert_eq!(
            rejected_without_key(&header.volume_bytes()),
            malformed(48),
            "exponent {exp}"
        );
    }
    for (exp, size) in [(12u8, 4096usize), (24, 16 << 20)] {
        let header = Header {
            chunk_exp: exp,
            ..Header::new()
        };
        assert_eq!(
            inspect(&header.volume_bytes()).expect("valid").chunk_size,
            size
        );
    }
}

#[test]
fn zero_stanzas_are_malformed() {
    let header = Header {
        stanza_count: Some(0),
        ..Header::new()
    };
    assert_eq!(rejected_without_key(&header.volume_bytes()), malformed(57));
    // No stanza bytes at all; an optional extension keeps L at the minimum.
    let none = Header {
        extensions: vec![0x00, 0x01, 0x00, 0x02, 0, 0],
        ..Header::new()
    }
    .stanzas(Vec::new());
    assert_eq!(none.natural_len(), 104);
    assert_eq!(rejected_without_key(&none.volume_bytes()), malformed(57));
}

#[test]
fn a_stanza_count_beyond_the_stanzas_is_malformed() {
    // Two announced, one present: the volume number's high byte (0) is read
    // as the second stanza's argument count.
    let header = Header {
        stanza_count: Some(2),
        ..Header::new()
    };
    assert_eq!(
        rejected_without_key(&header.volume_bytes()),
        malformed(header.volume_at())
    );
}

#[test]
fn stanza_argument_counts_and_lengths_are_bounded() {
    // No arguments at all (not even a type): named at the count. A body
    // keeps L above the minimum, so the count is what fails.
    let header = Header::new().stanzas(vec![raw_stanza(&[], &[0; 20])]);
    assert_eq!(
        rejected_without_key(&header.volume_bytes()),
        malformed(STANZAS_AT)
    );
    // An empty type, or an empty later argument: named at its length.
    let header = Header::new().stanzas(vec![raw_stanza(&[b""], &[0; 20])]);
    assert_eq!(
        rejected_without_key(&header.volume_bytes()),
        malformed(STANZAS_AT + 1)
    );
    let header = Header::new().stanzas(vec![raw_stanza(&[b"grease", b"a", b""], &[0; 20])]);
    assert_eq!(
        rejected_without_key(&header.volume_bytes()),
        malformed(STANZAS_AT + 1 + 8 + 3)
    );
    // In a second stanza, that stanza's byte is named.
    let header = Header::new().stanzas(vec![x25519_stanza(), raw_stanza(&[], &[])]);
    assert_eq!(
        rejected_without_key(&header.volume_bytes()),
        malformed(header.stanza_at(1))
    );
    // The largest: 255 arguments, an argument of 65,535 bytes, a body of
    // 65,535 bytes, in unknown stanzas that are skipped.
    let many: Vec<&[u8]> = std::iter::once(&b"grease-args"[..])
        .chain(std::iter::repeat_n(&b"~"[..], 254))
        .collect();
    let long = vec![b'L'; 65_535];
    let header = Header::new().stanzas(vec![
        raw_stanza(&many, &[]),
        raw_stanza(&[b"long", &long], &vec![0; 65_535]),
        x25519_stanza(),
    ]);
    assert_eq!(
        rejected(&header.volume_bytes()),
        Failure::NoMatchingKey {
            stanza_types: types(&["grease-args", "long", "X25519"])
        }
    );
}

#[test]
fn stanza_arguments_are_vchar_and_types_match_exactly() {
    // Every byte outside 0x21-0x7E is refused where it stands: the space,
    // DEL, controls, UTF-8.
    for (arg, bad) in [
        (&b"x25519 "[..], 6usize),
        (b" a", 0),
        (b"a\x7Fb", 1),
        (b"\x00", 0),
        (b"\xC3\xA9", 0),
        (b"x\n", 1),
    ] {
        let header = Header::new().stanzas(vec![raw_stanza(&[arg], &[0; 20])]);
        assert_eq!(
            rejected_without_key(&header.volume_bytes()),
            malformed(STANZAS_AT + 3 + bad as u64),
            "type {arg:?}"
        );
        let header =
            Header::new().stanzas(vec![x25519_stanza(), raw_stanza(&[b"grease", arg], &[])]);
        assert_eq!(
            rejected_without_key(&header.volume_bytes()),
            malformed(header.stanza_at(1) + 1 + 8 + 2 + bad as u64),
            "argument {arg:?}"
        );
    }
    // Every VCHAR, in an unknown type and its arguments, is skipped; so is
    // kuvert v1's lowercase `x25519` and any other case of age's type.
    let every: Vec<u8> = (0x21..=0x7E).collect();
    let every = String::from_utf8(every).expect("ascii");
    let header = Header::new().stanzas(vec![
        stanza(&format!("{every} {every}"), vec![9]),
        stanza(&format!("x25519 {}", x25519_share()), vec![0x3C; 32]),
        stanza("x25519", vec![0; 80]),
        stanza(&format!("X25519x {}", x25519_share()), vec![0x3C; 32]),
    ]);
    assert_eq!(
        rejected(&header.volume_bytes()),
        Failure::NoMatchingKey {
            stanza_types: types(&[every.as_str(), "x25519", "x25519", "X25519x"])
        }
    );
}

#[test]
fn a_field_running_past_the_header_length_is_named_at_its_start() {
    // SPEC.md §7.6 H12: with L cut anywhere from the minimum to one byte
    // short, the field that no longer fits is named by its first byte.
    // Fields of a one-X25519 header with an 8-byte extension area: argument
    // count, type length, type, share length, share, body length, body, v,
    // volume flags, extension length, extension area, MAC.
    let header = Header {
        extensions: vec![0x00, 0x01, 0x00, 0x04, 1, 2, 3, 4],
        ..Header::new()
    };
    let fields = [
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
        (154, 162),
        (162, 194),
    ];
    assert_eq!(header.natural_len(), 194);
    for len in 104..194u32 {
        let cut = Header {
            header_len: Some(len),
            ..header.clone()
        };
        let (start, _) = fields
            .iter()
            .copied()
            .find(|&(_, end)| end > u64::from(len))
            .expect("len < 194");
        assert_eq!(
            rejected_without_key(&cut.volume_bytes()),
            malformed(start),
            "L = {len}"
        );
    }
    // A stanza body announced longer than what is left of the header.
    let mut bytes = Header::new().header_bytes();
    bytes[112..114].copy_from_slice(&1000u16.to_be_bytes());
    bytes.resize(2048 + 4096, 0);
    assert_eq!(rejected_without_key(&bytes), malformed(114));
    // An argument announced longer than what is left of the header.
    let mut bytes = Header::new().header_bytes();
    bytes[67..69].copy_from_slice(&1000u16.to_be_bytes());
    bytes.resize(2048 + 4096, 0);
    assert_eq!(rejected_without_key(&bytes), malformed(69));
}

#[test]
fn x25519_stanzas_need_one_canonical_share_and_a_32_byte_body() {
    use base64ct::{Base64Unpadded, Encoding};
    let share = x25519_share();
    let refused = |stanza: Vec<u8>, what: &str| {
        let header = Header::new().stanzas(vec![stanza]);
        assert_eq!(
            rejected_without_key(&header.volume_bytes()),
            malformed(STANZAS_AT),
            "{what}"
        );
    };
    for len in [0usize, 16, 31, 33, 48, 80] {
        refused(
            stanza(&format!("X25519 {share}"), vec![0x3C; len]),
            &format!("body of {len} bytes"),
        );
    }
    // Argument counts: the type alone, or a second argument (age's
    // x25519_extra_argument).
    refused(stanza("X25519", vec![0x3C; 32]), "no share");
    refused(
        stanza(&format!("X25519 {share} extra"), vec![0x3C; 32]),
        "two arguments",
    );
    // Shares that are not canonical unpadded base64 of 32 bytes.
    let mut trailing = share.clone().into_bytes();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let last = alphabet
        .iter()
        .position(|&c| c == trailing[42])
        .expect("base64");
    trailing[42] = alphabet[last | 1];
    let trailing = String::from_utf8(trailing).expect("ascii");
    for (bad, what) in [
        (format!("{share}="), "padded"),
        (format!("{share}A"), "44 characters"),
        (share[..42].to_owned(), "42 characters"),
        (trailing, "non-zero trailing bits"),
        (format!("-{}", &share[1..]), "URL-safe alphabet"),
        (Base64Unpadded::encode_string(&[7; 33]), "33 bytes"),
        (Base64Unpadded::encode_string(&[7; 31]), "31 bytes"),
    ] {
        refused(stanza(&format!("X25519 {bad}"), vec![0x3C; 32]), what);
    }
    // Low-order ephemeral shares: 0, 1 and the order-8 point of RFC 7748.
    let order_eight: [u8; 32] = [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ];
    let mut one = [0u8; 32];
    one[0] = 1;
    for point in [[0u8; 32], one, order_eight] {
        let line = format!("X25519 {}", Base64Unpadded::encode_string(&point));
        // Behind a well-formed first stanza, so the offset names the second.
        let header = Header::new().stanzas(vec![x25519_stanza(), stanza(&line, vec![0x3C; 32])]);
        assert_eq!(
            rejected_without_key(&header.volume_bytes()),
            malformed(header.stanza_at(1))
        );
    }
}

#[test]
fn argon2id_stanzas_have_no_arguments_and_92_byte_bodies_with_rfc_9106_parameters() {
    let header = Header::new().stanzas(vec![stanza("argon2id salt", argon2id_body(65536, 3, 4))]);
    assert_eq!(
        rejected_without_key(&header.volume_bytes()),
        malformed(STANZAS_AT),
        "an argument"
    );
    for len in [0usize, 91, 93, 108] {
        let mut body = argon2id_body(65536, 3, 4);
        body.resize(len, 0);
        let header = Header::new().stanzas(vec![stanza("argon2id", body)]);
        assert_eq!(
            rejected_without_key(&header.volume_bytes()),
            malformed(STANZAS_AT),
            "body of {len} bytes"
        );
    }
    for (m, t, p) in [
        (65536, 3, 0),       // no lanes
        (65536, 3, 1 << 24), // lanes must be below 2^24
        (65536, 0, 4),       // no passes
        (31, 1, 4),          // m < 8·p
        (0, 1, 1),           // m < 8·p
        (u32::MAX, u32::MAX, 0),
    ] {
        let header = Header::new().stanzas(vec![stanza("argon2id", argon2id_body(m, t, p))]);
        assert_eq!(
            rejected_without_key(&header.volume_bytes()),
            malformed(STANZAS_AT),
            "m={m} t={t} p={p}"
        );
    }
    // The edges of the ranges are well-formed (and refused by no one
    // without a passphrase).
    for (m, t, p) in [
        (8, 1, 1),
        (32, 1, 4),
        (8 * ((1 << 24) - 1), 1, (1 << 24) - 1),
    ] {
        let header = Header::new().stanzas(vec![stanza("argon2id", argon2id_body(m, t, p))]);
        assert_eq!(
            rejected(&header.volume_bytes()),
            Failure::NoMatchingKey {
                stanza_types: types(&["argon2id"])
            },
            "m={m} t={t} p={p}"
        );
    }
}

#[test]
fn two_argon2id_stanzas_are_malformed() {
    let header = Header::new().stanzas(vec![
        stanza("argon2id", argon2id_body(65536, 3, 4)),
        x25519_stanza(),
        stanza("argon2id", argon2id_body(65536, 3, 4)),
    ]);
    assert_eq!(
        rejected_without_key(&header.volume_bytes()),
        malformed(header.stanza_at(2))
    );
}

/// Opens a header whose only stanza is argon2id with the given costs, with a
/// wrong passphrase under `limits`; returns the error and the time taken.
fn unlock_argon2id(m: u32, t: u32, p: u32, limits: Limits) -> (Failure, Duration) {
    let header = Header::new().stanzas(vec![stanza("argon2id", argon2id_body(m, t, p))]);
    let volume = header.volume_bytes();
    let start = Instant::now();
    let err = passphrase_opener(limits)
        .open(vec![volume])
        .expect_err("a crafted stanza never opens");
    (failure(err), start.elapsed())
}

#[test]
fn argon2id_costs_above_the_caps_are_refused_before_any_work() {
    // Costs that would take hours or terabytes if they were attempted.
    let defaults = Limits::default();
    for (m, t, p, want) in [
        (
            u32::MAX,
            1,
            1,
            Failure::LimitExceeded {
                what: "argon2id memory (KiB)",
                found: u64::from(u32::MAX),
                limit: 2 * 1024 * 1024,
            },
        ),
        (
            2 * 1024 * 1024 + 1,
            1,
            1,
            Failure::LimitExceeded {
                what: "argon2id memory (KiB)",
                found: 2 * 1024 * 1024 + 1,
                limit: 2 * 1024 * 1024,
            },
        ),
        (
            1 << 20,
            u32::MAX,
            1,
            Failure::LimitExceeded {
                what: "argon2id passes",
                found: u64::from(u32::MAX),
                limit: 8,
            },
        ),
        (
            1024,
            9,
            1,
            Failure::LimitExceeded {
                what: "argon2id passes",
                found: 9,
                limit: 8,
            },
        ),
        (
            1 << 20,
            1,
            17,
            Failure::LimitExceeded {
                what: "argon2id lanes",
                found: 17,
                limit: 16,
            },
        ),
        (
            8 * ((1 << 24) - 1),
            1,
            (1 << 24) - 1,
            Failure::LimitExceeded {
                what: "argon2id memory (KiB)",
                found: 8 * ((1 << 24) - 1),
                limit: 2 * 1024 * 1024,
            },
        ),
    ] {
        let (got, took) = unlock_argon2id(m, t, p, defaults);
        assert_eq!(got, want, "m={m} t={t} p={p}");
        assert!(
            took < Duration::from_secs(1),
            "m={m} t={t} p={p}: the cap took {took:?}: work was done before it"
        );
    }
}

#[test]
fn raising_a_limit_lets_a_modest_stanza_through_to_the_passphrase_check() {
    // Each stanza is over one default cap by one unit, and cheap to derive:
    // with the cap raised, Argon2id runs and the commitment does not match.
    let mut passes = Limits::default();
    passes.argon2_max_passes = 9;
    let mut lanes = Limits::default();
    lanes.argon2_max_lanes = 17;
    for (m, t, p, raised) in [(1024, 9, 1, passes), (1024, 1, 17, lanes)] {
        let (got, _) = unlock_argon2id(m, t, p, Limits::default());
        assert!(matches!(got, Failure::LimitExceeded { .. }), "{got:?}");
        let (got, _) = unlock_argon2id(m, t, p, raised);
        assert_eq!(got, Failure::WrongPassphrase, "m={m} t={t} p={p}");
    }
    // The memory cap, lowered below a modest stanza and then left at its
    // default (2 GiB: never exercised for real here).
    let mut memory = Limits::default();
    memory.argon2_max_memory_kib = 2048;
    assert_eq!(
        unlock_argon2id(4096, 1, 1, memory).0,
        Failure::LimitExceeded {
            what: "argon2id memory (KiB)",
            found: 4096,
            limit: 2048
        }
    );
    assert_eq!(
        unlock_argon2id(4096, 1, 1, Limits::default()).0,
        Failure::WrongPassphrase
    );
    // A cap exactly at the cost is not exceeded.
    let mut exact = Limits::default();
    exact.argon2_max_passes = 2;
    exact.argon2_max_memory_kib = 4096;
    exact.argon2_max_lanes = 1;
    assert_eq!(
        unlock_argon2id(4096, 2, 1, exact).0,
        Failure::WrongPassphrase
    );
}

#[test]
fn over_cap_stanzas_are_skipped_without_a_passphrase() {
    let header = Header::new().stanzas(vec![
        stanza("argon2id", argon2id_body(u32::MAX, u32::MAX, 16)),
        x25519_stanza(),
    ]);
    let start = Instant::now();
    assert_eq!(
        rejected(&header.volume_bytes()),
        Failure::NoMatchingKey {
            stanza_types: types(&["argon2id", "X25519"])
        }
    );
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn chunks_per_volume_times_chunk_size_must_fit_u64() {
    // K·C = 2^52 · 2^12 = 2^64.
    let header = Header {
        chunks_per_volume: 1 << 52,
        ..Header::new()
    };
    assert_eq!(
        rejected_without_key(&header.volume_bytes()),
        malformed(header.volume_at())
    );
    // K·C = 2^40 · 2^24.
    let header = Header {
        chunk_exp: 24,
        chunks_per_volume: 1 << 40,
        ..Header::new()
    };
    assert_eq!(
        rejected_without_key(&header.volume_bytes()),
        malformed(header.volume_at())
    );
    // K·C fits, H + K·C does not: with H = 4096 (a 2 KiB stanza body pushes
    // L past one sector), (2^52 − 1) · 4096 + 4096 = 2^64.
    let header = Header {
        chunks_per_volume: (1 << 52) - 1,
        ..Header::new()
    }
    .stanzas(vec![x25519_stanza(), stanza("pad", vec![0; 2000])]);
    assert!(header.natural_len() > 2048);
    assert_eq!(
        rejected_without_key(&header.volume_bytes()),
        malformed(header.volume_at())
    );
    // The same K behind a one-sector header fits exactly.
    let header = Header {
        chunks_per_volume: (1 << 52) - 1,
        ..Header::new()
    };
    let info = inspect(&header.volume_bytes()).expect("fits");
    assert!(info.is_split());
    assert!(!info.is_full());
    assert_eq!(info.chunks_per_volume, (1 << 52) - 1);
}

#[test]
fn volume_number_times_chunks_per_volume_must_fit_u64() {
    // v·K = 2^24 · 2^40 = 2^64.
    let header = Header {
        chunks_per_volume: 1 << 40,
        volume: 1 << 24,
        ..Header::new()
    };
    assert_eq!(
        rejected_without_key(&header.volume_bytes()),
        malformed(header.volume_at())
    );
    let header = Header {
        chunks_per_volume: 1 << 40,
        volume: (1 << 24) - 1,
        ..Header::new()
    };
    assert_eq!(
        inspect(&header.volume_bytes()).expect("fits").volume,
        (1 << 24) - 1
    );
    let header = Header {
        chunks_per_volume: 2,
        volume: u32::MAX,
        ..Header::new()
    };
    assert_eq!(
        inspect(&header.volume_bytes()).expect("fits").volume,
        u32::MAX
    );
}

#[test]
fn volume_number_zero_is_malformed() {
    for k in [0u64, 3] {
        let header = Header {
            chunks_per_volume: k,
            volume: 0,
            ..Header::new()
        };
        assert_eq!(
            rejected_without_key(&header.volume_bytes()),
            malformed(header.volume_at()),
            "K = {k}"
        );
    }
}

#[test]
fn an_unsplit_set_has_only_volume_1() {
    for volume in [2u32, u32::MAX] {
        let header = Header {
            volume,
            ..Header::new()
        };
        assert_eq!(
            rejected_without_key(&header.volume_bytes()),
            malformed(header.volume_at()),
            "volume {volume}"
        );
    }
    let split = Header {
        chunks_per_volume: 3,
        volume: 2,
        ..Header::new()
    };
    assert_eq!(inspect(&split.volume_bytes()).expect("valid").volume, 2);
}

#[test]
fn critical_extensions_are_refused_and_optional_ones_skipped() {
    let base = Header::new();
    let at = base.extensions_at();
    // One critical record.
    let header = Header {
        extensions: vec![0x80, 0x01, 0x00, 0x00],
        ..base.clone()
    };
    assert_eq!(rejected_without_key(&header.volume_bytes()), malformed(at));
    // Two optional records, then a critical one: the third is named.
    let header = Header {
        extensions: vec![
            0x00, 0x01, 0x00, 0x02, 0xAB, 0xCD, // optional, 2-byte body
            0x7F, 0xFF, 0x00, 0x00, // optional, empty
            0xFF, 0xFF, 0x00, 0x01, 0x00, // critical
        ],
        ..base.clone()
    };
    assert_eq!(
        rejected_without_key(&header.volume_bytes()),
        malformed(at + 10)
    );
    // Optional records alone are skipped: the header gets as far as keys.
    let header = Header {
        extensions: vec![0x00, 0x01, 0x00, 0x01, 0xFF, 0x12, 0x34, 0x00, 0x00],
        ..base.clone()
    };
    assert_eq!(
        rejected(&header.volume_bytes()),
        Failure::NoMatchingKey {
            stanza_types: types(&["X25519"])
        }
    );
}

#[test]
fn extension_records_must_fit_the_extension_area() {
    let base = Header::new();
    let at = base.extensions_at();
    for (extensions, named) in [
        // A record whose body runs past the area.
        (vec![0x00, 0x01, 0x00, 0x05, 0xFF], at),
        // A record header cut by the end of the area.
        (vec![0x00], at),
        (vec![0x00, 0x01, 0x00], at),
        // A good record, then a cut one.
        (vec![0x00, 0x01, 0x00, 0x00, 0x00, 0x02], at + 4),
    ] {
        let header = Header {
            extensions: extensions.clone(),
            ..base.clone()
        };
        assert_eq!(
            rejected_without_key(&header.volume_bytes()),
            malformed(named),
            "{extensions:?}"
        );
    }
    // An area longer than what is left of the header.
    let header = Header {
        extension_len: Some(500),
        ..base.clone()
    };
    assert_eq!(rejected_without_key(&header.volume_bytes()), malformed(at));
}

#[test]
fn header_padding_must_be_zero_and_present() {
    let header = Header::new();
    let clean = header.volume_bytes();
    for pos in [186usize, 187, 1000, 2047] {
        let mut volume = clean.clone();
        volume[pos] = 0x01;
        assert_eq!(
            rejected_without_key(&volume),
            malformed(pos as u64),
            "padding byte {pos}"
        );
    }
    // Two nonzero bytes: the first is named.
    let mut volume = clean.clone();
    volume[900] = 0xFF;
    volume[400] = 0x80;
    assert_eq!(rejected_without_key(&volume), malformed(400));
    // The volume ends inside the padding.
    for len in [186usize, 187, 2047] {
        assert_eq!(
            rejected_without_key(&clean[..len]),
            malformed(len as u64),
            "volume of {len} bytes"
        );
    }
}

#[test]
fn the_largest_stanza_count_parses() {
    let stanzas: Vec<_> = (0..255)
        .map(|i| stanza(&format!("t{i}"), Vec::new()))
        .collect();
    let header = Header::new().stanzas(stanzas);
    let volume = header.volume_bytes();
    let info = inspect(&volume).expect("255 stanzas");
    assert_eq!(info.stanza_types.len(), 255);
    assert_eq!(info.stanza_types[254], "t254");
    assert_eq!(
        rejected(&volume),
        Failure::NoMatchingKey {
            stanza_types: info.stanza_types
        }
    );
}

#[test]
fn errors_name_the_input_position() {
    let good = Header::new().volume_bytes();
    let bad = Header {
        version: 9,
        ..Header::new()
    }
    .volume_bytes();
    let err = opener()
        .open(vec![good.as_slice(), good.as_slice(), bad.as_slice()])
        .expect_err("input 3 is bad");
    assert_eq!(
        failure(err),
        Failure::UnsupportedVersion {
            input: 3,
            version: 9
        }
    );
    let err = opener()
        .open(vec![good.as_slice(), &bad[..5]])
        .expect_err("input 2 is bad");
    assert_eq!(failure(err), Failure::NotKuvert { input: 2 });
    let padded = {
        let mut volume = good.clone();
        volume[1000] = 1;
        volume
    };
    let err = opener()
        .open(vec![good.as_slice(), padded.as_slice()])
        .expect_err("input 2 is bad");
    assert_eq!(
        failure(err),
        Failure::MalformedHeader {
            input: 2,
            offset: 1000
        }
    );
}

#[test]
fn a_crafted_header_with_a_real_recipient_but_a_forged_mac_is_damaged() {
    // A stanza that really wraps a key for the identity can only come from
    // the library; take one from a real set and put it in a header whose
    // other fields are changed: the MAC, made with the real file key over
    // the original bytes, fails.
    let me: X25519Identity = identity(1);
    let real = common::seal(b"secret", 4096, None, &me);
    let real_stanza = real[0][58..146].to_vec();
    let header = Header {
        set_id: real[0][16..48].try_into().expect("32 bytes"),
        mac: real[0][154..186].try_into().expect("32 bytes"),
        ..Header::new()
    }
    .stanzas(vec![real_stanza]);
    // Identical to the real header except K and the chunk exponent.
    let mut forged = header.clone();
    forged.chunk_exp = 13;
    assert_eq!(
        rejected(&forged.volume_bytes()),
        Failure::HeaderDamaged { volume: 1 }
    );
    // Sanity: with the real fields restored the builder reproduces the real
    // header byte for byte.
    assert_eq!(header.header_bytes(), real[0][..186]);
}

// Key strings (SPEC.md §4.5) are untrusted input too.

const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn polymod(values: &[u8]) -> u32 {
    const GEN: [u32; 5] = [
        0x3b6a_57b2,
        0x2650_8e6d,
        0x1ea1_19fa,
        0x3d42_33dd,
        0x2a14_62b3,
    ];
    let mut chk: u32 = 1;
    for &value in values {
        let top = chk >> 25;
        chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(value);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

/// BIP 173 (constant 1) or BIP 350 (bech32m) encoding of 5-bit `data`,
/// written by hand so that tests can build strings the library's encoder
/// never would.
fn bech32_string(hrp: &str, data: &[u8], constant: u32) -> String {
    let mut values: Vec<u8> = hrp.bytes().map(|c| c.to_ascii_lowercase() >> 5).collect();
    values.push(0);
    values.extend(hrp.bytes().map(|c| c.to_ascii_lowercase() & 31));
    values.extend_from_slice(data);
    values.extend_from_slice(&[0; 6]);
    let modulus = polymod(&values) ^ constant;
    let checksum = (0..6).map(|i| ((modulus >> (5 * (5 - i))) & 31) as u8);
    let mut out = format!("{hrp}1");
    out.extend(
        data.iter()
            .copied()
            .chain(checksum)
            .map(|v| CHARSET[v as usize] as char),
    );
    out
}

/// 32 bytes as 52 five-bit groups, the last padded with 4 zero bits.
fn to_fives(bytes: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(((acc >> bits) & 31) as u8);
        }
    }
    out.push(((acc << (5 - bits)) & 31) as u8);
    out
}

#[test]
fn the_hand_written_bech32_encoder_matches_the_library() {
    let id = identity(3);
    let public = id.to_public();
    assert_eq!(
        bech32_string("age", &to_fives(&public.to_bytes()), 1),
        public.to_string()
    );
    assert_eq!(public.to_string(), public.to_age_string());
    // kuvert v1's encoding is no longer written, but still read.
    assert_eq!(
        bech32_string("kuvert", &to_fives(&public.to_bytes()), 1)
            .parse::<kuvert::X25519Recipient>()
            .map_err(failure),
        Ok(public)
    );
}

#[test]
fn malformed_key_strings_are_invalid_keys() {
    use kuvert::X25519Recipient;
    let public = identity(3).to_public();
    let valid = public.to_string();
    let fives = to_fives(&public.to_bytes());
    let parse = |text: &str| text.parse::<X25519Recipient>().map_err(failure);

    // Surrounding whitespace is ignored, and the HRP's case too, as long as
    // the string is not mixed-case.
    assert_eq!(parse(&format!("  {valid}\n")), Ok(public.clone()));
    assert_eq!(parse(&valid.to_uppercase()), Ok(public.clone()));
    let mut mixed = valid.clone();
    mixed.replace_range(0..1, "K");
    assert_eq!(parse(&mixed), Err(Failure::InvalidKey));

    // Checksums: one changed character, or bech32m instead of bech32.
    let mut broken = valid.clone();
    let last = broken.pop().expect("non-empty");
    broken.push(if last == 'q' { 'p' } else { 'q' });
    assert_eq!(parse(&broken), Err(Failure::InvalidKey));
    assert_eq!(
        parse(&bech32_string("kuvert", &fives, 0x2bc8_30a3)),
        Err(Failure::InvalidKey)
    );
    // Other prefixes, and an identity where a recipient is expected.
    assert_eq!(
        parse(&bech32_string("kuvert2", &fives, 1)),
        Err(Failure::InvalidKey)
    );
    assert_eq!(
        parse(identity(3).to_secret_string().as_str()),
        Err(Failure::InvalidKey)
    );
    // Too few or too many data groups.
    assert_eq!(
        parse(&bech32_string("kuvert", &fives[..51], 1)),
        Err(Failure::InvalidKey)
    );
    let mut longer = fives.clone();
    longer.extend_from_slice(&[0, 0]);
    assert_eq!(
        parse(&bech32_string("kuvert", &longer, 1)),
        Err(Failure::InvalidKey)
    );
    assert_eq!(parse(""), Err(Failure::InvalidKey));
}

#[test]
fn nonzero_padding_bits_in_key_strings_are_refused() {
    // SPEC.md §4.5: the 4 padding bits MUST be zero, so that every key has
    // exactly one encoding.
    use kuvert::X25519Recipient;
    let id = identity(3);
    let mut fives = to_fives(&id.to_public().to_bytes());
    // The last group holds the key's last bit and then the 4 padding bits.
    let last = fives.len() - 1;
    fives[last] |= 0b0001;
    let recipient = bech32_string("kuvert", &fives, 1);
    let secret = bech32_string(
        "KUVERT-SECRET-KEY-",
        &to_fives(&[1; 32])
            .iter()
            .enumerate()
            .map(|(i, &v)| if i == 51 { v | 0b0100 } else { v })
            .collect::<Vec<_>>(),
        1,
    )
    .to_uppercase();
    let accepted_recipient = recipient.parse::<X25519Recipient>().is_ok();
    let accepted_identity = secret.parse::<X25519Identity>().is_ok();
    assert!(
        !accepted_recipient && !accepted_identity,
        "accepted: recipient {recipient}: {accepted_recipient}, identity: {accepted_identity}"
    );
}

#[test]
fn low_order_and_non_canonical_recipients_are_refused_when_parsed() {
    // SPEC.md §4.2: X25519 with a low-order u gives an all-zero secret, and
    // a non-canonical u (top bit set, or p ≤ u < 2^255) is not what its
    // holder computes; the reference refuses both when parsing (InvalidKey).
    let mut one = [0u8; 32];
    one[0] = 1;
    let mut minus_one = [0xFF; 32]; // p − 1, of order 2
    minus_one[0] = 0xEC;
    minus_one[31] = 0x7F;
    let real = identity(3).to_public().to_bytes();
    let mut top_bit = real;
    top_bit[31] |= 0x80;
    let mut p_plus_9 = [0xFF; 32]; // p + 9: the base point, not reduced
    p_plus_9[0] = 0xF6;
    p_plus_9[31] = 0x7F;
    for (name, point) in [
        ("0", [0u8; 32]),
        ("1", one),
        ("p - 1", minus_one),
        ("top bit", top_bit),
        ("p + 9", p_plus_9),
    ] {
        for hrp in ["kuvert", "age"] {
            let text = bech32_string(hrp, &to_fives(&point), 1);
            assert_eq!(
                text.parse::<kuvert::X25519Recipient>().map_err(failure),
                Err(Failure::InvalidKey),
                "{name} as {hrp}"
            );
        }
    }
    // The same key with its bytes as they are parses.
    let text = bech32_string("kuvert", &to_fives(&real), 1);
    assert_eq!(
        text.parse::<kuvert::X25519Recipient>()
            .expect("a canonical key")
            .to_bytes(),
        real
    );
}

#[test]
fn recipient_files_skip_comments_and_name_the_bad_line() {
    let a = identity(3).to_public();
    let b = identity(4).to_public();
    let text = format!("# team\r\n{a}\r\n\n   {}  \n", b.to_age_string());
    let parsed = kuvert::parse_recipients_file(&text).expect("valid file");
    assert_eq!(parsed, [a.clone().into(), b.into()]);
    assert!(matches!(
        kuvert::parse_recipients_file("# nobody\n\n"),
        Err(kuvert::Error::EmptyKeyFile { what: "recipient" })
    ));
    let bad = format!("{a}\nkuvert1notakey\n");
    match kuvert::parse_recipients_file(&bad) {
        Err(kuvert::Error::KeyFileLine {
            what: "recipient",
            line: 2,
            reason,
        }) => assert_eq!(reason, kuvert::KeyError::Bech32 { what: "recipient" }),
        other => panic!("{other:?}"),
    }
}
