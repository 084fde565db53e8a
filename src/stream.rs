//! Chunked AEAD in the STREAM construction (SPEC.md §6): one
//! ChaCha20-Poly1305 key per set, nonce = counter ‖ flag. Bytes in, bytes
//! out; this layer never sees a reader, a writer or a volume.
//!
//! Two interchangeable backends, byte for byte the same output, one file
//! each: `stream/ring.rs` (feature `ring`, the default: full speed in any
//! build) and `stream/rustcrypto.rs` (the `chacha20poly1305` crate: its key
//! copy is wiped on drop; used without `ring`, or whenever
//! `zeroize-chunk-key` is on, so that one crate asking for a wiped key is
//! never overruled by another crate's defaults in the same build). The
//! choice is made here and nowhere else.

// The one place a backend is chosen.
#[cfg(all(feature = "ring", not(feature = "zeroize-chunk-key")))]
mod ring;
#[cfg(any(not(feature = "ring"), feature = "zeroize-chunk-key"))]
mod rustcrypto;
#[cfg(all(feature = "ring", not(feature = "zeroize-chunk-key")))]
use self::ring::Aead as Backend;
#[cfg(any(not(feature = "ring"), feature = "zeroize-chunk-key"))]
use self::rustcrypto::Aead as Backend;

use crate::format::{ChunkFlag, TAG_LEN, chunk_nonce};
use crate::keys::PayloadKey;

/// Seals and opens the chunks of one set.
pub(crate) struct ChunkCipher {
    aead: Backend,
}

impl ChunkCipher {
    pub(crate) fn new(key: &PayloadKey) -> Self {
        ChunkCipher {
            aead: Backend::new(key.as_bytes()),
        }
    }

    /// Seals `body` in place and returns its tag.
    pub(crate) fn seal_detached(
        &self,
        counter: u64,
        flag: ChunkFlag,
        body: &mut [u8],
    ) -> [u8; TAG_LEN] {
        self.aead.seal(chunk_nonce(counter, flag), body)
    }

    /// Opens `chunk` (ciphertext ‖ tag) in place. On success the plaintext is
    /// `chunk[..chunk.len() - 16]`; on failure nothing may be released.
    #[must_use]
    pub(crate) fn open(&self, counter: u64, flag: ChunkFlag, chunk: &mut [u8]) -> bool {
        let Some(split) = chunk.len().checked_sub(TAG_LEN) else {
            return false;
        };
        let (body, tag) = chunk.split_at_mut(split);
        let Ok(tag) = <&[u8; TAG_LEN]>::try_from(&*tag) else {
            return false;
        };
        self.aead.open(chunk_nonce(counter, flag), body, tag)
    }
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::*;
    use crate::format::SET_ID_LEN;
    use crate::keys::FileKey;

    fn cipher() -> ChunkCipher {
        let key = FileKey::from_bytes(Zeroizing::new([5; 16])).payload_key(&[0; SET_ID_LEN]);
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
