//! What the CLI says when something fails: the library's message (which
//! names the file, the volume, the chunk and the byte offset where they are
//! known) and its sources on one line, with a hint where the CLI has one.

use std::borrow::Cow;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use kuvert::{Error, escape_name};

/// Exit code for failures of data, keys or I/O.
pub const FAILURE: u8 = 1;
/// Exit code for usage errors.
pub const USAGE: u8 = 2;
/// Exit code of `verify` for damage all of which parity repairs: the data
/// is whole, the medium needs refreshing.
pub const REPAIRABLE: u8 = 3;

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

    /// Damage found, all of it repairable from parity (exit 3).
    pub fn repairable(message: impl Into<String>) -> Self {
        Fail {
            code: REPAIRABLE,
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

/// The volumes of one command, for hints about the set: which volume is
/// the highest given, and what a missing one would be called. (Errors name
/// their files themselves: `FileSource` gives the library its path.)
#[derive(Debug, Default)]
pub struct Names {
    /// File names in the order given.
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

    /// The file a missing volume would have, if the others follow
    /// `STEM.NNN.kuv`.
    fn expected_name(&self, volume: u32) -> Option<String> {
        let name = self.inputs.first()?;
        let stem = name.strip_suffix(".kuv")?;
        let (stem, number) = stem.rsplit_once('.')?;
        (number.len() == 3 && number.bytes().all(|b| b.is_ascii_digit()))
            .then(|| format!("{stem}.{volume:03}.kuv"))
    }

    /// The one-line report of a library error: the library's message and
    /// its sources, then what the CLI can add (a flag, a file name).
    pub fn message(&self, err: &Error) -> String {
        let mut text = chain(err);
        if let Some(hint) = self.hint(err) {
            let _ = write!(text, "; {hint}");
        }
        text
    }

    /// What only the CLI knows to say about an error: which flag helps,
    /// which file is missing. Never the error itself: that is the
    /// library's `Display`.
    pub fn hint(&self, err: &Error) -> Option<String> {
        match err {
            Error::NoMatchingKey { stanza_types }
                if stanza_types.iter().any(|t| t == "argon2id") =>
            {
                Some("it also opens with a passphrase (-p)".into())
            }
            Error::HeaderDamaged { .. } => Some("altered after sealing, or crafted".into()),
            Error::IncompatibleRecipients {
                reason: kuvert::MixError::Classical { .. },
            } => Some("--allow-classical seals anyway".into()),
            Error::VolumeMissing { volume } => {
                let highest = self.volumes.keys().max().copied().unwrap_or(0);
                if *volume > highest {
                    Some(format!(
                        "volume {highest} is not the last of its set, give the rest too"
                    ))
                } else {
                    self.expected_name(*volume)
                        .map(|name| format!("expected {name}"))
                }
            }
            Error::LimitExceeded { what, found, .. } => {
                // The flag that raises it, with the value this set needs.
                let flag = match *what {
                    "argon2id memory (KiB)" => format!("--max-argon2-memory {found}K"),
                    "argon2id passes" => format!("--max-argon2-passes {found}"),
                    "argon2id lanes" => format!("--max-argon2-lanes {found}"),
                    _ => return None,
                };
                Some(format!(
                    "the passphrase recipient asks for more work than kuvert allows untrusted \
                     input; if you trust the set, raise the limit with {flag}"
                ))
            }
            _ => None,
        }
    }

    /// A library error as a failure: option errors are usage errors.
    pub fn fail(&self, err: &Error) -> Fail {
        let message = self.message(err);
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
    use kuvert::Location;

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
    fn hints_add_to_the_library_message() {
        let mut names = Names::new();
        names.push(Path::new("parcel.001.kuv"), Some(1));
        names.push(Path::new("parcel.002.kuv"), Some(2));
        names.push(Path::new("parcel.004.kuv"), Some(4));
        let at = Location::volume(2).byte(68_222_976).chunk(1041);
        let err = Error::Unauthenticated {
            chunk: 1041,
            at: at.name(Some("parcel.002.kuv")),
        };
        assert_eq!(names.message(&err), err.to_string());
        assert_eq!(
            names.message(&Error::VolumeMissing { volume: 3 }),
            "volume 3 is missing; expected parcel.003.kuv"
        );
        assert!(
            names
                .message(&Error::VolumeMissing { volume: 5 })
                .starts_with("volume 5 is missing; volume 4 is not the last")
        );
        let err = Error::NoMatchingKey {
            stanza_types: vec!["X25519".into(), "argon2id".into()],
        };
        assert_eq!(
            names.message(&err),
            format!("{err}; it also opens with a passphrase (-p)")
        );
        assert_eq!(names.hint(&Error::NoVolumes), None);
    }
}
