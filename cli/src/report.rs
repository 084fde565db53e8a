//! What the CLI says when something fails: one line naming the file, the
//! volume, the chunk and the byte offset where they are known.

use std::borrow::Cow;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use kuvert::{Error, escape_name};

use crate::size::grouped;

/// Exit code for failures of data, keys or I/O.
pub const FAILURE: u8 = 1;
/// Exit code for usage errors.
pub const USAGE: u8 = 2;

/// A failure to report: the line after `kuvert: ` and the exit code.
#[derive(Debug)]
pub struct Fail {
    pub code: u8,
    pub message: String,
}

impl Fail {
    /// A failure of data, keys or I/O (exit 1).
    pub fn data(message: impl Into<String>) -> Self {
        Fail {
            code: FAILURE,
            message: message.into(),
        }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Fail {
            code: USAGE,
            message: message.into(),
        }
    }
}

pub type Result<T, E = Fail> = std::result::Result<T, E>;

/// An error and its sources, joined by `: `.
pub fn chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        // io::Error's Display already shows a custom inner error.
        if !text.ends_with(&inner_text) {
            let _ = write!(text, ": {inner_text}");
        }
        source = inner.source();
    }
    text
}

/// An I/O failure about `path`: `cannot read parcel.kuv: …`.
pub fn io_fail(what: &str, path: &Path, err: &io::Error) -> Fail {
    Fail::data(format!("{what} {}: {}", shown(path), chain(err)))
}

/// A path for a message, escaped as `ls -b` would: volume files are named
/// by whoever wrote the disc.
pub fn shown(path: &Path) -> String {
    escape_name(&path.to_string_lossy()).into_owned()
}

/// How the volumes of one command are named in messages.
#[derive(Debug, Default)]
pub struct Names {
    /// File names in the order given, for the library's `input` numbers.
    inputs: Vec<String>,
    /// Volume number (from each header, as given) to file name.
    volumes: HashMap<u32, String>,
}

impl Names {
    pub fn new() -> Self {
        Names::default()
    }

    /// Records the next input and, if its header could be read, its number.
    pub fn push(&mut self, path: &Path, volume: Option<u32>) {
        let name = shown(path);
        if let Some(volume) = volume {
            self.volumes.entry(volume).or_insert_with(|| name.clone());
        }
        self.inputs.push(name);
    }

    fn input(&self, input: usize) -> String {
        input
            .checked_sub(1)
            .and_then(|index| self.inputs.get(index))
            .cloned()
            .unwrap_or_else(|| format!("input {input}"))
    }

    /// `volume 2 (parcel.002.kuv)`, or `volume 2` if no file claims it.
    fn volume(&self, volume: u32) -> String {
        match self.volumes.get(&volume) {
            Some(name) => format!("volume {volume} ({name})"),
            None => format!("volume {volume}"),
        }
    }

    /// The file a missing volume would have, if the others follow
    /// `STEM.NNN.kuv`.
    fn expected_name(&self, volume: u32) -> Option<String> {
        let name = self.inputs.first()?;
        let stem = name.strip_suffix(".kuv")?;
        let (stem, number) = stem.rsplit_once('.')?;
        (number.len() == 3 && number.bytes().all(|b| b.is_ascii_digit()))
            .then(|| format!("{stem}.{volume:03}.kuv"))
    }

    /// The one-line description of a library error.
    pub fn describe(&self, err: &Error) -> String {
        match err {
            Error::Io(inner) => chain(inner),
            Error::Read { source, .. } => format!("{err}: {}", chain(source)),
            Error::NotKuvert { input } => {
                format!("{} is not a kuvert volume", self.input(*input))
            }
            Error::UnsupportedVersion { input, version } => format!(
                "{} uses format version {version}; this kuvert reads version {}",
                self.input(*input),
                kuvert::FORMAT_VERSION
            ),
            Error::MalformedHeader {
                input,
                offset,
                reason,
            } => format!(
                "{}: malformed header at byte {}: {reason}",
                self.input(*input),
                grouped(*offset)
            ),
            Error::NoMatchingKey { stanza_types } => {
                let passphrase = stanza_types.iter().any(|t| t == "argon2id");
                let mut text = format!(
                    "wrong key: no identity given matches a recipient of the set (recipient types: {})",
                    stanza_types.join(", ")
                );
                if passphrase {
                    text.push_str("; it also opens with a passphrase (-p)");
                }
                text
            }
            Error::WrongPassphrase => "wrong passphrase".into(),
            Error::HeaderDamaged { volume } => format!(
                "{}: header failed authentication (altered after sealing, or crafted)",
                self.volume(*volume)
            ),
            Error::Unauthenticated {
                chunk,
                volume,
                offset,
            } => format!(
                "chunk {chunk} of {} failed authentication at byte {}",
                self.volume(*volume),
                grouped(*offset)
            ),
            Error::Truncated { volume, length } => format!(
                "{} is truncated: it ends at byte {} before its last chunk",
                self.volume(*volume),
                grouped(*length)
            ),
            Error::VolumeMissing { volume } => {
                let highest = self.volumes.keys().max().copied().unwrap_or(0);
                let mut text = format!("volume {volume} missing");
                if *volume > highest {
                    let _ = write!(
                        text,
                        ": volume {highest} is not the last of its set, give the rest too"
                    );
                } else if let Some(name) = self.expected_name(*volume) {
                    let _ = write!(text, " (expected {name})");
                }
                text
            }
            Error::DuplicateVolume {
                volume,
                first,
                second,
            } => format!(
                "{} and {} are both volume {volume}",
                self.input(*first),
                self.input(*second)
            ),
            Error::ForeignVolume { input, volume } => format!(
                "{} (volume {volume}) belongs to another set",
                self.input(*input)
            ),
            Error::TrailingData { volume, offset } => format!(
                "{} has bytes after its last chunk, from byte {}",
                self.volume(*volume),
                grouped(*offset)
            ),
            Error::MalformedChunk {
                chunk,
                volume,
                reason,
            } => format!(
                "chunk {chunk} of {} is malformed: {reason}",
                self.volume(*volume)
            ),
            // While sealing, `path` is the file on disk.
            Error::UnsafeEntry { path, reason } => format!("{}: {reason}", escape_name(path)),
            Error::LimitExceeded { what, found, .. } => {
                // The flag that raises it, with the value this set needs.
                let flag = match *what {
                    "argon2id memory (KiB)" => Some(format!("--max-argon2-memory {found}K")),
                    "argon2id passes" => Some(format!("--max-argon2-passes {found}")),
                    "argon2id lanes" => Some(format!("--max-argon2-lanes {found}")),
                    _ => None,
                };
                match flag {
                    Some(flag) => format!(
                        "{err}: the passphrase recipient asks for more work than kuvert allows \
                         untrusted input; if you trust the set, raise the limit with {flag}"
                    ),
                    None => format!(
                        "{err}; the set asks for more work than kuvert allows untrusted input"
                    ),
                }
            }
            other => chain(other),
        }
    }

    /// A library error as a failure: option errors are usage errors.
    pub fn fail(&self, err: &Error) -> Fail {
        let message = self.describe(err);
        match err {
            Error::InvalidOption { .. } => Fail::usage(message),
            _ => Fail::data(message),
        }
    }
}

/// Escapes a string for JSON.
pub fn json_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // JSON demands only C0 escaped; everything `escape_name`
            // escapes (DEL, C1, line separators, bidi controls) is too, so
            // JSON shown on a terminal cannot move the cursor either. A
            // decoder gets the same string back.
            c if matches!(escape_name(c.encode_utf8(&mut [0; 4])), Cow::Owned(_)) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// The library's RFC 3339 rendering, as every listing prints times.
pub use kuvert::rfc3339_utc as rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
        assert_eq!(
            json_str("\x1b[2J\x7f\u{9b}\u{2028}\u{202e}ü"),
            "\"\\u001b[2J\\u007f\\u009b\\u2028\\u202eü\""
        );
    }

    #[test]
    fn errors_name_files() {
        let mut names = Names::new();
        names.push(Path::new("parcel.001.kuv"), Some(1));
        names.push(Path::new("parcel.002.kuv"), Some(2));
        names.push(Path::new("parcel.004.kuv"), Some(4));
        assert_eq!(
            names.describe(&Error::Unauthenticated {
                chunk: 1041,
                volume: 2,
                offset: 68_222_976
            }),
            "chunk 1041 of volume 2 (parcel.002.kuv) failed authentication at byte 68,222,976"
        );
        assert_eq!(
            names.describe(&Error::ForeignVolume {
                input: 2,
                volume: 2
            }),
            "parcel.002.kuv (volume 2) belongs to another set"
        );
        assert_eq!(
            names.describe(&Error::VolumeMissing { volume: 3 }),
            "volume 3 missing (expected parcel.003.kuv)"
        );
        assert!(
            names
                .describe(&Error::VolumeMissing { volume: 5 })
                .starts_with("volume 5 missing: volume 4 is not the last")
        );
    }
}
