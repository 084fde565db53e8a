//! Hybrid post-quantum recipients, age's `mlkem768x25519` (SPEC.md §4.6):
//! ML-KEM-768 and X25519 combined by X-Wing, so a set stays closed unless
//! both fall. Keys are age's (`age1pq1…`, `AGE-SECRET-KEY-PQ-1…`); the
//! stanza is age's, with one check more: a low-order X25519 share is refused
//! as age's own X25519 code refuses it (hpke hashes a zero secret in).
//!
//! The stanza functions see arguments and a body only, not kuvert's stanza
//! struct: what the header encodes around them is the caller's business.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use base64ct::{Base64Unpadded, Encoding};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::bech32_long::{self, Bech32Error};
use super::kem::{
    ENC_LEN, ENC_X25519_AT, FILE_KEY_LEN, HybridKem, Kem, PUBLIC_LEN, RANDOMNESS_LEN, SEALED_LEN,
    SEED_LEN,
};
use super::{FileKey, identity_file};
use crate::error::{Error, KeyError, Location};
use crate::format::Stanza;
use crate::rand::Randomness;

/// The stanza's type, its argument 0.
pub(crate) const STANZA_TYPE: &str = "mlkem768x25519";
/// HPKE `info` of the stanza (age.md).
const INFO: &[u8] = b"age-encryption.org/mlkem768x25519";
/// Length of the stanza's one argument after its type: *enc* in unpadded
/// base64.
pub(crate) const ENC_CHARS: usize = (ENC_LEN * 4).div_ceil(3);
/// The stanza's body: the sealed file key.
pub(crate) const BODY_LEN: usize = SEALED_LEN;

/// The prefix of a recipient, `age1pq1…`.
pub(super) const RECIPIENT_HRP: &str = "age1pq";
/// The prefix of an identity, lowercased as decoded.
pub(super) const IDENTITY_HRP: &str = "age-secret-key-pq-";
const IDENTITY_HRP_UPPER: &str = "AGE-SECRET-KEY-PQ-";

/// A hybrid post-quantum public key a set can be sealed to: age's
/// `age1pq1…` (1,959 characters).
#[derive(Clone, PartialEq, Eq)]
pub struct HybridRecipient {
    /// Boxed: 1,216 bytes and more would make every [`Recipient`] that big.
    ///
    /// [`Recipient`]: crate::Recipient
    public: Box<<Kem as HybridKem>::Public>,
    /// The `age1pq1…` string, kept: it is what Display shows, and encoding
    /// 1,216 bytes again on every print would be waste.
    encoded: String,
}

impl HybridRecipient {
    fn from_public(public: <Kem as HybridKem>::Public) -> Self {
        let encoded = bech32_long::encode_lower(RECIPIENT_HRP, &Kem::public_bytes(&public));
        HybridRecipient {
            public: Box::new(public),
            encoded,
        }
    }

    /// The key's 1,216 bytes: the ML-KEM-768 encapsulation key, then the
    /// X25519 public key.
    pub fn to_bytes(&self) -> [u8; PUBLIC_LEN] {
        Kem::public_bytes(&self.public)
    }

    /// age's `mlkem768x25519` stanza for this recipient, its 64
    /// encapsulation bytes drawn from `rng`.
    pub(super) fn wrap(&self, file_key: &FileKey, rng: &mut Randomness) -> Result<Stanza, Error> {
        let randomness = rng.array::<RANDOMNESS_LEN>()?;
        let (enc, body) = wrap(self, file_key.as_bytes(), &randomness);
        Ok(Stanza {
            at: 0,
            kind: STANZA_TYPE.into(),
            args: vec![enc],
            body: body.to_vec(),
        })
    }
}

impl fmt::Display for HybridRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encoded)
    }
}

impl fmt::Debug for HybridRecipient {
    /// Shortened: 1,959 characters would drown whatever holds the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (head, tail) = (&self.encoded[..16], &self.encoded[self.encoded.len() - 8..]);
        write!(f, "HybridRecipient({head}…{tail})")
    }
}

impl FromStr for HybridRecipient {
    type Err = Error;

    /// Parses `age1pq1…`, checking its ML-KEM-768 half (FIPS 203 §7.2).
    fn from_str(text: &str) -> Result<Self, Error> {
        const WHAT: &str = "recipient";
        let bytes = decode(text, RECIPIENT_HRP, WHAT)?;
        if bytes.len() != PUBLIC_LEN {
            return Err(Error::key(KeyError::HybridLength {
                what: WHAT,
                found: bytes.len(),
                expected: PUBLIC_LEN,
            }));
        }
        let public =
            Kem::public_from_bytes(&bytes).ok_or(Error::key(KeyError::NotEncapsulationKey))?;
        Ok(HybridRecipient {
            public: Box::new(public),
            // Lower case, as decoded: the canonical form of this key.
            encoded: text.trim().to_ascii_lowercase(),
        })
    }
}

/// A hybrid post-quantum secret key: age's `AGE-SECRET-KEY-PQ-1…`, a
/// 32-byte seed. Wiped on drop, never printed.
///
/// # Security
///
/// `Clone` for the reason [`X25519Identity`](crate::X25519Identity) is:
/// the seed sits in a `Zeroizing` array and the expanded key in x-wing's
/// `DecapsulationKey`, both wiped on drop, and so is every copy.
#[derive(Clone)]
pub struct HybridIdentity {
    seed: Zeroizing<[u8; SEED_LEN]>,
    /// Boxed, as [`HybridRecipient`]'s key is; wiped on drop all the same.
    secret: Box<<Kem as HybridKem>::Secret>,
}

impl HybridIdentity {
    /// A new identity from the operating system's random source.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the operating system's random source fails; no key
    /// is made from anything else.
    pub fn generate() -> Result<Self, Error> {
        Ok(Self::from_seed(Randomness::Os.array::<SEED_LEN>()?))
    }

    /// An identity from its 32-byte seed (test vectors, key import).
    pub fn from_bytes(seed: [u8; SEED_LEN]) -> Self {
        Self::from_seed(Zeroizing::new(seed))
    }

    /// The file key of a `mlkem768x25519` stanza addressed to this
    /// identity, or `None`. The stanza passed [`check_stanza`].
    pub(super) fn unwrap(&self, stanza: &Stanza) -> Option<FileKey> {
        unwrap(self, &stanza.args, &stanza.body).map(FileKey::from_bytes)
    }

    fn from_seed(seed: Zeroizing<[u8; SEED_LEN]>) -> Self {
        let secret = Box::new(Kem::secret_from_seed(&seed));
        HybridIdentity { seed, secret }
    }

    /// The recipient this identity opens.
    pub fn to_public(&self) -> HybridRecipient {
        HybridRecipient::from_public(Kem::public(&self.secret))
    }

    /// The secret in age's encoding, `AGE-SECRET-KEY-PQ-1…`.
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        bech32_long::encode_upper(IDENTITY_HRP_UPPER, &self.seed[..])
    }

    /// An identity file holding this key, byte for byte as `age-keygen
    /// -pq` writes one: `# created:` (RFC 3339, UTC), `# public key:
    /// age1pq1…`, then the secret. Wiped on drop.
    pub fn to_file_string(&self, created: SystemTime) -> Zeroizing<String> {
        identity_file(
            created,
            &self.to_public().to_string(),
            &self.to_secret_string(),
        )
    }
}

impl fmt::Debug for HybridIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HybridIdentity(<redacted>)")
    }
}

impl FromStr for HybridIdentity {
    type Err = Error;

    /// Parses `AGE-SECRET-KEY-PQ-1…`.
    fn from_str(text: &str) -> Result<Self, Error> {
        const WHAT: &str = "identity";
        let bytes = decode(text, IDENTITY_HRP, WHAT)?;
        let seed: [u8; SEED_LEN] = bytes.as_slice().try_into().map_err(|_| {
            Error::key(KeyError::HybridLength {
                what: WHAT,
                found: bytes.len(),
                expected: SEED_LEN,
            })
        })?;
        Ok(Self::from_bytes(seed))
    }
}

/// Decodes a key string with prefix `hrp` (lower case). Errors never hold
/// the text, only its prefix.
fn decode(text: &str, hrp: &str, what: &'static str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let (found, bytes) = bech32_long::decode(text).map_err(|err| {
        Error::key(match err {
            Bech32Error::TooLong => KeyError::TooLong { what },
            Bech32Error::NotBech32 => KeyError::Bech32 { what },
            Bech32Error::Padding => KeyError::Padding { what },
        })
    })?;
    if found != hrp {
        return Err(Error::key(KeyError::WrongPrefix { what, found }));
    }
    Ok(bytes)
}

/// Seals `file_key` to `recipient` with the 64 bytes the caller drew: the
/// stanza's argument after its type (*enc* in canonical unpadded base64)
/// and its body.
pub(crate) fn wrap(
    recipient: &HybridRecipient,
    file_key: &[u8; FILE_KEY_LEN],
    randomness: &[u8; RANDOMNESS_LEN],
) -> (String, [u8; BODY_LEN]) {
    let (enc, body) = Kem::seal(&recipient.public, INFO, file_key, randomness);
    (Base64Unpadded::encode_string(&enc), body)
}

/// The parse-time checks of a stanza of this type (SPEC.md §4.6), run on
/// every such stanza before any key is tried: exactly one argument after
/// the type, canonical base64 of exactly 1,120 bytes, a 32-byte body (so no
/// partitioning oracle), and an X25519 share that is not a low-order point.
/// Returns *enc*.
pub(crate) fn check(
    args_after_type: &[String],
    body: &[u8],
) -> Result<[u8; ENC_LEN], &'static str> {
    let [enc_text] = args_after_type else {
        return Err("mlkem768x25519 stanza needs exactly one argument after its type");
    };
    let mut enc = [0u8; ENC_LEN];
    // Bounded before decoding; base64ct refuses padding and non-zero
    // trailing bits, so only one text decodes to these bytes.
    let canonical = enc_text.len() == ENC_CHARS
        && Base64Unpadded::decode(enc_text, &mut enc).is_ok_and(|out| out.len() == ENC_LEN);
    if !canonical {
        return Err("mlkem768x25519 enc is not canonical base64 of 1120 bytes");
    }
    if body.len() != BODY_LEN {
        return Err("mlkem768x25519 stanza body is not 32 bytes");
    }
    let share: [u8; 32] = enc[ENC_X25519_AT..]
        .try_into()
        .expect("enc ends with a 32-byte X25519 share");
    if is_low_order(&share) {
        return Err("mlkem768x25519 enc's X25519 share is a low-order point");
    }
    Ok(enc)
}

/// [`check`] on a header's stanza: [`Error::MalformedHeader`] at the
/// stanza if it breaks a rule.
pub(super) fn check_stanza(stanza: &Stanza, input: &Location) -> Result<(), Error> {
    check(&stanza.args, &stanza.body)
        .map(|_| ())
        .map_err(|reason| Error::malformed(input, stanza.at, reason))
}

/// A stanza of this type's exact size (1,547 bytes encoded), with
/// placeholder contents: the header length, known without wrapping a key.
pub(super) fn placeholder() -> Stanza {
    Stanza {
        at: 0,
        kind: STANZA_TYPE.into(),
        args: vec!["A".repeat(ENC_CHARS)],
        body: vec![0; BODY_LEN],
    }
}

/// Opens a stanza of this type with `identity`; `None` if the stanza fails
/// [`check`] or is not addressed to this identity.
pub(crate) fn unwrap(
    identity: &HybridIdentity,
    args_after_type: &[String],
    body: &[u8],
) -> Option<Zeroizing<[u8; FILE_KEY_LEN]>> {
    let enc = check(args_after_type, body).ok()?;
    let sealed: &[u8; SEALED_LEN] = body.try_into().ok()?;
    Kem::open(&identity.secret, INFO, &enc, sealed)
}

/// Whether every X25519 secret gives the all-zero shared secret with
/// `point`: the probe's clamped scalar is a multiple of 8, so it sends every
/// point of order dividing 8 to zero.
fn is_low_order(point: &[u8; 32]) -> bool {
    let probe = StaticSecret::from([0x5A; 32]);
    !probe
        .diffie_hellman(&PublicKey::from(*point))
        .was_contributory()
}

#[cfg(test)]
mod tests {
    use super::bech32_long::MAX_KEY_CHARS;
    use super::*;

    /// age.md's example identity and recipient, and CCTV's `hybrid` vector
    /// (identity, its stanza's enc and body, the file key).
    const KNOWN_ANSWERS: &str = include_str!("testdata/hybrid.txt");

    fn known(name: &str) -> &'static str {
        KNOWN_ANSWERS
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
            .unwrap_or_else(|| panic!("{name} in testdata/hybrid.txt"))
    }

    fn err_reason(result: Result<impl fmt::Debug, Error>) -> KeyError {
        match result {
            Err(Error::InvalidKey { reason }) => reason,
            other => panic!("expected InvalidKey, got {other:?}"),
        }
    }

    fn fresh_stanza() -> (HybridIdentity, [u8; FILE_KEY_LEN], Vec<String>, Vec<u8>) {
        let identity = HybridIdentity::generate().expect("os randomness");
        let file_key = [0x42; FILE_KEY_LEN];
        let randomness = Randomness::Os
            .array::<RANDOMNESS_LEN>()
            .expect("os randomness");
        let (enc, body) = wrap(&identity.to_public(), &file_key, &randomness);
        (identity, file_key, vec![enc], body.to_vec())
    }

    #[test]
    fn age_md_identity_derives_its_recipient() {
        let identity: HybridIdentity = known("age.md identity").parse().expect("age.md identity");
        let recipient = identity.to_public();
        assert_eq!(recipient.to_string(), known("age.md recipient"));
        assert_eq!(recipient.to_string().len(), 1959);
        assert_eq!(
            identity.to_secret_string().as_str(),
            known("age.md identity")
        );
        let parsed: HybridRecipient = known("age.md recipient").parse().expect("age.md recipient");
        assert_eq!(parsed, recipient);
        assert_eq!(parsed.to_bytes(), recipient.to_bytes());
    }

    #[test]
    fn cctv_hybrid_stanza_opens_to_its_file_key() {
        let identity: HybridIdentity = known("cctv identity").parse().expect("cctv identity");
        let args = vec![known("cctv enc").to_owned()];
        let body = Base64Unpadded::decode_vec(known("cctv body")).expect("base64 body");
        check(&args, &body).expect("a valid stanza");
        let file_key = unwrap(&identity, &args, &body).expect("the vector's identity opens");
        assert_eq!(&*file_key, b"YELLOW SUBMARINE");
        let other: HybridIdentity = known("age.md identity").parse().expect("age.md identity");
        assert!(unwrap(&other, &args, &body).is_none());
    }

    #[test]
    fn wrap_round_trips_for_its_identity_only() {
        let (identity, file_key, args, body) = fresh_stanza();
        assert_eq!(args[0].len(), ENC_CHARS);
        assert_eq!(ENC_CHARS, 1494);
        assert_eq!(body.len(), 32);
        let opened = unwrap(&identity, &args, &body).expect("addressee opens");
        assert_eq!(*opened, file_key);
        let stranger = HybridIdentity::generate().expect("os randomness");
        assert!(unwrap(&stranger, &args, &body).is_none());
        // A clone opens too, and the recipient survives its own encoding.
        assert!(unwrap(&identity.clone(), &args, &body).is_some());
        let again: HybridRecipient = identity.to_public().to_string().parse().expect("parses");
        assert_eq!(again, identity.to_public());
    }

    #[test]
    fn wrap_is_a_function_of_the_drawn_randomness() {
        let recipient = HybridIdentity::from_bytes([7; SEED_LEN]).to_public();
        let a = wrap(&recipient, &[1; FILE_KEY_LEN], &[2; RANDOMNESS_LEN]);
        let b = wrap(&recipient, &[1; FILE_KEY_LEN], &[2; RANDOMNESS_LEN]);
        assert_eq!(a, b);
        assert_ne!(
            a,
            wrap(&recipient, &[1; FILE_KEY_LEN], &[3; RANDOMNESS_LEN])
        );
    }

    #[test]
    fn hostile_argument_counts_and_bodies_are_refused() {
        let (_, _, args, body) = fresh_stanza();
        let enc = &args[0];
        const ARGS: &str = "mlkem768x25519 stanza needs exactly one argument after its type";
        const BODY: &str = "mlkem768x25519 stanza body is not 32 bytes";
        assert_eq!(check(&[], &body).expect_err("refused"), ARGS);
        assert_eq!(
            check(&[enc.clone(), "extra".into()], &body).expect_err("refused"),
            ARGS
        );
        for len in [0, 16, 31, 33, 40, 48] {
            let body = vec![0u8; len];
            assert_eq!(
                check(std::slice::from_ref(enc), &body).expect_err("refused"),
                BODY,
                "{len}"
            );
        }
    }

    #[test]
    fn hostile_encs_are_refused() {
        const ENC: &str = "mlkem768x25519 enc is not canonical base64 of 1120 bytes";
        let (_, _, args, body) = fresh_stanza();
        let enc = args[0].clone();
        let refused = |text: String| check(&[text], &body).expect_err("refused");
        // 1,119 and 1,121 bytes, canonically encoded.
        let bytes = Base64Unpadded::decode_vec(&enc).expect("canonical");
        assert_eq!(refused(Base64Unpadded::encode_string(&bytes[1..])), ENC);
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(refused(Base64Unpadded::encode_string(&long)), ENC);
        // Padding, a character outside the alphabet, white space.
        assert_eq!(refused(format!("{enc}==")), ENC);
        assert_eq!(refused(format!("{}=", &enc[..enc.len() - 1])), ENC);
        assert_eq!(refused(format!("{}*", &enc[..enc.len() - 1])), ENC);
        assert_eq!(refused(format!("{} ", &enc[..enc.len() - 1])), ENC);
        assert_eq!(refused(String::new()), ENC);
        // Non-zero trailing bits: 1,120 bytes end in two characters, the
        // last with 4 bits to spare; setting one decodes to the same bytes.
        let mut non_canonical = enc.clone().into_bytes();
        let last_char = non_canonical.last_mut().expect("non-empty");
        *last_char = sextet_char(char_sextet(*last_char) | 1);
        assert_eq!(
            refused(String::from_utf8(non_canonical).expect("ascii")),
            ENC
        );
    }

    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    fn char_sextet(c: u8) -> u8 {
        ALPHABET.iter().position(|&a| a == c).expect("base64 char") as u8
    }

    fn sextet_char(v: u8) -> u8 {
        ALPHABET[usize::from(v)]
    }

    #[test]
    fn low_order_x25519_shares_are_refused() {
        const LOW: &str = "mlkem768x25519 enc's X25519 share is a low-order point";
        let (_, _, args, body) = fresh_stanza();
        let bytes = Base64Unpadded::decode_vec(&args[0]).expect("canonical");
        let mut one = [0u8; 32];
        one[0] = 1;
        // p − 1 (order 2), and the order-8 point of the RFC 7748 list.
        let mut p_minus_1 = [0xffu8; 32];
        p_minus_1[0] = 0xec;
        p_minus_1[31] = 0x7f;
        let order8: [u8; 32] = [
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
            0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
            0x5f, 0x49, 0xb8, 0x00,
        ];
        for point in [[0u8; 32], one, p_minus_1, order8] {
            let mut enc = bytes.clone();
            enc[ENC_X25519_AT..].copy_from_slice(&point);
            let text = Base64Unpadded::encode_string(&enc);
            assert_eq!(
                check(&[text], &body).expect_err("refused"),
                LOW,
                "{point:?}"
            );
        }
    }

    #[test]
    fn corrupted_enc_halves_do_not_open() {
        // ML-KEM ciphertexts have no validity condition (implicit rejection)
        // and a changed share is another point: both are "not ours".
        let (identity, _, args, body) = fresh_stanza();
        let bytes = Base64Unpadded::decode_vec(&args[0]).expect("canonical");
        for at in [0, ENC_X25519_AT - 1, ENC_X25519_AT + 1] {
            let mut enc = bytes.clone();
            enc[at] ^= 0x04;
            let text = vec![Base64Unpadded::encode_string(&enc)];
            assert!(check(&text, &body).is_ok(), "{at}");
            assert!(unwrap(&identity, &text, &body).is_none(), "{at}");
        }
        let mut bad_tag = body.clone();
        bad_tag[31] ^= 1;
        assert!(unwrap(&identity, &args, &bad_tag).is_none());
    }

    #[test]
    fn wrong_keys_are_refused_with_their_reason() {
        let identity = HybridIdentity::from_bytes([9; SEED_LEN]);
        let bytes = identity.to_public().to_bytes();
        // Wrong lengths, well encoded.
        let short = bech32_long::encode_lower(RECIPIENT_HRP, &bytes[..PUBLIC_LEN - 1]);
        assert_eq!(
            err_reason(short.parse::<HybridRecipient>()),
            KeyError::HybridLength {
                what: "recipient",
                found: 1215,
                expected: 1216
            }
        );
        let x25519_sized = bech32_long::encode_lower(RECIPIENT_HRP, &[9; 32]);
        assert!(matches!(
            err_reason(x25519_sized.parse::<HybridRecipient>()),
            KeyError::HybridLength { found: 32, .. }
        ));
        let long_seed = bech32_long::encode_upper(IDENTITY_HRP_UPPER, &[1; 33]);
        assert_eq!(
            err_reason(long_seed.parse::<HybridIdentity>()),
            KeyError::HybridLength {
                what: "identity",
                found: 33,
                expected: 32
            }
        );
        // A coefficient ≥ q in the ML-KEM half.
        let mut bad = bytes;
        bad[0] = 0xff;
        bad[1] |= 0x0f;
        let bad = bech32_long::encode_lower(RECIPIENT_HRP, &bad);
        assert_eq!(
            err_reason(bad.parse::<HybridRecipient>()),
            KeyError::NotEncapsulationKey
        );
        // Other kinds' prefixes, each way round.
        let secret = identity.to_secret_string();
        assert_eq!(
            err_reason(secret.parse::<HybridRecipient>()),
            KeyError::WrongPrefix {
                what: "recipient",
                found: "age-secret-key-pq-".into()
            }
        );
        let recipient = identity.to_public().to_string();
        assert!(matches!(
            err_reason(recipient.parse::<HybridIdentity>()),
            KeyError::WrongPrefix {
                what: "identity",
                ..
            }
        ));
        let age = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";
        assert!(matches!(
            err_reason(age.parse::<HybridRecipient>()),
            KeyError::WrongPrefix { found, .. } if found == "age"
        ));
        // One character off, and mixed case.
        let mut typo = recipient.clone().into_bytes();
        typo[100] = if typo[100] == b'q' { b'p' } else { b'q' };
        let typo = String::from_utf8(typo).expect("ascii");
        assert_eq!(
            err_reason(typo.parse::<HybridRecipient>()),
            KeyError::Bech32 { what: "recipient" }
        );
        let mixed = format!("{}{}", &recipient[..10], recipient[10..].to_uppercase());
        assert_eq!(
            err_reason(mixed.parse::<HybridRecipient>()),
            KeyError::Bech32 { what: "recipient" }
        );
        // Upper case as a whole is bech32 too, and shows in lower case.
        let upper: HybridRecipient = recipient.to_uppercase().parse().expect("one case");
        assert_eq!(upper.to_string(), recipient);
    }

    #[test]
    fn oversize_strings_are_refused_before_decoding() {
        let text = format!("age1pq1{}", "q".repeat(MAX_KEY_CHARS + 1 - 7));
        assert_eq!(text.len(), 8193);
        assert_eq!(
            err_reason(text.parse::<HybridRecipient>()),
            KeyError::TooLong { what: "recipient" }
        );
        let secret = format!("AGE-SECRET-KEY-PQ-1{}", "Q".repeat(9000));
        assert_eq!(
            err_reason(secret.parse::<HybridIdentity>()),
            KeyError::TooLong { what: "identity" }
        );
        // The error never carries the text.
        let err = text.parse::<HybridRecipient>().expect_err("too long");
        assert!(!format!("{err} {err:?}").contains("qqqq"));
    }

    #[test]
    fn identity_file_is_age_keygen_pq_shaped() {
        let identity: HybridIdentity = known("age.md identity").parse().expect("age.md identity");
        let created = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_928_480);
        let file = identity.to_file_string(created);
        assert_eq!(
            file.as_str(),
            format!(
                "# created: 2026-11-29T05:01:20Z\n# public key: {}\n{}\n",
                known("age.md recipient"),
                known("age.md identity")
            )
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let identity: HybridIdentity = known("age.md identity").parse().expect("age.md identity");
        assert_eq!(format!("{identity:?}"), "HybridIdentity(<redacted>)");
        assert_eq!(
            format!("{:?}", identity.clone()),
            "HybridIdentity(<redacted>)"
        );
        assert_eq!(
            format!("{:?}", identity.to_public()),
            "HybridRecipient(age1pq1x34nzsvr0…zv49zc0k)"
        );
    }

    /// Medians of keygen, wrap, unwrap and recipient parsing (release:
    /// `cargo test --release --lib hybrid::tests::timings -- --ignored
    /// --nocapture`).
    #[test]
    #[ignore = "timing, not a check: run by hand on a quiet machine"]
    fn timings() {
        use std::hint::black_box;
        use std::time::{Duration, Instant};
        fn median(runs: usize, mut f: impl FnMut()) -> Duration {
            let mut times: Vec<Duration> = (0..runs)
                .map(|_| {
                    let start = Instant::now();
                    f();
                    start.elapsed()
                })
                .collect();
            times.sort();
            times[runs / 2]
        }
        let identity = HybridIdentity::from_bytes([5; SEED_LEN]);
        let recipient = identity.to_public();
        let text = recipient.to_string();
        let (enc, body) = wrap(&recipient, &[1; FILE_KEY_LEN], &[2; RANDOMNESS_LEN]);
        let args = vec![enc];
        let mut seed = 0u8;
        let rows = [
            (
                "keygen (seed to age1pq1 recipient)",
                median(501, || {
                    seed = seed.wrapping_add(1);
                    black_box(HybridIdentity::from_bytes([seed; SEED_LEN]).to_public());
                }),
            ),
            (
                "wrap (encapsulate + seal)",
                median(501, || {
                    black_box(wrap(
                        &recipient,
                        &[1; FILE_KEY_LEN],
                        &[seed; RANDOMNESS_LEN],
                    ));
                }),
            ),
            (
                "unwrap (check + expand + decapsulate + open)",
                median(501, || {
                    black_box(unwrap(&identity, &args, &body));
                }),
            ),
            (
                "parse age1pq1 (bech32 + FIPS 203 check)",
                median(501, || {
                    black_box(text.parse::<HybridRecipient>().expect("valid"));
                }),
            ),
        ];
        for (what, time) in rows {
            println!("{what:48} {:>8.1} µs", time.as_secs_f64() * 1e6);
        }
    }
}
