//! The volume statement (SPEC.md §14.1): the small text a volume's
//! signatures are over. Its last line is what `b3sum` prints for the
//! volume's chunk region read from standard input, so a stock tool can
//! check the volume bytes; the `#` lines commit the rest.
//!
//! One encoding only: ASCII, LF, lowercase hex, decimals without leading
//! zeros. [`Statement::parse`] accepts exactly what
//! [`Statement::encode`] writes.

use std::fmt::Write as _;

/// Longest statement read; the longest one written is 529 bytes.
pub const MAX_STATEMENT_LEN: usize = 1024;
/// Bytes of a BLAKE3 digest and of a set id.
const DIGEST_LEN: usize = 32;

/// What one volume's signatures commit to. Values are plain fields: the
/// caller computes them from the volume (trailer, table, header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The set id (SID).
    pub set_id: [u8; DIGEST_LEN],
    /// The volume number v, from 1.
    pub volume: u32,
    /// g0: the global index of the volume's first chunk.
    pub first_chunk: u64,
    /// k: the chunks in this volume.
    pub chunks: u64,
    /// C: the ciphertext chunk size.
    pub chunk_len: u64,
    /// H_v: the header length, padding included (where the chunks start).
    pub header_len: u64,
    /// h_v: BLAKE3 of the volume's bytes [0, H_v).
    pub header_digest: [u8; DIGEST_LEN],
    /// E: the end of the last chunk.
    pub end: u64,
    /// T: BLAKE3 of the digest table record's body.
    pub table_digest: [u8; DIGEST_LEN],
    /// On the last volume only: `(n, g_f)`, the volume count (= v) and
    /// the set's final chunk index (= g0 + k − 1).
    pub last: Option<LastVolume>,
    /// R_v: BLAKE3 of the volume's bytes [H_v, E), what `b3sum` prints.
    pub region_digest: [u8; DIGEST_LEN],
}

/// The `# last volume` line: the set's extent, on its last volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastVolume {
    /// n: the number of volumes (the last volume's number).
    pub volumes: u32,
    /// g_f: the set's final chunk index.
    pub final_chunk: u64,
}

/// Why bytes are not a statement: the byte offset of the line (or field)
/// that breaks the grammar, and which rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("statement byte {offset}: {reason}")]
pub struct StatementError {
    /// Offset within the statement of the offending line or byte.
    pub offset: usize,
    /// Which rule was broken.
    pub reason: &'static str,
}

const FIRST_LINE: &str = "# kuvert volume statement 1";

impl Statement {
    /// The statement's exact bytes.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(600);
        // Writing to a String never fails.
        let _ = write!(
            out,
            "{FIRST_LINE}\n# set {}\n# volume {}\n# chunks {} {} {}\n# header {} blake3 {}\n\
             # length {}\n# table blake3 {}\n",
            hex(&self.set_id),
            self.volume,
            self.first_chunk,
            self.chunks,
            self.chunk_len,
            self.header_len,
            hex(&self.header_digest),
            self.end,
            hex(&self.table_digest),
        );
        if let Some(last) = self.last {
            let _ = writeln!(
                out,
                "# last volume {} final chunk {}",
                last.volumes, last.final_chunk
            );
        }
        let _ = writeln!(out, "{}  -", hex(&self.region_digest));
        out
    }

    /// Parses a statement strictly: at most 1,024 bytes, every line in
    /// order, and the bytes equal to what [`encode`](Self::encode) writes
    /// for the values read.
    ///
    /// # Errors
    ///
    /// [`StatementError`] at the first line or byte that breaks a rule.
    pub fn parse(bytes: &[u8]) -> Result<Statement, StatementError> {
        if bytes.len() > MAX_STATEMENT_LEN {
            return Err(StatementError {
                offset: MAX_STATEMENT_LEN,
                reason: "longer than 1,024 bytes",
            });
        }
        if let Some(bad) = bytes
            .iter()
            .position(|&b| !(b == b'\n' || (0x20..0x7f).contains(&b)))
        {
            return Err(StatementError {
                offset: bad,
                reason: "a byte that is not printable ASCII or LF",
            });
        }
        // Printable ASCII and LF only: valid UTF-8.
        let text = std::str::from_utf8(bytes).map_err(|_| StatementError {
            offset: 0,
            reason: "not ASCII",
        })?;
        if !text.ends_with('\n') {
            return Err(StatementError {
                offset: bytes.len(),
                reason: "the last line does not end with LF",
            });
        }
        let mut lines = Lines { text, pos: 0 };
        lines.exact(
            FIRST_LINE,
            "the first line is not \"# kuvert volume statement 1\"",
        )?;
        let set_id = lines.field("# set ", "expected \"# set <64 hex>\"", hex32)?;
        let volume = lines.field("# volume ", "expected \"# volume <v>\"", decimal_u32)?;
        let (first_chunk, chunks, chunk_len) =
            lines.field("# chunks ", "expected \"# chunks <g0> <k> <C>\"", |s| {
                let mut parts = s.split(' ');
                let values = (
                    decimal(parts.next()?)?,
                    decimal(parts.next()?)?,
                    decimal(parts.next()?)?,
                );
                parts.next().is_none().then_some(values)
            })?;
        let (header_len, header_digest) = lines.field(
            "# header ",
            "expected \"# header <H> blake3 <64 hex>\"",
            |s| {
                let (len, digest) = s.split_once(" blake3 ")?;
                Some((decimal(len)?, hex32(digest)?))
            },
        )?;
        let end = lines.field("# length ", "expected \"# length <E>\"", decimal)?;
        let table_digest = lines.field(
            "# table blake3 ",
            "expected \"# table blake3 <64 hex>\"",
            hex32,
        )?;
        let last = if lines.rest().starts_with("# last ") {
            Some(lines.field(
                "# last volume ",
                "expected \"# last volume <v> final chunk <g>\"",
                |s| {
                    let (volumes, final_chunk) = s.split_once(" final chunk ")?;
                    Some(LastVolume {
                        volumes: decimal_u32(volumes)?,
                        final_chunk: decimal(final_chunk)?,
                    })
                },
            )?)
        } else {
            None
        };
        let region_digest = lines.field("", "expected \"<64 hex>  -\"", |s| {
            hex32(s.strip_suffix("  -")?)
        })?;
        if !lines.rest().is_empty() {
            return Err(StatementError {
                offset: lines.pos,
                reason: "lines after the digest line",
            });
        }
        let statement = Statement {
            set_id,
            volume,
            first_chunk,
            chunks,
            chunk_len,
            header_len,
            header_digest,
            end,
            table_digest,
            last,
            region_digest,
        };
        // Each field above is canonical; this states the whole rule.
        if statement.encode().as_bytes() != bytes {
            return Err(StatementError {
                offset: 0,
                reason: "not the canonical encoding",
            });
        }
        Ok(statement)
    }
}

/// The statement's lines, one at a time, with their offsets.
struct Lines<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lines<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    /// The next line without its LF, and moves past it.
    fn next_line(&mut self, reason: &'static str) -> Result<(usize, &'a str), StatementError> {
        let at = self.pos;
        let rest = self.rest();
        let end = rest
            .find('\n')
            .ok_or(StatementError { offset: at, reason })?;
        self.pos += end + 1;
        Ok((at, &rest[..end]))
    }

    fn exact(&mut self, line: &str, reason: &'static str) -> Result<(), StatementError> {
        let (at, found) = self.next_line(reason)?;
        if found == line {
            Ok(())
        } else {
            Err(StatementError { offset: at, reason })
        }
    }

    /// A line `prefix ‖ value`, with `value` parsed by `parse`.
    fn field<T>(
        &mut self,
        prefix: &str,
        reason: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, StatementError> {
        let (at, line) = self.next_line(reason)?;
        line.strip_prefix(prefix)
            .and_then(parse)
            .ok_or(StatementError { offset: at, reason })
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// 64 lowercase hex digits.
fn hex32(text: &str) -> Option<[u8; DIGEST_LEN]> {
    if text.len() != 2 * DIGEST_LEN {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; DIGEST_LEN];
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// A decimal without sign or leading zero that fits in u64.
fn decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

fn decimal_u32(text: &str) -> Option<u32> {
    decimal(text)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(last: bool) -> Statement {
        Statement {
            set_id: [0xab; 32],
            volume: 3,
            first_chunk: 4,
            chunks: 2,
            chunk_len: 4096,
            header_len: 2048,
            header_digest: [0x01; 32],
            end: 10240,
            table_digest: [0xfe; 32],
            last: last.then_some(LastVolume {
                volumes: 3,
                final_chunk: 5,
            }),
            region_digest: [0x5a; 32],
        }
    }

    #[test]
    fn encodes_exactly_and_parses_back() {
        let text = sample(true).encode();
        let expected = format!(
            "# kuvert volume statement 1\n# set {}\n# volume 3\n# chunks 4 2 4096\n\
             # header 2048 blake3 {}\n# length 10240\n# table blake3 {}\n\
             # last volume 3 final chunk 5\n{}  -\n",
            "ab".repeat(32),
            "01".repeat(32),
            "fe".repeat(32),
            "5a".repeat(32)
        );
        assert_eq!(text, expected);
        assert_eq!(Statement::parse(text.as_bytes()), Ok(sample(true)));
        let not_last = sample(false).encode();
        assert!(!not_last.contains("# last"));
        assert_eq!(Statement::parse(not_last.as_bytes()), Ok(sample(false)));
    }

    #[test]
    fn the_longest_statement_fits() {
        let longest = Statement {
            volume: u32::MAX,
            first_chunk: u64::MAX,
            chunks: u64::MAX,
            chunk_len: u64::MAX,
            header_len: u64::MAX,
            end: u64::MAX,
            last: Some(LastVolume {
                volumes: u32::MAX,
                final_chunk: u64::MAX,
            }),
            ..sample(true)
        };
        let text = longest.encode();
        assert_eq!(text.len(), 529);
        assert_eq!(Statement::parse(text.as_bytes()), Ok(longest));
    }

    /// The offset and reason of parsing `text`.
    fn refusal(text: &str) -> StatementError {
        Statement::parse(text.as_bytes()).expect_err(text)
    }

    #[test]
    fn every_rule_has_its_refusal() {
        let good = sample(true).encode();
        let line_at = |prefix: &str| good.find(prefix).expect("line present");
        let cases: Vec<(String, usize)> = vec![
            (good.replace("statement 1", "statement 2"), 0),
            (
                good.replace("# volume 3", "# volume 03"),
                line_at("# volume"),
            ),
            (
                good.replace("# volume 3", "# volume +3"),
                line_at("# volume"),
            ),
            (
                good.replace("# volume 3", "# volume 4294967296"),
                line_at("# volume"),
            ),
            (
                good.replace("# chunks 4 2 4096", "# chunks 4 2"),
                line_at("# chunks"),
            ),
            (
                good.replace("# chunks 4 2 4096", "# chunks 4 2 4096 1"),
                line_at("# chunks"),
            ),
            (
                good.replace("# chunks 4 2", "# chunks 4  2"),
                line_at("# chunks"),
            ),
            (
                good.replace(&"ab".repeat(32), &"AB".repeat(32)),
                line_at("# set"),
            ),
            (
                good.replace(&"ab".repeat(32), &"ab".repeat(31)),
                line_at("# set"),
            ),
            (
                good.replace("blake3 0101", "sha256 0101"),
                line_at("# header"),
            ),
            (
                good.replace("# length 10240", "# length 010240"),
                line_at("# length"),
            ),
            (
                good.replace("# length 10240", "# length 18446744073709551616"),
                line_at("# length"),
            ),
            (
                good.replace("final chunk 5", "final  chunk 5"),
                line_at("# last"),
            ),
            (
                good.replace("# last volume", "# last volumes"),
                line_at("# last"),
            ),
            (good.replace("  -\n", " -\n"), line_at(&"5a".repeat(32))),
            (good.replace("  -\n", "  *-\n"), line_at(&"5a".repeat(32))),
            (good.replace("# table", "#table"), line_at("# table")),
            (format!("{good}\n"), good.len()),
            (good.replace('\n', "\r\n"), 27),
            (good[..good.len() - 1].to_owned(), good.len() - 1),
        ];
        for (text, offset) in cases {
            assert_eq!(refusal(&text).offset, offset, "{text}");
        }
        assert_eq!(refusal(&"#".repeat(1025)).offset, 1024);
        assert_eq!(
            refusal("# kuvert volume statement 1\n# set \u{e9}\n").offset,
            34
        );
        // Lines out of order: the table before the length.
        let swapped = good
            .replace("# length 10240\n", "")
            .replace("# last volume", "# length 10240\n# last volume");
        assert!(Statement::parse(swapped.as_bytes()).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn round_trips(
            volume in any::<u32>(),
            numbers in any::<[u64; 5]>(),
            digests in any::<[[u8; 32]; 4]>(),
            last in proptest::option::of((any::<u32>(), any::<u64>())),
        ) {
            let statement = Statement {
                set_id: digests[0],
                volume,
                first_chunk: numbers[0],
                chunks: numbers[1],
                chunk_len: numbers[2],
                header_len: numbers[3],
                header_digest: digests[1],
                end: numbers[4],
                table_digest: digests[2],
                last: last.map(|(volumes, final_chunk)| LastVolume { volumes, final_chunk }),
                region_digest: digests[3],
            };
            let text = statement.encode();
            prop_assert!(text.len() <= 529);
            prop_assert_eq!(Statement::parse(text.as_bytes()), Ok(statement));
        }

        #[test]
        fn any_change_is_refused_or_reencodes(
            at in 0usize..400,
            byte in any::<u8>(),
        ) {
            let good = sample(true).encode().into_bytes();
            let mut bad = good.clone();
            let at = at % bad.len();
            bad[at] = byte;
            // Never a panic; accepted only as the canonical text of what it says.
            if let Ok(parsed) = Statement::parse(&bad) {
                prop_assert_eq!(parsed.encode().into_bytes(), bad);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1100)) {
            if let Ok(parsed) = Statement::parse(&bytes) {
                prop_assert_eq!(parsed.encode().into_bytes(), bytes);
            }
        }
    }
}
