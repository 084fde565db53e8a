//! Unencrypted OpenSSH `ssh-ed25519` private key files (PROTOCOL.key,
//! `openssh-key-v1`), as `ssh-keygen -t ed25519 -N ''` writes them: read
//! for `--sign` and `keygen -y`, written so that `ssh-keygen -Y sign` can
//! sign with a kuvert key. Encrypted files are refused: kuvert carries no
//! bcrypt-pbkdf or AES.

use base64ct::{Base64, Encoding};
use zeroize::Zeroizing;

use super::keys::{BLOB_LEN, PUBLIC_LEN, SEED_LEN, SSH_ED25519, SigningKey};
use super::wire::{Fields, put_string};
use crate::error::{Error, KeyError};
use crate::rand::Randomness;

/// The first line of an OpenSSH private key file.
pub(crate) const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const END: &str = "-----END OPENSSH PRIVATE KEY-----";
const AUTH_MAGIC: &[u8] = b"openssh-key-v1\0";
/// ssh-keygen's line length in the armor.
const LINE_CHARS: usize = 70;
/// Largest key file read: an Ed25519 file is about 400 bytes; RSA ones
/// are a few KiB.
const MAX_FILE_LEN: usize = 16 * 1024;
/// The unencrypted cipher's block size: the private list is padded to it.
const BLOCK: usize = 8;
/// Longest comment written or read.
const MAX_COMMENT: usize = 1024;

const WHAT: &str = "OpenSSH key";

fn bad(reason: &'static str) -> Error {
    Error::key(KeyError::Signing { what: WHAT, reason })
}

fn truncated() -> Error {
    bad("the key ends inside a field")
}

/// Reads an unencrypted `ssh-ed25519` private key file, strictly: cipher
/// and KDF `none`, one key, both check integers equal, the public blob
/// equal to the private part's key and to the key of its seed, padding
/// 1, 2, 3, … to a multiple of 8, nothing after it.
pub(crate) fn parse_private_key(text: &str) -> Result<SigningKey, Error> {
    if text.len() > MAX_FILE_LEN {
        return Err(bad("longer than 16 KiB"));
    }
    let body = text
        .trim()
        .strip_prefix(BEGIN)
        .and_then(|rest| rest.strip_suffix(END))
        .ok_or_else(|| bad("not between the OpenSSH private key markers"))?;
    let encoded: String = body.split_ascii_whitespace().collect();
    let decoded =
        Zeroizing::new(Base64::decode_vec(&encoded).map_err(|_| bad("the key is not base64"))?);
    let mut fields = Fields::new(&decoded, truncated);
    if fields.take(AUTH_MAGIC.len())? != AUTH_MAGIC {
        return Err(bad("not an openssh-key-v1 key"));
    }
    let cipher = fields.string()?;
    let kdf = fields.string()?;
    let kdf_options = fields.string()?;
    if cipher != b"none" || kdf != b"none" {
        return Err(bad(
            "encrypted OpenSSH key: add it to ssh-agent and use --sign-agent",
        ));
    }
    if !kdf_options.is_empty() {
        return Err(bad("KDF options on an unencrypted key"));
    }
    if fields.u32()? != 1 {
        return Err(bad("not exactly one key in the file"));
    }
    let public_blob = fields.string()?;
    let private = fields.string()?;
    if !fields.bytes.is_empty() {
        return Err(bad("bytes after the private part"));
    }
    if private.len() % BLOCK != 0 {
        return Err(bad("the private part is not padded to 8 bytes"));
    }
    let mut list = Fields::new(private, truncated);
    if list.u32()? != list.u32()? {
        return Err(bad(
            "the check integers differ (a wrong passphrase or damage)",
        ));
    }
    if list.string()? != SSH_ED25519.as_bytes() {
        return Err(bad("not an ssh-ed25519 key"));
    }
    let public = list.string()?;
    let secret = list.string()?;
    let comment = list.string()?;
    if comment.len() > MAX_COMMENT {
        return Err(bad("comment longer than 1,024 bytes"));
    }
    let padding = list.bytes;
    if padding.len() >= BLOCK || padding.iter().zip(1u8..).any(|(&byte, want)| byte != want) {
        return Err(bad("the padding is not 1, 2, 3, …"));
    }
    if public.len() != PUBLIC_LEN || secret.len() != SEED_LEN + PUBLIC_LEN {
        return Err(bad("ssh-ed25519 key parts of the wrong length"));
    }
    let mut seed = Zeroizing::new([0u8; SEED_LEN]);
    seed.copy_from_slice(&secret[..SEED_LEN]);
    let key = SigningKey::from_seed(*seed);
    let derived = key.public().to_bytes();
    if public != derived || secret[SEED_LEN..] != derived {
        return Err(bad("the public key is not the seed's"));
    }
    if public_blob != key.public().blob() {
        return Err(bad("the public key is not the seed's"));
    }
    Ok(key)
}

impl SigningKey {
    /// This key as an unencrypted OpenSSH private key file, as
    /// `ssh-keygen -t ed25519 -N '' -C comment` writes one (its check
    /// integer is random). `ssh-keygen -Y sign -f FILE -n kuvert` then
    /// signs exactly as kuvert does. Wiped on drop.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the random source fails; [`Error::InvalidKey`]
    /// for a comment over 1,024 bytes.
    pub fn to_openssh_private_key(&self, comment: &str) -> Result<Zeroizing<String>, Error> {
        let check = u32::from_be_bytes(*Randomness::Os.array::<4>()?);
        self.openssh_private_key_with(comment, check)
    }

    /// [`to_openssh_private_key`](Self::to_openssh_private_key) with a
    /// given check integer (tests compare bytes with ssh-keygen's).
    pub(crate) fn openssh_private_key_with(
        &self,
        comment: &str,
        check: u32,
    ) -> Result<Zeroizing<String>, Error> {
        if comment.len() > MAX_COMMENT {
            return Err(bad("comment longer than 1,024 bytes"));
        }
        let public = self.public().to_bytes();
        let mut private = Zeroizing::new(Vec::with_capacity(160 + comment.len()));
        private.extend_from_slice(&check.to_be_bytes());
        private.extend_from_slice(&check.to_be_bytes());
        put_string(&mut private, SSH_ED25519.as_bytes());
        put_string(&mut private, &public);
        let mut secret = Zeroizing::new([0u8; SEED_LEN + PUBLIC_LEN]);
        secret[..SEED_LEN].copy_from_slice(self.seed());
        secret[SEED_LEN..].copy_from_slice(&public);
        put_string(&mut private, &secret[..]);
        put_string(&mut private, comment.as_bytes());
        let mut pad = 1u8;
        while private.len() % BLOCK != 0 {
            private.push(pad);
            pad += 1;
        }
        let mut body = Zeroizing::new(Vec::with_capacity(AUTH_MAGIC.len() + 100 + private.len()));
        body.extend_from_slice(AUTH_MAGIC);
        put_string(&mut body, b"none");
        put_string(&mut body, b"none");
        put_string(&mut body, b"");
        body.extend_from_slice(&1u32.to_be_bytes());
        let blob: [u8; BLOB_LEN] = self.public().blob();
        put_string(&mut body, &blob);
        put_string(&mut body, &private);
        let encoded = Zeroizing::new(Base64::encode_string(&body));
        let mut out = Zeroizing::new(String::with_capacity(
            BEGIN.len() + END.len() + encoded.len() * 71 / 70 + 4,
        ));
        out.push_str(BEGIN);
        out.push('\n');
        for line in encoded.as_bytes().chunks(LINE_CHARS) {
            out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str(END);
        out.push('\n');
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::SignerKey;

    /// `ssh-keygen -t ed25519 -N '' -C test@kuvert -f k` (OpenSSH 9.2p1).
    const SSH_KEYGEN_FILE: &str = include_str!("testdata/ssh-keygen-ed25519");
    const SSH_KEYGEN_PUB: &str = include_str!("testdata/ssh-keygen-ed25519.pub");

    #[test]
    fn reads_ssh_keygen_files_and_writes_them_byte_for_byte() {
        let key = SigningKey::parse_file(SSH_KEYGEN_FILE).expect("ssh-keygen file");
        let public: SignerKey = SSH_KEYGEN_PUB.parse().expect("ssh-keygen .pub");
        assert_eq!(*key.public(), public);
        assert_eq!(
            key.public().to_openssh("test@kuvert"),
            SSH_KEYGEN_PUB.trim_end()
        );
        // The same check integer gives ssh-keygen's bytes.
        let decoded = decode(SSH_KEYGEN_FILE);
        let at = AUTH_MAGIC.len() + 8 + 8 + 4 + 4 + 4 + BLOB_LEN + 4;
        let check = u32::from_be_bytes(decoded[at..at + 4].try_into().expect("4 bytes"));
        let written = key
            .openssh_private_key_with("test@kuvert", check)
            .expect("writes");
        assert_eq!(written.as_str(), SSH_KEYGEN_FILE);
        let random = key.to_openssh_private_key("x").expect("writes");
        assert_eq!(
            SigningKey::parse_file(&random).expect("reads").public(),
            key.public()
        );
    }

    fn decode(text: &str) -> Vec<u8> {
        let body: String = text
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        Base64::decode_vec(&body).expect("base64")
    }

    fn encode(body: &[u8]) -> String {
        let encoded = Base64::encode_string(body);
        let lines: Vec<&str> = encoded
            .as_bytes()
            .chunks(70)
            .map(|line| std::str::from_utf8(line).expect("ascii"))
            .collect();
        format!("{BEGIN}\n{}\n{END}\n", lines.join("\n"))
    }

    fn reason(text: &str) -> &'static str {
        match SigningKey::parse_file(text) {
            Err(Error::InvalidKey {
                reason: KeyError::Signing { reason, .. },
            }) => reason,
            other => panic!("{other:?}"),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn changed_bytes_are_refused_or_the_same_key(at in 0usize..1000, byte in proptest::prelude::any::<u8>()) {
            let mut bytes = decode(SSH_KEYGEN_FILE);
            let at = at % bytes.len();
            bytes[at] = byte;
            let original = SigningKey::parse_file(SSH_KEYGEN_FILE).expect("fixture");
            // Only the comment's bytes and the check integers (both at
            // once) may change without a refusal; the key never does.
            if let Ok(key) = SigningKey::parse_file(&encode(&bytes)) {
                proptest::prop_assert_eq!(key.public(), original.public());
            }
        }

        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = SigningKey::parse_file(&encode(&body));
        }
    }

    #[test]
    fn every_rule_has_its_refusal() {
        let good = decode(SSH_KEYGEN_FILE);
        let cipher_at = AUTH_MAGIC.len();
        let private_at = cipher_at + 8 + 8 + 4 + 4 + 4 + BLOB_LEN + 4;
        let edit = |at: usize, byte: u8| {
            let mut bytes = good.clone();
            bytes[at] ^= byte;
            encode(&bytes)
        };
        assert_eq!(reason(&edit(0, 1)), "not an openssh-key-v1 key");
        assert_eq!(
            reason(&edit(cipher_at + 4, 1)),
            "encrypted OpenSSH key: add it to ssh-agent and use --sign-agent"
        );
        assert_eq!(
            reason(&edit(private_at, 1)),
            "the check integers differ (a wrong passphrase or damage)"
        );
        // The public blob's key, the private part's public copy, the seed's.
        assert_eq!(
            reason(&edit(cipher_at + 24 + 4 + 19, 1)),
            "the public key is not the seed's"
        );
        assert_eq!(
            reason(&edit(private_at + 8 + 15 + 4, 1)),
            "the public key is not the seed's"
        );
        assert_eq!(
            reason(&edit(private_at + 8 + 15 + 36 + 4 + 40, 1)),
            "the public key is not the seed's"
        );
        let last = good.len() - 1;
        assert_eq!(reason(&edit(last, 0x10)), "the padding is not 1, 2, 3, …");
        let mut two = good.clone();
        two[cipher_at + 20 + 3] = 2;
        assert_eq!(reason(&encode(&two)), "not exactly one key in the file");
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(reason(&encode(&trailing)), "bytes after the private part");
        let cut = good[..good.len() - 9].to_vec();
        assert_eq!(reason(&encode(&cut)), "the key ends inside a field");
        assert_eq!(
            reason(&SSH_KEYGEN_FILE.replace("-----END", "-----FIN")),
            "not between the OpenSSH private key markers"
        );
        assert_eq!(
            reason(&format!("{BEGIN}\n{}", "A".repeat(20_000))),
            "longer than 16 KiB"
        );
        // An ssh-keygen file encrypted with a passphrase (aes256-ctr, bcrypt).
        assert_eq!(
            reason(include_str!("testdata/ssh-keygen-ed25519-encrypted")),
            "encrypted OpenSSH key: add it to ssh-agent and use --sign-agent"
        );
    }
}
