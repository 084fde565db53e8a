//! The key schedule (SPEC.md §4–§5): a fresh file key per set, wrapped once
//! per recipient, committed by the header MAC, and the payload key derived
//! from it only after that MAC verifies.

mod passphrase;
mod x25519;

use std::fmt;

use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, KeyInit, Tag};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

pub use passphrase::{Argon2Params, Passphrase};
pub use x25519::{X25519Identity, X25519Recipient};

use crate::error::Error;
use crate::format::{Header, SET_ID_LEN, Stanza};
use crate::rand::Randomness;

/// HKDF info label of the header MAC key.
const HEADER_LABEL: &[u8] = b"kuvert/v1 header";
/// HKDF info label of the payload key.
const PAYLOAD_LABEL: &[u8] = b"kuvert/v1 payload";
/// Length of file, wrap and payload keys.
pub(crate) const KEY_LEN: usize = 32;
/// A file key sealed with ChaCha20-Poly1305: 32 bytes and a 16-byte tag.
pub(crate) const WRAPPED_KEY_LEN: usize = KEY_LEN + 16;

/// Someone a set can be sealed to.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// An X25519 public key (`kuvert1…` or `age1…`).
    X25519(X25519Recipient),
}

impl From<X25519Recipient> for Recipient {
    fn from(recipient: X25519Recipient) -> Self {
        Recipient::X25519(recipient)
    }
}

impl std::str::FromStr for Recipient {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        text.parse().map(Recipient::X25519)
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipient::X25519(recipient) => recipient.fmt(f),
        }
    }
}

/// A secret key that can open sets sealed to its [`Recipient`].
#[non_exhaustive]
#[derive(Debug)]
pub enum Identity {
    /// An X25519 secret key (`KUVERT-SECRET-KEY-1…` or `AGE-SECRET-KEY-1…`).
    X25519(X25519Identity),
}

impl From<X25519Identity> for Identity {
    fn from(identity: X25519Identity) -> Self {
        Identity::X25519(identity)
    }
}

impl Identity {
    /// The recipient this identity opens.
    pub fn to_recipient(&self) -> Recipient {
        match self {
            Identity::X25519(identity) => Recipient::X25519(identity.to_public()),
        }
    }

    /// Parses an identity file: one identity per line; blank lines and lines
    /// starting with `#` are ignored. age identity files are read as they are.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] naming the first line that is not an identity,
    /// or if the file holds none.
    pub fn parse_file(text: &str) -> Result<Vec<Identity>, Error> {
        let mut identities = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity = line
                .parse::<X25519Identity>()
                .map_err(|_| Error::key(format!("line {} is not an identity", number + 1)))?;
            identities.push(Identity::X25519(identity));
        }
        if identities.is_empty() {
            return Err(Error::key("no identity in the file"));
        }
        Ok(identities)
    }
}

/// Parses a recipients file: one recipient per line; blank lines and lines
/// starting with `#` are ignored.
///
/// # Errors
///
/// [`Error::InvalidKey`] naming the first line that is not a recipient.
pub fn parse_recipients_file(text: &str) -> Result<Vec<Recipient>, Error> {
    let mut recipients = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let recipient = line
            .parse::<Recipient>()
            .map_err(|_| Error::key(format!("line {} is not a recipient", number + 1)))?;
        recipients.push(recipient);
    }
    Ok(recipients)
}

/// The 32-byte key of one set. Fresh per set, never derived from a
/// passphrase, wiped on drop, never printed.
pub(crate) struct FileKey(Zeroizing<[u8; KEY_LEN]>);

impl fmt::Debug for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FileKey(<redacted>)")
    }
}

impl FileKey {
    pub(crate) fn generate(rng: &mut Randomness) -> Result<Self, Error> {
        Ok(FileKey(rng.array()?))
    }

    fn derive(&self, set_id: &[u8; SET_ID_LEN], label: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        Hkdf::<Sha256>::new(Some(set_id), &self.0[..])
            .expand(label, &mut out[..])
            .expect("32 bytes is a valid HKDF-SHA-256 output length");
        out
    }

    fn header_mac(&self, set_id: &[u8; SET_ID_LEN]) -> Hmac<Sha256> {
        let key = self.derive(set_id, HEADER_LABEL);
        <Hmac<Sha256> as KeyInit>::new_from_slice(&key[..]).expect("HMAC takes keys of any length")
    }

    /// HMAC-SHA-256 over a header's bytes before the MAC (SPEC.md §5.1).
    pub(crate) fn compute_header_mac(
        &self,
        set_id: &[u8; SET_ID_LEN],
        mac_input: &[u8],
    ) -> [u8; 32] {
        let mut mac = self.header_mac(set_id);
        mac.update(mac_input);
        mac.finalize().into_bytes().into()
    }

    /// Verifies a header's MAC in constant time.
    pub(crate) fn verify_header(&self, header: &Header) -> Result<(), Error> {
        let mut mac = self.header_mac(&header.set.set_id);
        mac.update(header.mac_input());
        mac.verify_slice(header.mac())
            .map_err(|_| Error::HeaderDamaged {
                volume: header.volume,
            })
    }

    /// The payload key (SPEC.md §5.2). Only call after [`Self::verify_header`].
    pub(crate) fn payload_key(&self, set_id: &[u8; SET_ID_LEN]) -> PayloadKey {
        PayloadKey(self.derive(set_id, PAYLOAD_LABEL))
    }

    pub(crate) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    pub(crate) fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        FileKey(bytes)
    }
}

/// Key for one set's chunks. Wiped on drop, never printed.
pub(crate) struct PayloadKey(Zeroizing<[u8; KEY_LEN]>);

impl fmt::Debug for PayloadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PayloadKey(<redacted>)")
    }
}

impl PayloadKey {
    /// The raw key, for the chunk AEAD backend (crate::stream).
    pub(crate) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// Seals a file key under a one-time wrap key (nonce 0, no associated data).
pub(crate) fn wrap_file_key(wrap_key: &[u8; KEY_LEN], file_key: &FileKey) -> [u8; WRAPPED_KEY_LEN] {
    let mut out = [0u8; WRAPPED_KEY_LEN];
    out[..KEY_LEN].copy_from_slice(file_key.as_bytes());
    let (body, tag) = out.split_at_mut(KEY_LEN);
    let computed = ChaCha20Poly1305::new(wrap_key.into())
        .encrypt_inout_detached(&Default::default(), &[], body.into())
        .expect("32 bytes is far below the ChaCha20-Poly1305 message limit");
    tag.copy_from_slice(&computed);
    out
}

/// Opens a wrapped file key; `None` if it does not authenticate.
pub(crate) fn unwrap_file_key(wrap_key: &[u8; KEY_LEN], wrapped: &[u8]) -> Option<FileKey> {
    if wrapped.len() != WRAPPED_KEY_LEN {
        return None;
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&wrapped[..KEY_LEN]);
    let tag = Tag::try_from(&wrapped[KEY_LEN..]).ok()?;
    ChaCha20Poly1305::new(wrap_key.into())
        .decrypt_inout_detached(&Default::default(), &[], (&mut key[..]).into(), &tag)
        .ok()?;
    Some(FileKey::from_bytes(key))
}

/// HKDF-SHA-256 of `ikm` with `salt` and `label` into a 32-byte key.
pub(crate) fn hkdf32(ikm: &[u8], salt: &[u8], label: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(label, &mut out[..])
        .expect("32 bytes is a valid HKDF-SHA-256 output length");
    out
}

/// Bounds on the work and memory an untrusted header may ask for.
///
/// The defaults admit every container this library writes with its default
/// or stronger-than-default settings up to about 15 seconds of Argon2id on a
/// laptop; raise them only for sources you trust.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest Argon2id memory cost accepted, in KiB (default 2 GiB).
    pub argon2_max_memory_kib: u32,
    /// Largest Argon2id pass count accepted (default 8).
    pub argon2_max_passes: u32,
    /// Largest Argon2id lane count accepted (default 16).
    pub argon2_max_lanes: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            argon2_max_memory_kib: 2 * 1024 * 1024,
            argon2_max_passes: 8,
            argon2_max_lanes: 16,
        }
    }
}

/// Something opening found worth telling the user, though the set opened;
/// see [`OpenReader::warnings`](crate::OpenReader::warnings).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// The passphrase stanza that opened the set asks for Argon2id costs
    /// below what this library writes ([`Argon2Params::MINIMUM`]: 64 MiB,
    /// 3 passes): the passphrase is cheaper to guess than it should be.
    WeakArgon2 {
        /// Memory cost of the stanza, in KiB.
        memory_kib: u32,
        /// Passes of the stanza.
        passes: u32,
    },
    /// The set opened with a passphrase, but it also carries public-key
    /// stanzas: anyone holding one of those keys could have sealed it, so
    /// the passphrase proves nothing about who did (SPEC.md §4.1).
    PassphraseBesidePublicKeys,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::WeakArgon2 { memory_kib, passes } => write!(
                f,
                "the passphrase stanza's Argon2id costs ({memory_kib} KiB, {passes} passes) are \
                 below {} KiB and {} passes: the passphrase is cheap to guess",
                Argon2Params::MINIMUM.memory_kib(),
                Argon2Params::MINIMUM.passes()
            ),
            Warning::PassphraseBesidePublicKeys => f.write_str(
                "the set also carries public-key recipients: the passphrase does not prove \
                 who sealed it",
            ),
        }
    }
}

/// A file key found by [`unlock`], and what is worth telling about it.
pub(crate) struct Unlocked {
    pub(crate) file_key: FileKey,
    pub(crate) warnings: Vec<Warning>,
}

/// Builds the recipient stanzas of a new set, in the order given.
pub(crate) fn wrap_for_recipients(
    file_key: &FileKey,
    recipients: &[Recipient],
    passphrase: Option<(&Passphrase, &Argon2Params)>,
    rng: &mut Randomness,
) -> Result<Vec<Stanza>, Error> {
    let mut stanzas = Vec::with_capacity(recipients.len() + 1);
    for recipient in recipients {
        match recipient {
            Recipient::X25519(recipient) => stanzas.push(recipient.wrap(file_key, rng)?),
        }
    }
    if let Some((passphrase, params)) = passphrase {
        stanzas.push(passphrase::wrap(passphrase, params, file_key, rng)?);
    }
    Ok(stanzas)
}

/// Checks the stanzas whose types this version knows (SPEC.md §4) before
/// any key is tried: exact body lengths, Argon2id parameter ranges, and at
/// most one passphrase stanza.
pub(crate) fn check_stanzas(header: &Header, input: usize) -> Result<(), Error> {
    let mut passphrase_stanzas = 0;
    for stanza in &header.set.stanzas {
        match stanza.kind.as_str() {
            x25519::STANZA_TYPE => x25519::check(stanza, input)?,
            passphrase::STANZA_TYPE => {
                passphrase_stanzas += 1;
                if passphrase_stanzas > 1 {
                    return Err(Error::malformed(
                        input,
                        stanza.at,
                        "more than one argon2id stanza",
                    ));
                }
                passphrase::check(stanza, input)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Recovers the file key from a header with the caller's keys and verifies
/// the header MAC with it (SPEC.md §4.4).
pub(crate) fn unlock(
    header: &Header,
    identities: &[Identity],
    passphrase: Option<&Passphrase>,
    limits: &Limits,
) -> Result<Unlocked, Error> {
    let mut wrong_passphrase = false;
    for stanza in &header.set.stanzas {
        let mut warnings = Vec::new();
        let file_key = match stanza.kind.as_str() {
            x25519::STANZA_TYPE => identities.iter().find_map(|identity| match identity {
                Identity::X25519(identity) => identity.unwrap(stanza),
            }),
            passphrase::STANZA_TYPE => match passphrase {
                Some(passphrase) => {
                    match passphrase::unwrap(passphrase, stanza, limits, header.volume)? {
                        Some((file_key, params)) => {
                            if params.is_below_minimum() {
                                warnings.push(Warning::WeakArgon2 {
                                    memory_kib: params.memory_kib(),
                                    passes: params.passes(),
                                });
                            }
                            if header.set.stanzas.len() > 1 {
                                warnings.push(Warning::PassphraseBesidePublicKeys);
                            }
                            Some(file_key)
                        }
                        None => {
                            wrong_passphrase = true;
                            None
                        }
                    }
                }
                None => None,
            },
            _ => None,
        };
        if let Some(file_key) = file_key {
            file_key.verify_header(header)?;
            return Ok(Unlocked { file_key, warnings });
        }
    }
    if wrong_passphrase {
        return Err(Error::WrongPassphrase);
    }
    Err(Error::NoMatchingKey {
        stanza_types: header.set.stanzas.iter().map(|s| s.kind.clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trips_and_refuses_other_keys() {
        let mut rng = Randomness::Os;
        let file_key = FileKey::generate(&mut rng).expect("rng");
        let wrap_key = [9u8; KEY_LEN];
        let wrapped = wrap_file_key(&wrap_key, &file_key);
        let opened = unwrap_file_key(&wrap_key, &wrapped).expect("same key opens");
        assert_eq!(opened.as_bytes(), file_key.as_bytes());
        assert!(unwrap_file_key(&[8u8; KEY_LEN], &wrapped).is_none());
        assert!(unwrap_file_key(&wrap_key, &wrapped[1..]).is_none());
    }

    #[test]
    fn header_and_payload_keys_differ() {
        let file_key = FileKey::from_bytes(Zeroizing::new([1; KEY_LEN]));
        let set_id = [2; SET_ID_LEN];
        assert_ne!(
            *file_key.derive(&set_id, HEADER_LABEL),
            *file_key.derive(&set_id, PAYLOAD_LABEL)
        );
        assert_ne!(
            *file_key.derive(&set_id, HEADER_LABEL),
            *file_key.derive(&[3; SET_ID_LEN], HEADER_LABEL)
        );
    }

    #[test]
    fn hmac_and_hkdf_states_are_wiped_on_drop() {
        // Compiles only with the `zeroize` features of hmac and sha2 (see
        // Cargo.toml). `Hmac<Sha256>` holds two SHA-256 cores and a block
        // buffer, each wiped by its own `Drop` with those features (hmac
        // declares no marker of its own); HKDF's state is such an HMAC.
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<Sha256>();
        wiped_on_drop::<sha2::block_api::Sha256VarCore>();
    }

    #[test]
    fn debug_never_prints_keys() {
        let file_key = FileKey::from_bytes(Zeroizing::new([0x41; KEY_LEN]));
        assert_eq!(format!("{file_key:?}"), "FileKey(<redacted>)");
        let payload = file_key.payload_key(&[0; SET_ID_LEN]);
        assert_eq!(format!("{payload:?}"), "PayloadKey(<redacted>)");
    }

    #[test]
    fn age_keygen_output_is_an_identity_file() {
        // Written by age-keygen 1.1 (Debian's `age` package) on this machine.
        let file = "# created: 2026-11-29T05:01:20Z\n\
            # public key: age1xafqnldth57j79qvaejezpslq347rj9dzgvff6y9jhulmgl87euq9uandu\n\
            AGE-SECRET-KEY-124UMNKZQYS3PYU6NY44FU7UFAUHUGVMDG974W7DUT070FFCNCR7QMUUVCW\n";
        let identities = Identity::parse_file(file).expect("age identity file");
        assert_eq!(identities.len(), 1);
        let Recipient::X25519(recipient) = identities[0].to_recipient();
        assert_eq!(
            recipient.to_age_string(),
            "age1xafqnldth57j79qvaejezpslq347rj9dzgvff6y9jhulmgl87euq9uandu"
        );
    }

    #[test]
    fn identity_files_skip_comments_and_name_bad_lines() {
        let identity = X25519Identity::generate();
        let text = format!(
            "# created: today\n# public key: {}\n\n{}\n",
            identity.to_public(),
            identity.to_secret_string().as_str()
        );
        assert_eq!(Identity::parse_file(&text).expect("valid file").len(), 1);
        let bad = format!("{}\nnot a key\n", identity.to_secret_string().as_str());
        assert!(matches!(
            Identity::parse_file(&bad),
            Err(Error::InvalidKey { reason }) if reason == "line 2 is not an identity"
        ));
        assert!(Identity::parse_file("# nothing\n").is_err());
    }
}
