//! Chunked AEAD in the STREAM construction (SPEC.md §6): one
//! ChaCha20-Poly1305 key per set, nonce = counter ‖ flag. Bytes in, bytes
//! out; this layer never sees a reader, a writer or a volume.
//!
//! Two interchangeable backends, byte for byte the same output:
//! - default: the `chacha20poly1305` crate (RustCrypto); its AVX-512 ChaCha20
//!   needs `--cfg chacha20_avx512` at build time, which this repository's
//!   `.cargo/config.toml` sets but dependents do not inherit;
//! - feature `ring`: `ring`'s assembly (BoringSSL's fused AVX2
//!   ChaCha20-Poly1305 on x86-64), fast without any build flag. `ring` does
//!   not wipe its key copy on drop.

#[cfg(not(feature = "ring"))]
use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, Tag};
#[cfg(feature = "ring")]
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};

use crate::format::{ChunkFlag, TAG_LEN, chunk_nonce};
use crate::keys::PayloadKey;

/// Seals and opens the chunks of one set.
pub(crate) struct ChunkCipher {
    #[cfg(not(feature = "ring"))]
    aead: ChaCha20Poly1305,
    #[cfg(feature = "ring")]
    aead: LessSafeKey,
}

impl ChunkCipher {
    #[cfg(not(feature = "ring"))]
    pub(crate) fn new(key: &PayloadKey) -> Self {
        ChunkCipher { aead: key.cipher() }
    }

    #[cfg(feature = "ring")]
    pub(crate) fn new(key: &PayloadKey) -> Self {
        let key = UnboundKey::new(&CHACHA20_POLY1305, key.as_bytes())
            .expect("a 32-byte key is a ChaCha20-Poly1305 key");
        ChunkCipher {
            aead: LessSafeKey::new(key),
        }
    }

    /// Seals `body` in place and returns its tag.
    pub(crate) fn seal_detached(
        &self,
        counter: u64,
        flag: ChunkFlag,
        body: &mut [u8],
    ) -> [u8; TAG_LEN] {
        let nonce = chunk_nonce(counter, flag);
        #[cfg(not(feature = "ring"))]
        let tag = self
            .aead
            .encrypt_inout_detached(&nonce.into(), &[], body.into())
            .expect("a chunk of at most 16 MiB is below the ChaCha20-Poly1305 limit")
            .into();
        #[cfg(feature = "ring")]
        let tag = {
            let tag = self
                .aead
                .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), body)
                .expect("a chunk of at most 16 MiB is below the ChaCha20-Poly1305 limit");
            let mut bytes = [0u8; TAG_LEN];
            bytes.copy_from_slice(tag.as_ref());
            bytes
        };
        tag
    }

    /// Opens `chunk` (ciphertext ‖ tag) in place. On success the plaintext is
    /// `chunk[..chunk.len() - 16]`; on failure nothing may be released.
    #[must_use]
    pub(crate) fn open(&self, counter: u64, flag: ChunkFlag, chunk: &mut [u8]) -> bool {
        let Some(split) = chunk.len().checked_sub(TAG_LEN) else {
            return false;
        };
        let (body, tag) = chunk.split_at_mut(split);
        let Ok(tag) = Tag::try_from(&*tag) else {
            return false;
        };
        let nonce = chunk_nonce(counter, flag);
        #[cfg(not(feature = "ring"))]
        let opened = self
            .aead
            .decrypt_inout_detached(&nonce.into(), &[], body.into(), &tag)
            .is_ok();
        // On failure ring overwrites the body (never releasing plaintext);
        // callers already treat a failed chunk's bytes as garbage.
        #[cfg(feature = "ring")]
        let opened = self
            .aead
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                tag,
                body,
                0..,
            )
            .is_ok();
        opened
    }
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::*;
    use crate::format::SET_ID_LEN;
    use crate::keys::FileKey;

    fn cipher() -> ChunkCipher {
        let key = FileKey::from_bytes(Zeroizing::new([5; 32])).payload_key(&[0; SET_ID_LEN]);
        ChunkCipher::new(&key)
    }

    #[test]
    fn opens_only_with_the_same_counter_and_flag() {
        let cipher = cipher();
        for len in [0, 1, 4079, 4080] {
            let mut chunk = vec![0x33; len];
            let tag = cipher.seal_detached(7, ChunkFlag::Interior, &mut chunk);
            chunk.extend_from_slice(&tag);
            assert_eq!(chunk.len(), len + TAG_LEN);

            let mut copy = chunk.clone();
            assert!(cipher.open(7, ChunkFlag::Interior, &mut copy));
            assert!(copy[..len].iter().all(|&b| b == 0x33));
            for (counter, flag) in [
                (8, ChunkFlag::Interior),
                (7, ChunkFlag::EndOfSet),
                (7, ChunkFlag::EndOfVolume),
            ] {
                let mut copy = chunk.clone();
                assert!(!cipher.open(counter, flag, &mut copy), "{counter} {flag:?}");
            }
        }
    }

    #[test]
    fn short_input_is_refused() {
        assert!(!cipher().open(0, ChunkFlag::EndOfSet, &mut [0u8; TAG_LEN - 1]));
    }
}
