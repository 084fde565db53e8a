//! The final-chunk rules (SPEC.md §6.4, §7.2 steps 5 and 6): how long a
//! volume other than the last must be, which chunk is physically last in a
//! volume given its length, and what that chunk may be (end of set, end of
//! a full volume) or what is wrong (cut short, trailing bytes, damage).
//! Opening a set (§7.2) and verifying one volume (§7.4) apply the same
//! rules, so they live here, below both.

use crate::error::Error;
use crate::format::{ChunkFlag, Geometry, TAG_LEN};
use crate::stream::ChunkCipher;
use crate::volumes::VolumeSource;

/// A volume other than the last must hold exactly K chunks (SPEC.md §7.2
/// step 5).
pub(crate) fn check_full_volume(geometry: &Geometry, volume: u32, len: u64) -> Result<(), Error> {
    let full = geometry.full_volume_len().unwrap_or(len);
    if len < full {
        return Err(Error::Truncated {
            volume,
            length: len,
        });
    }
    if len > full {
        return Err(Error::TrailingData {
            volume,
            offset: full,
        });
    }
    Ok(())
}

/// The physically last chunk of a volume, found from the volume's length
/// (SPEC.md §7.2 step 6).
pub(crate) struct LastChunk {
    volume: u32,
    volume_len: u64,
    /// Global index.
    pub(crate) chunk: u64,
    /// Ciphertext length, tag included; may be below a tag if truncated.
    pub(crate) len: usize,
}

impl LastChunk {
    /// Finds the last chunk of volume `volume`, `volume_len` bytes long;
    /// the header has been read, so the volume holds at least its padded
    /// header.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if no chunk follows the header,
    /// [`Error::TrailingData`] if the volume is longer than a full one,
    /// [`Error::CounterExhausted`] if the chunk index overflows.
    pub(crate) fn locate(geometry: &Geometry, volume: u32, volume_len: u64) -> Result<Self, Error> {
        let data = volume_len - geometry.data_offset;
        let chunk_len = geometry.chunk_len() as u64;
        if data == 0 {
            return Err(Error::Truncated {
                volume,
                length: volume_len,
            });
        }
        if let Some(full) = geometry.full_volume_len()
            && volume_len > full
        {
            return Err(Error::TrailingData {
                volume,
                offset: full,
            });
        }
        let chunks = data.div_ceil(chunk_len);
        let chunk = geometry
            .first_chunk(volume)
            .checked_add(chunks - 1)
            .ok_or(Error::CounterExhausted)?;
        Ok(LastChunk {
            volume,
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
            volume: self.volume,
            length: self.volume_len,
        };
        let mut try_open = |chunk: u64, len: usize, offset: u64, flag: ChunkFlag| {
            buf.resize(len, 0);
            source
                .read_exact_at(buf, offset)
                .map(|()| cipher.open(chunk, flag, buf))
        };
        if self.len >= TAG_LEN {
            if try_open(self.chunk, self.len, offset, ChunkFlag::EndOfSet)? {
                if self.len == TAG_LEN && self.chunk != 0 {
                    return Err(Error::MalformedChunk {
                        chunk: self.chunk,
                        volume: self.volume,
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
                        volume: self.volume,
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
                    volume: self.volume,
                    offset,
                });
            }
        }
        if self.len < TAG_LEN {
            return Err(truncated);
        }
        Err(Error::Unauthenticated {
            chunk: self.chunk,
            volume: self.volume,
            offset,
        })
    }
}
