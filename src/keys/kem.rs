//! The hybrid KEM under `mlkem768x25519` stanzas (SPEC.md §4.6): HPKE base
//! mode with MLKEM768-X25519 (X-Wing), HKDF-SHA-256 and ChaCha20-Poly1305,
//! as age v1.3 seals a file key.
//!
//! One small seam, [`HybridKem`], so that another implementation (such as
//! libcrux-ml-kem with the schedule of SPEC.md §4.6 written out) can replace
//! the `hpke` crate without touching the stanza code; [`Kem`] names the one
//! selected at compile time.

use hpke::aead::{AeadTag, ChaCha20Poly1305 as HpkeChaCha20Poly1305};
use hpke::kdf::HkdfSha256;
use hpke::kem::XWing;
use hpke::rand_core::{Infallible, TryCryptoRng, TryRng};
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

/// An identity: 32 random bytes, from which the ML-KEM-768 and X25519
/// secrets are expanded (SHAKE256).
pub(crate) const SEED_LEN: usize = 32;
/// A recipient: the ML-KEM-768 encapsulation key (1,184 bytes) followed by
/// the X25519 public key (32 bytes).
pub(crate) const PUBLIC_LEN: usize = 1216;
/// The encapsulated key *enc*: the ML-KEM-768 ciphertext (1,088 bytes)
/// followed by the ephemeral X25519 share (32 bytes).
pub(crate) const ENC_LEN: usize = 1120;
/// Where the X25519 share starts inside *enc*.
pub(crate) const ENC_X25519_AT: usize = 1088;
/// Random bytes one encapsulation draws: the ML-KEM message, then the
/// ephemeral X25519 secret.
pub(crate) const RANDOMNESS_LEN: usize = 64;
/// The file key a stanza carries (age's 128-bit file key).
pub(crate) const FILE_KEY_LEN: usize = super::FILE_KEY_LEN;
/// The sealed file key: 16 bytes and a 16-byte tag.
pub(crate) const SEALED_LEN: usize = FILE_KEY_LEN + 16;

/// What the stanza code needs of a hybrid KEM with its HPKE schedule.
pub(crate) trait HybridKem {
    /// An identity in the form the KEM works with (expansion may be cached).
    type Secret: Clone;
    /// A recipient, parsed and checked.
    type Public: Clone + PartialEq + Eq;

    /// The identity of a 32-byte seed.
    fn secret_from_seed(seed: &[u8; SEED_LEN]) -> Self::Secret;
    /// The recipient an identity opens.
    fn public(secret: &Self::Secret) -> Self::Public;
    /// A recipient from its 1,216 bytes, or `None` if the length is wrong or
    /// the ML-KEM-768 part fails FIPS 203's encapsulation key check.
    fn public_from_bytes(bytes: &[u8]) -> Option<Self::Public>;
    /// A recipient's 1,216 bytes.
    fn public_bytes(public: &Self::Public) -> [u8; PUBLIC_LEN];
    /// HPKE SealBase of `file_key` to `public` under `info`, empty
    /// associated data, with the caller's 64 encapsulation bytes: *enc* and
    /// the sealed key.
    fn seal(
        public: &Self::Public,
        info: &[u8],
        file_key: &[u8; FILE_KEY_LEN],
        randomness: &[u8; RANDOMNESS_LEN],
    ) -> ([u8; ENC_LEN], [u8; SEALED_LEN]);
    /// HPKE OpenBase; `None` if the sealed key does not authenticate (which
    /// is also what a corrupted ML-KEM ciphertext gives: implicit rejection).
    fn open(
        secret: &Self::Secret,
        info: &[u8],
        enc: &[u8; ENC_LEN],
        sealed: &[u8; SEALED_LEN],
    ) -> Option<Zeroizing<[u8; FILE_KEY_LEN]>>;
}

/// The hybrid KEM kuvert is built with.
pub(crate) type Kem = HpkeXWing;

/// [`HybridKem`] by the `hpke` crate's X-Wing (RustCrypto ml-kem, x-wing,
/// x25519-dalek). Its secret wipes itself on drop (x-wing's `zeroize`
/// feature, which hpke turns on).
pub(crate) struct HpkeXWing;

impl HybridKem for HpkeXWing {
    type Secret = <XWing as hpke::Kem>::PrivateKey;
    type Public = <XWing as hpke::Kem>::PublicKey;

    fn secret_from_seed(seed: &[u8; SEED_LEN]) -> Self::Secret {
        Self::Secret::from_bytes(seed).expect("an X-Wing private key is any 32 bytes")
    }

    fn public(secret: &Self::Secret) -> Self::Public {
        XWing::sk_to_pk(secret)
    }

    fn public_from_bytes(bytes: &[u8]) -> Option<Self::Public> {
        // Checks the length and runs FIPS 203's encapsulation key check
        // (every coefficient below q) on the ML-KEM half.
        Self::Public::from_bytes(bytes).ok()
    }

    fn public_bytes(public: &Self::Public) -> [u8; PUBLIC_LEN] {
        let mut out = [0u8; PUBLIC_LEN];
        public.write_exact(&mut out);
        out
    }

    fn seal(
        public: &Self::Public,
        info: &[u8],
        file_key: &[u8; FILE_KEY_LEN],
        randomness: &[u8; RANDOMNESS_LEN],
    ) -> ([u8; ENC_LEN], [u8; SEALED_LEN]) {
        let mut sealed = [0u8; SEALED_LEN];
        let (key, tag_out) = sealed.split_at_mut(FILE_KEY_LEN);
        key.copy_from_slice(file_key);
        let mut rng = Prefilled(randomness);
        let (enc, tag) = hpke::single_shot_seal_inout_detached_with_rng::<
            HpkeChaCha20Poly1305,
            HkdfSha256,
            XWing,
        >(&OpModeS::Base, public, info, key.into(), &[], &mut rng)
        .expect("X-Wing base-mode sealing of 16 bytes cannot fail");
        debug_assert!(rng.0.is_empty(), "X-Wing drew exactly its 64 bytes");
        tag.write_exact(tag_out);
        let mut enc_bytes = [0u8; ENC_LEN];
        enc.write_exact(&mut enc_bytes);
        (enc_bytes, sealed)
    }

    fn open(
        secret: &Self::Secret,
        info: &[u8],
        enc: &[u8; ENC_LEN],
        sealed: &[u8; SEALED_LEN],
    ) -> Option<Zeroizing<[u8; FILE_KEY_LEN]>> {
        let enc = <XWing as hpke::Kem>::EncappedKey::from_bytes(enc).ok()?;
        let tag = AeadTag::<HpkeChaCha20Poly1305>::from_bytes(&sealed[FILE_KEY_LEN..]).ok()?;
        let mut file_key = Zeroizing::new([0u8; FILE_KEY_LEN]);
        file_key.copy_from_slice(&sealed[..FILE_KEY_LEN]);
        hpke::single_shot_open_inout_detached::<HpkeChaCha20Poly1305, HkdfSha256, XWing>(
            &OpModeR::Base,
            secret,
            &enc,
            info,
            (&mut file_key[..]).into(),
            &[],
            &tag,
        )
        .ok()?;
        Some(file_key)
    }
}

/// A "random" source that hands out exactly the bytes kuvert drew for one
/// encapsulation: the randomness comes from kuvert's own `Randomness`
/// (fallible, seedable for test vectors), never from inside `hpke`.
struct Prefilled<'a>(&'a [u8]);

impl Prefilled<'_> {
    fn take(&mut self, dst: &mut [u8]) {
        let (now, rest) = self
            .0
            .split_at_checked(dst.len())
            .expect("X-Wing draws exactly the 64 bytes kuvert prefilled");
        dst.copy_from_slice(now);
        self.0 = rest;
    }
}

impl TryRng for Prefilled<'_> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0u8; 4];
        self.take(&mut bytes);
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0u8; 8];
        self.take(&mut bytes);
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.take(dst);
        Ok(())
    }
}

impl TryCryptoRng for Prefilled<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &[u8] = b"age-encryption.org/mlkem768x25519";

    #[test]
    fn seal_opens_with_its_secret_only() {
        let secret = Kem::secret_from_seed(&[1; SEED_LEN]);
        let public = Kem::public(&secret);
        let (enc, sealed) = Kem::seal(&public, INFO, b"YELLOW SUBMARINE", &[7; RANDOMNESS_LEN]);
        let opened = Kem::open(&secret, INFO, &enc, &sealed).expect("its own secret opens");
        assert_eq!(&*opened, b"YELLOW SUBMARINE");
        let other = Kem::secret_from_seed(&[2; SEED_LEN]);
        assert!(Kem::open(&other, INFO, &enc, &sealed).is_none());
        assert!(Kem::open(&secret, b"another info", &enc, &sealed).is_none());
        let mut bad_tag = sealed;
        bad_tag[SEALED_LEN - 1] ^= 1;
        assert!(Kem::open(&secret, INFO, &enc, &bad_tag).is_none());
    }

    #[test]
    fn sealing_is_a_function_of_the_randomness() {
        let public = Kem::public(&Kem::secret_from_seed(&[3; SEED_LEN]));
        let fk = [9; FILE_KEY_LEN];
        let a = Kem::seal(&public, INFO, &fk, &[5; RANDOMNESS_LEN]);
        assert_eq!(a, Kem::seal(&public, INFO, &fk, &[5; RANDOMNESS_LEN]));
        let mut other = [5; RANDOMNESS_LEN];
        other[0] = 6;
        let b = Kem::seal(&public, INFO, &fk, &other);
        // The ML-KEM message changed, the X25519 secret did not.
        assert_ne!(a.0[..ENC_X25519_AT], b.0[..ENC_X25519_AT]);
        assert_eq!(a.0[ENC_X25519_AT..], b.0[ENC_X25519_AT..]);
        other[RANDOMNESS_LEN - 1] = 6;
        let c = Kem::seal(&public, INFO, &fk, &other);
        assert_ne!(b.0[ENC_X25519_AT..], c.0[ENC_X25519_AT..]);
    }

    #[test]
    fn public_keys_round_trip_and_are_checked() {
        let public = Kem::public(&Kem::secret_from_seed(&[4; SEED_LEN]));
        let bytes = Kem::public_bytes(&public);
        assert_eq!(Kem::public_from_bytes(&bytes), Some(public));
        assert!(Kem::public_from_bytes(&bytes[1..]).is_none());
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(Kem::public_from_bytes(&long).is_none());
        // The first 12-bit coefficient set to 4095 ≥ q = 3329: not an
        // ML-KEM-768 encapsulation key (FIPS 203 §7.2).
        let mut bad = bytes;
        bad[0] = 0xff;
        bad[1] |= 0x0f;
        assert!(Kem::public_from_bytes(&bad).is_none());
    }
}
