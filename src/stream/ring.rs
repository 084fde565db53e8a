//! The default chunk AEAD backend (feature `ring`): `ring`'s assembly,
//! BoringSSL's fused ChaCha20-Poly1305, which picks its AVX2 (with BMI2) or
//! SSE4.1 path on x86-64 (NEON on aarch64) at run time, so every build runs
//! at full speed with no flag. It has no AVX-512 path, so it runs the same
//! code on CPUs with and without AVX-512.
//!
//! # Security
//!
//! `ring` keeps its own copy of the 32-byte payload key in [`Aead`] and does
//! not wipe it on drop. That copy lives in exactly one place: the
//! `ChunkCipher` owned by one `SealWriter` (shared by `Arc` with its sealing
//! threads, which the writer joins when it is finished or dropped), one
//! `OpenReader`, or one volume check. It is freed, unwiped, when that owner
//! is dropped; the heap bytes stay until the allocator reuses them. Build
//! with feature `zeroize-chunk-key` for a backend that wipes it.

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
