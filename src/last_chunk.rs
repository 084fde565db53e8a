//! The final-chunk rules (SPEC.md §6.4, §7.2 steps 5 and 6): how long a
//! volume other than the last must be, which chunk is physically last in a
//! volume given its length, and what that chunk may be (end of set, end of
//! a full volume) or what is wrong (cut short, trailing bytes, damage).
//! Opening a set (§7.2) and verifying one volume (§7.4) apply the same
//! rules, so they live here, below both.

use crate::error::{Error, Location};
use crate::format::{ChunkFlag, Geometry, TAG_LEN};
use crate::stream::ChunkCipher;
use crate::volumes::VolumeSource;

/// A volume other than the last must hold exactly K chunks (SPEC.md §7.2
/// step 5). `name` is the volume's source's name, for errors.
pub(crate) fn check_full_volume(
    geometry: &Geometry,
    volume: u32,
    len: u64,
    name: Option<&str>,
) -> Result<(), Error> {
    let full = geometry.full_volume_len().unwrap_or(len);
    let at = Location::volume(volume).name(name);
    if len < full {
        return Err(Error::Truncated { at: at.byte(len) });
    }
    if len > full {
        return Err(Error::TrailingData { at: at.byte(full) });
    }
    Ok(())
}

/// The physically last chunk of a volume, found from the volume's length
/// (SPEC.md §7.2 step 6).
pub(crate) struct LastChunk {
    volume: u32,
    /// The whole volume, by number and name, for errors.
    at: Location,
    volume_len: u64,
    /// Global index.
    pub(crate) chunk: u64,
    /// Ciphertext length, tag included; may be below a tag if truncated.
    pub(crate) len: usize,
}

impl LastChunk {
    /// Finds the last chunk of volume `volume`, `volume_len` bytes long;
    /// the header has been read, so the volume holds at least its padded
    /// header. `name` is the volume's source's name, for errors.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if no chunk follows the header,
    /// [`Error::TrailingData`] if the volume is longer than a full one,
    /// [`Error::CounterExhausted`] if the chunk index overflows.
    pub(crate) fn locate(
        geometry: &Geometry,
        volume: u32,
        volume_len: u64,
        name: Option<&str>,
    ) -> Result<Self, Error> {
        let at = Location::volume(volume).name(name);
        let data = volume_len - geometry.data_offset;
        let chunk_len = geometry.chunk_len() as u64;
        if data == 0 {
            return Err(Error::Truncated {
                at: at.byte(volume_len),
            });
        }
        if let Some(full) = geometry.full_volume_len()
            && volume_len > full
        {
            return Err(Error::TrailingData { at: at.byte(full) });
        }
        let chunks = data.div_ceil(chunk_len);
        let chunk = geometry
            .first_chunk(volume)
            .checked_add(chunks - 1)
            .ok_or(Error::CounterExhausted)?;
        Ok(LastChunk {
            volume,
            at,
            volume_len,
            chunk,
            len: (data - (chunks - 1) * chunk_len) as usize,
        })
    }

    /// Authenticates the last chunk as end of set or end of volume, and
    /// otherwise names what is wrong: cut short, trailing bytes, or damage.
    /// `buf` ends up holding the chunk; it may hold plaintext, so the
    /// caller wipes it.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`], [`Error::TrailingData`],
    /// [`Error::MalformedChunk`], [`Error::Unauthenticated`], or the
    /// source's own error.
    pub(crate) fn authenticate<S: VolumeSource + ?Sized>(
        &self,
        cipher: &ChunkCipher,
        geometry: &Geometry,
        source: &S,
        buf: &mut Vec<u8>,
    ) -> Result<ChunkFlag, Error> {
        let (_, offset) = geometry.locate(self.chunk);
        let truncated = Error::Truncated {
            at: self.at.at_byte(self.volume_len),
        };
        let number = self.at.volume;
        let mut try_open = |chunk: u64, len: usize, offset: u64, flag: ChunkFlag| {
            buf.resize(len, 0);
            crate::volumes::read_at(source, buf, offset, number, Some(chunk))
                .map(|()| cipher.open(chunk, flag, buf))
        };
        let at_chunk = self.at.at_byte(offset).chunk(self.chunk);
        if self.len >= TAG_LEN {
            if try_open(self.chunk, self.len, offset, ChunkFlag::EndOfSet)? {
                if self.len == TAG_LEN && self.chunk != 0 {
                    return Err(Error::MalformedChunk {
                        chunk: self.chunk,
                        at: at_chunk,
                        reason: "empty final chunk after data",
                    });
                }
                return Ok(ChunkFlag::EndOfSet);
            }
            if geometry.chunks_per_volume != 0
                && try_open(self.chunk, self.len, offset, ChunkFlag::EndOfVolume)?
            {
                let at_volume_end =
                    geometry.ends_volume(self.chunk) && self.len == geometry.chunk_len();
                if !at_volume_end {
                    return Err(Error::MalformedChunk {
                        chunk: self.chunk,
                        at: at_chunk,
                        reason: "end-of-volume chunk before the volume is full",
                    });
                }
                return Ok(ChunkFlag::EndOfVolume);
            }
            if try_open(self.chunk, self.len, offset, ChunkFlag::Interior)? {
                return Err(truncated);
            }
        }
        if self.chunk > geometry.first_chunk(self.volume) {
            let previous = self.chunk - 1;
            let (_, previous_offset) = geometry.locate(previous);
            if try_open(
                previous,
                geometry.chunk_len(),
                previous_offset,
                ChunkFlag::EndOfSet,
            )? {
                return Err(Error::TrailingData {
                    at: self.at.at_byte(offset),
                });
            }
        }
        // A final chunk after data holds more than its tag (SPEC.md §6.4),
        // so a last chunk of a bare tag (or less) that did not open is what
        // is left of a longer one: the length proves a cut.
        if self.len < TAG_LEN || (self.len == TAG_LEN && self.chunk != 0) {
            return Err(truncated);
        }
        Err(Error::Unauthenticated {
            chunk: self.chunk,
            at: at_chunk,
        })
    }
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::*;
    use crate::error::Volume;
    use crate::format::SET_ID_LEN;
    use crate::keys::FileKey;

    const C: usize = 4096;
    /// Plaintext of a full chunk.
    const P: usize = C - TAG_LEN;
    const H: u64 = 2048;

    fn cipher() -> ChunkCipher {
        let key = FileKey::from_bytes(Zeroizing::new([5; 16])).payload_key(&[0; SET_ID_LEN]);
        ChunkCipher::new(&key)
    }

    /// 4 KiB chunks, `per_volume` of them per volume, a 2,048-byte header.
    fn geometry(per_volume: u64) -> Geometry {
        Geometry::new(12, per_volume, 100)
    }

    /// Chunk `counter` sealed with `flag`, `plain` bytes of plaintext.
    fn chunk(counter: u64, flag: ChunkFlag, plain: usize) -> Vec<u8> {
        let mut bytes = vec![counter as u8; plain];
        let tag = cipher().seal_detached(counter, flag, &mut bytes);
        bytes.extend_from_slice(&tag);
        bytes
    }

    /// A volume: a zeroed header, then `chunks`.
    fn volume(chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = vec![0u8; H as usize];
        chunks.iter().for_each(|c| bytes.extend_from_slice(c));
        bytes
    }

    fn classify(geometry: &Geometry, number: u32, volume: &[u8]) -> Result<ChunkFlag, Error> {
        let last = LastChunk::locate(geometry, number, volume.len() as u64, None)?;
        last.authenticate(&cipher(), geometry, volume, &mut Vec::new())
    }

    #[test]
    fn the_last_chunk_is_found_from_the_length() {
        let split = geometry(3);
        let full = H + 3 * C as u64;
        assert!(matches!(
            LastChunk::locate(&split, 1, H, Some("v.001.kuv")),
            Err(Error::Truncated { at })
                if at == Location::volume(1).byte(H).name(Some("v.001.kuv"))
        ));
        assert!(matches!(
            LastChunk::locate(&split, 1, full + 1, None),
            Err(Error::TrailingData { at }) if at == Location::volume(1).byte(full)
        ));
        let last = LastChunk::locate(&split, 2, H + C as u64 + 100, None).expect("locate");
        assert_eq!((last.chunk, last.len), (4, 100));
        let last = LastChunk::locate(&geometry(0), 1, H + 5 * C as u64, None).expect("locate");
        assert_eq!((last.chunk, last.len), (4, C));
    }

    #[test]
    fn volumes_before_the_last_are_full() {
        let split = geometry(3);
        let full = H + 3 * C as u64;
        assert!(check_full_volume(&split, 2, full, None).is_ok());
        assert!(matches!(
            check_full_volume(&split, 2, full - 1, None),
            Err(Error::Truncated { at }) if at == Location::volume(2).byte(full - 1)
        ));
        assert!(matches!(
            check_full_volume(&split, 2, full + 1, Some("b")),
            Err(Error::TrailingData { at }) if at == Location::volume(2).byte(full).name(Some("b"))
        ));
        assert!(check_full_volume(&geometry(0), 1, 12_345, None).is_ok());
    }

    #[test]
    fn end_of_set_and_end_of_volume_are_accepted_where_they_may_be() {
        use ChunkFlag::{EndOfSet, EndOfVolume, Interior};
        let (unsplit, split) = (geometry(0), geometry(3));
        let short_end = volume(&[chunk(0, Interior, P), chunk(1, EndOfSet, 100)]);
        assert_eq!(classify(&unsplit, 1, &short_end).expect("end"), EndOfSet);
        let empty_set = volume(&[chunk(0, EndOfSet, 0)]);
        assert_eq!(classify(&unsplit, 1, &empty_set).expect("end"), EndOfSet);
        let full = volume(&[
            chunk(3, Interior, P),
            chunk(4, Interior, P),
            chunk(5, EndOfVolume, P),
        ]);
        assert_eq!(classify(&split, 2, &full).expect("end"), EndOfVolume);
    }

    #[test]
    fn a_wrong_last_chunk_is_named() {
        use ChunkFlag::{EndOfSet, EndOfVolume, Interior};
        let (unsplit, split) = (geometry(0), geometry(3));
        let interior = || chunk(0, Interior, P);
        let empty_after_data = volume(&[interior(), chunk(1, EndOfSet, 0)]);
        assert!(matches!(
            classify(&unsplit, 1, &empty_after_data),
            Err(Error::MalformedChunk {
                chunk: 1,
                reason: "empty final chunk after data",
                ..
            })
        ));
        let early_end_of_volume = volume(&[interior(), chunk(1, EndOfVolume, P)]);
        assert!(matches!(
            classify(&split, 1, &early_end_of_volume),
            Err(Error::MalformedChunk {
                chunk: 1,
                reason: "end-of-volume chunk before the volume is full",
                ..
            })
        ));
        let cut_at_boundary = volume(&[interior(), chunk(1, Interior, P)]);
        assert!(matches!(
            classify(&unsplit, 1, &cut_at_boundary),
            Err(Error::Truncated {
                at: Location {
                    volume: Volume::Number(1),
                    ..
                }
            })
        ));
        let mut cut_below_a_tag = volume(&[interior()]);
        cut_below_a_tag.extend_from_slice(&[0; 10]);
        assert!(matches!(
            classify(&unsplit, 1, &cut_below_a_tag),
            Err(Error::Truncated {
                at: Location {
                    volume: Volume::Number(1),
                    ..
                }
            })
        ));
        let mut trailing = volume(&[interior(), chunk(1, EndOfSet, P)]);
        trailing.extend_from_slice(&[0; 50]);
        assert!(matches!(
            classify(&unsplit, 1, &trailing),
            Err(Error::TrailingData { at }) if at == Location::volume(1).byte(H + 2 * C as u64)
        ));
        let mut damaged = volume(&[interior(), chunk(1, EndOfSet, 100)]);
        let at = damaged.len() - 1;
        damaged[at] ^= 1;
        assert!(matches!(
            classify(&unsplit, 1, &damaged),
            Err(Error::Unauthenticated { chunk: 1, at })
                if at == Location::volume(1).byte(H + C as u64).chunk(1)
        ));
    }
}
