//! Who sealed a set, on the command line: the keys `seal --sign` and
//! `--sign-agent` sign with, the trusted keys of `--signer`, and what
//! `open` and `list` say about a set's signature when none was asked for.

use std::path::{Path, PathBuf};

use kuvert::sign::{SIGNATURE_LEN, parse_allowed_signers};
use kuvert::{SignatureStatus, SignerKey, SigningKey, TrustedSigners, VolumeSigner};

use crate::cli::SealArgs;
use crate::keys::read_text;
use crate::report::{Fail, Result, chain};

/// Most signers a set names (SPEC.md §3.2); the library refuses more too,
/// but saying so before a key is read or an agent asked is kinder.
const MAX_SIGNERS: usize = 4;

/// A key that signs volumes: in memory, or held by ssh-agent.
pub enum Signer {
    Key(SigningKey),
    #[cfg(all(unix, feature = "ssh-agent"))]
    Agent(kuvert::sign::AgentSigner),
}

impl VolumeSigner for Signer {
    fn public_key(&self) -> &SignerKey {
        match self {
            Signer::Key(key) => key.public(),
            #[cfg(all(unix, feature = "ssh-agent"))]
            Signer::Agent(agent) => agent.public_key(),
        }
    }

    fn sign(&self, signed_data: &[u8]) -> Result<[u8; SIGNATURE_LEN], kuvert::Error> {
        match self {
            Signer::Key(key) => key.sign(signed_data),
            #[cfg(all(unix, feature = "ssh-agent"))]
            Signer::Agent(agent) => agent.sign(signed_data),
        }
    }
}

/// The signers of `seal --sign FILE` and `--sign-agent KEY`, in the order
/// given (the signer block's order).
pub fn seal_signers(args: &SealArgs) -> Result<Vec<Signer>> {
    #[cfg(all(unix, feature = "ssh-agent"))]
    let agent_count = args.sign_agent.len();
    #[cfg(not(all(unix, feature = "ssh-agent")))]
    let agent_count = 0;
    if args.sign.len() + agent_count > MAX_SIGNERS {
        return Err(Fail::usage(format!(
            "{} signers given; a set names at most {MAX_SIGNERS}",
            args.sign.len() + agent_count
        )));
    }
    let mut signers = Vec::new();
    for path in &args.sign {
        signers.push(Signer::Key(signing_key_file(path)?));
    }
    #[cfg(all(unix, feature = "ssh-agent"))]
    for name in &args.sign_agent {
        signers.push(Signer::Agent(agent_signer(name)?));
    }
    Ok(signers)
}

/// A signing key file of `--sign`: kuvert's, or an unencrypted OpenSSH
/// ed25519 key (an encrypted one is refused by the library with a pointer
/// to `--sign-agent`).
fn signing_key_file(path: &Path) -> Result<SigningKey> {
    let text = read_text(path)?;
    SigningKey::parse_file(&text)
        .map_err(|err| Fail::data(format!("--sign {}: {}", path.display(), chain(&err))))
}

/// The ssh-agent key `--sign-agent` names: a public key, a file holding
/// one (`id_ed25519.pub`), or a `SHA256:` fingerprint.
#[cfg(all(unix, feature = "ssh-agent"))]
fn agent_signer(name: &str) -> Result<kuvert::sign::AgentSigner> {
    use kuvert::sign::{AUTH_SOCK_ENV, AgentSigner, agent_keys};

    let failed = |err: kuvert::Error| Fail::data(format!("--sign-agent {name}: {}", chain(&err)));
    let key = if name.starts_with("SHA256:") {
        let socket = std::env::var_os(AUTH_SOCK_ENV).ok_or_else(|| {
            Fail::data(format!(
                "--sign-agent {name}: {AUTH_SOCK_ENV} is not set: no ssh-agent to ask"
            ))
        })?;
        let held = agent_keys(Path::new(&socket)).map_err(failed)?;
        held.into_iter()
            .map(|held| held.key)
            .find(|key| key.fingerprint() == name)
            .ok_or_else(|| {
                Fail::data(format!(
                    "--sign-agent {name}: the agent holds no ssh-ed25519 key with this \
                     fingerprint (`ssh-add -l` lists them)"
                ))
            })?
    } else {
        public_key_or_file(name, "--sign-agent")?
    };
    AgentSigner::from_env(&key).map_err(failed)
}

/// A public key given inline, or the first key of the file it names.
#[cfg(all(unix, feature = "ssh-agent"))]
fn public_key_or_file(value: &str, flag: &str) -> Result<SignerKey> {
    if looks_like_key(value) {
        return value
            .parse::<SignerKey>()
            .map_err(|err| Fail::data(format!("{flag} {value}: {}", chain(&err))));
    }
    let path = PathBuf::from(value);
    let text = read_text(&path)?;
    let parsed = parse_allowed_signers(&text)
        .map_err(|err| Fail::data(format!("{flag} {}: {}", path.display(), chain(&err))))?;
    match parsed.signers.as_slice() {
        [one] => Ok(one.key),
        _ => Err(Fail::usage(format!(
            "{flag} {}: the file holds {} keys; name one",
            path.display(),
            parsed.signers.len()
        ))),
    }
}

/// Whether a `--signer` value is a key rather than a file name.
fn looks_like_key(value: &str) -> bool {
    let value = value.trim();
    value.starts_with("ssh-ed25519 ")
        || value
            .get(..11)
            .is_some_and(|head| head.eq_ignore_ascii_case("kuvertsign1"))
}

/// The keys of `--signer`: one of them must have signed the set.
#[derive(Debug, Default)]
pub struct Trusted {
    signers: TrustedSigners,
}

impl Trusted {
    /// Parses every `--signer` value: a `kuvertsign1…` key, an
    /// `ssh-ed25519 AAAA…` line, or a file of such lines or allowed_signers
    /// lines. Lines kuvert cannot honour are noted on standard error.
    pub fn parse(values: &[String]) -> Result<Trusted> {
        let mut signers = TrustedSigners::new();
        for value in values {
            if looks_like_key(value) {
                let key = value
                    .parse::<SignerKey>()
                    .map_err(|err| Fail::data(format!("--signer {value}: {}", chain(&err))))?;
                signers.add(key);
                continue;
            }
            let path = PathBuf::from(value);
            if !path.exists() {
                return Err(Fail::usage(format!(
                    "--signer {value}: no such file, and not a kuvertsign1… or ssh-ed25519 key"
                )));
            }
            let text = read_text(&path)?;
            let parsed = parse_allowed_signers(&text).map_err(|err| {
                Fail::data(format!("--signer {}: {}", path.display(), chain(&err)))
            })?;
            for skipped in &parsed.skipped {
                eprintln!(
                    "kuvert: note: --signer {} line {}: skipped, {}",
                    path.display(),
                    skipped.line,
                    skipped.reason
                );
            }
            signers.add_allowed(&parsed);
        }
        Ok(Trusted { signers })
    }

    pub fn is_empty(&self) -> bool {
        self.signers.is_empty()
    }

    /// The trusted keys, with the principals their files give them.
    pub fn signers(&self) -> &TrustedSigners {
        &self.signers
    }

    /// The trusted keys, each once.
    pub fn keys(&self) -> Vec<SignerKey> {
        self.signers.keys().copied().collect()
    }

    /// A key as messages show it: its fingerprint, and the principals
    /// a `--signer` file gives it.
    pub fn name(&self, key: &SignerKey) -> String {
        match self.signers.principals(key) {
            Some(principals) => format!("{} ({principals})", key.fingerprint()),
            None => key.fingerprint(),
        }
    }
}

/// Fingerprints, comma-separated.
pub fn fingerprints(signers: &[SignerKey]) -> String {
    signers
        .iter()
        .map(SignerKey::fingerprint)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `open` and `list` say, once a set opened, about who sealed it:
/// the required signer that was checked, or (without `--signer`) who
/// signed it unchecked, or that nothing proves who sealed it.
pub fn signature_note(status: &SignatureStatus, trusted: &Trusted, has_passphrase: bool) -> String {
    match status {
        SignatureStatus::Checked { signer, .. } => {
            format!("signed by {}: signature checked", trusted.name(signer))
        }
        SignatureStatus::NotChecked { signers } => format!(
            "signed by {} — not checked: pass --signer to check it",
            fingerprints(signers)
        ),
        _ if has_passphrase => "not signed: nothing proves who sealed it; anyone who knows the \
                                passphrase could have sealed it"
            .into(),
        _ => "not signed: nothing proves who sealed it".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signer_values_are_keys_or_file_names() {
        let key = SigningKey::from_seed([7; 32]);
        assert!(looks_like_key(&key.public().to_string()));
        assert!(looks_like_key(&key.public().to_openssh("c")));
        assert!(looks_like_key(&key.public().to_string().to_uppercase()));
        assert!(!looks_like_key("allowed_signers"));
        assert!(!looks_like_key("kuvertsign"));
    }

    #[test]
    fn trusted_keys_are_named_with_their_principals() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = SigningKey::from_seed([7; 32]);
        let b = SigningKey::from_seed([8; 32]);
        let file = dir.path().join("allowed_signers");
        std::fs::write(
            &file,
            format!(
                "institute@example.org namespaces=\"kuvert\" {}\n",
                a.public().to_openssh("")
            ),
        )
        .expect("write");
        let trusted = Trusted::parse(&[
            file.display().to_string(),
            b.public().to_string(),
            a.public().to_string(),
        ])
        .expect("parses");
        assert_eq!(trusted.keys(), vec![*a.public(), *b.public()]);
        assert_eq!(
            trusted.name(a.public()),
            format!("{} (institute@example.org)", a.public().fingerprint())
        );
        assert_eq!(trusted.name(b.public()), b.public().fingerprint());
        assert_eq!(
            Trusted::parse(&["no-such-file".into()])
                .map(|_| ())
                .map_err(|f| f.code),
            Err(crate::report::USAGE)
        );
    }

    #[test]
    fn notes_say_who_signed_or_that_nothing_proves_it() {
        let a = SigningKey::from_seed([7; 32]);
        let trusted = Trusted::default();
        let unchecked = SignatureStatus::NotChecked {
            signers: vec![*a.public()],
        };
        assert_eq!(
            signature_note(&unchecked, &trusted, false),
            format!(
                "signed by {} — not checked: pass --signer to check it",
                a.public().fingerprint()
            )
        );
        let checked = SignatureStatus::Checked {
            signer: *a.public(),
            principals: None,
        };
        assert_eq!(
            signature_note(&checked, &trusted, true),
            format!("signed by {}: signature checked", a.public().fingerprint())
        );
        let unsigned = SignatureStatus::Unsigned;
        assert_eq!(
            signature_note(&unsigned, &trusted, false),
            "not signed: nothing proves who sealed it"
        );
        assert!(
            signature_note(&unsigned, &trusted, true)
                .ends_with("anyone who knows the passphrase could have sealed it")
        );
    }
}
