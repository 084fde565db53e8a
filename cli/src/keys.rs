//! Keys on the command line: `keygen`, recipients (`-r`, `-R`), identities
//! (`-i`) and passphrases (`-p`, `--passphrase-file`, `KUVERT_PASSPHRASE_FILE`,
//! the terminal prompt).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use kuvert::{HybridIdentity, Identity, Passphrase, Recipient, SigningKey, X25519Identity};
use zeroize::Zeroizing;

use crate::cli::{KeyArgs, KeygenArgs};
use crate::output::{is_dash, write_private};
use crate::report::{Fail, Result, chain, io_fail};

/// Names a file holding a passphrase (first line) for batch jobs.
pub const PASSPHRASE_FILE_ENV: &str = "KUVERT_PASSPHRASE_FILE";

/// Characters of a generated passphrase: 26 × 5 = 130 bits.
const GENERATED_LEN: usize = 26;

/// Reads a file, or standard input for `-`, as UTF-8 text.
pub fn read_text(path: &Path) -> Result<Zeroizing<String>> {
    let mut text = Zeroizing::new(String::new());
    let result = if is_dash(path) {
        io::stdin().read_to_string(&mut text)
    } else {
        fs::File::open(path).and_then(|mut file| file.read_to_string(&mut text))
    };
    result.map_err(|err| io_fail("cannot read", path, &err))?;
    Ok(text)
}

/// `kuvert keygen`.
pub fn keygen(args: &KeygenArgs) -> Result<()> {
    if args.convert {
        return print_recipients(args);
    }
    if args.input.is_some() {
        return Err(Fail::usage(
            "keygen takes an input file only with -y (to print its recipients)",
        ));
    }
    let failed = |err: kuvert::Error| Fail::data(format!("cannot generate a key: {}", chain(&err)));
    let created = SystemTime::now();
    if args.sign {
        let key = SigningKey::generate().map_err(failed)?;
        let text = key.to_file_string(created);
        match &args.output {
            Some(path) if !is_dash(path) => write_private(path, text.as_bytes())?,
            _ => write_stdout(text.as_bytes())?,
        }
        eprintln!("Public key: {}", key.public());
        eprintln!("OpenSSH: {}", key.public().to_openssh(SIGNER_COMMENT));
        return Ok(());
    }
    // age's encodings and age-keygen's file either way (`-pq` for hybrid).
    let (public, text) = if args.classical {
        let identity = X25519Identity::generate().map_err(failed)?;
        (
            identity.to_public().to_string(),
            identity.to_file_string(created),
        )
    } else {
        let identity = HybridIdentity::generate().map_err(failed)?;
        (
            identity.to_public().to_string(),
            identity.to_file_string(created),
        )
    };
    match &args.output {
        Some(path) if !is_dash(path) => write_private(path, text.as_bytes())?,
        _ => write_stdout(text.as_bytes())?,
    }
    eprintln!("Public key: {public}");
    Ok(())
}

/// `kuvert keygen -y [FILE]`: the recipients of an identity file, or the
/// public forms of a signing key.
fn print_recipients(args: &KeygenArgs) -> Result<()> {
    let input = args.input.clone().unwrap_or_else(|| PathBuf::from("-"));
    let text = read_text(&input)?;
    let mut out = String::new();
    if args.sign || is_signing_key_file(&text) {
        let key = SigningKey::parse_file(&text)
            .map_err(|err| Fail::data(format!("{}: {err}", display_input(&input))))?;
        out.push_str(&format!(
            "{}\n{}\n",
            key.public(),
            key.public().to_openssh(SIGNER_COMMENT)
        ));
        return write_output(args, &out);
    }
    let identities = Identity::parse_file(&text)
        .map_err(|err| Fail::data(format!("{}: {err}", display_input(&input))))?;
    // age's encodings: `age1pq1…` for hybrid identities, `age1…` for X25519.
    for identity in &identities {
        let recipient = match identity.to_recipient() {
            Some(recipient) => recipient,
            None => {
                return Err(Fail::usage(
                    "a plugin identity (AGE-PLUGIN-…) has no recipient kuvert can derive: \
                     ask its plugin (age-plugin-yubikey --list, …)",
                ));
            }
        };
        out.push_str(&recipient.to_string());
        out.push('\n');
    }
    write_output(args, &out)
}

/// The comment of the OpenSSH line printed for a signing key.
const SIGNER_COMMENT: &str = "kuvert";

/// Whether `text` holds a signing key rather than identities: a
/// `KUVERT-SIGN-KEY-1…` line or an OpenSSH private key.
fn is_signing_key_file(text: &str) -> bool {
    text.lines().map(str::trim).any(|line| {
        line.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
            || line
                .get(..17)
                .is_some_and(|head| head.eq_ignore_ascii_case("KUVERT-SIGN-KEY-1"))
    })
}

/// Public text to `-o FILE` (never replaced) or standard output.
fn write_output(args: &KeygenArgs, out: &str) -> Result<()> {
    match &args.output {
        Some(path) if !is_dash(path) => {
            crate::output::check_new(path, false)?;
            fs::write(path, out).map_err(|err| io_fail("cannot write", path, &err))
        }
        _ => write_stdout(out.as_bytes()),
    }
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|err| Fail::data(format!("cannot write to standard output: {err}")))
}

fn parse_identity_file(path: &Path) -> Result<Vec<Identity>> {
    let text = read_text(path)?;
    Identity::parse_file(&text).map_err(|err| Fail::data(format!("{}: {err}", display_input(path))))
}

fn display_input(path: &Path) -> String {
    if is_dash(path) {
        "standard input".into()
    } else {
        path.display().to_string()
    }
}

/// Parses `-r` values and `-R` files.
pub fn recipients(inline: &[String], files: &[PathBuf]) -> Result<Vec<Recipient>> {
    let mut recipients = Vec::new();
    for text in inline {
        let recipient = text.trim().parse::<Recipient>().map_err(|err| {
            let upper = text.trim().to_ascii_uppercase();
            if upper.starts_with("KUVERT-SECRET-KEY-1")
                || upper.starts_with("AGE-SECRET-KEY-1")
                || upper.starts_with("AGE-SECRET-KEY-PQ-1")
            {
                Fail::data(
                    "-r takes a public key, not a secret key: print the public key with \
                     `kuvert keygen -y IDENTITY_FILE`",
                )
            } else {
                Fail::data(format!(
                    "invalid recipient {:?}: {}",
                    text,
                    err_reason(&err)
                ))
            }
        })?;
        recipients.push(recipient);
    }
    for path in files {
        let text = read_text(path)?;
        let parsed = kuvert::parse_recipients_file(&text)
            .map_err(|err| Fail::data(format!("{}: {err}", display_input(path))))?;
        recipients.extend(parsed);
    }
    Ok(recipients)
}

fn err_reason(err: &kuvert::Error) -> String {
    match err {
        kuvert::Error::InvalidKey { reason } => reason.to_string(),
        other => other.to_string(),
    }
}

/// Reads the identities of `-i` files.
pub fn identities(files: &[PathBuf]) -> Result<Vec<Identity>> {
    let mut identities = Vec::new();
    for path in files {
        identities.extend(parse_identity_file(path)?);
    }
    Ok(identities)
}

/// Where a passphrase comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassphraseSource {
    /// The first line of a file.
    File(PathBuf),
    /// The terminal.
    Prompt,
}

/// The passphrase source the key options ask for: `--passphrase-file`,
/// or with `-p` the file named by `KUVERT_PASSPHRASE_FILE` if set, else
/// the terminal.
pub fn passphrase_source(args: &KeyArgs) -> Option<PassphraseSource> {
    if let Some(path) = &args.passphrase_file {
        return Some(PassphraseSource::File(path.clone()));
    }
    args.passphrase.then(default_passphrase_source)
}

/// `KUVERT_PASSPHRASE_FILE` if set, else the terminal.
pub fn default_passphrase_source() -> PassphraseSource {
    match std::env::var_os(PASSPHRASE_FILE_ENV) {
        Some(path) if !path.is_empty() => PassphraseSource::File(PathBuf::from(path)),
        _ => PassphraseSource::Prompt,
    }
}

/// Reads a passphrase to open with.
pub fn read_passphrase(source: &PassphraseSource) -> Result<Passphrase> {
    match source {
        PassphraseSource::File(path) => passphrase_from_file(path),
        PassphraseSource::Prompt => {
            let text = prompt("Enter passphrase: ")?;
            if text.is_empty() {
                return Err(Fail::data("empty passphrase"));
            }
            Ok(Passphrase::new(text.as_str()))
        }
    }
}

/// Reads a passphrase to seal with: from a file, or prompted twice; an
/// empty answer at the prompt generates one and shows it once.
pub fn new_passphrase(source: &PassphraseSource) -> Result<Passphrase> {
    match source {
        PassphraseSource::File(path) => passphrase_from_file(path),
        PassphraseSource::Prompt => {
            let first = prompt("Enter passphrase (leave empty to autogenerate a secure one): ")?;
            if first.is_empty() {
                let generated = generate_passphrase()?;
                eprintln!(
                    "kuvert: using the autogenerated passphrase {} \
                     (shown only this once: write it down)",
                    generated.as_str()
                );
                return Ok(Passphrase::new(generated.as_str()));
            }
            let confirm = prompt("Confirm passphrase: ")?;
            if *first != *confirm {
                return Err(Fail::data("the passphrases do not match"));
            }
            Ok(Passphrase::new(first.as_str()))
        }
    }
}

fn prompt(text: &str) -> Result<Zeroizing<String>> {
    rpassword::prompt_password(text)
        .map(Zeroizing::new)
        .map_err(|err| {
            Fail::data(format!(
                "cannot ask for a passphrase on the terminal ({err}); in scripts use \
                 --passphrase-file FILE or {PASSPHRASE_FILE_ENV}=FILE"
            ))
        })
}

/// The first line of `path`, without its line ending.
fn passphrase_from_file(path: &Path) -> Result<Passphrase> {
    let text = read_text(path)?;
    let line = text.split('\n').next().unwrap_or("");
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(Fail::data(format!(
            "{}: the first line (the passphrase) is empty",
            display_input(path)
        )));
    }
    Ok(Passphrase::new(line))
}

/// 26 characters of base32 (RFC 4648, lowercase): 130 random bits.
fn generate_passphrase() -> Result<Zeroizing<String>> {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bytes = Zeroizing::new([0u8; GENERATED_LEN]);
    getrandom::fill(&mut bytes[..])
        .map_err(|err| Fail::data(format!("no random source: {err}")))?;
    Ok(Zeroizing::new(
        bytes
            .iter()
            .map(|b| ALPHABET[usize::from(b & 31)] as char)
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passphrases_are_26_base32_characters() {
        let a = generate_passphrase().expect("random");
        let b = generate_passphrase().expect("random");
        assert_eq!(a.len(), GENERATED_LEN);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c))
        );
        assert_ne!(*a, *b);
    }

    #[test]
    fn passphrase_file_is_its_first_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pass");
        for (text, ok) in [
            ("secret\n", true),
            ("secret\r\nignored\n", true),
            ("secret", true),
            ("\nsecret\n", false),
            ("", false),
        ] {
            fs::write(&path, text).expect("write");
            assert_eq!(passphrase_from_file(&path).is_ok(), ok, "{text:?}");
        }
    }
}
