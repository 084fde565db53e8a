//! The encrypted manifest and the size padding of a payload (SPEC.md §15):
//! the records between the payload prefix and the content, the padding rule
//! and Padmé, and the padding length at the payload's end. Encoder and parser
//! side by side, below `seal` and `open`, which both use them.

use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::format::PAYLOAD_PREFIX_LEN;

/// Payload flag (SPEC.md §6.7): the payload ends with padding and its length.
pub(crate) const FLAG_PADDED: u8 = 0x01;
/// Most manifest bytes R: the manifest always fits chunk 0 of the smallest
/// chunk size (P − 4 at C = 4 KiB).
pub const MAX_MANIFEST_LEN: usize = 4096 - crate::format::TAG_LEN - PAYLOAD_PREFIX_LEN;
/// Bytes of the padding length field at the end of a padded payload.
pub(crate) const PADDING_LEN_FIELD: usize = 8;
/// Longest label, in bytes.
pub const MAX_LABEL_LEN: usize = 256;
/// Longest note, in bytes.
pub const MAX_NOTE_LEN: usize = 3072;

/// A record type's critical bit: a decoder that does not know the type
/// must refuse the payload rather than skip the record.
const CRITICAL: u16 = 0x8000;
const RECORD_HEAD: usize = 4;
const TYPE_CREATED: u16 = 0x0001;
const TYPE_LABEL: u16 = 0x0002;
const TYPE_NOTE: u16 = 0x0003;
const TYPE_PADDING: u16 = 0x0004;

/// How a payload is padded so that the volume lengths hide its size
/// (SPEC.md §15.2).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    /// Padmé (Nikitin et al., PoPETs 2019): the payload is rounded up to a
    /// length whose low bits are zero, at most 3.125 % above it from 64 KiB
    /// up (1.6 % from 4 GiB), so only about log2 log2 of its size leaks.
    #[default]
    Padme,
    /// Fills the last volume to the volume size: only the number of volumes
    /// leaks. Needs a split set ([`Sealer::volume_size`](crate::Sealer::volume_size)).
    Volume,
    /// No padding: the exact payload length leaks (SPEC.md §9.3).
    None,
}

impl Padding {
    /// The rule's code in the manifest's padding record; `None` for no
    /// padding, which has no record.
    fn code(self) -> Option<u8> {
        match self {
            Padding::Padme => Some(1),
            Padding::Volume => Some(2),
            Padding::None => None,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Padding::Padme),
            2 => Some(Padding::Volume),
            _ => None,
        }
    }

    /// The rule's name, as the CLI's `--pad` and the vectors' meta spell it.
    pub fn name(self) -> &'static str {
        match self {
            Padding::Padme => "padme",
            Padding::Volume => "volume",
            Padding::None => "none",
        }
    }
}

/// What the manifest of an opened set says (SPEC.md §15.1): encrypted and
/// authenticated like the content, so nothing of it is visible without a
/// key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    created: Option<i64>,
    label: Option<String>,
    note: Option<String>,
    padding: Option<Padding>,
}

impl Manifest {
    /// When the set was sealed, as its sealer's clock said: seconds since
    /// 1970-01-01T00:00:00Z (see [`rfc3339_utc`](crate::rfc3339_utc)).
    pub fn created(&self) -> Option<i64> {
        self.created
    }

    /// [`created`](Self::created) as a time, if it is one this platform
    /// represents.
    pub fn created_time(&self) -> Option<SystemTime> {
        let secs = self.created?;
        match u64::try_from(secs) {
            Ok(after) => SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(after)),
            Err(_) => SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs())),
        }
    }

    /// The label the sealer gave, to tell parcels apart.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// The note the sealer gave (may hold line feeds).
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// The padding rule the sealer used, if the payload is padded.
    pub fn padding(&self) -> Option<Padding> {
        self.padding
    }

    /// Whether the manifest holds nothing.
    pub fn is_empty(&self) -> bool {
        *self == Manifest::default()
    }
}

/// What a sealer writes into a manifest; checked before anything is sealed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ManifestFields {
    pub created: Option<i64>,
    pub label: Option<String>,
    pub note: Option<String>,
    pub padding: Padding,
}

/// Why a label or note cannot be written (SPEC.md §15.1).
pub(crate) fn text_problem(text: &str, max: usize, line_feeds: bool) -> Option<&'static str> {
    if text.is_empty() {
        return Some("it is empty");
    }
    if text.len() > max {
        return Some("it is too long");
    }
    // `is_control` is Unicode's Cc: U+0000–U+001F and U+007F–U+009F.
    let control = |c: char| c.is_control() && !(line_feeds && c == '\n');
    if text.chars().any(control) {
        return Some("it holds a control character");
    }
    None
}

impl ManifestFields {
    /// The manifest records, types in increasing order (SPEC.md §15.1).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut record = |kind: u16, body: &[u8]| {
            out.extend_from_slice(&kind.to_be_bytes());
            out.extend_from_slice(&(body.len() as u16).to_be_bytes());
            out.extend_from_slice(body);
        };
        if let Some(created) = self.created {
            record(TYPE_CREATED, &created.to_be_bytes());
        }
        if let Some(label) = &self.label {
            record(TYPE_LABEL, label.as_bytes());
        }
        if let Some(note) = &self.note {
            record(TYPE_NOTE, note.as_bytes());
        }
        if let Some(code) = self.padding.code() {
            record(TYPE_PADDING, &[code]);
        }
        debug_assert!(out.len() <= MAX_MANIFEST_LEN, "bounded fields fit chunk 0");
        out
    }

    /// The payload flags byte.
    pub fn flags(&self) -> u8 {
        if self.padding == Padding::None {
            0
        } else {
            FLAG_PADDED
        }
    }
}

/// Padmé (Nikitin et al., PoPETs 2019(4), Algorithm 1): `len` rounded up
/// so that only its top ⌊log2 ⌊log2 len⌋⌋ + 1 bits may be nonzero; `None`
/// if that overflows.
pub fn padme(len: u64) -> Option<u64> {
    if len < 2 {
        return Some(len);
    }
    let e = 63 - len.leading_zeros(); // ⌊log2 len⌋ ≥ 1
    let s = 32 - e.leading_zeros(); // ⌊log2 e⌋ + 1
    let mask = (1u64 << (e - s)) - 1;
    len.checked_add(mask).map(|up| up & !mask)
}

/// The payload prefix of a set that opened, and its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedManifest {
    pub manifest: Manifest,
    /// Records length R.
    pub records_len: u64,
    /// Whether the payload ends with padding and its length.
    pub padded: bool,
}

/// Parses the manifest (SPEC.md §15.1) from chunk 0's plaintext after the
/// prefix: `flags` and `records_len` from the prefix, `first` the plaintext
/// of chunk 0 (at most the whole payload), `payload_len` the payload length.
/// Errors are `MalformedPayload` at payload offsets, in SPEC order.
pub(crate) fn parse(
    flags: u8,
    records_len: u16,
    first: &[u8],
    payload_len: u64,
) -> Result<ParsedManifest, Error> {
    let malformed = |offset: u64, reason| Error::MalformedPayload { offset, reason };
    if flags & !FLAG_PADDED != 0 {
        return Err(malformed(1, "unknown payload flags"));
    }
    let r = usize::from(records_len);
    if r > MAX_MANIFEST_LEN || (PAYLOAD_PREFIX_LEN + r) as u64 > payload_len {
        return Err(malformed(
            2,
            "the manifest does not fit chunk 0 and the payload",
        ));
    }
    let Some(records) = first.get(PAYLOAD_PREFIX_LEN..PAYLOAD_PREFIX_LEN + r) else {
        return Err(malformed(
            2,
            "the manifest does not fit chunk 0 and the payload",
        ));
    };
    let mut manifest = Manifest::default();
    let mut at = 0usize;
    let mut previous: Option<u16> = None;
    while at < r {
        let offset = (PAYLOAD_PREFIX_LEN + at) as u64;
        let Some(head) = records.get(at..at + RECORD_HEAD) else {
            return Err(malformed(
                offset,
                "a manifest record runs past the manifest",
            ));
        };
        let kind = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let Some(body) = records.get(at + RECORD_HEAD..at + RECORD_HEAD + len) else {
            return Err(malformed(
                offset,
                "a manifest record runs past the manifest",
            ));
        };
        if previous.is_some_and(|p| kind <= p) {
            return Err(malformed(
                offset,
                "manifest record types are not increasing",
            ));
        }
        previous = Some(kind);
        let text = |max, line_feeds| {
            let text = std::str::from_utf8(body)
                .map_err(|_| malformed(offset, "a manifest text is not UTF-8"))?;
            match text_problem(text, max, line_feeds) {
                Some(_) => Err(malformed(offset, "a manifest text breaks its rules")),
                None => Ok(text.to_owned()),
            }
        };
        match kind {
            TYPE_CREATED => {
                let bytes: [u8; 8] = body
                    .try_into()
                    .map_err(|_| malformed(offset, "the created record is not 8 bytes"))?;
                manifest.created = Some(i64::from_be_bytes(bytes));
            }
            TYPE_LABEL => manifest.label = Some(text(MAX_LABEL_LEN, false)?),
            TYPE_NOTE => manifest.note = Some(text(MAX_NOTE_LEN, true)?),
            TYPE_PADDING => {
                let rule = match body {
                    [code] => Padding::from_code(*code),
                    _ => None,
                };
                if rule.is_none() || flags & FLAG_PADDED == 0 {
                    return Err(malformed(offset, "a padding record that does not fit"));
                }
                manifest.padding = rule;
            }
            kind if kind & CRITICAL != 0 => {
                return Err(malformed(offset, "an unknown critical manifest record"));
            }
            _ => {}
        }
        at += RECORD_HEAD + len;
    }
    Ok(ParsedManifest {
        manifest,
        records_len: r as u64,
        padded: flags & FLAG_PADDED != 0,
    })
}

/// The padding length p of a padded payload from its last 8 bytes, and the
/// content length it leaves (SPEC.md §15.2).
pub(crate) fn content_len(
    records_len: u64,
    payload_len: u64,
    tail: Option<[u8; PADDING_LEN_FIELD]>,
) -> Result<(u64, u64), Error> {
    let malformed = |offset: u64, reason| Error::MalformedPayload { offset, reason };
    let fixed = PAYLOAD_PREFIX_LEN as u64 + records_len;
    let Some(tail) = tail else {
        return Ok((payload_len - fixed, 0));
    };
    let unpadded = fixed + PADDING_LEN_FIELD as u64;
    if payload_len < unpadded {
        return Err(malformed(
            payload_len,
            "the payload ends inside its padding length",
        ));
    }
    let padding = u64::from_be_bytes(tail);
    if padding > payload_len - unpadded {
        return Err(malformed(
            payload_len - PADDING_LEN_FIELD as u64,
            "the padding length runs past the content's start",
        ));
    }
    Ok((payload_len - unpadded - padding, padding))
}

/// The payload length a rule gives an unpadded length `unpadded` (L_u:
/// prefix, manifest, content and the 8-byte padding length), with P
/// (`plain_len`) and K (`per_volume`) for [`Padding::Volume`] (SPEC.md
/// §15.2). `None` if it overflows, or for `Volume` if K is 0.
pub(crate) fn padded_len(
    rule: Padding,
    unpadded: u64,
    plain_len: u64,
    per_volume: u64,
) -> Option<u64> {
    match rule {
        Padding::None => Some(unpadded),
        Padding::Padme => padme(unpadded),
        Padding::Volume => {
            if per_volume == 0 {
                return None;
            }
            let chunks = unpadded.div_ceil(plain_len);
            let volumes = chunks.div_ceil(per_volume);
            volumes.checked_mul(per_volume)?.checked_mul(plain_len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padme_gives_the_papers_values() {
        for (len, padded) in [
            (1_000, 1_024),
            (65_536, 65_536),
            (65_537, 67_584),
            (1_000_000, 1_015_808),
            (732_954_624, 738_197_504),
            (4_700_000_000, 4_764_729_344),
            (25_000_000_000, 25_232_932_864),
            (0, 0),
            (1, 1),
            (2, 2),
            (3, 3),
            (12, 12),
            (13, 14),
        ] {
            assert_eq!(padme(len), Some(padded), "padme({len})");
        }
        // 2^32 + 1: S = 6, so the step is 2^26, +1.56 %.
        let above = (1u64 << 32) + 1;
        assert_eq!(padme(above), Some((1 << 32) + (1 << 26)));
        assert_eq!(padme(u64::MAX), None);
        // The overhead bound: below 2^-S, so at most 3.125 % from 64 KiB up.
        for len in [65_536u64, 99_999, 1 << 20, 123_456_789, (1 << 32) - 1] {
            let over = padme(len).expect("fits") - len;
            assert!(over * 32 < len, "{len}");
        }
    }

    fn fields() -> ManifestFields {
        ManifestFields {
            created: Some(1_764_547_200),
            label: Some("DST project 1234, extract 3 of 4".into()),
            note: Some("line one\nline two".into()),
            padding: Padding::Padme,
        }
    }

    /// The prefix and manifest of `fields` as chunk 0 holds them.
    fn chunk0(fields: &ManifestFields) -> (u8, u16, Vec<u8>) {
        let records = fields.encode();
        let mut first = vec![0, fields.flags()];
        first.extend_from_slice(&(records.len() as u16).to_be_bytes());
        first.extend_from_slice(&records);
        first.extend_from_slice(b"content");
        (fields.flags(), records.len() as u16, first)
    }

    fn parse_all(flags: u8, r: u16, first: &[u8]) -> Result<ParsedManifest, Error> {
        parse(flags, r, first, first.len() as u64)
    }

    #[test]
    fn the_manifest_round_trips() {
        for fields in [
            fields(),
            ManifestFields::default(),
            ManifestFields {
                padding: Padding::Volume,
                ..ManifestFields::default()
            },
            ManifestFields {
                created: Some(-1),
                label: Some("x".repeat(MAX_LABEL_LEN)),
                note: Some("ü".repeat(MAX_NOTE_LEN / 2)),
                padding: Padding::None,
            },
        ] {
            let (flags, r, first) = chunk0(&fields);
            let parsed = parse_all(flags, r, &first).expect("valid");
            assert_eq!(parsed.records_len, u64::from(r));
            assert_eq!(parsed.padded, fields.padding != Padding::None);
            let manifest = parsed.manifest;
            assert_eq!(manifest.created(), fields.created);
            assert_eq!(manifest.label(), fields.label.as_deref());
            assert_eq!(manifest.note(), fields.note.as_deref());
            let rule = Some(fields.padding).filter(|&p| p != Padding::None);
            assert_eq!(manifest.padding(), rule);
        }
        // The longest manifest fits chunk 0 of the smallest chunks.
        let longest = ManifestFields {
            created: Some(0),
            label: Some("l".repeat(MAX_LABEL_LEN)),
            note: Some("n".repeat(MAX_NOTE_LEN)),
            padding: Padding::Padme,
        };
        assert_eq!(longest.encode().len(), 3353);
    }

    fn offset_of(result: Result<ParsedManifest, Error>) -> u64 {
        match result {
            Err(Error::MalformedPayload { offset, .. }) => offset,
            other => panic!("expected MalformedPayload, got {other:?}"),
        }
    }

    #[test]
    fn every_manifest_rule_is_refused_at_its_offset() {
        let (flags, r, first) = chunk0(&fields());
        // Flags other than PADDED.
        assert_eq!(offset_of(parse_all(0x02, r, &first)), 1);
        // R above the bound, or past the payload.
        assert_eq!(offset_of(parse(flags, 4077, &vec![0; 5000], 5000)), 2);
        assert_eq!(offset_of(parse(flags, r, &first[..first.len() - 8], 40)), 2);
        // A record head or body past R.
        assert_eq!(offset_of(parse_all(flags, r - 1, &first)), 4 + 12 + 36 + 21);
        assert_eq!(offset_of(parse_all(flags, 2, &first)), 4);
        let with = |records: &[u8], flags: u8| {
            let mut first = vec![0, flags];
            first.extend_from_slice(&(records.len() as u16).to_be_bytes());
            first.extend_from_slice(records);
            parse_all(flags, records.len() as u16, &first)
        };
        let record = |kind: u16, body: &[u8]| {
            let mut out = kind.to_be_bytes().to_vec();
            out.extend_from_slice(&(body.len() as u16).to_be_bytes());
            out.extend_from_slice(body);
            out
        };
        let created = record(TYPE_CREATED, &[0; 8]);
        let label = record(TYPE_LABEL, b"a");
        // Order: a repeated or decreasing type.
        let twice = [created.clone(), created.clone()].concat();
        assert_eq!(offset_of(with(&twice, 0)), 16);
        let backwards = [label.clone(), created.clone()].concat();
        assert_eq!(offset_of(with(&backwards, 0)), 9);
        // Bounds and text rules.
        assert_eq!(offset_of(with(&record(TYPE_CREATED, &[0; 7]), 0)), 4);
        assert_eq!(offset_of(with(&record(TYPE_LABEL, b""), 0)), 4);
        let long = "l".repeat(MAX_LABEL_LEN + 1);
        assert_eq!(offset_of(with(&record(TYPE_LABEL, long.as_bytes()), 0)), 4);
        assert_eq!(offset_of(with(&record(TYPE_LABEL, b"a\nb"), 0)), 4);
        assert_eq!(offset_of(with(&record(TYPE_LABEL, b"\xff"), 0)), 4);
        assert_eq!(
            offset_of(with(&record(TYPE_NOTE, "\u{85}".as_bytes()), 0)),
            4
        );
        assert_eq!(offset_of(with(&record(TYPE_NOTE, b"tab\there"), 0)), 4);
        let note = "n".repeat(MAX_NOTE_LEN + 1);
        assert_eq!(offset_of(with(&record(TYPE_NOTE, note.as_bytes()), 0)), 4);
        assert!(with(&record(TYPE_NOTE, b"two\nlines"), 0).is_ok());
        // The padding record: a known rule, and only when padded.
        assert_eq!(offset_of(with(&record(TYPE_PADDING, &[1]), 0)), 4);
        assert_eq!(offset_of(with(&record(TYPE_PADDING, &[3]), 1)), 4);
        assert_eq!(offset_of(with(&record(TYPE_PADDING, &[1, 1]), 1)), 4);
        // Unknown types: skipped unless critical.
        let unknown = [created.clone(), record(0x0100, b"later")].concat();
        assert!(with(&unknown, 0).expect("skipped").manifest.created() == Some(0));
        let critical = [created, record(0x8005, b"later")].concat();
        assert_eq!(offset_of(with(&critical, 0)), 16);
    }

    #[test]
    fn the_padding_length_is_bounded_by_the_payload() {
        let p = |p: u64| Some(p.to_be_bytes());
        // R = 0: 4 bytes of prefix, content, zeros, then p.
        assert_eq!(content_len(0, 100, p(10)).expect("valid"), (78, 10));
        assert_eq!(content_len(0, 100, p(88)).expect("valid"), (0, 88));
        assert_eq!(content_len(0, 100, None).expect("valid"), (96, 0));
        let offset = |result: Result<(u64, u64), Error>| match result {
            Err(Error::MalformedPayload { offset, .. }) => offset,
            other => panic!("expected MalformedPayload, got {other:?}"),
        };
        assert_eq!(offset(content_len(0, 100, p(89))), 92);
        assert_eq!(offset(content_len(0, 100, p(u64::MAX))), 92);
        assert_eq!(offset(content_len(12, 23, p(0))), 23);
    }

    #[test]
    fn the_volume_rule_fills_the_last_volume() {
        // P = 4080, K = 2: 5 chunks of payload make 3 volumes of 2.
        assert_eq!(
            padded_len(Padding::Volume, 4 * 4080 + 1, 4080, 2),
            Some(6 * 4080)
        );
        assert_eq!(
            padded_len(Padding::Volume, 4 * 4080, 4080, 2),
            Some(4 * 4080)
        );
        assert_eq!(padded_len(Padding::Volume, 12, 4080, 0), None);
        assert_eq!(padded_len(Padding::None, 77, 4080, 0), Some(77));
        assert_eq!(padded_len(Padding::Padme, 1000, 4080, 0), Some(1024));
    }
}
