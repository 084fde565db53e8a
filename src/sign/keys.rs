//! Ed25519 signing keys and the public signer keys that check them
//! (SPEC.md §4.5 addendum): kuvert's bech32 encodings, OpenSSH's
//! `ssh-ed25519` public line and fingerprint, and the signing key file.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use base64ct::{Base64, Base64Unpadded, Encoding};
use ed25519_dalek::Signer as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, KeyError};
use crate::keys::bech32_long::{self, Bech32Error};
use crate::keys::rfc3339_utc;
use crate::rand::Randomness;

/// Bytes of an Ed25519 seed, public key (A) and signature.
pub(crate) const SEED_LEN: usize = 32;
/// Bytes of an Ed25519 public key A.
pub const PUBLIC_LEN: usize = 32;
/// Bytes of an Ed25519 signature (R ‖ S).
pub const SIGNATURE_LEN: usize = 64;
/// OpenSSH's key type name, inside every blob and line.
pub(crate) const SSH_ED25519: &str = "ssh-ed25519";
/// OpenSSH's public key blob: `string("ssh-ed25519") ‖ string(A)`.
pub const BLOB_LEN: usize = 4 + SSH_ED25519.len() + 4 + PUBLIC_LEN;

const SECRET_HRP: &str = "KUVERT-SIGN-KEY-";
const PUBLIC_HRP: &str = "kuvertsign";
/// The comment of the OpenSSH line in a signing key file.
const FILE_COMMENT: &str = "kuvert";
/// Longest public line or key file line read: an OpenSSH line with a long
/// comment, well short of a hostile megabyte.
const MAX_LINE: usize = 8192;

const SIGNING: &str = "signing key";
const SIGNER: &str = "signer key";

fn signing_error(what: &'static str, reason: &'static str) -> Error {
    Error::key(KeyError::Signing { what, reason })
}

/// The public half of a signing key: what a recipient trusts
/// (`--signer`), what a signed header names in its signer block.
///
/// Written as `kuvertsign1…` ([`Display`](fmt::Display)) or as OpenSSH's
/// `ssh-ed25519 AAAA…` line ([`to_openssh`](Self::to_openssh)); both are
/// read by [`FromStr`]. Every value holds a point that is canonically
/// encoded and not of small order, so no key that verifies every message
/// can be trusted by mistake.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SignerKey([u8; PUBLIC_LEN]);

impl SignerKey {
    /// The key from its 32 bytes A, checked: A decompresses, re-compresses
    /// to the same bytes, and is not of small order.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] with [`KeyError::Signing`] naming the rule.
    pub fn from_bytes(bytes: [u8; PUBLIC_LEN]) -> Result<Self, Error> {
        check_point(&bytes).map_err(|reason| signing_error(SIGNER, reason))?;
        Ok(SignerKey(bytes))
    }

    /// The key from OpenSSH's 51-byte blob (`string("ssh-ed25519") ‖
    /// string(A)`), as a signer block and an SSHSIG signature hold it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] if the blob is not exactly that, or A fails
    /// the checks of [`from_bytes`](Self::from_bytes).
    pub fn from_blob(blob: &[u8]) -> Result<Self, Error> {
        let Some(key) = blob.strip_prefix(&blob_prefix()[..]) else {
            return Err(signing_error(
                SIGNER,
                "not an ssh-ed25519 key blob of 51 bytes",
            ));
        };
        let bytes: [u8; PUBLIC_LEN] = key
            .try_into()
            .map_err(|_| signing_error(SIGNER, "not an ssh-ed25519 key blob of 51 bytes"))?;
        Self::from_bytes(bytes)
    }

    /// The 32 bytes A.
    pub fn to_bytes(&self) -> [u8; PUBLIC_LEN] {
        self.0
    }

    /// OpenSSH's public key blob, 51 bytes.
    pub fn blob(&self) -> [u8; BLOB_LEN] {
        let mut out = [0u8; BLOB_LEN];
        out[..BLOB_LEN - PUBLIC_LEN].copy_from_slice(&blob_prefix());
        out[BLOB_LEN - PUBLIC_LEN..].copy_from_slice(&self.0);
        out
    }

    /// `SHA256:` and the unpadded base64 of SHA-256 over the blob: what
    /// `ssh-keygen -lf` prints for the same key.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.blob());
        format!("SHA256:{}", Base64Unpadded::encode_string(&digest))
    }

    /// The OpenSSH public line `ssh-ed25519 AAAA… comment`, for an
    /// `authorized_keys` or `allowed_signers` file; no comment if
    /// `comment` is empty.
    pub fn to_openssh(&self, comment: &str) -> String {
        let mut line = format!("{SSH_ED25519} {}", Base64::encode_string(&self.blob()));
        if !comment.is_empty() {
            line.push(' ');
            line.push_str(comment);
        }
        line
    }

    /// The key in kuvert's encoding, `kuvertsign1…` (69 characters).
    pub fn to_kuvert_string(&self) -> String {
        bech32_long::encode_lower(PUBLIC_HRP, &self.0)
    }

    /// Checks `signature` over `message` with RFC 8032's strict rules
    /// (canonical S, R not of small order, cofactorless).
    pub(crate) fn verify_strict(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        key.verify_strict(message, &signature).is_ok()
    }

    /// Parses an OpenSSH public line, `ssh-ed25519 BASE64 [comment]`.
    fn from_openssh(line: &str) -> Result<Self, Error> {
        let rest = line
            .strip_prefix(SSH_ED25519)
            .filter(|rest| rest.starts_with([' ', '\t']))
            .ok_or_else(|| signing_error(SIGNER, "not an ssh-ed25519 line"))?;
        let encoded = rest
            .split_ascii_whitespace()
            .next()
            .ok_or_else(|| signing_error(SIGNER, "ssh-ed25519 line without a key"))?;
        Self::from_openssh_base64(encoded)
    }

    /// The key from the base64 field of an OpenSSH line: canonical padded
    /// base64 of the 51-byte blob.
    pub(crate) fn from_openssh_base64(encoded: &str) -> Result<Self, Error> {
        let mut blob = [0u8; BLOB_LEN + 3];
        let decoded = Base64::decode(encoded, &mut blob).map_err(|_| {
            signing_error(
                SIGNER,
                "ssh-ed25519 key is not canonical base64 of a 51-byte blob",
            )
        })?;
        // base64ct also takes unpadded input: require the canonical form.
        if Base64::encode_string(decoded) != encoded {
            return Err(signing_error(
                SIGNER,
                "ssh-ed25519 key is not canonical base64 of a 51-byte blob",
            ));
        }
        Self::from_blob(decoded)
    }
}

/// `string("ssh-ed25519") ‖ u32 32`: the first 19 bytes of every blob.
fn blob_prefix() -> [u8; BLOB_LEN - PUBLIC_LEN] {
    let mut out = [0u8; BLOB_LEN - PUBLIC_LEN];
    out[..4].copy_from_slice(&(SSH_ED25519.len() as u32).to_be_bytes());
    out[4..15].copy_from_slice(SSH_ED25519.as_bytes());
    out[15..].copy_from_slice(&(PUBLIC_LEN as u32).to_be_bytes());
    out
}

/// The public key checks of SPEC.md §3.2 (signer block) and §4.5.
fn check_point(bytes: &[u8; PUBLIC_LEN]) -> Result<(), &'static str> {
    let key = ed25519_dalek::VerifyingKey::from_bytes(bytes)
        .map_err(|_| "the public key is not a point of the curve")?;
    // from_bytes keeps the bytes it was given: a y ≥ p decodes too.
    if key.to_edwards().compress().to_bytes() != *bytes {
        return Err("the public key is not canonically encoded");
    }
    if key.is_weak() {
        return Err("the public key is a point of small order");
    }
    Ok(())
}

impl fmt::Display for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_kuvert_string())
    }
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignerKey({})", self.fingerprint())
    }
}

impl FromStr for SignerKey {
    type Err = Error;

    /// Parses `kuvertsign1…` or an OpenSSH line `ssh-ed25519 AAAA…
    /// [comment]`; white space around either is ignored.
    fn from_str(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if text.len() > MAX_LINE {
            return Err(Error::key(KeyError::TooLong { what: SIGNER }));
        }
        if text.starts_with(SSH_ED25519) {
            return Self::from_openssh(text);
        }
        let bytes = decode_bech32(text, PUBLIC_HRP, SIGNER)?;
        Self::from_bytes(*bytes)
    }
}

/// A bech32 key string with prefix `hrp`; other kuvert and age prefixes
/// get the error that names the right flag.
fn decode_bech32(text: &str, hrp: &str, what: &'static str) -> Result<Zeroizing<[u8; 32]>, Error> {
    let (found, data) = bech32_long::decode(text).map_err(|err| {
        Error::key(match err {
            Bech32Error::TooLong => KeyError::TooLong { what },
            Bech32Error::NotBech32 => KeyError::Bech32 { what },
            Bech32Error::Padding => KeyError::Padding { what },
        })
    })?;
    if found != hrp.to_ascii_lowercase() {
        if let Some(apart) = kept_apart(&found, what) {
            return Err(Error::key(apart));
        }
        return Err(Error::key(KeyError::WrongPrefix { what, found }));
    }
    let bytes: [u8; 32] = data[..]
        .try_into()
        .map_err(|_| signing_error(what, "not 32 bytes"))?;
    Ok(Zeroizing::new(bytes))
}

/// The error for a key of another kind given where `what` is wanted, if
/// `found` is the prefix of one.
fn kept_apart(found: &str, what: &'static str) -> Option<KeyError> {
    let (given, flag) = match found {
        "age-secret-key-" | "age-secret-key-pq-" | "kuvert-secret-key-" => ("an identity", "-i"),
        "age" | "age1pq" | "kuvert" => ("a recipient", "-r"),
        "kuvert-sign-key-" => ("a signing key", "--sign"),
        "kuvertsign" => ("a signer key", "--signer"),
        _ => return None,
    };
    Some(KeyError::KeptApart { what, given, flag })
}

/// The error for a signing key or signer key given as an identity or
/// recipient (`what`), if `prefix` (lowercase) is one.
pub(crate) fn refuse_as(prefix: &str, what: &'static str) -> Option<Error> {
    if !matches!(prefix, "kuvert-sign-key-" | "kuvertsign") {
        return None;
    }
    kept_apart(prefix, what).map(Error::key)
}

/// An Ed25519 signing key. Wiped on drop, never printed, never cloned.
///
/// Written as `KUVERT-SIGN-KEY-1…` (75 characters), in a file of the
/// identity files' shape ([`to_file_string`](Self::to_file_string)); an
/// unencrypted OpenSSH `ssh-ed25519` private key file is read too
/// ([`parse_file`](Self::parse_file)). Signing keys are kept apart from
/// decryption keys: each kind is refused where the other belongs.
pub struct SigningKey {
    seed: Zeroizing<[u8; SEED_LEN]>,
    public: SignerKey,
}

impl SigningKey {
    /// A new key from the operating system's random source.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the random source fails.
    pub fn generate() -> Result<Self, Error> {
        Self::generate_from(&mut Randomness::Os)
    }

    /// A new key from kuvert's randomness (seeded in test vectors).
    pub(crate) fn generate_from(rng: &mut Randomness) -> Result<Self, Error> {
        let seed = rng.array::<SEED_LEN>()?;
        Ok(Self::from_seed(*seed))
    }

    /// The key of a 32-byte RFC 8032 seed (test vectors, key import).
    pub fn from_seed(seed: [u8; SEED_LEN]) -> Self {
        let seed = Zeroizing::new(seed);
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let public = key.verifying_key().to_bytes();
        // RFC 8032 keys are a clamped scalar times the base point: never of
        // small order, always canonically compressed.
        let public = SignerKey::from_bytes(public).expect("a derived key passes the point checks");
        SigningKey { seed, public }
    }

    /// The public key that checks this key's signatures.
    pub fn public(&self) -> &SignerKey {
        &self.public
    }

    /// The seed as `KUVERT-SIGN-KEY-1…`, for a key file.
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        bech32_long::encode_upper(SECRET_HRP, &self.seed[..])
    }

    /// The seed, for the OpenSSH key writer.
    pub(crate) fn seed(&self) -> &[u8; SEED_LEN] {
        &self.seed
    }

    /// A signing key file: `# created:` (RFC 3339, UTC), `# public key:
    /// kuvertsign1…`, `# ssh-ed25519 AAAA… kuvert`, then the secret line.
    /// Wiped on drop, built in one allocation.
    pub fn to_file_string(&self, created: SystemTime) -> Zeroizing<String> {
        let created = created
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
            });
        let created = rfc3339_utc(created);
        let public = self.public.to_kuvert_string();
        let openssh = self.public.to_openssh(FILE_COMMENT);
        let secret = self.to_secret_string();
        let parts = [
            "# created: ",
            &created,
            "\n# public key: ",
            &public,
            "\n# ",
            &openssh,
            "\n",
            secret.as_str(),
            "\n",
        ];
        let len = parts.iter().map(|part| part.len()).sum();
        let mut file = Zeroizing::new(String::with_capacity(len));
        for part in parts {
            file.push_str(part);
        }
        debug_assert_eq!(file.len(), len, "sized exactly: no reallocation");
        file
    }

    /// Reads a signing key file: kuvert's (one `KUVERT-SIGN-KEY-1…` line;
    /// blank lines and `#` lines ignored), or an unencrypted OpenSSH
    /// `ssh-ed25519` private key (`-----BEGIN OPENSSH PRIVATE KEY-----`).
    ///
    /// # Errors
    ///
    /// [`Error::KeyFileLine`] naming the first line that is not a signing
    /// key (or a second key), [`Error::EmptyKeyFile`] if there is none,
    /// [`Error::InvalidKey`] for an OpenSSH key kuvert does not read.
    pub fn parse_file(text: &str) -> Result<Self, Error> {
        if text.trim_start().starts_with(super::openssh::BEGIN) {
            return super::openssh::parse_private_key(text);
        }
        let mut found = None;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at_line = |reason| Error::KeyFileLine {
                what: SIGNING,
                line: index + 1,
                reason,
            };
            if found.is_some() {
                return Err(at_line(KeyError::Signing {
                    what: SIGNING,
                    reason: "a signing key file holds one key",
                }));
            }
            found = Some(line.parse::<SigningKey>().map_err(|err| match err {
                Error::InvalidKey { reason } => at_line(reason),
                other => other,
            })?);
        }
        found.ok_or(Error::EmptyKeyFile { what: SIGNING })
    }

    /// The Ed25519 signature of `message` (RFC 8032, deterministic).
    pub(crate) fn sign_raw(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        // Wiped on drop (ed25519-dalek's `zeroize` feature).
        let key = ed25519_dalek::SigningKey::from_bytes(&self.seed);
        key.sign(message).to_bytes()
    }
}

impl FromStr for SigningKey {
    type Err = Error;

    /// Parses `KUVERT-SIGN-KEY-1…`; white space around it is ignored.
    fn from_str(text: &str) -> Result<Self, Error> {
        let seed = decode_bech32(text, SECRET_HRP, SIGNING)?;
        Ok(Self::from_seed(*seed))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningKey({}, secret redacted)",
            self.public.fingerprint()
        )
    }
}

/// Something that signs volumes: a [`SigningKey`] in memory, or a key
/// held elsewhere (an ssh-agent). kuvert checks every signature it is
/// given before it writes it.
pub trait VolumeSigner: Send + Sync {
    /// The public key whose signatures this signer makes.
    fn public_key(&self) -> &SignerKey;

    /// The Ed25519 signature over `signed_data` (SSHSIG's 98 bytes).
    ///
    /// # Errors
    ///
    /// Whatever keeps the signer from signing (an agent that refuses).
    fn sign(&self, signed_data: &[u8]) -> Result<[u8; SIGNATURE_LEN], Error>;
}

impl VolumeSigner for SigningKey {
    fn public_key(&self) -> &SignerKey {
        &self.public
    }

    fn sign(&self, signed_data: &[u8]) -> Result<[u8; SIGNATURE_LEN], Error> {
        Ok(self.sign_raw(signed_data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 §7.1, TEST 1.
    const RFC_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const RFC_SIG: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    fn hex<const N: usize>(text: &str) -> [u8; N] {
        let mut out = [0u8; N];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex");
        }
        out
    }

    #[test]
    fn rfc8032_test_1() {
        let key = SigningKey::from_seed(hex(RFC_SEED));
        assert_eq!(key.public().to_bytes(), hex::<32>(RFC_PUBLIC));
        let sig = key.sign_raw(b"");
        assert_eq!(sig, hex::<64>(RFC_SIG));
        assert!(key.public().verify_strict(b"", &sig));
        assert!(!key.public().verify_strict(b"x", &sig));
    }

    #[test]
    fn encodings_have_their_lengths_and_round_trip() {
        let key = SigningKey::from_seed([2; 32]);
        let secret = key.to_secret_string();
        assert_eq!(secret.len(), 75);
        assert!(secret.starts_with("KUVERT-SIGN-KEY-1"));
        let back: SigningKey = secret.parse().expect("round trip");
        assert_eq!(back.public(), key.public());
        let public = key.public().to_string();
        assert_eq!(public.len(), 69);
        assert!(public.starts_with("kuvertsign1"));
        assert_eq!(
            public.parse::<SignerKey>().expect("kuvertsign"),
            *key.public()
        );
        let line = key.public().to_openssh("institute@example.org");
        assert!(line.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"));
        assert_eq!(line.len(), 81 + "institute@example.org".len());
        assert_eq!(line.parse::<SignerKey>().expect("openssh"), *key.public());
        let bare = key.public().to_openssh("");
        assert_eq!(bare.len(), 80);
        assert_eq!(
            bare.parse::<SignerKey>().expect("no comment"),
            *key.public()
        );
        let fingerprint = key.public().fingerprint();
        assert!(fingerprint.starts_with("SHA256:"));
        assert_eq!(fingerprint.len(), 7 + 43);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = SigningKey::from_seed([2; 32]);
        let debug = format!("{key:?}");
        assert!(debug.contains("redacted"));
        assert!(!debug.contains(&key.to_secret_string()[17..40]));
    }

    #[test]
    fn weak_and_noncanonical_points_are_refused() {
        // The identity point (small order), and y = p + 1 ≥ p (the same
        // point as y = 1, not canonical).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let is_rule = |err: Error, rule: &str| matches!(err, Error::InvalidKey { reason: KeyError::Signing { reason, .. } } if reason == rule);
        assert!(is_rule(
            SignerKey::from_bytes(identity).expect_err("small order"),
            "the public key is a point of small order"
        ));
        let mut big = [0xffu8; 32];
        big[0] = 0xee; // p + 1 = 2^255 − 18
        big[31] = 0x7f;
        assert!(is_rule(
            SignerKey::from_bytes(big).expect_err("non-canonical"),
            "the public key is not canonically encoded"
        ));
        // x = 0 with the sign bit set: refused as not canonical or off the curve.
        let mut signed_zero = identity;
        signed_zero[31] |= 0x80;
        assert!(SignerKey::from_bytes(signed_zero).is_err());
        // Every bech32 and OpenSSH form of a weak key is refused too.
        let text = bech32_long::encode_lower(PUBLIC_HRP, &identity);
        assert!(text.parse::<SignerKey>().is_err());
    }

    #[test]
    fn malformed_public_forms_are_refused() {
        let key = SigningKey::from_seed([3; 32]);
        let line = key.public().to_openssh("x");
        for bad in [
            "ssh-ed25519",
            "ssh-ed25519 ",
            "ssh-ed25519x AAAA",
            "ssh-rsa AAAAB3NzaC1yc2E",
            &line.replace(" x", "= x"),
            &line.replace(" x", "A x"),
            &line.replacen("AAAAC3", "AAAAC4", 1),
            &line.replacen(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE4",
                1,
            ),
            &key.public().to_string()[..60],
            "",
        ] {
            assert!(bad.parse::<SignerKey>().is_err(), "{bad:?}");
        }
        // A blob that is one byte short or long.
        let blob = key.public().blob();
        assert!(SignerKey::from_blob(&blob[..50]).is_err());
        let mut long = blob.to_vec();
        long.push(0);
        assert!(SignerKey::from_blob(&long).is_err());
        assert_eq!(SignerKey::from_blob(&blob).expect("blob"), *key.public());
    }

    #[test]
    fn kinds_are_kept_apart() {
        let key = SigningKey::from_seed([2; 32]);
        let err = key
            .public()
            .to_string()
            .parse::<SigningKey>()
            .expect_err("public for secret");
        assert_eq!(
            err.to_string(),
            "invalid key: a signer key is not a signing key: pass it with --signer"
        );
        let age = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
        assert!(matches!(
            age.parse::<SigningKey>(),
            Err(Error::InvalidKey {
                reason: KeyError::KeptApart {
                    given: "an identity",
                    flag: "-i",
                    ..
                }
            })
        ));
        assert!(matches!(
            key.to_secret_string().parse::<SignerKey>(),
            Err(Error::InvalidKey {
                reason: KeyError::KeptApart {
                    given: "a signing key",
                    flag: "--sign",
                    ..
                }
            })
        ));
    }

    #[test]
    fn key_files_round_trip_and_hold_one_key() {
        let key = SigningKey::from_seed([2; 32]);
        let created = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_928_480);
        let file = key.to_file_string(created);
        let lines: Vec<&str> = file.lines().collect();
        assert_eq!(lines[0], "# created: 2026-11-29T05:01:20Z");
        assert_eq!(lines[1], format!("# public key: {}", key.public()));
        assert_eq!(lines[2], format!("# {}", key.public().to_openssh("kuvert")));
        assert_eq!(lines[3], key.to_secret_string().as_str());
        assert_eq!(lines.len(), 4);
        let back = SigningKey::parse_file(&file).expect("parses back");
        assert_eq!(back.public(), key.public());
        let two = format!("{}{}\n", file.as_str(), key.to_secret_string().as_str());
        assert!(matches!(
            SigningKey::parse_file(&two),
            Err(Error::KeyFileLine { line: 5, .. })
        ));
        assert!(matches!(
            SigningKey::parse_file("# nothing\n\n"),
            Err(Error::EmptyKeyFile {
                what: "signing key"
            })
        ));
        assert!(matches!(
            SigningKey::parse_file("# x\nnot a key\n"),
            Err(Error::KeyFileLine {
                line: 2,
                reason: KeyError::Bech32 {
                    what: "signing key"
                },
                ..
            })
        ));
    }

    #[test]
    fn generated_keys_differ() {
        let a = SigningKey::generate().expect("os randomness");
        let b = SigningKey::generate().expect("os randomness");
        assert_ne!(a.public(), b.public());
        let mut seeded = Randomness::Seeded {
            seed: Zeroizing::new([9; 32]),
            counter: 0,
        };
        let c = SigningKey::generate_from(&mut seeded).expect("seeded");
        let mut again = Randomness::Seeded {
            seed: Zeroizing::new([9; 32]),
            counter: 0,
        };
        let d = SigningKey::generate_from(&mut again).expect("seeded");
        assert_eq!(c.public(), d.public());
    }
}
