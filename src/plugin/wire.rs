//! The plugin protocol's framing (age-plugin.md, "IPC protocol"): age
//! stanzas in their text form, read strictly and within fixed bounds, so
//! that a plugin cannot make the client allocate without limit or accept
//! two spellings of one message.

use std::io::{self, BufRead, Read, Write};

use base64ct::{Base64Unpadded, Encoding};
use zeroize::Zeroizing;

use crate::error::PluginFailure;

/// Longest line accepted from a plugin, newline included: an argument line
/// holds at most a few keys (a hybrid stanza's is about 1,500 bytes).
pub(crate) const MAX_LINE: usize = 70_000;
/// Largest decoded body: the format's stanza body bound.
pub(crate) const MAX_BODY: usize = 65_535;
/// Most bytes read from a plugin in one session.
pub(crate) const MAX_SESSION_BYTES: u64 = 16 << 20;
/// Most stanzas read from a plugin in one session.
pub(crate) const MAX_SESSION_STANZAS: u32 = 100_000;

/// Base64 characters on every body line but the last.
const BODY_LINE_CHARS: usize = 64;

/// One message of the protocol: a command and its arguments, and a body.
/// The body is wiped on drop: it may be a file key or a PIN.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct WireStanza {
    /// The command (argument 0) and its arguments, each 1*VCHAR.
    pub args: Vec<String>,
    /// The decoded body.
    pub body: Zeroizing<Vec<u8>>,
}

impl WireStanza {
    /// The command: argument 0.
    pub fn command(&self) -> &str {
        &self.args[0]
    }
}

/// Why a session ended early, before the process layer names the plugin.
#[derive(Debug)]
pub(crate) enum SessionError {
    /// A pipe failed, or the plugin was silent too long
    /// (`io::ErrorKind::TimedOut`).
    Io(io::Error),
    /// The plugin closed its output before the session ended.
    Closed,
    /// The plugin broke the protocol or reported errors.
    Failure(PluginFailure),
}

impl SessionError {
    /// A protocol violation, described.
    pub fn protocol(reason: impl Into<String>) -> Self {
        SessionError::Failure(PluginFailure::Protocol(reason.into()))
    }
}

impl From<io::Error> for SessionError {
    fn from(err: io::Error) -> Self {
        SessionError::Io(err)
    }
}

/// Reads stanzas from a plugin, counting what the session has read.
pub(crate) struct StanzaReader<R> {
    inner: R,
    bytes: u64,
    stanzas: u32,
}

impl<R: BufRead> StanzaReader<R> {
    pub fn new(inner: R) -> Self {
        StanzaReader {
            inner,
            bytes: 0,
            stanzas: 0,
        }
    }

    /// The next stanza, strictly framed: `-> ARG…` with single spaces,
    /// then body lines of 64 base64 characters ended by a shorter one
    /// (empty for a body that fills its lines), canonical and unpadded.
    pub fn read(&mut self) -> Result<WireStanza, SessionError> {
        if self.stanzas == MAX_SESSION_STANZAS {
            return Err(SessionError::protocol(format!(
                "more than {MAX_SESSION_STANZAS} messages in one session"
            )));
        }
        self.stanzas += 1;
        let line = self.line()?;
        let args = parse_arguments(&line)?;
        let mut body = Zeroizing::new(Vec::new());
        loop {
            let line = self.line()?;
            let text = &line[..line.len() - 1];
            if text.len() > BODY_LINE_CHARS {
                return Err(SessionError::protocol(format!(
                    "a body line of {} characters after `{}`, more than 64",
                    text.len(),
                    args[0]
                )));
            }
            let decoded = Zeroizing::new(
                Base64Unpadded::decode_vec(std::str::from_utf8(text).unwrap_or("\u{0}")).map_err(
                    |_| {
                        SessionError::protocol(format!(
                            "the body of `{}` is not canonical unpadded base64",
                            args[0]
                        ))
                    },
                )?,
            );
            if body.len() + decoded.len() > MAX_BODY {
                return Err(SessionError::protocol(format!(
                    "the body of `{}` is longer than {MAX_BODY} bytes",
                    args[0]
                )));
            }
            body.extend_from_slice(&decoded);
            if text.len() < BODY_LINE_CHARS {
                return Ok(WireStanza { args, body });
            }
        }
    }

    /// One line, `\n` included, within [`MAX_LINE`] and the session bound.
    fn line(&mut self) -> Result<Zeroizing<Vec<u8>>, SessionError> {
        let mut line = Zeroizing::new(Vec::new());
        let room = MAX_SESSION_BYTES - self.bytes;
        let limit = (MAX_LINE as u64).min(room);
        (&mut self.inner).take(limit).read_until(b'\n', &mut line)?;
        self.bytes += line.len() as u64;
        if line.last() == Some(&b'\n') {
            return Ok(line);
        }
        if line.len() as u64 == limit {
            return Err(SessionError::protocol(if limit == room {
                format!("more than {MAX_SESSION_BYTES} bytes in one session")
            } else {
                format!("a line longer than {MAX_LINE} bytes")
            }));
        }
        Err(SessionError::Closed)
    }
}

/// The arguments of an argument line: `-> ` then 1*VCHAR separated by
/// single spaces, then `\n`.
fn parse_arguments(line: &[u8]) -> Result<Vec<String>, SessionError> {
    let Some(rest) = line.strip_prefix(b"-> ") else {
        return Err(SessionError::protocol(
            "a message that does not start with \"-> \"",
        ));
    };
    let rest = &rest[..rest.len() - 1];
    let mut args = Vec::new();
    for arg in rest.split(|&byte| byte == b' ') {
        if arg.is_empty() {
            return Err(SessionError::protocol(
                "an empty argument (a doubled, leading or trailing space)",
            ));
        }
        if !arg.iter().all(|byte| (0x21..=0x7e).contains(byte)) {
            return Err(SessionError::protocol(
                "an argument with a byte outside 0x21-0x7E",
            ));
        }
        // Checked ASCII above.
        args.push(String::from_utf8_lossy(arg).into_owned());
    }
    Ok(args)
}

/// Writes one stanza and flushes it: the peer waits for whole messages.
/// The encoded bytes are wiped after the write (they may hold a file key or
/// a PIN).
pub(crate) fn write_stanza<W: Write>(out: &mut W, args: &[&str], body: &[u8]) -> io::Result<()> {
    debug_assert!(
        args.iter().all(|arg| {
            !arg.is_empty() && arg.bytes().all(|byte| (0x21..=0x7e).contains(&byte))
        })
    );
    let encoded = Zeroizing::new(Base64Unpadded::encode_string(body));
    let mut message = Zeroizing::new(Vec::with_capacity(
        4 + args.iter().map(|arg| arg.len() + 1).sum::<usize>() + encoded.len() * 65 / 64 + 1,
    ));
    message.extend_from_slice(b"->");
    for arg in args {
        message.push(b' ');
        message.extend_from_slice(arg.as_bytes());
    }
    message.push(b'\n');
    let mut lines = encoded.as_bytes().chunks(BODY_LINE_CHARS).peekable();
    while let Some(chunk) = lines.next() {
        message.extend_from_slice(chunk);
        message.push(b'\n');
        if lines.peek().is_none() && chunk.len() < BODY_LINE_CHARS {
            return finish(out, &message);
        }
    }
    // An empty body, or one that fills its last line: an empty final line.
    message.push(b'\n');
    finish(out, &message)
}

fn finish<W: Write>(out: &mut W, message: &[u8]) -> io::Result<()> {
    out.write_all(message)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8]) -> Vec<Result<WireStanza, String>> {
        let mut reader = StanzaReader::new(input);
        let mut out = Vec::new();
        loop {
            match reader.read() {
                Ok(stanza) => out.push(Ok(stanza)),
                Err(SessionError::Closed) => return out,
                Err(SessionError::Failure(PluginFailure::Protocol(why))) => {
                    out.push(Err(why));
                    return out;
                }
                Err(other) => panic!("{other:?}"),
            }
        }
    }

    fn stanza(args: &[&str], body: &[u8]) -> WireStanza {
        WireStanza {
            args: args.iter().map(|arg| arg.to_string()).collect(),
            body: Zeroizing::new(body.to_vec()),
        }
    }

    #[test]
    fn writes_the_spec_layout() {
        let mut out = Vec::new();
        write_stanza(&mut out, &["done"], b"").expect("vec");
        write_stanza(&mut out, &["ok", "yes"], b"").expect("vec");
        write_stanza(&mut out, &["wrap-file-key"], &[0u8; 16]).expect("vec");
        assert_eq!(
            out,
            b"-> done\n\n-> ok yes\n\n-> wrap-file-key\nAAAAAAAAAAAAAAAAAAAAAA\n"
        );
        // 48 bytes fill one line exactly: an empty line ends the body.
        let mut out = Vec::new();
        write_stanza(&mut out, &["x"], &[0xffu8; 48]).expect("vec");
        assert_eq!(out, format!("-> x\n{}\n\n", "/".repeat(64)).as_bytes());
    }

    #[test]
    fn round_trips_every_body_length_around_a_line() {
        for len in [0usize, 1, 2, 3, 47, 48, 49, 95, 96, 97, 1000, MAX_BODY] {
            let body: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
            let mut out = Vec::new();
            write_stanza(&mut out, &["recipient-stanza", "0", "X25519", "a+/"], &body)
                .expect("vec");
            let read = read_all(&out);
            assert_eq!(
                read,
                vec![Ok(stanza(
                    &["recipient-stanza", "0", "X25519", "a+/"],
                    &body
                ))],
                "{len}"
            );
        }
    }

    #[test]
    fn refuses_what_age_refuses() {
        let cases: &[(&[u8], &str)] = &[
            (b"->  done\n\n", "an empty argument"),
            (b"-> done \n\n", "an empty argument"),
            (b"->\n\n", "does not start"),
            (b"-> \n\n", "an empty argument"),
            (b"--> done\n\n", "does not start"),
            (b"-> d\xc3\xa9\n\n", "outside 0x21-0x7E"),
            (b"-> d\tx\n\n", "outside 0x21-0x7E"),
            (b"-> ok\nAA==\n", "not canonical"),
            (b"-> ok\nAB\n", "not canonical"),
            (b"-> ok\nA\n", "not canonical"),
            (b"-> ok\nAA\r\n", "not canonical"),
        ];
        for (input, why) in cases {
            let read = read_all(input);
            assert!(
                matches!(read.as_slice(), [Err(found)] if found.contains(why)),
                "{:?}: {read:?}",
                String::from_utf8_lossy(input)
            );
        }
        let long_line = format!("-> ok\n{}\n", "A".repeat(65));
        assert!(
            matches!(&read_all(long_line.as_bytes())[..], [Err(why)] if why.contains("more than 64"))
        );
    }

    #[test]
    fn bounds_lines_bodies_and_sessions() {
        let line = format!("-> {}\n\n", "a".repeat(MAX_LINE));
        assert!(
            matches!(&read_all(line.as_bytes())[..], [Err(why)] if why.contains("longer than 70000"))
        );
        let fits = format!("-> {}\n\n", "a".repeat(MAX_LINE - 4));
        assert!(matches!(&read_all(fits.as_bytes())[..], [Ok(_)]));
        // A body of 65,536 bytes: 1,366 lines, one byte too many.
        let mut big = Vec::new();
        write_stanza(&mut big, &["x"], &vec![0u8; MAX_BODY + 1]).expect("vec");
        assert!(matches!(&read_all(&big)[..], [Err(why)] if why.contains("longer than 65535")));
        let many = b"-> a\n\n".repeat(MAX_SESSION_STANZAS as usize + 1);
        let read = read_all(&many);
        assert_eq!(read.len(), MAX_SESSION_STANZAS as usize + 1);
        assert!(matches!(read.last(), Some(Err(why)) if why.contains("more than 100000 messages")));
        // 16 MiB of maximal lines: the session bound, not the line bound.
        let line = format!("-> {}\n\n", "a".repeat(MAX_LINE - 10));
        let flood = line.repeat((MAX_SESSION_BYTES as usize / line.len()) + 1);
        let read = read_all(flood.as_bytes());
        assert!(matches!(read.last(), Some(Err(why)) if why.contains("16777216 bytes")));
    }

    #[test]
    fn a_cut_message_is_closed_not_a_message() {
        for input in [&b"-> done"[..], b"-> done\n", b"-> ok\nAAAA", b""] {
            let mut reader = StanzaReader::new(input);
            assert!(
                matches!(reader.read(), Err(SessionError::Closed)),
                "{input:?}"
            );
        }
    }
}
