//! Trusted signer files (`--signer FILE`): `kuvertsign1…` lines,
//! `authorized_keys`-style `ssh-ed25519 AAAA… [comment]` lines, and
//! OpenSSH `allowed_signers` lines (ssh-keygen(1), ALLOWED SIGNERS), so
//! one file serves kuvert and `ssh-keygen -Y verify` alike.
//!
//! Lines kuvert cannot honour without a trusted clock or a CA
//! (`cert-authority`, `valid-after`, `valid-before`), lines whose
//! `namespaces` exclude `kuvert`, and keys of other types are skipped with
//! a note, never silently trusted.

use super::keys::SignerKey;
use crate::error::{Error, KeyError};

/// Largest signer file read.
pub const MAX_FILE_LEN: usize = 1 << 20;
/// Most keys one signer file may hold.
pub const MAX_KEYS: usize = 10_000;

const WHAT: &str = "signer";

/// One trusted key of a signer file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedSigner {
    /// The principals of an `allowed_signers` line (`institute@example.org`,
    /// comma-separated as written); empty for a bare key line.
    pub principals: String,
    /// The key.
    pub key: SignerKey,
    /// The line it is on, from 1.
    pub line: usize,
}

/// A line that holds a key kuvert does not trust, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    /// Line number, from 1.
    pub line: usize,
    /// Why it was skipped.
    pub reason: &'static str,
}

/// The keys of a signer file and the lines skipped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllowedSigners {
    /// The trusted keys, in file order.
    pub signers: Vec<AllowedSigner>,
    /// Lines not trusted, with the reason (print them as notes).
    pub skipped: Vec<SkippedLine>,
}

/// Parses a signer file: per line a `kuvertsign1…` key, an `ssh-ed25519
/// BASE64 [comment]` line, or `principals [options] ssh-ed25519 BASE64
/// [comment]`; blank lines and `#` lines are ignored.
///
/// # Errors
///
/// [`Error::LimitExceeded`] above 1 MiB or 10,000 keys;
/// [`Error::KeyFileLine`] for a line that is none of these (an unknown
/// option, a broken key, an unterminated quote); [`Error::EmptyKeyFile`]
/// if no key is trusted.
pub fn parse_allowed_signers(text: &str) -> Result<AllowedSigners, Error> {
    if text.len() > MAX_FILE_LEN {
        return Err(Error::LimitExceeded {
            what: "signer file size",
            found: text.len() as u64,
            limit: MAX_FILE_LEN as u64,
        });
    }
    let mut out = AllowedSigners::default();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at_line = |reason: KeyError| Error::KeyFileLine {
            what: WHAT,
            line: line_no,
            reason,
        };
        match parse_line(line).map_err(|err| match err {
            Error::InvalidKey { reason } => at_line(reason),
            other => other,
        })? {
            Line::Key { principals, key } => {
                if out.signers.len() == MAX_KEYS {
                    return Err(Error::LimitExceeded {
                        what: "keys in a signer file",
                        found: MAX_KEYS as u64 + 1,
                        limit: MAX_KEYS as u64,
                    });
                }
                out.signers.push(AllowedSigner {
                    principals,
                    key,
                    line: line_no,
                });
            }
            Line::Skipped(reason) => out.skipped.push(SkippedLine {
                line: line_no,
                reason,
            }),
        }
    }
    if out.signers.is_empty() {
        return Err(Error::EmptyKeyFile { what: WHAT });
    }
    Ok(out)
}

enum Line {
    Key { principals: String, key: SignerKey },
    Skipped(&'static str),
}

fn bad(reason: &'static str) -> Error {
    Error::key(KeyError::Signing {
        what: "signer line",
        reason,
    })
}

/// OpenSSH key types kuvert knows are not `ssh-ed25519`: skipped, not
/// errors, so a shared allowed_signers file works.
fn is_other_key_type(token: &str) -> bool {
    token.starts_with("ssh-")
        || token.starts_with("ecdsa-sha2-")
        || token.starts_with("sk-")
        || token.starts_with("rsa-sha2-")
}

fn parse_line(line: &str) -> Result<Line, Error> {
    if !line.starts_with("ssh-") && !line.contains(char::is_whitespace) {
        return Ok(Line::Key {
            principals: String::new(),
            key: line.parse()?,
        });
    }
    let tokens = tokens(line)?;
    let mut tokens = tokens.iter().map(String::as_str);
    let first = tokens.next().ok_or_else(|| bad("empty line"))?;
    if first == "ssh-ed25519" {
        let key = tokens
            .next()
            .ok_or_else(|| bad("ssh-ed25519 without a key"))?;
        return Ok(Line::Key {
            principals: String::new(),
            key: SignerKey::from_openssh_base64(key)?,
        });
    }
    if is_other_key_type(first) {
        return Ok(Line::Skipped("not an ssh-ed25519 key"));
    }
    let principals = unquote(first);
    let mut next = tokens
        .next()
        .ok_or_else(|| bad("principals without a key"))?;
    let mut options = None;
    if next != "ssh-ed25519" && !is_other_key_type(next) {
        options = Some(next);
        next = tokens.next().ok_or_else(|| bad("options without a key"))?;
    }
    if next != "ssh-ed25519" {
        if is_other_key_type(next) {
            return Ok(Line::Skipped("not an ssh-ed25519 key"));
        }
        return Err(bad("expected a key type after the principals and options"));
    }
    let key = tokens
        .next()
        .ok_or_else(|| bad("ssh-ed25519 without a key"))?;
    let key = SignerKey::from_openssh_base64(key)?;
    if let Some(options) = options
        && let Some(reason) = check_options(options)?
    {
        return Ok(Line::Skipped(reason));
    }
    Ok(Line::Key { principals, key })
}

/// White-space separated tokens; white space inside double quotes stays.
fn tokens(line: &str) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err(bad("unterminated quote"));
    }
    if !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

fn unquote(token: &str) -> String {
    token
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(token)
        .to_owned()
}

/// The options of a line: `Some(reason)` to skip it, `None` to trust it.
fn check_options(options: &str) -> Result<Option<&'static str>, Error> {
    let mut skip = None;
    for option in split_outside_quotes(options) {
        let (name, value) = match option.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (option, None),
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("cert-authority", None) => {
                skip = skip.or(Some("cert-authority: kuvert checks plain keys only"));
            }
            ("namespaces", Some(value)) => {
                let list = value
                    .strip_prefix('"')
                    .and_then(|rest| rest.strip_suffix('"'))
                    .ok_or_else(|| bad("namespaces= needs a quoted list"))?;
                if !match_pattern_list("kuvert", list) {
                    skip = skip.or(Some("its namespaces do not include kuvert"));
                }
            }
            ("valid-after" | "valid-before", Some(_)) => {
                skip = skip.or(Some(
                    "valid-after/valid-before: no trusted time without a key",
                ));
            }
            _ => return Err(bad("unknown option")),
        }
    }
    Ok(skip)
}

fn split_outside_quotes(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (at, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

/// OpenSSH's `match_pattern_list`: comma-separated patterns with `*` and
/// `?`; a matching `!pattern` refuses at once, else any match accepts.
fn match_pattern_list(name: &str, list: &str) -> bool {
    let mut matched = false;
    for pattern in list.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if glob(name.as_bytes(), negated.as_bytes()) {
                return false;
            }
        } else if glob(name.as_bytes(), pattern.as_bytes()) {
            matched = true;
        }
    }
    matched
}

/// `*` and `?` matching in O(name × pattern), never exponential.
fn glob(name: &[u8], pattern: &[u8]) -> bool {
    let (mut n, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            n += 1;
            p += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((star_p, star_n)) = star {
            p = star_p + 1;
            n = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::SigningKey;
    use proptest::prelude::*;

    fn key(seed: u8) -> SignerKey {
        *SigningKey::from_seed([seed; 32]).public()
    }

    #[test]
    fn reads_every_line_form() {
        let (a, b, c) = (key(2), key(3), key(4));
        let text = format!(
            "# trusted\n\n{a}\n{}\ninstitute@example.org namespaces=\"kuvert\" {}\n\
             \"office one\",x@y {}\n",
            b.to_openssh("comment here"),
            c.to_openssh(""),
            a.to_openssh("c"),
        );
        let parsed = parse_allowed_signers(&text).expect("valid file");
        assert_eq!(parsed.skipped, []);
        let got: Vec<(&str, SignerKey, usize)> = parsed
            .signers
            .iter()
            .map(|s| (s.principals.as_str(), s.key, s.line))
            .collect();
        assert_eq!(
            got,
            [
                ("", a, 3),
                ("", b, 4),
                ("institute@example.org", c, 5),
                ("\"office one\",x@y", a, 6),
            ]
        );
    }

    #[test]
    fn lines_kuvert_cannot_honour_are_skipped_with_a_note() {
        let k = key(2).to_openssh("");
        let text = format!(
            "a@b cert-authority {k}\n\
             a@b namespaces=\"file,git\" {k}\n\
             a@b namespaces=\"*,!kuvert\" {k}\n\
             a@b valid-after=20260101 {k}\n\
             a@b valid-before=\"20270101\",namespaces=\"kuvert\" {k}\n\
             a@b ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ\n\
             ecdsa-sha2-nistp256 AAAAE2VjZHNh\n\
             a@b namespaces=\"k?v*\" {k}\n"
        );
        let parsed = parse_allowed_signers(&text).expect("one key trusted");
        assert_eq!(parsed.signers.len(), 1);
        assert_eq!(parsed.signers[0].line, 8);
        let lines: Vec<usize> = parsed.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(
            parsed.skipped[1].reason,
            "its namespaces do not include kuvert"
        );
    }

    #[test]
    fn broken_lines_are_errors_naming_the_line() {
        let k = key(2).to_openssh("");
        for (text, line) in [
            (format!("# x\na@b unknown-option {k}\n"), 2),
            (format!("a@b namespaces=kuvert {k}\n"), 1),
            (format!("\"a@b {k}\n"), 1),
            ("a@b\n".to_owned(), 1),
            ("a@b ssh-ed25519\n".to_owned(), 1),
            (format!("{}\n", k.replace("AAAAC3", "AAAAC4")), 1),
            ("kuvertsign1qqqq\n".to_owned(), 1),
        ] {
            match parse_allowed_signers(&text) {
                Err(Error::KeyFileLine {
                    what: "signer",
                    line: found,
                    ..
                }) => {
                    assert_eq!(found, line, "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            parse_allowed_signers("# only comments\n"),
            Err(Error::EmptyKeyFile { what: "signer" })
        ));
        assert!(matches!(
            parse_allowed_signers(&format!("a@b cert-authority {k}\n")),
            Err(Error::EmptyKeyFile { .. })
        ));
    }

    #[test]
    fn bounds_are_enforced() {
        let big = "#".repeat(MAX_FILE_LEN + 1);
        assert!(matches!(
            parse_allowed_signers(&big),
            Err(Error::LimitExceeded {
                what: "signer file size",
                ..
            })
        ));
        let line = format!("{}\n", key(2));
        let many = line.repeat(MAX_KEYS + 1);
        assert!(matches!(
            parse_allowed_signers(&many),
            Err(Error::LimitExceeded {
                what: "keys in a signer file",
                ..
            })
        ));
        assert_eq!(
            parse_allowed_signers(&line.repeat(MAX_KEYS))
                .expect("at the bound")
                .signers
                .len(),
            MAX_KEYS
        );
    }

    #[test]
    fn patterns_match_as_openssh_does() {
        assert!(match_pattern_list("kuvert", "kuvert"));
        assert!(match_pattern_list("kuvert", "file,kuvert"));
        assert!(match_pattern_list("kuvert", "*"));
        assert!(match_pattern_list("kuvert", "k?v*t"));
        assert!(!match_pattern_list("kuvert", "kuver"));
        assert!(!match_pattern_list("kuvert", "*,!ku*"));
        assert!(!match_pattern_list("kuvert", ""));
        assert!(glob(
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
            b"*a*a*a*a*a*a*a*a*b"
        ));
        assert!(!glob(&[b'a'; 200], b"*a*b"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_text_never_panics(text in "[ -~\n\t\"]{0,400}") {
            let _ = parse_allowed_signers(&text);
        }

        #[test]
        fn a_changed_key_line_is_refused_or_canonical(at in 0usize..80, c in "[A-Za-z0-9+/=]") {
            let mut line = key(2).to_openssh("").into_bytes();
            let at = 12 + at % (line.len() - 12);
            line[at] = c.as_bytes()[0];
            let text = String::from_utf8(line).expect("ascii");
            // Accepted only as the canonical line of the key it decodes to.
            if let Ok(parsed) = parse_allowed_signers(&text) {
                prop_assert_eq!(parsed.signers[0].key.to_openssh(""), text);
            }
        }
    }
}
