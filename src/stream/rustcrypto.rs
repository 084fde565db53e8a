//! The pure-Rust chunk AEAD backend: the `chacha20poly1305` crate
//! (RustCrypto), used without feature `ring` or with `zeroize-chunk-key`.
//! With its `zeroize` feature (on, see Cargo.toml) its key copy is wiped on
//! drop. Its ChaCha20 picks AVX2 or SSE2 at run time; its AVX-512 path is
//! compiled in only with `RUSTFLAGS="--cfg chacha20_avx512"`, which a build
//! sets for every crate in it or not at all.

use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, KeyInit, Tag};

use crate::format::TAG_LEN;

/// ChaCha20-Poly1305 under one payload key.
pub(crate) struct Aead(ChaCha20Poly1305);

impl Aead {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        Aead(ChaCha20Poly1305::new(key.into()))
    }

    /// Encrypts `body` in place and returns its tag.
    pub(crate) fn seal(&self, nonce: [u8; 12], body: &mut [u8]) -> [u8; TAG_LEN] {
        self.0
            .encrypt_inout_detached(&nonce.into(), &[], body.into())
            .expect("a chunk of at most 16 MiB is below the ChaCha20-Poly1305 limit")
            .into()
    }

    /// Decrypts `body` in place if `tag` authenticates it.
    pub(crate) fn open(&self, nonce: [u8; 12], body: &mut [u8], tag: &[u8; TAG_LEN]) -> bool {
        self.0
            .decrypt_inout_detached(&nonce.into(), &[], body.into(), &Tag::from(*tag))
            .is_ok()
    }
}
