//! OpenSSH's SSHSIG signatures (PROTOCOL.sshsig), as `ssh-keygen -Y sign
//! -n kuvert` writes them for an Ed25519 key, byte for byte (SPEC.md §14):
//! so a receiving office checks a statement with `ssh-keygen -Y verify`
//! alone. Only namespace `kuvert`, hash `sha512` and `ssh-ed25519` are
//! written or accepted.

use base64ct::{Base64, Encoding};
use sha2::{Digest, Sha512};

use super::keys::{BLOB_LEN, SIGNATURE_LEN, SSH_ED25519, SignerKey, VolumeSigner};
use super::wire::{Fields, put_string};
use crate::error::{Error, KeyError};

/// The SSHSIG namespace of every kuvert signature.
pub const NAMESPACE: &str = "kuvert";
/// The hash of the message inside the signed data (ssh-keygen's default).
pub const HASH_ALGORITHM: &str = "sha512";
const MAGIC: &[u8; 6] = b"SSHSIG";
const VERSION: u32 = 1;
const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----\n";
const END: &str = "-----END SSH SIGNATURE-----\n";
/// ssh-keygen breaks the base64 after every 70 characters.
const LINE_CHARS: usize = 70;

/// Bytes of the signed data for namespace `kuvert` and hash `sha512`.
pub const SIGNED_DATA_LEN: usize = 6 + (4 + 6) + 4 + (4 + 6) + (4 + 64);
/// Bytes of the signature string: `string("ssh-ed25519") ‖ string(sig)`.
const SIGNATURE_FIELD_LEN: usize = 4 + SSH_ED25519.len() + 4 + SIGNATURE_LEN;
/// Bytes of the blob of one Ed25519 signature.
pub const BLOB_BYTES: usize =
    6 + 4 + (4 + BLOB_LEN) + (4 + 6) + 4 + (4 + 6) + (4 + SIGNATURE_FIELD_LEN);
/// Bytes of the armored signature (ssh-keygen's `.sig` file).
pub const ARMORED_LEN: usize = BEGIN.len() + END.len() + base64_len(BLOB_BYTES) + lines(BLOB_BYTES);
/// Longest armored signature read: no encoder writes more.
pub const MAX_ARMORED_LEN: usize = 1024;

const fn base64_len(bytes: usize) -> usize {
    bytes.div_ceil(3) * 4
}

const fn lines(bytes: usize) -> usize {
    base64_len(bytes).div_ceil(LINE_CHARS)
}

/// Why an armored SSHSIG signature is refused, in the order checked.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SshsigError {
    /// Not exactly ssh-keygen's armor: markers, padded base64 in lines of
    /// 70, one LF after each line (decoded and re-encoded, it differs), or
    /// longer than 1,024 bytes.
    #[error("not an SSH signature in ssh-keygen's armor")]
    Armor,
    /// The blob does not start with `SSHSIG`.
    #[error("the signature blob does not start with SSHSIG")]
    Magic,
    /// A version other than 1.
    #[error("the signature version is not 1")]
    Version,
    /// A length field points past the end of the blob.
    #[error("the signature blob ends inside a field")]
    Truncated,
    /// A namespace other than `kuvert`.
    #[error("the signature namespace is not \"kuvert\"")]
    Namespace,
    /// The reserved field is not empty.
    #[error("the signature's reserved field is not empty")]
    Reserved,
    /// A hash other than `sha512`.
    #[error("the signature's hash algorithm is not sha512")]
    HashAlgorithm,
    /// A signature type other than `ssh-ed25519`.
    #[error("the signature type is not ssh-ed25519")]
    SignatureType,
    /// An Ed25519 signature that is not 64 bytes.
    #[error("the Ed25519 signature is not 64 bytes")]
    SignatureLength,
    /// Bytes after the signature, inside its field or after the blob.
    #[error("bytes after the signature")]
    TrailingBytes,
    /// Well formed, but made with another key than the one expected.
    #[error("the signature is by another key")]
    OtherKey,
    /// Well formed and by the expected key, but it does not verify over
    /// the message (RFC 8032, strict).
    #[error("the signature does not verify")]
    BadSignature,
}

impl SshsigError {
    /// Whether the signature breaks the format (a damaged or forged
    /// record) rather than being well formed and not valid.
    pub fn is_malformed(self) -> bool {
        !matches!(self, SshsigError::OtherKey | SshsigError::BadSignature)
    }
}

/// What the Ed25519 signature is over: `"SSHSIG" ‖ string("kuvert") ‖
/// string("") ‖ string("sha512") ‖ string(SHA-512(message))`, 98 bytes.
pub fn signed_data(message: &[u8]) -> [u8; SIGNED_DATA_LEN] {
    let mut out = Vec::with_capacity(SIGNED_DATA_LEN);
    out.extend_from_slice(MAGIC);
    put_string(&mut out, NAMESPACE.as_bytes());
    put_string(&mut out, b"");
    put_string(&mut out, HASH_ALGORITHM.as_bytes());
    put_string(&mut out, &Sha512::digest(message));
    out.try_into().expect("the signed data has a fixed length")
}

/// The signature blob: `"SSHSIG" ‖ u32 1 ‖ string(public key blob) ‖
/// string("kuvert") ‖ string("") ‖ string("sha512") ‖
/// string(string("ssh-ed25519") ‖ string(signature))`, 176 bytes.
pub fn blob(public: &SignerKey, signature: &[u8; SIGNATURE_LEN]) -> Vec<u8> {
    let mut out = Vec::with_capacity(BLOB_BYTES);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    put_string(&mut out, &public.blob());
    put_string(&mut out, NAMESPACE.as_bytes());
    put_string(&mut out, b"");
    put_string(&mut out, HASH_ALGORITHM.as_bytes());
    let mut field = Vec::with_capacity(SIGNATURE_FIELD_LEN);
    put_string(&mut field, SSH_ED25519.as_bytes());
    put_string(&mut field, signature);
    put_string(&mut out, &field);
    debug_assert_eq!(out.len(), BLOB_BYTES);
    out
}

/// ssh-keygen's armor of a blob: the BEGIN line, padded base64 in lines
/// of 70 characters each ended by LF, the END line ended by LF.
pub fn armor(blob: &[u8]) -> String {
    let encoded = Base64::encode_string(blob);
    let mut out = String::with_capacity(BEGIN.len() + END.len() + encoded.len() * 71 / 70 + 1);
    out.push_str(BEGIN);
    for line in encoded.as_bytes().chunks(LINE_CHARS) {
        // Base64 output is ASCII, so every 70-byte cut is at a character.
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(END);
    out
}

/// The blob of an armored signature, if the armor is exactly what
/// [`armor`] writes for it.
///
/// # Errors
///
/// [`SshsigError::Armor`] for anything else, or over 1,024 bytes.
pub fn dearmor(armored: &[u8]) -> Result<Vec<u8>, SshsigError> {
    if armored.len() > MAX_ARMORED_LEN {
        return Err(SshsigError::Armor);
    }
    let text = std::str::from_utf8(armored).map_err(|_| SshsigError::Armor)?;
    let body = text
        .strip_prefix(BEGIN)
        .and_then(|rest| rest.strip_suffix(END))
        .ok_or(SshsigError::Armor)?;
    let encoded: String = body.split('\n').collect();
    let blob = Base64::decode_vec(&encoded).map_err(|_| SshsigError::Armor)?;
    // Canonical: line breaks, padding and trailing bits exactly as written.
    if armor(&blob).as_bytes() != armored {
        return Err(SshsigError::Armor);
    }
    Ok(blob)
}

/// Signs `message` with `signer` and returns ssh-keygen's armored
/// signature (298 bytes), after checking the signature it got: a faulty
/// signer (an agent, hardware) never gets a bad signature written.
///
/// # Errors
///
/// The signer's own error, or [`Error::InvalidKey`] if its signature does
/// not verify under its public key.
pub fn sign(signer: &dyn VolumeSigner, message: &[u8]) -> Result<String, Error> {
    let data = signed_data(message);
    let signature = signer.sign(&data)?;
    if !signer.public_key().verify_strict(&data, &signature) {
        return Err(Error::key(KeyError::Signing {
            what: "signing key",
            reason: "the signer returned a signature that does not verify",
        }));
    }
    Ok(armor(&blob(signer.public_key(), &signature)))
}

/// Checks an armored signature over `message` by `expected`, with every
/// rule of SPEC.md §14 in order: armor, magic, version, namespace,
/// reserved, hash, signature type and length, no trailing bytes; then
/// the key, then the signature (RFC 8032, strict).
///
/// # Errors
///
/// The first rule broken, as an [`SshsigError`].
pub fn verify(armored: &[u8], message: &[u8], expected: &SignerKey) -> Result<(), SshsigError> {
    let blob = dearmor(armored)?;
    let mut fields = Fields::new(&blob, || SshsigError::Truncated);
    if fields.take(MAGIC.len()).map_err(|_| SshsigError::Magic)? != MAGIC {
        return Err(SshsigError::Magic);
    }
    if fields.u32()? != VERSION {
        return Err(SshsigError::Version);
    }
    let public = fields.string()?;
    if fields.string()? != NAMESPACE.as_bytes() {
        return Err(SshsigError::Namespace);
    }
    if !fields.string()?.is_empty() {
        return Err(SshsigError::Reserved);
    }
    if fields.string()? != HASH_ALGORITHM.as_bytes() {
        return Err(SshsigError::HashAlgorithm);
    }
    let mut field = Fields::new(fields.string()?, || SshsigError::Truncated);
    if field.string()? != SSH_ED25519.as_bytes() {
        return Err(SshsigError::SignatureType);
    }
    let signature: [u8; SIGNATURE_LEN] = field
        .string()?
        .try_into()
        .map_err(|_| SshsigError::SignatureLength)?;
    if !field.bytes.is_empty() || !fields.bytes.is_empty() {
        return Err(SshsigError::TrailingBytes);
    }
    if public != expected.blob() {
        return Err(SshsigError::OtherKey);
    }
    if !expected.verify_strict(&signed_data(message), &signature) {
        return Err(SshsigError::BadSignature);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::SigningKey;

    const MESSAGE: &[u8] = b"# kuvert volume statement 1\n";

    /// A blob with one field replaced, re-armored: the armor stays valid.
    fn rebuild(
        public: &SignerKey,
        namespace: &[u8],
        reserved: &[u8],
        hash: &[u8],
        kind: &[u8],
        sig: &[u8],
    ) -> String {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        put_string(&mut out, &public.blob());
        put_string(&mut out, namespace);
        put_string(&mut out, reserved);
        put_string(&mut out, hash);
        let mut field = Vec::new();
        put_string(&mut field, kind);
        put_string(&mut field, sig);
        put_string(&mut out, &field);
        armor(&out)
    }

    #[test]
    fn sizes_are_ssh_keygens() {
        assert_eq!(SIGNED_DATA_LEN, 98);
        assert_eq!(BLOB_BYTES, 176);
        assert_eq!(ARMORED_LEN, 298);
        let key = SigningKey::from_seed([2; 32]);
        let armored = sign(&key, MESSAGE).expect("signs");
        assert_eq!(armored.len(), ARMORED_LEN);
        let lines: Vec<usize> = armored.lines().map(str::len).collect();
        assert_eq!(lines, [29, 70, 70, 70, 26, 27]);
        assert_eq!(
            sign(&key, MESSAGE).expect("signs"),
            armored,
            "deterministic"
        );
        verify(armored.as_bytes(), MESSAGE, key.public()).expect("verifies");
    }

    #[test]
    fn every_rule_has_its_error() {
        let key = SigningKey::from_seed([2; 32]);
        let other = SigningKey::from_seed([3; 32]);
        let public = key.public();
        let sig = key.sign_raw(&signed_data(MESSAGE));
        let good = rebuild(public, b"kuvert", b"", b"sha512", b"ssh-ed25519", &sig);
        assert_eq!(good, sign(&key, MESSAGE).expect("signs"));
        let cases: Vec<(String, SshsigError)> = vec![
            (
                rebuild(public, b"file", b"", b"sha512", b"ssh-ed25519", &sig),
                SshsigError::Namespace,
            ),
            (
                rebuild(public, b"kuvert", b"x", b"sha512", b"ssh-ed25519", &sig),
                SshsigError::Reserved,
            ),
            (
                rebuild(public, b"kuvert", b"", b"sha256", b"ssh-ed25519", &sig),
                SshsigError::HashAlgorithm,
            ),
            (
                rebuild(public, b"kuvert", b"", b"sha512", b"ssh-rsa", &sig),
                SshsigError::SignatureType,
            ),
            (
                rebuild(
                    public,
                    b"kuvert",
                    b"",
                    b"sha512",
                    b"ssh-ed25519",
                    &sig[..63],
                ),
                SshsigError::SignatureLength,
            ),
            (
                rebuild(
                    other.public(),
                    b"kuvert",
                    b"",
                    b"sha512",
                    b"ssh-ed25519",
                    &sig,
                ),
                SshsigError::OtherKey,
            ),
            (good.replace("-----\n", "-----\r\n"), SshsigError::Armor),
            (good.replacen('\n', "\n\n", 2), SshsigError::Armor),
            (good.trim_end().to_owned(), SshsigError::Armor),
            (good.replace("SIGNATURE", "SIG"), SshsigError::Armor),
            (format!("{good} "), SshsigError::Armor),
        ];
        for (armored, expected) in cases {
            assert_eq!(
                verify(armored.as_bytes(), MESSAGE, public),
                Err(expected),
                "{armored}"
            );
        }
        assert_eq!(
            verify(good.as_bytes(), b"another message", public),
            Err(SshsigError::BadSignature)
        );
        // Magic, version, trailing bytes and a cut blob, on raw blobs.
        let raw = blob(public, &sig);
        let mut magic = raw.clone();
        magic[0] = b's';
        let mut version = raw.clone();
        version[9] = 2;
        let mut trailing = raw.clone();
        trailing.push(0);
        let cut = raw[..raw.len() - 1].to_vec();
        for (bytes, expected) in [
            (magic, SshsigError::Magic),
            (version, SshsigError::Version),
            (trailing, SshsigError::TrailingBytes),
            (cut, SshsigError::Truncated),
            (raw[..3].to_vec(), SshsigError::Magic),
        ] {
            assert_eq!(
                verify(armor(&bytes).as_bytes(), MESSAGE, public),
                Err(expected)
            );
        }
        assert!(SshsigError::Namespace.is_malformed());
        assert!(!SshsigError::BadSignature.is_malformed());
        assert_eq!(
            verify(&vec![b'-'; MAX_ARMORED_LEN + 1], MESSAGE, public),
            Err(SshsigError::Armor)
        );
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let key = SigningKey::from_seed([2; 32]);
        let armored = sign(&key, MESSAGE).expect("signs").into_bytes();
        for at in 0..armored.len() {
            for bit in 0..8 {
                let mut bad = armored.clone();
                bad[at] ^= 1 << bit;
                assert!(
                    verify(&bad, MESSAGE, key.public()).is_err(),
                    "byte {at} bit {bit}"
                );
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_verify_or_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1100)) {
            let key = SigningKey::from_seed([2; 32]);
            proptest::prop_assert!(verify(&bytes, MESSAGE, key.public()).is_err());
        }

        #[test]
        fn arbitrary_blobs_in_valid_armor_never_verify_or_panic(blob in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let key = SigningKey::from_seed([2; 32]);
            proptest::prop_assert!(verify(armor(&blob).as_bytes(), MESSAGE, key.public()).is_err());
        }
    }

    struct Faulty(SignerKey);

    impl VolumeSigner for Faulty {
        fn public_key(&self) -> &SignerKey {
            &self.0
        }
        fn sign(&self, _: &[u8]) -> Result<[u8; SIGNATURE_LEN], Error> {
            Ok([0; SIGNATURE_LEN])
        }
    }

    #[test]
    fn a_faulty_signer_is_caught() {
        let key = SigningKey::from_seed([2; 32]);
        assert!(matches!(
            sign(&Faulty(*key.public()), MESSAGE),
            Err(Error::InvalidKey {
                reason: KeyError::Signing { .. }
            })
        ));
    }
}
