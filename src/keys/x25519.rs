//! X25519 recipients (SPEC.md §4.2), computed exactly as age's `X25519`
//! stanza (C2SP age.md), with age key encodings; kuvert's own `kuvert1…`
//! encodings are still read.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use base64ct::{Base64Unpadded, Encoding};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::bech32_long::{self, Bech32Error};
use super::{
    FileKey, KEY_LEN, WRAPPED_KEY_LEN, hkdf32, identity_file, unwrap_file_key, wrap_file_key,
};
use crate::error::{Error, KeyError, Location};
use crate::format::Stanza;
use crate::rand::Randomness;

/// age's stanza type, matched case-sensitively: kuvert v1's lowercase
/// `x25519` is an unknown type now.
pub(super) const STANZA_TYPE: &str = "X25519";
/// age's HKDF info label for the wrap key.
const LABEL: &[u8] = b"age-encryption.org/v1/X25519";
/// Characters of the share argument: unpadded base64 of 32 bytes.
const SHARE_CHARS: usize = 43;

const AGE_RECIPIENT_HRP: &str = "age";
const AGE_IDENTITY_HRP: &str = "age-secret-key-";
/// kuvert v1's encodings: read, never written.
const KUVERT_RECIPIENT_HRP: &str = "kuvert";
const KUVERT_IDENTITY_HRP: &str = "kuvert-secret-key-";

/// An X25519 public key a set can be sealed to.
///
/// Written as age writes it, `age1…`; kuvert's earlier `kuvert1…` encoding
/// of the same key is read as well.
#[derive(Clone, PartialEq, Eq)]
pub struct X25519Recipient(PublicKey);

impl X25519Recipient {
    /// The key in age's encoding (`age1…`): what [`Display`](fmt::Display)
    /// writes too.
    pub fn to_age_string(&self) -> String {
        bech32_long::encode_lower(AGE_RECIPIENT_HRP, self.0.as_bytes())
    }

    /// Raw public key bytes.
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.0.to_bytes()
    }

    /// age's `X25519` stanza for this recipient: an ephemeral share as its
    /// argument, the wrapped file key as its body.
    pub(super) fn wrap(&self, file_key: &FileKey, rng: &mut Randomness) -> Result<Stanza, Error> {
        let ephemeral = StaticSecret::from(*rng.array::<KEY_LEN>()?);
        let share = PublicKey::from(&ephemeral);
        let shared = ephemeral.diffie_hellman(&self.0);
        if !shared.was_contributory() {
            return Err(Error::key(KeyError::LowOrder));
        }
        let wrap_key = wrap_key(shared.as_bytes(), &share, &self.0);
        Ok(Stanza {
            at: 0,
            kind: STANZA_TYPE.into(),
            args: vec![Base64Unpadded::encode_string(share.as_bytes())],
            body: wrap_file_key(&wrap_key, file_key).to_vec(),
        })
    }
}

impl fmt::Display for X25519Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_age_string())
    }
}

impl fmt::Debug for X25519Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X25519Recipient({self})")
    }
}

impl FromStr for X25519Recipient {
    type Err = Error;

    /// Parses `age1…` or `kuvert1…`.
    fn from_str(text: &str) -> Result<Self, Error> {
        let bytes = decode(
            text,
            &[AGE_RECIPIENT_HRP, KUVERT_RECIPIENT_HRP],
            "recipient",
        )?;
        if !is_canonical(&bytes) {
            return Err(Error::key(KeyError::NotCanonical));
        }
        let key = PublicKey::from(*bytes);
        if is_low_order(&key) {
            return Err(Error::key(KeyError::LowOrder));
        }
        Ok(X25519Recipient(key))
    }
}

/// An X25519 secret key. Wiped on drop, never printed.
///
/// Written as age writes it, `AGE-SECRET-KEY-1…`; kuvert's earlier
/// `KUVERT-SECRET-KEY-1…` encoding is read as well.
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

    /// The secret in age's encoding (`AGE-SECRET-KEY-1…`), for writing an
    /// identity file.
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        bech32_long::encode_upper(AGE_IDENTITY_HRP, self.0.as_bytes())
    }

    /// The secret in age's encoding: the same as
    /// [`to_secret_string`](Self::to_secret_string), kept for callers that
    /// name the encoding.
    pub fn to_age_secret_string(&self) -> Zeroizing<String> {
        self.to_secret_string()
    }

    /// An identity file holding this key, byte for byte as `age-keygen`
    /// writes one: a `# created:` line (RFC 3339, UTC, whole seconds), a
    /// `# public key: age1…` line, then `AGE-SECRET-KEY-1…`.
    /// [`Identity::parse_file`] reads it back; so do age and rage.
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
    /// assert_eq!(parsed[0].to_recipient(), Some(identity.to_public().into()));
    /// # Ok::<(), kuvert::Error>(())
    /// ```
    ///
    /// [`Identity::parse_file`]: crate::Identity::parse_file
    pub fn to_file_string(&self, created: SystemTime) -> Zeroizing<String> {
        identity_file(
            created,
            &self.to_public().to_age_string(),
            &self.to_secret_string(),
        )
    }

    /// The same as [`to_file_string`](Self::to_file_string), kept for
    /// callers that name the encoding.
    pub fn to_age_file_string(&self, created: SystemTime) -> Zeroizing<String> {
        self.to_file_string(created)
    }

    /// Unwraps the file key from an `X25519` stanza addressed to this
    /// identity; `None` if it is not (its tag fails). The stanza passed
    /// [`check`].
    pub(super) fn unwrap(&self, stanza: &Stanza) -> Option<FileKey> {
        let share = PublicKey::from(share(stanza)?);
        let shared = self.0.diffie_hellman(&share);
        // `check` refused low-order shares; an all-zero secret cannot occur here.
        if !shared.was_contributory() {
            return None;
        }
        let wrap_key = wrap_key(shared.as_bytes(), &share, &PublicKey::from(&self.0));
        unwrap_file_key(&wrap_key, &stanza.body)
    }
}

impl fmt::Debug for X25519Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("X25519Identity(<redacted>)")
    }
}

impl FromStr for X25519Identity {
    type Err = Error;

    /// Parses `AGE-SECRET-KEY-1…` or `KUVERT-SECRET-KEY-1…`.
    fn from_str(text: &str) -> Result<Self, Error> {
        let bytes = decode(text, &[AGE_IDENTITY_HRP, KUVERT_IDENTITY_HRP], "identity")?;
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

/// Whether `point` is of low order: its product with any scalar, here a
/// fixed probe, is zero, so a share of it would make every shared secret
/// zero (SPEC.md §4.2).
pub(crate) fn is_low_order(point: &PublicKey) -> bool {
    let probe = StaticSecret::from([0x5A; KEY_LEN]);
    !probe.diffie_hellman(point).was_contributory()
}

/// age's wrap key: HKDF-SHA-256(shared secret, salt = ephemeral share ‖
/// recipient, "age-encryption.org/v1/X25519").
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

/// The ephemeral share of an `X25519` stanza: its one argument, canonical
/// unpadded base64 of exactly 32 bytes; `None` otherwise.
fn share(stanza: &Stanza) -> Option<[u8; KEY_LEN]> {
    let [text] = stanza.args.as_slice() else {
        return None;
    };
    decode_base64(text)
}

/// Canonical unpadded base64 (RFC 4648 §4) of exactly 32 bytes: no padding,
/// no line breaks, zero trailing bits (base64ct refuses all of those).
pub(crate) fn decode_base64(text: &str) -> Option<[u8; KEY_LEN]> {
    if text.len() != SHARE_CHARS {
        return None;
    }
    let mut out = [0u8; KEY_LEN];
    let decoded = Base64Unpadded::decode(text, &mut out).ok()?;
    (decoded.len() == KEY_LEN).then_some(out)
}

/// A stanza of this type's exact size, with placeholder contents: the
/// header length, known without wrapping a key.
pub(super) fn placeholder() -> Stanza {
    Stanza {
        at: 0,
        kind: STANZA_TYPE.into(),
        args: vec!["A".repeat(SHARE_CHARS)],
        body: vec![0; WRAPPED_KEY_LEN],
    }
}

/// Checks an `X25519` stanza before any key is tried, as age does: one
/// argument after the type, a canonical 32-byte share that is not of low
/// order, and a 32-byte body.
pub(super) fn check(stanza: &Stanza, input: &Location) -> Result<(), Error> {
    let malformed = |reason| Err(Error::malformed(input, stanza.at, reason));
    if stanza.args.len() != 1 {
        return malformed("X25519 stanza does not have exactly one argument after its type");
    }
    let Some(share) = share(stanza) else {
        return malformed("X25519 share is not canonical unpadded base64 of 32 bytes");
    };
    if stanza.body.len() != WRAPPED_KEY_LEN {
        return malformed("X25519 stanza body is not 32 bytes");
    }
    if is_low_order(&PublicKey::from(share)) {
        return malformed("X25519 ephemeral share is a low-order point");
    }
    Ok(())
}

/// Decodes a bech32 key with one of `prefixes`. Errors never hold the text
/// (it may be a mistyped secret key), only its prefix.
fn decode(
    text: &str,
    prefixes: &[&str],
    what: &'static str,
) -> Result<Zeroizing<[u8; KEY_LEN]>, Error> {
    let (hrp, data) = bech32_long::decode(text).map_err(|err| {
        Error::key(match err {
            Bech32Error::TooLong => KeyError::TooLong { what },
            Bech32Error::NotBech32 => KeyError::Bech32 { what },
            Bech32Error::Padding => KeyError::Padding { what },
        })
    })?;
    if !prefixes.contains(&hrp.as_str()) {
        return Err(Error::key(KeyError::WrongPrefix { what, found: hrp }));
    }
    if data.len() != KEY_LEN {
        return Err(Error::key(KeyError::Length {
            what,
            found: data.len(),
        }));
    }
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    bytes.copy_from_slice(&data);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use bech32::primitives::decode::CheckedHrpstring;
    use bech32::{Bech32, Hrp};

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
    fn age_encodings_are_written_and_round_trip() {
        let identity = X25519Identity::generate().expect("os randomness");
        let text = identity.to_secret_string();
        assert!(text.starts_with("AGE-SECRET-KEY-1"));
        assert_eq!(text.len(), 74);
        let again: X25519Identity = text.parse().expect("own identity");
        assert_eq!(again.to_public(), identity.to_public());
        let recipient = identity.to_public().to_string();
        assert!(recipient.starts_with("age1"));
        assert_eq!(recipient.len(), 62);
        assert_eq!(recipient, identity.to_public().to_age_string());
        assert_eq!(
            recipient.parse::<X25519Recipient>().expect("own recipient"),
            identity.to_public()
        );
    }

    #[test]
    fn kuvert_v1_encodings_are_still_read() {
        let identity: X25519Identity = AGE_IDENTITY.parse().expect("age identity");
        let secret = bech32_long::encode_upper(KUVERT_IDENTITY_HRP, identity.0.as_bytes());
        let public =
            bech32_long::encode_lower(KUVERT_RECIPIENT_HRP, &identity.to_public().to_bytes());
        assert!(secret.starts_with("KUVERT-SECRET-KEY-1") && public.starts_with("kuvert1"));
        let read: X25519Identity = secret.parse().expect("kuvert identity");
        assert_eq!(read.to_public(), identity.to_public());
        assert_eq!(
            public.parse::<X25519Recipient>().expect("kuvert recipient"),
            identity.to_public()
        );
    }

    #[test]
    fn oversize_key_strings_are_refused_before_decoding() {
        let long = format!("age1{}", "q".repeat(bech32_long::MAX_KEY_CHARS));
        assert!(matches!(
            long.parse::<X25519Recipient>(),
            Err(Error::InvalidKey {
                reason: KeyError::TooLong { what: "recipient" }
            })
        ));
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
        assert_eq!(stanza.kind, "X25519");
        assert_eq!(stanza.args[0].len(), SHARE_CHARS);
        assert_eq!(stanza.body.len(), WRAPPED_KEY_LEN);
        assert_eq!(stanza.encoded_len(), placeholder().encoded_len());
        assert_eq!(stanza.encoded_len(), 88);
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
        let encode_raw =
            |bytes: [u8; KEY_LEN]| bech32_long::encode_lower(AGE_RECIPIENT_HRP, &bytes);
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
        let hrp = Hrp::parse(AGE_RECIPIENT_HRP).expect("hrp");
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
        let short = bech32_long::encode_lower(AGE_RECIPIENT_HRP, &[7; 31]);
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

    /// A checked stanza's refusal reason, at the stanza's offset.
    fn refusal(stanza: &Stanza) -> &'static str {
        match check(stanza, &Location::input(2)) {
            Err(Error::MalformedHeader { at, reason }) if at == Location::input(2).byte(7) => {
                reason
            }
            other => panic!("{stanza:?}: {other:?}"),
        }
    }

    #[test]
    fn malformed_stanzas_are_refused_as_age_refuses_them() {
        let identity = X25519Identity::generate().expect("os randomness");
        let mut rng = Randomness::Os;
        let file_key = FileKey::generate(&mut rng).expect("rng");
        let good = Stanza {
            at: 7,
            ..identity
                .to_public()
                .wrap(&file_key, &mut rng)
                .expect("wrap")
        };
        check(&good, &Location::input(2)).expect("well-formed");
        let with = |edit: &dyn Fn(&mut Stanza)| {
            let mut stanza = good.clone();
            edit(&mut stanza);
            refusal(&stanza)
        };
        const ARGS: &str = "X25519 stanza does not have exactly one argument after its type";
        const SHARE: &str = "X25519 share is not canonical unpadded base64 of 32 bytes";
        assert_eq!(with(&|s| s.args.clear()), ARGS);
        assert_eq!(with(&|s| s.args.push("extra".into())), ARGS);
        assert_eq!(with(&|s| s.args[0].push('=')), SHARE);
        assert_eq!(with(&|s| s.args[0].push('A')), SHARE);
        assert_eq!(
            with(&|s| {
                s.args[0].pop();
            }),
            SHARE
        );
        // 43 characters carry 258 bits: the last 2 must be zero, so the
        // canonical last character is a multiple of 4 in the alphabet.
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let last = good.args[0].as_bytes()[SHARE_CHARS - 1];
        let index = alphabet.iter().position(|&c| c == last).expect("base64");
        assert_eq!(index % 4, 0);
        assert_eq!(
            with(&|s| {
                s.args[0].pop();
                s.args[0].push(char::from(alphabet[index | 1]));
            }),
            SHARE
        );
        assert_eq!(with(&|s| s.args[0].replace_range(..1, "-")), SHARE);
        assert_eq!(with(&|s| s.args[0].replace_range(..1, "_")), SHARE);
        assert_eq!(
            with(&|s| s.body.push(0)),
            "X25519 stanza body is not 32 bytes"
        );
        assert_eq!(
            with(&|s| {
                s.body.pop();
            }),
            "X25519 stanza body is not 32 bytes"
        );
        assert_eq!(
            with(&|s| s.args[0] = Base64Unpadded::encode_string(&[0; KEY_LEN])),
            "X25519 ephemeral share is a low-order point"
        );
        let mut one = [0u8; KEY_LEN];
        one[0] = 1;
        assert_eq!(
            with(&|s| s.args[0] = Base64Unpadded::encode_string(&one)),
            "X25519 ephemeral share is a low-order point"
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let identity: X25519Identity = AGE_IDENTITY.parse().expect("age identity");
        assert_eq!(format!("{identity:?}"), "X25519Identity(<redacted>)");
    }
}
