//! Verifying volumes on their own (SPEC.md §7.4), for checking a disc right
//! after burning it: [`Opener::verify_volume`], [`VolumeVerifier`] for many
//! volumes, and the [`VolumeReport`] each gives.

use std::fmt;
use std::io;

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Volume};
use crate::format::{ChunkFlag, Header, SET_ID_LEN, TAG_LEN};
use crate::header::read_header;
use crate::keys::FileKey;
use crate::last_chunk::LastChunk;
use crate::open::Opener;
use crate::pipeline;
use crate::stream::ChunkCipher;
use crate::volumes::{VolumeSource, location};

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

    /// Verifies `volume`, whose header is read and unlocked to `file_key`
    /// (SPEC.md §7.4 steps 2 to 4).
    fn verify_with<S: VolumeSource + Sync + ?Sized>(
        &self,
        volume: &S,
        header: &Header,
        len: u64,
        file_key: &FileKey,
    ) -> Result<VolumeReport, Error> {
        let geometry = header.geometry();
        let cipher = ChunkCipher::new(&file_key.payload_key(&header.set.set_id));
        let last = LastChunk::locate(&geometry, header.volume, len, volume.name())?;
        let number = Volume::Number(header.volume);
        let first = geometry.first_chunk(header.volume);
        // Wiped on drop too: an error after the chunk opened leaves plaintext.
        let mut buf = Zeroizing::new(Vec::with_capacity(geometry.chunk_len()));
        // The last chunk first, as opening a set does, so that trailing
        // bytes and cuts are named as such rather than as a failed interior
        // chunk.
        let flag = last.authenticate(&cipher, &geometry, volume, &mut buf)?;
        buf.zeroize();
        if last.chunk > first {
            let open = |chunk: u64, buf: &mut [u8]| {
                let (_, offset) = geometry.locate(chunk);
                let buf = &mut buf[..geometry.chunk_len()];
                crate::volumes::read_at(volume, buf, offset, number, Some(chunk))?;
                if cipher.open(chunk, ChunkFlag::Interior, buf) {
                    Ok(geometry.plain_len())
                } else {
                    Err(Error::Unauthenticated {
                        chunk,
                        at: location(volume, number).byte(offset).chunk(chunk),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::PAYLOAD_PREFIX_LEN;
    use crate::keys::X25519Identity;
    use crate::seal::tests::{same_identity, seal};

    #[test]
    fn every_volume_of_a_set_verifies_alone() {
        let identity = X25519Identity::generate().expect("os randomness");
        let data = vec![9u8; 10 * (4096 - TAG_LEN)];
        let volumes = seal(&identity, &data, 4096, Some(2048 + 3 * 4096));
        assert_eq!(volumes.len(), 4);
        let opener = Opener::new().identity(same_identity(&identity)).threads(2);
        let mut verifier = opener.volume_verifier();
        let mut carried = 0;
        for (index, volume) in volumes.iter().enumerate() {
            let report = opener.verify_volume(volume).expect("verify");
            assert_eq!(verifier.verify(volume).expect("verify"), report);
            assert_eq!(report.volume as usize, index + 1);
            assert_eq!(report.chunks, if index < 3 { 3 } else { 2 });
            assert_eq!(report.last_in_set, index == 3);
            carried += report.plaintext_len;
        }
        assert_eq!(carried, (PAYLOAD_PREFIX_LEN + data.len()) as u64);
        assert!(format!("{verifier:?}").contains("sets: 1"));
    }

    #[test]
    fn a_damaged_chunk_is_named() {
        let identity = X25519Identity::generate().expect("os randomness");
        let data = vec![9u8; 10 * (4096 - TAG_LEN)];
        let mut volumes = seal(&identity, &data, 4096, Some(2048 + 3 * 4096));
        // Chunk 4: the second of volume 2.
        volumes[1][2048 + 4096 + 10] ^= 1;
        let opener = Opener::new().identity(same_identity(&identity));
        assert!(opener.verify_volume(&volumes[0]).is_ok());
        assert!(matches!(
            opener.verify_volume(&volumes[1]),
            Err(Error::Unauthenticated { chunk: 4, at })
                if at == crate::Location::volume(2).byte(6144).chunk(4)
        ));
        // The last chunk of a volume is checked first, and names a cut at
        // a chunk boundary.
        volumes[2].truncate(2048 + 2 * 4096);
        assert!(matches!(
            opener.volume_verifier().verify(&volumes[2]),
            Err(Error::Truncated {
                at: crate::Location {
                    volume: Volume::Number(3),
                    ..
                }
            })
        ));
    }

    #[test]
    fn without_the_key_nothing_is_verified() {
        let identity = X25519Identity::generate().expect("os randomness");
        let volumes = seal(&identity, b"x", 4096, None);
        let stranger = Opener::new().identity(X25519Identity::generate().expect("os randomness"));
        assert!(matches!(
            stranger.verify_volume(&volumes[0]),
            Err(Error::NoMatchingKey { .. })
        ));
    }
}
