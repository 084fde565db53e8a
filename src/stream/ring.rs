//! The chunk AEAD backend of feature `ring`: `ring`'s assembly (BoringSSL's
//! fused AVX2 ChaCha20-Poly1305 on x86-64), fast without any build flag.
//! `ring` does not wipe its key copy on drop.

use ::ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};

use crate::format::TAG_LEN;

/// ChaCha20-Poly1305 under one payload key.
pub(crate) struct Aead(LessSafeKey);

impl Aead {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        let key = UnboundKey::new(&CHACHA20_POLY1305, key)
            .expect("a 32-byte key is a ChaCha20-Poly1305 key");
        Aead(LessSafeKey::new(key))
    }

    /// Encrypts `body` in place and returns its tag.
    pub(crate) fn seal(&self, nonce: [u8; 12], body: &mut [u8]) -> [u8; TAG_LEN] {
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), body)
            .expect("a chunk of at most 16 MiB is below the ChaCha20-Poly1305 limit");
        let mut bytes = [0u8; TAG_LEN];
        bytes.copy_from_slice(tag.as_ref());
        bytes
    }

    /// Decrypts `body` in place if `tag` authenticates it. On failure ring
    /// overwrites the body (never releasing plaintext); callers already
    /// treat a failed chunk's bytes as garbage.
    pub(crate) fn open(&self, nonce: [u8; 12], body: &mut [u8], tag: &[u8; TAG_LEN]) -> bool {
        self.0
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                Tag::from(*tag),
                body,
                0..,
            )
            .is_ok()
    }
}
