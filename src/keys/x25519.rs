//! X25519 recipients (SPEC.md §4.2) with kuvert and age key encodings.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32, Hrp};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::{
    FileKey, KEY_LEN, WRAPPED_KEY_LEN, hkdf32, identity_file, unwrap_file_key, wrap_file_key,
};
use crate::error::{Error, KeyError, Location};
use crate::format::Stanza;
use crate::rand::Randomness;

pub(super) const STANZA_TYPE: &str = "x25519";
const LABEL: &[u8] = b"kuvert/v1 x25519";
/// Ephemeral share followed by the wrapped file key.
pub(super) const BODY_LEN: usize = KEY_LEN + WRAPPED_KEY_LEN;

const RECIPIENT_HRP: &str = "kuvert";
const IDENTITY_HRP: &str = "kuvert-secret-key-";
const AGE_RECIPIENT_HRP: &str = "age";
const AGE_IDENTITY_HRP: &str = "age-secret-key-";

/// An X25519 public key a set can be sealed to.
///
/// Written as `kuvert1…`; age recipients (`age1…`) are the same keys and are
/// accepted as they are.
#[derive(Clone, PartialEq, Eq)]
pub struct X25519Recipient(PublicKey);

impl X25519Recipient {
    /// The key in age's encoding (`age1…`), for people who use age too.
    pub fn to_age_string(&self) -> String {
        encode(AGE_RECIPIENT_HRP, self.0.as_bytes(), false)
    }

    /// Raw public key bytes.
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.0.to_bytes()
    }

    pub(super) fn wrap(&self, file_key: &FileKey, rng: &mut Randomness) -> Result<Stanza, Error> {
        let ephemeral = StaticSecret::from(*rng.array::<KEY_LEN>()?);
        let share = PublicKey::from(&ephemeral);
        let shared = ephemeral.diffie_hellman(&self.0);
        if !shared.was_contributory() {
            return Err(Error::key(KeyError::LowOrder));
        }
        let wrap_key = wrap_key(shared.as_bytes(), &share, &self.0);
        let mut body = Vec::with_capacity(BODY_LEN);
        body.extend_from_slice(share.as_bytes());
        body.extend_from_slice(&wrap_file_key(&wrap_key, file_key));
        Ok(Stanza {
            at: 0,
            kind: STANZA_TYPE.into(),
            body,
        })
    }
}

impl fmt::Display for X25519Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode(RECIPIENT_HRP, self.0.as_bytes(), false))
    }
}

impl fmt::Debug for X25519Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X25519Recipient({self})")
    }
}

impl FromStr for X25519Recipient {
    type Err = Error;

    /// Parses `kuvert1…` or `age1…`.
    fn from_str(text: &str) -> Result<Self, Error> {
        let bytes = decode(text, &[RECIPIENT_HRP, AGE_RECIPIENT_HRP], "recipient")?;
        if !is_canonical(&bytes) {
            return Err(Error::key(KeyError::NotCanonical));
        }
        let key = PublicKey::from(*bytes);
        let probe = StaticSecret::from([0x5A; KEY_LEN]);
        if !probe.diffie_hellman(&key).was_contributory() {
            return Err(Error::key(KeyError::LowOrder));
        }
        Ok(X25519Recipient(key))
    }
}

/// An X25519 secret key. Wiped on drop, never printed.
///
/// Written as `KUVERT-SECRET-KEY-1…`; age identities (`AGE-SECRET-KEY-1…`)
/// are accepted as they are.
///
/// # Security
///
/// `Clone` is safe here because every copy wipes itself: the key lives
/// only in an `x25519_dalek::StaticSecret`, which zeroizes its bytes on drop
/// (`ZeroizeOnDrop`, checked by a test), and a clone is another such value.
/// A clone is explicit and no more durable than the original; what it
/// costs is a second place the key sits until dropped, so clone an identity
/// only to hand it to something that keeps it (an [`Opener`] per thread,
/// say), not for convenience.
///
/// [`Opener`]: crate::Opener
#[derive(Clone)]
pub struct X25519Identity(StaticSecret);

impl X25519Identity {
    /// A new identity from the operating system's random source.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the operating system's random source fails; no key
    /// is made from anything else.
    pub fn generate() -> Result<Self, Error> {
        let bytes = Randomness::Os.array::<KEY_LEN>()?;
        Ok(X25519Identity(StaticSecret::from(*bytes)))
    }

    /// An identity from 32 secret bytes (test vectors, key import).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        X25519Identity(StaticSecret::from(bytes))
    }

    /// The recipient that this identity opens.
    pub fn to_public(&self) -> X25519Recipient {
        X25519Recipient(PublicKey::from(&self.0))
    }

    /// The secret in kuvert's encoding, for writing an identity file.
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        Zeroizing::new(encode(IDENTITY_HRP, self.0.as_bytes(), true))
    }

    /// The secret in age's encoding (`AGE-SECRET-KEY-1…`).
    pub fn to_age_secret_string(&self) -> Zeroizing<String> {
        Zeroizing::new(encode(AGE_IDENTITY_HRP, self.0.as_bytes(), true))
    }

    /// An identity file holding this key, as `age-keygen` writes one: a
    /// `# created:` line (RFC 3339, UTC, whole seconds), a `# public key:`
    /// line, then the secret in kuvert's encoding. [`Identity::parse_file`]
    /// reads it back; so do age and rage, which skip `#` lines.
    ///
    /// The whole file is secret: it is wiped on drop, and built in one
    /// allocation, so no reallocation leaves a copy of the key behind.
    /// Times before 1970 are written as 1970-01-01T00:00:00Z.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use kuvert::{Identity, X25519Identity};
    ///
    /// let identity = X25519Identity::generate()?;
    /// let file = identity.to_file_string(SystemTime::now());
    /// assert!(file.starts_with("# created: "));
    /// let parsed = Identity::parse_file(&file)?;
    /// assert_eq!(parsed[0].to_recipient(), identity.to_public().into());
    /// # Ok::<(), kuvert::Error>(())
    /// ```
    ///
    /// [`Identity::parse_file`]: crate::Identity::parse_file
    pub fn to_file_string(&self, created: SystemTime) -> Zeroizing<String> {
        identity_file(
            created,
            &self.to_public().to_string(),
            &self.to_secret_string(),
        )
    }

    /// As [`to_file_string`](Self::to_file_string), in age's encodings
    /// (`age1…`, `AGE-SECRET-KEY-1…`): byte for byte the shape of an
    /// `age-keygen` file, for people who use age too.
    pub fn to_age_file_string(&self, created: SystemTime) -> Zeroizing<String> {
        identity_file(
            created,
            &self.to_public().to_age_string(),
            &self.to_age_secret_string(),
        )
    }

    /// Unwraps the file key from an x25519 stanza addressed to this identity.
    pub(super) fn unwrap(&self, stanza: &Stanza) -> Option<FileKey> {
        let (share, wrapped) = stanza.body.split_at_checked(KEY_LEN)?;
        let share = PublicKey::from(<[u8; KEY_LEN]>::try_from(share).ok()?);
        let shared = self.0.diffie_hellman(&share);
        // `check` refused low-order shares; an all-zero secret cannot occur here.
        if !shared.was_contributory() {
            return None;
        }
        let wrap_key = wrap_key(shared.as_bytes(), &share, &PublicKey::from(&self.0));
        unwrap_file_key(&wrap_key, wrapped)
    }
}

impl fmt::Debug for X25519Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("X25519Identity(<redacted>)")
    }
}

impl FromStr for X25519Identity {
    type Err = Error;

    /// Parses `KUVERT-SECRET-KEY-1…` or `AGE-SECRET-KEY-1…`.
    fn from_str(text: &str) -> Result<Self, Error> {
        let bytes = decode(text, &[IDENTITY_HRP, AGE_IDENTITY_HRP], "identity")?;
        Ok(X25519Identity(StaticSecret::from(*bytes)))
    }
}

/// Whether `u` is a canonical field element below p = 2^255 − 19 with the
/// top bit clear, so that its bytes are the ones its holder computes.
fn is_canonical(u: &[u8; KEY_LEN]) -> bool {
    if u[31] & 0x80 != 0 {
        return false;
    }
    // u ≥ p only for 2^255 − 19 ..= 2^255 − 1: 0x7f, thirty 0xff, low byte ≥ 0xed.
    let at_least_p = u[31] == 0x7f && u[1..31].iter().all(|&b| b == 0xff) && u[0] >= 0xed;
    !at_least_p
}

/// HKDF-SHA-256(shared secret, salt = ephemeral share ‖ recipient, label).
fn wrap_key(
    shared: &[u8; KEY_LEN],
    share: &PublicKey,
    recipient: &PublicKey,
) -> Zeroizing<[u8; KEY_LEN]> {
    let mut salt = [0u8; 2 * KEY_LEN];
    salt[..KEY_LEN].copy_from_slice(share.as_bytes());
    salt[KEY_LEN..].copy_from_slice(recipient.as_bytes());
    hkdf32(shared, &salt, LABEL)
}

/// Checks an x25519 stanza's body before any key is tried.
pub(super) fn check(stanza: &Stanza, input: &Location) -> Result<(), Error> {
    if stanza.body.len() != BODY_LEN {
        return Err(Error::malformed(
            input,
            stanza.at,
            "x25519 stanza body is not 80 bytes",
        ));
    }
    let mut share = [0u8; KEY_LEN];
    share.copy_from_slice(&stanza.body[..KEY_LEN]);
    // A low-order share makes every shared secret zero (SPEC.md §4.2).
    let probe = StaticSecret::from([0x5A; KEY_LEN]);
    if !probe
        .diffie_hellman(&PublicKey::from(share))
        .was_contributory()
    {
        return Err(Error::malformed(
            input,
            stanza.at,
            "x25519 ephemeral share is a low-order point",
        ));
    }
    Ok(())
}

fn encode(hrp: &str, bytes: &[u8; KEY_LEN], upper: bool) -> String {
    let hrp = Hrp::parse(hrp).expect("the key prefixes are valid bech32 prefixes");
    let encoded = if upper {
        bech32::encode_upper::<Bech32>(hrp, bytes)
    } else {
        bech32::encode_lower::<Bech32>(hrp, bytes)
    };
    encoded.expect("a 32-byte key fits a bech32 string")
}

/// Decodes a bech32 key with one of `prefixes`. Errors never hold the text
/// (it may be a mistyped secret key), only its prefix.
fn decode(
    text: &str,
    prefixes: &[&str],
    what: &'static str,
) -> Result<Zeroizing<[u8; KEY_LEN]>, Error> {
    let parsed = CheckedHrpstring::new::<Bech32>(text.trim())
        .map_err(|_| Error::key(KeyError::Bech32 { what }))?;
    let hrp = parsed.hrp().to_lowercase();
    if !prefixes.contains(&hrp.as_str()) {
        return Err(Error::key(KeyError::WrongPrefix { what, found: hrp }));
    }
    // BIP 173: the bits that pad the data to whole bytes must be zero.
    parsed
        .validate_segwit_padding()
        .map_err(|_| Error::key(KeyError::Padding { what }))?;
    let found = parsed.byte_iter().count();
    if found != KEY_LEN {
        return Err(Error::key(KeyError::Length { what, found }));
    }
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    for (slot, byte) in bytes.iter_mut().zip(parsed.byte_iter()) {
        *slot = byte;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    // From age's own test data (age-keygen output in the age README).
    const AGE_IDENTITY: &str =
        "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
    const AGE_RECIPIENT: &str = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";

    #[test]
    fn age_keys_are_accepted_and_agree() {
        let identity: X25519Identity = AGE_IDENTITY.parse().expect("age identity");
        let recipient: X25519Recipient = AGE_RECIPIENT.parse().expect("age recipient");
        assert_eq!(identity.to_public(), recipient);
        assert_eq!(recipient.to_age_string(), AGE_RECIPIENT);
        assert_eq!(identity.to_age_secret_string().as_str(), AGE_IDENTITY);
    }

    #[test]
    fn own_encoding_round_trips() {
        let identity = X25519Identity::generate().expect("os randomness");
        let text = identity.to_secret_string();
        assert!(text.starts_with("KUVERT-SECRET-KEY-1"));
        let again: X25519Identity = text.parse().expect("own identity");
        assert_eq!(again.to_public(), identity.to_public());
        let recipient = identity.to_public().to_string();
        assert!(recipient.starts_with("kuvert1"));
        assert_eq!(
            recipient.parse::<X25519Recipient>().expect("own recipient"),
            identity.to_public()
        );
    }

    #[test]
    fn wrong_kinds_and_checksums_are_refused() {
        assert!(AGE_RECIPIENT.parse::<X25519Identity>().is_err());
        assert!(AGE_IDENTITY.parse::<X25519Recipient>().is_err());
        let mut broken = AGE_RECIPIENT.to_string();
        broken.replace_range(10..11, "q");
        assert!(broken.parse::<X25519Recipient>().is_err());
        assert!("kuvert1qqqq".parse::<X25519Recipient>().is_err());
    }

    #[test]
    fn stanza_opens_only_for_its_identity() {
        let mut rng = Randomness::Os;
        let file_key = FileKey::generate(&mut rng).expect("rng");
        let identity = X25519Identity::generate().expect("os randomness");
        let stanza = identity
            .to_public()
            .wrap(&file_key, &mut rng)
            .expect("wrap");
        assert_eq!(stanza.body.len(), BODY_LEN);
        check(&stanza, &Location::input(1)).expect("well-formed stanza");
        let opened = identity.unwrap(&stanza).expect("addressee opens");
        assert_eq!(opened.as_bytes(), file_key.as_bytes());
        assert!(
            X25519Identity::generate()
                .expect("os randomness")
                .unwrap(&stanza)
                .is_none()
        );
    }

    #[test]
    fn non_canonical_and_low_order_recipients_are_refused() {
        let encode_raw = |bytes: [u8; KEY_LEN]| encode(RECIPIENT_HRP, &bytes, false);
        let mut top_bit = [9u8; KEY_LEN];
        top_bit[31] |= 0x80;
        let mut p = [0xffu8; KEY_LEN];
        p[31] = 0x7f;
        p[0] = 0xed;
        let mut one = [0u8; KEY_LEN];
        one[0] = 1;
        for (bytes, reason) in [
            (top_bit, KeyError::NotCanonical),
            (p, KeyError::NotCanonical),
            ([0u8; KEY_LEN], KeyError::LowOrder),
            (one, KeyError::LowOrder),
        ] {
            assert!(
                matches!(
                    encode_raw(bytes).parse::<X25519Recipient>(),
                    Err(Error::InvalidKey { reason: found }) if found == reason
                ),
                "{bytes:?}"
            );
        }
        let mut below_p = p;
        below_p[0] = 0xec;
        assert!(is_canonical(&below_p));
    }

    #[test]
    fn nonzero_bech32_padding_is_refused() {
        // 32 bytes are 256 bits in 52 five-bit groups (260 bits): 4 padding bits.
        let good = X25519Identity::generate()
            .expect("os randomness")
            .to_public()
            .to_string();
        let hrp = Hrp::parse(RECIPIENT_HRP).expect("hrp");
        let parsed = CheckedHrpstring::new::<Bech32>(&good).expect("valid");
        let mut groups: Vec<bech32::Fe32> = parsed.fe32_iter().collect();
        let last = groups.len() - 1;
        groups[last] = bech32::Fe32::try_from(groups[last].to_u8() | 1).expect("5 bits");
        let bad = bech32::primitives::encode::Encoder::<_, Bech32>::new(groups.into_iter(), &hrp)
            .chars()
            .collect::<String>();
        assert!(matches!(
            bad.parse::<X25519Recipient>(),
            Err(Error::InvalidKey {
                reason: KeyError::Padding { what: "recipient" }
            })
        ));
        let short = encode_raw_bytes(&hrp, &[7; 31]);
        assert!(matches!(
            short.parse::<X25519Recipient>(),
            Err(Error::InvalidKey {
                reason: KeyError::Length {
                    what: "recipient",
                    found: 31
                }
            })
        ));
    }

    fn encode_raw_bytes(hrp: &Hrp, bytes: &[u8]) -> String {
        bech32::encode_lower::<Bech32>(*hrp, bytes).expect("short enough")
    }

    #[test]
    fn low_order_shares_are_refused() {
        let stanza = Stanza {
            at: 7,
            kind: STANZA_TYPE.into(),
            body: vec![0; BODY_LEN],
        };
        assert!(matches!(
            check(&stanza, &Location::input(2)),
            Err(Error::MalformedHeader { at, .. }) if at == Location::input(2).byte(7)
        ));
    }

    #[test]
    fn debug_hides_the_secret() {
        let identity: X25519Identity = AGE_IDENTITY.parse().expect("age identity");
        assert_eq!(format!("{identity:?}"), "X25519Identity(<redacted>)");
    }
}
