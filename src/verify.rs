//! Verifying volumes on their own (SPEC.md §7.4), for checking a disc right
//! after burning it: [`Opener::verify_volume`], [`VolumeVerifier`] for many
//! volumes, and the [`VolumeReport`] each gives.

use std::fmt;
use std::io;

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::error::Error;
use crate::format::{ChunkFlag, Header, SET_ID_LEN, TAG_LEN};
use crate::header::read_header;
use crate::keys::FileKey;
use crate::last_chunk::LastChunk;
use crate::open::Opener;
use crate::pipeline;
use crate::stream::ChunkCipher;
use crate::volumes::VolumeSource;

/// The outcome of verifying one volume on its own.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeReport {
    /// Volume number, from 1 (authenticated).
    pub volume: u32,
    /// Id of the set the volume belongs to.
    pub set_id: [u8; SET_ID_LEN],
    /// SHA-256 of the header's set part (SPEC.md §3.2), authenticated.
    /// Volumes open as one set only if this is equal (SPEC.md §7.2): two
    /// that share a set id but differ here (other stanzas, say) do not.
    pub set_digest: [u8; 32],
    /// Chunks in the volume, all authenticated.
    pub chunks: u64,
    /// Payload bytes the volume carries (on volume 1 these include the
    /// 4-byte payload prefix, SPEC.md §6.7).
    pub plaintext_len: u64,
    /// Whether this is the last volume of its set.
    pub last_in_set: bool,
}

impl Opener {
    /// Authenticates every chunk of one volume without the rest of its set,
    /// for checking a disc right after burning it. Chunks are authenticated
    /// on the opener's threads.
    ///
    /// # Errors
    ///
    /// As [`Opener::open`], for this volume alone; a full volume that ends
    /// with an end-of-volume chunk is intact and reported with
    /// `last_in_set: false`.
    pub fn verify_volume<S: VolumeSource + Sync + ?Sized>(
        &self,
        volume: &S,
    ) -> Result<VolumeReport, Error> {
        let (header, len) = read_header(volume, 1)?;
        let file_key = self.unlock(&header)?.file_key;
        self.verify_with(volume, &header, len, &file_key)
    }

    /// A verifier for several volumes that unlocks each distinct set header
    /// once: with a passphrase, one Argon2id run per set, not per volume.
    pub fn volume_verifier(&self) -> VolumeVerifier<'_> {
        VolumeVerifier {
            opener: self,
            keys: Vec::new(),
        }
    }

    fn verify_with<S: VolumeSource + Sync + ?Sized>(
        &self,
        volume: &S,
        header: &Header,
        len: u64,
        file_key: &FileKey,
    ) -> Result<VolumeReport, Error> {
        let geometry = header.geometry();
        let cipher = ChunkCipher::new(&file_key.payload_key(&header.set.set_id));
        let last = LastChunk::locate(&geometry, header.volume, len)?;
        let first = geometry.first_chunk(header.volume);
        // Wiped on drop too: an error after the chunk opened leaves plaintext.
        let mut buf = Zeroizing::new(Vec::with_capacity(geometry.chunk_len()));
        // The last chunk first, as `open` does, so that trailing bytes and
        // cuts are named as such rather than as a failed interior chunk.
        let flag = last.authenticate(&cipher, &geometry, volume, &mut buf)?;
        buf.zeroize();
        if last.chunk > first {
            let open = |chunk: u64, buf: &mut [u8]| {
                let (_, offset) = geometry.locate(chunk);
                let buf = &mut buf[..geometry.chunk_len()];
                volume.read_exact_at(buf, offset)?;
                if cipher.open(chunk, ChunkFlag::Interior, buf) {
                    Ok(geometry.plain_len())
                } else {
                    Err(Error::Unauthenticated {
                        chunk,
                        volume: header.volume,
                        offset,
                    })
                }
            };
            let interior = pipeline::ChunkRange {
                first,
                last: last.chunk - 1,
                skip: 0,
                len: (last.chunk - first) * geometry.plain_len() as u64,
            };
            let threads = self.thread_count().max(1);
            pipeline::open_range(&geometry, threads, interior, &open, &mut io::sink())?;
        }
        let chunks = last.chunk - first + 1;
        Ok(VolumeReport {
            volume: header.volume,
            set_id: header.set.set_id,
            set_digest: Sha256::digest(header.set_bytes()).into(),
            chunks,
            plaintext_len: (chunks - 1) * geometry.plain_len() as u64 + (last.len - TAG_LEN) as u64,
            last_in_set: flag == ChunkFlag::EndOfSet,
        })
    }
}

/// Verifies volumes one at a time, remembering the file key of each set
/// header it has unlocked; see [`Opener::volume_verifier`].
pub struct VolumeVerifier<'a> {
    opener: &'a Opener,
    /// Set part of a header, and the file key it unlocked to.
    keys: Vec<(Vec<u8>, FileKey)>,
}

impl fmt::Debug for VolumeVerifier<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VolumeVerifier")
            .field("sets", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl VolumeVerifier<'_> {
    /// As [`Opener::verify_volume`], reusing keys already found.
    ///
    /// # Errors
    ///
    /// As [`Opener::verify_volume`].
    pub fn verify<S: VolumeSource + Sync + ?Sized>(
        &mut self,
        volume: &S,
    ) -> Result<VolumeReport, Error> {
        let (header, len) = read_header(volume, 1)?;
        let known = self
            .keys
            .iter()
            .position(|(set_bytes, _)| set_bytes.as_slice() == header.set_bytes());
        let at = match known {
            Some(at) => {
                // Same set part, so the same file key: a failing MAC is damage.
                self.keys[at].1.verify_header(&header)?;
                at
            }
            None => {
                let file_key = self.opener.unlock(&header)?.file_key;
                self.keys.push((header.set_bytes().to_vec(), file_key));
                self.keys.len() - 1
            }
        };
        self.opener
            .verify_with(volume, &header, len, &self.keys[at].1)
    }
}
